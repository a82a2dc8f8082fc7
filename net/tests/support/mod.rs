//! A demo server for the tests: an in-memory KV (Put and Range only), an echoing Watch and a
//! fixed-size Snapshot stream, served by basalt-net on an ephemeral port on its own glommio
//! executor thread. It exists to exercise the network layer; it is not a product.

#![allow(dead_code)]

pub mod raw_h2;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use basalt_net::proto::etcdserverpb::{
    watch_request, PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader,
    SnapshotRequest, SnapshotResponse, WatchRequest, WatchResponse,
};
use basalt_net::proto::mvccpb::{Event, KeyValue};
use basalt_net::{
    etcd_http, EtcdStatus, Http1Response, Metadata, Router, Server, ServerConfig, Status,
};

/// Bytes per demo snapshot chunk, and chunks per snapshot (4 MiB in all: far more than any
/// window or send buffer, so a client that does not read must hold the sender back).
pub const SNAPSHOT_CHUNK_BYTES: usize = 16 * 1024;
pub const SNAPSHOT_CHUNKS: usize = 256;

/// What the demo server's handlers did, readable from the test thread.
#[derive(Default)]
pub struct Counters {
    /// Snapshot chunks handed to `send` successfully, over all calls.
    pub snapshot_chunks_sent: AtomicUsize,
    /// Snapshot handlers that returned (finished or failed).
    pub snapshot_calls_ended: AtomicUsize,
    /// Set by a test to raise the server's shutdown signal.
    pub stop_requested: AtomicBool,
    /// Set by the server once it stopped accepting and every connection has ended.
    pub drained: AtomicBool,
}

/// A running demo server.
pub struct DemoServer {
    pub address: SocketAddr,
    /// With TLS: a plaintext listener served by the same `Server` beside the TLS one.
    pub plaintext_address: Option<SocketAddr>,
    pub counters: Arc<Counters>,
}

#[derive(Default)]
struct DemoKv {
    revision: i64,
    keys: BTreeMap<Vec<u8>, KeyValue>,
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 0x1234,
        member_id: 0x5678,
        revision,
        raft_term: 2,
    })
}

fn demo_router(counters: Arc<Counters>) -> Router {
    let kv = Rc::new(RefCell::new(DemoKv::default()));
    let mut router = Router::new();

    let store = kv.clone();
    router.unary(
        "/etcdserverpb.KV/Put",
        move |_: Metadata, request: PutRequest| {
            let store = store.clone();
            async move {
                if request.key.is_empty() {
                    return Err(EtcdStatus::EmptyKey.into());
                }
                let mut kv = store.borrow_mut();
                kv.revision += 1;
                let revision = kv.revision;
                let previous = kv.keys.get(&request.key).cloned();
                let entry = KeyValue {
                    key: request.key.clone(),
                    create_revision: previous.as_ref().map_or(revision, |kv| kv.create_revision),
                    mod_revision: revision,
                    version: previous.as_ref().map_or(1, |kv| kv.version + 1),
                    value: request.value,
                    lease: request.lease,
                };
                kv.keys.insert(request.key, entry);
                Ok(PutResponse {
                    header: header(revision),
                    prev_kv: if request.prev_kv { previous } else { None },
                })
            }
        },
    );

    let store = kv.clone();
    router.unary(
        "/etcdserverpb.KV/Range",
        move |_: Metadata, request: RangeRequest| {
            let store = store.clone();
            async move {
                let kv = store.borrow();
                let kvs: Vec<KeyValue> = if request.range_end.is_empty() {
                    kv.keys.get(&request.key).cloned().into_iter().collect()
                } else {
                    kv.keys
                        .range(request.key.clone()..)
                        .take_while(|(key, _)| {
                            request.range_end == [0] || **key < request.range_end
                        })
                        .map(|(_, value)| value.clone())
                        .collect()
                };
                Ok(RangeResponse {
                    header: header(kv.revision),
                    count: kvs.len() as i64,
                    kvs: if request.count_only { Vec::new() } else { kvs },
                    more: false,
                })
            }
        },
    );

    // Echo watch: each create gets a "created" response, then one PUT event for its own key.
    router.streaming(
        "/etcdserverpb.Watch/Watch",
        |metadata: Metadata,
         mut requests: basalt_net::RequestStream<WatchRequest>,
         mut responses: basalt_net::ResponseSink<WatchResponse>| async move {
            // The event's value is the call's `x-echo` header when sent, to prove metadata
            // reaches handlers.
            let echo = metadata.get("x-echo").unwrap_or("echo").as_bytes().to_vec();
            let mut next_watch_id = 0;
            while let Some(request) = requests.message().await? {
                match request.request_union {
                    Some(watch_request::RequestUnion::CreateRequest(create)) => {
                        let watch_id = next_watch_id;
                        next_watch_id += 1;
                        responses
                            .send(&WatchResponse {
                                header: header(1),
                                watch_id,
                                created: true,
                                ..Default::default()
                            })
                            .await?;
                        responses
                            .send(&WatchResponse {
                                header: header(1),
                                watch_id,
                                events: vec![Event {
                                    r#type: 0,
                                    kv: Some(KeyValue {
                                        key: create.key,
                                        value: echo.clone(),
                                        ..Default::default()
                                    }),
                                    prev_kv: None,
                                }],
                                ..Default::default()
                            })
                            .await?;
                    }
                    Some(watch_request::RequestUnion::CancelRequest(cancel)) => {
                        responses
                            .send(&WatchResponse {
                                header: header(1),
                                watch_id: cancel.watch_id,
                                canceled: true,
                                ..Default::default()
                            })
                            .await?;
                    }
                    _ => {}
                }
            }
            Ok(())
        },
    );

    // Never answers: for deadline tests.
    router.unary(
        "/etcdserverpb.Maintenance/Status",
        |_: Metadata, _: basalt_net::proto::etcdserverpb::StatusRequest| async {
            std::future::pending::<Result<basalt_net::proto::etcdserverpb::StatusResponse, Status>>(
            )
            .await
        },
    );

    router.server_streaming(
        "/etcdserverpb.Maintenance/Snapshot",
        move |_: Metadata,
              _: SnapshotRequest,
              mut responses: basalt_net::ResponseSink<SnapshotResponse>| {
            let counters = counters.clone();
            async move {
                let outcome = async {
                    for chunk in 0..SNAPSHOT_CHUNKS {
                        let remaining = (SNAPSHOT_CHUNKS - chunk - 1) * SNAPSHOT_CHUNK_BYTES;
                        responses
                            .send(&SnapshotResponse {
                                header: header(1),
                                remaining_bytes: remaining as u64,
                                blob: vec![chunk as u8; SNAPSHOT_CHUNK_BYTES],
                            })
                            .await?;
                        counters.snapshot_chunks_sent.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                }
                .await;
                counters.snapshot_calls_ended.fetch_add(1, Ordering::SeqCst);
                outcome
            }
        },
    );
    router
}

/// Starts the demo server on 127.0.0.1 with an ephemeral port, on its own executor thread.
pub fn start_demo_server(config: ServerConfig) -> DemoServer {
    start_demo_server_with_tls(config, None)
}

/// Like `start_demo_server`, serving TLS on `address` when `tls` is given (and plaintext on
/// `plaintext_address`, from the same `Server`).
pub fn start_demo_server_with_tls(
    config: ServerConfig,
    tls: Option<Arc<basalt_net::ServerTls>>,
) -> DemoServer {
    let counters = Arc::new(Counters::default());
    let (address_sender, address_receiver) = mpsc::channel();
    let server_counters = counters.clone();
    let server_counters_for_stop = counters.clone();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("net-test-server")
        .spawn(move || async move {
            let listener = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let plaintext_listener = tls
                .is_some()
                .then(|| basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap());
            let plaintext_address = plaintext_listener
                .as_ref()
                .map(|listener| listener.local_addr().unwrap());
            address_sender
                .send((listener.local_addr().unwrap(), plaintext_address))
                .unwrap();
            let server =
                Server::new(demo_router(server_counters), config).with_http1(
                    |request| match request.path() {
                        "/health" => Http1Response::json(etcd_http::health_body(true, "")),
                        "/version" => {
                            Http1Response::json(etcd_http::version_body("3.5.17", "3.5.0"))
                        }
                        _ => Http1Response::not_found(),
                    },
                );
            let server = Rc::new(server);
            // The test thread cannot touch this executor's `Rc` signal: it sets a flag instead.
            let signal = server.shutdown_signal();
            let flags = server_counters_for_stop.clone();
            glommio::spawn_local(async move {
                while !flags.stop_requested.load(Ordering::SeqCst) {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                signal.raise();
            })
            .detach();
            if let Some(plaintext_listener) = plaintext_listener {
                let plaintext = server.clone().serve(plaintext_listener);
                glommio::spawn_local(async move { plaintext.await.unwrap() }).detach();
            }
            match tls {
                Some(tls) => server.clone().serve_tls(listener, tls).await.unwrap(),
                None => server.clone().serve(listener).await.unwrap(),
            }
            while server.connections_open() > 0 {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            server_counters_for_stop
                .drained
                .store(true, Ordering::SeqCst);
        })
        .expect("start glommio executor");
    let address = address_receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("server bound its listener");
    let (address, plaintext_address) = address;
    DemoServer {
        address,
        plaintext_address,
        counters,
    }
}

/// Waits until `condition` holds, checking every millisecond, for at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A server whose Range answers carry `member_id` in their header, so a client sees which
/// executor served its connection (tests of where connections are served).
pub fn member_id_server(member_id: u64) -> Server {
    let mut router = Router::new();
    router.unary(
        "/etcdserverpb.KV/Range",
        move |_: Metadata, _: RangeRequest| async move {
            Ok(RangeResponse {
                header: Some(ResponseHeader {
                    member_id,
                    ..Default::default()
                }),
                ..Default::default()
            })
        },
    );
    Server::new(router, ServerConfig::default())
}
