//! The server connection driven by hand-written client frames, without sockets.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::frame::{self, FrameHeader};
use super::hpack;
use super::server_connection::{reason, Limits, ServerConnection, StreamError};

fn limits() -> Limits {
    Limits {
        max_concurrent_streams: 4,
        stream_window: 1 << 16,
        connection_window: 1 << 20,
        max_frame_size: 16_384,
        max_header_list_size: 16 * 1024,
        max_send_buffer_per_stream: 64 * 1024,
    }
}

/// A frame as the server wrote it.
#[derive(Debug)]
struct Written {
    header: FrameHeader,
    payload: Vec<u8>,
}

/// A connection past the preface and SETTINGS exchange, its output drained.
fn connected(limits: Limits) -> ServerConnection {
    let mut connection = ServerConnection::new(limits);
    let mut input = BytesMut::from(frame::PREFACE);
    let mut settings = Vec::new();
    frame::write_settings(&mut settings, &[]);
    input.extend_from_slice(&settings);
    connection.receive(&mut input).unwrap();
    let written = drain(&mut connection);
    let kinds: Vec<u8> = written.iter().map(|w| w.header.kind).collect();
    assert_eq!(
        kinds,
        [frame::SETTINGS, frame::WINDOW_UPDATE, frame::SETTINGS],
        "our SETTINGS, the connection window, the ACK of theirs"
    );
    connection
}

fn drain(connection: &mut ServerConnection) -> Vec<Written> {
    let output = connection.fill_output();
    let bytes = std::mem::take(output);
    let mut rest = &bytes[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let header = FrameHeader::parse(rest);
        let end = frame::HEADER_LEN + header.length;
        frames.push(Written {
            header,
            payload: rest[frame::HEADER_LEN..end].to_vec(),
        });
        rest = &rest[end..];
    }
    frames
}

fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
    ]
    .iter()
    .chain(extra)
    {
        hpack::encode_literal(&mut block, name.as_bytes(), value.as_bytes());
    }
    block
}

fn send(connection: &mut ServerConnection, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
    let mut input = BytesMut::new();
    let mut bytes = Vec::new();
    frame::write_header(&mut bytes, payload.len(), kind, flags, stream_id);
    bytes.extend_from_slice(payload);
    input.extend_from_slice(&bytes);
    connection.receive(&mut input).unwrap();
    assert!(input.is_empty());
}

fn open(connection: &mut ServerConnection, stream_id: u32, end_stream: bool) {
    let flags = frame::FLAG_END_HEADERS
        | if end_stream {
            frame::FLAG_END_STREAM
        } else {
            0
        };
    send(
        connection,
        frame::HEADERS,
        flags,
        stream_id,
        &request_block("/etcdserverpb.KV/Put", &[("token", "t")]),
    );
}

fn fields(decoder: &mut hpack::Decoder, block: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    decoder
        .decode(block, |name, value| {
            out.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ))
        })
        .unwrap();
    out
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

// Goal: a unary call's request comes out whole (pseudo-headers and metadata), its body reads
// to its end, and its response goes out as HEADERS, DATA and trailers with END_STREAM, after
// which the stream is gone.
#[test]
fn a_unary_call_round_trips() {
    let mut connection = connected(limits());
    open(&mut connection, 1, false);
    send(
        &mut connection,
        frame::DATA,
        frame::FLAG_END_STREAM,
        1,
        b"hello",
    );
    let head = connection.accept().expect("accepted");
    assert_eq!(head.stream_id, 1);
    assert_eq!(head.method, http::Method::POST);
    assert_eq!(head.path, "/etcdserverpb.KV/Put");
    assert_eq!(head.headers.get("token").unwrap(), "t");
    let mut cx = cx();
    assert_eq!(
        connection.poll_data(&mut cx, 1),
        Poll::Ready(Some(Ok(Bytes::from_static(b"hello"))))
    );
    assert_eq!(connection.poll_data(&mut cx, 1), Poll::Ready(None));
    connection.release_capacity(1, 5);

    connection
        .send_headers(1, 200, &[("content-type", "application/grpc")], false)
        .unwrap();
    let mut body = Bytes::from_static(b"answer");
    assert_eq!(
        connection.poll_send(&mut cx, 1, &mut body),
        Poll::Ready(Ok(()))
    );
    connection
        .send_trailers(1, &[("grpc-status", "0")])
        .unwrap();
    let written = drain(&mut connection);
    let kinds: Vec<(u8, u8)> = written
        .iter()
        .map(|w| (w.header.kind, w.header.flags))
        .collect();
    assert_eq!(
        kinds,
        [
            (frame::HEADERS, frame::FLAG_END_HEADERS),
            (frame::DATA, 0),
            (
                frame::HEADERS,
                frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM
            ),
        ]
    );
    let mut decoder = hpack::Decoder::new(hpack::TABLE_SIZE_DEFAULT);
    assert_eq!(
        fields(&mut decoder, &written[0].payload),
        [
            (":status".to_string(), "200".to_string()),
            ("content-type".to_string(), "application/grpc".to_string())
        ]
    );
    assert_eq!(written[1].payload, b"answer");
    assert_eq!(
        fields(&mut decoder, &written[2].payload),
        [("grpc-status".to_string(), "0".to_string())]
    );
    assert_eq!(connection.open_streams(), 0);
}

// Goal: a response larger than the client's stream window goes out up to the window and waits;
// the client's WINDOW_UPDATE lets the rest out. The send buffer bounds what a call may queue.
#[test]
fn responses_wait_for_the_clients_window() {
    let mut connection = connected(limits());
    open(&mut connection, 1, true);
    connection.accept().unwrap();
    connection.send_headers(1, 200, &[], false).unwrap();
    let mut cx = cx();
    let mut body = Bytes::from(vec![7u8; 100_000]);
    // The send buffer takes 64 KiB; the rest waits.
    assert_eq!(connection.poll_send(&mut cx, 1, &mut body), Poll::Pending);
    assert_eq!(body.len(), 100_000 - 64 * 1024);
    let written = drain(&mut connection);
    let data: usize = written
        .iter()
        .filter(|w| w.header.kind == frame::DATA)
        .map(|w| w.payload.len())
        .sum();
    assert_eq!(data, 65_535, "the default stream window");
    assert!(written
        .iter()
        .all(|w| w.header.length <= frame::FRAME_SIZE_DEFAULT));
    // Window for the rest (the connection's window too).
    send(
        &mut connection,
        frame::WINDOW_UPDATE,
        0,
        1,
        &100_000u32.to_be_bytes(),
    );
    send(
        &mut connection,
        frame::WINDOW_UPDATE,
        0,
        0,
        &100_000u32.to_be_bytes(),
    );
    let written = drain(&mut connection);
    let data: usize = written.iter().map(|w| w.payload.len()).sum();
    assert_eq!(data, 64 * 1024 - 65_535);
    assert_eq!(
        connection.poll_send(&mut cx, 1, &mut body),
        Poll::Ready(Ok(()))
    );
}

// Goal: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM and
// never become calls.
#[test]
fn streams_over_the_limit_are_refused() {
    let mut connection = connected(limits());
    for stream_id in [1, 3, 5, 7, 9] {
        open(&mut connection, stream_id, false);
    }
    let accepted: Vec<u32> = std::iter::from_fn(|| connection.accept())
        .map(|head| head.stream_id)
        .collect();
    assert_eq!(accepted, [1, 3, 5, 7]);
    let written = drain(&mut connection);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].header.kind, frame::RST_STREAM);
    assert_eq!(written[0].header.stream_id, 9);
    assert_eq!(written[0].payload, reason::REFUSED_STREAM.to_be_bytes());
}

// Goal: DATA past the connection window is a connection error: GOAWAY FLOW_CONTROL_ERROR,
// and every call sees the connection closed.
#[test]
fn data_beyond_the_connection_window_fails_the_connection() {
    let mut connection = ServerConnection::new(Limits {
        connection_window: 65_535,
        ..limits()
    });
    let mut input = BytesMut::from(frame::PREFACE);
    let mut settings = Vec::new();
    frame::write_settings(&mut settings, &[]);
    input.extend_from_slice(&settings);
    connection.receive(&mut input).unwrap();
    drain(&mut connection);
    open(&mut connection, 1, false);
    open(&mut connection, 3, false);
    let chunk = vec![0u8; 16_384];
    // Three frames fit the 65,535 bytes, within each stream's own window; a fourth does not.
    for stream_id in [1, 3, 1] {
        send(&mut connection, frame::DATA, 0, stream_id, &chunk);
    }
    let mut bytes = Vec::new();
    frame::write_header(&mut bytes, chunk.len(), frame::DATA, 0, 3);
    bytes.extend_from_slice(&chunk);
    let error = connection
        .receive(&mut BytesMut::from(&bytes[..]))
        .unwrap_err();
    assert_eq!(error.code, reason::FLOW_CONTROL_ERROR);
    let written = drain(&mut connection);
    let goaway = written.last().unwrap();
    assert_eq!(goaway.header.kind, frame::GOAWAY);
    assert_eq!(
        goaway.payload[4..],
        reason::FLOW_CONTROL_ERROR.to_be_bytes()
    );
    assert_eq!(
        connection.poll_data(&mut cx(), 1),
        Poll::Ready(Some(Err(StreamError::ConnectionClosed)))
    );
}

// Goal: a client's RST_STREAM ends the call's reads with an error and frees the stream; body
// credit it held goes back to the connection.
#[test]
fn a_client_reset_ends_the_call() {
    let mut connection = connected(limits());
    open(&mut connection, 1, false);
    connection.accept().unwrap();
    send(&mut connection, frame::DATA, 0, 1, &[1u8; 1000]);
    send(
        &mut connection,
        frame::RST_STREAM,
        0,
        1,
        &reason::CANCEL.to_be_bytes(),
    );
    assert!(matches!(
        connection.poll_data(&mut cx(), 1),
        Poll::Ready(Some(Err(StreamError::Reset(_))))
    ));
    assert!(connection.poll_reset(&mut cx(), 1).is_ready());
    assert_eq!(connection.open_streams(), 0);
}

// Goal: a response that ends while the client is still sending its body ends with
// RST_STREAM NO_ERROR after the trailers (the client stops sending), as grpc-go does.
#[test]
fn an_early_response_stops_the_request_body() {
    let mut connection = connected(limits());
    open(&mut connection, 1, false);
    connection.accept().unwrap();
    connection
        .send_headers(1, 200, &[("grpc-status", "8")], true)
        .unwrap();
    let written = drain(&mut connection);
    let kinds: Vec<u8> = written.iter().map(|w| w.header.kind).collect();
    assert_eq!(kinds, [frame::HEADERS, frame::RST_STREAM]);
    assert_eq!(written[1].payload, reason::NO_ERROR.to_be_bytes());
    assert_eq!(connection.open_streams(), 0);
    // DATA already in flight for it is only counted.
    send(&mut connection, frame::DATA, 0, 1, &[0u8; 100]);
    assert!(connection.error().is_none());
}

// Goal: released body bytes come back to the client as WINDOW_UPDATEs once half a window
// is owed, for the stream and for the connection.
#[test]
fn released_credit_returns_as_window_updates() {
    let mut connection = connected(Limits {
        connection_window: 1 << 16,
        ..limits()
    });
    open(&mut connection, 1, false);
    connection.accept().unwrap();
    let chunk = vec![0u8; 16_000];
    for _ in 0..3 {
        send(&mut connection, frame::DATA, 0, 1, &chunk);
    }
    connection.release_capacity(1, 16_000);
    assert!(drain(&mut connection).is_empty(), "less than half a window");
    connection.release_capacity(1, 32_000);
    let written = drain(&mut connection);
    let updates: Vec<(u32, Vec<u8>)> = written
        .iter()
        .filter(|w| w.header.kind == frame::WINDOW_UPDATE)
        .map(|w| (w.header.stream_id, w.payload.clone()))
        .collect();
    assert_eq!(
        updates,
        [
            (1, 48_000u32.to_be_bytes().to_vec()),
            (0, 48_000u32.to_be_bytes().to_vec())
        ]
    );
}

// Goal: protocol violations are connection errors with RFC 9113's codes.
#[test]
fn protocol_violations_close_the_connection() {
    /// What, frame type, flags, stream, payload, the GOAWAY code expected.
    type Case = (&'static str, u8, u8, u32, Vec<u8>, u32);
    let cases: [Case; 5] = [
        (
            "DATA on stream 0",
            frame::DATA,
            0,
            0,
            vec![1],
            reason::PROTOCOL_ERROR,
        ),
        (
            "an even stream",
            frame::HEADERS,
            frame::FLAG_END_HEADERS,
            2,
            request_block("/x", &[]),
            reason::PROTOCOL_ERROR,
        ),
        (
            "a PING of 7 bytes",
            frame::PING,
            0,
            0,
            vec![0; 7],
            reason::FRAME_SIZE_ERROR,
        ),
        (
            "a bad HPACK index",
            frame::HEADERS,
            frame::FLAG_END_HEADERS,
            1,
            vec![0xff, 0x7f],
            reason::COMPRESSION_ERROR,
        ),
        (
            "PUSH_PROMISE",
            frame::PUSH_PROMISE,
            0,
            1,
            vec![0; 4],
            reason::PROTOCOL_ERROR,
        ),
    ];
    for (what, kind, flags, stream_id, payload, code) in cases {
        let mut connection = connected(limits());
        let mut bytes = Vec::new();
        frame::write_header(&mut bytes, payload.len(), kind, flags, stream_id);
        bytes.extend_from_slice(&payload);
        let error = connection
            .receive(&mut BytesMut::from(&bytes[..]))
            .unwrap_err();
        assert_eq!(error.code, code, "{what}");
    }
}

// Goal: a header block split over CONTINUATION frames decodes as one; another frame in the
// middle of it is a protocol error.
#[test]
fn continuation_frames_complete_a_header_block() {
    let mut connection = connected(limits());
    let block = request_block("/etcdserverpb.KV/Range", &[]);
    let (first, second) = block.split_at(10);
    send(
        &mut connection,
        frame::HEADERS,
        frame::FLAG_END_STREAM,
        1,
        first,
    );
    assert!(connection.accept().is_none());
    send(
        &mut connection,
        frame::CONTINUATION,
        frame::FLAG_END_HEADERS,
        1,
        second,
    );
    assert_eq!(connection.accept().unwrap().path, "/etcdserverpb.KV/Range");

    send(&mut connection, frame::HEADERS, 0, 3, first);
    let mut bytes = Vec::new();
    frame::write_header(&mut bytes, 8, frame::PING, 0, 0);
    bytes.extend_from_slice(&[0; 8]);
    let error = connection
        .receive(&mut BytesMut::from(&bytes[..]))
        .unwrap_err();
    assert_eq!(error.code, reason::PROTOCOL_ERROR);
}

// Goal: a graceful shutdown sends GOAWAY(2^31-1) with a PING; a call the client opened before
// the PING's ACK is still served; after the ACK, GOAWAY names the last stream served, later
// streams are not taken, and the connection is drained once the calls end.
#[test]
fn a_graceful_goaway_serves_calls_opened_before_the_client_saw_it() {
    let mut connection = connected(limits());
    open(&mut connection, 1, true);
    connection.accept().unwrap();
    connection.go_away_gracefully();
    let written = drain(&mut connection);
    assert_eq!(written[0].header.kind, frame::GOAWAY);
    assert_eq!(written[0].payload[..4], 0x7fff_ffffu32.to_be_bytes());
    assert_eq!(written[1].header.kind, frame::PING);
    let ping = written[1].payload.clone();

    open(&mut connection, 3, true);
    assert_eq!(
        connection.accept().unwrap().stream_id,
        3,
        "in flight: served"
    );
    send(&mut connection, frame::PING, frame::FLAG_ACK, 0, &ping);
    let written = drain(&mut connection);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].header.kind, frame::GOAWAY);
    assert_eq!(written[0].payload[..4], 3u32.to_be_bytes());
    open(&mut connection, 5, true);
    assert!(
        connection.accept().is_none(),
        "after the last GOAWAY: not taken"
    );

    assert!(!connection.drained());
    for stream_id in [1, 3] {
        connection
            .send_headers(stream_id, 200, &[("grpc-status", "0")], true)
            .unwrap();
    }
    drain(&mut connection);
    assert!(connection.drained());
}

// Goal: a client that opens and resets streams faster than they are served (rapid reset,
// CVE-2023-44487) gets GOAWAY ENHANCE_YOUR_CALM; resets of requests already taken do not count.
#[test]
fn rapid_resets_get_enhance_your_calm() {
    let mut connection = connected(Limits {
        max_concurrent_streams: 100,
        ..limits()
    });
    let cancel = reason::CANCEL.to_be_bytes();
    // Taken between resets: never counted.
    for stream_id in (1..=81).step_by(2) {
        open(&mut connection, stream_id, true);
        connection.accept().unwrap();
        send(&mut connection, frame::RST_STREAM, 0, stream_id, &cancel);
        assert!(connection.accept().is_none());
    }
    let mut stream_id = 101;
    let error = loop {
        let mut bytes = Vec::new();
        let block = request_block("/x", &[]);
        frame::write_header(
            &mut bytes,
            block.len(),
            frame::HEADERS,
            frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM,
            stream_id,
        );
        bytes.extend_from_slice(&block);
        frame::write_header(&mut bytes, 4, frame::RST_STREAM, 0, stream_id);
        bytes.extend_from_slice(&cancel);
        if let Err(error) = connection.receive(&mut BytesMut::from(&bytes[..])) {
            break error;
        }
        stream_id += 2;
        assert!(stream_id < 200, "never refused");
    };
    assert_eq!(error.code, reason::ENHANCE_YOUR_CALM);
    assert_eq!(stream_id, 101 + 2 * 20, "the 21st reset before serving");
}

// Goal: a client that makes the server reset its streams (a protocol error on each, here a
// WINDOW_UPDATE of 0) instead of resetting them itself gets ENHANCE_YOUR_CALM once the server
// has reset 1024 that way (the rapid-reset guard counts only the client's own resets).
#[test]
fn provoked_resets_get_enhance_your_calm() {
    let mut connection = connected(limits());
    let zero = 0u32.to_be_bytes();
    let mut stream_id = 1;
    let error = loop {
        open(&mut connection, stream_id, false);
        assert!(connection.accept().is_some());
        let mut bytes = Vec::new();
        frame::write_header(&mut bytes, 4, frame::WINDOW_UPDATE, 0, stream_id);
        bytes.extend_from_slice(&zero);
        if let Err(error) = connection.receive(&mut BytesMut::from(&bytes[..])) {
            break error;
        }
        drain(&mut connection);
        stream_id += 2;
        assert!(stream_id < 4000, "never refused");
    };
    assert_eq!(error.code, reason::ENHANCE_YOUR_CALM);
    assert_eq!((stream_id - 1) / 2, 1024, "the 1025th provoked reset");
}

// Goal: a stream whose call is done while its response still waits for the client's window
// discards the body the client goes on sending, but only within the stream's window: DATA
// past it is a flow-control error (RFC 9113 §6.9.1), not an endless sink whose bytes the
// connection keeps crediting back.
#[test]
fn a_released_stream_still_holds_the_client_to_its_window() {
    let mut connection = connected(limits());
    open(&mut connection, 1, false);
    connection.accept().unwrap();
    connection.send_headers(1, 200, &[], false).unwrap();
    // One byte more than the client's default window of 65,535: the end stays queued.
    let mut body = Bytes::from(vec![7u8; 65_536]);
    assert_eq!(
        connection.poll_send(&mut cx(), 1, &mut body),
        Poll::Ready(Ok(()))
    );
    connection.finish_data(1).unwrap();
    drain(&mut connection);
    connection.release_stream(1);
    assert_eq!(
        connection.open_streams(),
        1,
        "its response still waits for the window"
    );
    let chunk = [0u8; 16_384];
    for _ in 0..4 {
        send(&mut connection, frame::DATA, 0, 1, &chunk);
    }
    let resets = |written: &[Written]| {
        written
            .iter()
            .filter(|w| w.header.kind == frame::RST_STREAM)
            .map(|w| w.payload.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        resets(&drain(&mut connection)).is_empty(),
        "within the window"
    );
    send(&mut connection, frame::DATA, 0, 1, &chunk);
    assert_eq!(
        resets(&drain(&mut connection)),
        [reason::FLOW_CONTROL_ERROR.to_be_bytes().to_vec()]
    );
    assert!(connection.error().is_none(), "a stream error only");
}

// Goal: padding counts against the stream's window (RFC 9113 §6.1, §6.9.1), so the stream
// must get it back too, not only the connection: a client that pads its DATA must not see its
// stream window shrink for good. Here four padded frames use 64000 of a 65536-byte stream
// window for 4 bytes of content; once the call has taken and released those 4 bytes, nothing
// is held, so the stream owes the client its whole 64000 back (more than half a window).
// Review finding: `data` credits padding to the connection only; the stream gets no
// WINDOW_UPDATE and a compliant client stalls with 1536 bytes of window left.
#[test]
fn padding_returns_to_the_stream_window() {
    let mut connection = connected(limits());
    open(&mut connection, 1, false);
    connection.accept().unwrap();
    let mut padded = vec![0u8; 16_000];
    padded[0] = 255; // pad length; then 1 content byte ... and 255 bytes of padding
    let content = 16_000 - 1 - 255;
    for _ in 0..4 {
        send(&mut connection, frame::DATA, frame::FLAG_PADDED, 1, &padded);
    }
    let mut cx = cx();
    let mut taken = 0;
    while let Poll::Ready(Some(Ok(chunk))) = connection.poll_data(&mut cx, 1) {
        taken += chunk.len();
    }
    assert_eq!(taken, 4 * content);
    connection.release_capacity(1, taken);
    let written = drain(&mut connection);
    let stream_credit: u64 = written
        .iter()
        .filter(|w| w.header.kind == frame::WINDOW_UPDATE && w.header.stream_id == 1)
        .map(|w| u64::from(u32::from_be_bytes(w.payload[..4].try_into().unwrap())))
        .sum();
    assert_eq!(
        stream_credit, 64_000,
        "every byte of the stream's window used (content and padding) is granted back"
    );
}

/// A socket that yields `input` once, then nothing (Pending), and takes every write.
struct ScriptedIo {
    input: Vec<u8>,
}

impl futures_lite::AsyncRead for ScriptedIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.input.is_empty() {
            return Poll::Pending;
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Poll::Ready(Ok(n))
    }
}

impl futures_lite::AsyncWrite for ScriptedIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// Goal: when the connection's driver goes away without a close (its task dropped, as
// `start_connection` drops `serve_connection` when the server's `closing` is raised), a call
// waiting on its stream is woken and sees the connection closed, as h2's Connection did on
// drop. Review finding: `Driver` has no Drop; the call's waker is never woken and every later
// poll is Pending again, so the call task (and its connection state) waits forever.
#[test]
fn dropping_the_driver_ends_waiting_calls() {
    use super::driver::Driver;
    let mut input = frame::PREFACE.to_vec();
    frame::write_settings(&mut input, &[]);
    let block = request_block("/etcdserverpb.Watch/Watch", &[]);
    frame::write_header(
        &mut input,
        block.len(),
        frame::HEADERS,
        frame::FLAG_END_HEADERS,
        1,
    );
    input.extend_from_slice(&block);
    let mut driver = Driver::new(ScriptedIo { input }, limits(), &[]);
    let mut noop = cx();
    {
        let next = std::pin::pin!(driver.next());
        assert!(matches!(next.poll(&mut noop), Poll::Ready(Ok(()))));
    }
    let mut call = driver.accept().expect("a call");
    let counter = std::sync::Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let data = std::pin::pin!(call.body.data());
        assert!(data.poll(&mut cx).is_pending(), "no body yet");
    }
    drop(driver);
    assert_eq!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the waiting call is woken when its connection goes"
    );
    let data = std::pin::pin!(call.body.data());
    assert_eq!(
        data.poll(&mut cx),
        Poll::Ready(Some(Err(StreamError::ConnectionClosed)))
    );
}

// Goal: the "rapid reset" pattern (CVE-2023-44487) cannot make calls without bound. A
// client that opens a stream and resets it at once frees its slot in the stream map, so
// `max_concurrent_streams` never binds, yet every such request is still accepted and the
// server spawns a call task for it. h2, which this connection replaces, counted streams reset
// before they were accepted and closed the connection with ENHANCE_YOUR_CALM past 20
// (`max_pending_accept_reset_streams`). Here 200 open-and-reset pairs arrive in one read with
// `max_concurrent_streams` 4: at most a bounded number may become calls, and the connection
// must end with ENHANCE_YOUR_CALM.
// Review finding: all 200 are accepted as calls and the connection goes on.
#[test]
fn rapid_resets_do_not_make_calls_without_bound() {
    let mut connection = connected(limits());
    let block = request_block("/etcdserverpb.KV/Range", &[]);
    let mut bytes = Vec::new();
    for i in 0..200u32 {
        let id = 2 * i + 1;
        frame::write_header(
            &mut bytes,
            block.len(),
            frame::HEADERS,
            frame::FLAG_END_HEADERS | frame::FLAG_END_STREAM,
            id,
        );
        bytes.extend_from_slice(&block);
        frame::write_header(&mut bytes, 4, frame::RST_STREAM, 0, id);
        bytes.extend_from_slice(&reason::CANCEL.to_be_bytes());
    }
    let mut input = BytesMut::from(&bytes[..]);
    let _ = connection.receive(&mut input);
    let mut calls = 0;
    while connection.accept().is_some() {
        calls += 1;
    }
    assert!(
        calls <= 20,
        "{calls} calls made from streams reset before they were served"
    );
    assert_eq!(
        connection.error().map(|error| error.code),
        Some(reason::ENHANCE_YOUR_CALM)
    );
}

// Goal: a GOAWAY never raises the last stream id an earlier one announced (RFC 9113 §6.8:
// "Endpoints MUST NOT increase the value they send in the last stream identifier"). After a
// graceful GOAWAY naming stream 1, the client's stream 3 (sent before it saw the GOAWAY) is
// ignored, not processed; a protocol error after that must not tell the client stream 3 may
// have been processed (the client would then not retry it).
// Review finding: `fail` writes `highest_stream_id` (3), not the streams accepted (1).
#[test]
fn a_later_goaway_does_not_raise_the_last_stream_id() {
    let mut connection = connected(limits());
    open(&mut connection, 1, true);
    connection.accept().unwrap();
    connection.go_away(reason::NO_ERROR, &[]);
    open(&mut connection, 3, true);
    assert!(connection.accept().is_none(), "no calls after GOAWAY");
    let mut input = BytesMut::new();
    let mut bytes = Vec::new();
    frame::write_header(&mut bytes, 8, frame::PING, 0, 1); // PING on a stream
    bytes.extend_from_slice(&[0; 8]);
    input.extend_from_slice(&bytes);
    assert!(connection.receive(&mut input).is_err());
    let last_ids: Vec<u32> = drain(&mut connection)
        .iter()
        .filter(|w| w.header.kind == frame::GOAWAY)
        .map(|w| u32::from_be_bytes(w.payload[..4].try_into().unwrap()))
        .collect();
    assert_eq!(last_ids, [1, 1]);
}
