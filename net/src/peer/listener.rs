//! The listening side: each accepted connection says hello, is checked (cluster, receiver,
//! removed members) and answered, then its frames are read into the lane's inbox. A full
//! inbox stops the reading of that connection only (TCP backpressure on that lane).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::io::{split, BufReader};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::dial::{with_timeout, Closer, PeerStream};
use super::error::PeerError;
use super::lane::Lane;
use super::link::HANDSHAKE_TIMEOUT;
use super::snapshot::{IncomingSnapshot, SNAPSHOT_IO_TIMEOUT};
use super::transport::Shared;
use super::wire::{
    frame_header, read_frame_header, read_magic, read_payload, write_answer, FrameKind, Hello,
    Magic, FRAME_HEADER_BYTES,
};
use super::writer::PING_PAYLOAD_BYTES;
use crate::http1::serve_http1;
use crate::rewind::Rewind;

/// The largest HTTP/1.1 request head (and body) the peer port reads: its endpoints
/// (`/version`, `/members`) take no body.
const HTTP1_REQUEST_BYTES_MAX: usize = 64 * 1024;

/// Read buffer per inbound connection: many small control frames per read syscall.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Inbound connections served at once (5 members × 2 lanes, snapshots, and strays waiting for
/// their handshake deadline); beyond, new ones are closed at once.
pub(crate) const INBOUND_CONNECTIONS_MAX: usize = 256;

/// How long the accept loop backs off after a failed accept (e.g. out of descriptors).
pub(crate) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Counts an inbound connection for as long as its task lives.
pub(crate) struct InboundCount(Rc<Shared>);

/// Admits one more inbound connection (counted from accept, before any TLS handshake), or
/// refuses it when `INBOUND_CONNECTIONS_MAX` are open.
pub(crate) fn admit(shared: &Rc<Shared>, remote: &str) -> Option<InboundCount> {
    if shared.inbound_open.get() >= INBOUND_CONNECTIONS_MAX {
        tracing::warn!(remote = %remote, limit = INBOUND_CONNECTIONS_MAX,
            "peer connection refused: too many inbound peer connections");
        return None;
    }
    shared.inbound_open.set(shared.inbound_open.get() + 1);
    Some(InboundCount(shared.clone()))
}

impl Drop for InboundCount {
    fn drop(&mut self) {
        self.0.inbound_open.set(self.0.inbound_open.get() - 1);
    }
}

/// Serves one accepted connection until it ends; never panics on what the peer sends.
pub(crate) async fn serve_connection(
    shared: Rc<Shared>,
    mut stream: PeerStream,
    remote: String,
    _count: InboundCount,
) {
    let magic = match with_timeout(HANDSHAKE_TIMEOUT, read_magic(&mut stream)).await {
        None => {
            tracing::warn!(remote = %remote, "peer connection closed: no handshake in time");
            return;
        }
        Some(Err(error)) => {
            tracing::warn!(remote = %remote, error = %error, "peer connection closed: bad handshake");
            return;
        }
        Some(Ok(magic)) => magic,
    };
    if let Magic::Other(prefix) = magic {
        let handler = shared.http1.borrow().clone();
        match handler {
            Some(handler) => {
                let stream = Rewind::new(prefix, stream);
                if let Err(error) = serve_http1(stream, &*handler, HTTP1_REQUEST_BYTES_MAX).await {
                    tracing::debug!(remote = %remote, error = %error, "peer-port HTTP/1.1 connection ended");
                }
            }
            None => tracing::warn!(remote = %remote,
                "peer connection closed: bad handshake (not basalt's peer protocol)"),
        }
        return;
    }
    let hello = match with_timeout(HANDSHAKE_TIMEOUT, Hello::read_after_magic(&mut stream)).await {
        None => {
            tracing::warn!(remote = %remote, "peer connection closed: no handshake in time");
            return;
        }
        Some(Err(error)) => {
            tracing::warn!(remote = %remote, error = %error, "peer connection closed: bad handshake");
            return;
        }
        Some(Ok(hello)) => hello,
    };
    if let Ok(hello) = &hello {
        if shared.is_partitioned(hello.from) {
            // A cut network answers nothing.
            return;
        }
    }
    let refusal = match &hello {
        Err(refusal) => Some(refusal.clone()),
        Ok(hello) => shared.check_hello(hello, &remote),
    };
    let answered = with_timeout(
        HANDSHAKE_TIMEOUT,
        write_answer(
            &mut stream,
            refusal
                .as_ref()
                .map_or(Ok(shared.config.max_frame_bytes), Err),
        ),
    )
    .await;
    if refusal.is_some() || !matches!(answered, Some(Ok(()))) {
        return;
    }
    let hello = hello.expect("an accepted hello");
    match hello.lane {
        Lane::Control | Lane::Append => serve_framed(shared, hello, stream, remote).await,
        Lane::Snapshot => receive_snapshot(shared, hello, stream, remote).await,
    }
}

/// Reads a framed lane's connection into its inbox, until it ends, breaks the protocol, or a
/// newer connection of the same peer and lane (or the peer's removal) closes it.
async fn serve_framed(shared: Rc<Shared>, hello: Hello, stream: PeerStream, remote: String) {
    let closer = Rc::new(Closer::default());
    let connection_id = shared.register_inbound(hello.from, hello.lane, closer.clone());
    let served = read_frames(&shared, &hello, stream)
        .or(async {
            closer.closed().await;
            Ok(())
        })
        .await;
    shared.unregister_inbound(hello.from, hello.lane, connection_id);
    if let Err(error) = served {
        if let Some(counters) = shared.counters_for(hello.from) {
            counters.received_failures.inc();
        }
        tracing::error!(remote = %remote, peer_id = %format!("{:x}", hello.from),
            lane = hello.lane.name(), error = %error, "peer connection closed on a bad frame");
    }
}

async fn read_frames(shared: &Shared, hello: &Hello, stream: PeerStream) -> Result<(), PeerError> {
    let (reader, mut writer) = split(stream);
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let counters = shared.counters_for(hello.from);
    let inbox = &shared.inboxes[hello.lane.framed_index()];
    let frame_bytes_max = shared.config.max_frame_bytes;
    while let Some((kind, bytes)) = read_frame_header(&mut reader, frame_bytes_max).await? {
        if let Some(counters) = &counters {
            counters
                .received_bytes
                .add((FRAME_HEADER_BYTES + bytes) as u64);
        }
        match kind {
            FrameKind::Data => {
                let payload = read_payload(&mut reader, bytes).await?;
                if inbox
                    .push((hello.from, Bytes::from(payload)), bytes)
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            FrameKind::Ping if bytes == PING_PAYLOAD_BYTES && hello.lane == Lane::Control => {
                let mut pong = [0u8; FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES];
                reader.read_exact(&mut pong[FRAME_HEADER_BYTES..]).await?;
                pong[..FRAME_HEADER_BYTES]
                    .copy_from_slice(&frame_header(FrameKind::Pong, PING_PAYLOAD_BYTES));
                writer.write_all(&pong).await?;
                writer.flush().await?;
            }
            kind => {
                return Err(PeerError::Protocol(format!(
                    "unexpected {kind:?} frame of {bytes} bytes on the {} lane",
                    hello.lane.name()
                )))
            }
        }
    }
    Ok(())
}

/// Reads a snapshot connection's header frame and hands the stream to the member's snapshot
/// inbox; the member then pulls the chunks (`IncomingSnapshot::next_chunk`).
async fn receive_snapshot(shared: Rc<Shared>, hello: Hello, stream: PeerStream, remote: String) {
    let mut stream = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let header = with_timeout(SNAPSHOT_IO_TIMEOUT, async {
        match read_frame_header(&mut stream, shared.config.max_frame_bytes).await? {
            Some((FrameKind::SnapshotHeader, bytes)) => read_payload(&mut stream, bytes).await,
            Some((kind, _)) => Err(PeerError::Protocol(format!(
                "a snapshot stream opens with a header frame, not {kind:?}"
            ))),
            None => Err(PeerError::Protocol(
                "the snapshot stream ended before its header".into(),
            )),
        }
    })
    .await
    .unwrap_or(Err(PeerError::Timeout("reading the snapshot header")));
    let header = match header {
        Ok(header) => header,
        Err(error) => {
            tracing::error!(remote = %remote, peer_id = %format!("{:x}", hello.from), error = %error,
                "snapshot connection closed");
            return;
        }
    };
    let counters = shared.counters_for(hello.from);
    if let Some(counters) = &counters {
        counters
            .received_bytes
            .add((FRAME_HEADER_BYTES + header.len()) as u64);
    }
    tracing::info!(peer_id = %format!("{:x}", hello.from), "receiving a snapshot");
    let incoming = IncomingSnapshot::new(hello.from, Bytes::from(header), stream, counters);
    // Waits for room: a member busy with earlier snapshots slows this sender only.
    let _ = shared.snapshots.push(incoming, 0).await;
}
