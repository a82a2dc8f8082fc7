//! Goal: a saturated append lane never delays control frames (etcd #7970: heartbeats behind a
//! large append caused spurious elections). Method: the receiver never reads its append
//! inbox, so the append path fills end to end (inbox, TCP buffers, then the sender's append
//! queue refuses frames); control frames sent after that must all arrive, in order, while the
//! append backlog is still stuck — if they shared its path they could never arrive at all.

use std::time::{Duration, Instant};

use basalt_net::peer::{Lane, QueueLimit, SendError, TransportConfig};

use crate::support::{check_pattern_frame, pattern_frame, run, within, Member};

#[test]
fn saturated_append_lane_does_not_delay_control() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let mut config = TransportConfig::new(7, 2, 1536 * 1024);
        config.append_inbox = QueueLimit {
            frames: 4,
            bytes: 4 * 1024 * 1024,
        };
        let b = Member::start_with(config, 0);
        a.dial(2, &b);

        // Fill the append path until the sender's queue refuses a 1 MiB frame.
        let mut appends_queued = 0u64;
        within(
            Duration::from_secs(30),
            "the append lane to saturate",
            async {
                loop {
                    let frame = pattern_frame(1, appends_queued, 1024 * 1024);
                    match a.transport.send(2, Lane::Append, frame) {
                        Ok(()) => appends_queued += 1,
                        Err(SendError::QueueFull(..)) => break,
                        Err(error) => panic!("{error}"),
                    }
                    // Let the writer drain into the socket so the whole path fills.
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            },
        )
        .await;
        assert!(appends_queued > 4, "only {appends_queued} appends queued");

        let started = Instant::now();
        for sequence in 0..200u64 {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 100))
                .unwrap();
            let (from, frame) = within(
                Duration::from_secs(5),
                "a control frame",
                b.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(from, 1);
            assert_eq!(check_pattern_frame(&frame), (0, sequence));
        }
        let control_time = started.elapsed();

        // The append lane is still stuck: its queue still refuses frames.
        assert!(matches!(
            a.transport
                .send(2, Lane::Append, pattern_frame(1, 0, 1024 * 1024)),
            Err(SendError::QueueFull(..))
        ));
        // And draining it now delivers the appends, in order, from the first.
        for sequence in 0..4u64 {
            let (_, frame) = within(
                Duration::from_secs(10),
                "an append frame",
                b.transport.recv(Lane::Append),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (1, sequence));
        }
        eprintln!(
            "200 control round trips behind {appends_queued} stuck 1 MiB appends: {control_time:?}"
        );
        a.stop().await;
        b.stop().await;
    });
}
