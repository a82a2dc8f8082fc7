//! Goal: a client that ignores our SETTINGS and opens more streams than
//! `max_concurrent_streams_per_connection` gets those extra streams refused (RST_STREAM
//! REFUSED_STREAM), not served, and the server keeps serving others.
//! Method: hand-written HTTP/2 frames over a raw socket (well-behaved clients such as h2 or
//! grpc-go queue locally and never show this), against the demo server with a limit of 4.

mod support;

use std::time::Duration;

use basalt_net::ServerConfig;
use support::raw_h2::{
    frame, handshake, read_frame, watch_call_headers, FLAG_END_HEADERS, FRAME_HEADERS,
    FRAME_RST_STREAM,
};
use tokio::io::AsyncWriteExt;

const REFUSED_STREAM: u32 = 0x7;

#[tokio::test]
async fn streams_over_the_limit_are_refused() {
    let config = ServerConfig {
        max_concurrent_streams_per_connection: 4,
        ..ServerConfig::default()
    };
    let server = support::start_demo_server(config);
    let mut socket = handshake(server.address).await;

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
