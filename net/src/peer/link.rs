//! A peer as its writer tasks see it: where to dial, what to say in the handshake, what to
//! count, and where to report its reachability. Shared (`Rc`) by the peer's lane writers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;

use super::dial::{with_timeout, Dialer, PeerAddress, PeerStream};
use super::error::PeerError;
use super::events::{Events, PeerEvent};
use super::lane::Lane;
use super::stats::PeerCounters;
use super::wire::{read_answer, Hello};

/// How long a dial may take before the next address (or a retry) is tried. Peers are on a
/// LAN; a second is what etcd's peer dialer allows too.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the listener's answer to a hello may take: it needs no disk and no raft, so a
/// slow answer means a wedged peer.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a lane's connection is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaneState {
    /// Never needed yet (no frame sent on it).
    Idle,
    /// Connected and handshaken.
    Connected,
    /// The last dial or write failed.
    Failed,
}

/// One peer's dialing state, shared by its lane writers.
pub(crate) struct PeerLink {
    pub peer: u64,
    pub cluster_id: u64,
    pub local_id: u64,
    pub dialer: Rc<dyn Dialer>,
    pub addresses: RefCell<Vec<PeerAddress>>,
    /// The address that answered last, tried first next time.
    pub preferred_address: Cell<usize>,
    /// Bumped when the peer's URLs change (or a partition is injected): writers drop their
    /// connection and redial.
    pub generation: Cell<u64>,
    /// Fault injection: every dial fails, as if the network between us were cut.
    pub partitioned: Cell<bool>,
    pub counters: Arc<PeerCounters>,
    pub lane_states: [Cell<LaneState>; 2],
    /// Why the peer was last reported unreachable (`None` while reachable).
    pub last_error: RefCell<Option<String>>,
    /// Since when the peer has been reachable without a break (`None` while it is not):
    /// etcd's `ActiveSince`.
    pub active_since: Cell<Option<Instant>>,
    pub events: Rc<Events>,
    /// The origin of ping timestamps.
    pub epoch: Instant,
    /// How often the control lane pings (`TransportConfig::ping_interval`).
    pub ping_interval: Duration,
    /// Silence after which the control connection is dropped (`TransportConfig::pong_timeout`).
    pub pong_timeout: Duration,
}

impl PeerLink {
    /// Whether the peer counts as reachable: some lane connected and none failing.
    pub fn reachable(&self) -> bool {
        let states = self.lane_states.iter().map(Cell::get);
        let mut any_connected = false;
        for state in states {
            match state {
                LaneState::Failed => return false,
                LaneState::Connected => any_connected = true,
                LaneState::Idle => {}
            }
        }
        any_connected
    }

    /// Records a lane's new state, and reports a change of the peer's reachability, or of
    /// why it is unreachable (one log line and one event per change, never one per retry).
    /// `error` says why a lane left `Connected` (a closed idle connection goes back to
    /// `Idle`: nothing was lost, and the next frame redials).
    pub fn set_lane_state(&self, lane: Lane, state: LaneState, error: Option<&PeerError>) {
        let before = self.reachable();
        self.lane_states[lane.framed_index()].set(state);
        let after = self.reachable();
        let peer = format!("{:x}", self.peer);
        if after {
            if !before {
                self.last_error.borrow_mut().take();
                self.active_since.set(Some(Instant::now()));
                self.counters.active.set(1);
                tracing::info!(peer_id = %peer, "peer became active");
                self.events.push(PeerEvent::Reachable { peer: self.peer });
            }
            return;
        }
        let error = match (error, before) {
            (Some(error), _) => error.clone(),
            (None, true) => PeerError::Io("the connection closed".into()),
            (None, false) => return,
        };
        let reason = error.to_string();
        if !before && self.last_error.borrow().as_deref() == Some(reason.as_str()) {
            return;
        }
        self.active_since.set(None);
        if before {
            self.counters.active.set(0);
            self.counters.disconnects.inc();
        }
        tracing::warn!(peer_id = %peer, lane = lane.name(), error = %reason,
            "peer became inactive (message send to peer failed)");
        *self.last_error.borrow_mut() = Some(reason);
        self.events.push(PeerEvent::Unreachable {
            peer: self.peer,
            error,
        });
    }

    /// Dials the peer for `lane` and completes the handshake, trying each address once,
    /// starting with the one that answered last. A refusal ends the attempt at once (every
    /// address is the same member).
    /// Returns the stream and the peer's frame limit (from its answer).
    pub async fn connect(&self, lane: Lane) -> Result<(PeerStream, usize), PeerError> {
        if self.partitioned.get() {
            return Err(PeerError::Io("partitioned (fault injection)".into()));
        }
        let addresses = self.addresses.borrow().clone();
        if addresses.is_empty() {
            return Err(PeerError::Url {
                url: String::new(),
                problem: "the peer has no address".into(),
            });
        }
        let first = self.preferred_address.get() % addresses.len();
        let mut last_error = None;
        for offset in 0..addresses.len() {
            let index = (first + offset) % addresses.len();
            match self.connect_to(&addresses[index], lane).await {
                Ok(connected) => {
                    self.preferred_address.set(index);
                    return Ok(connected);
                }
                Err(error @ PeerError::Refused(_)) => {
                    tracing::warn!(peer_id = %format!("{:x}", self.peer), lane = lane.name(),
                        address = %addresses[index].socket, error = %error, "peer refused the connection");
                    return Err(error);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one address was tried"))
    }

    async fn connect_to(
        &self,
        address: &PeerAddress,
        lane: Lane,
    ) -> Result<(PeerStream, usize), PeerError> {
        let mut stream = with_timeout(DIAL_TIMEOUT, self.dialer.dial(address))
            .await
            .ok_or(PeerError::Timeout("dialing the peer"))??;
        let hello = Hello {
            cluster_id: self.cluster_id,
            from: self.local_id,
            to: self.peer,
            lane,
        };
        let frame_bytes_max = with_timeout(HANDSHAKE_TIMEOUT, async {
            stream.write_all(&hello.encode()).await?;
            stream.flush().await?;
            read_answer(&mut stream).await
        })
        .await
        .ok_or(PeerError::Timeout(
            "waiting for the peer's handshake answer",
        ))??;
        Ok((stream, frame_bytes_max))
    }
}
