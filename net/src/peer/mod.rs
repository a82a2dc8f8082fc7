//! The peer transport: moves opaque byte frames between basalt members over TCP; it knows
//! nothing about raft. One connection per peer and lane, so heartbeats and votes never queue
//! behind a large append or a snapshot (etcd #7970).
//!
//! ## How the member drives it
//!
//! Everything lives on the raft owner's executor (`Rc`, `!Send`): build one [`Transport`],
//! bind the peer listener there only (no SO_REUSEPORT spread over the client cores), and run:
//!
//! - `transport.serve(listener)` — the accept loop (a task);
//! - a task per lane reading `transport.recv(Lane::Control)` / `recv(Lane::Append)` and
//!   stepping raft (read both: an unread append inbox stalls appends only, by design);
//! - a task reading `transport.recv_snapshot()`: pull chunks with `next_chunk`, install, then
//!   `complete(Ok(()))` (or `Err(reason)`: the sender learns it);
//! - a task reading `transport.next_event()`: `Unreachable` → raft's `report_unreachable`;
//!   a `Refused(Refusal::Removed)` means this member was removed (etcd stops itself).
//!
//! Raft's Ready: each message goes out with `send(to, lane, bytes)` — MsgAppend on
//! [`Lane::Append`], everything small (heartbeats, votes, read-index, append responses) on
//! [`Lane::Control`]; a MsgSnapshot's data goes through `open_snapshot` + `send_chunk`s +
//! `finish` (or `SnapshotWriter::send_all` over a stream of chunks). `send` never waits: a
//! full queue drops the frame and returns `Err` (raft resends; `report_unreachable` if the
//! member likes). Messages of different lanes may overtake each other (raft allows it);
//! within a lane they keep their order. Membership: `add_peer`, `update_peer`, `remove_peer`
//! as conf changes apply. `/metrics`: `transport.metrics()` is an `Arc` any core reads.
//!
//! ## Wire format (big-endian)
//!
//! ```text
//! dialer → listener, once   "BSLTPEER" | version u16 = 1 | lane u8 | 0 u8 | cluster u64 | from u64 | to u64
//! listener → dialer, once   accepted: 0 u8 | 4 u16 | its frame limit u32;  refused: 1 u8 | reason length u16 | reason
//! then frames               kind u8 | payload length u32 | payload
//! ```
//!
//! A connection whose first bytes diverge from the magic is HTTP/1.1 to the peer port:
//! answered by the handler given to [`Transport::set_http1`] (etcd serves `/version` and
//! `/members` there), or closed without one.
//!
//! Frame kinds: data (0), ping (1, 8-byte timestamp, control lane) answered by pong (16);
//! on a snapshot connection: header (2), chunks (3), end (4: total length u64, crc32 u32),
//! abort (5: reason), answered by done (17) or failed (18: reason). A receiver checks every
//! length against its limit before it allocates; a bad frame closes that connection only.
//!
//! ## Peer TLS
//!
//! Streams are boxed futures-io ([`PeerStream`]). With peer TLS, build the transport with
//! `Transport::with_dialer(config, Rc::new(TlsDialer::new(client_tls)))` (it dials `https://`
//! URLs through TLS, `http://` ones plain) and serve each `https://` peer listener with
//! [`Transport::serve_tls`]; the peer protocol then runs inside TLS unchanged.

mod config;
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

pub use config::{
    QueueLimit, TransportConfig, FRAME_OVERHEAD_BYTES_MAX, MESSAGE_ENTRIES_BYTES_MAX,
};
pub use dial::{Dialer, PeerAddress, PeerIo, PeerStream, TcpDialer, TlsDialer};
pub use error::{PeerError, Refusal};
pub use events::PeerEvent;
pub use lane::Lane;
pub use snapshot::{IncomingSnapshot, SnapshotWriter, SNAPSHOT_CHUNK_BYTES_MAX};
pub use stats::{PeerCounters, PeerMetrics, PeerStats, ROUND_TRIP_SECONDS_BUCKETS};
pub use transport::{SendError, Transport};
