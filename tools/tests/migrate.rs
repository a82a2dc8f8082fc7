//! `basalt-util migrate` against a snapshot saved from Debian's real etcd 3.4: basalt serves the
//! migrated data dir with every key, revision, version, lease, old read and compaction as etcd did,
//! and etcd's auth store (users with their passwords, roles, permissions, enabled).

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
    // An auth store: root, a reader of `a` only, then auth on.
    ok_at(client, &["user", "add", "root:rootpw"]);
    ok_at(client, &["user", "grant-role", "root", "root"]);
    ok_at(client, &["role", "add", "reader"]);
    ok_at(client, &["role", "grant-permission", "reader", "read", "a"]);
    ok_at(client, &["user", "add", "alice:alicepw"]);
    ok_at(client, &["user", "grant-role", "alice", "reader"]);
    ok_at(client, &["auth", "enable"]);
    let root = "--user=root:rootpw";
    let users_before = ok_at(client, &["user", "list", root]);
    let reader_before = ok_at(client, &["role", "get", "reader", root]);
    let file = dir.path().join("snap.db");
    ok_at(client, &["snapshot", "save", file.to_str().unwrap(), root]);
    let _ = etcd.kill();
    let _ = etcd.wait();

    let data_dir = dir.path().join("basalt");
    let output = Command::new(env!("CARGO_BIN_EXE_basalt-util"))
        .args(["migrate", "--from-etcd-snapshot", file.to_str().unwrap()])
        .arg(format!("--data-dir={}", data_dir.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // etcd stores no record for the root role (it is implicit, as in basalt).
    assert!(
        stderr.contains(r#""users":2"#) && stderr.contains(r#""roles":1"#),
        "{stderr}"
    );
    let member = Member::start(&data_dir, &[]);
    fn as_root<'a>(read: &[&'a str], root: &'a str) -> Vec<&'a str> {
        [read, &[root]].concat()
    }
    let after: Vec<_> = reads
        .iter()
        .map(|r| kvs(&member.ok(&as_root(r, root))))
        .collect();
    assert_eq!(before, after);
    let status: serde_json::Value =
        serde_json::from_str(&member.ok(&["get", "a", "-w", "json", root])).unwrap();
    assert_eq!(status["header"]["revision"], 7);
    // The auth store came along: enabled, the same users and role, etcd's password hashes.
    assert_eq!(member.ok(&["user", "list", root]), users_before);
    assert_eq!(member.ok(&["role", "get", "reader", root]), reader_before);
    let anonymous = member.etcdctl(&["get", "a"]);
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("etcdserver: user name is empty"),
        "{anonymous:?}"
    );
    assert!(member
        .ok(&["get", "a", "--user=alice:alicepw"])
        .contains('3'));
    let refused = member.etcdctl(&["put", "a", "4", "--user=alice:alicepw"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("etcdserver: permission denied"),
        "{refused:?}"
    );
    let wrong = member.etcdctl(&["get", "a", "--user=alice:nope"]);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("authentication failed"),
        "{wrong:?}"
    );
    let compacted = member.etcdctl(&["get", "a", "--rev=2", root]);
    assert!(String::from_utf8_lossy(&compacted.stderr)
        .contains("etcdserver: mvcc: required revision has been compacted"));
    assert!(member.ok(&["lease", "list", root]).contains(&lease));
}
