//! Ranges over many keys (served off the request loop, on the executor's blocking thread) give
//! the same answers as small ones: etcd's count over the whole range, the limit, `more`, and
//! a read-only txn holding such a range.

use crate::support;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use support::with_client;

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
