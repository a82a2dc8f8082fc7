//! Ranges over many keys (served off the request loop, on the executor's blocking thread) give
//! the same answers as small ones: etcd's count over the whole range, the limit, `more`, and
//! a read-only txn holding such a range.

use crate::support;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use support::{with_client, with_member, Basalt};

#[test]
fn a_range_over_twenty_thousand_keys_counts_them_all() {
    with_client(|mut client| async move {
        for batch in 0..200 {
            let puts: Vec<TxnOp> = (0..100)
                .map(|i| TxnOp::put(format!("big/{:05}", batch * 100 + i), "v", None))
                .collect();
            client.txn(Txn::new().and_then(puts)).await.unwrap();
        }
        let count = client
            .get(
                "big/",
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .unwrap();
        assert_eq!(count.count(), 20_000);
        assert!(count.kvs().is_empty());
        let page = client
            .get("big/", Some(GetOptions::new().with_prefix().with_limit(10)))
            .await
            .unwrap();
        assert_eq!(page.count(), 20_000);
        assert_eq!(page.kvs().len(), 10);
        assert!(page.more());
        assert_eq!(page.kvs()[9].key(), b"big/00009");
        // The same range inside a read-only txn.
        let txn = client
            .txn(
                Txn::new()
                    .when([Compare::version("big/00000", CompareOp::Equal, 1)])
                    .and_then([TxnOp::get(
                        "big/",
                        Some(GetOptions::new().with_prefix().with_count_only()),
                    )]),
            )
            .await
            .unwrap();
        assert!(txn.succeeded());
        match &txn.op_responses()[0] {
            TxnOpResponse::Get(range) => assert_eq!(range.count(), 20_000),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Goal: a read-only txn whose answer would be larger than gRPC may send (and than memory:
/// here 64 nested txns of 64 point reads of a 1 MiB value, 4 GiB; etcd's --max-txn-ops of
/// 128 bounds a level's ops plus its nested txns' ops) is refused with grpc-go's
/// ResourceExhausted "trying to send message larger than max", and the member goes on serving.
/// Method: the read stops once its answer passes 2^31 - 1 bytes, instead of building it all (it
/// used to allocate until the process died, or panic encoding a message past 4 GiB).
#[test]
fn a_read_only_txn_larger_than_the_send_limit_is_refused_and_the_member_lives() {
    with_client(|mut client| async move {
        let value = vec![b'x'; 1 << 20];
        client.put("huge", value.clone(), None).await.unwrap();
        let reads: Vec<TxnOp> = (0..64).map(|_| TxnOp::get("huge", None)).collect();
        let nested: Vec<TxnOp> = (0..64)
            .map(|_| TxnOp::txn(Txn::new().and_then(reads.clone())))
            .collect();
        assert_larger_than_max(client.txn(Txn::new().and_then(nested)).await);
        // Still serving, and the answer under the limit still comes whole.
        client.put("after", "v", None).await.unwrap();
        let small = client
            .txn(Txn::new().and_then(vec![TxnOp::get("huge", None)]))
            .await
            .unwrap();
        match &small.op_responses()[0] {
            TxnOpResponse::Get(get) => assert_eq!(get.kvs()[0].value(), value.as_slice()),
            other => panic!("{other:?}"),
        }
    });
}

/// Goal: the same bound inside a txn that also writes. Its ranges are read at apply, on the
/// owner core, where they used to be unbounded: 63 nested txns of 64 prefix reads over three
/// 1 MiB values ask for ~12 GiB. Now the write is applied (every member applies it alike; etcd
/// too applies it, then fails to send the answer), only the answer is refused with
/// ResourceExhausted, and the member's memory stays near the 2 GiB send limit.
#[test]
fn a_write_txn_whose_answer_passes_the_send_limit_applies_its_write_and_refuses_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    with_member(&basalt, |mut client| async move {
        let value = vec![b'x'; 1 << 20];
        for i in 0..3 {
            client
                .put(format!("huge/{i}"), value.clone(), None)
                .await
                .unwrap();
        }
        let prefix = || Some(GetOptions::new().with_prefix());
        let reads: Vec<TxnOp> = (0..64).map(|_| TxnOp::get("huge/", prefix())).collect();
        let mut ops = vec![TxnOp::put("written", "by the big txn", None)];
        ops.extend((0..63).map(|_| TxnOp::txn(Txn::new().and_then(reads.clone()))));
        assert_larger_than_max(client.txn(Txn::new().and_then(ops)).await);
        let written = client.get("written", None).await.unwrap();
        assert_eq!(written.kvs()[0].value(), b"by the big txn");
        // The member goes on applying and answering writes with reads.
        let small = client
            .txn(Txn::new().and_then(vec![
                TxnOp::put("after", "v", None),
                TxnOp::get("huge/", prefix()),
            ]))
            .await
            .unwrap();
        match &small.op_responses()[1] {
            TxnOpResponse::Get(get) => assert_eq!(get.kvs().len(), 3),
            other => panic!("{other:?}"),
        }
    });
    let peak = basalt.peak_resident_bytes();
    assert!(
        peak < 3 << 30,
        "the member held {} MiB at its peak",
        peak >> 20
    );
}

/// Asserts grpc-go's refusal of an answer past the 2^31 - 1 byte send limit.
fn assert_larger_than_max<T>(result: Result<T, etcd_client::Error>) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(
                format!("{:?}", status.code()),
                "ResourceExhausted",
                "{status:?}"
            );
            let prefix = "grpc: trying to send message larger than max (";
            assert!(
                status.message().starts_with(prefix)
                    && status.message().ends_with(" vs. 2147483647)"),
                "{status:?}"
            );
        }
        Err(other) => panic!("expected ResourceExhausted, got {other:?}"),
        Ok(_) => panic!("expected ResourceExhausted, got an answer"),
    }
}
