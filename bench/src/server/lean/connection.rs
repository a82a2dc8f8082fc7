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

use super::request::CallHeaders;
use super::response::Response;
use basalt_net::http2::frame::{self, FrameHeader};
use basalt_net::http2::hpack;

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
    /// The pre-encoded request header blocks (the first call's, then indexed).
    request_headers: CallHeaders,
    /// The first call's block went out: the server's dynamic table holds its fields.
    sent_first_headers: bool,
    /// The server decoder's dynamic table size (its SETTINGS_HEADER_TABLE_SIZE).
    server_header_table_size: usize,
    /// The server changed that size: the next block starts with a table size update.
    table_size_update_due: bool,
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
    pub fn new(request_headers: CallHeaders) -> Self {
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
            sent_first_headers: false,
            server_header_table_size: hpack::TABLE_SIZE_DEFAULT,
            table_size_update_due: false,
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
        let block = self
            .request_headers
            .block(self.sent_first_headers, self.server_header_table_size);
        let update = if std::mem::take(&mut self.table_size_update_due) {
            let size = self.server_header_table_size.min(hpack::TABLE_SIZE_DEFAULT);
            super::request::table_size_update(size)
        } else {
            Vec::new()
        };
        frame::write_header(
            &mut self.output,
            update.len() + block.len(),
            frame::HEADERS,
            frame::FLAG_END_HEADERS,
            stream_id,
        );
        self.output.extend_from_slice(&update);
        self.output.extend_from_slice(block);
        self.sent_first_headers = self.server_header_table_size >= self.request_headers.table_bytes;
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
                frame::SETTINGS_INITIAL_WINDOW_SIZE if i64::from(value) > frame::WINDOW_MAX => {
                    return Err(ConnectionError(
                        "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1".into(),
                    ));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    self.stream_send_window_initial = i64::from(value);
                }
                // RFC 9113 §6.5.2: 2^14 ..= 2^24-1.
                frame::SETTINGS_MAX_FRAME_SIZE if !(1 << 14..1 << 24).contains(&value) => {
                    return Err(ConnectionError(format!("SETTINGS_MAX_FRAME_SIZE {value}")));
                }
                frame::SETTINGS_MAX_FRAME_SIZE => self.frame_size_max = value as usize,
                // A table too small for the call's fields: they go as literals, and the first
                // block again should it grow back (its entries may have been evicted).
                frame::SETTINGS_HEADER_TABLE_SIZE => {
                    self.table_size_update_due |= value as usize != self.server_header_table_size;
                    self.server_header_table_size = value as usize;
                    if self.server_header_table_size < self.request_headers.table_bytes {
                        self.sent_first_headers = false;
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame: header and payload.
    fn server_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_header(&mut out, payload.len(), kind, flags, stream_id);
        out.extend_from_slice(payload);
        out
    }

    /// The frames in `bytes` (after the preface, if any): (kind, flags, stream, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        if let Some(rest) = bytes.strip_prefix(frame::PREFACE) {
            bytes = rest;
        }
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let header = FrameHeader::parse(bytes);
            let end = frame::HEADER_LEN + header.length;
            let payload = bytes[frame::HEADER_LEN..end].to_vec();
            out.push((header.kind, header.flags, header.stream_id, payload));
            bytes = &bytes[end..];
        }
        out
    }

    fn test_headers() -> CallHeaders {
        super::super::request::call_headers("/etcdserverpb.KV/Put", "127.0.0.1:2379")
    }

    /// A connection past its handshake with a server that allows `streams_limit` streams.
    fn ready_connection(streams_limit: u32) -> (Connection, Vec<Completion>) {
        let mut connection = Connection::new(test_headers());
        let mut completions = Vec::new();
        let settings = [
            &frame::SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes()[..],
            &streams_limit.to_be_bytes(),
        ]
        .concat();
        let input = server_frame(frame::SETTINGS, 0, 0, &settings);
        assert!(
            !connection.can_issue(10),
            "no call before the server's SETTINGS"
        );
        let used = connection.receive(&input, &mut completions).unwrap();
        assert_eq!(used, input.len());
        connection.output().clear();
        (connection, completions)
    }

    /// Response headers (":status 200" indexed), a PutResponse, trailers with "grpc-status: 0"
    /// as a literal with incremental indexing.
    fn ok_response(stream_id: u32) -> Vec<u8> {
        let mut bytes = server_frame(frame::HEADERS, frame::FLAG_END_HEADERS, stream_id, &[0x88]);
        let message = [0, 0, 0, 0, 4, 0x0a, 2, 0x08, 0x01];
        bytes.extend(server_frame(frame::DATA, 0, stream_id, &message));
        let mut trailers = vec![0x40, 11];
        trailers.extend_from_slice(b"grpc-status");
        trailers.extend_from_slice(&[1, b'0']);
        let flags = frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM;
        bytes.extend(server_frame(frame::HEADERS, flags, stream_id, &trailers));
        bytes
    }

    // Goal: settings out of RFC 9113's ranges are connection errors, not a panic or a frame
    // size of zero.
    #[test]
    fn settings_out_of_range_are_refused() {
        for (id, value) in [
            (frame::SETTINGS_MAX_FRAME_SIZE, 0u32),
            (frame::SETTINGS_MAX_FRAME_SIZE, 1 << 24),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31),
        ] {
            let mut connection = Connection::new(test_headers());
            let payload = [&id.to_be_bytes()[..], &value.to_be_bytes()].concat();
            let input = server_frame(frame::SETTINGS, 0, 0, &payload);
            assert!(
                connection.receive(&input, &mut Vec::new()).is_err(),
                "{id} {value}"
            );
        }
    }

    // Goal: the handshake announces push off, a large stream window and a large connection
    // window, and acknowledges the server's SETTINGS.
    #[test]
    fn handshake_announces_windows_and_acks_settings() {
        let mut connection = Connection::new(test_headers());
        let sent = frames(connection.output());
        assert_eq!(sent[0].0, frame::SETTINGS);
        let settings: Vec<_> = frame::parse_settings(&sent[0].3).unwrap().collect();
        assert!(settings.contains(&(frame::SETTINGS_ENABLE_PUSH, 0)));
        assert!(settings.contains(&(frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW)));
        assert_eq!(sent[1].0, frame::WINDOW_UPDATE);
        connection.output().clear();
        let mut completions = Vec::new();
        let input = server_frame(frame::SETTINGS, 0, 0, &[]);
        connection.receive(&input, &mut completions).unwrap();
        assert_eq!(
            frames(connection.output()),
            [(frame::SETTINGS, frame::FLAG_ACK, 0, vec![])]
        );
    }

    // Goal: the first call's HEADERS fill the server's dynamic table and later calls name
    // their fields by index, as grpc-go's; a server whose table cannot hold the fields gets
    // literals, and the filling block again once its table is large enough.
    #[test]
    fn calls_index_their_headers_after_the_first() {
        let headers = test_headers();
        let (mut connection, _) = ready_connection(100);
        let now = Instant::now();
        let header_blocks = |connection: &mut Connection| {
            let blocks: Vec<_> = frames(connection.output())
                .into_iter()
                .filter(|(kind, ..)| *kind == frame::HEADERS)
                .map(|(.., payload)| payload)
                .collect();
            connection.output().clear();
            blocks
        };
        connection.issue(1, b"a", now);
        connection.issue(2, b"b", now);
        connection.issue(3, b"c", now);
        assert_eq!(
            header_blocks(&mut connection),
            [
                headers.first.clone(),
                headers.indexed.clone(),
                headers.indexed.clone()
            ]
        );
        let table_size = |size: u32| {
            let payload = [
                &frame::SETTINGS_HEADER_TABLE_SIZE.to_be_bytes()[..],
                &size.to_be_bytes(),
            ]
            .concat();
            server_frame(frame::SETTINGS, 0, 0, &payload)
        };
        connection.receive(&table_size(0), &mut Vec::new()).unwrap();
        connection.output().clear();
        connection.issue(4, b"d", now);
        let update = |size| super::super::request::table_size_update(size);
        assert_eq!(
            header_blocks(&mut connection),
            [[update(0), headers.literal.clone()].concat()]
        );
        connection
            .receive(&table_size(4096), &mut Vec::new())
            .unwrap();
        connection.output().clear();
        connection.issue(5, b"e", now);
        connection.issue(6, b"f", now);
        assert_eq!(
            header_blocks(&mut connection),
            [
                [update(4096), headers.first.clone()].concat(),
                headers.indexed.clone()
            ]
        );
    }

    // Goal: calls use odd increasing stream ids, stop at MAX_CONCURRENT_STREAMS, and a call
    // whose response arrives in pieces (split at any byte) completes once, successfully.
    #[test]
    fn calls_respect_the_stream_limit_and_complete() {
        let (mut connection, mut completions) = ready_connection(2);
        let now = Instant::now();
        connection.issue(7, b"abc", now);
        connection.issue(8, b"def", now);
        assert!(!connection.can_issue(3), "the server allows two streams");
        let sent = frames(connection.output());
        let ids: Vec<_> = sent.iter().map(|(kind, _, id, _)| (*kind, *id)).collect();
        assert_eq!(
            ids,
            [
                (frame::HEADERS, 1),
                (frame::DATA, 1),
                (frame::HEADERS, 3),
                (frame::DATA, 3)
            ]
        );
        assert_eq!(sent[1].1, frame::FLAG_END_STREAM);
        let response = ok_response(3);
        let mut buffered = Vec::new();
        for byte in response {
            buffered.push(byte);
            let used = connection.receive(&buffered, &mut completions).unwrap();
            buffered.drain(..used);
        }
        assert!(buffered.is_empty());
        assert_eq!(completions.len(), 1);
        assert_eq!(completions[0].client, 8);
        assert_eq!(completions[0].result, Ok(()));
        assert!(connection.can_issue(3));
        // The second response uses the dynamic table entry the first one added.
        let mut second = server_frame(frame::HEADERS, frame::FLAG_END_HEADERS, 1, &[0x88]);
        let message = [0, 0, 0, 0, 4, 0x0a, 2, 0x08, 0x01];
        second.extend(server_frame(frame::DATA, 0, 1, &message));
        let flags = frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM;
        second.extend(server_frame(frame::HEADERS, flags, 1, &[0xbe]));
        connection.receive(&second, &mut completions).unwrap();
        assert_eq!(completions[1].client, 7);
        assert_eq!(completions[1].result, Ok(()));
    }

    // Goal: PING is answered, RST_STREAM and GOAWAY fail the calls they end (GOAWAY only those
    // above its last stream id) and stop new calls, and a trailers-only error response is an
    // error carrying grpc-message.
    #[test]
    fn ping_reset_goaway_and_errors() {
        let (mut connection, mut completions) = ready_connection(100);
        let now = Instant::now();
        for client in 0..4 {
            connection.issue(client, b"m", now);
        }
        connection.output().clear();
        let mut input = server_frame(frame::PING, 0, 0, b"12345678");
        input.extend(server_frame(frame::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
        let mut trailers_only = vec![0x88, 0x00, 11];
        trailers_only.extend_from_slice(b"grpc-status");
        trailers_only.extend_from_slice(&[1, b'8', 0x00, 12]);
        trailers_only.extend_from_slice(b"grpc-message");
        trailers_only.extend_from_slice(&[4]);
        trailers_only.extend_from_slice(b"full");
        let flags = frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM;
        input.extend(server_frame(frame::HEADERS, flags, 3, &trailers_only));
        let goaway = [5u32.to_be_bytes(), 0u32.to_be_bytes()].concat();
        input.extend(server_frame(frame::GOAWAY, 0, 0, &goaway));
        connection.receive(&input, &mut completions).unwrap();
        assert_eq!(
            frames(connection.output()),
            [(frame::PING, frame::FLAG_ACK, 0, b"12345678".to_vec())]
        );
        let mut ended: Vec<_> = completions
            .iter()
            .map(|c| (c.client, c.result.clone().unwrap_err()))
            .collect();
        ended.sort();
        assert_eq!(ended.len(), 3, "{ended:?}");
        assert!(ended[0].1.contains("reset") && ended[0].1.contains('8'));
        assert_eq!(ended[1].1, "grpc-status 8: full");
        assert!(
            ended[2].1.contains("GOAWAY"),
            "stream 7 is above the last id 5"
        );
        assert!(connection.is_closing() && !connection.can_issue(1));
        assert_eq!(connection.calls_in_flight(), 1, "stream 5 may still finish");
    }

    // Goal: a header block split over CONTINUATION frames decodes as one, and any other
    // frame inside a header block is a connection error.
    #[test]
    fn continuation_joins_header_blocks() {
        let (mut connection, mut completions) = ready_connection(100);
        connection.issue(1, b"m", Instant::now());
        let mut block = vec![0x88];
        block.extend_from_slice(&[0x00, 11]);
        block.extend_from_slice(b"grpc-status");
        block.extend_from_slice(&[1, b'5']);
        let (first, second) = block.split_at(4);
        let mut input = server_frame(frame::HEADERS, frame::FLAG_END_STREAM, 1, first);
        input.extend(server_frame(
            frame::CONTINUATION,
            frame::FLAG_END_HEADERS,
            1,
            second,
        ));
        connection.receive(&input, &mut completions).unwrap();
        assert_eq!(completions[0].result, Err("grpc-status 5: ".into()));

        let (mut connection, mut completions) = ready_connection(100);
        connection.issue(1, b"m", Instant::now());
        let mut input = server_frame(frame::HEADERS, 0, 1, first);
        input.extend(server_frame(frame::PING, 0, 0, b"12345678"));
        assert!(connection.receive(&input, &mut completions).is_err());
    }

    // Goal: a call waits while its message does not fit the connection send window, and a
    // WINDOW_UPDATE lets it go; received DATA is given back once a quarter of the window.
    #[test]
    fn send_window_blocks_and_receive_window_refills() {
        let (mut connection, mut completions) = ready_connection(100);
        let message = vec![0u8; 40_000];
        connection.issue(0, &message, Instant::now());
        assert!(!connection.can_issue(message.len()), "65535 - 40000 left");
        let update = 20_000u32.to_be_bytes();
        let input = server_frame(frame::WINDOW_UPDATE, 0, 0, &update);
        connection.receive(&input, &mut completions).unwrap();
        assert!(connection.can_issue(message.len()));
        connection.output().clear();
        let chunk = vec![0u8; frame::FRAME_SIZE_DEFAULT];
        let mut input = Vec::new();
        let mut received = 0;
        while received < CONNECTION_WINDOW_REFILL as usize {
            input.extend(server_frame(frame::DATA, 0, 1, &chunk));
            received += chunk.len();
        }
        connection.receive(&input, &mut completions).unwrap();
        let sent = frames(connection.output());
        let refill: Vec<_> = sent
            .iter()
            .filter(|f| f.0 == frame::WINDOW_UPDATE)
            .collect();
        assert!(
            refill.iter().any(|f| f.2 == 0),
            "connection window refilled: {sent:?}"
        );
    }
}
