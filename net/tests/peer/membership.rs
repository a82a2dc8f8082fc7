//! Goal: membership changes at runtime take effect on the connections: a member with several
//! URLs is reached at whichever answers, an updated member is redialed at its new URL, a
//! removed one cannot be sent to, and URLs the transport cannot dial are refused up front.

use std::time::Duration;

use basalt_net::peer::{Lane, PeerError, PeerEvent, SendError, TransportConfig};

use crate::support::{
    check_pattern_frame, next_event, pattern_frame, run, send_until_one_arrives, within, Member,
};

/// A loopback URL where nothing listens (a port bound and released at once).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

#[test]
fn a_member_is_reached_at_any_of_its_urls() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.transport
            .add_peer(2, &[dead_url(), b.url.clone()])
            .unwrap();
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        let (_, frame) = within(
            Duration::from_secs(10),
            "the frame",
            b.transport.recv(Lane::Control),
        )
        .await;
        assert_eq!(check_pattern_frame(&frame), (0, 0));
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn an_updated_member_is_redialed_at_its_new_url() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let old = Member::start(7, 2);
        a.dial(2, &old);
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        within(
            Duration::from_secs(10),
            "the first frame",
            old.transport.recv(Lane::Control),
        )
        .await;

        // Member 2 moves (etcdctl member update): same ID, new URL; the old address still
        // answers, so only the update can move the traffic.
        let new = Member::start_with(TransportConfig::new(7, 2, 1536 * 1024), 0);
        a.transport
            .update_peer(2, std::slice::from_ref(&new.url))
            .unwrap();
        assert_eq!(a.transport.peers(), vec![(2, vec![new.url.clone()])]);
        for sequence in 1..=20 {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 32))
                .unwrap();
        }
        for sequence in 1..=20 {
            let (_, frame) = within(
                Duration::from_secs(10),
                "frames at the new URL",
                new.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (0, sequence));
        }
        a.stop().await;
        old.stop().await;
        new.stop().await;
    });
}

#[test]
fn a_removed_member_is_no_longer_sent_to() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        a.transport
            .send(2, Lane::Append, pattern_frame(1, 0, 32))
            .unwrap();
        within(
            Duration::from_secs(10),
            "the frame",
            b.transport.recv(Lane::Append),
        )
        .await;
        a.transport.remove_peer(2);
        assert!(a.transport.peers().is_empty());
        assert_eq!(
            a.transport.send(2, Lane::Append, pattern_frame(1, 1, 32)),
            Err(SendError::UnknownPeer(2))
        );
        assert!(a.transport.stats().iter().all(|stats| stats.peer != 2));
        assert!(!a.transport.is_reachable(2));
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn urls_that_cannot_be_dialed_are_refused() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        for url in [
            "https://127.0.0.1:2380",
            "127.0.0.1:2380",
            "http://127.0.0.1:2380/raft",
            "http://no-such-host.invalid:2380",
        ] {
            let result = a.transport.add_peer(2, &[url.to_string()]);
            assert!(
                matches!(result, Err(PeerError::Url { .. })),
                "{url}: {result:?}"
            );
        }
        assert!(matches!(
            a.transport.add_peer(1, std::slice::from_ref(&a.url)),
            Err(PeerError::Url { .. })
        ));
        assert!(matches!(
            a.transport.update_peer(3, std::slice::from_ref(&a.url)),
            Err(PeerError::UnknownPeer(3))
        ));
        assert!(a.transport.peers().is_empty());
        a.stop().await;
    });
}

/// Goal: the fault-injection partition cuts both directions and heals. Method: two members
/// exchange frames, are cut on both sides (frames to the other are dropped and counted, the
/// peer is reported unreachable), then healed (frames flow again, in order).
#[test]
fn an_injected_partition_cuts_and_heals() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        b.dial(1, &a);
        let wait = Duration::from_secs(10);
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();
        within(
            wait,
            "a frame before the cut",
            b.transport.recv(Lane::Control),
        )
        .await;
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Reachable { peer: 2 }
        ));
        // b's control lane is dialed at once too, though b has sent nothing.
        assert!(matches!(
            next_event(&b.transport).await,
            PeerEvent::Reachable { peer: 1 }
        ));

        a.transport.set_partitioned(2, true);
        b.transport.set_partitioned(1, true);
        for sequence in 1..=3 {
            let _ = a
                .transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 32));
            let _ = b
                .transport
                .send(1, Lane::Control, pattern_frame(1, sequence, 32));
        }
        match next_event(&a.transport).await {
            PeerEvent::Unreachable { peer: 2, error } => {
                assert!(error.to_string().contains("partitioned"), "{error}")
            }
            other => panic!("unexpected {other:?}"),
        }
        // b's own control lane reached a before the cut (it dials at once): skip that.
        loop {
            match next_event(&b.transport).await {
                PeerEvent::Reachable { peer: 1 } => continue,
                PeerEvent::Unreachable { peer: 1, .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        within(wait, "the cut frames to be counted", async {
            while a.transport.stats()[0].sent_failures < 3 {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;

        a.transport.set_partitioned(2, false);
        b.transport.set_partitioned(1, false);
        let (_, first_after) = within(
            wait,
            "a frame after healing",
            send_until_one_arrives(&a.transport, &b.transport, &mut 100, 32),
        )
        .await;
        assert!(
            first_after >= 100,
            "a frame sent across the cut arrived: {first_after}"
        );
        a.stop().await;
        b.stop().await;
    });
}

/// Goal: a member knows since when each peer has been reachable (etcd's `ActiveSince`, which
/// the reconfiguration health rules read), even a peer it never sent anything. Method: b adds
/// a and sends nothing; its control lane connects on its own, `active_since` is set and stays
/// put while connected; once a stops, it is cleared.
#[test]
fn active_since_follows_a_silent_peer() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        let before = std::time::Instant::now();
        b.dial(1, &a);
        assert!(matches!(
            next_event(&b.transport).await,
            PeerEvent::Reachable { peer: 1 }
        ));
        let since = b.transport.active_since(1).expect("reachable");
        assert!(since >= before);
        glommio::timer::sleep(Duration::from_millis(300)).await;
        assert_eq!(b.transport.active_since(1), Some(since));
        a.stop().await;
        assert!(matches!(
            next_event(&b.transport).await,
            PeerEvent::Unreachable { peer: 1, .. }
        ));
        assert_eq!(b.transport.active_since(1), None);
        b.stop().await;
    });
}
