//! Goal: flow-control credit comes back only as whole messages are taken, so a client parking
//! partial messages on many calls holds at most the connection's window of our memory, and
//! gets its credit back once the messages complete.
//! Method: hand-written HTTP/2 frames against the demo server: four Watch calls each send the
//! first 1.3 MB of a 1.4 MB WatchRequest (5.2 MB over the connection, well past half its 8 MiB
//! window, where an HTTP/2 server returns credit); no connection WINDOW_UPDATE may come while
//! they are partial, and one must come once two of them are completed.

mod support;

use std::time::Duration;

use basalt_net::proto::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest};
use basalt_net::ServerConfig;
use prost::Message;
use support::raw_h2::{
    frame, handshake, read_frame, send_data, watch_call_headers, FLAG_ACK, FLAG_END_HEADERS,
    FRAME_HEADERS, FRAME_PING, FRAME_WINDOW_UPDATE,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A WatchRequest of about 1.4 MB with its gRPC prefix.
fn large_watch_message() -> Vec<u8> {
    let request = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: vec![b'k'; 1_400_000],
                ..Default::default()
            },
        )),
    };
    let body = request.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// Connection-level WINDOW_UPDATE increments seen until a PING with `token` comes back, then
/// for `linger` more.
async fn connection_credit_until_pong(
    socket: &mut TcpStream,
    token: [u8; 8],
    linger: Duration,
) -> u64 {
    socket
        .write_all(&frame(FRAME_PING, 0, 0, &token))
        .await
        .unwrap();
    let mut credit = 0u64;
    let mut count = |kind: u8, stream_id: u32, payload: &[u8]| {
        if kind == FRAME_WINDOW_UPDATE && stream_id == 0 {
            credit += u64::from(u32::from_be_bytes(payload[..4].try_into().unwrap()));
        }
    };
    loop {
        let (kind, flags, stream_id, payload) = read_frame(socket).await;
        count(kind, stream_id, &payload);
        if kind == FRAME_PING && flags & FLAG_ACK != 0 && payload == token {
            break;
        }
    }
    let _ = tokio::time::timeout(linger, async {
        loop {
            let (kind, _, stream_id, payload) = read_frame(socket).await;
            count(kind, stream_id, &payload);
        }
    })
    .await;
    credit
}

#[tokio::test]
async fn credit_returns_only_as_whole_messages_are_taken() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut socket = handshake(server.address).await;
    // Whatever the server grants at the start (its connection window) comes before this pong.
    connection_credit_until_pong(&mut socket, *b"startup!", Duration::ZERO).await;

    let message = large_watch_message();
    let split = 1_300_000;
    let streams = [1u32, 3, 5, 7];
    for &stream_id in &streams {
        let headers = frame(
            FRAME_HEADERS,
            FLAG_END_HEADERS,
            stream_id,
            &watch_call_headers(),
        );
        socket.write_all(&headers).await.unwrap();
        send_data(&mut socket, stream_id, &message[..split]).await;
    }
    let while_partial =
        connection_credit_until_pong(&mut socket, *b"partial!", Duration::from_millis(300)).await;
    assert_eq!(
        while_partial, 0,
        "credit came back for partial messages nobody has taken"
    );

    for &stream_id in &streams[..2] {
        send_data(&mut socket, stream_id, &message[split..]).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut returned = 0;
    while returned < 2 * message.len() as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {returned} bytes of credit came back for two whole messages"
        );
        returned +=
            connection_credit_until_pong(&mut socket, *b"complete", Duration::from_millis(50))
                .await;
    }
}
