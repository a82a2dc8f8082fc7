//! etcd's Lock and Election services (v3lockpb, v3electionpb) against the real `basalt`
//! binary, driven by the `etcd-client` crate's `lock`/`unlock` and
//! `campaign`/`proclaim`/`leader`/`observe`/`resign`: competing callers serialize, a holder
//! whose lease is revoked passes on to the waiter, and the errors carry etcd's codes and texts.

use crate::support;

use std::time::Duration;

use etcd_client::{Client, GetOptions, LeaderKey, LockOptions, ProclaimOptions, ResignOptions};
use support::{assert_status, with_client};

/// Bound on waiting for a condition the server must reach.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

async fn lease(client: &mut Client) -> i64 {
    client.lease_grant(60, None).await.unwrap().id()
}

/// The keys under `prefix`, oldest first.
async fn keys_under(client: &mut Client, prefix: &str) -> Vec<String> {
    let options = GetOptions::new().with_prefix().with_sort(
        etcd_client::SortTarget::Create,
        etcd_client::SortOrder::Ascend,
    );
    client
        .get(prefix, Some(options))
        .await
        .unwrap()
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect()
}

/// Waits (bounded) until `prefix` holds `count` keys: a waiter has joined the line.
async fn wait_for_keys(client: &mut Client, prefix: &str, count: usize) {
    tokio::time::timeout(WAIT_LIMIT, async {
        while keys_under(client, prefix).await.len() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{prefix} never held {count} keys"));
}

fn lock_with(lease: i64) -> Option<LockOptions> {
    Some(LockOptions::new().with_lease(lease))
}

/// Goal: the lock goes to one caller at a time, in arrival order. Method: the first Lock
/// returns at once with the key `<name>/<lease hex>`; a second Lock with another lease joins the
/// line (its key appears) and does not return until the first unlocks.
#[test]
fn competing_lockers_serialize() {
    with_client(|mut client| async move {
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);
        let held = client.lock("job", lock_with(first)).await.unwrap();
        assert_eq!(held.key(), format!("job/{first:x}").as_bytes());
        let header = held.header().unwrap();
        assert!(header.revision() > 0 && header.member_id() != 0);

        let mut waiter_client = client.clone();
        let waiter =
            tokio::spawn(async move { waiter_client.lock("job", lock_with(second)).await });
        wait_for_keys(&mut client, "job/", 2).await;
        assert!(!waiter.is_finished(), "the second locker must wait");

        client.unlock(held.key()).await.unwrap();
        let acquired = tokio::time::timeout(WAIT_LIMIT, waiter)
            .await
            .expect("the waiter acquires once the holder unlocks")
            .unwrap()
            .unwrap();
        assert_eq!(acquired.key(), format!("job/{second:x}").as_bytes());
        assert_eq!(
            keys_under(&mut client, "job/").await,
            vec![format!("job/{second:x}")]
        );
        // Locking again with a lease that holds returns the same key at once.
        let again = client.lock("job", lock_with(second)).await.unwrap();
        assert_eq!(again.key(), acquired.key());
    });
}

/// Goal: a lock whose holder's lease ends passes to the waiter. Method: revoke the holder's
/// lease while a second locker waits; the waiter returns and the holder's key is gone.
#[test]
fn revoked_holder_passes_the_lock_to_the_waiter() {
    with_client(|mut client| async move {
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);
        client.lock("res", lock_with(first)).await.unwrap();
        let mut waiter_client = client.clone();
        let waiter =
            tokio::spawn(async move { waiter_client.lock("res", lock_with(second)).await });
        wait_for_keys(&mut client, "res/", 2).await;
        assert!(!waiter.is_finished());

        client.lease_revoke(first).await.unwrap();
        let acquired = tokio::time::timeout(WAIT_LIMIT, waiter)
            .await
            .expect("the waiter acquires once the holder's lease is revoked")
            .unwrap()
            .unwrap();
        assert_eq!(acquired.key(), format!("res/{second:x}").as_bytes());
        assert_eq!(
            keys_under(&mut client, "res/").await,
            vec![format!("res/{second:x}")]
        );
    });
}

/// Goal: Lock and Unlock refuse bad input as etcd does, a waiter whose own lease ends stops
/// waiting with etcd's mutex error, and Lock without a lease grants one (etcd's 60 s session).
#[test]
fn lock_errors_and_session_lease() {
    with_client(|mut client| async move {
        assert_status(
            client.lock("x", lock_with(0x7777)).await,
            "NotFound",
            "etcdserver: requested lease not found",
        );
        assert_status(
            client.unlock("").await,
            "InvalidArgument",
            "etcdserver: key is not provided",
        );
        // Unlocking a key that is not there is no error.
        client.unlock("x/none").await.unwrap();

        let holder = lease(&mut client).await;
        client.lock("x", lock_with(holder)).await.unwrap();
        let waiting = lease(&mut client).await;
        let mut waiter_client = client.clone();
        let waiter = tokio::spawn(async move { waiter_client.lock("x", lock_with(waiting)).await });
        wait_for_keys(&mut client, "x/", 2).await;
        client.lease_revoke(waiting).await.unwrap();
        let ended = tokio::time::timeout(WAIT_LIMIT, waiter)
            .await
            .expect("a waiter whose lease ends stops waiting")
            .unwrap();
        assert_status(ended, "Unknown", "mutex: session is expired");

        let granted = client.lock("fresh", None).await.unwrap();
        let key = std::str::from_utf8(granted.key()).unwrap();
        let id = i64::from_str_radix(key.strip_prefix("fresh/").unwrap(), 16).unwrap();
        let ttl = client.lease_time_to_live(id, None).await.unwrap();
        assert_eq!(
            ttl.granted_ttl(),
            60,
            "Lock without a lease grants etcd's session TTL"
        );
    });
}

/// Goal: an election has one leader at a time and its value changes only by its leader.
/// Method: Leader with no campaigner fails; Campaign wins at once and Leader shows its value;
/// Proclaim changes it; a second campaigner waits until the first resigns, then leads; the
/// first's leader key can no longer proclaim; the leader key is required.
#[test]
fn campaign_leader_proclaim_resign() {
    with_client(|mut client| async move {
        assert_status(
            client.leader("vote").await,
            "Unknown",
            "election: no leader",
        );
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);

        let won = client.campaign("vote", "a1", first).await.unwrap();
        let first_key = won.leader().unwrap().clone();
        assert_eq!(first_key.name(), b"vote");
        assert_eq!(first_key.key(), format!("vote/{first:x}").as_bytes());
        assert_eq!(first_key.lease(), first);
        assert_eq!(first_key.rev(), won.header().unwrap().revision());
        let leader = client.leader("vote").await.unwrap();
        assert_eq!(leader.kv().unwrap().value(), b"a1");
        // Campaigning again with the same lease is the same leadership, with the new value.
        let again = client.campaign("vote", "a1b", first).await.unwrap();
        assert_eq!(again.leader().unwrap().rev(), first_key.rev());
        let leader = client.leader("vote").await.unwrap();
        assert_eq!(leader.kv().unwrap().value(), b"a1b");

        let proclaimed = client
            .proclaim(
                "a2",
                Some(ProclaimOptions::new().with_leader(first_key.clone())),
            )
            .await
            .unwrap();
        let leader = client.leader("vote").await.unwrap();
        assert_eq!(leader.kv().unwrap().value(), b"a2");
        assert_eq!(
            leader.kv().unwrap().mod_revision(),
            proclaimed.header().unwrap().revision()
        );

        let mut second_client = client.clone();
        let second_campaign =
            tokio::spawn(async move { second_client.campaign("vote", "b1", second).await });
        wait_for_keys(&mut client, "vote/", 2).await;
        assert!(
            !second_campaign.is_finished(),
            "the second campaigner waits"
        );

        client
            .resign(Some(ResignOptions::new().with_leader(first_key.clone())))
            .await
            .unwrap();
        let second_won = tokio::time::timeout(WAIT_LIMIT, second_campaign)
            .await
            .expect("the second campaigner leads once the first resigns")
            .unwrap()
            .unwrap();
        assert_eq!(
            second_won.leader().unwrap().key(),
            format!("vote/{second:x}").as_bytes()
        );
        let leader = client.leader("vote").await.unwrap();
        assert_eq!(leader.kv().unwrap().value(), b"b1");

        assert_status(
            client
                .proclaim(
                    "stale",
                    Some(ProclaimOptions::new().with_leader(first_key.clone())),
                )
                .await,
            "Unknown",
            "election: not leader",
        );
        // Resigning a leadership that already ended is no error, and changes nothing.
        client
            .resign(Some(ResignOptions::new().with_leader(first_key)))
            .await
            .unwrap();
        assert_eq!(
            client.leader("vote").await.unwrap().kv().unwrap().value(),
            b"b1"
        );
        assert_status(
            client.proclaim("v", None).await,
            "Unknown",
            r#""leader" field must be provided"#,
        );
        assert_status(
            client.resign(None).await,
            "Unknown",
            r#""leader" field must be provided"#,
        );
        let forged = LeaderKey::new()
            .with_name("vote")
            .with_key(format!("vote/{second:x}"))
            .with_rev(1)
            .with_lease(second);
        assert_status(
            client
                .proclaim("forged", Some(ProclaimOptions::new().with_leader(forged)))
                .await,
            "Unknown",
            "election: not leader",
        );
    });
}

/// Goal: Observe streams every leader value, across a change of leader. Method: observe an
/// election nobody leads (like grpc-go, the server sends the response headers with the first
/// message, so the client's `observe` returns only then: it runs in a task that forwards what it
/// sees), then campaign, proclaim, and revoke the leader's lease while a second campaigner
/// waits: the stream shows a1, a2, then b1. Each step waits for the previous value, and the
/// observer's watch starts right after the value it sent, so none can be missed.
#[test]
fn observe_streams_leader_changes() {
    with_client(|mut client| async move {
        let (seen_tx, mut seen) = tokio::sync::mpsc::channel(8);
        let mut observer_client = client.clone();
        let observer = tokio::spawn(async move {
            let mut stream = observer_client.observe("obs").await.unwrap();
            while let Some(next) = stream.message().await.unwrap() {
                let kv = next.kv().unwrap();
                assert!(next.header().unwrap().revision() >= kv.mod_revision());
                if seen_tx
                    .send(kv.value_str().unwrap().to_string())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);
        let won = client.campaign("obs", "a1", first).await.unwrap();
        assert_eq!(next_seen(&mut seen).await, "a1");
        let first_key = won.leader().unwrap().clone();
        client
            .proclaim("a2", Some(ProclaimOptions::new().with_leader(first_key)))
            .await
            .unwrap();
        assert_eq!(next_seen(&mut seen).await, "a2");

        let mut second_client = client.clone();
        let second_campaign =
            tokio::spawn(async move { second_client.campaign("obs", "b1", second).await });
        wait_for_keys(&mut client, "obs/", 2).await;
        client.lease_revoke(first).await.unwrap();
        assert_eq!(next_seen(&mut seen).await, "b1");
        tokio::time::timeout(WAIT_LIMIT, second_campaign)
            .await
            .expect("the second campaigner leads once the first lease is revoked")
            .unwrap()
            .unwrap();
        observer.abort();
    });
}

/// The next value the observer task saw, within the wait limit.
async fn next_seen(seen: &mut tokio::sync::mpsc::Receiver<String>) -> String {
    tokio::time::timeout(WAIT_LIMIT, seen.recv())
        .await
        .expect("observe streams each leader value")
        .expect("the stream stays open")
}

/// Goal: a Lock whose client gives up takes its key back out of the line, as etcd unlocks
/// when the call's context ends; otherwise it would acquire later, for nobody, and hold the
/// lock until its lease ended. Method: a client with a short per-request timeout (tonic resets
/// the stream when it fires) waits behind a holder; after its error, its key is gone while
/// the holder still holds.
#[test]
fn abandoned_lock_leaves_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = support::Basalt::start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = Client::connect([basalt.endpoint()], None).await.unwrap();
        let options = etcd_client::ConnectOptions::new().with_timeout(Duration::from_millis(300));
        let mut impatient = Client::connect([basalt.endpoint()], Some(options))
            .await
            .unwrap();
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);
        client.lock("gate", lock_with(first)).await.unwrap();
        assert!(
            impatient.lock("gate", lock_with(second)).await.is_err(),
            "the lock is held: the impatient client's call times out"
        );
        wait_for_keys(&mut client, "gate/", 1).await;
        assert_eq!(
            keys_under(&mut client, "gate/").await,
            vec![format!("gate/{first:x}")]
        );
    });
}

/// Goal: the lock excludes across connections served on different cores (each core waits on
/// its own watch hub). Method: with 4 executors, 8 connections each increment a counter 5 times
/// by an unguarded read-then-write inside the lock; a lost update would leave less than 40.
#[test]
fn lock_excludes_across_cores() {
    const LOCKERS: usize = 8;
    const ROUNDS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let basalt = support::Basalt::start_with_flags(
        dir.path().join("data"),
        support::free_port(),
        &["--cores", "4"],
    );
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut lockers = Vec::new();
        for _ in 0..LOCKERS {
            let mut client = Client::connect([endpoint.clone()], None).await.unwrap();
            lockers.push(tokio::spawn(async move {
                let id = lease(&mut client).await;
                for _ in 0..ROUNDS {
                    let held = client.lock("counter-lock", lock_with(id)).await.unwrap();
                    let current = client.get("counter", None).await.unwrap();
                    let value: usize = current
                        .kvs()
                        .first()
                        .map_or(0, |kv| kv.value_str().unwrap().parse().unwrap());
                    client
                        .put("counter", (value + 1).to_string(), None)
                        .await
                        .unwrap();
                    client.unlock(held.key()).await.unwrap();
                }
            }));
        }
        tokio::time::timeout(Duration::from_secs(60), async {
            for locker in lockers {
                locker.await.unwrap();
            }
        })
        .await
        .expect("every locker finished within the limit");
        let mut client = Client::connect([endpoint.clone()], None).await.unwrap();
        let counter = client.get("counter", None).await.unwrap();
        assert_eq!(
            counter.kvs()[0].value_str().unwrap(),
            (LOCKERS * ROUNDS).to_string()
        );
        assert!(keys_under(&mut client, "counter-lock/").await.is_empty());
    });
}

/// Goal: Lock and Campaign write keys, so a raised NOSPACE alarm refuses them as it refuses
/// Put, while Unlock and Resign (deletes) still release. Method: lock and campaign, raise the
/// alarm, try again with other leases, then release the first ones.
#[test]
fn nospace_alarm_refuses_new_lockers_and_campaigners() {
    with_client(|mut client| async move {
        const NOSPACE: &str = "etcdserver: mvcc: database space exceeded";
        let (first, second) = (lease(&mut client).await, lease(&mut client).await);
        let held = client.lock("cap", lock_with(first)).await.unwrap();
        let won = client.campaign("capvote", "v", first).await.unwrap();
        let member = client.status().await.unwrap().header().unwrap().member_id();
        let mut options = etcd_client::AlarmOptions::new();
        options.with_member(member);
        client
            .alarm(
                etcd_client::AlarmAction::Activate,
                etcd_client::AlarmType::Nospace,
                Some(options),
            )
            .await
            .unwrap();

        assert_status(
            client.lock("cap", lock_with(second)).await,
            "ResourceExhausted",
            NOSPACE,
        );
        assert_status(
            client.campaign("capvote", "w", second).await,
            "ResourceExhausted",
            NOSPACE,
        );
        client.unlock(held.key()).await.unwrap();
        client
            .resign(Some(
                ResignOptions::new().with_leader(won.leader().unwrap().clone()),
            ))
            .await
            .unwrap();
        assert!(keys_under(&mut client, "cap/").await.is_empty());
        assert!(keys_under(&mut client, "capvote/").await.is_empty());
    });
}
