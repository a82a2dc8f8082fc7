//! Goal: frames arrive intact and in order per lane, whatever their sizes, and the counters
//! see them. Method: property-style over random frame-size sequences (proptest picks the
//! seeds and shrinks a failing one); one transport sends on both lanes, the other reads each
//! lane in its own task and checks every frame's bytes and sequence number.

use std::time::Duration;

use basalt_net::peer::{Lane, SendError};
use proptest::prelude::*;

use crate::support::{check_pattern_frame, pattern_frame, run, within, Member, Rng};

/// Sends `frame`, yielding while the queue is full (the test wants every frame delivered).
async fn send_all_the_way(member: &Member, to: u64, lane: Lane, frame: bytes::Bytes) {
    loop {
        match member.transport.send(to, lane, frame.clone()) {
            Ok(()) => return,
            Err(SendError::QueueFull(..)) => glommio::timer::sleep(Duration::from_millis(1)).await,
            Err(error) => panic!("send failed: {error}"),
        }
    }
}

fn deliver_in_order(seed: u64, frames: usize) {
    run(move |_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        let mut rng = Rng::new(seed);
        // Control frames are small; append frames range up to twice the 256 KiB write batch,
        // so batches of many frames and frames alone in a write both occur.
        let plan: Vec<(Lane, usize)> = (0..frames)
            .map(|_| {
                if rng.below(2) == 0 {
                    (Lane::Control, 16 + rng.below(2048) as usize)
                } else {
                    (Lane::Append, 16 + rng.below(512 * 1024) as usize)
                }
            })
            .collect();
        let expected = |lane: Lane| {
            plan.iter()
                .filter(|(l, _)| *l == lane)
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
        };
        let receive = |lane: Lane, sizes: Vec<usize>| {
            let transport = b.transport.clone();
            glommio::spawn_local(async move {
                for (sequence, size) in sizes.into_iter().enumerate() {
                    let (from, frame) = transport.recv(lane).await;
                    assert_eq!(from, 1);
                    assert_eq!(frame.len(), size, "{lane:?} frame {sequence}");
                    assert_eq!(check_pattern_frame(&frame), (lane as u64, sequence as u64));
                }
            })
        };
        let control = receive(Lane::Control, expected(Lane::Control));
        let append = receive(Lane::Append, expected(Lane::Append));
        let mut sequences = [0u64; 2];
        for (lane, size) in &plan {
            let index = if *lane == Lane::Control { 0 } else { 1 };
            let frame = pattern_frame(*lane as u64, sequences[index], *size);
            sequences[index] += 1;
            send_all_the_way(&a, 2, *lane, frame).await;
        }
        within(Duration::from_secs(30), "every frame", async {
            control.await;
            append.await;
        })
        .await;
        let total: usize = plan.iter().map(|(_, size)| size + 5).sum();
        let sent = a
            .transport
            .stats()
            .into_iter()
            .find(|s| s.peer == 2)
            .unwrap();
        assert!(sent.sent_bytes >= total as u64, "{sent:?}");
        assert_eq!(sent.sent_failures, 0);
        let received = b
            .transport
            .stats()
            .into_iter()
            .find(|s| s.peer == 1)
            .unwrap();
        assert!(received.received_bytes >= total as u64, "{received:?}");
        assert!(!received.member);
        a.stop().await;
        b.stop().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn frames_arrive_in_order_and_intact(seed in any::<u64>(), frames in 1usize..200) {
        deliver_in_order(seed, frames);
    }
}

/// Goal: an empty frame and a frame of exactly the limit both pass; one byte more is refused
/// at the sender.
#[test]
fn frame_limit_is_exact() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        let limit = a.transport.config().max_frame_bytes;
        a.transport
            .send(2, Lane::Append, bytes::Bytes::new())
            .unwrap();
        a.transport
            .send(2, Lane::Append, bytes::Bytes::from(vec![7u8; limit]))
            .unwrap();
        assert_eq!(
            a.transport
                .send(2, Lane::Append, bytes::Bytes::from(vec![7u8; limit + 1])),
            Err(SendError::FrameTooLarge {
                bytes: limit + 1,
                limit
            })
        );
        let wait = Duration::from_secs(10);
        assert_eq!(
            within(wait, "the empty frame", b.transport.recv(Lane::Append))
                .await
                .1
                .len(),
            0
        );
        assert_eq!(
            within(wait, "the largest frame", b.transport.recv(Lane::Append))
                .await
                .1
                .len(),
            limit
        );
        a.stop().await;
        b.stop().await;
    });
}

/// Goal: a member whose frame limit is smaller than the sender's (another
/// `--max-request-bytes`) gets the frames it accepts; a larger one is dropped and counted at
/// the sender instead of costing the connection. Method: the listener announces a 1000-byte
/// limit in its handshake answer.
#[test]
fn frames_beyond_the_receivers_limit_are_dropped_at_the_sender() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let mut config = basalt_net::peer::TransportConfig::new(7, 2, 1536 * 1024);
        config.max_frame_bytes = 1000;
        let b = Member::start_with(config, 0);
        a.dial(2, &b);
        for (sequence, size) in [(0, 500), (1, 5000), (2, 1000)] {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, sequence, size))
                .unwrap();
        }
        for expected in [0, 2] {
            let (_, frame) = within(
                Duration::from_secs(10),
                "the frames that fit",
                b.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (0, expected));
        }
        let sent = &a.transport.stats()[0];
        assert_eq!((sent.sent_failures, sent.disconnects), (1, 0), "{sent:?}");
        assert!(a.transport.is_reachable(2));
        a.stop().await;
        b.stop().await;
    });
}
