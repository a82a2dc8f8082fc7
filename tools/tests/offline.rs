//! `basalt-util check`, `defrag` and `wal dump` on a real member's data directory: refused
//! (check, defrag) while the member runs, correct once it is stopped, and damage reported
//! with the file and offset and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::Member;

fn util(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt-util"))
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn util_ok(args: &[&str]) -> String {
    let output = util(args);
    assert!(
        output.status.success(),
        "basalt-util {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[track_caller]
fn util_fails(args: &[&str]) -> String {
    let output = util(args);
    assert_eq!(output.status.code(), Some(1), "basalt-util {args:?}");
    String::from_utf8(output.stderr).unwrap()
}

fn data_dir_flag(dir: &Path) -> String {
    format!("--data-dir={}", dir.display())
}

/// A member's data directory holding a few writes of each kind; returns the member, still
/// running, and the revision its last write made.
fn member_with_writes(dir: &Path) -> (Member, i64) {
    let member = Member::start(dir, &[]);
    member.ok(&["put", "alpha", "1"]);
    member.ok(&["put", "beta", "22"]);
    let lease = member.ok(&["lease", "grant", "600"]);
    let lease_id = lease.split_whitespace().nth(1).unwrap().to_string();
    member.ok(&["put", "--lease", &lease_id, "gamma", "333"]);
    member.ok(&["del", "alpha"]);
    member.ok(&["put", "delta", "4444"]);
    let status: serde_json::Value =
        serde_json::from_str(&member.ok(&["endpoint", "status", "-w", "json"])).unwrap();
    let revision = status[0]["Status"]["header"]["revision"].as_i64().unwrap();
    (member, revision)
}

/// Goal: check and defrag refuse a data directory a member runs on (the member's own lock on
/// its database), and work once it is stopped: check reports the member's last revision and
/// defrag leaves a database a member serves every key from again.
#[test]
fn check_and_defrag_refuse_a_running_member_and_work_on_a_stopped_one() {
    let dir = tempfile::tempdir().unwrap();
    let (member, revision) = member_with_writes(dir.path());
    for command in ["check", "defrag"] {
        let refused = util_fails(&[command, &data_dir_flag(dir.path())]);
        assert!(refused.contains("is in use"), "{command}: {refused}");
    }
    // The member is untouched by the refusals.
    member.ok(&["put", "epsilon", "5"]);
    // The member syncs its database once a second (the WAL is the durability point): wait for
    // a sync after the last write, so the stopped member's database holds every write.
    wait_for_a_database_sync(&member);
    drop(member);

    let checked: serde_json::Value =
        serde_json::from_str(util_ok(&["check", &data_dir_flag(dir.path())]).trim()).unwrap();
    assert_eq!(
        checked["revision"].as_i64().unwrap(),
        revision + 1,
        "{checked}"
    );
    assert!(checked["entries"].as_u64().unwrap() > 0, "{checked}");
    let defragged = util_ok(&["defrag", &data_dir_flag(dir.path())]);
    assert_eq!(
        defragged.trim(),
        format!("Finished defragmenting etcd data[{}]", dir.path().display())
    );
    let again = Member::start(dir.path(), &[]);
    assert_eq!(
        again.ok(&["get", "delta", "--print-value-only"]).trim(),
        "4444"
    );
    assert_eq!(
        again.ok(&["get", "epsilon", "--print-value-only"]).trim(),
        "5"
    );
    assert_eq!(again.ok(&["get", "alpha", "--print-value-only"]).trim(), "");
}

/// `etcd_disk_backend_commit_duration_seconds_count` (engine syncs so far) from `/metrics`.
fn database_syncs(member: &Member) -> u64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", member.port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("etcd_disk_backend_commit_duration_seconds_count "))
        .unwrap_or_else(|| panic!("no sync count in {text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

/// Waits (at most ten seconds) until the member has begun and finished a database sync since
/// now: two more syncs, as one may have been under way already.
fn wait_for_a_database_sync(member: &Member) {
    let before = database_syncs(member);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while database_syncs(member) < before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no database sync within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// One data row of a dump: (offset, term, index, type, data).
fn rows(dump: &str) -> Vec<(u64, String, String, String, String)> {
    dump.lines()
        .filter(|line| !line.starts_with("segment ") && !line.starts_with("offset\t"))
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(fields.len(), 5, "{line:?}");
            (
                fields[0].parse().unwrap(),
                fields[1].to_string(),
                fields[2].to_string(),
                fields[3].to_string(),
                fields[4].to_string(),
            )
        })
        .collect()
}

/// Goal: `wal dump` prints every write the member logged, in order, with consecutive indices
/// and the proposal decoded; it may run beside a live member; a record damaged in the middle
/// of the log stops it with the segment file and offset and exit status 1.
#[test]
fn wal_dump_prints_every_write_and_reports_a_damaged_record_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (member, _) = member_with_writes(dir.path());
    // Reading only: it runs beside the member.
    let live = util_ok(&["wal", "dump", &data_dir_flag(dir.path())]);
    drop(member);
    let dump = util_ok(&["wal", "dump", &data_dir_flag(dir.path())]);
    assert!(dump.starts_with("segment "), "{dump}");
    assert!(
        dump.starts_with(&live[..live.len().min(200)]),
        "{live}\n---\n{dump}"
    );

    let rows = rows(&dump);
    let all_entries: Vec<_> = rows.iter().filter(|row| row.3 != "meta").collect();
    // The log opens with the bootstrap's membership (one AddNode per initial member, as
    // etcd's), then normal entries; indices are consecutive from 1; terms never fall.
    assert_eq!(all_entries[0].3, "conf", "{dump}");
    assert!(all_entries[0].4.starts_with("AddNode node_id="), "{dump}");
    for (position, entry) in all_entries.iter().enumerate() {
        assert_eq!(entry.2, (position + 1).to_string(), "{dump}");
        if position > 0 {
            assert_eq!(entry.3, "norm", "{dump}");
        }
    }
    let entries: Vec<_> = all_entries[1..].to_vec();
    let terms: Vec<u64> = all_entries
        .iter()
        .map(|entry| entry.1.parse().unwrap())
        .collect();
    assert!(terms.windows(2).all(|pair| pair[0] <= pair[1]), "{terms:?}");
    // Every write, in the order it was made (etcdctl's puts carry no user: auth is off).
    let writes: Vec<&str> = entries
        .iter()
        .map(|entry| entry.4.as_str())
        .filter(|data| !data.is_empty())
        .collect();
    let expected = [
        // The member publishes its name and client URLs at its first start, as etcd does.
        r#"member_attributes id="#,
        r#"put key="alpha" value_size=1"#,
        r#"put key="beta" value_size=2"#,
        "lease_grant id=",
        r#"put key="gamma" value_size=3 lease="#,
        r#"delete_range key="alpha""#,
        r#"put key="delta" value_size=4"#,
    ];
    assert_eq!(writes.len(), expected.len(), "{dump}");
    for (write, expected) in writes.iter().zip(expected) {
        assert!(
            write.contains(expected),
            "{write:?} should hold {expected:?}"
        );
        assert!(write.starts_with("id="), "{write:?}");
    }
    assert!(rows
        .iter()
        .any(|row| row.3 == "meta" && row.4.contains("commit=")));

    // Damage the put of "beta" (later batches follow it: corruption, not a torn tail).
    let beta = entries
        .iter()
        .find(|entry| entry.4.contains(r#"key="beta""#))
        .unwrap()
        .0;
    let segment = dump.lines().next().unwrap().split(' ').nth(1).unwrap();
    let segment_path = dir.path().join("member").join("wal").join(segment);
    let mut bytes = std::fs::read(&segment_path).unwrap();
    bytes[beta as usize + 30] ^= 0xff;
    std::fs::write(&segment_path, bytes).unwrap();
    let output = util(&["wal", "dump", &data_dir_flag(dir.path())]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{} at byte offset {beta}", segment_path.display())),
        "{stderr}"
    );
    // What came before the damage was printed.
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains(r#"put key="alpha""#), "{printed}");
    assert!(!printed.contains(r#"key="beta""#), "{printed}");
}
