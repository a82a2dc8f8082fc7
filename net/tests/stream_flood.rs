//! Goal: a client that ignores our SETTINGS and opens more streams than
//! `max_concurrent_streams_per_connection` gets those extra streams refused (RST_STREAM
//! REFUSED_STREAM), not served, and the server keeps serving others.
//! Method: hand-written HTTP/2 frames over a raw socket (well-behaved clients such as h2 or
//! grpc-go queue locally and never show this), against the demo server with a limit of 4.

mod support;

use std::time::Duration;

use basalt_net::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAME_HEADERS: u8 = 0x1;
const FRAME_RST_STREAM: u8 = 0x3;
const FRAME_SETTINGS: u8 = 0x4;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream_id.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// HPACK for a Watch call, literals only (no dynamic table, no Huffman).
fn watch_call_headers() -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // static 3 ":method: POST", static 6 ":scheme: http"
    let path = b"/etcdserverpb.Watch/Watch";
    block.push(0x04); // literal without indexing, name = static 4 (":path")
    block.push(path.len() as u8);
    block.extend_from_slice(path);
    let content_type = b"application/grpc";
    block.extend_from_slice(&[0x0f, 0x10]); // literal without indexing, name = static 31
    block.push(content_type.len() as u8);
    block.extend_from_slice(content_type);
    block
}

async fn read_frame(socket: &mut TcpStream) -> (u8, u8, u32, Vec<u8>) {
    let mut header = [0u8; 9];
    socket.read_exact(&mut header).await.unwrap();
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    socket.read_exact(&mut payload).await.unwrap();
    (header[3], header[4], stream_id, payload)
}

#[tokio::test]
async fn streams_over_the_limit_are_refused() {
    let config = ServerConfig {
        max_concurrent_streams_per_connection: 4,
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let mut socket = TcpStream::connect(server.address).await.unwrap();
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    socket
        .write_all(&frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();

    // Acknowledge the server's SETTINGS so its stream limit is in force.
    loop {
        let (kind, flags, _, _) = read_frame(&mut socket).await;
        if kind == FRAME_SETTINGS && flags & FLAG_ACK == 0 {
            break;
        }
    }
    socket
        .write_all(&frame(FRAME_SETTINGS, FLAG_ACK, 0, &[]))
        .await
        .unwrap();

    // Ten Watch calls that never send a message: each holds a stream open.
    let streams: Vec<u32> = (0..10).map(|i| 1 + 2 * i).collect();
    for &stream_id in &streams {
        let headers = frame(
            FRAME_HEADERS,
            FLAG_END_HEADERS,
            stream_id,
            &watch_call_headers(),
        );
        socket.write_all(&headers).await.unwrap();
    }

    let mut refused = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        while refused.len() < 6 {
            let (kind, _, stream_id, payload) = read_frame(&mut socket).await;
            if kind == FRAME_RST_STREAM {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                assert_eq!(code, REFUSED_STREAM, "stream {stream_id}");
                refused.push(stream_id);
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "refused only {refused:?} within 10 s");
    assert_eq!(
        refused,
        &streams[4..],
        "the first four are served, the rest refused"
    );

    // The server still serves a fresh connection.
    let mut client = etcd_client::Client::connect([format!("http://{}", server.address)], None)
        .await
        .unwrap();
    client.put("still", "serving", None).await.unwrap();
}
