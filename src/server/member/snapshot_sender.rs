//! The leader's half of catching a member up by snapshot: when raft wants to send a MsgSnapshot
//! (the follower needs entries the log has compacted), this streams a consistent copy of the
//! engine to it on the peer transport's snapshot lane, then tells raft how it ended.
//!
//! The copy is the one Maintenance.Snapshot streams (`Engine::durable_view` +
//! `ReadView::into_snapshot`: a pinned, durable commit, so writes go on meanwhile). Raft's
//! metadata travels in the stream's header: the copy's own applied index (not raft's commit
//! index, which may be ahead of the engine), its term from the log, and the membership raft
//! sent. Memory stays bounded: one chunk of [`CHUNK_BYTES`] is read and in flight at a time,
//! and one transfer per follower runs at a time (raft asks for no other until it is told).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::{Rc, Weak};

use basalt_net::peer::Transport;
use prost::Message as _;
use raft::prelude::Message;

use super::offload::on_own_thread;
use super::raft_member::Member;

/// Bytes per chunk read from the copy and sent: large enough that framing costs nothing, small
/// enough that both sides hold little.
pub const CHUNK_BYTES: usize = 1 << 20;

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
                Ok((index, bytes)) => tracing::info!(
                    to = format!("{to:x}"),
                    index,
                    size_bytes = bytes,
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

/// Streams one copy of the engine to `message.to`; returns its raft index and size in bytes.
async fn transfer(
    transport: &Transport,
    member: &Weak<Member>,
    mut message: Message,
) -> Result<(u64, u64), String> {
    let gone = || "the member stopped".to_string();
    let to = message.to;
    let engine = member.upgrade().ok_or_else(gone)?.shared_engine();
    // Off the executor: pinning a durable commit may sync the engine first.
    let (index, copy) = on_own_thread("basalt-snapshot-send", move || {
        let view = engine.durable_view()?;
        let index = view.applied_index();
        Ok::<_, basalt_engine::Error>((index, view.into_snapshot()?))
    })
    .await
    .map_err(|e| format!("pinning the database: {e}"))?;
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
    let mut copy = Some(copy);
    let mut sent = 0u64;
    while sent < size {
        let length = CHUNK_BYTES.min((size - sent) as usize);
        let reading = copy.take().expect("the copy comes back after every chunk");
        // Off the executor: the copy reads the mmap, which may fault pages in from disk.
        let (reading, chunk) = on_own_thread("basalt-snapshot-read", move || {
            let mut chunk = vec![0u8; length];
            let read = reading.read_at(sent, &mut chunk);
            (reading, read.map(|n| (n, chunk)))
        })
        .await;
        copy = Some(reading);
        let (read, chunk) = match chunk {
            Ok(read) => read,
            Err(error) => {
                let reason = format!("reading the database copy: {error}");
                writer.abort(&reason).await;
                return Err(reason);
            }
        };
        assert_eq!(read, length, "a copy yields every byte it sized");
        writer
            .send_chunk(&chunk)
            .await
            .map_err(|e| format!("sending: {e}"))?;
        sent += read as u64;
    }
    writer
        .finish()
        .await
        .map_err(|e| format!("finishing: {e}"))?;
    Ok((index, size))
}
