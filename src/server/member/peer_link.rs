//! The member's link to the other members: raft messages encoded onto the peer transport
//! (`basalt_net::peer`) and decoded from it. Appends ride their own lane so that heartbeats,
//! votes and read-index rounds never wait behind a large append.
//!
//! Everything runs on the raft owner's executor: the transport's connections, one task per
//! lane that feeds what arrives into the member, and one that tells the member of a peer lost.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use basalt_net::peer::{
    Lane, PeerError, PeerEvent, Refusal, SendError, TlsDialer, Transport, TransportConfig,
};
use prost::Message as _;
use raft::prelude::{Message, MessageType};

use super::leader_forward::{self, LeaderForwarder, LeaderQuery, LeaderReply};
use super::raft_member::{Member, PeerOutlet};
use super::snapshot_sender::SnapshotSender;
use crate::server::peer_tls::PeerTls;

/// The member's side of the transport.
pub struct PeerLink {
    transport: Transport,
    /// Lease questions this member forwards to the leader (`leader_forward.rs`).
    leases: Rc<LeaderForwarder>,
    /// MsgSnapshot goes out with the engine's data, on a connection of its own.
    snapshots: SnapshotSender,
}

impl PeerOutlet for PeerLink {
    fn send(&self, message: Message) -> bool {
        let lane = match message.get_msg_type() {
            MessageType::MsgAppend => Lane::Append,
            MessageType::MsgSnapshot => return self.snapshots.start(message),
            _ => Lane::Control,
        };
        let to = message.to;
        let frame = bytes::Bytes::from(message.encode_to_vec());
        match self.transport.send(to, lane, frame) {
            Ok(()) => true,
            Err(SendError::UnknownPeer(_)) => {
                tracing::debug!(to = format!("{to:x}"), "no peer link to this member");
                false
            }
            Err(_) => false,
        }
    }

    fn forward_to_leader(
        &self,
        to: u64,
        query: LeaderQuery,
    ) -> Pin<Box<dyn Future<Output = Option<LeaderReply>>>> {
        self.leases.ask(to, query)
    }

    fn active_since(&self, peer: u64) -> Option<std::time::Instant> {
        self.transport.active_since(peer)
    }

    fn set_peer(&self, id: u64, peer_urls: Option<&[String]>) {
        match peer_urls {
            Some(urls) => {
                if let Err(error) = self.transport.add_peer(id, urls) {
                    tracing::warn!(peer = format!("{id:x}"), %error, "cannot dial this member");
                }
            }
            None => self.transport.remove_peer(id),
        }
    }
}

/// Starts the peer transport for `member`: serves `listen` (the peer URLs' addresses, each
/// with whether it is `https://`), dials every other member it knows (through `tls` for
/// `https://` URLs; and `joined_peers`, the running cluster's members a joining member learned
/// before its log tells it), feeds received messages into raft, and answers
/// `GET /basalt/members` on the peer port for members that join; snapshots are taken into
/// `db_dir` (the database's directory).
pub fn start(
    member: &Rc<Member>,
    cluster_id: u64,
    max_request_bytes: usize,
    listen: &[(SocketAddr, bool)],
    tls: Option<&PeerTls>,
    joined_peers: &[(u64, Vec<String>)],
    db_dir: PathBuf,
) -> Result<(), String> {
    let own = member.headers().identity().member_id;
    let config = TransportConfig::new(cluster_id, own, max_request_bytes);
    let transport = match tls {
        Some(tls) => Transport::with_dialer(config, Rc::new(TlsDialer::new(tls.client.clone()))),
        None => Transport::new(config),
    };
    member.metrics().add_peers(transport.metrics());
    let listing = member.clone();
    transport.set_http1(move |request| {
        let response = if request.path() == super::join::MEMBERS_PATH {
            basalt_net::http1::Http1Response::json(super::join::members_json(
                cluster_id,
                &listing.cluster(),
            ))
        } else {
            basalt_net::http1::Http1Response::not_found()
        };
        Box::pin(async move { response })
    });
    for (address, secure) in listen {
        // Claimed first: a peer port another server listens on is refused, not shared.
        let listener = basalt_net::claim(*address)
            .and_then(|()| basalt_net::bind(*address))
            .map_err(|e| format!("listening for peers on {address}: {e}"))?;
        let serving = transport.clone();
        match (secure, tls) {
            (true, Some(tls)) => {
                let server = tls.server.clone();
                let check_client_san = tls.check_client_san;
                glommio::spawn_local(async move {
                    serving.serve_tls(listener, server, check_client_san).await
                })
                .detach();
            }
            (true, None) => return Err(format!("https peer URL {address} without peer TLS")),
            (false, _) => {
                glommio::spawn_local(async move { serving.serve(listener).await }).detach();
            }
        }
    }
    let mut peers: Vec<(u64, Vec<String>)> = member
        .cluster()
        .members()
        .filter(|(id, _)| *id != own)
        .map(|(id, urls)| (id, urls.to_vec()))
        .collect();
    peers.extend(joined_peers.iter().filter(|(id, _)| *id != own).cloned());
    for (id, urls) in peers {
        transport
            .add_peer(id, &urls)
            .map_err(|e| format!("adding peer {id:x} at {urls:?}: {e}"))?;
    }
    let leases = Rc::new(LeaderForwarder::new(transport.clone()));
    for lane in Lane::FRAMED {
        let (receiving, transport) = (member.clone(), transport.clone());
        let leases = leases.clone();
        glommio::spawn_local(async move {
            loop {
                let (from, frame) = transport.recv(lane).await;
                if frame.first() == Some(&leader_forward::FRAME_MARKER) {
                    leader_forward::on_frame(&receiving, &leases, from, frame);
                    continue;
                }
                match Message::decode(frame) {
                    Ok(message) if message.from == from => receiving.receive(message),
                    Ok(message) => tracing::warn!(
                        from = format!("{from:x}"),
                        claimed = format!("{:x}", message.from),
                        "dropped a raft message whose sender is not its connection's member"
                    ),
                    Err(error) => tracing::warn!(
                        from = format!("{from:x}"),
                        %error,
                        "dropped a raft message that does not decode"
                    ),
                }
            }
        })
        .detach();
    }
    let (watching, events) = (member.clone(), transport.clone());
    glommio::spawn_local(async move {
        loop {
            if let PeerEvent::Unreachable { peer, error } = events.next_event().await {
                watching.peer_unreachable(peer);
                // A peer refuses this member as removed only once it applied the removal, so
                // the removal committed; etcd's member stops on that refusal too.
                if matches!(error, PeerError::Refused(Refusal::Removed)) {
                    watching.stop_removed("a peer refused it as removed");
                }
            }
        }
    })
    .detach();
    super::snapshot_installer::start(transport.clone(), Rc::downgrade(member), db_dir);
    let snapshots = SnapshotSender::new(transport.clone(), Rc::downgrade(member));
    member.attach_peers(Rc::new(PeerLink {
        transport,
        leases,
        snapshots,
    }));
    Ok(())
}
