//! The transport: the membership it dials, the send queues, the listener's inboxes, and the
//! API the member drives. Everything lives on one executor (the raft owner's): `Rc`, no locks.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_lite::FutureExt;
use glommio::net::TcpListener;
use glommio::Task;

use super::config::{QueueLimit, TransportConfig};
use super::dial::{resolve_urls, with_timeout, Closer, Dialer, PeerStream, TcpDialer};
use super::error::{PeerError, Refusal};
use super::events::{Events, PeerEvent};
use super::lane::Lane;
use super::link::{LaneState, PeerLink, HANDSHAKE_TIMEOUT};
use super::listener::{admit, serve_connection, ACCEPT_ERROR_BACKOFF};
use super::queue::BoundedQueue;
use super::snapshot::{IncomingSnapshot, SnapshotWriter};
use super::stats::{PeerCounters, PeerMetrics, PeerStats};
use super::writer::run_lane_writer;
use crate::http1::{Http1Answer, Http1Handler, Http1Request};
use crate::tls::{check_client_san, ServerTls};

/// Snapshot transfers handed to the member and not yet taken; more wait on their connection.
const SNAPSHOTS_QUEUED_MAX: usize = 2;

/// Why `send` did not queue a frame. Raft tolerates the loss; the member may
/// `report_unreachable` the peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer is not in the membership.
    #[error("unknown peer {0:x}")]
    UnknownPeer(u64),
    /// The lane's queue to this peer is full (frames or bytes).
    #[error("the {0} queue to peer {1:x} is full")]
    QueueFull(&'static str, u64),
    /// The frame exceeds the frame limit.
    #[error("frame of {bytes} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Snapshots go through `open_snapshot`, not `send`.
    #[error("snapshots are sent with open_snapshot")]
    SnapshotLane,
}

/// One member of the membership, as the transport holds it.
struct Peer {
    urls: Vec<String>,
    link: Rc<PeerLink>,
    queues: [Rc<BoundedQueue<Bytes>>; 2],
    /// The lane writers; dropping them (removal) cancels them and closes their connections.
    _writers: [Task<()>; 2],
}

/// The current inbound connection (its ID and closer) per sender and lane.
type InboundConnections = HashMap<(u64, Lane), (u64, Rc<Closer>)>;

/// State shared by the API, the accept loop and the inbound connections.
pub(crate) struct Shared {
    pub config: TransportConfig,
    dialer: Rc<dyn Dialer>,
    epoch: Instant,
    events: Rc<Events>,
    peers: RefCell<HashMap<u64, Peer>>,
    removed: RefCell<HashSet<u64>>,
    /// Fault injection: peers cut off in both directions (`Transport::set_partitioned`).
    partitioned: RefCell<HashSet<u64>>,
    metrics: Arc<PeerMetrics>,
    /// The current inbound connection per sender and framed lane: a newer one closes the
    /// older (the sender redialed), removal closes both.
    inbound: RefCell<InboundConnections>,
    next_connection_id: Cell<u64>,
    pub inbound_open: Cell<usize>,
    pub inboxes: [BoundedQueue<(u64, Bytes)>; 2],
    pub snapshots: BoundedQueue<IncomingSnapshot>,
    /// Answers HTTP/1.1 requests that arrive on the peer port (`Transport::set_http1`).
    pub http1: RefCell<Option<Rc<Http1Handler>>>,
    /// Raised by `Transport::shutdown`: the accept loop and inbound connections end.
    pub shutdown: Closer,
}

impl Shared {
    /// The refusal a hello earns, if any, logged with etcd's words.
    pub fn check_hello(&self, hello: &super::wire::Hello, remote: &str) -> Option<Refusal> {
        let local = format!("{:x}", self.config.local_id);
        let from = format!("{:x}", hello.from);
        if hello.cluster_id != self.config.cluster_id {
            tracing::warn!(local_member_id = %local, local_member_cluster_id = %format!("{:x}", self.config.cluster_id),
                remote_peer_id = %from, remote_peer_cluster_id = %format!("{:x}", hello.cluster_id),
                remote = %remote, "request cluster ID mismatch");
            return Some(Refusal::ClusterIdMismatch);
        }
        if self.removed.borrow().contains(&hello.from) {
            tracing::warn!(local_member_id = %local, remote_peer_id_from = %from, remote = %remote,
                "rejected stream from remote peer because it was removed");
            return Some(Refusal::Removed);
        }
        if hello.to != self.config.local_id {
            tracing::warn!(local_member_id = %local, remote_peer_id_header = %format!("{:x}", hello.to),
                remote_peer_id_from = %from, remote = %remote, "ignored streaming request; ID mismatch");
            return Some(Refusal::WrongReceiver);
        }
        None
    }

    /// Whether fault injection cut `peer` off.
    pub fn is_partitioned(&self, peer: u64) -> bool {
        self.partitioned.borrow().contains(&peer)
    }

    /// Closes the inbound connections from `peer`.
    fn close_inbound_from(&self, peer: u64) {
        let closers: Vec<Rc<Closer>> = self
            .inbound
            .borrow()
            .iter()
            .filter(|((from, _), _)| *from == peer)
            .map(|(_, (_, closer))| closer.clone())
            .collect();
        for closer in closers {
            closer.close();
        }
    }

    /// The counters of `peer`, created on first use while under the bound.
    pub fn counters_for(&self, peer: u64) -> Option<Arc<PeerCounters>> {
        self.metrics.counters_for(peer, false)
    }

    /// Makes `closer`'s connection the current one of `from` on `lane`, closing the older.
    pub fn register_inbound(&self, from: u64, lane: Lane, closer: Rc<Closer>) -> u64 {
        let id = self.next_connection_id.get();
        self.next_connection_id.set(id + 1);
        if self.shutdown.is_closed() {
            closer.close();
            return id;
        }
        if let Some((_, older)) = self.inbound.borrow_mut().insert((from, lane), (id, closer)) {
            older.close();
        }
        id
    }

    /// Forgets connection `id` if it is still the current one of `from` on `lane`.
    pub fn unregister_inbound(&self, from: u64, lane: Lane, id: u64) {
        let mut inbound = self.inbound.borrow_mut();
        if inbound
            .get(&(from, lane))
            .is_some_and(|(current, _)| *current == id)
        {
            inbound.remove(&(from, lane));
        }
    }
}

/// The peer transport of one member: moves opaque frames to and from the other members over
/// one TCP connection per peer and lane. Cheap to clone (`Rc`); lives on one executor.
#[derive(Clone)]
pub struct Transport {
    shared: Rc<Shared>,
}

impl Transport {
    /// A transport dialing plain TCP.
    pub fn new(config: TransportConfig) -> Transport {
        Transport::with_dialer(config, Rc::new(TcpDialer))
    }

    /// A transport that opens its connections with `dialer` (peer TLS, fault injection).
    pub fn with_dialer(config: TransportConfig, dialer: Rc<dyn Dialer>) -> Transport {
        let inbox = |limit: QueueLimit| BoundedQueue::new(limit.frames, limit.bytes);
        let metrics = Arc::new(PeerMetrics::new(config.local_id));
        Transport {
            shared: Rc::new(Shared {
                inboxes: [inbox(config.control_inbox), inbox(config.append_inbox)],
                snapshots: BoundedQueue::new(SNAPSHOTS_QUEUED_MAX, usize::MAX),
                config,
                dialer,
                epoch: Instant::now(),
                events: Rc::new(Events::new()),
                peers: RefCell::default(),
                removed: RefCell::default(),
                partitioned: RefCell::default(),
                metrics,
                inbound: RefCell::default(),
                next_connection_id: Cell::new(0),
                inbound_open: Cell::new(0),
                http1: RefCell::new(None),
                shutdown: Closer::default(),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    /// Accepts peer connections on `listener` until `shutdown`; each connection is served by
    /// a task of its own on this executor.
    pub async fn serve(&self, listener: TcpListener) {
        self.accept_loop(listener, None).await
    }

    /// As `serve`, for an `https://` peer listener: each connection's TLS handshake (etcd's
    /// `--peer-cert-file`, `--peer-client-cert-auth`, `--peer-trusted-ca-file`, ...) runs on
    /// its own task, then the peer protocol runs inside TLS. With `check_client_san` (etcd's
    /// default; `--experimental-peer-skip-client-san-verification` turns it off) a client
    /// certificate's SANs must name the connection's remote IP.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Arc<ServerTls>,
        check_client_san: bool,
    ) {
        self.accept_loop(listener, Some((tls, check_client_san)))
            .await
    }

    async fn accept_loop(&self, listener: TcpListener, tls: Option<(Arc<ServerTls>, bool)>) {
        loop {
            let accepted = async { Some(listener.accept().await) }
                .or(async {
                    self.shared.shutdown.closed().await;
                    None
                })
                .await;
            match accepted {
                None => return,
                Some(Ok(stream)) => {
                    let remote_address = stream.peer_addr().ok();
                    let remote = remote_address
                        .map(|address| address.to_string())
                        .unwrap_or_default();
                    let _ = stream.set_nodelay(true);
                    match &tls {
                        None => self.serve_stream(Box::new(stream), remote),
                        Some((tls, check_client_san)) => {
                            let Some(count) = admit(&self.shared, &remote) else {
                                continue;
                            };
                            let shared = self.shared.clone();
                            let acceptor = tls.acceptor();
                            let check_client_san = *check_client_san;
                            glommio::spawn_local(async move {
                                // The SAN check's DNS lookups are under the handshake's
                                // deadline too: a stuck resolver must not hold the slot.
                                let handshake = with_timeout(HANDSHAKE_TIMEOUT, async {
                                    let stream =
                                        acceptor.accept(stream).await.map_err(|e| e.to_string())?;
                                    if check_client_san {
                                        check_peer_san(&stream, remote_address).await?;
                                    }
                                    Ok::<_, String>(stream)
                                })
                                .await;
                                match handshake {
                                    Some(Ok(stream)) => {
                                        serve_connection(shared, Box::new(stream), remote, count).await
                                    }
                                    Some(Err(error)) => tracing::warn!(remote = %remote,
                                        error = %error, "rejected connection on peer endpoint"),
                                    None => tracing::warn!(remote = %remote,
                                        "rejected connection on peer endpoint: TLS handshake timed out"),
                                }
                            })
                            .detach();
                        }
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "accepting a peer connection failed");
                    glommio::timer::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// Answers the HTTP/1.1 requests that reach the peer port (etcd serves `/version`,
    /// `/members`, ... there) with `handler`; without one they are closed unanswered.
    pub fn set_http1(&self, handler: impl Fn(Http1Request) -> Http1Answer + 'static) {
        *self.shared.http1.borrow_mut() = Some(Rc::new(handler));
    }

    /// Stops the transport: `serve` returns (dropping its listener), inbound connections
    /// close, every peer's writers stop and their queues are dropped.
    pub fn shutdown(&self) {
        self.shared.shutdown.close();
        let peers: Vec<Peer> = self
            .shared
            .peers
            .borrow_mut()
            .drain()
            .map(|(_, peer)| peer)
            .collect();
        for peer in &peers {
            for queue in &peer.queues {
                queue.close();
                queue.clear();
            }
        }
        drop(peers);
        let closers: Vec<Rc<Closer>> = self
            .shared
            .inbound
            .borrow_mut()
            .drain()
            .map(|(_, (_, closer))| closer)
            .collect();
        for closer in closers {
            closer.close();
        }
    }

    /// Serves one accepted stream (already decrypted, for peer TLS) on a task of its own.
    pub fn serve_stream(&self, stream: PeerStream, remote: String) {
        let Some(count) = admit(&self.shared, &remote) else {
            return;
        };
        glommio::spawn_local(serve_connection(self.shared.clone(), stream, remote, count)).detach();
    }

    /// Adds a member to dial at `urls` (etcd's peer URLs, `http://host:port`); an existing
    /// member's URLs are updated instead.
    pub fn add_peer(&self, id: u64, urls: &[String]) -> Result<(), PeerError> {
        if self.shared.peers.borrow().contains_key(&id) {
            return self.update_peer(id, urls);
        }
        if id == self.shared.config.local_id {
            return Err(PeerError::Url {
                url: urls.join(","),
                problem: "a member does not dial itself".into(),
            });
        }
        let addresses = resolve_urls(urls, self.shared.dialer.supports_tls())?;
        let config = &self.shared.config;
        let counters = self
            .shared
            .metrics
            .counters_for(id, true)
            .expect("members are always counted");
        counters.member.set(1);
        let link = Rc::new(PeerLink {
            peer: id,
            cluster_id: config.cluster_id,
            local_id: config.local_id,
            dialer: self.shared.dialer.clone(),
            addresses: RefCell::new(addresses),
            preferred_address: Cell::new(0),
            generation: Cell::new(0),
            partitioned: Cell::new(self.shared.partitioned.borrow().contains(&id)),
            counters,
            lane_states: [Cell::new(LaneState::Idle), Cell::new(LaneState::Idle)],
            last_error: RefCell::new(None),
            active_since: Cell::new(None),
            events: self.shared.events.clone(),
            epoch: self.shared.epoch,
            ping_interval: config.ping_interval,
            pong_timeout: config.pong_timeout,
        });
        let queue = |limit: QueueLimit| Rc::new(BoundedQueue::new(limit.frames, limit.bytes));
        let queues = [queue(config.control_queue), queue(config.append_queue)];
        let writers = [Lane::Control, Lane::Append].map(|lane| {
            let queue = queues[lane.framed_index()].clone();
            glommio::spawn_local(run_lane_writer(link.clone(), lane, queue))
        });
        self.shared.peers.borrow_mut().insert(
            id,
            Peer {
                urls: urls.to_vec(),
                link,
                queues,
                _writers: writers,
            },
        );
        Ok(())
    }

    /// Changes a member's URLs; its connections are redialed at the new ones.
    pub fn update_peer(&self, id: u64, urls: &[String]) -> Result<(), PeerError> {
        let addresses = resolve_urls(urls, self.shared.dialer.supports_tls())?;
        let mut peers = self.shared.peers.borrow_mut();
        let peer = peers.get_mut(&id).ok_or(PeerError::UnknownPeer(id))?;
        peer.urls = urls.to_vec();
        *peer.link.addresses.borrow_mut() = addresses;
        peer.link.preferred_address.set(0);
        peer.link.generation.set(peer.link.generation.get() + 1);
        for queue in &peer.queues {
            queue.kick();
        }
        Ok(())
    }

    /// Removes a member: its connections close, its queued frames are dropped, and the
    /// listener refuses it from now on ("the member has been permanently removed from the
    /// cluster").
    pub fn remove_peer(&self, id: u64) {
        self.shared.removed.borrow_mut().insert(id);
        if let Some(peer) = self.shared.peers.borrow_mut().remove(&id) {
            for queue in &peer.queues {
                queue.close();
                queue.clear();
            }
        }
        self.shared.close_inbound_from(id);
        self.shared.metrics.forget(id);
    }

    /// Fault injection (partition tests): cuts this member off from `peer` in both
    /// directions, or heals the cut. While cut, connections to and from `peer` are closed,
    /// dials to it fail, its dials here get no answer, and frames to it are dropped and
    /// counted, as across a real partition. Apply it on both sides for a symmetric partition.
    pub fn set_partitioned(&self, peer: u64, partitioned: bool) {
        if partitioned {
            self.shared.partitioned.borrow_mut().insert(peer);
            self.shared.close_inbound_from(peer);
        } else {
            self.shared.partitioned.borrow_mut().remove(&peer);
        }
        if let Some(member) = self.shared.peers.borrow().get(&peer) {
            member.link.partitioned.set(partitioned);
            member.link.generation.set(member.link.generation.get() + 1);
            for queue in &member.queues {
                queue.kick();
            }
        }
        tracing::warn!(peer_id = %format!("{peer:x}"), partitioned, "peer partition injected");
    }

    /// The members it dials, with their URLs.
    pub fn peers(&self) -> Vec<(u64, Vec<String>)> {
        let mut peers: Vec<_> = self
            .shared
            .peers
            .borrow()
            .iter()
            .map(|(id, peer)| (*id, peer.urls.clone()))
            .collect();
        peers.sort_unstable_by_key(|(id, _)| *id);
        peers
    }

    /// Queues `frame` for `to` on `lane` without waiting; a full queue drops it (counted as a
    /// send failure) and says so.
    pub fn send(&self, to: u64, lane: Lane, frame: Bytes) -> Result<(), SendError> {
        if lane == Lane::Snapshot {
            return Err(SendError::SnapshotLane);
        }
        let limit = self.shared.config.max_frame_bytes;
        if frame.len() > limit {
            return Err(SendError::FrameTooLarge {
                bytes: frame.len(),
                limit,
            });
        }
        let peers = self.shared.peers.borrow();
        let peer = peers.get(&to).ok_or(SendError::UnknownPeer(to))?;
        let bytes = frame.len();
        peer.queues[lane.framed_index()]
            .try_push(frame, bytes)
            .map_err(|_| {
                peer.link.counters.sent_failures.inc();
                SendError::QueueFull(lane.name(), to)
            })
    }

    /// The next frame received on `lane` (`Control` or `Append`), with its sender. Read each
    /// lane from its own loop: an unread append inbox slows appends only.
    pub async fn recv(&self, lane: Lane) -> (u64, Bytes) {
        self.shared.inboxes[lane.framed_index()]
            .pop()
            .await
            .expect("inboxes are never closed")
    }

    /// The next incoming snapshot transfer.
    pub async fn recv_snapshot(&self) -> IncomingSnapshot {
        self.shared
            .snapshots
            .pop()
            .await
            .expect("the snapshot inbox is never closed")
    }

    /// Opens a snapshot transfer to `to`: a connection of its own, starting with `header`
    /// (opaque to the transport, at most the frame limit).
    pub async fn open_snapshot(&self, to: u64, header: &[u8]) -> Result<SnapshotWriter, PeerError> {
        let limit = self.shared.config.max_frame_bytes;
        if header.len() > limit {
            return Err(PeerError::FrameTooLarge {
                bytes: header.len(),
                limit,
            });
        }
        let link = self
            .shared
            .peers
            .borrow()
            .get(&to)
            .map(|peer| peer.link.clone())
            .ok_or(PeerError::UnknownPeer(to))?;
        let (stream, peer_limit) = link.connect(Lane::Snapshot).await?;
        if header.len() > peer_limit {
            return Err(PeerError::FrameTooLarge {
                bytes: header.len(),
                limit: peer_limit,
            });
        }
        SnapshotWriter::open(to, stream, header, link.counters.clone()).await
    }

    /// The next change of a peer's reachability.
    pub async fn next_event(&self) -> PeerEvent {
        self.shared.events.next().await
    }

    /// Whether `peer`'s lanes in use are connected.
    pub fn is_reachable(&self, peer: u64) -> bool {
        self.shared
            .peers
            .borrow()
            .get(&peer)
            .is_some_and(|peer| peer.link.reachable())
    }

    /// Since when `peer` has been reachable without a break; `None` while it is not (or is
    /// not a member). etcd's `Transport.ActiveSince`, which its `--strict-reconfig-check`
    /// health rules read.
    pub fn active_since(&self, peer: u64) -> Option<std::time::Instant> {
        self.shared
            .peers
            .borrow()
            .get(&peer)
            .and_then(|peer| peer.link.active_since.get())
    }

    /// Every counted peer's counters as read now, ordered by ID.
    pub fn stats(&self) -> Vec<PeerStats> {
        self.shared.metrics.snapshot()
    }

    /// The per-peer counters, to share with the cores that serve `/metrics`.
    pub fn metrics(&self) -> Arc<PeerMetrics> {
        self.shared.metrics.clone()
    }
}

/// etcd's `checkSAN` on an accepted peer connection: the client certificate it presented (if
/// any: without `--peer-client-cert-auth` none is asked for) must name `remote`'s IP.
async fn check_peer_san<S>(
    stream: &futures_rustls::server::TlsStream<S>,
    remote: Option<std::net::SocketAddr>,
) -> Result<(), String> {
    let Some(end_entity) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|certificate| certificate.clone().into_owned())
    else {
        return Ok(());
    };
    let remote = remote.ok_or("the connection has no remote address to check its SANs against")?;
    check_client_san(&end_entity, remote.ip()).await
}
