//! Goal: the transport survives what peers and strangers do to it: a peer that restarts is
//! redialed and later frames arrive; a garbage or oversized frame header closes only that
//! connection, with an error log and no panic or large allocation; a full queue drops the
//! frame, says so, and counts it.

use std::time::Duration;

use basalt_net::peer::{Lane, PeerEvent, QueueLimit, SendError, TransportConfig};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    check_pattern_frame, next_event, pattern_frame, run, send_until_one_arrives, within, Member,
};

/// The hello a basalt member sends (see the wire module's docs), built by hand so the test
/// can follow it with bytes no transport would send.
fn hello(cluster_id: u64, from: u64, to: u64, lane: u8) -> Vec<u8> {
    let mut bytes = b"BSLTPEER".to_vec();
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&[lane, 0]);
    for word in [cluster_id, from, to] {
        bytes.extend_from_slice(&word.to_be_bytes());
    }
    bytes
}

#[test]
fn restarted_peer_is_redialed_and_later_frames_arrive() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 64))
            .unwrap();
        let (_, frame) = within(
            Duration::from_secs(10),
            "the first frame",
            b.transport.recv(Lane::Control),
        )
        .await;
        assert_eq!(check_pattern_frame(&frame), (0, 0));
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Reachable { peer: 2 }
        ));

        // b goes away: a notices (the connection ends) without sending anything.
        let port = b.port;
        b.stop().await;
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Unreachable { peer: 2, .. }
        ));
        let stats = &a.transport.stats()[0];
        assert_eq!((stats.active, stats.disconnects), (false, 1));
        // The control lane pinged on connecting: one round trip measured at least.
        assert!(stats.round_trip_seconds.count >= 1, "{stats:?}");
        // Frames sent while b is down are dropped (counted); sending goes on regardless.
        for sequence in 1..=5 {
            let _ = a
                .transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 64));
        }
        within(
            Duration::from_secs(10),
            "the frames to b to be dropped",
            async {
                while a.transport.stats()[0].sent_failures < 5 {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            },
        )
        .await;

        // b comes back on the same port; a keeps sending (as raft's heartbeats would) until a
        // frame arrives, then every later frame arrives in order.
        let b = Member::start_with(TransportConfig::new(7, 2, 1536 * 1024), port);
        let mut sequence = 100;
        let first = within(
            Duration::from_secs(10),
            "a frame after the restart",
            send_until_one_arrives(&a.transport, &b.transport, &mut sequence, 64),
        )
        .await
        .1;
        assert!(
            first >= 100,
            "a frame queued while b was down arrived: {first}"
        );
        for later in sequence..sequence + 50 {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, later, 64))
                .unwrap();
        }
        let mut expected = first + 1;
        while expected < sequence + 50 {
            let (_, frame) = within(
                Duration::from_secs(10),
                "later frames",
                b.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (0, expected));
            expected += 1;
        }
        assert!(a.transport.is_reachable(2));
        assert!(a.transport.stats()[0].active);
        a.stop().await;
        b.stop().await;
    });
}

/// Opens a raw connection to `member`, says hello as member 1 on the control lane, and reads
/// the accept answer.
async fn raw_peer(member: &Member) -> glommio::net::TcpStream {
    let mut stream = glommio::net::TcpStream::connect(format!("127.0.0.1:{}", member.port))
        .await
        .unwrap();
    stream.write_all(&hello(7, 1, 2, 0)).await.unwrap();
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).await.unwrap();
    // Accepted, with the listener's frame limit.
    let limit = member.transport.config().max_frame_bytes as u32;
    assert_eq!(answer[..3], [0, 0, 4], "accepted");
    assert_eq!(answer[3..], limit.to_be_bytes());
    stream
}

/// Waits until the listener closes `stream` (reads return end of stream or an error).
async fn closed_by_listener(stream: &mut glommio::net::TcpStream) {
    within(
        Duration::from_secs(10),
        "the listener to close the connection",
        async {
            let mut buffer = [0u8; 64];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        },
    )
    .await;
}

#[test]
fn bad_frames_close_only_their_connection() {
    run(|logs| async move {
        let b = Member::start(7, 2);
        let a = Member::start(7, 1);
        a.dial(2, &b);

        // A length far beyond the limit: refused before any allocation.
        let mut oversized = raw_peer(&b).await;
        oversized
            .write_all(&[0, 0xff, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        closed_by_listener(&mut oversized).await;
        logs.wait_for(&["peer connection closed on a bad frame", "exceeds the limit"])
            .await;

        // An unknown frame kind.
        let mut unknown = raw_peer(&b).await;
        unknown.write_all(&[0x7f, 0, 0, 0, 1, 0]).await.unwrap();
        closed_by_listener(&mut unknown).await;
        logs.wait_for(&[
            "peer connection closed on a bad frame",
            "unknown frame kind 127",
        ])
        .await;

        // Not a basalt peer at all.
        let mut stranger = glommio::net::TcpStream::connect(format!("127.0.0.1:{}", b.port))
            .await
            .unwrap();
        stranger
            .write_all(b"GET /raft/stream/msgapp/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        closed_by_listener(&mut stranger).await;
        logs.wait_for(&["peer connection closed: bad handshake"])
            .await;

        // The two connections that said hello as member 1 count as its receive failures.
        let from_1 = b
            .transport
            .stats()
            .into_iter()
            .find(|s| s.peer == 1)
            .unwrap();
        assert_eq!(from_1.received_failures, 2);

        // The listener still serves real peers.
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        let (from, frame) = within(
            Duration::from_secs(10),
            "a frame",
            b.transport.recv(Lane::Control),
        )
        .await;
        assert_eq!((from, check_pattern_frame(&frame)), (1, (0, 0)));
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn full_queue_drops_and_counts() {
    run(|_logs| async move {
        // A listener that accepts and never answers the handshake: the writer waits in its
        // dial, so nothing leaves the queue.
        let silent = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = silent.local_addr().unwrap().port();
        let _holder = glommio::spawn_local(async move {
            let mut held = Vec::new();
            while let Ok(stream) = silent.accept().await {
                held.push(stream);
            }
        });
        let mut config = TransportConfig::new(7, 1, 1536 * 1024);
        config.control_queue = QueueLimit {
            frames: 8,
            bytes: 1024 * 1024,
        };
        config.append_queue = QueueLimit {
            frames: 100,
            bytes: 1000,
        };
        let a = Member::start_with(config, 0);
        a.transport
            .add_peer(2, &[format!("http://127.0.0.1:{port}")])
            .unwrap();

        // Count bound: 8 frames fit, the 9th and 10th are dropped.
        for sequence in 0..8 {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 32))
                .unwrap();
        }
        for sequence in 8..10 {
            assert_eq!(
                a.transport
                    .send(2, Lane::Control, pattern_frame(0, sequence, 32)),
                Err(SendError::QueueFull("control", 2))
            );
        }
        // Byte bound: two 400-byte frames fit in 1000 bytes, the third does not.
        for sequence in 0..2 {
            a.transport
                .send(2, Lane::Append, pattern_frame(1, sequence, 400))
                .unwrap();
        }
        assert_eq!(
            a.transport.send(2, Lane::Append, pattern_frame(1, 2, 400)),
            Err(SendError::QueueFull("append", 2))
        );
        assert_eq!(
            a.transport.send(9, Lane::Control, pattern_frame(0, 0, 32)),
            Err(SendError::UnknownPeer(9))
        );
        let stats = a.transport.stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].sent_failures, 3);
        assert_eq!(stats[0].sent_bytes, 0);
        a.stop().await;
    });
}

/// Goal: a peer that stops answering without closing (a partition sends no FIN) is found out
/// by the control lane's pings, reported unreachable, and redialed; a healthy idle peer is
/// not. Method: short ping settings; a fake peer that accepts the handshake, then never reads
/// again, next to a real one that stays idle many timeouts long.
#[test]
fn a_silent_peer_is_found_out_by_pings() {
    run(|_logs| async move {
        let silent = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = silent.local_addr().unwrap().port();
        let _holder = glommio::spawn_local(async move {
            let mut held = Vec::new();
            while let Ok(mut stream) = silent.accept().await {
                let mut hello = [0u8; 36];
                if stream.read_exact(&mut hello).await.is_ok()
                    && stream.write_all(&[0, 0, 4, 0, 1, 0, 0]).await.is_ok()
                {
                    held.push(stream);
                }
            }
        });
        let mut config = TransportConfig::new(7, 1, 1536 * 1024);
        config.ping_interval = Duration::from_millis(25);
        config.pong_timeout = Duration::from_millis(500);
        let a = Member::start_with(config, 0);
        let b = Member::start(7, 3);
        a.dial(3, &b);
        a.transport
            .send(3, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Reachable { peer: 3 }
        ));

        a.transport
            .add_peer(2, &[format!("http://127.0.0.1:{port}")])
            .unwrap();
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Reachable { peer: 2 }
        ));
        match next_event(&a.transport).await {
            PeerEvent::Unreachable { peer: 2, error } => {
                assert!(error.to_string().contains("answer pings"), "{error}")
            }
            other => panic!("unexpected {other:?}"),
        }
        // Meanwhile (five timeouts), the idle healthy peer kept its connection and answered.
        glommio::timer::sleep(Duration::from_millis(2500)).await;
        let healthy = a
            .transport
            .stats()
            .into_iter()
            .find(|s| s.peer == 3)
            .unwrap();
        assert!(a.transport.is_reachable(3));
        assert_eq!(healthy.disconnects, 0);
        assert!(healthy.round_trip_seconds.count >= 20, "{healthy:?}");
        a.stop().await;
        b.stop().await;
    });
}

/// Goal: inbound connections are bounded: strays that never say hello fill the listener's
/// slots and a real peer is turned away (and told, by a closed connection) until they go.
#[test]
fn inbound_connections_are_bounded() {
    run(|logs| async move {
        let b = Member::start(7, 2);
        let a = Member::start(7, 1);
        let mut strays = Vec::new();
        for _ in 0..256 {
            let stray = glommio::net::TcpStream::connect(format!("127.0.0.1:{}", b.port))
                .await
                .unwrap();
            strays.push(stray);
        }
        // After the strays: the control lane dials as soon as the peer is added.
        a.dial(2, &b);
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Unreachable { peer: 2, .. }
        ));
        logs.wait_for(&["too many inbound peer connections"]).await;

        drop(strays);
        let arrived = within(
            Duration::from_secs(10),
            "a frame once the strays left",
            send_until_one_arrives(&a.transport, &b.transport, &mut 1, 32),
        )
        .await;
        assert_eq!(arrived.0, 0);
        a.stop().await;
        b.stop().await;
    });
}
