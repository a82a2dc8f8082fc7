//! One HTTP/2 connection of the lean client as a sans-IO state machine: calls go in
//! (`issue`), received bytes go in (`receive`), and bytes to write (`output`) and finished
//! calls (`Completion`) come out. The event loop does the socket I/O.
//!
//! What it honours of the server: SETTINGS (MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE,
//! MAX_FRAME_SIZE) with an ACK, PING with an ACK, the connection send window (a call waits
//! while its message does not fit), GOAWAY and RST_STREAM as errors of the calls they end.
//! What it announces: push off, a large stream window, and a large connection window that it
//! replenishes as responses arrive.

use std::collections::HashMap;
use std::time::Instant;

use super::frame::{self, FrameHeader};
use super::hpack;
use super::response::Response;

/// The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE we announce).
const STREAM_WINDOW: u32 = 1 << 20;
/// The receive window of the connection, set by a WINDOW_UPDATE right after the preface.
const CONNECTION_WINDOW: u32 = 1 << 24;
/// Received bytes after which the connection window is given back (a quarter of it).
const CONNECTION_WINDOW_REFILL: u32 = CONNECTION_WINDOW / 4;
/// Largest client stream identifier (2^31 - 1).
const STREAM_ID_MAX: u32 = (1 << 31) - 1;
/// Largest header block accepted across HEADERS and CONTINUATION frames.
const HEADER_BLOCK_BYTES_LIMIT: usize = 1 << 20;

/// A call that ended: which client issued it, when, and how it went.
#[derive(Debug)]
pub struct Completion {
    pub client: u32,
    pub sent: Instant,
    pub result: Result<(), String>,
}

/// A fault of the whole connection: every call on it has failed.
#[derive(Debug)]
pub struct ConnectionError(pub String);

struct Stream {
    client: u32,
    sent: Instant,
    response: Response,
    /// Bytes received on the stream since its window was last given back.
    received_unacked: u32,
}

/// The HTTP/2 client side of one connection.
pub struct Connection {
    /// The pre-encoded request header block (the same for every call).
    request_headers: Vec<u8>,
    output: Vec<u8>,
    decoder: hpack::Decoder,
    streams: HashMap<u32, Stream>,
    stream_id_next: u32,
    /// The server's first SETTINGS arrived: calls may start.
    settings_received: bool,
    streams_limit: usize,
    stream_send_window_initial: i64,
    connection_send_window: i64,
    frame_size_max: usize,
    connection_received_unacked: u32,
    /// A header block split over CONTINUATION frames: (stream, END_STREAM, bytes so far).
    header_block_partial: Option<(u32, bool, Vec<u8>)>,
    /// GOAWAY's last stream id: no new calls; calls above it failed.
    goaway_last_stream_id: Option<u32>,
}

impl Connection {
    /// A connection whose calls carry `request_headers`; the preface and settings are already
    /// in the output.
    pub fn new(request_headers: Vec<u8>) -> Self {
        let mut output = Vec::with_capacity(64 * 1024);
        output.extend_from_slice(frame::PREFACE);
        frame::write_settings(
            &mut output,
            &[
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
            ],
        );
        let increment = CONNECTION_WINDOW - frame::WINDOW_DEFAULT as u32;
        frame::write_window_update(&mut output, 0, increment);
        Connection {
            request_headers,
            output,
            decoder: hpack::Decoder::new(hpack::TABLE_SIZE_DEFAULT),
            streams: HashMap::new(),
            stream_id_next: 1,
            settings_received: false,
            streams_limit: usize::MAX,
            stream_send_window_initial: frame::WINDOW_DEFAULT,
            connection_send_window: frame::WINDOW_DEFAULT,
            frame_size_max: frame::FRAME_SIZE_DEFAULT,
            connection_received_unacked: 0,
            header_block_partial: None,
            goaway_last_stream_id: None,
        }
    }

    /// Whether a call with a `message_len`-byte message may start now.
    pub fn can_issue(&self, message_len: usize) -> bool {
        let message_len = message_len as i64;
        self.settings_received
            && self.goaway_last_stream_id.is_none()
            && self.stream_id_next <= STREAM_ID_MAX
            && self.streams.len() < self.streams_limit
            && message_len <= self.connection_send_window
            && message_len <= self.stream_send_window_initial
    }

    /// Whether a `message_len`-byte message can never start: it exceeds the window every new
    /// stream gets (the whole message goes out when the call starts).
    pub fn message_too_large(&self, message_len: usize) -> bool {
        self.settings_received && message_len as i64 > self.stream_send_window_initial
    }

    /// Whether no call will ever start again on this connection (GOAWAY, or out of ids).
    pub fn is_closing(&self) -> bool {
        self.goaway_last_stream_id.is_some() || self.stream_id_next > STREAM_ID_MAX
    }

    /// Calls in flight.
    pub fn calls_in_flight(&self) -> usize {
        self.streams.len()
    }

    /// Starts a call for `client` carrying `message` (a length-prefixed gRPC message).
    pub fn issue(&mut self, client: u32, message: &[u8], sent: Instant) {
        assert!(self.can_issue(message.len()), "issue only when can_issue");
        let stream_id = self.stream_id_next;
        self.stream_id_next += 2;
        frame::write_header(
            &mut self.output,
            self.request_headers.len(),
            frame::HEADERS,
            frame::FLAG_END_HEADERS,
            stream_id,
        );
        self.output.extend_from_slice(&self.request_headers);
        let mut chunks = message.chunks(self.frame_size_max).peekable();
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                frame::FLAG_END_STREAM
            } else {
                0
            };
            frame::write_header(&mut self.output, chunk.len(), frame::DATA, flags, stream_id);
            self.output.extend_from_slice(chunk);
        }
        self.connection_send_window -= message.len() as i64;
        let stream = Stream {
            client,
            sent,
            response: Response::default(),
            received_unacked: 0,
        };
        self.streams.insert(stream_id, stream);
    }

    /// The bytes waiting to be written; the event loop drains what it wrote.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Handles every complete frame at the start of `input`; returns how many bytes it used.
    pub fn receive(
        &mut self,
        input: &[u8],
        completions: &mut Vec<Completion>,
    ) -> Result<usize, ConnectionError> {
        let mut used = 0;
        while input.len() - used >= frame::HEADER_LEN {
            let header = FrameHeader::parse(&input[used..]);
            if header.length > frame::FRAME_SIZE_DEFAULT {
                return Err(ConnectionError(format!(
                    "frame of {} bytes above the default maximum we kept",
                    header.length
                )));
            }
            let end = used + frame::HEADER_LEN + header.length;
            if input.len() < end {
                break;
            }
            self.frame(header, &input[used + frame::HEADER_LEN..end], completions)?;
            used = end;
        }
        if self.connection_received_unacked >= CONNECTION_WINDOW_REFILL {
            frame::write_window_update(&mut self.output, 0, self.connection_received_unacked);
            self.connection_received_unacked = 0;
        }
        Ok(used)
    }

    /// Ends every call in flight with `reason` (the connection broke).
    pub fn fail_all(&mut self, reason: &str, completions: &mut Vec<Completion>) {
        for (_, stream) in self.streams.drain() {
            completions.push(Completion {
                client: stream.client,
                sent: stream.sent,
                result: Err(reason.to_string()),
            });
        }
    }

    fn frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
        completions: &mut Vec<Completion>,
    ) -> Result<(), ConnectionError> {
        let protocol_error = |what: &str| Err(ConnectionError(format!("protocol error: {what}")));
        if self.header_block_partial.is_some() && header.kind != frame::CONTINUATION {
            return protocol_error("a frame inside a header block");
        }
        match header.kind {
            frame::DATA => {
                self.connection_received_unacked += payload.len() as u32;
                let Some(content) = frame::unpadded(header.kind, header.flags, payload) else {
                    return protocol_error("DATA padding");
                };
                if let Some(stream) = self.streams.get_mut(&header.stream_id) {
                    stream.response.data(content);
                    stream.received_unacked += payload.len() as u32;
                    let ended = header.flags & frame::FLAG_END_STREAM != 0;
                    if !ended && stream.received_unacked >= STREAM_WINDOW / 2 {
                        let increment = stream.received_unacked;
                        stream.received_unacked = 0;
                        frame::write_window_update(&mut self.output, header.stream_id, increment);
                    }
                    if ended {
                        self.complete(header.stream_id, completions);
                    }
                }
            }
            frame::HEADERS => {
                let Some(content) = frame::unpadded(header.kind, header.flags, payload) else {
                    return protocol_error("HEADERS padding");
                };
                let end_stream = header.flags & frame::FLAG_END_STREAM != 0;
                if header.flags & frame::FLAG_END_HEADERS != 0 {
                    self.header_block(header.stream_id, end_stream, content, completions)?;
                } else {
                    self.header_block_partial =
                        Some((header.stream_id, end_stream, content.to_vec()));
                }
            }
            frame::CONTINUATION => {
                let Some((stream_id, end_stream, mut block)) = self.header_block_partial.take()
                else {
                    return protocol_error("CONTINUATION without HEADERS");
                };
                if stream_id != header.stream_id {
                    return protocol_error("CONTINUATION of another stream");
                }
                block.extend_from_slice(payload);
                if block.len() > HEADER_BLOCK_BYTES_LIMIT {
                    return protocol_error("header block too large");
                }
                if header.flags & frame::FLAG_END_HEADERS != 0 {
                    self.header_block(stream_id, end_stream, &block, completions)?;
                } else {
                    self.header_block_partial = Some((stream_id, end_stream, block));
                }
            }
            frame::RST_STREAM => {
                if let Some(stream) = self.streams.remove(&header.stream_id) {
                    let code = payload
                        .get(..4)
                        .map_or(0, |c| u32::from_be_bytes(c.try_into().expect("4 bytes")));
                    completions.push(Completion {
                        client: stream.client,
                        sent: stream.sent,
                        result: Err(format!("stream reset by the server, error code {code}")),
                    });
                }
            }
            frame::SETTINGS if header.flags & frame::FLAG_ACK != 0 => {}
            frame::SETTINGS => self.settings(payload)?,
            frame::PING if header.flags & frame::FLAG_ACK != 0 => {}
            frame::PING => {
                let Ok(opaque) = <[u8; 8]>::try_from(payload) else {
                    return protocol_error("PING of a wrong size");
                };
                frame::write_ping_ack(&mut self.output, &opaque);
            }
            frame::GOAWAY => self.goaway(payload, completions)?,
            frame::WINDOW_UPDATE => {
                let Some(bytes) = payload.get(..4) else {
                    return protocol_error("WINDOW_UPDATE of a wrong size");
                };
                let increment = u32::from_be_bytes(bytes.try_into().expect("4 bytes")) & !(1 << 31);
                // Stream windows matter only when a call starts (its whole message goes out
                // then), and a new stream starts from the initial window: only the
                // connection's is tracked.
                if header.stream_id == 0 {
                    self.connection_send_window += i64::from(increment);
                    if self.connection_send_window > frame::WINDOW_MAX {
                        return protocol_error("connection send window above 2^31-1");
                    }
                }
            }
            frame::PUSH_PROMISE => return protocol_error("PUSH_PROMISE with push disabled"),
            // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.5).
            _ => {}
        }
        Ok(())
    }

    /// A complete header block (response headers or trailers) for `stream_id`.
    fn header_block(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        block: &[u8],
        completions: &mut Vec<Completion>,
    ) -> Result<(), ConnectionError> {
        // Decoded even when the stream is gone: the dynamic table must follow every block.
        let mut stream = self.streams.get_mut(&stream_id);
        self.decoder
            .decode(block, |name, value| {
                if let Some(stream) = stream.as_mut() {
                    stream.response.header(name, value);
                }
            })
            .map_err(|error| ConnectionError(error.to_string()))?;
        if end_stream {
            self.complete(stream_id, completions);
        }
        Ok(())
    }

    fn complete(&mut self, stream_id: u32, completions: &mut Vec<Completion>) {
        if let Some(stream) = self.streams.remove(&stream_id) {
            completions.push(Completion {
                client: stream.client,
                sent: stream.sent,
                result: stream.response.verdict(),
            });
        }
    }

    fn settings(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        let Some(settings) = frame::parse_settings(payload) else {
            return Err(ConnectionError("protocol error: SETTINGS size".into()));
        };
        for (id, value) in settings {
            match id {
                frame::SETTINGS_MAX_CONCURRENT_STREAMS => self.streams_limit = value as usize,
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    self.stream_send_window_initial = i64::from(value);
                }
                frame::SETTINGS_MAX_FRAME_SIZE => self.frame_size_max = value as usize,
                // HEADER_TABLE_SIZE bounds an encoder's table; ours indexes nothing.
                _ => {}
            }
        }
        frame::write_settings_ack(&mut self.output);
        self.settings_received = true;
        Ok(())
    }

    fn goaway(
        &mut self,
        payload: &[u8],
        completions: &mut Vec<Completion>,
    ) -> Result<(), ConnectionError> {
        if payload.len() < 8 {
            return Err(ConnectionError("protocol error: GOAWAY size".into()));
        }
        let last_stream_id =
            u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) & !(1 << 31);
        let code = u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes"));
        let debug = String::from_utf8_lossy(&payload[8..]);
        self.goaway_last_stream_id = Some(last_stream_id);
        let refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last_stream_id)
            .collect();
        for stream_id in refused {
            let stream = self.streams.remove(&stream_id).expect("listed above");
            completions.push(Completion {
                client: stream.client,
                sent: stream.sent,
                result: Err(format!("GOAWAY (error code {code}) {debug}")),
            });
        }
        Ok(())
    }
}
