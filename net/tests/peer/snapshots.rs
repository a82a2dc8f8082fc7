//! Goal: a snapshot streams as ordered chunks with bounded memory and arrives complete; a
//! transfer that fails on either side is reported failed on both. Method: a lazy producer of
//! 64 chunks of 1 MiB and a receiver that checks every byte and records how far the producer
//! ran ahead of it (what the path buffers); then producer errors, a vanished sender and a
//! receiver that refuses.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use basalt_net::peer::PeerError;
use futures_lite::stream;

use crate::support::{check_pattern_frame, pattern_frame, run, within, Member};

const CHUNK_BYTES: usize = 1024 * 1024;

/// How many chunks may sit between the producer and the consumer: what the kernel's socket
/// buffers can grow to (the last field of `tcp_wmem` and `tcp_rmem`), plus the chunk being
/// written, the one being produced and the receiver's read buffer. Anything holding the
/// stream in the transport would exceed it.
fn chunks_in_flight_max() -> u64 {
    let buffer_max = |name: &str| -> u64 {
        let text =
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap_or_default();
        text.split_whitespace()
            .last()
            .and_then(|field| field.parse().ok())
            .unwrap_or(6 << 20)
    };
    (buffer_max("tcp_wmem") + buffer_max("tcp_rmem")).div_ceil(CHUNK_BYTES as u64) + 3
}

fn failure_text(result: Result<impl std::fmt::Debug, PeerError>) -> String {
    match result {
        Err(PeerError::SnapshotFailed(reason)) => reason,
        other => panic!("expected a failed snapshot, got {other:?}"),
    }
}

#[test]
fn snapshot_of_64_mib_arrives_complete_with_bounded_memory() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        let produced = Rc::new(Cell::new(0u64));
        let sender = {
            let transport = a.transport.clone();
            let produced = produced.clone();
            glommio::spawn_local(async move {
                let writer = transport
                    .open_snapshot(2, b"raft snapshot metadata")
                    .await
                    .unwrap();
                let chunks = stream::iter((0..64u64).map(move |index| {
                    produced.set(index + 1);
                    Ok(pattern_frame(9, index, CHUNK_BYTES))
                }));
                writer.send_all(chunks).await
            })
        };
        let mut incoming = within(
            Duration::from_secs(10),
            "the snapshot",
            b.transport.recv_snapshot(),
        )
        .await;
        assert_eq!(incoming.from(), 1);
        assert_eq!(&incoming.header()[..], b"raft snapshot metadata");
        let mut received = 0u64;
        let mut ahead_max = 0u64;
        while let Some(chunk) = within(Duration::from_secs(30), "a chunk", incoming.next_chunk())
            .await
            .unwrap()
        {
            assert_eq!(chunk.len(), CHUNK_BYTES);
            assert_eq!(check_pattern_frame(&chunk), (9, received));
            received += 1;
            ahead_max = ahead_max.max(produced.get() - received);
            // A consumer slower than the network, so the path fills up to its bound.
            glommio::timer::sleep(Duration::from_micros(500)).await;
        }
        assert_eq!(received, 64);
        assert_eq!(incoming.bytes_received(), 64 * CHUNK_BYTES as u64);
        let bound = chunks_in_flight_max();
        assert!(
            bound < 64,
            "this host's socket buffers hold the whole stream ({bound} chunks)"
        );
        assert!(
            ahead_max <= bound,
            "the producer ran {ahead_max} chunks ahead (bound {bound})"
        );
        incoming.complete(Ok(())).await.unwrap();
        let sent = within(Duration::from_secs(10), "the sender's verdict", sender)
            .await
            .unwrap();
        assert_eq!(sent, 64 * CHUNK_BYTES as u64);
        eprintln!(
            "64 MiB snapshot: the producer ran at most {ahead_max} chunks ahead (bound {bound})"
        );
        let stats = a.transport.stats();
        assert!(stats[0].sent_bytes > 64 * CHUNK_BYTES as u64);
        assert_eq!(
            (
                stats[0].snapshot_send_successes,
                stats[0].snapshot_send_failures
            ),
            (1, 0)
        );
        let stats = b.transport.stats();
        assert!(stats[0].received_bytes > 64 * CHUNK_BYTES as u64);
        assert_eq!(
            (
                stats[0].snapshot_receive_successes,
                stats[0].snapshot_receive_failures
            ),
            (1, 0)
        );
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn failed_snapshots_are_reported_on_both_sides() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        let wait = Duration::from_secs(10);

        // The sender's producer fails after 3 chunks: the sender aborts.
        let sender = {
            let transport = a.transport.clone();
            glommio::spawn_local(async move {
                let writer = transport.open_snapshot(2, b"s1").await.unwrap();
                let chunks = stream::iter((0..4u64).map(|index| {
                    if index < 3 {
                        Ok(pattern_frame(9, index, 4096))
                    } else {
                        Err(io::Error::other("disk read failed"))
                    }
                }));
                writer.send_all(chunks).await
            })
        };
        let mut incoming = within(wait, "the first snapshot", b.transport.recv_snapshot()).await;
        for index in 0..3 {
            let chunk = incoming.next_chunk().await.unwrap().unwrap();
            assert_eq!(check_pattern_frame(&chunk), (9, index));
        }
        let receiver_reason = failure_text(incoming.next_chunk().await);
        assert!(
            receiver_reason.contains("the sender aborted the snapshot"),
            "{receiver_reason}"
        );
        assert!(
            receiver_reason.contains("disk read failed"),
            "{receiver_reason}"
        );
        let sender_reason = failure_text(within(wait, "the aborted sender", sender).await);
        assert!(
            sender_reason.contains("disk read failed"),
            "{sender_reason}"
        );

        // The sender vanishes mid-stream (its connection closes without an end marker).
        let mut writer = a.transport.open_snapshot(2, b"s2").await.unwrap();
        writer.send_chunk(&pattern_frame(9, 0, 4096)).await.unwrap();
        let mut incoming = within(wait, "the second snapshot", b.transport.recv_snapshot()).await;
        incoming.next_chunk().await.unwrap().unwrap();
        drop(writer);
        let reason =
            failure_text(within(wait, "the truncated stream", incoming.next_chunk()).await);
        assert!(
            reason.contains("ended before the snapshot's end marker"),
            "{reason}"
        );

        // The receiver refuses a complete stream (e.g. it cannot store it): the sender learns why.
        let sender = {
            let transport = a.transport.clone();
            glommio::spawn_local(async move {
                let mut writer = transport.open_snapshot(2, b"s3").await.unwrap();
                writer.send_chunk(&pattern_frame(9, 0, 4096)).await.unwrap();
                writer.finish().await
            })
        };
        let mut incoming = within(wait, "the third snapshot", b.transport.recv_snapshot()).await;
        incoming.next_chunk().await.unwrap().unwrap();
        assert!(incoming.next_chunk().await.unwrap().is_none());
        let refused = incoming
            .complete(Err("no space left on device".into()))
            .await;
        assert!(failure_text(refused).contains("no space left on device"));
        let sender_reason = failure_text(within(wait, "the refused sender", sender).await);
        assert!(
            sender_reason.contains("the receiver failed it: no space left on device"),
            "{sender_reason}"
        );

        let sent = &a.transport.stats()[0];
        assert_eq!(
            (sent.snapshot_send_successes, sent.snapshot_send_failures),
            (0, 3)
        );
        let received = &b.transport.stats()[0];
        assert_eq!(
            (
                received.snapshot_receive_successes,
                received.snapshot_receive_failures
            ),
            (0, 3)
        );

        // A snapshot to an unknown member fails at once.
        assert!(matches!(
            a.transport.open_snapshot(5, b"").await,
            Err(PeerError::UnknownPeer(5))
        ));
        a.stop().await;
        b.stop().await;
    });
}
