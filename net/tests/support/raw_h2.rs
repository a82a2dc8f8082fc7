//! Hand-written HTTP/2 frames over a raw socket, for tests of what well-behaved clients (h2,
//! grpc-go) never show, such as ignored stream limits.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const FRAME_HEADERS: u8 = 0x1;
pub const FRAME_RST_STREAM: u8 = 0x3;
pub const FRAME_SETTINGS: u8 = 0x4;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;

pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream_id.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// HPACK for a Watch call, literals only (no dynamic table, no Huffman).
pub fn watch_call_headers() -> Vec<u8> {
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

/// One frame: (kind, flags, stream id, payload).
pub async fn read_frame(socket: &mut TcpStream) -> (u8, u8, u32, Vec<u8>) {
    let mut header = [0u8; 9];
    socket.read_exact(&mut header).await.unwrap();
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    socket.read_exact(&mut payload).await.unwrap();
    (header[3], header[4], stream_id, payload)
}

/// Connects, sends the preface and empty SETTINGS, and acknowledges the server's SETTINGS.
pub async fn handshake(address: std::net::SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    socket
        .write_all(&frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
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
    socket
}
