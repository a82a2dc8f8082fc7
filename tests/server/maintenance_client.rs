//! etcd's Maintenance and Cluster services against the real `basalt` binary, driven by the
//! `etcd-client` crate: every RPC and every error a single etcd 3.5 member answers, checked by
//! gRPC code and exact message, and alarms and member URLs checked to survive a restart.

use crate::support;

use etcd_client::{
    AlarmAction, AlarmOptions, AlarmType, Client, CompactionOptions, DowngradeOptions,
    MemberAddOptions, Txn, TxnOp,
};
use sha2::{Digest, Sha256};
use support::{assert_status, with_client, with_member, Basalt};

const NOSPACE: &str = "etcdserver: mvcc: database space exceeded";
async fn member_id(client: &mut Client) -> u64 {
    client.status().await.unwrap().header().unwrap().member_id()
}

async fn alarm(client: &mut Client, action: AlarmAction, member: u64) -> Vec<(u64, AlarmType)> {
    let mut options = AlarmOptions::new();
    options.with_member(member);
    let response = client
        .alarm(action, AlarmType::Nospace, Some(options))
        .await
        .unwrap();
    assert!(response.header().is_some(), "alarm answers carry a header");
    response
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect()
}

async fn alarm_list(client: &mut Client) -> Vec<(u64, AlarmType)> {
    let response = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    response
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect()
}

// ----- Alarm and quota ------------------------------------------------------------------------

/// Goal: a raised NOSPACE alarm puts the member in etcd's "capped" mode — Put and Txn with a
/// put are refused with RESOURCE_EXHAUSTED, reads, deletes, delete-only txns and compaction
/// still work — until it is disarmed; the alarm is stored, so a restart keeps it.
#[test]
fn nospace_alarm_caps_writes_until_disarmed_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let id = with_member(&basalt, |mut client| async move {
        let id = member_id(&mut client).await;
        assert_eq!(alarm_list(&mut client).await, vec![]);
        client.put("kept", "v", None).await.unwrap();
        let raised = alarm(&mut client, AlarmAction::Activate, id).await;
        assert_eq!(raised, vec![(id, AlarmType::Nospace)]);
        assert_eq!(alarm_list(&mut client).await, raised);
        let status = client.status().await.unwrap();
        assert_eq!(
            status.errors(),
            [format!("memberID:{id} alarm:NOSPACE ")],
            "Status lists raised alarms as etcd prints them"
        );

        assert_status(
            client.put("new", "v", None).await,
            "ResourceExhausted",
            NOSPACE,
        );
        let txn_put = Txn::new().and_then([TxnOp::put("new", "v", None)]);
        assert_status(client.txn(txn_put).await, "ResourceExhausted", NOSPACE);
        assert_eq!(client.get("kept", None).await.unwrap().kvs().len(), 1);
        let txn_delete = Txn::new().and_then([TxnOp::delete("kept", None)]);
        assert!(client.txn(txn_delete).await.unwrap().succeeded());
        client.put("kept", "v", None).await.unwrap_err();
        let revision = client
            .get("x", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        client
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        id
    });
    // The alarm is replicated state: it is stored with the data and a restart keeps it.
    let (data_dir, port) = basalt.kill_9();
    let basalt = Basalt::start_with(data_dir, port);
    with_member(&basalt, |mut client| async move {
        assert_eq!(
            alarm_list(&mut client).await,
            vec![(id, AlarmType::Nospace)]
        );
        assert_status(
            client.put("new", "v", None).await,
            "ResourceExhausted",
            NOSPACE,
        );
        // Disarming another member's alarm changes nothing and answers nothing.
        assert_eq!(
            alarm(&mut client, AlarmAction::Deactivate, id + 1).await,
            vec![]
        );
        let disarmed = alarm(&mut client, AlarmAction::Deactivate, id).await;
        assert_eq!(disarmed, vec![(id, AlarmType::Nospace)]);
        assert_eq!(alarm_list(&mut client).await, vec![]);
        assert!(client.status().await.unwrap().errors().is_empty());
        client.put("new", "v", None).await.unwrap();
    });
}

/// Goal: the backend quota refuses a write that would take the database to the quota, with
/// etcd's error, and raises NOSPACE for this member; after disarming, a write that fits the
/// quota passes again and one that does not re-raises the alarm.
#[test]
fn quota_raises_nospace_when_the_database_would_exceed_it() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = start_with_quota(dir.path(), "1000000");
    with_member(&basalt, |mut client| async move {
        let id = member_id(&mut client).await;
        let value = vec![b'v'; 150_000];
        let mut stored = 0;
        let refused = loop {
            match client
                .put(format!("big{stored}"), value.clone(), None)
                .await
            {
                Ok(_) => stored += 1,
                Err(error) => break error,
            }
            assert!(
                stored < 20,
                "a 1 MB quota must refuse well before 3 MB of puts"
            );
        };
        assert!(stored >= 2, "the first puts fit the quota");
        assert_status(Err::<(), _>(refused), "ResourceExhausted", NOSPACE);
        assert_eq!(
            alarm_list(&mut client).await,
            vec![(id, AlarmType::Nospace)]
        );
        let status = client.status().await.unwrap();
        assert!(status.db_size() < 1_000_000 + 150_000, "{status:?}");
        // Reads and deletes still work.
        let response = client.get("big0", None).await.unwrap();
        assert_eq!(response.kvs()[0].value().len(), 150_000);
        client.delete("big0", None).await.unwrap();

        alarm(&mut client, AlarmAction::Deactivate, id).await;
        client.put("small", "v", None).await.unwrap();
        assert_status(
            client.put("big-again", value.clone(), None).await,
            "ResourceExhausted",
            NOSPACE,
        );
        assert_eq!(
            alarm_list(&mut client).await,
            vec![(id, AlarmType::Nospace)]
        );
    });
}

/// A fresh member in `dir` with `--quota-backend-bytes` set to `bytes`.
fn start_with_quota(dir: &std::path::Path, bytes: &str) -> Basalt {
    Basalt::start_with_flags(
        dir.join("data"),
        support::free_port(),
        &["--quota-backend-bytes", bytes],
    )
}

/// Goal: a LeaseGrant is checked against the quota before it is proposed, as etcd's
/// quotaLeaseServer does: with a quota smaller than any database, the grant is refused with
/// "database space exceeded" and raises NOSPACE (apply alone would only refuse it once the
/// alarm is already raised).
#[test]
fn lease_grant_is_checked_against_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = start_with_quota(dir.path(), "1");
    with_member(&basalt, |mut client| async move {
        let id = member_id(&mut client).await;
        assert!(alarm_list(&mut client).await.is_empty());
        assert_status(
            client.lease_grant(60, None).await,
            "ResourceExhausted",
            NOSPACE,
        );
        assert_eq!(
            alarm_list(&mut client).await,
            vec![(id, AlarmType::Nospace)]
        );
    });
}

/// Goal: `/health` is etcd's: true on a healthy member; false with 503 and etcd's reason while
/// an alarm is raised, unless `?exclude=` names it; `?serializable=true` accepted; anything
/// but GET refused with 405. Method: a quota of 1 byte makes a LeaseGrant raise NOSPACE.
#[test]
fn health_reports_raised_alarms_as_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = start_with_quota(dir.path(), "1");
    let healthy = (200, r#"{"health":"true","reason":""}"#.to_string());
    assert_eq!(
        support::http_request(basalt.port, "GET", "/health"),
        healthy
    );
    assert_eq!(
        support::http_request(basalt.port, "GET", "/health?serializable=true"),
        healthy
    );
    assert_eq!(support::http_request(basalt.port, "POST", "/health").0, 405);
    with_member(&basalt, |mut client| async move {
        assert!(client.lease_grant(60, None).await.is_err());
    });
    assert_eq!(
        support::http_request(basalt.port, "GET", "/health"),
        (
            503,
            "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n".to_string()
        )
    );
    assert_eq!(
        support::http_request(
            basalt.port,
            "GET",
            "/health?exclude=NOSPACE&serializable=true"
        ),
        healthy
    );
}

/// Goal: `/livez` and `/readyz` as etcd 3.5.11+ serves them: `ok` when every check passes (the
/// check lines too under `?verbose`), 503 with the failing check's line while a CORRUPT alarm is
/// raised (readiness only: the process is still live), `?exclude=` skipping a check, one check
/// alone on its sub path, unknown sub paths 404, anything but GET 405.
#[test]
fn livez_and_readyz_name_their_checks_and_fail_on_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let get = |target: &str| support::http_request(basalt.port, "GET", target);
    let ok = (200, "ok\n".to_string());
    assert_eq!(get("/livez"), ok);
    assert_eq!(get("/readyz"), ok);
    assert_eq!(
        get("/readyz?verbose"),
        (
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n\
             [+]non_learner ok\nok\n"
                .to_string()
        )
    );
    assert_eq!(
        get("/livez?verbose"),
        (200, "[+]serializable_read ok\nok\n".to_string())
    );
    assert_eq!(
        get("/readyz/linearizable_read?verbose"),
        (200, "[+]linearizable_read ok\nok\n".to_string())
    );
    assert_eq!(get("/readyz/no_such_check").0, 404);
    assert_eq!(get("/livez/linearizable_read").0, 404);
    assert_eq!(support::http_request(basalt.port, "POST", "/readyz").0, 405);

    with_member(&basalt, |mut client| async move {
        let id = member_id(&mut client).await;
        let mut options = AlarmOptions::new();
        options.with_member(id);
        client
            .alarm(AlarmAction::Activate, AlarmType::Corrupt, Some(options))
            .await
            .unwrap();
    });
    assert_eq!(
        get("/readyz"),
        (
            503,
            "[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n\
             [+]linearizable_read ok\n[+]non_learner ok\n\n"
                .to_string()
        )
    );
    assert_eq!(get("/readyz/data_corruption").0, 503);
    assert_eq!(get("/readyz?exclude=data_corruption"), ok);
    assert_eq!(get("/livez"), ok);
}

// ----- Status, Hash, HashKV -------------------------------------------------------------------

/// Goal: Status fills what `etcdctl endpoint status` shows, as etcd does.
#[test]
fn status_reports_sizes_raft_indices_and_no_errors() {
    with_client(|mut client| async move {
        client.put("k", "v", None).await.unwrap();
        let status = client.status().await.unwrap();
        let header = status.header().unwrap();
        assert_eq!(status.leader(), header.member_id());
        assert!(
            status.db_size() > 0 && status.db_size() % 4096 == 0,
            "{status:?}"
        );
        assert!(
            status.raft_used_db_size() > 0 && status.raft_used_db_size() <= status.db_size(),
            "{status:?}"
        );
        assert!(status.raft_applied_index() >= 2, "{status:?}");
        assert!(
            status.raft_index() >= status.raft_applied_index(),
            "{status:?}"
        );
        assert!(!status.is_learner());
        assert!(status.errors().is_empty(), "{status:?}");
        assert_eq!(header.revision(), 2);
    });
}

/// Goal: Hash covers the whole store (it changes with any write and only then); HashKV hashes
/// the key space at a revision — the same answer later for the same revision — and refuses
/// compacted and future revisions with etcd's errors.
#[test]
fn hash_and_hash_kv_follow_the_data() {
    with_client(|mut client| async move {
        client.put("a", "1", None).await.unwrap();
        let first = client.hash().await.unwrap();
        assert_eq!(first.hash(), client.hash().await.unwrap().hash(), "stable");
        let at_a = client.hash_kv(0).await.unwrap();
        let revision_a = at_a.header().unwrap().revision();
        assert_eq!(at_a.hash_revision(), revision_a);
        assert_eq!(
            at_a.compact_version(),
            -1,
            "etcd's value before any compaction"
        );

        client.put("b", "2", None).await.unwrap();
        let second = client.hash().await.unwrap();
        assert_ne!(first.hash(), second.hash());
        assert_eq!(second.header().unwrap().revision(), revision_a + 1);
        let now = client.hash_kv(0).await.unwrap();
        assert_ne!(now.hash(), at_a.hash());
        let again = client.hash_kv(revision_a).await.unwrap();
        assert_eq!(
            again.hash(),
            at_a.hash(),
            "a past revision hashes as it did"
        );
        assert_eq!(again.hash_revision(), revision_a);
        assert_eq!(again.header().unwrap().revision(), revision_a + 1);

        assert_status(
            client.hash_kv(revision_a + 10).await,
            "OutOfRange",
            "etcdserver: mvcc: required revision is a future revision",
        );
        client.put("c", "3", None).await.unwrap();
        client
            .compact(
                revision_a + 1,
                Some(CompactionOptions::new().with_physical()),
            )
            .await
            .unwrap();
        assert_status(
            client.hash_kv(revision_a).await,
            "OutOfRange",
            "etcdserver: mvcc: required revision has been compacted",
        );
        assert_eq!(
            client.hash_kv(0).await.unwrap().compact_version(),
            revision_a + 1
        );
    });
}

// ----- Snapshot -------------------------------------------------------------------------------

/// Goal: Snapshot streams a consistent copy of the database at the revision it started from,
/// in chunks of at most 32 KiB counting down the remaining bytes, then a 32-byte SHA-256 of
/// the content; writes are not blocked while it streams, and the copy opens with the engine.
#[test]
fn snapshot_streams_a_consistent_copy_with_a_sha256_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let copy_path = dir.path().join("copy.db");
    let path = copy_path.clone();
    let revision = with_member(&basalt, |mut client| async move {
        for i in 0..40 {
            client
                .put(format!("key{i:02}"), vec![b'x'; 10_000], None)
                .await
                .unwrap();
        }
        let revision = client
            .get("key00", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let mut stream = client.snapshot().await.unwrap();
        let first = stream.message().await.unwrap().expect("a first chunk");
        // The stream holds its commit: a write now must not wait for it nor show in it.
        client.put("after", "snapshot", None).await.unwrap();
        let mut chunks = vec![first];
        while let Some(chunk) = stream.message().await.unwrap() {
            chunks.push(chunk);
        }
        let trailer = chunks.pop().expect("the checksum message");
        assert_eq!(trailer.remaining_bytes(), 0);
        assert_eq!(trailer.blob().len(), 32);
        let mut content = Vec::new();
        let total = chunks.iter().map(|c| c.blob().len()).sum::<usize>() as u64;
        for chunk in &chunks {
            assert!(chunk.blob().len() <= 32 * 1024);
            content.extend_from_slice(chunk.blob());
            assert_eq!(chunk.remaining_bytes(), total - content.len() as u64);
        }
        assert!(
            content.len() > 400_000,
            "40 values of 10 kB are in the copy"
        );
        assert_eq!(trailer.blob(), Sha256::digest(&content).as_slice());
        std::fs::write(&path, &content).unwrap();
        revision
    });
    let engine = basalt_engine::Engine::open(&copy_path).unwrap();
    engine.check().unwrap();
    let view = engine.read().unwrap();
    assert_eq!(view.current_revision(), revision);
    let get = |key: &str| {
        view.range(&basalt_engine::RangeRequest {
            key: key.into(),
            ..Default::default()
        })
        .unwrap()
        .count
    };
    assert_eq!(get("key39"), 1);
    assert_eq!(
        get("after"),
        0,
        "a write after the snapshot began is not in it"
    );
}

// ----- MoveLeader -----------------------------------------------------------------------------

/// Goal: on one member, moving leadership to itself succeeds at once and to anyone else is
/// etcd's "bad leader transferee".
#[test]
fn move_leader_to_self_succeeds_and_elsewhere_is_a_bad_transferee() {
    with_client(|mut client| async move {
        let id = member_id(&mut client).await;
        client.move_leader(id).await.unwrap();
        assert_status(
            client.move_leader(id + 1).await,
            "FailedPrecondition",
            "etcdserver: bad leader transferee",
        );
        assert_status(
            client.move_leader(0).await,
            "FailedPrecondition",
            "etcdserver: bad leader transferee",
        );
    });
}

// ----- Cluster --------------------------------------------------------------------------------

/// Goal: member remove / promote / add answer exactly as a one-member etcd 3.5 does, and a
/// learner can be added (the first step of growing a lone member).
#[test]
fn member_changes_a_single_member_cannot_make_are_refused_as_etcd_refuses_them() {
    with_client(|mut client| async move {
        let id = member_id(&mut client).await;
        let list = client.member_list().await.unwrap();
        assert_eq!(list.members().len(), 1);
        assert_eq!(list.members()[0].id(), id);
        assert_status(
            client.member_remove(id).await,
            "FailedPrecondition",
            "etcdserver: re-configuration failed due to not enough started members",
        );
        assert_status(
            client.member_remove(id + 1).await,
            "NotFound",
            "etcdserver: member not found",
        );
        assert_status(
            client.member_promote(id).await,
            "FailedPrecondition",
            "etcdserver: can only promote a learner member",
        );
        assert_status(
            client.member_promote(id + 1).await,
            "NotFound",
            "etcdserver: member not found",
        );
        assert_status(
            client
                .member_update(id + 1, ["http://10.0.0.9:2380".to_string()])
                .await,
            "NotFound",
            "etcdserver: member not found",
        );
        assert_status(
            // (the client adds "http://" to a URL without a scheme, so the port is what fails)
            client
                .member_add(["http://10.0.0.9".to_string()], None)
                .await,
            "InvalidArgument",
            "etcdserver: given member URLs are invalid",
        );
        let own = list.members()[0].peer_urls().to_vec();
        assert_status(
            client.member_add(own, None).await,
            "FailedPrecondition",
            "etcdserver: Peer URLs already exists",
        );
        // What a one-member cluster can do: take a learner (it does not count for quorum), as
        // etcd does; it is listed unstarted (no name) until it joins.
        let added = client
            .member_add(
                ["http://10.0.0.9:2380".to_string()],
                Some(MemberAddOptions::new().with_is_learner()),
            )
            .await
            .expect("a learner is added to a one-member cluster");
        let learner = added.member().expect("the added member").clone();
        assert!(learner.is_learner());
        assert_eq!(learner.peer_urls(), ["http://10.0.0.9:2380"]);
        let list = client.member_list().await.unwrap();
        let listed: Vec<(u64, bool, String)> = list
            .members()
            .iter()
            .map(|m| (m.id(), m.is_learner(), m.name().to_string()))
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(
            listed.contains(&(learner.id(), true, String::new())),
            "{listed:?}"
        );
        // A second learner is etcd's "too many learner members in cluster".
        assert_status(
            client
                .member_add(
                    ["http://10.0.0.10:2380".to_string()],
                    Some(MemberAddOptions::new().with_is_learner()),
                )
                .await,
            "FailedPrecondition",
            "etcdserver: too many learner members in cluster",
        );
    });
}

/// Goal: MemberUpdate of this member's peer URLs goes through raft, answers the new list, and
/// is stored: a restart with the old `--initial-advertise-peer-urls` keeps the new URLs.
#[test]
fn member_update_changes_peer_urls_durably() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let urls = vec![
        "http://10.0.0.7:2380".to_string(),
        "http://10.0.0.8:2380".to_string(),
    ];
    let expected = urls.clone();
    with_member(&basalt, |mut client| async move {
        let id = member_id(&mut client).await;
        let response = client.member_update(id, urls).await.unwrap();
        assert_eq!(response.members()[0].peer_urls(), expected.as_slice());
        assert!(response.header().is_some());
    });
    let (data_dir, port) = basalt.kill_9();
    let basalt = Basalt::start_with(data_dir, port);
    let expected = vec![
        "http://10.0.0.7:2380".to_string(),
        "http://10.0.0.8:2380".to_string(),
    ];
    with_member(&basalt, |mut client| async move {
        let list = client.member_list().await.unwrap();
        assert_eq!(list.members()[0].peer_urls(), expected.as_slice());
    });
}

/// Goal: a raised CORRUPT alarm refuses every write (etcd's corrupt applier) with DATA_LOSS
/// `etcdserver: corrupt cluster`, while reads work; disarming it lets writes through again.
#[test]
fn corrupt_alarm_refuses_every_write_until_disarmed() {
    with_client(|mut client| async move {
        let id = member_id(&mut client).await;
        client.put("k", "v", None).await.unwrap();
        let mut options = AlarmOptions::new();
        options.with_member(id);
        let raised = client
            .alarm(
                AlarmAction::Activate,
                AlarmType::Corrupt,
                Some(options.clone()),
            )
            .await
            .unwrap();
        assert_eq!(raised.alarms()[0].alarm(), AlarmType::Corrupt);
        let corrupt = "etcdserver: corrupt cluster";
        assert_status(client.put("k", "w", None).await, "DataLoss", corrupt);
        assert_status(client.delete("k", None).await, "DataLoss", corrupt);
        assert_eq!(client.get("k", None).await.unwrap().kvs()[0].value(), b"v");
        client
            .alarm(AlarmAction::Deactivate, AlarmType::Corrupt, Some(options))
            .await
            .unwrap();
        client.put("k", "w", None).await.unwrap();
    });
}

/// Goal: Downgrade answers as etcd 3.5 does when the cluster cannot be downgraded. Basalt
/// reports etcd 3.5 but its data is not etcd's, so no target is possible: VALIDATE and ENABLE
/// of etcd 3.5's one allowed target (3.4) and of any other get etcd's "invalid downgrade
/// target version", a malformed target gets the format error first, CANCEL finds no job, and
/// the refused ENABLE left nothing in flight.
#[test]
fn downgrade_is_refused_as_etcd_refuses_an_impossible_target() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    with_member(&basalt, |client| async move {
        let mut client = client.maintenance_client();
        let invalid = "etcdserver: invalid downgrade target version";
        for target in ["3.4", "3.4.0", "3.5", "3.6.1"] {
            assert_status(
                client
                    .downgrade(DowngradeOptions::Validate(target.to_string()))
                    .await,
                "InvalidArgument",
                invalid,
            );
            assert_status(
                client
                    .downgrade(DowngradeOptions::Enable(target.to_string()))
                    .await,
                "InvalidArgument",
                invalid,
            );
        }
        for malformed in ["v3.4", "3", ""] {
            assert_status(
                client
                    .downgrade(DowngradeOptions::Enable(malformed.to_string()))
                    .await,
                "InvalidArgument",
                "etcdserver: wrong downgrade target version format",
            );
        }
        assert_status(
            client.downgrade(DowngradeOptions::Cancel).await,
            "FailedPrecondition",
            "etcdserver: no inflight downgrade job",
        );
    });
}
