//! Goal: a connection whose calls hold more partly received request bytes than
//! `max_partial_message_bytes_per_connection` gets the offending call ended with
//! RESOURCE_EXHAUSTED, while its other calls go on and finish; no credit is withheld, so
//! nothing on the connection stalls. Method: an `h2` client sends two Put calls whose messages
//! (48 KiB each) stop short of their end against a 64 KiB budget, then completes the first.

mod support;

use std::time::Duration;

use basalt_net::proto::etcdserverpb::PutRequest;
use basalt_net::{Code, ServerConfig, Status};
use bytes::Bytes;
use prost::Message;
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(10);

/// The gRPC status a response ends with (headers-only or trailers).
async fn status_of(response: h2::client::ResponseFuture) -> Option<(Code, String)> {
    let response = response.await.ok()?;
    if let Some(status) = Status::from_headers(response.headers()) {
        return Some(status);
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Status::from_headers(&body.trailers().await.ok()??)
}

#[tokio::test]
async fn the_call_past_the_connections_partial_budget_is_ended() {
    let server = support::start_demo_server(ServerConfig {
        max_partial_message_bytes_per_connection: 64 * 1024,
        ..ServerConfig::default()
    });
    let socket = TcpStream::connect(server.address).await.unwrap();
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(1024 * 1024)
        .handshake::<_, Bytes>(socket)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let message = PutRequest {
        key: b"k".to_vec(),
        value: vec![7; 48 * 1024],
        ..Default::default()
    }
    .encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let (first_part, rest) = framed.split_at(40 * 1024);

    let open_call = || {
        let request = http::Request::post("http://localhost/etcdserverpb.KV/Put")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut body) = sender.clone().send_request(request, false).unwrap();
        body.reserve_capacity(first_part.len());
        body.send_data(Bytes::copy_from_slice(first_part), false)
            .unwrap();
        (response, body)
    };
    let (first_response, mut first_body) = open_call();
    // A whole call after the first's part: its answer means the server has read past that
    // part (frames are read in order), so the second call is the one past the budget.
    let range = http::Request::post("http://localhost/etcdserverpb.KV/Range")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (range_response, mut range_body) = sender.clone().send_request(range, false).unwrap();
    range_body
        .send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .unwrap();
    let range = tokio::time::timeout(BOUND, status_of(range_response)).await;
    assert_eq!(
        range.expect("the Range call ended").map(|status| status.0),
        Some(Code::Ok)
    );
    let (second_response, _second_body) = open_call();

    let second = tokio::time::timeout(BOUND, status_of(second_response))
        .await
        .expect("the second call ended");
    let (code, message) = second.expect("a gRPC status");
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("partly received"), "{message}");

    first_body.reserve_capacity(rest.len());
    first_body
        .send_data(Bytes::copy_from_slice(rest), true)
        .unwrap();
    let first = tokio::time::timeout(BOUND, status_of(first_response))
        .await
        .expect("the first call ended");
    assert_eq!(first.map(|status| status.0), Some(Code::Ok));
}
