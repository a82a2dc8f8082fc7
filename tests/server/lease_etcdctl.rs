//! Debian's etcdctl 3.4 lease commands, and its `lock` and `elect` (etcd's concurrency recipes:
//! a lease, a Txn creating a key under it, a Watch on the key before it) against the real
//! `basalt` binary.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use support::{find_etcdctl, Basalt};

/// The hex lease id etcdctl prints in "lease <id> granted with TTL(...)".
fn granted_id(output: &str) -> String {
    let words: Vec<&str> = output.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"lease"), "{output}");
    assert!(output.contains("granted with TTL("), "{output}");
    words[1].to_string()
}

/// Goal: grant, put --lease, keep-alive --once, timetolive --keys, list and revoke print what
/// they print against etcd, and revoke of an unknown lease fails with etcd's text.
#[test]
fn lease_commands_print_what_etcd_prints() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let grant = basalt.ok(&["lease", "grant", "100"]);
    let id = granted_id(&grant);
    assert_eq!(grant, format!("lease {id} granted with TTL(100s)\n"));
    assert_eq!(basalt.ok(&["put", "--lease", &id, "foo", "bar"]), "OK\n");
    assert_eq!(
        basalt.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(100)\n")
    );
    let ttl = basalt.ok(&["lease", "timetolive", "--keys", &id]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(100s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.ends_with("s), attached keys([foo])\n"), "{ttl}");
    let other = granted_id(&basalt.ok(&["lease", "grant", "50"]));
    let list = basalt.ok(&["lease", "list"]);
    let mut listed: Vec<&str> = list.lines().skip(1).collect();
    listed.sort_unstable();
    let mut expected = vec![id.as_str(), other.as_str()];
    expected.sort_unstable();
    assert_eq!(list.lines().next(), Some("found 2 leases"));
    assert_eq!(listed, expected);

    assert_eq!(
        basalt.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(basalt.ok(&["get", "foo"]), "", "the revoke deleted the key");
    assert_eq!(
        basalt.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    let error = basalt.fails(&["lease", "revoke", &id]);
    assert!(
        error.contains("Error: failed to revoke lease (etcdserver: requested lease not found)"),
        "{error}"
    );
    let error = basalt.fails(&["put", "--lease", &id, "foo", "bar"]);
    assert!(
        error.contains("etcdserver: requested lease not found"),
        "{error}"
    );
}

/// Goal: `etcdctl lock NAME -- CMD` runs CMD holding the lock, and two lockers of the same
/// name never hold it at once: each writes "in" then "out" to a shared file while holding it,
/// so the file must read in/out/in/out.
#[test]
fn lock_runs_a_command_and_competing_lockers_serialize() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    assert_eq!(basalt.ok(&["lock", "mylock", "--", "echo", "hi"]), "hi\n");

    let trace = dir.path().join("trace");
    let script = format!(
        "echo in >> {0}; sleep 0.5; echo out >> {0}",
        trace.display()
    );
    std::thread::scope(|scope| {
        let lockers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| basalt.ok(&["lock", "mylock", "--", "sh", "-c", &script])))
            .collect();
        for locker in lockers {
            locker.join().expect("locker finished");
        }
    });
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "in\nout\nin\nout\n"
    );
    // The lock keys are gone once both unlocked.
    assert_eq!(basalt.ok(&["get", "--prefix", "mylock"]), "");
}

/// A long-running etcdctl whose stdout lines arrive on a channel; killed when dropped.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    fn start(basalt: &Basalt, args: &[&str]) -> Running {
        let mut child = Command::new(find_etcdctl())
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(basalt.endpoint())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcdctl");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next stdout line, within 15 s.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(15))
            .expect("etcdctl printed a line within 15 s")
    }

    /// SIGINT (etcdctl resigns / unlocks on it), then waits for the exit within 15 s.
    fn interrupt(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().expect("poll etcdctl").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "etcdctl ignored SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Goal: `etcdctl elect` elects the first candidate; a second waits until the leader's key
/// goes — here by revoking the leader's lease (a crashed leader's lease expiring) — and then
/// leads; resigning (SIGINT) deletes its key.
#[test]
fn elect_follows_leases_and_watches() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let first = Running::start(&basalt, &["elect", "myelection", "p1"]);
    let first_key = first.line();
    assert!(first_key.starts_with("myelection/"), "{first_key}");
    assert_eq!(first.line(), "p1");

    let second = Running::start(&basalt, &["elect", "myelection", "p2"]);
    // The second candidate has put its key (under its own lease) and waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while basalt
        .ok(&["get", "--prefix", "myelection/", "--keys-only"])
        .lines()
        .filter(|l| !l.is_empty())
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no second candidate key"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        second.lines.try_recv().is_err(),
        "the second candidate must not lead while the first does"
    );

    // The leader's key is named after its lease: revoking the lease ends its leadership.
    let leader_lease = first_key.trim_start_matches("myelection/");
    basalt.ok(&["lease", "revoke", leader_lease]);
    let second_key = second.line();
    assert!(second_key.starts_with("myelection/"), "{second_key}");
    assert_ne!(second_key, first_key);
    assert_eq!(second.line(), "p2");
    drop(first);

    second.interrupt();
    assert_eq!(basalt.ok(&["get", "--prefix", "myelection/"]), "");
}
