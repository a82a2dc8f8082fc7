//! One HTTP/2 server connection's protocol state, without I/O (RFC 9113): bytes from the client
//! go in ([`ServerConnection::receive`]), requests come out ([`ServerConnection::accept`]),
//! calls read their request bodies and queue their responses through the stream operations,
//! and the bytes to send to the client come out of [`ServerConnection::output`].
//!
//! Written for gRPC's shape: many short calls per connection, each a HEADERS and a DATA or two
//! in each direction, so a call costs a map entry, a few small buffers and a few frames
//! appended to one output buffer, and one read and one write serve every call that arrived
//! together. Every queue is bounded: streams by `max_concurrent_streams` (more are refused
//! with REFUSED_STREAM), what a client may send by the flow-control windows we grant, what a
//! call may queue for sending by `max_send_buffer_per_stream` (its sender waits), and the
//! output by the driver, which stops reading while the output is large (see `serve`).
//!
//! Errors follow RFC 9113 §5.4: a connection error writes GOAWAY with its code and closes the
//! connection (the state refuses everything after); a stream error resets that stream only.

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::frame::{self, FrameHeader};
use super::hpack;

/// RFC 9113 §7 error codes used here.
pub mod reason {
    #![allow(missing_docs)] // the RFC's names say it
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS_MAX_HEADER_LIST_SIZE's identifier (RFC 9113 §6.5.2).
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// Bytes a header field costs in the header list size beyond its name and value (§6.5.2).
const FIELD_OVERHEAD: usize = 32;
/// The PING payload of a graceful GOAWAY's round trip (a keepalive's count up from 1).
const DRAIN_PING: [u8; 8] = *b"drain-gw";
/// Requests the client may reset before they are taken (h2's default for its guard against
/// rapid reset, CVE-2023-44487): past it the client gets GOAWAY ENHANCE_YOUR_CALM.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams this side may reset because the client broke the protocol on them (h2's default
/// for the same guard, `max_local_error_reset_streams`: a client that provokes resets instead
/// of sending them, as in 2025's "MadeYouReset", costs the server a call per stream all the
/// same); past it the client gets GOAWAY ENHANCE_YOUR_CALM. Counted over the connection's life.
const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Request body chunks up to this size are copied out of the read buffer they arrived in.
const SMALL_CHUNK_BYTES: usize = 1024;
/// The most output `fill_output` builds before the driver must write it: one DATA frame of the
/// largest size may go past it, nothing else.
const OUTPUT_FILL_BYTES: usize = 256 * 1024;

/// What the server grants and enforces; from `ServerConfig`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Streams open at once; more are refused.
    pub max_concurrent_streams: u32,
    /// The receive window granted to each stream.
    pub stream_window: u32,
    /// The receive window granted to the connection as a whole.
    pub connection_window: u32,
    /// Largest frame payload the client may send.
    pub max_frame_size: u32,
    /// Largest decoded header list (names, values and 32 bytes per field).
    pub max_header_list_size: u32,
    /// Response bytes one stream may queue beyond what the client's windows let out.
    pub max_send_buffer_per_stream: usize,
}

/// A connection error: the GOAWAY code and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionError {
    /// The GOAWAY error code.
    pub code: u32,
    /// What broke the protocol.
    pub reason: String,
}

impl std::error::Error for ConnectionError {}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP/2 connection error {:#x}: {}",
            self.code, self.reason
        )
    }
}

fn connection_error(code: u32, reason: impl Into<String>) -> ConnectionError {
    ConnectionError {
        code,
        reason: reason.into(),
    }
}

/// Why a stream operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The stream was reset with this code (by the client, or by us on an error).
    Reset(u32),
    /// The connection has failed or closed.
    ConnectionClosed,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Reset(code) => write!(f, "stream reset with code {code:#x}"),
            StreamError::ConnectionClosed => write!(f, "connection closed"),
        }
    }
}

/// The head of one request: its pseudo-headers and its other fields.
#[derive(Debug)]
pub struct RequestHead {
    /// The request's stream.
    pub stream_id: u32,
    /// `:method`.
    pub method: http::Method,
    /// `:path`, query included.
    pub path: String,
    /// `:authority`, if sent.
    pub authority: Option<String>,
    /// The regular (not pseudo) fields.
    pub headers: HeaderMap,
    /// The request had END_STREAM on its HEADERS: it has no body.
    pub end_stream: bool,
}

/// One stream's state; removed from the map once both sides are closed or it is reset.
#[derive(Default)]
struct Stream {
    /// Request body chunks not yet taken by the call.
    received: VecDeque<Bytes>,
    /// The client sent END_STREAM.
    received_end: bool,
    /// What the client may still send on this stream.
    recv_window: i64,
    /// Bytes received and not yet released by the call (their credit is still out).
    held: usize,
    /// Bytes released and not yet granted back with a WINDOW_UPDATE.
    recv_unacked: u32,
    recv_waker: Option<Waker>,
    /// Response headers went out.
    headers_sent: bool,
    /// What we may still send on this stream.
    send_window: i64,
    /// Response bytes waiting for window, in order.
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The encoded trailers block, sent with END_STREAM once `queued` is empty.
    trailers: Option<Vec<u8>>,
    /// END_STREAM goes on the last DATA frame of `queued` (no trailers).
    end_with_data: bool,
    /// The response is complete: END_STREAM is queued (behind `queued` and `trailers`) or
    /// written.
    send_closing: bool,
    /// END_STREAM is in the output.
    send_done: bool,
    /// The call is done with the stream: body bytes arriving now are credited back at once.
    released: bool,
    send_waker: Option<Waker>,
    /// Listed in `sendable` (dedup).
    scheduled: bool,
}

impl Stream {
    fn wake(&mut self) {
        if let Some(waker) = self.recv_waker.take() {
            waker.wake();
        }
        if let Some(waker) = self.send_waker.take() {
            waker.wake();
        }
    }
}

/// A header block being assembled from HEADERS and CONTINUATION frames.
struct PartialBlock {
    stream_id: u32,
    end_stream: bool,
    block: Vec<u8>,
}

/// The protocol state of one server connection.
pub struct ServerConnection {
    limits: Limits,
    decoder: hpack::Decoder,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE.
    peer_initial_window: i64,
    /// The client's SETTINGS_MAX_FRAME_SIZE.
    peer_max_frame_size: usize,
    preface_seen: bool,
    output: Vec<u8>,
    streams: HashMap<u32, Stream>,
    /// Highest stream the client has opened (streams below it that are not in the map are
    /// closed).
    highest_stream_id: u32,
    /// Highest stream accepted as a call (GOAWAY's last stream id).
    highest_accepted_id: u32,
    partial: Option<PartialBlock>,
    connection_recv_window: i64,
    connection_recv_unacked: u32,
    connection_send_window: i64,
    accepted: VecDeque<RequestHead>,
    /// Streams with output to move into `output`, in the order they asked.
    sendable: VecDeque<u32>,
    /// A GOAWAY naming the last stream served was written: no more calls are accepted.
    going_away: bool,
    /// A graceful shutdown's first GOAWAY (and its PING) went out; the second, naming the
    /// last stream, goes when the PING's ACK comes back.
    drain_ping_sent: bool,
    /// Requests reset by the client before being taken, since the queue was last emptied.
    pending_accept_resets: usize,
    /// Streams reset by this side for the client's protocol errors on them.
    local_error_resets: usize,
    /// The client changed SETTINGS_HEADER_TABLE_SIZE: our next header block starts with a
    /// dynamic table size update.
    table_size_update_due: bool,
    /// A connection error was written, or the transport failed: nothing more is done.
    closed: Option<StreamError>,
    error: Option<ConnectionError>,
    /// PINGs we sent whose ACK has not come, by payload.
    pings_in_flight: Vec<[u8; 8]>,
    pong_waker: Option<Waker>,
    /// The driver's waker: woken when output or accepted requests appear from a call's side.
    driver_waker: Option<Waker>,
}

impl ServerConnection {
    /// A connection with our SETTINGS (and the connection window's increase) queued for output.
    pub fn new(limits: Limits) -> ServerConnection {
        assert!(
            (frame::FRAME_SIZE_DEFAULT as u32..1 << 24).contains(&limits.max_frame_size),
            "max_frame_size within RFC 9113 §6.5.2's range"
        );
        assert!(i64::from(limits.stream_window) <= frame::WINDOW_MAX);
        assert!(i64::from(limits.connection_window) <= frame::WINDOW_MAX);
        let mut output = Vec::with_capacity(16 * 1024);
        frame::write_settings(
            &mut output,
            &[
                (
                    frame::SETTINGS_MAX_CONCURRENT_STREAMS,
                    limits.max_concurrent_streams,
                ),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window),
                (frame::SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size),
                (SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
            ],
        );
        let connection_recv_window = i64::from(limits.connection_window);
        if connection_recv_window > frame::WINDOW_DEFAULT {
            frame::write_window_update(
                &mut output,
                0,
                (connection_recv_window - frame::WINDOW_DEFAULT) as u32,
            );
        }
        ServerConnection {
            limits,
            decoder: hpack::Decoder::new(hpack::TABLE_SIZE_DEFAULT),
            peer_initial_window: frame::WINDOW_DEFAULT,
            peer_max_frame_size: frame::FRAME_SIZE_DEFAULT,
            preface_seen: false,
            output,
            streams: HashMap::new(),
            highest_stream_id: 0,
            highest_accepted_id: 0,
            partial: None,
            connection_recv_window: connection_recv_window.max(frame::WINDOW_DEFAULT),
            connection_recv_unacked: 0,
            connection_send_window: frame::WINDOW_DEFAULT,
            accepted: VecDeque::new(),
            sendable: VecDeque::new(),
            going_away: false,
            drain_ping_sent: false,
            pending_accept_resets: 0,
            local_error_resets: 0,
            table_size_update_due: false,
            closed: None,
            error: None,
            pings_in_flight: Vec::new(),
            pong_waker: None,
            driver_waker: None,
        }
    }

    // ---- the driver's side ----

    /// Consumes every complete frame at the front of `input` (the connection preface first).
    /// A connection error is written as GOAWAY and returned; the driver then writes the
    /// output and closes.
    pub fn receive(&mut self, input: &mut BytesMut) -> Result<(), ConnectionError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.closed.is_some() {
            input.clear();
            return Ok(());
        }
        let result = self.receive_frames(input);
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    fn receive_frames(&mut self, input: &mut BytesMut) -> Result<(), ConnectionError> {
        if !self.preface_seen {
            if input.len() < frame::PREFACE.len() {
                if !frame::PREFACE.starts_with(input) {
                    return Err(connection_error(reason::PROTOCOL_ERROR, "bad preface"));
                }
                return Ok(());
            }
            if &input[..frame::PREFACE.len()] != frame::PREFACE {
                return Err(connection_error(reason::PROTOCOL_ERROR, "bad preface"));
            }
            let _ = input.split_to(frame::PREFACE.len());
            self.preface_seen = true;
        }
        while input.len() >= frame::HEADER_LEN {
            let header = FrameHeader::parse(input);
            if header.length > self.limits.max_frame_size as usize {
                return Err(connection_error(
                    reason::FRAME_SIZE_ERROR,
                    format!("a frame of {} bytes", header.length),
                ));
            }
            if input.len() < frame::HEADER_LEN + header.length {
                // Room for the rest of this frame, so the driver's next read completes it.
                input.reserve(frame::HEADER_LEN + header.length - input.len());
                break;
            }
            let _ = input.split_to(frame::HEADER_LEN);
            let payload = input.split_to(header.length).freeze();
            self.frame(header, payload)?;
        }
        Ok(())
    }

    /// Takes the next request that opened a call.
    pub fn accept(&mut self) -> Option<RequestHead> {
        let head = self.accepted.pop_front();
        if head.is_none() {
            self.pending_accept_resets = 0;
        }
        head
    }

    /// Whether requests wait to be taken by `accept`.
    pub fn has_accepted(&self) -> bool {
        !self.accepted.is_empty()
    }

    /// Moves what streams queued into the output, within the client's windows, until the
    /// output holds about `OUTPUT_FILL_BYTES`. Returns the output to write.
    pub fn fill_output(&mut self) -> &mut Vec<u8> {
        let mut blocked_on_connection = Vec::new();
        while self.output.len() < OUTPUT_FILL_BYTES {
            let Some(stream_id) = self.sendable.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&stream_id) else {
                continue;
            };
            stream.scheduled = false;
            let buffer_was_full = stream.queued_bytes >= self.limits.max_send_buffer_per_stream;
            while !stream.queued.is_empty() {
                let chunks_queued = stream.queued.len();
                let chunk = stream.queued.front_mut().expect("not empty");
                let window = stream.send_window.min(self.connection_send_window);
                if window <= 0 {
                    break;
                }
                let take = chunk
                    .len()
                    .min(window as usize)
                    .min(self.peer_max_frame_size);
                let last = take == chunk.len() && chunks_queued == 1;
                let end = last && stream.end_with_data;
                frame::write_header(
                    &mut self.output,
                    take,
                    frame::DATA,
                    if end { frame::FLAG_END_STREAM } else { 0 },
                    stream_id,
                );
                self.output.extend_from_slice(&chunk[..take]);
                stream.send_done |= end;
                if take == chunk.len() {
                    stream.queued.pop_front();
                } else {
                    let _ = chunk.split_to(take);
                }
                stream.queued_bytes -= take;
                stream.send_window -= take as i64;
                self.connection_send_window -= take as i64;
                if self.output.len() >= OUTPUT_FILL_BYTES {
                    break;
                }
            }
            if buffer_was_full && stream.queued_bytes < self.limits.max_send_buffer_per_stream {
                if let Some(waker) = stream.send_waker.take() {
                    waker.wake();
                }
            }
            if !stream.queued.is_empty() {
                if stream.send_window > 0 && self.connection_send_window <= 0 {
                    blocked_on_connection.push(stream_id);
                } else if stream.send_window > 0 {
                    // Stopped by the output's size: its turn comes again.
                    schedule(&mut self.sendable, stream, stream_id);
                }
                // Else blocked by its own window: a WINDOW_UPDATE schedules it.
                continue;
            }
            if let Some(trailers) = stream.trailers.take() {
                write_header_block(
                    &mut self.output,
                    stream_id,
                    &trailers,
                    true,
                    self.peer_max_frame_size,
                    std::mem::take(&mut self.table_size_update_due),
                );
                stream.send_done = true;
            } else if stream.end_with_data && !stream.send_done {
                // The body ended after its last byte went out: an empty DATA ends the stream.
                frame::write_header(
                    &mut self.output,
                    0,
                    frame::DATA,
                    frame::FLAG_END_STREAM,
                    stream_id,
                );
                stream.send_done = true;
            }
            if stream.send_done {
                self.send_side_closed(stream_id);
            }
        }
        for stream_id in blocked_on_connection {
            if let Some(stream) = self.streams.get_mut(&stream_id) {
                schedule(&mut self.sendable, stream, stream_id);
            }
        }
        &mut self.output
    }

    /// True when nothing waits to be moved into the output (or cannot move for lack of window).
    pub fn has_sendable(&self) -> bool {
        self.connection_send_window > 0 && !self.sendable.is_empty()
    }

    /// Registers the driver's waker, woken when a call queues output.
    pub fn set_driver_waker(&mut self, waker: &Waker) {
        if !self
            .driver_waker
            .as_ref()
            .is_some_and(|known| known.will_wake(waker))
        {
            self.driver_waker = Some(waker.clone());
        }
    }

    /// The connection can serve no more: a connection error was written or the transport
    /// ended. Every stream's waiter is woken and sees the connection closed.
    pub fn close(&mut self) {
        if self.closed.is_none() {
            self.closed = Some(StreamError::ConnectionClosed);
        }
        for stream in self.streams.values_mut() {
            stream.wake();
        }
        self.streams.clear();
        self.sendable.clear();
        self.accepted.clear();
        if let Some(waker) = self.pong_waker.take() {
            waker.wake();
        }
    }

    /// Whether a GOAWAY went out and every accepted call's stream is closed: a draining
    /// connection is done.
    pub fn drained(&self) -> bool {
        self.going_away && self.streams.is_empty() && self.accepted.is_empty()
    }

    /// Number of open streams.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Graceful GOAWAY in two steps, as grpc-go and h2 send it: first one naming the largest
    /// stream id with a PING, so calls the client opened before it saw it are still served;
    /// then, once the PING's ACK shows the client has seen it, one naming the last stream
    /// served. The calls accepted finish; the connection is then drained.
    pub fn go_away_gracefully(&mut self) {
        if self.going_away || self.drain_ping_sent || self.closed.is_some() {
            return;
        }
        write_go_away(&mut self.output, 0x7fff_ffff, reason::NO_ERROR, &[]);
        frame::write_header(&mut self.output, 8, frame::PING, 0, 0);
        self.output.extend_from_slice(&DRAIN_PING);
        self.drain_ping_sent = true;
        self.wake_driver();
    }

    /// GOAWAY naming the last stream served, with `code` and `debug_data` (grpc-go's
    /// clients read `too_many_pings` there): no new calls; those accepted so far finish.
    pub fn go_away(&mut self, code: u32, debug_data: &[u8]) {
        if self.going_away || self.closed.is_some() {
            return;
        }
        self.going_away = true;
        write_go_away(&mut self.output, self.highest_accepted_id, code, debug_data);
        self.wake_driver();
    }

    /// The connection error this connection ended with, if any.
    pub fn error(&self) -> Option<&ConnectionError> {
        self.error.as_ref()
    }

    /// Sends a PING (the keepalive's probe); `poll_pong` tells when its ACK came.
    pub fn send_ping(&mut self, opaque: [u8; 8]) {
        frame::write_header(&mut self.output, 8, frame::PING, 0, 0);
        self.output.extend_from_slice(&opaque);
        self.pings_in_flight.push(opaque);
        self.wake_driver();
    }

    /// Ready(true) once every PING sent has been answered, Ready(false) once the connection
    /// is closed.
    pub fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.closed.is_some() {
            return Poll::Ready(false);
        }
        if self.pings_in_flight.is_empty() {
            return Poll::Ready(true);
        }
        self.pong_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    // ---- the calls' side ----

    /// The next chunk of a request body, `None` at its end.
    pub fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
        stream_id: u32,
    ) -> Poll<Option<Result<Bytes, StreamError>>> {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Poll::Ready(Some(Err(self.gone(stream_id))));
        };
        if let Some(chunk) = stream.received.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if stream.received_end {
            return Poll::Ready(None);
        }
        stream.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Gives back the flow-control credit of `bytes` taken from a request body.
    pub fn release_capacity(&mut self, stream_id: u32, bytes: usize) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            let bytes = bytes.min(stream.held);
            stream.held -= bytes;
            stream.recv_unacked += bytes as u32;
            if !stream.received_end && stream.recv_unacked >= self.limits.stream_window / 2 {
                frame::write_window_update(&mut self.output, stream_id, stream.recv_unacked);
                stream.recv_window += i64::from(stream.recv_unacked);
                stream.recv_unacked = 0;
                self.wake_driver();
            }
            self.release_connection(bytes);
        }
    }

    /// Sends the response headers: `:status`, then `fields`.
    pub fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        fields: &[(&str, &str)],
        end_stream: bool,
    ) -> Result<(), StreamError> {
        let error = self.gone(stream_id);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Err(error);
        };
        assert!(!stream.headers_sent, "response headers are sent once");
        stream.headers_sent = true;
        let mut block = Vec::with_capacity(32);
        hpack::encode_status(&mut block, status);
        for (name, value) in fields {
            hpack::encode_literal(&mut block, name.as_bytes(), value.as_bytes());
        }
        write_header_block(
            &mut self.output,
            stream_id,
            &block,
            end_stream,
            self.peer_max_frame_size,
            std::mem::take(&mut self.table_size_update_due),
        );
        if end_stream {
            stream.send_closing = true;
            stream.send_done = true;
            self.send_side_closed(stream_id);
        }
        self.wake_driver();
        Ok(())
    }

    /// Ends the response after the data queued so far, without trailers (a plain HTTP body).
    pub fn finish_data(&mut self, stream_id: u32) -> Result<(), StreamError> {
        let error = self.gone(stream_id);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Err(error);
        };
        assert!(stream.headers_sent && !stream.send_closing);
        stream.end_with_data = true;
        stream.send_closing = true;
        schedule(&mut self.sendable, stream, stream_id);
        self.wake_driver();
        Ok(())
    }

    /// Queues as much of `pending` as the stream's send buffer takes (taking it off the
    /// front); Ready once all of it is queued, Pending while the buffer is full.
    pub fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        stream_id: u32,
        pending: &mut Bytes,
    ) -> Poll<Result<(), StreamError>> {
        let error = self.gone(stream_id);
        let limit = self.limits.max_send_buffer_per_stream;
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Poll::Ready(Err(error));
        };
        assert!(
            stream.headers_sent && !stream.send_closing,
            "data goes between the headers and the end"
        );
        while !pending.is_empty() {
            let room = limit.saturating_sub(stream.queued_bytes);
            if room == 0 {
                stream.send_waker = Some(cx.waker().clone());
                // What was queued (now or before) waits for the driver.
                self.wake_driver();
                return Poll::Pending;
            }
            let chunk = pending.split_to(room.min(pending.len()));
            stream.queued_bytes += chunk.len();
            stream.queued.push_back(chunk);
            schedule(&mut self.sendable, stream, stream_id);
        }
        self.wake_driver();
        Poll::Ready(Ok(()))
    }

    /// Ends the response with trailers `fields` (after any queued data).
    pub fn send_trailers(
        &mut self,
        stream_id: u32,
        fields: &[(&str, &str)],
    ) -> Result<(), StreamError> {
        let error = self.gone(stream_id);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Err(error);
        };
        assert!(stream.headers_sent && !stream.send_closing);
        let mut block = Vec::with_capacity(32);
        for (name, value) in fields {
            hpack::encode_literal(&mut block, name.as_bytes(), value.as_bytes());
        }
        stream.trailers = Some(block);
        stream.send_closing = true;
        schedule(&mut self.sendable, stream, stream_id);
        self.wake_driver();
        Ok(())
    }

    /// Ready once the stream is reset (by the client, or the connection closed).
    pub fn poll_reset(&mut self, cx: &mut Context<'_>, stream_id: u32) -> Poll<StreamError> {
        match self.streams.get_mut(&stream_id) {
            None => Poll::Ready(self.gone(stream_id)),
            Some(stream) => {
                stream.send_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Resets a stream (`CANCEL` for a call dropped before its end, `NO_ERROR` for a request
    /// body nobody will read after the response ended).
    pub fn reset_stream(&mut self, stream_id: u32, code: u32) {
        if let Some(mut stream) = self.streams.remove(&stream_id) {
            write_rst_stream(&mut self.output, stream_id, code);
            let held = stream.held;
            stream.wake();
            self.release_connection(held);
            self.wake_driver();
        }
    }

    /// The call is done with its stream: if its response did not end, the stream is reset
    /// (CANCEL); if the request body was not all received, the client is told to stop
    /// sending it (NO_ERROR), once the queued response is out.
    pub fn release_stream(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if !stream.send_closing {
            self.reset_stream(stream_id, reason::CANCEL);
            return;
        }
        // Unread body bytes will never be released by the call: give their credit back.
        stream.released = true;
        let held = std::mem::take(&mut stream.held);
        stream.received.clear();
        self.release_connection(held);
    }

    // ---- internals ----

    fn gone(&self, _stream_id: u32) -> StreamError {
        self.closed.unwrap_or(StreamError::Reset(reason::CANCEL))
    }

    fn wake_driver(&mut self) {
        if let Some(waker) = &self.driver_waker {
            waker.wake_by_ref();
        }
    }

    fn fail(&mut self, error: ConnectionError) {
        if self.error.is_none() {
            // The last stream served: never more than an earlier GOAWAY named (RFC 9113 §6.8),
            // and streams ignored after it were not processed, so the client may retry them.
            write_go_away(&mut self.output, self.highest_accepted_id, error.code, &[]);
            self.going_away = true;
            self.error = Some(error);
        }
        self.close();
    }

    fn release_connection(&mut self, bytes: usize) {
        self.connection_recv_unacked += bytes as u32;
        if self.connection_recv_unacked >= self.limits.connection_window / 2 {
            frame::write_window_update(&mut self.output, 0, self.connection_recv_unacked);
            self.connection_recv_window += i64::from(self.connection_recv_unacked);
            self.connection_recv_unacked = 0;
            self.wake_driver();
        }
    }

    /// END_STREAM went out: the stream is done if the request side is too; if the client
    /// is still sending, it is told to stop (RST_STREAM NO_ERROR, as grpc-go does).
    fn send_side_closed(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if stream.received_end {
            let mut stream = self.streams.remove(&stream_id).expect("present");
            let held = stream.held;
            stream.wake();
            self.release_connection(held);
        } else {
            self.reset_stream(stream_id, reason::NO_ERROR);
        }
    }

    fn frame(&mut self, header: FrameHeader, payload: Bytes) -> Result<(), ConnectionError> {
        if let Some(partial) = &self.partial {
            if header.kind != frame::CONTINUATION || header.stream_id != partial.stream_id {
                return Err(connection_error(
                    reason::PROTOCOL_ERROR,
                    "a header block interrupted",
                ));
            }
        }
        match header.kind {
            frame::DATA => self.data(header, payload),
            frame::HEADERS => self.headers(header, payload),
            frame::CONTINUATION => self.continuation(header, payload),
            frame::PRIORITY => {
                if header.stream_id == 0 {
                    return Err(connection_error(reason::PROTOCOL_ERROR, "PRIORITY on 0"));
                }
                if payload.len() != 5 {
                    return self.stream_error(header.stream_id, reason::FRAME_SIZE_ERROR);
                }
                Ok(())
            }
            frame::RST_STREAM => self.rst_stream(header, &payload),
            frame::SETTINGS => self.settings(header, &payload),
            frame::PUSH_PROMISE => Err(connection_error(
                reason::PROTOCOL_ERROR,
                "PUSH_PROMISE from a client",
            )),
            frame::PING => self.ping(header, &payload),
            frame::GOAWAY => {
                if header.stream_id != 0 {
                    return Err(connection_error(
                        reason::PROTOCOL_ERROR,
                        "GOAWAY on a stream",
                    ));
                }
                Ok(())
            }
            frame::WINDOW_UPDATE => self.window_update(header, &payload),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn data(&mut self, header: FrameHeader, payload: Bytes) -> Result<(), ConnectionError> {
        if header.stream_id == 0 {
            return Err(connection_error(reason::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let length = payload.len();
        self.connection_recv_window -= length as i64;
        if self.connection_recv_window < 0 {
            return Err(connection_error(
                reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        let Some(content_range) = frame::unpadded_range(header.kind, header.flags, &payload) else {
            return Err(connection_error(reason::PROTOCOL_ERROR, "bad DATA padding"));
        };
        if header.stream_id > self.highest_stream_id {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "DATA on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&header.stream_id) else {
            // A stream closed or reset: its bytes still count against the connection.
            self.release_connection(length);
            return Ok(());
        };
        if stream.received_end {
            self.release_connection(length);
            return self.stream_error(header.stream_id, reason::STREAM_CLOSED);
        }
        // Checked on a released stream too: its bytes are discarded and credited back to the
        // connection, so the stream's window is all that bounds them.
        stream.recv_window -= length as i64;
        if stream.recv_window < 0 {
            self.release_connection(length);
            return self.stream_error(header.stream_id, reason::FLOW_CONTROL_ERROR);
        }
        if stream.released {
            stream.received_end |= header.flags & frame::FLAG_END_STREAM != 0;
            self.release_connection(length);
            return Ok(());
        }
        // Padding is consumed at once (released below, to the stream and the connection, as
        // it counted against both); the content's credit waits for the call.
        let content_length = content_range.len();
        let padding = length - content_length;
        stream.held += length;
        if content_length > 0 {
            // A small chunk is copied, so it does not pin the whole read buffer it came in.
            let chunk = if content_length <= SMALL_CHUNK_BYTES {
                Bytes::copy_from_slice(&payload[content_range])
            } else {
                payload.slice(content_range)
            };
            stream.received.push_back(chunk);
        }
        if header.flags & frame::FLAG_END_STREAM != 0 {
            stream.received_end = true;
        }
        if let Some(waker) = stream.recv_waker.take() {
            waker.wake();
        }
        let closed = stream.received_end && stream.send_done;
        if padding > 0 {
            self.release_capacity(header.stream_id, padding);
        }
        if closed {
            self.send_side_closed(header.stream_id);
        }
        Ok(())
    }

    fn headers(&mut self, header: FrameHeader, payload: Bytes) -> Result<(), ConnectionError> {
        if header.stream_id == 0 {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "HEADERS on stream 0",
            ));
        }
        let Some(range) = frame::unpadded_range(header.kind, header.flags, &payload) else {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "bad HEADERS padding",
            ));
        };
        let end_stream = header.flags & frame::FLAG_END_STREAM != 0;
        if header.flags & frame::FLAG_END_HEADERS == 0 {
            self.partial = Some(PartialBlock {
                stream_id: header.stream_id,
                end_stream,
                block: payload[range].to_vec(),
            });
            return Ok(());
        }
        self.header_block(header.stream_id, end_stream, &payload[range])
    }

    fn continuation(&mut self, header: FrameHeader, payload: Bytes) -> Result<(), ConnectionError> {
        let Some(partial) = &mut self.partial else {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        // A block is bounded like the list it decodes to (HPACK never expands a field by
        // more than the Huffman ratio, and indexed fields are a byte): twice the list limit
        // plus a frame is more than any honest client sends.
        let bound = 2 * self.limits.max_header_list_size as usize + frame::FRAME_SIZE_DEFAULT;
        if partial.block.len() + payload.len() > bound {
            return Err(connection_error(
                reason::ENHANCE_YOUR_CALM,
                "a header block beyond the header list limit",
            ));
        }
        partial.block.extend_from_slice(&payload);
        if header.flags & frame::FLAG_END_HEADERS == 0 {
            return Ok(());
        }
        let partial = self.partial.take().expect("checked above");
        self.header_block(partial.stream_id, partial.end_stream, &partial.block)
    }

    fn header_block(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        block: &[u8],
    ) -> Result<(), ConnectionError> {
        // Decoded whatever becomes of the stream: the HPACK table is the connection's.
        let mut fields = DecodedFields::default();
        self.decoder
            .decode(block, |name, value| fields.add(name, value))
            .map_err(|error| connection_error(reason::COMPRESSION_ERROR, error.to_string()))?;
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            // Request trailers: they must end the stream.
            if !end_stream || stream.received_end {
                return Err(connection_error(
                    reason::PROTOCOL_ERROR,
                    "HEADERS in the middle of a request",
                ));
            }
            stream.received_end = true;
            if let Some(waker) = stream.recv_waker.take() {
                waker.wake();
            }
            if stream.send_done {
                self.send_side_closed(stream_id);
            }
            return Ok(());
        }
        if stream_id <= self.highest_stream_id {
            // A closed stream (a reset one may still see frames in flight).
            return self.stream_error(stream_id, reason::STREAM_CLOSED);
        }
        if stream_id.is_multiple_of(2) {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "a client opened an even stream",
            ));
        }
        self.highest_stream_id = stream_id;
        if self.going_away {
            return Ok(());
        }
        if self.streams.len() >= self.limits.max_concurrent_streams as usize {
            write_rst_stream(&mut self.output, stream_id, reason::REFUSED_STREAM);
            return Ok(());
        }
        let stream = Stream {
            recv_window: i64::from(self.limits.stream_window),
            send_window: self.peer_initial_window,
            received_end: end_stream,
            ..Stream::default()
        };
        if fields.list_size > self.limits.max_header_list_size as usize {
            // As h2 answers it: 431, and no call.
            self.streams.insert(stream_id, stream);
            self.highest_accepted_id = stream_id;
            let _ = self.send_headers(stream_id, 431, &[], true);
            return Ok(());
        }
        let Some(head) = fields.into_head(stream_id, end_stream) else {
            return self.stream_error(stream_id, reason::PROTOCOL_ERROR);
        };
        self.streams.insert(stream_id, stream);
        self.highest_accepted_id = stream_id;
        self.accepted.push_back(head);
        Ok(())
    }

    fn rst_stream(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream_id == 0 {
            return Err(connection_error(reason::PROTOCOL_ERROR, "RST_STREAM on 0"));
        }
        if payload.len() != 4 {
            return Err(connection_error(
                reason::FRAME_SIZE_ERROR,
                "RST_STREAM size",
            ));
        }
        if header.stream_id > self.highest_stream_id {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        // The code does not matter to the call: any reset ends it as cancelled.
        if let Some(mut stream) = self.streams.remove(&header.stream_id) {
            let held = stream.held;
            stream.wake();
            self.release_connection(held);
            if let Some(at) = self
                .accepted
                .iter()
                .position(|head| head.stream_id == header.stream_id)
            {
                // Never served: opening and resetting streams costs the client nothing.
                self.accepted.remove(at);
                self.pending_accept_resets += 1;
                if self.pending_accept_resets > MAX_PENDING_ACCEPT_RESETS {
                    return Err(connection_error(
                        reason::ENHANCE_YOUR_CALM,
                        "too many streams reset before they were served",
                    ));
                }
            }
        }
        Ok(())
    }

    fn settings(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream_id != 0 {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "SETTINGS on a stream",
            ));
        }
        if header.flags & frame::FLAG_ACK != 0 {
            if !payload.is_empty() {
                return Err(connection_error(
                    reason::FRAME_SIZE_ERROR,
                    "SETTINGS ACK size",
                ));
            }
            return Ok(());
        }
        let Some(settings) = frame::parse_settings(payload) else {
            return Err(connection_error(reason::FRAME_SIZE_ERROR, "SETTINGS size"));
        };
        // Only the last INITIAL_WINDOW_SIZE of a frame is applied to the streams: one pass
        // over them per frame, however many entries it repeats.
        let mut initial_window = None;
        for (id, value) in settings {
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(connection_error(reason::PROTOCOL_ERROR, "ENABLE_PUSH"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > frame::WINDOW_MAX {
                        return Err(connection_error(
                            reason::FLOW_CONTROL_ERROR,
                            "INITIAL_WINDOW_SIZE",
                        ));
                    }
                    initial_window = Some(i64::from(value));
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::FRAME_SIZE_DEFAULT as u32..1 << 24).contains(&value) {
                        return Err(connection_error(reason::PROTOCOL_ERROR, "MAX_FRAME_SIZE"));
                    }
                    self.peer_max_frame_size = value as usize;
                }
                // Our encoder keeps no dynamic table, but a client that changes its table's
                // size expects our next header block to acknowledge it (RFC 7541 §4.2):
                // a size update to 0 is within any limit.
                frame::SETTINGS_HEADER_TABLE_SIZE => self.table_size_update_due = true,
                // The other settings bind the client, not us.
                _ => {}
            }
        }
        if let Some(value) = initial_window {
            let delta = value - self.peer_initial_window;
            self.peer_initial_window = value;
            let mut overflowed = false;
            for (&stream_id, stream) in &mut self.streams {
                stream.send_window += delta;
                overflowed |= stream.send_window > frame::WINDOW_MAX;
                if delta > 0 && !stream.queued.is_empty() {
                    schedule(&mut self.sendable, stream, stream_id);
                }
            }
            if overflowed {
                return Err(connection_error(
                    reason::FLOW_CONTROL_ERROR,
                    "a stream window beyond 2^31-1",
                ));
            }
        }
        frame::write_settings_ack(&mut self.output);
        Ok(())
    }

    fn ping(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream_id != 0 {
            return Err(connection_error(reason::PROTOCOL_ERROR, "PING on a stream"));
        }
        let Ok(opaque) = <[u8; 8]>::try_from(payload) else {
            return Err(connection_error(reason::FRAME_SIZE_ERROR, "PING size"));
        };
        if header.flags & frame::FLAG_ACK != 0 {
            if opaque == DRAIN_PING && self.drain_ping_sent {
                self.go_away(reason::NO_ERROR, &[]);
                return Ok(());
            }
            if let Some(at) = self.pings_in_flight.iter().position(|p| *p == opaque) {
                self.pings_in_flight.swap_remove(at);
                if self.pings_in_flight.is_empty() {
                    if let Some(waker) = self.pong_waker.take() {
                        waker.wake();
                    }
                }
            }
            return Ok(());
        }
        frame::write_ping_ack(&mut self.output, &opaque);
        Ok(())
    }

    fn window_update(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
        if payload.len() != 4 {
            return Err(connection_error(
                reason::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE size",
            ));
        }
        let increment = i64::from(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff,
        );
        if header.stream_id == 0 {
            if increment == 0 {
                return Err(connection_error(
                    reason::PROTOCOL_ERROR,
                    "WINDOW_UPDATE of 0",
                ));
            }
            self.connection_send_window += increment;
            if self.connection_send_window > frame::WINDOW_MAX {
                return Err(connection_error(
                    reason::FLOW_CONTROL_ERROR,
                    "the connection window beyond 2^31-1",
                ));
            }
            return Ok(());
        }
        if header.stream_id > self.highest_stream_id {
            return Err(connection_error(
                reason::PROTOCOL_ERROR,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&header.stream_id) else {
            return Ok(()); // closed: updates may still be in flight
        };
        if increment == 0 {
            return self.stream_error(header.stream_id, reason::PROTOCOL_ERROR);
        }
        stream.send_window += increment;
        if stream.send_window > frame::WINDOW_MAX {
            return self.stream_error(header.stream_id, reason::FLOW_CONTROL_ERROR);
        }
        if !stream.queued.is_empty() {
            schedule(&mut self.sendable, stream, header.stream_id);
        }
        Ok(())
    }

    /// A stream error (RFC 9113 §5.4.2): RST_STREAM with `code`; the call sees the reset. Past
    /// `MAX_LOCAL_ERROR_RESETS` of them the connection fails with ENHANCE_YOUR_CALM instead.
    fn stream_error(&mut self, stream_id: u32, code: u32) -> Result<(), ConnectionError> {
        self.local_error_resets += 1;
        if self.local_error_resets > MAX_LOCAL_ERROR_RESETS {
            return Err(connection_error(
                reason::ENHANCE_YOUR_CALM,
                "too many streams reset for protocol errors",
            ));
        }
        if self.streams.contains_key(&stream_id) {
            self.reset_stream(stream_id, code);
        } else {
            write_rst_stream(&mut self.output, stream_id, code);
        }
        Ok(())
    }
}

/// The fields of one request header block as they decode.
#[derive(Default)]
struct DecodedFields {
    method: Option<http::Method>,
    path: Option<String>,
    scheme: bool,
    authority: Option<String>,
    headers: HeaderMap,
    list_size: usize,
    /// A field broke RFC 9113 §8.2–8.3 (uppercase name, connection-specific field, pseudo
    /// field after a regular one, unknown or repeated pseudo field).
    malformed: bool,
    regular_seen: bool,
}

impl DecodedFields {
    fn add(&mut self, name: &[u8], value: &[u8]) {
        self.list_size += name.len() + value.len() + FIELD_OVERHEAD;
        if self.malformed || self.list_size > 1 << 20 {
            return; // nothing more is kept of a block that is refused anyway
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular_seen {
                self.malformed = true;
                return;
            }
            let text = || String::from_utf8(value.to_vec()).ok();
            match pseudo {
                b"method" if self.method.is_none() => {
                    self.method = http::Method::from_bytes(value).ok();
                    self.malformed |= self.method.is_none();
                }
                b"path" if self.path.is_none() && !value.is_empty() => {
                    self.path = text();
                    self.malformed |= self.path.is_none();
                }
                b"scheme" if !self.scheme => self.scheme = true,
                b"authority" if self.authority.is_none() => self.authority = text(),
                _ => self.malformed = true,
            }
            return;
        }
        self.regular_seen = true;
        if name.iter().any(u8::is_ascii_uppercase)
            || matches!(
                name,
                b"connection"
                    | b"keep-alive"
                    | b"proxy-connection"
                    | b"transfer-encoding"
                    | b"upgrade"
            )
            || (name == b"te" && value != b"trailers")
        {
            self.malformed = true;
            return;
        }
        match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.malformed = true,
        }
    }

    fn into_head(self, stream_id: u32, end_stream: bool) -> Option<RequestHead> {
        if self.malformed || !self.scheme {
            return None;
        }
        Some(RequestHead {
            stream_id,
            method: self.method?,
            path: self.path?,
            authority: self.authority,
            headers: self.headers,
            end_stream,
        })
    }
}

/// Lists `stream` among those with output to move, once.
fn schedule(sendable: &mut VecDeque<u32>, stream: &mut Stream, stream_id: u32) {
    if !stream.scheduled {
        stream.scheduled = true;
        sendable.push_back(stream_id);
    }
}

/// Appends a header block as HEADERS (and CONTINUATION frames when it is larger than a frame),
/// first with a dynamic table size update to 0 when `table_size_update` is due.
fn write_header_block(
    output: &mut Vec<u8>,
    stream_id: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: usize,
    table_size_update: bool,
) {
    let updated;
    let block = if table_size_update {
        updated = [&[0x20u8][..], block].concat();
        &updated[..]
    } else {
        block
    };
    let mut chunks = block.chunks(max_frame_size).peekable();
    let first = chunks.next().unwrap_or(&[]);
    let mut flags = if end_stream {
        frame::FLAG_END_STREAM
    } else {
        0
    };
    if chunks.peek().is_none() {
        flags |= frame::FLAG_END_HEADERS;
    }
    frame::write_header(output, first.len(), frame::HEADERS, flags, stream_id);
    output.extend_from_slice(first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            frame::FLAG_END_HEADERS
        } else {
            0
        };
        frame::write_header(output, chunk.len(), frame::CONTINUATION, flags, stream_id);
        output.extend_from_slice(chunk);
    }
}

fn write_rst_stream(output: &mut Vec<u8>, stream_id: u32, code: u32) {
    frame::write_header(output, 4, frame::RST_STREAM, 0, stream_id);
    output.extend_from_slice(&code.to_be_bytes());
}

fn write_go_away(output: &mut Vec<u8>, last_stream_id: u32, code: u32, debug_data: &[u8]) {
    frame::write_header(output, 8 + debug_data.len(), frame::GOAWAY, 0, 0);
    output.extend_from_slice(&last_stream_id.to_be_bytes());
    output.extend_from_slice(&code.to_be_bytes());
    output.extend_from_slice(debug_data);
}
