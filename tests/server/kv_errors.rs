//! etcd's KV API against the real `basalt` binary, driven by the real `etcd-client` crate:
//! every RPC (Range, Put, DeleteRange, Txn, Compact) and the errors etcd 3.5 answers them with,
//! checked by gRPC code and exact message text (clients match on both).

use crate::support;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use support::{assert_status, with_client};

/// The store's current revision, read with a linearizable Range.
async fn revision(client: &mut Client) -> i64 {
    client
        .get("any", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

async fn value_of(client: &mut Client, key: &str) -> Option<Vec<u8>> {
    let response = client.get(key, None).await.unwrap();
    response.kvs().first().map(|kv| kv.value().to_vec())
}

fn keys(kvs: &[etcd_client::KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key_str().unwrap()).collect()
}

// ----- Put and Range --------------------------------------------------------------------------

/// Goal: Put returns prev_kv only when asked and only if the key existed; Get returns the
/// key's create/mod revisions and version exactly as etcd counts them.
#[test]
fn put_get_round_trip_with_prev_kv() {
    with_client(|mut client| async move {
        let start = revision(&mut client).await;
        let first = client
            .put("k", "v1", Some(PutOptions::new().with_prev_key()))
            .await
            .unwrap();
        assert!(
            first.prev_key().is_none(),
            "no previous version of a new key"
        );
        assert_eq!(first.header().unwrap().revision(), start + 1);

        let second = client
            .put("k", "v2", Some(PutOptions::new().with_prev_key()))
            .await
            .unwrap();
        let prev = second.prev_key().expect("prev_kv of an existing key");
        assert_eq!(prev.value(), b"v1");
        assert_eq!(prev.create_revision(), start + 1);
        assert_eq!(prev.mod_revision(), start + 1);
        assert_eq!(prev.version(), 1);
        assert_eq!(second.header().unwrap().revision(), start + 2);

        let third = client.put("k", "v3", None).await.unwrap();
        assert!(third.prev_key().is_none(), "prev_kv only when asked");

        let got = client.get("k", None).await.unwrap();
        assert_eq!(got.count(), 1);
        assert!(!got.more());
        let kv = &got.kvs()[0];
        assert_eq!((kv.key(), kv.value()), (&b"k"[..], &b"v3"[..]));
        assert_eq!(kv.create_revision(), start + 1);
        assert_eq!(kv.mod_revision(), start + 3);
        assert_eq!(kv.version(), 3);
        assert_eq!(kv.lease(), 0);

        // A Range at an older revision sees the value of then.
        let old = client
            .get("k", Some(GetOptions::new().with_revision(start + 1)))
            .await
            .unwrap();
        assert_eq!(old.kvs()[0].value(), b"v1");
        assert_eq!(old.header().unwrap().revision(), start + 3);
    });
}

/// Goal: ignore_value and ignore_lease rewrite an existing key keeping its value (a new
/// revision and version), and fail with etcd's "key not found" on a missing key.
#[test]
fn put_ignore_value_and_ignore_lease() {
    with_client(|mut client| async move {
        client.put("k", "kept", None).await.unwrap();
        let before = revision(&mut client).await;
        let response = client
            .put(
                "k",
                "",
                Some(PutOptions::new().with_ignore_value().with_prev_key()),
            )
            .await
            .unwrap();
        assert_eq!(response.prev_key().unwrap().value(), b"kept");
        assert_eq!(response.header().unwrap().revision(), before + 1);
        let got = client.get("k", None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"kept");
        assert_eq!(got.kvs()[0].version(), 2);
        assert_eq!(got.kvs()[0].mod_revision(), before + 1);

        client
            .put("k", "new", Some(PutOptions::new().with_ignore_lease()))
            .await
            .unwrap();
        let got = client.get("k", None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"new");
        assert_eq!(got.kvs()[0].lease(), 0);

        let before = revision(&mut client).await;
        assert_status(
            client
                .put("missing", "", Some(PutOptions::new().with_ignore_value()))
                .await,
            "InvalidArgument",
            "etcdserver: key not found",
        );
        assert_status(
            client
                .put("missing", "v", Some(PutOptions::new().with_ignore_lease()))
                .await,
            "InvalidArgument",
            "etcdserver: key not found",
        );
        assert_eq!(
            revision(&mut client).await,
            before,
            "a failed put writes nothing"
        );
        assert_eq!(value_of(&mut client, "missing").await, None);
    });
}

/// Goal: ignore_value with a value, and ignore_lease with a lease, are refused before anything
/// is written, with etcd's codes and texts.
#[test]
fn put_ignore_flags_with_a_value_or_lease_are_invalid() {
    with_client(|mut client| async move {
        client.put("k", "v", None).await.unwrap();
        let before = revision(&mut client).await;
        assert_status(
            client
                .put("k", "x", Some(PutOptions::new().with_ignore_value()))
                .await,
            "InvalidArgument",
            "etcdserver: value is provided",
        );
        assert_status(
            client
                .put(
                    "k",
                    "x",
                    Some(PutOptions::new().with_ignore_lease().with_lease(7)),
                )
                .await,
            "InvalidArgument",
            "etcdserver: lease is provided",
        );
        assert_eq!(revision(&mut client).await, before);
        assert_eq!(value_of(&mut client, "k").await.unwrap(), b"v");
    });
}

/// Goal: Range's limit/more/count, sort targets and orders, count_only, keys_only and the
/// mod/create revision filters answer as etcd's do.
#[test]
fn range_options() {
    with_client(|mut client| async move {
        let start = revision(&mut client).await;
        // k1..k5 written in order with values in the reverse order: k1=e ... k5=a.
        for (i, value) in ["e", "d", "c", "b", "a"].iter().enumerate() {
            client
                .put(format!("k{}", i + 1), *value, None)
                .await
                .unwrap();
        }
        client.put("k2", "dd", None).await.unwrap(); // k2 modified last, version 2
        client.put("other", "x", None).await.unwrap();

        let all = client
            .get("k", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(keys(all.kvs()), ["k1", "k2", "k3", "k4", "k5"]);
        assert_eq!(all.count(), 5);
        assert!(!all.more());

        let limited = client
            .get("k", Some(GetOptions::new().with_prefix().with_limit(2)))
            .await
            .unwrap();
        assert_eq!(keys(limited.kvs()), ["k1", "k2"]);
        assert_eq!(limited.count(), 5);
        assert!(limited.more());

        let exact = client
            .get("k", Some(GetOptions::new().with_prefix().with_limit(5)))
            .await
            .unwrap();
        assert_eq!(exact.kvs().len(), 5);
        assert!(!exact.more());

        let ranged = client
            .get("k2", Some(GetOptions::new().with_range("k4")))
            .await
            .unwrap();
        assert_eq!(keys(ranged.kvs()), ["k2", "k3"]);

        let by_value = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Value, SortOrder::Ascend),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(by_value.kvs()), ["k5", "k4", "k3", "k2", "k1"]);

        let by_key_desc = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Key, SortOrder::Descend)
                        .with_limit(2),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(by_key_desc.kvs()), ["k5", "k4"]);
        assert!(by_key_desc.more());

        let by_mod_desc = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Mod, SortOrder::Descend),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(by_mod_desc.kvs()), ["k2", "k5", "k4", "k3", "k1"]);

        let by_version_desc = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Version, SortOrder::Descend)
                        .with_limit(1),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(by_version_desc.kvs()), ["k2"]);

        let counted = client
            .get("k", Some(GetOptions::new().with_prefix().with_count_only()))
            .await
            .unwrap();
        assert!(counted.kvs().is_empty());
        assert_eq!(counted.count(), 5);

        let keys_only = client
            .get("k", Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .unwrap();
        assert_eq!(keys(keys_only.kvs()), ["k1", "k2", "k3", "k4", "k5"]);
        assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
        assert_eq!(keys_only.kvs()[1].version(), 2);

        // Mod revisions: k1..k5 = start+1..start+5, then k2 = start+6.
        let min_mod = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_min_mod_revision(start + 4),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(min_mod.kvs()), ["k2", "k4", "k5"]);
        // etcd counts the keys in the range before the revision filters prune them.
        assert_eq!(min_mod.count(), 5);
        let filtered_page = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_min_mod_revision(start + 4)
                        .with_limit(2),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(filtered_page.kvs()), ["k2", "k4"]);
        assert!(filtered_page.more());
        let max_mod = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_max_mod_revision(start + 3),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(max_mod.kvs()), ["k1", "k3"]);
        let window = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_min_mod_revision(start + 2)
                        .with_max_mod_revision(start + 4),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(window.kvs()), ["k3", "k4"]);
        let created = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_min_create_revision(start + 2)
                        .with_max_create_revision(start + 3),
                ),
            )
            .await
            .unwrap();
        assert_eq!(keys(created.kvs()), ["k2", "k3"]);

        let nothing = client.get("nope", None).await.unwrap();
        assert!(nothing.kvs().is_empty());
        assert_eq!(nothing.count(), 0);
    });
}

/// Goal: every KV response header carries this member's nonzero cluster_id and member_id (the
/// ones Status reports), the store's revision and a raft term of at least 1.
#[test]
fn response_headers_carry_cluster_member_revision_and_term() {
    with_client(|mut client| async move {
        let status = client.status().await.unwrap();
        let status_header = status.header().unwrap();
        let (cluster_id, member_id) = (status_header.cluster_id(), status_header.member_id());
        assert_ne!(cluster_id, 0);
        assert_ne!(member_id, 0);

        let put = client.put("h", "1", None).await.unwrap();
        let written = put.header().unwrap().revision();
        let get = client.get("h", None).await.unwrap();
        let delete = client.delete("h", None).await.unwrap();
        let txn = client
            .txn(Txn::new().and_then([TxnOp::get("h", None)]))
            .await
            .unwrap();
        let compact = client.compact(written, None).await.unwrap();
        let headers = [
            (put.header().unwrap(), written),
            (get.header().unwrap(), written),
            (delete.header().unwrap(), written + 1),
            (txn.header().unwrap(), written + 1),
            (compact.header().unwrap(), written + 1),
        ];
        for (i, (header, revision)) in headers.iter().enumerate() {
            assert_eq!(header.cluster_id(), cluster_id, "header {i}");
            assert_eq!(header.member_id(), member_id, "header {i}");
            assert_eq!(header.revision(), *revision, "header {i}");
            assert!(header.raft_term() >= 1, "header {i}: {header:?}");
        }
    });
}

// ----- DeleteRange --------------------------------------------------------------------------

/// Goal: DeleteRange over a range deletes every key in [key, range_end) in one revision and
/// returns their previous versions when asked; deleting nothing writes no revision.
#[test]
fn delete_range_with_prev_kv() {
    with_client(|mut client| async move {
        for key in ["a", "b", "c", "d"] {
            client.put(key, format!("v{key}"), None).await.unwrap();
        }
        let before = revision(&mut client).await;
        let deleted = client
            .delete(
                "b",
                Some(DeleteOptions::new().with_range("d").with_prev_key()),
            )
            .await
            .unwrap();
        assert_eq!(deleted.deleted(), 2);
        assert_eq!(keys(deleted.prev_kvs()), ["b", "c"]);
        assert_eq!(deleted.prev_kvs()[1].value(), b"vc");
        assert_eq!(deleted.header().unwrap().revision(), before + 1);

        let left = client
            .get("a", Some(GetOptions::new().with_from_key()))
            .await
            .unwrap();
        assert_eq!(keys(left.kvs()), ["a", "d"]);

        let single = client.delete("a", None).await.unwrap();
        assert_eq!(single.deleted(), 1);
        assert!(single.prev_kvs().is_empty(), "prev_kvs only when asked");

        let none = client.delete("zzz", None).await.unwrap();
        assert_eq!(none.deleted(), 0);
        assert_eq!(none.header().unwrap().revision(), before + 2);
        assert_eq!(revision(&mut client).await, before + 2);

        // The deleted versions are still readable at an older revision.
        let old = client
            .get("b", Some(GetOptions::new().with_revision(before)))
            .await
            .unwrap();
        assert_eq!(old.kvs()[0].value(), b"vb");
    });
}

// ----- Txn --------------------------------------------------------------------------------

/// Goal: compares on VERSION, CREATE, MOD and VALUE pick the success or failure branch as
/// etcd's do, and each branch's responses come back in order.
#[test]
fn txn_compares_choose_the_branch() {
    with_client(|mut client| async move {
        let created = client
            .put("k", "v1", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let modified = client
            .put("k", "v2", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();

        let passing = [
            Compare::version("k", CompareOp::Equal, 2),
            Compare::version("k", CompareOp::Greater, 1),
            Compare::create_revision("k", CompareOp::Equal, created),
            Compare::create_revision("k", CompareOp::Less, modified),
            Compare::mod_revision("k", CompareOp::Equal, modified),
            Compare::mod_revision("k", CompareOp::NotEqual, created),
            Compare::value("k", CompareOp::Equal, "v2"),
            Compare::value("k", CompareOp::Greater, "v1"),
            Compare::version("missing", CompareOp::Equal, 0),
            Compare::create_revision("missing", CompareOp::Equal, 0),
        ];
        let response = client
            .txn(
                Txn::new()
                    .when(passing)
                    .and_then([TxnOp::put("k", "v3", None), TxnOp::get("k", None)])
                    .or_else([TxnOp::put("k", "wrong", None)]),
            )
            .await
            .unwrap();
        assert!(response.succeeded());
        assert_eq!(response.header().unwrap().revision(), modified + 1);
        let ops = response.op_responses();
        assert_eq!(ops.len(), 2);
        let TxnOpResponse::Put(put) = &ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(put.header().unwrap().revision(), modified + 1);
        let TxnOpResponse::Get(get) = &ops[1] else {
            panic!("{ops:?}")
        };
        assert_eq!(
            get.kvs()[0].value(),
            b"v3",
            "a get after a put in a txn sees it"
        );
        assert_eq!(get.kvs()[0].version(), 3);

        // Each failing compare alone sends the txn to the failure branch.
        let failing = [
            Compare::version("k", CompareOp::Less, 3),
            Compare::create_revision("k", CompareOp::Greater, created),
            Compare::mod_revision("k", CompareOp::Equal, modified),
            Compare::value("k", CompareOp::Equal, "v2"),
            Compare::value("missing", CompareOp::Equal, ""),
            Compare::value("missing", CompareOp::NotEqual, "x"),
        ];
        for (i, compare) in failing.into_iter().enumerate() {
            let response = client
                .txn(
                    Txn::new()
                        .when([compare])
                        .and_then([TxnOp::put("k", "wrong", None)])
                        .or_else([TxnOp::get("k", None)]),
                )
                .await
                .unwrap();
            assert!(!response.succeeded(), "compare {i}");
            let ops = response.op_responses();
            let TxnOpResponse::Get(get) = &ops[0] else {
                panic!("{ops:?}")
            };
            assert_eq!(get.kvs()[0].value(), b"v3", "compare {i}");
            // A branch that only reads writes no revision.
            assert_eq!(response.header().unwrap().revision(), modified + 1);
        }

        // The failure branch writes too: create-if-absent on an existing key falls through.
        let response = client
            .txn(
                Txn::new()
                    .when([Compare::create_revision("k", CompareOp::Equal, 0)])
                    .and_then([TxnOp::put("k", "wrong", None)])
                    .or_else([
                        TxnOp::put("flag", "set", None),
                        TxnOp::delete("k", Some(DeleteOptions::new().with_prev_key())),
                    ]),
            )
            .await
            .unwrap();
        assert!(!response.succeeded());
        assert_eq!(response.header().unwrap().revision(), modified + 2);
        let ops = response.op_responses();
        let TxnOpResponse::Delete(delete) = &ops[1] else {
            panic!("{ops:?}")
        };
        assert_eq!(delete.deleted(), 1);
        assert_eq!(delete.prev_kvs()[0].value(), b"v3");
        assert_eq!(value_of(&mut client, "k").await, None);
        assert_eq!(value_of(&mut client, "flag").await.unwrap(), b"set");
    });
}

/// Goal: a txn nested in a branch runs its own compares, and its writes share the outer txn's
/// single revision.
#[test]
fn nested_txn() {
    with_client(|mut client| async move {
        client.put("gate", "open", None).await.unwrap();
        let before = revision(&mut client).await;
        let inner = Txn::new()
            .when([Compare::value("gate", CompareOp::Equal, "closed")])
            .and_then([TxnOp::put("inner", "then", None)])
            .or_else([TxnOp::put("inner", "else", None), TxnOp::get("gate", None)]);
        let response = client
            .txn(
                Txn::new()
                    .when([Compare::value("gate", CompareOp::Equal, "open")])
                    .and_then([TxnOp::put("outer", "then", None), TxnOp::txn(inner)]),
            )
            .await
            .unwrap();
        assert!(response.succeeded());
        assert_eq!(response.header().unwrap().revision(), before + 1);
        let ops = response.op_responses();
        let TxnOpResponse::Txn(nested) = &ops[1] else {
            panic!("{ops:?}")
        };
        assert!(!nested.succeeded());
        let nested_ops = nested.op_responses();
        assert_eq!(nested_ops.len(), 2);
        let TxnOpResponse::Get(get) = &nested_ops[1] else {
            panic!("{nested_ops:?}")
        };
        assert_eq!(get.kvs()[0].value(), b"open");

        let outer = client.get("outer", None).await.unwrap();
        let inner = client.get("inner", None).await.unwrap();
        assert_eq!(inner.kvs()[0].value(), b"else");
        assert_eq!(outer.kvs()[0].mod_revision(), before + 1);
        assert_eq!(inner.kvs()[0].mod_revision(), before + 1);
    });
}

/// Goal: a txn of reads only answers from the current state and writes no revision.
#[test]
fn read_only_txn() {
    with_client(|mut client| async move {
        client.put("r1", "a", None).await.unwrap();
        client.put("r2", "b", None).await.unwrap();
        let before = revision(&mut client).await;
        let response = client
            .txn(
                Txn::new()
                    .when([Compare::version("r1", CompareOp::Equal, 1)])
                    .and_then([
                        TxnOp::get("r", Some(GetOptions::new().with_prefix())),
                        TxnOp::get("r2", Some(GetOptions::new().with_count_only())),
                    ])
                    .or_else([TxnOp::get("r1", None)]),
            )
            .await
            .unwrap();
        assert!(response.succeeded());
        assert_eq!(response.header().unwrap().revision(), before);
        let ops = response.op_responses();
        let TxnOpResponse::Get(all) = &ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(keys(all.kvs()), ["r1", "r2"]);
        let TxnOpResponse::Get(counted) = &ops[1] else {
            panic!("{ops:?}")
        };
        assert_eq!(counted.count(), 1);
        assert!(counted.kvs().is_empty());
        assert_eq!(revision(&mut client).await, before);

        // An empty txn (no compares, no ops) succeeds and writes nothing.
        let empty = client.txn(Txn::new()).await.unwrap();
        assert!(empty.succeeded());
        assert!(empty.op_responses().is_empty());
        assert_eq!(empty.header().unwrap().revision(), before);
    });
}

// ----- Errors -----------------------------------------------------------------------------

const EMPTY_KEY: &str = "etcdserver: key is not provided";

/// Goal: an empty key on Put, Range and DeleteRange (and in a txn's ops and compares) is
/// refused with InvalidArgument "etcdserver: key is not provided".
#[test]
fn empty_key_is_invalid() {
    with_client(|mut client| async move {
        let before = revision(&mut client).await;
        assert_status(
            client.put("", "v", None).await,
            "InvalidArgument",
            EMPTY_KEY,
        );
        assert_status(client.get("", None).await, "InvalidArgument", EMPTY_KEY);
        assert_status(client.delete("", None).await, "InvalidArgument", EMPTY_KEY);
        assert_status(
            client
                .txn(Txn::new().and_then([TxnOp::put("", "v", None)]))
                .await,
            "InvalidArgument",
            EMPTY_KEY,
        );
        assert_status(
            client.txn(Txn::new().or_else([TxnOp::get("", None)])).await,
            "InvalidArgument",
            EMPTY_KEY,
        );
        assert_status(
            client
                .txn(Txn::new().when([Compare::version("", CompareOp::Equal, 0)]))
                .await,
            "InvalidArgument",
            EMPTY_KEY,
        );
        assert_eq!(revision(&mut client).await, before);
    });
}

const TOO_MANY_OPS: &str = "etcdserver: too many operations in txn request";

/// Goal: a txn with more than --max-txn-ops (128) operations in a branch, or compares, is
/// refused with InvalidArgument; exactly 128 is served.
#[test]
fn too_many_ops_in_txn() {
    with_client(|mut client| async move {
        let puts = |n: usize| -> Vec<TxnOp> {
            (0..n)
                .map(|i| TxnOp::put(format!("op{i:03}"), "v", None))
                .collect()
        };
        let before = revision(&mut client).await;
        assert_status(
            client.txn(Txn::new().and_then(puts(129))).await,
            "InvalidArgument",
            TOO_MANY_OPS,
        );
        assert_status(
            client.txn(Txn::new().or_else(puts(129))).await,
            "InvalidArgument",
            TOO_MANY_OPS,
        );
        let compares: Vec<Compare> = (0..129)
            .map(|i| Compare::version(format!("c{i}"), CompareOp::Equal, 0))
            .collect();
        assert_status(
            client.txn(Txn::new().when(compares)).await,
            "InvalidArgument",
            TOO_MANY_OPS,
        );
        assert_eq!(revision(&mut client).await, before);

        let served = client.txn(Txn::new().and_then(puts(128))).await.unwrap();
        assert_eq!(served.op_responses().len(), 128);
        assert_eq!(served.header().unwrap().revision(), before + 1);
    });
}

/// Goal: a nested txn gets only what its parent leaves of --max-txn-ops (etcd passes
/// max - parent's ops down), so 100 ops beside a 29-op nested txn are too many.
#[test]
fn nested_txn_shares_the_op_budget() {
    with_client(|mut client| async move {
        let puts = |prefix: &str, n: usize| -> Vec<TxnOp> {
            (0..n)
                .map(|i| TxnOp::put(format!("{prefix}{i:03}"), "v", None))
                .collect()
        };
        let nested = |n: usize| TxnOp::txn(Txn::new().and_then(puts("in", n)));
        let mut ops = puts("out", 99);
        ops.push(nested(29)); // 100 ops at the top level leave 28 for the nested txn
        assert_status(
            client.txn(Txn::new().and_then(ops)).await,
            "InvalidArgument",
            TOO_MANY_OPS,
        );
        let mut ops = puts("out", 99);
        ops.push(nested(28));
        client.txn(Txn::new().and_then(ops)).await.unwrap();
    });
}

const DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";

/// Goal: a txn branch that writes a key twice (two puts, or a put inside a deleted range) is
/// refused with InvalidArgument and writes nothing; the two branches may write the same key.
#[test]
fn duplicate_key_in_txn() {
    with_client(|mut client| async move {
        let before = revision(&mut client).await;
        assert_status(
            client
                .txn(Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]))
                .await,
            "InvalidArgument",
            DUPLICATE_KEY,
        );
        assert_status(
            client
                .txn(Txn::new().or_else([
                    TxnOp::delete("a", Some(DeleteOptions::new().with_range("z"))),
                    TxnOp::put("d", "1", None),
                ]))
                .await,
            "InvalidArgument",
            DUPLICATE_KEY,
        );
        let nested = Txn::new().and_then([TxnOp::put("d", "2", None)]);
        assert_status(
            client
                .txn(Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::txn(nested)]))
                .await,
            "InvalidArgument",
            DUPLICATE_KEY,
        );
        assert_eq!(revision(&mut client).await, before);
        assert_eq!(value_of(&mut client, "d").await, None);

        let allowed = client
            .txn(
                Txn::new()
                    .when([Compare::version("d", CompareOp::Equal, 0)])
                    .and_then([TxnOp::put("d", "then", None)])
                    .or_else([TxnOp::put("d", "else", None)]),
            )
            .await
            .unwrap();
        assert!(allowed.succeeded());
        assert_eq!(value_of(&mut client, "d").await.unwrap(), b"then");
    });
}

const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE: &str = "etcdserver: mvcc: required revision is a future revision";

/// Goal: after Compact(r), a Range below r fails with OutOfRange "compacted" while r itself is
/// still readable; a Range past the current revision fails with OutOfRange "future revision".
#[test]
fn range_at_compacted_or_future_revision() {
    with_client(|mut client| async move {
        let mut revisions = Vec::new();
        for value in ["1", "2", "3", "4"] {
            let put = client.put("c", value, None).await.unwrap();
            revisions.push(put.header().unwrap().revision());
        }
        let current = *revisions.last().unwrap();
        let compact_at = revisions[2];
        client.compact(compact_at, None).await.unwrap();

        assert_status(
            client
                .get("c", Some(GetOptions::new().with_revision(revisions[1])))
                .await,
            "OutOfRange",
            COMPACTED,
        );
        assert_status(
            client
                .get("c", Some(GetOptions::new().with_revision(1)))
                .await,
            "OutOfRange",
            COMPACTED,
        );
        let at = client
            .get("c", Some(GetOptions::new().with_revision(compact_at)))
            .await
            .unwrap();
        assert_eq!(at.kvs()[0].value(), b"3");

        assert_status(
            client
                .get("c", Some(GetOptions::new().with_revision(current + 1)))
                .await,
            "OutOfRange",
            FUTURE,
        );
        assert_status(
            client
                .get("c", Some(GetOptions::new().with_revision(current + 1000)))
                .await,
            "OutOfRange",
            FUTURE,
        );
        // The same errors inside a (read-only) txn.
        assert_status(
            client
                .txn(Txn::new().and_then([TxnOp::get(
                    "c",
                    Some(GetOptions::new().with_revision(revisions[0])),
                )]))
                .await,
            "OutOfRange",
            COMPACTED,
        );
        assert_status(
            client
                .txn(Txn::new().and_then([TxnOp::get(
                    "c",
                    Some(GetOptions::new().with_revision(current + 1)),
                )]))
                .await,
            "OutOfRange",
            FUTURE,
        );
        let latest = client.get("c", None).await.unwrap();
        assert_eq!(latest.kvs()[0].value(), b"4");
    });
}

/// Goal: Compact at or below the last compaction fails with OutOfRange "compacted", past the
/// current revision with OutOfRange "future revision"; a later one succeeds.
#[test]
fn compact_twice_or_in_the_future() {
    with_client(|mut client| async move {
        for value in ["1", "2", "3"] {
            client.put("c", value, None).await.unwrap();
        }
        let current = revision(&mut client).await;
        let done = client.compact(current - 1, None).await.unwrap();
        assert_eq!(done.header().unwrap().revision(), current);

        assert_status(
            client.compact(current - 1, None).await,
            "OutOfRange",
            COMPACTED,
        );
        assert_status(
            client.compact(current - 2, None).await,
            "OutOfRange",
            COMPACTED,
        );
        assert_status(
            client.compact(current + 1, None).await,
            "OutOfRange",
            FUTURE,
        );

        // A physical compaction answers once the work is done; the same rules hold after it.
        client
            .compact(current, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        assert_status(client.compact(current, None).await, "OutOfRange", COMPACTED);
        assert_status(
            client
                .get("c", Some(GetOptions::new().with_revision(current - 1)))
                .await,
            "OutOfRange",
            COMPACTED,
        );
        let latest = client.get("c", None).await.unwrap();
        assert_eq!(latest.kvs()[0].value(), b"3");
        assert_eq!(
            revision(&mut client).await,
            current,
            "compaction writes no revision"
        );
    });
}

/// Goal: a request bigger than grpc's receive limit (--max-request-bytes + 512 KiB = 2 MiB) is
/// refused by the gRPC layer with grpc-go's ResourceExhausted text, and nothing is written.
#[test]
fn request_above_the_grpc_limit_is_resource_exhausted() {
    with_client(|mut client| async move {
        let before = revision(&mut client).await;
        let value = vec![b'x'; 2 * 1024 * 1024];
        // PutRequest: key field (1 + 1 + 1 bytes) + value field (1 + 4 + 2 MiB bytes).
        assert_status(
            client.put("k", value, None).await,
            "ResourceExhausted",
            "grpc: received message larger than max (2097160 vs. 2097152)",
        );
        assert_eq!(revision(&mut client).await, before);
    });
}

/// Goal: a request over --max-request-bytes (1.5 MiB) but under the gRPC limit is refused as
/// etcd refuses it, before it is proposed: InvalidArgument "etcdserver: request is too large".
#[test]
fn request_over_max_request_bytes_is_too_large() {
    with_client(|mut client| async move {
        let before = revision(&mut client).await;
        let value = vec![b'x'; 1536 * 1024 + 1];
        assert_status(
            client.put("k", value, None).await,
            "InvalidArgument",
            "etcdserver: request is too large",
        );
        assert_eq!(revision(&mut client).await, before);
        // Just under the limit is served.
        client
            .put("k", vec![b'y'; 1536 * 1024 - 64], None)
            .await
            .expect("a request under the limit is served");
    });
}
