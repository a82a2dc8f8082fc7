//! Goal: etcd's `--grpc-keepalive-min-time` as grpc-go enforces it: a client that pings more
//! often than allowed gets GOAWAY ENHANCE_YOUR_CALM and loses its connection, instead of
//! keeping a core busy answering PINGs; a client pinging at the allowed rate keeps it.
//! Method: hand-written HTTP/2 frames over a raw socket against the demo server.

mod support;

use std::time::Duration;

use basalt_net::ServerConfig;
use support::raw_h2::{
    frame, handshake, watch_call_headers, FLAG_ACK, FLAG_END_HEADERS, FRAME_HEADERS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAME_PING: u8 = 0x6;
const FRAME_GOAWAY: u8 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const BOUND: Duration = Duration::from_secs(10);

fn ping(payload: u8) -> Vec<u8> {
    frame(FRAME_PING, 0, 0, &[payload; 8])
}

/// What the server sent after our pings: the PING acknowledgements, the GOAWAY's error code
/// if one came, and whether the connection then closed (all within `wait`).
#[derive(Debug, Default)]
struct Seen {
    ping_acks: usize,
    goaway: Option<u32>,
    /// The GOAWAY's debug data.
    goaway_debug: Vec<u8>,
    closed: bool,
}

async fn watch_frames(socket: &mut TcpStream, wait: Duration, seen: &mut Seen) {
    let _ = tokio::time::timeout(wait, async {
        loop {
            let mut header = [0u8; 9];
            if socket.read_exact(&mut header).await.is_err() {
                seen.closed = true;
                return;
            }
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; length];
            if socket.read_exact(&mut payload).await.is_err() {
                seen.closed = true;
                return;
            }
            match header[3] {
                FRAME_PING if header[4] & FLAG_ACK != 0 => seen.ping_acks += 1,
                FRAME_GOAWAY => {
                    seen.goaway = Some(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]));
                    seen.goaway_debug = payload[8..].to_vec();
                }
                _ => {}
            }
        }
    })
    .await;
}

/// A PING flood on a connection with no call open: the third ping within grpc-go's two
/// hours is the third strike.
#[tokio::test]
async fn a_ping_flood_gets_goaway_enhance_your_calm() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut socket = handshake(server.address).await;
    for payload in 0..20 {
        if socket.write_all(&ping(payload)).await.is_err() {
            break;
        }
    }
    let mut seen = Seen::default();
    watch_frames(&mut socket, BOUND, &mut seen).await;
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{seen:?}");
    // What grpc-go's client reads to double its keepalive time before it reconnects.
    assert_eq!(seen.goaway_debug, b"too_many_pings", "{seen:?}");
    assert!(seen.closed, "{seen:?}");
}

/// With a call open, pings at least `min_ping_interval` apart are allowed however many come;
/// three quicker ones on the same connection then close it.
#[tokio::test]
async fn pings_at_the_allowed_rate_keep_the_connection() {
    let min_ping_interval = Duration::from_millis(100);
    let server = support::start_demo_server(ServerConfig {
        min_ping_interval,
        ..ServerConfig::default()
    });
    let mut socket = handshake(server.address).await;
    // A Watch call that sends nothing: open, with no answer from the server.
    let headers = frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &watch_call_headers());
    socket.write_all(&headers).await.unwrap();
    let mut seen = Seen::default();
    for payload in 0..8 {
        socket.write_all(&ping(payload)).await.unwrap();
        // Reading for twice the interval also spaces the pings.
        watch_frames(&mut socket, 2 * min_ping_interval, &mut seen).await;
    }
    assert_eq!((seen.goaway, seen.closed), (None, false), "{seen:?}");
    assert_eq!(seen.ping_acks, 8, "{seen:?}");

    for payload in 0..4 {
        let _ = socket.write_all(&ping(payload)).await;
    }
    watch_frames(&mut socket, BOUND, &mut seen).await;
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{seen:?}");
    assert!(seen.closed, "{seen:?}");
}
