//! Goal: the handshake refuses a dialer from another cluster, a dialer that means another
//! member, and a removed member, with etcd's reason texts, and both sides say so: the dialer
//! reports the refusal in its reachability event and logs it, the listener logs it.

use basalt_net::peer::{PeerError, PeerEvent, Refusal};

use crate::support::{next_event, run, Member};

/// Sends a frame from `dialer` to `to` and returns the refusal its event reports.
async fn refusal_seen(dialer: &Member, to: u64) -> Refusal {
    dialer
        .transport
        .send(
            to,
            basalt_net::peer::Lane::Control,
            bytes::Bytes::from_static(b"hello"),
        )
        .unwrap();
    match next_event(&dialer.transport).await {
        PeerEvent::Unreachable {
            peer,
            error: PeerError::Refused(refusal),
        } => {
            assert_eq!(peer, to);
            refusal
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn wrong_cluster_id_is_refused_on_both_sides() {
    run(|logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(8, 2);
        a.dial(2, &b);
        let refusal = refusal_seen(&a, 2).await;
        assert_eq!(refusal, Refusal::ClusterIdMismatch);
        assert_eq!(refusal.to_string(), "cluster ID mismatch");
        logs.wait_for(&["request cluster ID mismatch", "remote_peer_cluster_id=7"])
            .await;
        logs.wait_for(&["peer refused the connection", "cluster ID mismatch"])
            .await;
        assert!(!a.transport.is_reachable(2));
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn wrong_receiver_id_is_refused_on_both_sides() {
    run(|logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        // a believes member 3 listens at b's URL.
        a.transport
            .add_peer(3, std::slice::from_ref(&b.url))
            .unwrap();
        let refusal = refusal_seen(&a, 3).await;
        assert_eq!(refusal, Refusal::WrongReceiver);
        assert_eq!(refusal.to_string(), "to field mismatch");
        logs.wait_for(&[
            "ignored streaming request; ID mismatch",
            "remote_peer_id_header=3",
        ])
        .await;
        logs.wait_for(&["peer refused the connection", "to field mismatch"])
            .await;
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn removed_member_is_refused_on_both_sides() {
    run(|logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        a.dial(2, &b);
        b.dial(1, &a);
        // Connected first, so the removal must also close what is open.
        a.transport
            .send(
                2,
                basalt_net::peer::Lane::Control,
                bytes::Bytes::from_static(b"x"),
            )
            .unwrap();
        assert!(matches!(
            next_event(&a.transport).await,
            PeerEvent::Reachable { peer: 2 }
        ));
        b.transport.remove_peer(1);
        assert!(b.transport.peers().is_empty());
        // a's connection is closed by b; its next dial is refused.
        let refusal = loop {
            a.transport
                .send(
                    2,
                    basalt_net::peer::Lane::Control,
                    bytes::Bytes::from_static(b"x"),
                )
                .ok();
            match next_event(&a.transport).await {
                PeerEvent::Unreachable {
                    error: PeerError::Refused(refusal),
                    ..
                } => break refusal,
                PeerEvent::Unreachable { .. } => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(refusal, Refusal::Removed);
        assert_eq!(
            refusal.to_string(),
            "the member has been permanently removed from the cluster"
        );
        logs.wait_for(&["rejected stream from remote peer because it was removed"])
            .await;
        logs.wait_for(&["peer refused the connection", "permanently removed"])
            .await;
        a.stop().await;
        b.stop().await;
    });
}
