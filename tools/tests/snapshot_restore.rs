//! `basalt-util` against real files: a snapshot saved by Debian's etcdctl from a running
//! basalt, its status, a restore into a new data directory that a basalt then serves with
//! every key at its revision, a restore into the data directories of a new three-member
//! cluster, and offline check and defrag (refused while a member runs).

use std::process::{Command, Output};

mod support;

use support::{free_port, Member, Spawned};

fn util(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt-util"))
        .args(args)
        .output()
        .unwrap()
}

fn util_ok(args: &[&str]) -> (String, String) {
    let output = util(args);
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert!(output.status.success(), "basalt-util {args:?}: {stderr}");
    (stdout, stderr)
}

#[track_caller]
fn util_fails(args: &[&str]) -> String {
    let output = util(args);
    assert_eq!(output.status.code(), Some(1), "basalt-util {args:?}");
    String::from_utf8(output.stderr).unwrap()
}

/// `(value, mod_revision)` of `key` through etcdctl's JSON (values are base64 there).
fn get(member: &Member, key: &str) -> (String, i64) {
    let json: serde_json::Value =
        serde_json::from_str(&member.ok(&["get", key, "-w", "json"])).unwrap();
    let kv = &json["kvs"][0];
    let value = kv["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {json}"));
    (
        String::from_utf8(decode_base64(value)).unwrap(),
        kv["mod_revision"].as_i64().unwrap(),
    )
}

fn decode_base64(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = alphabet.iter().position(|&a| a == byte).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn a_saved_snapshot_restores_into_a_new_member_with_every_key_at_its_revision() {
    let dir = tempfile::tempdir().unwrap();
    let old_peer = format!("http://127.0.0.1:{}", free_port());
    let old = Member::start(
        &dir.path().join("old"),
        &[format!("--listen-peer-urls={old_peer}")],
    );
    old.ok(&["put", "a", "1"]);
    old.ok(&["put", "b", "2"]);
    old.ok(&["put", "a", "3"]);
    let lease = old.ok(&["lease", "grant", "600"]);
    let lease_id = lease.split_whitespace().nth(1).unwrap().to_string();
    old.ok(&["put", "leased", "x", "--lease", &lease_id]);
    // Auth state is replicated state in the database: it travels with the snapshot.
    old.ok(&["user", "add", "carol:pw"]);
    old.ok(&["role", "add", "viewer"]);
    old.ok(&["role", "grant-permission", "viewer", "read", "a"]);
    old.ok(&["user", "grant-role", "carol", "viewer"]);
    let before: Vec<(String, i64)> = ["a", "b", "leased"].iter().map(|k| get(&old, k)).collect();
    let snapshot = dir.path().join("snap.db");
    old.ok(&["snapshot", "save", snapshot.to_str().unwrap()]);
    let revision_saved = before.iter().map(|(_, rev)| *rev).max().unwrap();
    drop(old);

    let (status, _) = util_ok(&[
        "snapshot",
        "status",
        snapshot.to_str().unwrap(),
        "-w",
        "json",
    ]);
    let status: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(
        status["revision"].as_i64(),
        Some(revision_saved),
        "{status}"
    );
    assert!(status["totalKey"].as_u64().unwrap() >= 3, "{status}");
    assert_eq!(
        status["totalSize"].as_u64().unwrap() + 32,
        std::fs::metadata(&snapshot).unwrap().len(),
        "the size is the database's, without the hash"
    );

    let new_dir = dir.path().join("new");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let cluster = [
        "--name=restored".to_string(),
        format!("--initial-cluster=restored={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        "--initial-cluster-token=restore-test".to_string(),
    ];
    let mut restore: Vec<String> = vec![
        "snapshot".into(),
        "restore".into(),
        snapshot.display().to_string(),
        format!("--data-dir={}", new_dir.display()),
    ];
    restore.extend(cluster.iter().cloned());
    let restore: Vec<&str> = restore.iter().map(String::as_str).collect();
    let (_, said) = util_ok(&restore);
    let said: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    let member_id = said["member-id"].as_str().unwrap().to_string();
    // A data directory is never overwritten.
    assert_eq!(
        util_fails(&restore).trim(),
        format!("Error: data-dir {:?} exists", new_dir.display().to_string())
    );

    let mut flags = cluster.to_vec();
    flags.push(format!("--listen-peer-urls={peer}"));
    let new = Member::start(&new_dir, &flags);
    for (key, expected) in ["a", "b", "leased"].iter().zip(&before) {
        assert_eq!(&get(&new, key), expected, "{key}");
    }
    // The lease came along, with its key.
    let leases = new.ok(&["lease", "list"]);
    assert!(leases.contains(&lease_id), "{leases}");
    // Users and roles came along.
    assert_eq!(new.ok(&["user", "list"]), "carol\n");
    assert_eq!(
        new.ok(&["user", "get", "carol"]),
        "User: carol\nRoles: viewer\n"
    );
    assert_eq!(
        new.ok(&["role", "get", "viewer"]),
        "Role viewer\nKV Read:\n\ta\nKV Write:\n"
    );
    // Writes go on from the snapshot's revision.
    new.ok(&["put", "c", "4"]);
    assert_eq!(get(&new, "c").1, revision_saved + 1);
    // The member is the restore's, not the old one.
    let members = new.ok(&["member", "list"]);
    assert_eq!(members.lines().count(), 1, "{members}");
    assert!(
        members.starts_with(&format!("{member_id}, started, restored, {peer}")),
        "{members}"
    );
    // Offline tools refuse a database a member is serving.
    let refused = util_fails(&["defrag", &format!("--data-dir={}", new_dir.display())]);
    assert!(refused.contains("is in use"), "{refused}");
    drop(new);

    let (checked, _) = util_ok(&["check", &format!("--data-dir={}", new_dir.display())]);
    let checked: serde_json::Value = serde_json::from_str(checked.trim()).unwrap();
    // The database holds at least the snapshot; the put after it may still be only in the WAL
    // (the member was killed, and the database is synced once a second).
    assert!(
        checked["revision"].as_i64().unwrap() >= revision_saved,
        "{checked}"
    );
    let (defragged, _) = util_ok(&["defrag", &format!("--data-dir={}", new_dir.display())]);
    assert_eq!(
        defragged.trim(),
        format!("Finished defragmenting etcd data[{}]", new_dir.display())
    );
    // After the offline defrag the member serves everything again, the WAL replayed on top.
    let again = Member::start(&new_dir, &flags);
    for (key, expected) in ["a", "b", "leased"].iter().zip(&before) {
        assert_eq!(&get(&again, key), expected, "{key}");
    }
    assert_eq!(get(&again, "c"), ("4".to_string(), revision_saved + 1));
}

/// Goal: one snapshot restored for each member of a new three-member cluster (as etcdctl 3.4
/// restores for several members: the same --initial-cluster and --initial-cluster-token,
/// each with its own --name, --initial-advertise-peer-urls and --data-dir) starts as one
/// cluster holding the snapshot's keys. Method: save a snapshot from a lone member, restore
/// it three times, start the three together with the restore's flags, then read every key
/// through every member (linearizable reads: through raft), check that they list the three
/// member IDs the restores announced, and that a write through one is read through the others.
#[test]
fn a_snapshot_restores_into_the_members_of_a_new_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let old = Member::start(&dir.path().join("old"), &[]);
    old.ok(&["put", "a", "1"]);
    old.ok(&["put", "b", "2"]);
    old.ok(&["put", "a", "3"]);
    let before: Vec<(String, i64)> = ["a", "b"].iter().map(|k| get(&old, k)).collect();
    let snapshot = dir.path().join("snap.db");
    old.ok(&["snapshot", "save", snapshot.to_str().unwrap()]);
    drop(old);

    let peers: Vec<String> = (0..3)
        .map(|_| format!("http://127.0.0.1:{}", free_port()))
        .collect();
    let initial_cluster = (0..3)
        .map(|i| format!("m{i}={}", peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut member_ids = Vec::new();
    let mut spawned: Vec<Spawned> = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let data_dir = dir.path().join(format!("m{i}"));
        let cluster = [
            format!("--name=m{i}"),
            format!("--initial-cluster={initial_cluster}"),
            format!("--initial-advertise-peer-urls={peer}"),
            "--initial-cluster-token=restored-three".to_string(),
        ];
        let mut restore: Vec<String> = vec![
            "snapshot".into(),
            "restore".into(),
            snapshot.display().to_string(),
            format!("--data-dir={}", data_dir.display()),
        ];
        restore.extend(cluster.iter().cloned());
        let restore: Vec<&str> = restore.iter().map(String::as_str).collect();
        let (_, said) = util_ok(&restore);
        let said: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
        member_ids.push(said["member-id"].as_str().unwrap().to_string());
        let mut flags = cluster.to_vec();
        flags.push(format!("--listen-peer-urls={peer}"));
        spawned.push(Member::spawn(&data_dir, &flags));
    }
    let mut distinct = member_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{member_ids:?}");

    let members: Vec<Member> = spawned.into_iter().map(Spawned::wait_ready).collect();
    for member in &members {
        for (key, expected) in ["a", "b"].iter().zip(&before) {
            assert_eq!(&get(member, key), expected, "{key}");
        }
        let listed = member.ok(&["member", "list"]);
        assert_eq!(listed.lines().count(), 3, "{listed}");
        for id in &member_ids {
            assert!(listed.contains(&format!("{id}, started, ")), "{listed}");
        }
    }
    let revision_saved = before.iter().map(|(_, rev)| *rev).max().unwrap();
    members[0].ok(&["put", "c", "4"]);
    for member in &members[1..] {
        assert_eq!(get(member, "c"), ("4".to_string(), revision_saved + 1));
    }
}

#[test]
fn a_damaged_or_unhashed_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(
        &dir.path().join("member"),
        &[format!(
            "--listen-peer-urls=http://127.0.0.1:{}",
            free_port()
        )],
    );
    member.ok(&["put", "k", "v"]);
    let snapshot = dir.path().join("snap.db");
    member.ok(&["snapshot", "save", snapshot.to_str().unwrap()]);
    drop(member);
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = dir.path().join("restored");
    let error = util_fails(&[
        "snapshot",
        "restore",
        damaged.to_str().unwrap(),
        &format!("--data-dir={}", target.display()),
    ]);
    assert!(error.starts_with("Error: expected sha256 ["), "{error}");
    assert!(!target.exists(), "nothing is left behind");

    // The bare database (as copied from a data directory) needs --skip-hash-check.
    let bare = dir.path().join("bare.db");
    std::fs::write(&bare, {
        let mut whole = std::fs::read(&snapshot).unwrap();
        whole.truncate(whole.len() - 32);
        whole
    })
    .unwrap();
    let error = util_fails(&[
        "snapshot",
        "restore",
        bare.to_str().unwrap(),
        &format!("--data-dir={}", target.display()),
    ]);
    assert_eq!(
        error.trim(),
        "Error: snapshot missing hash but --skip-hash-check=false"
    );
    util_ok(&[
        "snapshot",
        "restore",
        bare.to_str().unwrap(),
        &format!("--data-dir={}", target.display()),
        "--skip-hash-check",
    ]);
    assert!(target.join("member/snap/db").is_file());
}
