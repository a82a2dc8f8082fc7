//! The member's link to the other members: raft messages encoded onto the peer transport
//! (`basalt_net::peer`) and decoded from it. Appends ride their own lane so that heartbeats,
//! votes and read-index rounds never wait behind a large append.
//!
//! Everything runs on the raft owner's executor: the transport's connections, one task per
//! lane that feeds what arrives into the member, and one that tells the member of a peer lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use basalt_net::peer::{Lane, PeerEvent, SendError, Transport, TransportConfig};
use prost::Message as _;
use raft::prelude::{Message, MessageType};

use super::raft_member::{Member, PeerOutlet};
use super::snapshot_sender::SnapshotSender;

/// The member's side of the transport.
pub struct PeerLink {
    transport: Transport,
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

/// Starts the peer transport for `member`: serves `listen` (the peer URLs' addresses), dials
/// every other member it knows (and `joined_peers`, the running cluster's members a joining
/// member learned before its log tells it), feeds received messages into raft, and answers
/// `GET /basalt/members` on the peer port for members that join; snapshots are taken into
/// `db_dir` (the database's directory).
pub fn start(
    member: &Rc<Member>,
    cluster_id: u64,
    max_request_bytes: usize,
    listen: &[SocketAddr],
    joined_peers: &[(u64, Vec<String>)],
    db_dir: PathBuf,
) -> Result<(), String> {
    let own = member.headers().identity().member_id;
    let transport = Transport::new(TransportConfig::new(cluster_id, own, max_request_bytes));
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
    for address in listen {
        let listener = basalt_net::bind(*address)
            .map_err(|e| format!("listening for peers on {address}: {e}"))?;
        let serving = transport.clone();
        glommio::spawn_local(async move { serving.serve(listener).await }).detach();
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
    for lane in Lane::FRAMED {
        let (receiving, transport) = (member.clone(), transport.clone());
        glommio::spawn_local(async move {
            loop {
                let (from, frame) = transport.recv(lane).await;
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
            if let PeerEvent::Unreachable { peer, .. } = events.next_event().await {
                watching.peer_unreachable(peer);
            }
        }
    })
    .detach();
    super::snapshot_installer::start(transport.clone(), Rc::downgrade(member), db_dir);
    let snapshots = SnapshotSender::new(transport.clone(), Rc::downgrade(member));
    member.attach_peers(Rc::new(PeerLink {
        transport,
        snapshots,
    }));
    Ok(())
}
