//! One writer task per peer and framed lane: it dials (the append lane on demand, the control
//! lane at once and for good), drains everything queued into one buffered write (many frames
//! per syscall), pings on the control lane for the round-trip metric, and redials with a capped
//! backoff when the connection fails.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::{split, ReadHalf, WriteHalf};
use futures_lite::{AsyncWriteExt, FutureExt};
use glommio::Task;

use super::dial::{with_timeout, PeerStream};
use super::error::PeerError;
use super::lane::Lane;
use super::link::{LaneState, PeerLink};
use super::queue::BoundedQueue;
use super::wire::{frame_header, read_frame_header, FrameKind, FRAME_HEADER_BYTES};

/// The first pause before redialing a peer that failed; doubled per failure up to the cap.
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(20);

/// The longest pause between dials: well under the 1 s election timeout, so a restarted peer
/// hears heartbeats again before it starts an election.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// How long one batch write may take before the connection counts as dead (etcd's
/// `ConnWriteTimeout`). A peer that reads nothing (its inbox full) stalls this lane only.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes drained into one write. Large enough that a burst of heartbeats and votes to a peer
/// is one syscall; small enough that the copy buffer stays small (a larger frame goes alone).
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// A ping carries its send time: nanoseconds since the link's epoch.
pub(crate) const PING_PAYLOAD_BYTES: usize = 8;

/// An established connection of one lane.
struct Connection {
    writer: WriteHalf<PeerStream>,
    /// Cleared by the reader task when the peer closes the connection or breaks it.
    alive: Rc<Cell<bool>>,
    /// When the last pong arrived (the connection's start before the first).
    last_pong: Rc<Cell<Instant>>,
    /// Watches the read side (pongs, end of stream); cancelled with the connection.
    _reader: Task<()>,
    /// The link's generation this connection was dialed in.
    generation: u64,
    /// The largest frame the peer reads (its handshake answer): a member configured with a
    /// smaller `--max-request-bytes` would close the connection on a larger frame, and raft
    /// would resend it forever, so such a frame is dropped here instead (counted, logged).
    peer_frame_bytes_max: usize,
}

/// Runs until cancelled (the peer is removed or the transport dropped).
pub(crate) async fn run_lane_writer(
    link: Rc<PeerLink>,
    lane: Lane,
    queue: Rc<BoundedQueue<Bytes>>,
) {
    let mut backoff = RECONNECT_BACKOFF_MIN;
    let mut connection: Option<Connection> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BATCH_BYTES_MAX + FRAME_HEADER_BYTES);
    let mut next_ping = Instant::now() + link.ping_interval;
    loop {
        let pings = lane == Lane::Control && connection.is_some();
        // The control lane stays connected whether raft has something to say or not, as
        // etcd's streams to every member do: its pings feed the round-trip metric and find a
        // silent peer, and `etcd_network_active_peers` means the same between two followers
        // as between a leader and a follower.
        let dial_now = lane == Lane::Control && connection.is_none();
        // A kick that came while this task was writing is not waited for again: look first.
        let stale = connection
            .as_ref()
            .is_some_and(|open| !open.alive.get() || open.generation != link.generation.get());
        if !stale && !dial_now {
            if pings {
                let wait_ping = async {
                    glommio::timer::sleep(next_ping.saturating_duration_since(Instant::now()))
                        .await;
                };
                queue.wait().or(wait_ping).await;
            } else {
                queue.wait().await;
            }
        }
        if let Some(open) = &connection {
            if !open.alive.get() {
                connection = None;
                link.set_lane_state(
                    lane,
                    LaneState::Idle,
                    Some(&PeerError::Io("the peer closed the connection".into())),
                );
            } else if open.generation != link.generation.get() {
                connection = None;
            } else if pings && open.last_pong.get().elapsed() > link.pong_timeout {
                // Pings go out but no pong comes back: the peer or the path is stalled (a
                // partition sends no FIN); redial rather than write into a void.
                connection = None;
                link.set_lane_state(
                    lane,
                    LaneState::Failed,
                    Some(&PeerError::Timeout("waiting for the peer to answer pings")),
                );
            }
        }
        let ping_due = pings && connection.is_some() && Instant::now() >= next_ping;
        let must_dial = lane == Lane::Control && connection.is_none();
        if queue.len() == 0 && !ping_due && !must_dial {
            continue;
        }
        if connection.is_none() {
            match link.connect(lane).await {
                Ok((stream, peer_frame_bytes_max)) => {
                    backoff = RECONNECT_BACKOFF_MIN;
                    link.set_lane_state(lane, LaneState::Connected, None);
                    next_ping = Instant::now();
                    connection = Some(open_connection(
                        &link,
                        lane,
                        &queue,
                        stream,
                        peer_frame_bytes_max,
                    ));
                }
                Err(error) => {
                    // Frames queued for an unreachable peer would be stale by the time it
                    // answers (raft resends what matters): drop them, count them.
                    let dropped = queue.clear();
                    link.counters.sent_failures.add(dropped as u64);
                    link.set_lane_state(lane, LaneState::Failed, Some(&error));
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                    continue;
                }
            }
        }
        let open = connection.as_mut().expect("connected above");

        buffer.clear();
        batch.clear();
        if lane == Lane::Control && Instant::now() >= next_ping {
            let sent_nanos = link.epoch.elapsed().as_nanos() as u64;
            buffer.extend_from_slice(&frame_header(FrameKind::Ping, PING_PAYLOAD_BYTES));
            buffer.extend_from_slice(&sent_nanos.to_be_bytes());
            next_ping = Instant::now() + link.ping_interval;
        }
        queue.drain_into(&mut batch, WRITE_BATCH_BYTES_MAX);
        let mut too_large = 0;
        for frame in &batch {
            if frame.len() > open.peer_frame_bytes_max {
                too_large += 1;
                tracing::warn!(peer_id = %format!("{:x}", link.peer), lane = lane.name(),
                    bytes = frame.len(), limit = open.peer_frame_bytes_max,
                    "frame dropped: larger than the peer accepts");
                continue;
            }
            buffer.extend_from_slice(&frame_header(FrameKind::Data, frame.len()));
            buffer.extend_from_slice(frame);
        }
        link.counters.sent_failures.add(too_large);
        let written = with_timeout(WRITE_TIMEOUT, async {
            open.writer.write_all(&buffer).await?;
            open.writer.flush().await
        })
        .await;
        match written {
            Some(Ok(())) => link.counters.sent_bytes.add(buffer.len() as u64),
            failed => {
                let error = match failed {
                    Some(Err(error)) => PeerError::from(error),
                    _ => PeerError::Timeout("writing to the peer"),
                };
                link.counters
                    .sent_failures
                    .add(batch.len() as u64 - too_large);
                connection = None;
                link.set_lane_state(lane, LaneState::Failed, Some(&error));
            }
        }
        if buffer.capacity() > 2 * WRITE_BATCH_BYTES_MAX {
            // One large frame grew the buffer; give the memory back.
            buffer = Vec::with_capacity(WRITE_BATCH_BYTES_MAX + FRAME_HEADER_BYTES);
        }
    }
}

/// Splits a handshaken stream and starts the task that watches its read side.
fn open_connection(
    link: &Rc<PeerLink>,
    lane: Lane,
    queue: &Rc<BoundedQueue<Bytes>>,
    stream: PeerStream,
    peer_frame_bytes_max: usize,
) -> Connection {
    let (reader, writer) = split(stream);
    let alive = Rc::new(Cell::new(true));
    let last_pong = Rc::new(Cell::new(Instant::now()));
    let reader = glommio::spawn_local(watch_read_side(
        reader,
        link.clone(),
        lane,
        queue.clone(),
        alive.clone(),
        last_pong.clone(),
    ));
    Connection {
        writer,
        alive,
        last_pong,
        _reader: reader,
        generation: link.generation.get(),
        peer_frame_bytes_max,
    }
}

/// Reads what the listener sends back on a framed lane (only pongs) until the connection
/// ends, then marks it dead and wakes the writer, so a restarted peer is redialed at once
/// rather than after a failed write.
async fn watch_read_side(
    mut reader: ReadHalf<PeerStream>,
    link: Rc<PeerLink>,
    lane: Lane,
    queue: Rc<BoundedQueue<Bytes>>,
    alive: Rc<Cell<bool>>,
    last_pong: Rc<Cell<Instant>>,
) {
    let ended = loop {
        match read_frame_header(&mut reader, PING_PAYLOAD_BYTES).await {
            Ok(Some((FrameKind::Pong, PING_PAYLOAD_BYTES))) => {
                let mut payload = [0u8; PING_PAYLOAD_BYTES];
                if let Err(error) =
                    futures_lite::AsyncReadExt::read_exact(&mut reader, &mut payload).await
                {
                    break Some(PeerError::from(error));
                }
                link.counters
                    .received_bytes
                    .add((FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES) as u64);
                let sent = Duration::from_nanos(u64::from_be_bytes(payload));
                let round_trip = link.epoch.elapsed().saturating_sub(sent);
                link.counters
                    .round_trip_seconds
                    .observe_duration(round_trip);
                last_pong.set(Instant::now());
            }
            Ok(Some((kind, bytes))) => {
                break Some(PeerError::Protocol(format!(
                    "unexpected {kind:?} frame of {bytes} bytes from the listener"
                )))
            }
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    if let Some(error) = ended {
        tracing::warn!(peer_id = %format!("{:x}", link.peer), lane = lane.name(), error = %error,
            "peer connection failed");
    }
    alive.set(false);
    queue.kick();
}
