//! Watch against the real binary, with Debian's etcdctl and the etcd-client crate: history then
//! live events without a gap or a duplicate, prev_kv, deletes, and compaction cancelling a
//! watcher that starts below the compacted revision.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchResponse, WatchStream};
use support::{with_client, Basalt};

/// The next response on a watch stream, waiting at most 10 s.
async fn next_response(stream: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch response within 10 s")
        .expect("the watch stream has no error")
        .expect("the watch stream is open")
}

#[test]
fn etcdctl_watch_prints_history_then_live_events_with_prev_kv() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    basalt.ok(&["put", "a", "1"]);
    basalt.ok(&["put", "b", "2"]);
    let mut watch = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &basalt.endpoint(),
            "watch",
            "a",
            "--prefix",
            "--rev",
            "1",
            "--prev-kv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcdctl watch");
    let (sender, receiver) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut lines = Vec::new();
    let read_until = |count: usize, lines: &mut Vec<String>| {
        while lines.len() < count {
            match receiver.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => lines.push(line),
                Err(_) => panic!("watch printed only {lines:?}"),
            }
        }
    };
    read_until(3, &mut lines); // the history: PUT a 1
    basalt.ok(&["put", "a2", "x"]);
    basalt.ok(&["put", "a", "11"]);
    basalt.ok(&["del", "a2"]);
    read_until(3 + 3 + 5 + 5, &mut lines);
    let _ = watch.kill();
    let _ = watch.wait();
    // etcdctl prints: event type, (prev key, prev value,) key, value — check the shape directly.
    assert_eq!(&lines[0..3], ["PUT", "a", "1"]);
    assert_eq!(&lines[3..6], ["PUT", "a2", "x"]);
    assert_eq!(&lines[6..11], ["PUT", "a", "1", "a", "11"]);
    assert_eq!(&lines[11..16], ["DELETE", "a2", "x", "a2", ""]);
}

#[test]
fn a_watch_from_the_past_joins_the_live_feed_without_gap_or_duplicate() {
    with_client(|mut client| async move {
        for n in 0..300 {
            client
                .put(format!("k/{n:04}"), "history", None)
                .await
                .unwrap();
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(1);
        let mut stream = client.watch("k/", Some(options)).await.unwrap();
        // More writes while the watcher catches up.
        let mut writer = client.clone();
        let writes = tokio::spawn(async move {
            for n in 300..600 {
                writer.put(format!("k/{n:04}"), "live", None).await.unwrap();
            }
        });
        let mut revisions = Vec::new();
        while revisions.len() < 600 {
            let response = next_response(&mut stream).await;
            assert!(
                !response.canceled(),
                "watch canceled: {}",
                response.cancel_reason()
            );
            for event in response.events() {
                assert_eq!(event.event_type(), EventType::Put);
                revisions.push(event.kv().unwrap().mod_revision());
            }
        }
        writes.await.unwrap();
        assert_eq!(
            revisions,
            (2..=601).collect::<Vec<i64>>(),
            "every revision once, in order"
        );
    });
}

#[test]
fn a_watch_below_the_compacted_revision_is_cancelled_with_it() {
    with_client(|mut client| async move {
        for n in 0..20 {
            client.put("key", format!("v{n}"), None).await.unwrap();
        }
        client.compact(10, None).await.unwrap();
        let options = WatchOptions::new().with_start_revision(5);
        let mut stream = client.watch("key", Some(options)).await.unwrap();
        let mut cancelled = None;
        while cancelled.is_none() {
            let response = next_response(&mut stream).await;
            if response.canceled() {
                cancelled = Some(response.compact_revision());
            }
        }
        assert_eq!(cancelled, Some(10));
    });
}

#[test]
fn a_watch_that_starts_in_the_future_sees_nothing_before_its_start() {
    with_client(|mut client| async move {
        let current = client
            .put("setup", "x", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let start = current + 5;
        let options = WatchOptions::new().with_start_revision(start);
        let mut stream = client.watch("foo", Some(options)).await.unwrap();
        client.put("other", "1", None).await.unwrap(); // current + 1
        client.put("foo", "too early 1", None).await.unwrap(); // + 2
        client.put("foo", "too early 2", None).await.unwrap(); // + 3
        client.put("other", "2", None).await.unwrap(); // + 4
        client.put("foo", "on time", None).await.unwrap(); // + 5 = start
        let event = loop {
            let response = next_response(&mut stream).await;
            if let Some(event) = response.events().first() {
                break event.clone();
            }
        };
        let kv = event.kv().unwrap();
        assert_eq!(
            (kv.mod_revision(), kv.value()),
            (start, b"on time".as_slice())
        );
    });
}

/// Values of 400 kB at five revisions: one catch-up response would be about 2 MB, above the
/// 1.5 MiB `--max-request-bytes`. A watcher that asked for fragments gets them in several
/// responses, every event once and in order; one that did not gets them whole.
#[test]
fn a_large_catch_up_is_fragmented_for_watchers_that_ask() {
    with_client(|mut client| async move {
        let value = vec![b'f'; 400_000];
        let first = client.put("big/0", value.clone(), None).await.unwrap();
        let start = first.header().unwrap().revision();
        for n in 1..5 {
            client
                .put(format!("big/{n}"), value.clone(), None)
                .await
                .unwrap();
        }
        for fragment in [true, false] {
            let mut options = WatchOptions::new().with_prefix().with_start_revision(start);
            if fragment {
                options = options.with_fragment();
            }
            let mut stream = client.watch("big/", Some(options)).await.unwrap();
            let mut sizes = Vec::new();
            let mut revisions = Vec::new();
            while revisions.len() < 5 {
                let response = next_response(&mut stream).await;
                if response.created() {
                    continue;
                }
                sizes.push(response.events().len());
                revisions.extend(
                    response
                        .events()
                        .iter()
                        .map(|e| e.kv().unwrap().mod_revision()),
                );
            }
            assert_eq!(revisions, (start..start + 5).collect::<Vec<_>>());
            if fragment {
                assert!(sizes.len() >= 2, "not fragmented: {sizes:?}");
                assert!(
                    sizes.iter().all(|&n| n <= 3),
                    "a fragment above the limit: {sizes:?}"
                );
            } else {
                assert_eq!(sizes, vec![5], "whole, as etcd sends it without fragment");
            }
        }
    });
}

/// `--experimental-watch-progress-notify-interval`: a synced watcher that asked for progress
/// notifications gets an empty response at the current revision each interval without events.
#[test]
fn progress_notify_sends_the_current_revision_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        support::free_port(),
        &["--experimental-watch-progress-notify-interval", "200ms"],
    );
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut client = etcd_client::Client::connect([endpoint.as_str()], None)
            .await
            .unwrap();
        let put = client.put("p", "1", None).await.unwrap();
        let revision = put.header().unwrap().revision();
        let mut notified = client
            .watch("p", Some(WatchOptions::new().with_progress_notify()))
            .await
            .unwrap();
        let mut silent = client.watch("p", None).await.unwrap();
        let mut progress = next_response(&mut notified).await;
        if progress.created() {
            progress = next_response(&mut notified).await;
        }
        assert!(!progress.created() && progress.events().is_empty());
        assert_eq!(progress.header().unwrap().revision(), revision);
        // A watcher that did not ask gets nothing while idle: its next response is the event.
        client.put("p", "2", None).await.unwrap();
        let mut event = next_response(&mut silent).await;
        if event.created() {
            event = next_response(&mut silent).await;
        }
        assert_eq!(event.events().len(), 1);
    });
}
