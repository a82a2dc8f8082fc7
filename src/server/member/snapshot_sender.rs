//! The leader's half of catching a member up by snapshot: when raft wants to send a MsgSnapshot
//! (the follower needs entries the log has compacted), this streams a consistent copy of the
//! engine to it on the peer transport's snapshot lane, then tells raft how it ended.
//!
//! The copy is the one Maintenance.Snapshot streams (`Engine::durable_view` +
//! `ReadView::into_snapshot`: a pinned, durable commit, so writes go on meanwhile). Raft's
//! metadata travels in the stream's header: the copy's own applied index (not raft's commit
//! index, which may be ahead of the engine), its term from the log, and the membership raft
//! sent. Memory stays bounded: a reader thread stays at most [`READ_AHEAD_CHUNKS`] chunks of
//! [`CHUNK_BYTES`] ahead of the socket, and one transfer per follower runs at a time (raft asks
//! for no other until it is told).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::{Rc, Weak};

use basalt_net::peer::Transport;
use prost::Message as _;
use raft::prelude::Message;

use super::chunk_pipe::pipe;
use super::offload::{on_own_thread, start_own_thread};
use super::raft_member::Member;

/// Bytes per chunk read from the copy and sent: large enough that framing costs nothing, small
/// enough that both sides hold little.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks the reader thread may hold ready ahead of the socket: the leader holds at most this
/// many (plus the one being sent) per transfer.
const READ_AHEAD_CHUNKS: usize = 4;

/// Starts and tracks the snapshot transfers of one leader.
pub struct SnapshotSender {
    transport: Transport,
    member: Weak<Member>,
    /// Followers a transfer is running to.
    sending: Rc<RefCell<HashSet<u64>>>,
}

impl SnapshotSender {
    /// A sender for `member`'s snapshots over `transport`.
    pub fn new(transport: Transport, member: Weak<Member>) -> SnapshotSender {
        SnapshotSender {
            transport,
            member,
            sending: Rc::new(RefCell::new(HashSet::new())),
        }
    }

    /// Starts streaming the engine to `message.to` for raft's MsgSnapshot `message`; `false`
    /// when a transfer to that member is already running (raft is told it failed).
    pub fn start(&self, message: Message) -> bool {
        let to = message.to;
        if !self.sending.borrow_mut().insert(to) {
            return false;
        }
        let (transport, member, sending) = (
            self.transport.clone(),
            self.member.clone(),
            self.sending.clone(),
        );
        glommio::spawn_local(async move {
            let started = std::time::Instant::now();
            let result = transfer(&transport, &member, message).await;
            sending.borrow_mut().remove(&to);
            let Some(member) = member.upgrade() else {
                return;
            };
            match &result {
                Ok(sent) => tracing::info!(
                    to = format!("{to:x}"),
                    index = sent.index,
                    size_bytes = sent.size_bytes,
                    pin_ms = sent.pin_ms,
                    streamed_ms = sent.streamed_ms,
                    took_ms = started.elapsed().as_millis() as u64,
                    "sent a raft snapshot"
                ),
                Err(reason) => tracing::warn!(
                    to = format!("{to:x}"),
                    %reason,
                    "sending a raft snapshot failed"
                ),
            }
            member.report_snapshot(to, result.is_ok());
        })
        .detach();
        true
    }
}

/// What one transfer sent, and where its time went.
struct Sent {
    /// The copy's raft index.
    index: u64,
    size_bytes: u64,
    /// Pinning a durable commit (may sync the engine first).
    pin_ms: u64,
    /// From the stream's header to its last chunk on the socket; the rest of the transfer's
    /// time is the follower storing it before its verdict.
    streamed_ms: u64,
}

/// Streams one copy of the engine to `message.to`.
async fn transfer(
    transport: &Transport,
    member: &Weak<Member>,
    mut message: Message,
) -> Result<Sent, String> {
    let gone = || "the member stopped".to_string();
    let to = message.to;
    let engine = member.upgrade().ok_or_else(gone)?.shared_engine();
    let pinning = std::time::Instant::now();
    // Off the executor: pinning a durable commit may sync the engine first.
    let (index, copy) = on_own_thread("basalt-snapshot-send", move || {
        let view = engine.durable_view()?;
        let index = view.applied_index();
        Ok::<_, basalt_engine::Error>((index, view.into_snapshot()?))
    })
    .await
    .map_err(|e| format!("pinning the database: {e}"))?;
    let pin_ms = pinning.elapsed().as_millis() as u64;
    let size = copy.size_bytes();
    let conf_state = message
        .get_snapshot()
        .get_metadata()
        .get_conf_state()
        .clone();
    let metadata = member
        .upgrade()
        .ok_or_else(gone)?
        .snapshot_metadata_at(index, conf_state)
        .ok_or_else(|| format!("the log no longer holds the term of index {index}"))?;
    let snapshot = message.mut_snapshot();
    snapshot.set_metadata(metadata);
    snapshot.data = size.to_be_bytes().to_vec();
    let mut writer = transport
        .open_snapshot(to, &message.encode_to_vec())
        .await
        .map_err(|e| format!("opening the stream: {e}"))?;
    let streaming = std::time::Instant::now();
    // A thread of its own reads the copy ahead of the socket (reading the mmap may fault pages
    // in from disk, which must not stall the executor), at most READ_AHEAD_CHUNKS chunks ahead:
    // the socket never waits for a read, and the leader holds a bounded amount per transfer.
    let (mut sending, mut chunks) = pipe::<Result<Vec<u8>, String>>(READ_AHEAD_CHUNKS);
    let reader = start_own_thread("basalt-snapshot-read", move || {
        let mut read = 0u64;
        while read < size {
            let length = CHUNK_BYTES.min((size - read) as usize);
            let mut chunk = vec![0u8; length];
            let chunk = match copy.read_at(read, &mut chunk) {
                Ok(n) => {
                    assert_eq!(n, length, "a copy yields every byte it sized");
                    Ok(chunk)
                }
                Err(error) => Err(format!("reading the database copy: {error}")),
            };
            let failed = chunk.is_err();
            // The transfer stopped (the receiving side is gone): unpin the copy.
            if !sending.send_blocking(chunk) || failed {
                return;
            }
            read += length as u64;
        }
    });
    while let Some(chunk) = chunks.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(reason) => {
                writer.abort(&reason).await;
                return Err(reason);
            }
        };
        writer
            .send_chunk(&chunk)
            .await
            .map_err(|e| format!("sending: {e}"))?;
    }
    reader.await;
    assert_eq!(writer.bytes_sent(), size, "every byte of the copy was sent");
    let streamed_ms = streaming.elapsed().as_millis() as u64;
    writer
        .finish()
        .await
        .map_err(|e| format!("finishing: {e}"))?;
    Ok(Sent {
        index,
        size_bytes: size,
        pin_ms,
        streamed_ms,
    })
}
