//! The member-wide memory bounds: bytes held by read answers (`v3rpc/read_memory.rs`) and
//! bytes queued for Watch streams (`watch/watch_limits.rs`), each shared by every core. Each
//! test sets a small bound with its test-only environment knob, loads the member with many
//! real etcdctl clients at once, and checks the process's peak resident memory grows far
//! less than the clients together would make it grow without the bound.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
        if i.is_multiple_of(2) {
            etcdctl(&basalt, &["get", "--prefix", "big/"], out.into())
        } else {
            etcdctl(&basalt, &["get", "big/00", "big/04"], out.into())
        }
    };
    let expected = |i: usize| answer_bytes(if i.is_multiple_of(2) { 16 } else { 4 });

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

/// One etcdctl watch whose printed events a thread counts (and checks in key order).
struct Watching {
    child: Child,
    events: Arc<AtomicUsize>,
}

impl Watching {
    fn start(basalt: &Basalt, from_revision: i64, keys: Vec<String>) -> Watching {
        let rev = from_revision.to_string();
        let mut child = etcdctl(
            basalt,
            &["watch", "--prefix", "w/", "--rev", &rev],
            Stdio::piped(),
        );
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(AtomicUsize::new(0));
        let counted = events.clone();
        std::thread::spawn(move || {
            // etcdctl prints "PUT", the key, the value for each event.
            let mut lines = BufReader::new(stdout).split(b'\n').map_while(Result::ok);
            while let Some(line) = lines.next() {
                if line == b"PUT" {
                    let key = lines.next().unwrap_or_default();
                    let seen = counted.load(Ordering::Relaxed);
                    assert_eq!(
                        String::from_utf8_lossy(&key),
                        keys[seen],
                        "events out of order or repeated"
                    );
                    counted.store(seen + 1, Ordering::Relaxed);
                }
            }
        });
        Watching { child, events }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory effects; the pid is our own child's.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal etcdctl");
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every watcher has counted `count` events.
fn wait_for_events(watchers: &[Watching], count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    for (i, watcher) in watchers.iter().enumerate() {
        while watcher.events.load(Ordering::Relaxed) < count {
            assert!(
                Instant::now() < deadline,
                "watcher {i} got {} of {count} events",
                watcher.events.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Goal: many Watch streams whose clients do not read, on 1 MiB values, together queue at most
/// about the member's watch bound, not each stream's own 8 MiB; once their clients read again
/// every watcher catches up from history, every event once and in order. Method: an 8 MiB
/// bound; 32 etcdctl watches, each stopped (SIGSTOP) once it printed a first event; 24 puts
/// of 1 MiB; without the bound the stopped streams would queue ~32 x 8 MiB. Then SIGCONT.
/// Measured growth (12-07): 72-99 MiB in 16 runs with the bound, 402-426 MiB without it; the
/// puts alone grow the member by 24-34 MiB, and the values read for the watchers map ~47 MiB
/// of the data file. Before a batch being sent counted against the bound, 84-163 MiB.
#[test]
fn slow_watch_streams_stay_within_the_members_watch_bytes_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let bound = (8 * MIB).to_string();
    let basalt = Basalt::start_with_env(
        dir.path().join("data"),
        free_port(),
        &[],
        &[("BASALT_TEST_WATCH_QUEUE_BYTES", &bound)],
    );
    const VALUES: usize = 24;
    // The same keys once before, so the engine's pages for them are in the baseline.
    put_values(&basalt, "w/", VALUES);
    let start = with_member(&basalt, |mut client| async move {
        let put = client.put("w/0-ready", "", None).await.unwrap();
        put.header().unwrap().revision()
    });
    let mut keys = vec!["w/0-ready".to_string()];
    keys.extend((0..VALUES).map(|i| format!("w/{i:02}")));
    let watchers: Vec<Watching> = (0..32)
        .map(|_| Watching::start(&basalt, start, keys.clone()))
        .collect();
    wait_for_events(&watchers, 1, Duration::from_secs(20));
    for watcher in &watchers {
        watcher.signal(libc::SIGSTOP);
    }
    let baseline = basalt.peak_resident_bytes();
    put_values(&basalt, "w/", VALUES);
    let growth = basalt.peak_resident_bytes().saturating_sub(baseline);
    assert!(
        growth < 160 * MIB as u64,
        "peak resident memory grew by {} MiB",
        growth / MIB as u64
    );
    for watcher in &watchers {
        watcher.signal(libc::SIGCONT);
    }
    wait_for_events(&watchers, keys.len(), Duration::from_secs(60));
}
