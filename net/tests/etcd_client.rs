//! Goal: the `etcd-client` crate (tonic/hyper, a second independent HTTP/2 + gRPC stack) works
//! against basalt-net for unary, bidirectional and server-streaming calls, and sees our errors
//! with the right gRPC codes. Method: the demo server on an ephemeral port, the client on a
//! tokio runtime that lives in this test only.

mod support;

use basalt_net::ServerConfig;
use etcd_client::{Client, Error, GetOptions};

async fn connect(server: &support::DemoServer) -> Client {
    Client::connect([format!("http://{}", server.address)], None)
        .await
        .expect("connect")
}

fn grpc_status(error: Error) -> tonic::Status {
    match error {
        Error::GRpcStatus(status) => status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test]
async fn unary_put_and_prefix_get() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut client = connect(&server).await;
    client.put("svc/1", "a", None).await.unwrap();
    let put = client.put("svc/2", "b", None).await.unwrap();
    assert_eq!(put.header().unwrap().revision(), 2);
    client.put("zzz", "c", None).await.unwrap();

    let got = client
        .get("svc/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = got
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap(), kv.value_str().unwrap()))
        .collect();
    assert_eq!(pairs, [("svc/1", "a"), ("svc/2", "b")]);
    assert_eq!(got.count(), 2);
}

#[tokio::test]
async fn large_values_cross_many_frames_both_ways() {
    // 1 MiB is far above one HTTP/2 frame (16 KiB) and the default 64 KiB windows.
    let server = support::start_demo_server(ServerConfig::default());
    let mut client = connect(&server).await;
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    client.put("big", value.clone(), None).await.unwrap();
    let got = client.get("big", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), &value[..]);
}

#[tokio::test]
async fn bidi_watch_echoes() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut client = connect(&server).await;
    let mut stream = client.watch("watched/key", None).await.unwrap();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created());
    let event = stream.message().await.unwrap().unwrap();
    assert_eq!(event.watch_id(), created.watch_id());
    let kv = event.events()[0].kv().unwrap();
    assert_eq!((kv.key(), kv.value()), (&b"watched/key"[..], &b"echo"[..]));

    // A second watcher on the same stream, then a cancel: the stream carries all three.
    stream.watch("second", None).await.unwrap();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created());
    assert_eq!(created.watch_id(), 1);
    stream.message().await.unwrap().unwrap();
    stream.cancel(1).await.unwrap();
    let canceled = stream.message().await.unwrap().unwrap();
    assert!(canceled.canceled());
}

#[tokio::test]
async fn server_streaming_snapshot_arrives_whole() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut client = connect(&server).await;
    let mut stream = client.snapshot().await.unwrap();
    let mut received_bytes = 0;
    let mut last_remaining = u64::MAX;
    while let Some(chunk) = stream.message().await.unwrap() {
        received_bytes += chunk.blob().len();
        last_remaining = chunk.remaining_bytes();
    }
    assert_eq!(
        received_bytes,
        support::SNAPSHOT_CHUNKS * support::SNAPSHOT_CHUNK_BYTES
    );
    assert_eq!(last_remaining, 0);
}

#[tokio::test]
async fn errors_reach_the_client_with_grpc_codes() {
    let server = support::start_demo_server(ServerConfig::default());
    let mut client = connect(&server).await;

    // No handler: UNIMPLEMENTED, worded as grpc-go words it.
    let status = grpc_status(client.lease_grant(10, None).await.unwrap_err());
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(status.message(), "unknown service etcdserverpb.Lease");
    let status = grpc_status(client.delete("k", None).await.unwrap_err());
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(
        status.message(),
        "unknown method DeleteRange for service etcdserverpb.KV"
    );

    // Over the receive limit (1.5 MiB + 512 KiB by default): RESOURCE_EXHAUSTED.
    let huge = vec![0u8; 3 * 1024 * 1024];
    let status = grpc_status(client.put("huge", huge, None).await.unwrap_err());
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status
            .message()
            .starts_with("grpc: received message larger than max ("),
        "{}",
        status.message()
    );

    // A handler's own status travels unchanged, and the connection still serves afterwards.
    let status = grpc_status(client.put("", "v", None).await.unwrap_err());
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "etcdserver: key is not provided");
    client.put("after", "errors", None).await.unwrap();
}
