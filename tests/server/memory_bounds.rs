//! The member-wide memory bounds: bytes held by read answers (`v3rpc/read_memory.rs`),
//! shared by every core. Each
//! test sets a small bound with its test-only environment knob, loads the member with many
//! real etcdctl clients at once, and checks the process's peak resident memory grows far
//! less than the clients together would make it grow without the bound.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{find_etcdctl, free_port, with_member, Basalt};

const MIB: usize = 1024 * 1024;
const VALUE_BYTES: usize = MIB;

/// Puts `count` values of 1 MiB as `<prefix>00`, `<prefix>01`, ...
fn put_values(basalt: &Basalt, prefix: &str, count: usize) {
    let prefix = prefix.to_string();
    with_member(basalt, |mut client| async move {
        for i in 0..count {
            client
                .put(format!("{prefix}{i:02}"), vec![b'x'; VALUE_BYTES], None)
                .await
                .unwrap();
        }
    });
}

/// etcdctl against `basalt` with `args`, not waited for. Its own timeout is long, so that the
/// member's answer (or refusal) is what the test sees.
fn etcdctl(basalt: &Basalt, args: &[&str], stdout: Stdio) -> Child {
    Command::new(find_etcdctl())
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(basalt.endpoint())
        .arg("--command-timeout=60s")
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdctl")
}

/// Goal: many concurrent reads whose answers together pass the member's read memory bound
/// stay within it, and each either answers completely or fails cleanly with
/// ResourceExhausted; a lone read larger than the bound is served. Method: a 12 MiB bound, 16
/// values of 1 MiB; 32 etcdctl gets at once, half of the whole 16 MiB prefix (each larger
/// than the bound: served only alone), half of 4 MiB. Without the bound the member would hold
/// ~16 x 16 + 16 x 4 MiB of answers, twice over while encoding (~640 MiB).
#[test]
fn concurrent_large_reads_stay_within_the_members_read_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bound = (12 * MIB).to_string();
    let basalt = Basalt::start_with_env(
        dir.path().join("data"),
        free_port(),
        &[],
        &[("BASALT_TEST_READ_MEMORY_BYTES", &bound)],
    );
    put_values(&basalt, "big/", 16);
    // etcdctl prints "key\nvalue\n" per key; keys are 6 bytes.
    let answer_bytes = |keys: usize| (keys * (6 + 1 + VALUE_BYTES + 1)) as u64;
    let read = |i: usize| -> Child {
        let out = std::fs::File::create(dir.path().join(format!("read-{i}.out"))).unwrap();
        if i % 2 == 0 {
            etcdctl(&basalt, &["get", "--prefix", "big/"], out.into())
        } else {
            etcdctl(&basalt, &["get", "big/00", "big/04"], out.into())
        }
    };
    let expected = |i: usize| answer_bytes(if i % 2 == 0 { 16 } else { 4 });

    // Alone, a read larger than the bound is answered whole.
    let lone = read(0).wait_with_output().unwrap();
    assert!(lone.status.success(), "{lone:?}");
    let lone_bytes = std::fs::metadata(dir.path().join("read-0.out"))
        .unwrap()
        .len();
    assert_eq!(lone_bytes, expected(0));
    let baseline = basalt.peak_resident_bytes();

    let readers: Vec<Child> = (0..32).map(read).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = [0, 0];
    for (i, mut reader) in readers.into_iter().enumerate() {
        while reader.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "read {i} did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = reader.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            let bytes = std::fs::metadata(dir.path().join(format!("read-{i}.out")))
                .unwrap()
                .len();
            assert_eq!(bytes, expected(i), "read {i} answered partly");
            answered[i % 2] += 1;
        } else {
            assert!(
                stderr.contains("ResourceExhausted")
                    && stderr.contains("etcdserver: too many response bytes held on this member"),
                "read {i} failed otherwise: {stderr}"
            );
        }
    }
    assert!(
        answered[0] >= 1 && answered[1] >= 1,
        "too few reads answered: {answered:?}"
    );
    let growth = basalt.peak_resident_bytes().saturating_sub(baseline);
    assert!(
        growth < 160 * MIB as u64,
        "peak resident memory grew by {} MiB",
        growth / MIB as u64
    );
    // The member goes on serving (keys only: etcdctl's piped output is not read meanwhile).
    let keys = basalt.ok(&["get", "--prefix", "big/", "--keys-only"]);
    assert_eq!(
        keys.lines().filter(|line| line.starts_with("big/")).count(),
        16
    );
}
