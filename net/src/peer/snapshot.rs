//! Snapshot streams: one connection per transfer. The sender writes a header frame, then
//! chunks as its producer yields them (each awaited onto the socket, so at most one chunk plus
//! the kernel's socket buffers is in flight), then an end marker with the stream's length and
//! crc32; the receiver checks both and answers done or failed, so an aborted or damaged
//! transfer is reported failed on both sides.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::BufReader;
use futures_lite::{AsyncWriteExt, Stream, StreamExt};

use super::dial::{with_timeout, PeerStream};
use super::error::PeerError;
use super::stats::PeerCounters;
use super::wire::{frame_header, read_frame_header, read_payload, FrameKind, FRAME_HEADER_BYTES};

/// The largest chunk: the receiver allocates one chunk at a time, so this bounds its memory
/// per transfer, while 1–4 MiB chunks keep the per-chunk overhead negligible.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 4 * 1024 * 1024;

/// How long one chunk may take to write or to arrive: a stalled transfer fails rather than
/// holding a connection and a member's snapshot slot forever.
pub(crate) const SNAPSHOT_IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the sender waits for the receiver's verdict after the end marker: the receiver
/// may store a large database durably before it answers.
const SNAPSHOT_VERDICT_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest reason text either side sends with an abort or a failure.
const SNAPSHOT_REASON_BYTES_MAX: usize = 256;

/// The end marker's payload: total bytes (u64) and crc32 (u32) of the chunks' concatenation.
const SNAPSHOT_END_BYTES: usize = 12;

fn reason_bytes(reason: &str) -> &[u8] {
    let mut end = reason.len().min(SNAPSHOT_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason.as_bytes()[..end]
}

/// The sending side of one snapshot transfer (from `Transport::open_snapshot`). Dropping it
/// without `finish` closes the connection: the receiver reports the stream failed.
pub struct SnapshotWriter {
    peer: u64,
    stream: PeerStream,
    crc: crc32fast::Hasher,
    bytes: u64,
    counters: Arc<PeerCounters>,
    started: Instant,
    /// Whether the outcome was counted (success or failure): once per transfer.
    counted: bool,
}

impl SnapshotWriter {
    pub(crate) async fn open(
        peer: u64,
        stream: PeerStream,
        header: &[u8],
        counters: Arc<PeerCounters>,
    ) -> Result<SnapshotWriter, PeerError> {
        counters.snapshot_send_inflight.add(1);
        let mut writer = SnapshotWriter {
            peer,
            stream,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
            counters,
            started: Instant::now(),
            counted: false,
        };
        if let Err(error) = write_frame(&mut writer.stream, FrameKind::SnapshotHeader, header).await
        {
            writer.count(false);
            return Err(error);
        }
        writer
            .counters
            .sent_bytes
            .add((FRAME_HEADER_BYTES + header.len()) as u64);
        Ok(writer)
    }

    /// Counts the transfer's outcome, once.
    fn count(&mut self, success: bool) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        if success {
            self.counters.snapshot_send_successes.inc();
            self.counters
                .snapshot_send_seconds
                .observe_duration(self.started.elapsed());
        } else {
            self.counters.snapshot_send_failures.inc();
            self.counters.sent_failures.inc();
        }
    }

    /// The receiving peer.
    pub fn peer(&self) -> u64 {
        self.peer
    }

    /// Bytes of chunks sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes
    }

    /// Sends one chunk (at most [`SNAPSHOT_CHUNK_BYTES_MAX`]); returns once the socket took it.
    pub async fn send_chunk(&mut self, chunk: &[u8]) -> Result<(), PeerError> {
        if chunk.len() > SNAPSHOT_CHUNK_BYTES_MAX {
            return Err(PeerError::FrameTooLarge {
                bytes: chunk.len(),
                limit: SNAPSHOT_CHUNK_BYTES_MAX,
            });
        }
        if let Err(error) = write_frame(&mut self.stream, FrameKind::SnapshotChunk, chunk).await {
            self.count(false);
            return Err(PeerError::SnapshotFailed(format!(
                "sending a chunk: {error}"
            )));
        }
        self.crc.update(chunk);
        self.bytes += chunk.len() as u64;
        self.counters
            .sent_bytes
            .add((FRAME_HEADER_BYTES + chunk.len()) as u64);
        Ok(())
    }

    /// Sends the end marker and waits for the receiver's verdict; returns the bytes sent.
    pub async fn finish(mut self) -> Result<u64, PeerError> {
        let mut end = [0u8; SNAPSHOT_END_BYTES];
        end[..8].copy_from_slice(&self.bytes.to_be_bytes());
        end[8..].copy_from_slice(&self.crc.clone().finalize().to_be_bytes());
        write_frame(&mut self.stream, FrameKind::SnapshotEnd, &end)
            .await
            .map_err(|error| {
                PeerError::SnapshotFailed(format!("sending the end marker: {error}"))
            })?;
        let verdict = with_timeout(SNAPSHOT_VERDICT_TIMEOUT, async {
            match read_frame_header(&mut self.stream, SNAPSHOT_REASON_BYTES_MAX).await? {
                Some((FrameKind::SnapshotDone, 0)) => Ok(()),
                Some((FrameKind::SnapshotFailed, bytes)) => {
                    let reason = read_payload(&mut self.stream, bytes).await?;
                    Err(PeerError::SnapshotFailed(format!(
                        "the receiver failed it: {}",
                        String::from_utf8_lossy(&reason)
                    )))
                }
                Some((kind, bytes)) => Err(PeerError::Protocol(format!(
                    "unexpected {kind:?} frame of {bytes} bytes after a snapshot"
                ))),
                None => Err(PeerError::SnapshotFailed(
                    "the receiver closed the stream without a verdict".into(),
                )),
            }
        })
        .await
        .unwrap_or(Err(PeerError::Timeout(
            "waiting for the snapshot's verdict",
        )));
        self.count(verdict.is_ok());
        verdict.map(|()| self.bytes)
    }

    /// Gives up: tells the receiver why (best effort) and closes the connection.
    pub async fn abort(mut self, reason: &str) {
        let _ = with_timeout(
            Duration::from_secs(1),
            write_frame(
                &mut self.stream,
                FrameKind::SnapshotAbort,
                reason_bytes(reason),
            ),
        )
        .await;
        self.count(false);
    }

    /// Sends every chunk `chunks` yields, then finishes; a producer error aborts the transfer.
    pub async fn send_all(
        mut self,
        mut chunks: impl Stream<Item = io::Result<Bytes>> + Unpin,
    ) -> Result<u64, PeerError> {
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    for piece in chunk.chunks(SNAPSHOT_CHUNK_BYTES_MAX) {
                        self.send_chunk(piece).await?;
                    }
                }
                Err(error) => {
                    let reason = format!("the snapshot's producer failed: {error}");
                    self.abort(&reason).await;
                    return Err(PeerError::SnapshotFailed(reason));
                }
            }
        }
        self.finish().await
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Dropped before its verdict: the transfer failed.
        self.count(false);
        self.counters.snapshot_send_inflight.add(-1);
    }
}

/// Writes one frame with the snapshot I/O deadline.
async fn write_frame(
    stream: &mut PeerStream,
    kind: FrameKind,
    payload: &[u8],
) -> Result<(), PeerError> {
    with_timeout(SNAPSHOT_IO_TIMEOUT, async {
        stream.write_all(&frame_header(kind, payload.len())).await?;
        stream.write_all(payload).await?;
        stream.flush().await
    })
    .await
    .ok_or(PeerError::Timeout("writing to the snapshot stream"))?
    .map_err(PeerError::from)
}

/// Where an incoming transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    Receiving,
    /// The end marker arrived and matched.
    Complete,
    /// Failed (the sender was told, if it could be).
    Failed,
}

/// The receiving side of one snapshot transfer (from `Transport::recv_snapshot`): pull the
/// chunks in order with `next_chunk`, then answer with `complete`.
pub struct IncomingSnapshot {
    from: u64,
    header: Bytes,
    stream: BufReader<PeerStream>,
    crc: crc32fast::Hasher,
    bytes: u64,
    counters: Option<Arc<PeerCounters>>,
    progress: Progress,
    started: Instant,
    /// Whether the outcome was counted (accepted or failed): once per transfer.
    counted: bool,
}

impl IncomingSnapshot {
    pub(crate) fn new(
        from: u64,
        header: Bytes,
        stream: BufReader<PeerStream>,
        counters: Option<Arc<PeerCounters>>,
    ) -> IncomingSnapshot {
        if let Some(counters) = &counters {
            counters.snapshot_receive_inflight.add(1);
        }
        IncomingSnapshot {
            from,
            header,
            stream,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
            counters,
            progress: Progress::Receiving,
            started: Instant::now(),
            counted: false,
        }
    }

    /// Counts the transfer's outcome, once.
    fn count(&mut self, success: bool) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        let Some(counters) = &self.counters else {
            return;
        };
        if success {
            counters.snapshot_receive_successes.inc();
            counters
                .snapshot_receive_seconds
                .observe_duration(self.started.elapsed());
        } else {
            counters.snapshot_receive_failures.inc();
        }
    }

    /// The sending member.
    pub fn from(&self) -> u64 {
        self.from
    }

    /// What the sender said about the snapshot (opaque: e.g. raft's snapshot message).
    pub fn header(&self) -> &Bytes {
        &self.header
    }

    /// Bytes of chunks received so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// The next chunk, in order; `Ok(None)` once the end marker arrived and the length and
    /// crc of the whole stream matched. Any failure (abort, truncation, mismatch, timeout) is
    /// an error here and is reported to the sender.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, PeerError> {
        match self.progress {
            Progress::Receiving => {}
            Progress::Complete => return Ok(None),
            Progress::Failed => {
                return Err(PeerError::SnapshotFailed(
                    "the stream already failed".into(),
                ))
            }
        }
        let read = with_timeout(SNAPSHOT_IO_TIMEOUT, async {
            let header = read_frame_header(&mut self.stream, SNAPSHOT_CHUNK_BYTES_MAX).await?;
            let payload = match header {
                Some((_, bytes)) => read_payload(&mut self.stream, bytes).await?,
                None => Vec::new(),
            };
            Ok::<_, PeerError>(header.map(|(kind, _)| (kind, payload)))
        })
        .await;
        let (kind, payload) = match read {
            None => return Err(self.fail("no snapshot data in time".into()).await),
            Some(Err(error)) => {
                return Err(self.fail(format!("reading the stream: {error}")).await)
            }
            Some(Ok(None)) => {
                return Err(self
                    .fail("the stream ended before the snapshot's end marker".into())
                    .await)
            }
            Some(Ok(Some(frame))) => frame,
        };
        if let Some(counters) = &self.counters {
            counters
                .received_bytes
                .add((FRAME_HEADER_BYTES + payload.len()) as u64);
        }
        match kind {
            FrameKind::SnapshotChunk => {
                self.crc.update(&payload);
                self.bytes += payload.len() as u64;
                Ok(Some(Bytes::from(payload)))
            }
            FrameKind::SnapshotEnd if payload.len() == SNAPSHOT_END_BYTES => {
                let bytes = u64::from_be_bytes(payload[..8].try_into().unwrap());
                let crc = u32::from_be_bytes(payload[8..].try_into().unwrap());
                let crc_received = self.crc.clone().finalize();
                if bytes != self.bytes || crc != crc_received {
                    let reason = format!(
                        "snapshot mismatch: the sender sent {bytes} bytes with crc32 {crc:08x}, \
                         {} bytes with crc32 {crc_received:08x} arrived",
                        self.bytes
                    );
                    return Err(self.fail(reason).await);
                }
                self.progress = Progress::Complete;
                Ok(None)
            }
            FrameKind::SnapshotAbort => {
                let reason = format!(
                    "the sender aborted the snapshot: {}",
                    String::from_utf8_lossy(&payload)
                );
                Err(self.fail(reason).await)
            }
            kind => {
                let reason = format!("unexpected {kind:?} frame in a snapshot stream");
                Err(self.fail(reason).await)
            }
        }
    }

    /// Answers the sender: `Ok(())` once the member holds the snapshot (only after
    /// `next_chunk` returned `Ok(None)`), or the reason it could not take it.
    pub async fn complete(mut self, result: Result<(), String>) -> Result<(), PeerError> {
        match (self.progress, result) {
            (Progress::Complete, Ok(())) => {
                with_timeout(SNAPSHOT_IO_TIMEOUT, async {
                    let stream = self.stream.get_mut();
                    stream
                        .write_all(&frame_header(FrameKind::SnapshotDone, 0))
                        .await?;
                    stream.flush().await
                })
                .await
                .ok_or(PeerError::Timeout("answering the snapshot's sender"))??;
                self.count(true);
                Ok(())
            }
            (Progress::Failed, _) => Err(PeerError::SnapshotFailed(
                "the stream already failed".into(),
            )),
            (Progress::Receiving, Ok(())) => {
                let error = self
                    .fail("the receiver stopped before the end marker".into())
                    .await;
                Err(error)
            }
            (_, Err(reason)) => {
                let error = self.fail(reason).await;
                Err(error)
            }
        }
    }

    /// Marks the stream failed, tells the sender why (best effort), logs it, and returns the
    /// error for the consumer.
    async fn fail(&mut self, reason: String) -> PeerError {
        self.progress = Progress::Failed;
        self.count(false);
        tracing::warn!(peer_id = %format!("{:x}", self.from), bytes = self.bytes, reason = %reason,
            "snapshot transfer failed");
        let payload = reason_bytes(&reason);
        let _ = with_timeout(Duration::from_secs(1), async {
            let stream = self.stream.get_mut();
            stream
                .write_all(&frame_header(FrameKind::SnapshotFailed, payload.len()))
                .await?;
            stream.write_all(payload).await?;
            stream.flush().await
        })
        .await;
        PeerError::SnapshotFailed(reason)
    }
}

impl Drop for IncomingSnapshot {
    fn drop(&mut self) {
        // Dropped before answering: the transfer failed (the sender sees the stream close).
        self.count(false);
        if let Some(counters) = &self.counters {
            counters.snapshot_receive_inflight.add(-1);
        }
    }
}
