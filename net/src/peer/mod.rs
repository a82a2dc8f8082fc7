//! The peer transport: moves opaque byte frames between basalt members over TCP (it knows
//! nothing about raft). One connection per peer and lane, so heartbeats and votes never queue
//! behind a large append or a snapshot (etcd #7970).
//!
//! The member drives it from the raft owner's executor (everything here is `!Send`):
//!
//! ```no_run
//! use basalt_net::peer::{Lane, Transport, TransportConfig};
//! # async fn member() -> Result<(), basalt_net::peer::PeerError> {
//! let transport = Transport::new(TransportConfig::new(0xc1, 1, 1536 * 1024));
//! let listener = basalt_net::bind("127.0.0.1:2380".parse().unwrap()).unwrap();
//! let accept = transport.clone();
//! glommio::spawn_local(async move { accept.serve(listener).await }).detach();
//! transport.add_peer(2, &["http://127.0.0.1:2480".to_string()])?;
//! // Raft's Ready: queue each message on its lane; a drop means report_unreachable.
//! if transport.send(2, Lane::Control, bytes::Bytes::from_static(b"vote")).is_err() { /* ... */ }
//! // One task per lane reads what arrives (and one for snapshots, one for events).
//! let (from, frame) = transport.recv(Lane::Control).await;
//! # let _ = (from, frame); Ok(()) }
//! ```
//!
//! Wire format: [`wire`](self) module docs. Limits are named consts next to their use.

mod dial;
mod error;
mod events;
mod lane;
mod link;
mod listener;
mod queue;
mod snapshot;
mod stats;
mod transport;
mod wire;
mod writer;

pub use dial::{Dialer, PeerIo, PeerStream, TcpDialer};
pub use error::{PeerError, Refusal};
pub use events::PeerEvent;
pub use lane::Lane;
pub use snapshot::{IncomingSnapshot, SnapshotWriter, SNAPSHOT_CHUNK_BYTES_MAX};
pub use stats::{PeerCounters, PeerStats, ROUND_TRIP_SECONDS_BUCKETS};
pub use transport::{
    QueueLimit, SendError, Transport, TransportConfig, FRAME_OVERHEAD_BYTES_MAX,
    MESSAGE_ENTRIES_BYTES_MAX,
};
