//! etcd's Lease API against the real `basalt` binary, driven by the real `etcd-client` crate:
//! every RPC (grant, revoke, keep-alive, time-to-live, leases), the errors etcd 3.5 answers
//! with (gRPC code and exact text), keys attached and detached through Put/Txn/Delete, and a
//! revoke's deletes reaching watchers in one revision.

use crate::support;

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, Error, EventType, GetOptions, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use support::{assert_status, with_client};

async fn lease_keys(client: &mut Client, id: i64) -> Vec<String> {
    let response = client
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    response
        .keys()
        .iter()
        .map(|k| String::from_utf8(k.clone()).unwrap())
        .collect()
}

async fn lease_ids(client: &mut Client) -> Vec<i64> {
    let mut ids: Vec<i64> = client
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    ids.sort_unstable();
    ids
}

/// Goal: Grant picks a positive id when asked for 0, keeps a client's id, raises a TTL below
/// etcd's minimum (2 s with the default 100 ms heartbeat and 1 s election timeout), and refuses
/// a taken id and a TTL above 9,000,000,000 s with etcd's codes and texts.
#[test]
fn grant_ids_minimum_ttl_and_errors() {
    with_client(|mut client| async move {
        let chosen = client.lease_grant(60, None).await.unwrap();
        assert!(chosen.id() > 0, "server-chosen ids are positive");
        assert_eq!(chosen.ttl(), 60);
        let other = client.lease_grant(60, None).await.unwrap();
        assert_ne!(other.id(), chosen.id());

        let mine = client
            .lease_grant(5, Some(LeaseGrantOptions::new().with_id(0x1234)))
            .await
            .unwrap();
        assert_eq!((mine.id(), mine.ttl()), (0x1234, 5));
        assert_status(
            client
                .lease_grant(5, Some(LeaseGrantOptions::new().with_id(0x1234)))
                .await,
            "FailedPrecondition",
            "etcdserver: lease already exists",
        );
        assert_status(
            client.lease_grant(9_000_000_001, None).await,
            "OutOfRange",
            "etcdserver: too large lease TTL",
        );
        let short = client.lease_grant(1, None).await.unwrap();
        assert_eq!(short.ttl(), 2, "raised to the minimum TTL");

        let mut expected = vec![chosen.id(), other.id(), 0x1234, short.id()];
        expected.sort_unstable();
        assert_eq!(lease_ids(&mut client).await, expected);
    });
}

/// Goal: an unknown lease is "requested lease not found" (NotFound) for Revoke, Put and a
/// Txn's put; TimeToLive answers it with TTL -1 and KeepAlive with TTL 0, as etcd does.
#[test]
fn unknown_leases() {
    with_client(|mut client| async move {
        let not_found = "etcdserver: requested lease not found";
        assert_status(client.lease_revoke(0x77).await, "NotFound", not_found);
        assert_status(
            client
                .put("k", "v", Some(PutOptions::new().with_lease(0x77)))
                .await,
            "NotFound",
            not_found,
        );
        let txn = Txn::new()
            .when([Compare::version("k", CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put("a", "1", None),
                TxnOp::put("k", "v", Some(PutOptions::new().with_lease(0x77))),
            ]);
        assert_status(client.txn(txn).await, "NotFound", not_found);
        assert!(
            client.get("a", None).await.unwrap().kvs().is_empty(),
            "a refused txn changes nothing"
        );

        let ttl = client.lease_time_to_live(0x77, None).await.unwrap();
        assert_eq!((ttl.id(), ttl.ttl()), (0x77, -1));

        // The client sends one keep-alive and reads the answer; it reports TTL 0 (etcd's
        // answer for an unknown lease) as "lease not found".
        match client.lease_keep_alive(0x77).await {
            Err(Error::LeaseKeepAliveError(message)) => assert_eq!(message, "lease not found"),
            other => panic!("expected the TTL 0 answer, got {:?}", other.map(|_| ())),
        }
    });
}

/// Goal: keep-alive answers with the lease's TTL on a stream that serves many requests, and
/// TimeToLive reports the remaining and granted TTL.
#[test]
fn keep_alive_and_time_to_live() {
    with_client(|mut client| async move {
        let lease = client.lease_grant(30, None).await.unwrap().id();
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await.unwrap();
        for _ in 0..3 {
            keeper.keep_alive().await.unwrap();
            let answer = stream.message().await.unwrap().expect("an answer");
            assert_eq!((answer.id(), answer.ttl()), (lease, 30));
        }
        let ttl = client.lease_time_to_live(lease, None).await.unwrap();
        assert_eq!(ttl.granted_ttl(), 30);
        assert!((28..=30).contains(&ttl.ttl()), "remaining {}", ttl.ttl());
        assert!(ttl.keys().is_empty(), "keys only when asked");
    });
}

/// Goal: the lease's key list follows puts that attach, move (another lease), detach (lease
/// 0) and delete keys, through Put, Txn and DeleteRange.
#[test]
fn keys_attach_and_detach() {
    with_client(|mut client| async move {
        let one = client.lease_grant(100, None).await.unwrap().id();
        let two = client.lease_grant(100, None).await.unwrap().id();
        for key in ["k1", "k2", "k3", "k4"] {
            client
                .put(key, "v", Some(PutOptions::new().with_lease(one)))
                .await
                .unwrap();
        }
        assert_eq!(lease_keys(&mut client, one).await, ["k1", "k2", "k3", "k4"]);
        client
            .put("k1", "v", Some(PutOptions::new().with_lease(two)))
            .await
            .unwrap();
        client.put("k2", "v", None).await.unwrap();
        client.delete("k3", None).await.unwrap();
        // ignore_lease keeps the key on its lease.
        client
            .put("k4", "w", Some(PutOptions::new().with_ignore_lease()))
            .await
            .unwrap();
        let txn = Txn::new().and_then([TxnOp::put(
            "k5",
            "v",
            Some(PutOptions::new().with_lease(two)),
        )]);
        client.txn(txn).await.unwrap();
        assert_eq!(lease_keys(&mut client, one).await, ["k4"]);
        assert_eq!(lease_keys(&mut client, two).await, ["k1", "k5"]);
        let k4 = client.get("k4", None).await.unwrap();
        assert_eq!(k4.kvs()[0].lease(), one);
    });
}

/// Goal: Revoke deletes every attached key in one revision, watchers see one delete event per
/// key at that revision, other keys stay, and the lease is gone.
#[test]
fn revoke_deletes_keys_in_one_revision_and_watchers_see_it() {
    with_client(|mut client| async move {
        let lease = client.lease_grant(100, None).await.unwrap().id();
        for key in ["w/a", "w/b", "w/c"] {
            client
                .put(key, "v", Some(PutOptions::new().with_lease(lease)))
                .await
                .unwrap();
        }
        let kept = client.put("w/kept", "v", None).await.unwrap();
        let before = kept.header().unwrap().revision();
        let mut stream = client
            .watch(
                "w/",
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(before + 1),
                ),
            )
            .await
            .unwrap();
        let revoked = client.lease_revoke(lease).await.unwrap();
        assert_eq!(revoked.header().unwrap().revision(), before + 1);

        let mut deleted = Vec::new();
        while deleted.len() < 3 {
            let response = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("watch events within 10 s")
                .unwrap()
                .expect("the watch stays open");
            for event in response.events() {
                assert_eq!(event.event_type(), EventType::Delete);
                let kv = event.kv().unwrap();
                assert_eq!(kv.mod_revision(), before + 1);
                deleted.push(kv.key_str().unwrap().to_string());
            }
        }
        assert_eq!(deleted, ["w/a", "w/b", "w/c"]);

        let left = client
            .get("w/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(left.kvs().len(), 1);
        assert_eq!(left.kvs()[0].key(), b"w/kept");
        assert_eq!(
            client.lease_time_to_live(lease, None).await.unwrap().ttl(),
            -1
        );
        assert!(lease_ids(&mut client).await.is_empty());
    });
}

/// Goal: leases nobody keeps alive expire on their own: their keys are deleted within a
/// bounded wait after their TTL (2 s here; the lessor looks every 0.5 s), each lease's deletes
/// in a revision of its own (as etcd, one revoke per lease), seen by a watcher, and the leases
/// are gone.
#[test]
fn unrenewed_leases_expire_and_their_keys_go() {
    with_client(|mut client| async move {
        let start = client.put("marker", "", None).await.unwrap();
        let from = start.header().unwrap().revision() + 1;
        let mut stream = client
            .watch(
                "e/",
                Some(WatchOptions::new().with_prefix().with_start_revision(from)),
            )
            .await
            .unwrap();
        let mut leases = Vec::new();
        for n in 0..3 {
            let lease = client.lease_grant(2, None).await.unwrap().id();
            for key in ["a", "b"] {
                client
                    .put(
                        format!("e/{n}/{key}"),
                        "v",
                        Some(PutOptions::new().with_lease(lease)),
                    )
                    .await
                    .unwrap();
            }
            leases.push(lease);
        }
        let mut deletes = Vec::new();
        while deletes.len() < 6 {
            let response = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the expiry's deletes within 10 s of the 2 s TTL")
                .unwrap()
                .expect("the watch stays open");
            for event in response.events() {
                if event.event_type() == EventType::Delete {
                    let kv = event.kv().unwrap();
                    deletes.push((kv.mod_revision(), kv.key_str().unwrap().to_string()));
                }
            }
        }
        let left = client
            .get("e/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert!(left.kvs().is_empty());
        // Both keys of a lease share a revision; no two leases share one.
        for pair in deletes.chunks(2) {
            assert_eq!(pair[0].0, pair[1].0, "{deletes:?}");
            let prefix = |key: &str| key[..3].to_string();
            assert_eq!(prefix(&pair[0].1), prefix(&pair[1].1), "{deletes:?}");
        }
        let mut revisions: Vec<i64> = deletes.iter().map(|d| d.0).collect();
        revisions.dedup();
        assert_eq!(revisions.len(), 3, "{deletes:?}");
        for lease in leases {
            assert_eq!(
                client.lease_time_to_live(lease, None).await.unwrap().ttl(),
                -1
            );
        }
    });
}

/// Goal: a lease kept alive outlives its TTL (its keys stay), and expires once the
/// keep-alives stop.
#[test]
fn keep_alive_keeps_a_lease_past_its_ttl() {
    with_client(|mut client| async move {
        let lease = client.lease_grant(2, None).await.unwrap().id();
        client
            .put("held", "v", Some(PutOptions::new().with_lease(lease)))
            .await
            .unwrap();
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await.unwrap();
        let start = tokio::time::Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            keeper.keep_alive().await.unwrap();
            let answer = stream.message().await.unwrap().expect("an answer");
            assert_eq!(answer.ttl(), 2, "the lease is alive");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(client.get("held", None).await.unwrap().kvs().len(), 1);
        drop(keeper);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !client.get("held", None).await.unwrap().kvs().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Goal: a thousand leases expiring together are all revoked within a bounded wait, in the
/// lessor's bounded batches (500 a round, 16 per raft entry), one revision per lease — none
/// lost, none revoked twice.
#[test]
fn a_thousand_leases_expire_together() {
    with_client(|client| async move {
        const LEASES: usize = 1000;
        let mut client = client;
        let before = client.put("start", "", None).await.unwrap();
        let before = before.header().unwrap().revision();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..LEASES {
            let mut client = client.clone();
            tasks.spawn(async move {
                let lease = client.lease_grant(2, None).await.unwrap().id();
                client
                    .put(
                        format!("many/{n:04}"),
                        "v",
                        Some(PutOptions::new().with_lease(lease)),
                    )
                    .await
                    .unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = client
                .get(
                    "many/",
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await
                .unwrap();
            if left.count() == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} keys left 20 s after the writes",
                left.count()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(lease_ids(&mut client).await.is_empty());
        // One revision per put and one per revoked lease (grants take none): none lost, none
        // revoked twice.
        let now = client
            .get("any", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        assert_eq!(now - before, 2 * LEASES as i64);
    });
}
