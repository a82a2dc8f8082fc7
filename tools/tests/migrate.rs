//! `basalt-util migrate` against a snapshot saved from Debian's real etcd 3.4: basalt serves the
//! migrated data dir with every key, revision, version, lease, old read and compaction as etcd did.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;

use support::{free_port, Member, START_LIMIT};

fn etcdctl_at(port: u16, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("run etcdctl")
}

fn ok_at(port: u16, args: &[&str]) -> String {
    let output = etcdctl_at(port, args);
    assert!(output.status.success(), "etcdctl {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The `kvs` of `get -w json` (the header differs between the clusters).
fn kvs(json: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["kvs"].clone()
}

#[test]
fn an_etcd_snapshot_migrates_with_every_revision_lease_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let peer_url = format!("http://127.0.0.1:{peer}");
    let client_url = format!("http://127.0.0.1:{client}");
    let mut etcd = Command::new("/usr/bin/etcd")
        .arg(format!("--data-dir={}", dir.path().join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=default={peer_url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start /usr/bin/etcd (Debian's etcd-server)");
    let deadline = std::time::Instant::now() + START_LIMIT;
    while !etcdctl_at(client, &["endpoint", "health"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "etcd not healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok_at(client, &["put", "a", "1"]);
    ok_at(client, &["put", "a", "2"]);
    ok_at(client, &["put", "b", "x"]);
    let grant = ok_at(client, &["lease", "grant", "300"]);
    let lease = grant.split_whitespace().nth(1).unwrap().to_string();
    ok_at(client, &["put", "l", "v", &format!("--lease={lease}")]);
    ok_at(client, &["del", "b"]);
    ok_at(client, &["compact", "3"]);
    ok_at(client, &["put", "a", "3"]);
    let reads: [&[&str]; 4] = [
        &["get", "a", "-w", "json"],
        &["get", "l", "-w", "json"],
        &["get", "a", "--rev=4", "-w", "json"],
        &["get", "", "--prefix", "--rev=5", "-w", "json"],
    ];
    let before: Vec<_> = reads.iter().map(|r| kvs(&ok_at(client, r))).collect();
    let file = dir.path().join("snap.db");
    ok_at(client, &["snapshot", "save", file.to_str().unwrap()]);
    let _ = etcd.kill();
    let _ = etcd.wait();

    let data_dir = dir.path().join("basalt");
    let output = Command::new(env!("CARGO_BIN_EXE_basalt-util"))
        .args(["migrate", "--from-etcd-snapshot", file.to_str().unwrap()])
        .arg(format!("--data-dir={}", data_dir.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let member = Member::start(&data_dir, &[]);
    let after: Vec<_> = reads.iter().map(|r| kvs(&member.ok(r))).collect();
    assert_eq!(before, after);
    let status: serde_json::Value =
        serde_json::from_str(&member.ok(&["get", "a", "-w", "json"])).unwrap();
    assert_eq!(status["header"]["revision"], 7);
    let compacted = member.etcdctl(&["get", "a", "--rev=2"]);
    assert!(String::from_utf8_lossy(&compacted.stderr)
        .contains("etcdserver: mvcc: required revision has been compacted"));
    assert!(member.ok(&["lease", "list"]).contains(&lease));
}
