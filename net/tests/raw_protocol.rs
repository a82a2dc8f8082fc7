//! Goal: protocol edges no well-behaved client produces — malformed protobuf, compressed or
//! truncated messages, wrong content types, a client that never reads its stream — end the
//! call with the right status (or HTTP error) and never stall the connection; and plain
//! HTTP/1.1 on the same port gets etcd's /health and /version bodies.
//! Method: a raw `h2` client (and a raw TCP socket for HTTP/1.1) against the demo server.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use basalt_net::proto::etcdserverpb::{RangeRequest, RangeResponse};
use basalt_net::{Code, Keepalive, ServerConfig, Status};
use bytes::Bytes;
use h2::client::SendRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP/2 connection with a small stream window (64 KiB, what grpc clients start with) and
/// a large connection window, so one unread stream cannot starve the others client-side.
async fn connect(server: &support::DemoServer) -> SendRequest<Bytes> {
    let socket = TcpStream::connect(server.address).await.unwrap();
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(65_535)
        .initial_connection_window_size(16 * 1024 * 1024)
        .handshake(socket)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

struct RawResponse {
    http_status: http::StatusCode,
    grpc: Option<(Code, String)>,
    body: Vec<u8>,
}

/// One call: `body` as the whole request stream; reads the whole response.
async fn call(
    sender: &mut SendRequest<Bytes>,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawResponse {
    let request = http::Request::post(format!("http://localhost{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut ready = sender.clone().ready().await.unwrap();
    let (response, mut request_body) = ready.send_request(request, false).unwrap();
    request_body
        .send_data(Bytes::copy_from_slice(body), true)
        .unwrap();
    let response = response.await.unwrap();
    let http_status = response.status();
    // Trailers-only responses carry the status in the headers.
    let mut grpc = Status::from_headers(response.headers());
    let mut response_body = response.into_body();
    let mut received = Vec::new();
    while let Some(chunk) = response_body.data().await {
        let chunk = chunk.unwrap();
        let _ = response_body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    if let Some(trailers) = response_body.trailers().await.unwrap() {
        grpc = Status::from_headers(&trailers);
    }
    RawResponse {
        http_status,
        grpc,
        body: received,
    }
}

fn framed(flag: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![flag];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

const GRPC: &str = "application/grpc";

#[tokio::test]
async fn malformed_requests_get_error_statuses() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut sender = connect(&server).await;

    // Field 15 with wire type 7 does not exist: not protobuf.
    let response = call(
        &mut sender,
        "/etcdserverpb.KV/Put",
        GRPC,
        &framed(0, &[0xff; 3]),
    )
    .await;
    let (code, message) = response.grpc.unwrap();
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.starts_with("grpc: error unmarshalling request"),
        "{message}"
    );

    let response = call(&mut sender, "/etcdserverpb.KV/Put", GRPC, &framed(1, b"zz")).await;
    assert_eq!(response.grpc.unwrap().0, Code::Internal);

    // The stream ends 8 bytes into a 10-byte message.
    let truncated = &framed(0, &[0x0a, 8, 1, 2, 3, 4, 5, 6, 7, 8])[..13];
    let response = call(&mut sender, "/etcdserverpb.KV/Put", GRPC, truncated).await;
    assert_eq!(response.grpc.unwrap().0, Code::Internal);

    let response = call(&mut sender, "/etcdserverpb.KV/Put", GRPC, &[]).await;
    assert_eq!(
        response.grpc.unwrap().0,
        Code::Internal,
        "unary call without a message"
    );

    let response = call(&mut sender, "/nonsense", GRPC, &framed(0, &[])).await;
    assert_eq!(response.grpc.unwrap().0, Code::Unimplemented);

    let response = call(
        &mut sender,
        "/etcdserverpb.KV/Range",
        "application/json",
        b"{}",
    )
    .await;
    assert_eq!(
        response.http_status,
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert!(response.grpc.is_none());

    // After all that, the same connection still serves a good call.
    let request = RangeRequest {
        key: b"k".to_vec(),
        ..Default::default()
    };
    let response = call(
        &mut sender,
        "/etcdserverpb.KV/Range",
        GRPC,
        &framed(0, &request.encode_to_vec()),
    )
    .await;
    assert_eq!(response.grpc, Some((Code::Ok, String::new())));
    let decoded = RangeResponse::decode(&response.body[5..]).unwrap();
    assert_eq!(decoded.header.unwrap().member_id, 0x5678);
}

// Multi-thread: `wait_until` blocks this thread while the h2 client connection (a spawned
// task) must keep running to send the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_client_that_never_reads_is_held_back_and_stalls_nothing() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut sender = connect(&server).await;

    // Open a 4 MiB snapshot stream and never read it.
    let request = http::Request::post("http://localhost/etcdserverpb.Maintenance/Snapshot")
        .header("content-type", GRPC)
        .body(())
        .unwrap();
    let mut ready = sender.clone().ready().await.unwrap();
    let (response, mut request_body) = ready.send_request(request, false).unwrap();
    request_body
        .send_data(Bytes::from(framed(0, &[])), true)
        .unwrap();
    let unread = response.await.unwrap();
    let counters = server.counters.clone();
    support::wait_until(Duration::from_secs(10), "the first snapshot chunk", || {
        counters.snapshot_chunks_sent.load(Ordering::SeqCst) >= 1
    });

    // Other calls on the same connection go through while the snapshot is stuck.
    for _ in 0..20 {
        let response = call(
            &mut sender,
            "/etcdserverpb.KV/Range",
            GRPC,
            &framed(0, &RangeRequest::default().encode_to_vec()),
        )
        .await;
        assert_eq!(response.grpc, Some((Code::Ok, String::new())));
    }

    // What the handler got out is bounded by the client's 64 KiB window plus our per-stream
    // send buffer, not by the 4 MiB it wants to send.
    let bound_chunks = (65_535 + ServerConfig::default().max_send_buffer_bytes_per_stream)
        / support::SNAPSHOT_CHUNK_BYTES
        + 2;
    let sent = counters.snapshot_chunks_sent.load(Ordering::SeqCst);
    assert!(
        sent <= bound_chunks,
        "sent {sent} chunks to a client that reads nothing (bound {bound_chunks})"
    );
    assert!(sent < support::SNAPSHOT_CHUNKS);

    // Dropping the stream resets it; the stuck handler wakes with an error and ends.
    drop(unread);
    drop(request_body);
    support::wait_until(
        Duration::from_secs(10),
        "the snapshot handler to end",
        || counters.snapshot_calls_ended.load(Ordering::SeqCst) == 1,
    );
}

#[tokio::test]
async fn settings_advertise_the_stream_limit() {
    let config = ServerConfig {
        max_concurrent_streams_per_connection: 7,
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let mut sender = connect(&server).await;
    // One round trip makes sure the server's SETTINGS frame has been applied.
    call(
        &mut sender,
        "/etcdserverpb.KV/Range",
        GRPC,
        &framed(0, &RangeRequest::default().encode_to_vec()),
    )
    .await;
    assert_eq!(sender.current_max_send_streams(), 7);
}

#[tokio::test]
async fn http1_health_and_version_share_the_grpc_port() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut socket = TcpStream::connect(server.address).await.unwrap();
    socket
        .write_all(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut output = String::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_string(&mut output))
        .await
        .expect("server closes after Connection: close")
        .unwrap();
    let health_at = output
        .find(r#"{"health":"true","reason":""}"#)
        .expect(&output);
    let version_at = output
        .find(r#"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#)
        .expect(&output);
    assert!(health_at < version_at);
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
}

#[tokio::test]
async fn grpc_timeout_ends_a_slow_call_with_deadline_exceeded() {
    let server = support::start_demo_server(ServerConfig::default());
    let sender = connect(&server).await;
    let request = http::Request::post("http://localhost/etcdserverpb.Maintenance/Status")
        .header("content-type", GRPC)
        .header("grpc-timeout", "50m")
        .body(())
        .unwrap();
    let mut ready = sender.clone().ready().await.unwrap();
    let (response, mut request_body) = ready.send_request(request, false).unwrap();
    request_body
        .send_data(Bytes::from(framed(0, &[])), true)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("the server ends the call at its deadline")
        .unwrap();
    let (code, message) = Status::from_headers(response.headers()).unwrap();
    assert_eq!(code, Code::DeadlineExceeded);
    assert_eq!(message, "context deadline exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn shutdown_stops_accepting_and_drains_open_calls() {
    let server = support::start_demo_server(ServerConfig::default());
    let sender = connect(&server).await;

    // A watch stream is open when the shutdown comes.
    let request = http::Request::post("http://localhost/etcdserverpb.Watch/Watch")
        .header("content-type", GRPC)
        .body(())
        .unwrap();
    let mut ready = sender.clone().ready().await.unwrap();
    let (response, mut watch_requests) = ready.send_request(request, false).unwrap();
    let create = basalt_net::proto::etcdserverpb::WatchRequest {
        request_union: Some(
            basalt_net::proto::etcdserverpb::watch_request::RequestUnion::CreateRequest(
                basalt_net::proto::etcdserverpb::WatchCreateRequest {
                    key: b"a".to_vec(),
                    ..Default::default()
                },
            ),
        ),
    };
    watch_requests
        .send_data(Bytes::from(framed(0, &create.encode_to_vec())), false)
        .unwrap();
    let mut watch_responses = response.await.unwrap().into_body();
    watch_responses.data().await.unwrap().unwrap();
    // And an HTTP/1.1 connection, idle after one request (kept alive).
    let mut idle = std::net::TcpStream::connect(server.address).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 1024];
    let answered = idle.read(&mut answer).unwrap();
    assert!(answer[..answered].starts_with(b"HTTP/1.1 200"));

    server.counters.stop_requested.store(true, Ordering::SeqCst);
    support::wait_until(Duration::from_secs(10), "the listener to close", || {
        std::net::TcpStream::connect(server.address).is_err()
    });

    // The open call still works after the GOAWAY; the connection ends when it does.
    watch_requests
        .send_data(Bytes::from(framed(0, &create.encode_to_vec())), true)
        .unwrap();
    let mut received = Vec::new();
    while let Some(chunk) = watch_responses.data().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        !received.is_empty(),
        "responses to the second create arrive"
    );
    let trailers = watch_responses.trailers().await.unwrap().unwrap();
    assert_eq!(Status::from_headers(&trailers).unwrap().0, Code::Ok);
    // The idle HTTP/1.1 connection is closed, as Go's `Shutdown` closes idle connections
    // (not left to its idle timeout).
    assert_eq!(
        idle.read(&mut answer).unwrap(),
        0,
        "the idle connection is closed"
    );
    support::wait_until(Duration::from_secs(10), "every connection to end", || {
        server.counters.drained.load(Ordering::SeqCst)
    });
}

#[tokio::test]
async fn plain_get_over_http2_reaches_the_http_callback() {
    // What `curl --http2-prior-knowledge http://host:2379/health` sends.
    let server = support::start_demo_server(ServerConfig::default());
    let sender = connect(&server).await;
    let request = http::Request::get("http://localhost/version")
        .body(())
        .unwrap();
    let mut ready = sender.ready().await.unwrap();
    let (response, _) = ready.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        received,
        br#"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#
    );
}

#[tokio::test]
async fn request_metadata_reaches_the_handler() {
    let server = support::start_demo_server(ServerConfig::default());
    let sender = connect(&server).await;
    let request = http::Request::post("http://localhost/etcdserverpb.Watch/Watch")
        .header("content-type", GRPC)
        .header("x-echo", "from-metadata")
        .body(())
        .unwrap();
    let mut ready = sender.ready().await.unwrap();
    let (response, mut watch_requests) = ready.send_request(request, false).unwrap();
    let create = basalt_net::proto::etcdserverpb::WatchRequest {
        request_union: Some(
            basalt_net::proto::etcdserverpb::watch_request::RequestUnion::CreateRequest(
                Default::default(),
            ),
        ),
    };
    watch_requests
        .send_data(Bytes::from(framed(0, &create.encode_to_vec())), true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    // Two framed responses: "created", then the event carrying the header's value.
    let mut decoder = basalt_net::grpc::frame::FrameDecoder::new(1 << 20);
    decoder.push(&received);
    decoder.next_message().unwrap().unwrap();
    let event = basalt_net::proto::etcdserverpb::WatchResponse::decode(
        decoder.next_message().unwrap().unwrap(),
    )
    .unwrap();
    assert_eq!(event.events[0].kv.as_ref().unwrap().value, b"from-metadata");
}

/// Goal: keepalive pings (etcd's `--grpc-keepalive-interval/-timeout`) go out, and a client
/// that does not answer one is disconnected, while one that answers keeps its connection.
/// Method: a raw socket that completes the HTTP/2 preface and then only reads must see a PING
/// and then the end of the connection; an `h2` client (which answers pings) still completes a
/// call after many intervals. Each wait has a bound far above the intervals.
#[tokio::test]
async fn unanswered_keepalive_pings_close_the_connection() {
    const PING: u8 = 0x6;
    let config = ServerConfig {
        keepalive: Some(Keepalive::from_etcd_flags(
            Duration::from_millis(50),
            Duration::from_millis(100),
        )),
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let bound = Duration::from_secs(10);

    let mut socket = TcpStream::connect(server.address).await.unwrap();
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    socket
        .write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut pinged = false;
    let closed = tokio::time::timeout(bound, async {
        loop {
            let mut head = [0u8; 9];
            if socket.read_exact(&mut head).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; length];
            if socket.read_exact(&mut payload).await.is_err() {
                return;
            }
            let is_ack = head[4] & 0x1 != 0;
            pinged |= head[3] == PING && !is_ack;
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open without pongs");
    assert!(pinged, "the server closed the connection without pinging");

    let mut sender = connect(&server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = tokio::time::timeout(
        bound,
        call(
            &mut sender,
            "/etcdserverpb.KV/Range",
            GRPC,
            &framed(0, &RangeRequest::default().encode_to_vec()),
        ),
    )
    .await
    .expect("a call within the bound");
    assert_eq!(response.http_status, http::StatusCode::OK);
}

/// Goal: keepalive leaves a busy client alone and drops it only once it falls silent, as
/// grpc-go's server does: a client that keeps sending frames (here connection WINDOW_UPDATEs)
/// but never answers a PING keeps its connection for many intervals, then loses it within a
/// bound once it stops sending. Margins are wide (frames every 50 ms against a 300 ms
/// interval) so a loaded machine does not decide the outcome.
#[tokio::test]
async fn keepalive_drops_only_a_silent_client() {
    let config = ServerConfig {
        keepalive: Some(Keepalive::from_etcd_flags(
            Duration::from_millis(300),
            Duration::from_millis(300),
        )),
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let socket = TcpStream::connect(server.address).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    writer
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    writer
        .write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
            closed.store(true, Ordering::SeqCst);
        })
    };
    // Busy: a WINDOW_UPDATE of 1 on the connection every 50 ms for 2 s (6 intervals).
    let window_update = [0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    for _ in 0..40 {
        writer.write_all(&window_update).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!closed.load(Ordering::SeqCst), "a busy client was dropped");
    }
    // Silent: the member pings, gets no answer, and drops the connection.
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("a silent client is dropped within the bound")
        .unwrap();
    assert!(closed.load(Ordering::SeqCst));
}

/// Reads one HTTP/1.1 response (head and Content-Length body) from `socket`.
async fn read_http1_response(socket: &mut TcpStream) -> String {
    let mut received = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .expect("a Content-Length")
                .parse()
                .unwrap();
            if received.len() >= head_end + 4 + length {
                return text;
            }
        }
        let mut chunk = [0u8; 1024];
        let read = socket.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed mid-response: {text}");
        received.extend_from_slice(&chunk[..read]);
    }
}

/// Goal: a slowloris client, trickling one header byte at a time forever, is cut off once its
/// request head has taken longer than `http1_head_timeout`, unanswered (as Go's server does at
/// etcd's ReadHeaderTimeout), however steadily it sends. Method: a byte every 20 ms against a
/// 500 ms head timeout; the close must come after the timeout and within a wide bound.
#[tokio::test]
async fn slowloris_request_head_is_cut_off() {
    let head_timeout = Duration::from_millis(500);
    let config = ServerConfig {
        http1_head_timeout: head_timeout,
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let mut socket = TcpStream::connect(server.address).await.unwrap();
    let started = std::time::Instant::now();
    socket.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let (mut reader, mut writer) = socket.split();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if writer.write_all(b"x").await.is_err() {
                return std::future::pending::<()>().await;
            }
        }
    };
    let closed = async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            received = closed => received,
            _ = trickle => unreachable!(),
        }
    })
    .await
    .expect("the server closed the trickling connection");
    assert!(started.elapsed() >= head_timeout, "{:?}", started.elapsed());
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

/// Goal: an HTTP/1.1 keep-alive connection is closed once it has waited `http1_idle_timeout`
/// for its next request, while one whose requests keep coming (each well within both
/// timeouts, in all much longer than either) is served throughout. Method: five requests
/// 100 ms apart against 400 ms timeouts, then silence until the close, within a wide bound.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let idle_timeout = Duration::from_millis(400);
    let config = ServerConfig {
        http1_head_timeout: idle_timeout,
        http1_idle_timeout: idle_timeout,
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let mut socket = TcpStream::connect(server.address).await.unwrap();
    for request in 0..5 {
        if request > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        socket
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let response =
            tokio::time::timeout(Duration::from_secs(10), read_http1_response(&mut socket))
                .await
                .expect("an answer");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Connection: keep-alive"), "{response}");
    }
    // The server's idle wait began before its last answer arrived here.
    let idle_since = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut byte))
        .await
        .expect("the server closed the idle connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        idle_since.elapsed() >= idle_timeout / 2,
        "{:?}",
        idle_since.elapsed()
    );
}
