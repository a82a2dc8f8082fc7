//! `/metrics` on a real member: etcd's names and labels, values that follow what the member
//! did, `--metrics=extensive`, and `--listen-metrics-urls` on a listener of its own.

use std::collections::HashMap;

use basalt_net::proto::etcdserverpb::{PutRequest, PutResponse, ResponseHeader};
use prost014::Message;

use crate::support::{free_port, http_request, with_member, Basalt};

/// The samples of a text exposition: `name{labels}` → value (`# ` lines skipped).
pub(crate) fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let value = match value {
                "+Inf" => f64::INFINITY,
                value => value
                    .parse()
                    .unwrap_or_else(|_| panic!("a number in {line:?}")),
            };
            (series.to_string(), value)
        })
        .collect()
}

pub(crate) fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = http_request(port, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

/// Scrapes until `ready` holds, for at most ten seconds.
#[track_caller]
pub(crate) fn scrape_until(
    port: u16,
    ready: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let samples = scrape(port);
        if ready(&samples) {
            return samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never got there: {samples:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[track_caller]
pub(crate) fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no sample {series} among {:?}", samples.keys()))
}

const PUT_OK: &str = r#"grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#;

#[test]
fn metrics_follow_what_the_member_did_under_etcds_names() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let before = scrape(basalt.port);
    assert_eq!(value(&before, "etcd_server_has_leader"), 1.0);
    assert_eq!(value(&before, "etcd_server_is_leader"), 1.0);
    // The one election of a fresh member is a leader change, as etcd counts it.
    assert_eq!(value(&before, "etcd_server_leader_changes_seen_total"), 1.0);
    assert_eq!(value(&before, PUT_OK), 0.0);

    const PUTS: u64 = 25;
    // The message bytes etcd's codec would count for these calls: each request's protobuf,
    // and each answer's (the failed put answers none), from the headers the client got back.
    let (request_bytes, response_bytes) = with_member(&basalt, |mut client| async move {
        let (mut request_bytes, mut response_bytes) = (0, 0);
        for i in 0..PUTS {
            let key = format!("k{i}");
            request_bytes += PutRequest {
                key: key.clone().into_bytes(),
                value: b"v".to_vec(),
                ..PutRequest::default()
            }
            .encoded_len();
            let answer = client.put(key, "v", None).await.unwrap();
            let header = answer.header().expect("a put answers a header");
            response_bytes += PutResponse {
                header: Some(ResponseHeader {
                    cluster_id: header.cluster_id(),
                    member_id: header.member_id(),
                    revision: header.revision(),
                    raft_term: header.raft_term(),
                }),
                prev_kv: None,
            }
            .encoded_len();
        }
        // One failure, counted under its code: an empty key is InvalidArgument.
        request_bytes += PutRequest {
            value: b"v".to_vec(),
            ..PutRequest::default()
        }
        .encoded_len();
        assert!(client.put("", "v", None).await.is_err());
        (request_bytes, response_bytes)
    });
    let after = scrape(basalt.port);
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved("etcd_network_client_grpc_received_bytes_total"),
        request_bytes as f64
    );
    assert_eq!(
        moved("etcd_network_client_grpc_sent_bytes_total"),
        response_bytes as f64
    );
    assert_eq!(value(&after, PUT_OK), PUTS as f64);
    assert_eq!(
        value(
            &after,
            r#"grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}"#
        ),
        (PUTS + 1) as f64
    );
    assert_eq!(
        value(
            &after,
            r#"grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}"#
        ),
        0.0
    );
    let applied = value(&after, "etcd_server_proposals_applied_total");
    assert!(
        applied >= value(&before, "etcd_server_proposals_applied_total") + PUTS as f64,
        "{applied}"
    );
    assert!(value(&after, "etcd_server_proposals_committed_total") >= applied);
    assert_eq!(value(&after, "etcd_server_proposals_pending"), 0.0);
    // Each acknowledged put waited for at least one WAL fdatasync.
    let fsyncs = value(&after, "etcd_disk_wal_fsync_duration_seconds_count");
    assert!(fsyncs >= 1.0, "{fsyncs}");
    assert_eq!(
        value(
            &after,
            r#"etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}"#
        ),
        fsyncs
    );
    assert!(value(&after, "basalt_wal_group_commit_records_sum") >= PUTS as f64);
    assert!(value(&after, "etcd_mvcc_db_total_size_in_bytes") > 0.0);
    // Bytes in use are measured after each engine sync (once a second).
    let synced = scrape_until(basalt.port, |samples| {
        value(samples, "etcd_mvcc_db_total_size_in_use_in_bytes") > 0.0
    });
    assert!(
        value(&synced, "etcd_mvcc_db_total_size_in_use_in_bytes")
            <= value(&synced, "etcd_mvcc_db_total_size_in_bytes")
    );
    assert!(value(&synced, "etcd_disk_backend_commit_duration_seconds_count") >= 1.0);
    assert_eq!(
        value(&after, "etcd_server_quota_backend_bytes"),
        2.0 * 1024.0 * 1024.0 * 1024.0
    );
    assert!(value(&after, "process_resident_memory_bytes") > 0.0);
    assert!(value(&after, "process_open_fds") > 0.0);
    assert!(after
        .keys()
        .any(|series| series.starts_with("etcd_server_version{server_version=")));
    // Latency per method only with --metrics=extensive.
    assert!(!after
        .keys()
        .any(|series| series.starts_with("grpc_server_handling_seconds")));
    // Live keys (the count at open is taken off the start path, so it may come a little later).
    scrape_until(basalt.port, |samples| {
        samples.get("etcd_debugging_mvcc_keys_total") == Some(&(PUTS as f64))
    });
}

#[test]
fn the_key_count_follows_creates_deletes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    with_member(&basalt, |mut client| async move {
        for key in ["a", "b", "c"] {
            client.put(key, "1", None).await.unwrap();
        }
        // A new version of a key is not a new key; a delete removes one.
        client.put("a", "2", None).await.unwrap();
        client.delete("b", None).await.unwrap();
    });
    let keys =
        |samples: &HashMap<String, f64>| samples.get("etcd_debugging_mvcc_keys_total").copied();
    scrape_until(basalt.port, |samples| keys(samples) == Some(2.0));
    let (data_dir, port) = basalt.kill_9();
    let basalt = Basalt::start_with(data_dir, port);
    scrape_until(basalt.port, |samples| keys(samples) == Some(2.0));
    with_member(&basalt, |mut client| async move {
        client.put("b", "again", None).await.unwrap();
    });
    scrape_until(basalt.port, |samples| keys(samples) == Some(3.0));
}

#[test]
fn extensive_metrics_time_every_grpc_call() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &["--metrics=extensive"],
    );
    with_member(&basalt, |mut client| async move {
        client.put("k", "v", None).await.unwrap();
        client.get("k", None).await.unwrap();
    });
    let after = scrape(basalt.port);
    for method in ["Put", "Range"] {
        assert_eq!(
            value(
                &after,
                &format!(
                    r#"grpc_server_handling_seconds_count{{grpc_method="{method}",grpc_service="etcdserverpb.KV",grpc_type="unary"}}"#
                )
            ),
            1.0
        );
    }
}

#[test]
fn a_metrics_listener_serves_metrics_and_health_beside_the_client_port() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let url = format!("http://127.0.0.1:{metrics_port}");
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &["--listen-metrics-urls", &url],
    );
    with_member(&basalt, |mut client| async move {
        client.put("k", "v", None).await.unwrap();
    });
    // The same process-wide numbers on both ports.
    assert_eq!(value(&scrape(metrics_port), PUT_OK), 1.0);
    assert_eq!(value(&scrape(basalt.port), PUT_OK), 1.0);
    let (status, body) = http_request(metrics_port, "GET", "/health");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );
    // Nothing else is served there.
    assert_eq!(http_request(metrics_port, "GET", "/version").0, 404);
}

#[test]
fn watch_gauges_count_streams_and_watchers_on_every_core() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(dir.path().join("data"), free_port(), &["--cores", "2"]);
    let port = basalt.port;
    let watching = |streams: f64, watchers: f64| {
        move |samples: &HashMap<String, f64>| {
            samples.get("etcd_debugging_mvcc_watch_stream_total") == Some(&streams)
                && samples.get("etcd_debugging_mvcc_watcher_total") == Some(&watchers)
        }
    };
    scrape_until(port, watching(0.0, 0.0));
    with_member(&basalt, |mut client| async move {
        let mut stream = client.watch("a", None).await.unwrap();
        stream.watch("b", None).await.unwrap();
        for _ in 0..2 {
            let created = stream.message().await.unwrap().expect("a created answer");
            assert!(created.created());
        }
        // The creates were answered: the member counts them now.
        scrape_until(port, watching(1.0, 2.0));
    });
    // The client's connection closed with its runtime: stream and watchers are gone, and
    // none was left counted as slow (unsynced).
    let samples = scrape_until(port, watching(0.0, 0.0));
    assert_eq!(
        value(&samples, "etcd_debugging_mvcc_slow_watcher_total"),
        0.0
    );
}

/// Goal: a Watch call ended by its deadline (`grpc-timeout`, which grpc-go clients send when
/// their context has one) closes its stream in the member, so its watchers leave the member's
/// count; left open, they and the stream's queued bytes would hold the member's watch bounds for
/// good. Method: a raw HTTP/2 Watch call with a 1 s timeout, one watcher created and answered,
/// then DEADLINE_EXCEEDED; the watcher gauge must come back to 0 while the connection stays
/// open.
#[test]
fn a_watch_ended_by_its_deadline_leaves_no_watcher_behind() {
    use basalt_net::proto::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest};
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let port = basalt.port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (sender, connection) = h2::client::handshake(socket).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = http::Request::post("http://localhost/etcdserverpb.Watch/Watch")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "1S")
            .body(())
            .unwrap();
        let mut ready = sender.ready().await.unwrap();
        let (response, mut requests) = ready.send_request(request, false).unwrap();
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: b"a".to_vec(),
                    ..Default::default()
                },
            )),
        };
        let body = create.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(&body);
        requests.send_data(framed.into(), false).unwrap();
        let mut responses = response.await.unwrap().into_body();
        // The created answer: the watcher is counted now.
        responses.data().await.unwrap().unwrap();
        assert_eq!(
            value(&scrape(port), "etcd_debugging_mvcc_watcher_total"),
            1.0
        );
        while let Some(chunk) = responses.data().await {
            chunk.unwrap();
        }
        let trailers = responses.trailers().await.unwrap().expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"4"[..]),
            "DEADLINE_EXCEEDED: {trailers:?}"
        );
        // The request stream is still open on the client's side; the member must not wait
        // for it.
        let samples = tokio::task::spawn_blocking(move || {
            scrape_until(port, |samples| {
                samples.get("etcd_debugging_mvcc_watcher_total") == Some(&0.0)
                    && samples.get("etcd_debugging_mvcc_watch_stream_total") == Some(&0.0)
            })
        })
        .await
        .unwrap();
        assert_eq!(
            value(&samples, "etcd_debugging_mvcc_slow_watcher_total"),
            0.0
        );
        drop(requests);
    });
}

#[test]
fn owner_link_depths_are_per_core_and_drain() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(dir.path().join("data"), free_port(), &["--cores", "2"]);
    // Each etcdctl is a connection of its own, which SO_REUSEPORT gives to either core, but a
    // client core hands the owner the connections it accepts while the owner serves none: one
    // connection held open on the owner first (the lone one, so the owner's), then put until
    // one of them has gone through core 1's link (bounded).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut held = runtime
        .block_on(etcd_client::Client::connect([basalt.endpoint()], None))
        .expect("connect");
    runtime.block_on(held.get("k", None)).expect("get");
    scrape_until(basalt.port, |samples| {
        samples
            .get(r#"basalt_client_connections{core="0"}"#)
            .is_some_and(|&served| served >= 1.0)
    });
    let carried = r#"basalt_owner_link_calls_total{core="1"}"#;
    for i in 0.. {
        assert!(i < 100, "no put reached the owner over core 1's link");
        basalt.ok(&["put", &format!("k{i}"), "v"]);
        if value(&scrape(basalt.port), carried) > 0.0 {
            break;
        }
    }
    // Core 1 has a link (core 0 is the owner: none); once every call is answered, nothing
    // waits on it and nothing is in flight.
    let samples = scrape_until(basalt.port, |samples| {
        samples.get(r#"basalt_owner_link_calls_waiting{core="1"}"#) == Some(&0.0)
            && samples.get(r#"basalt_owner_link_calls_in_flight{core="1"}"#) == Some(&0.0)
    });
    assert!(!samples.contains_key(r#"basalt_owner_link_calls_waiting{core="0"}"#));
    drop(held);
}
