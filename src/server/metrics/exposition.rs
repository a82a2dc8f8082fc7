//! `/metrics`: every part's numbers in Prometheus' text format (0.0.4, as etcd serves it),
//! with etcd's metric names and labels so its dashboards and alerts read basalt unchanged.
//! Encoded by `prometheus-client` from a collector that reads the parts at scrape time.

use std::fmt;
use std::sync::Arc;

use basalt_metrics::HistogramSnapshot;
use basalt_net::grpc::call_counts::{code_label, ALL_CODES};
use basalt_net::Http1Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{process_metrics, ServerMetrics};

/// The `Content-Type` of the text format etcd serves.
const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Answers a scrape.
pub fn metrics_response(metrics: &Arc<ServerMetrics>) -> Http1Response {
    match encode(metrics) {
        Ok(body) => Http1Response {
            status: 200,
            content_type: CONTENT_TYPE,
            body: body.into_bytes(),
        },
        // Writing into a String cannot fail; a collector's own error would be a bug.
        Err(fmt::Error) => Http1Response::text(500, "encoding the metrics failed\n"),
    }
}

/// Every metric, as text.
pub fn encode(metrics: &Arc<ServerMetrics>) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(metrics.clone())));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

/// Reads the parts when the registry encodes.
#[derive(Debug)]
struct Scrape(Arc<ServerMetrics>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let metrics = &self.0;
        let out = &mut encoder;
        server(out, metrics)?;
        disk(out, metrics)?;
        mvcc(out, metrics)?;
        grpc(out, metrics)?;
        if let Some(peers) = metrics.peers.get() {
            super::peer_exposition::network(out, peers)?;
        }
        process(out, metrics)?;
        owner_links(out, metrics)?;
        client_connections(out, metrics)?;
        Ok(())
    }
}

/// basalt's own: the client connections each core serves (the raft owner is core 0).
fn client_connections(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    let Some(shares) = metrics.connection_shares() else {
        return Ok(());
    };
    let mut family = out.encode_descriptor(
        "basalt_client_connections",
        "Client connections (gRPC, HTTP/1.1) each core serves now, the raft owner's core being core 0: a client core hands the owner a new connection while the owner serves none, so that a lone client's calls cross no core.",
        None,
        MetricType::Gauge,
    )?;
    for core in 0..shares.executors() {
        family
            .encode_family(&[("core", core.to_string())])?
            .encode_gauge(&(shares.served_by(core) as i64))?;
    }
    Ok(())
}

fn server(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    let member = &metrics.member;
    let facts = &metrics.facts;
    gauge(
        out,
        "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        member.has_leader.get(),
    )?;
    gauge(
        out,
        "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        member.is_leader.get(),
    )?;
    gauge(
        out,
        "etcd_server_is_learner",
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
        0,
    )?;
    counter(
        out,
        "etcd_server_leader_changes_seen",
        "The number of leader changes seen.",
        member.leader_changes.get(),
    )?;
    gauge(
        out,
        "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.",
        member.proposals_committed.get(),
    )?;
    gauge(
        out,
        "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.",
        member.proposals_applied.get(),
    )?;
    gauge(
        out,
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
        member.proposals_pending.get(),
    )?;
    counter(
        out,
        "etcd_server_proposals_failed",
        "The total number of failed proposals seen.",
        member.proposals_failed.get(),
    )?;
    gauge(
        out,
        "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.",
        facts.quota_backend_bytes,
    )?;
    labeled_one(
        out,
        "etcd_server_id",
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        ("server_id", format!("{:x}", facts.member_id)),
    )?;
    labeled_one(
        out,
        "etcd_server_version",
        "Which version is running. 1 for 'server_version' label with current version.",
        ("server_version", facts.server_version.clone()),
    )?;
    labeled_one(
        out,
        "etcd_cluster_version",
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        ("cluster_version", facts.cluster_version.clone()),
    )
}

fn disk(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    if let Some(wal) = metrics.wal.get() {
        histogram(
            out,
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
            &wal.fsync_seconds.snapshot(),
        )?;
        histogram(
            out,
            "basalt_wal_group_commit_records",
            "Records made durable by one WAL write and fdatasync (group commit).",
            &wal.batch_records.snapshot(),
        )?;
    }
    histogram(
        out,
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &metrics.member.backend_commit_seconds.snapshot(),
    )
}

fn mvcc(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    if let Ok(view) = metrics.engine.read() {
        let size = view.size_bytes();
        gauge(
            out,
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            size,
        )?;
        gauge(
            out,
            "etcd_debugging_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            size,
        )?;
        gauge(
            out,
            "etcd_debugging_mvcc_current_revision",
            "The current revision of store.",
            view.current_revision(),
        )?;
        gauge(
            out,
            "etcd_debugging_mvcc_compact_revision",
            "The revision of the last compaction in store.",
            view.compact_revision(),
        )?;
    }
    if let Some(keys) = metrics.member.keys_total() {
        gauge(
            out,
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys.",
            keys,
        )?;
    }
    if let Some(watches) = metrics.watches.get() {
        gauge(
            out,
            "etcd_debugging_mvcc_watch_stream_total",
            "Total number of watch streams.",
            watches.watch_streams() as i64,
        )?;
        gauge(
            out,
            "etcd_debugging_mvcc_watcher_total",
            "Total number of watchers.",
            watches.watchers() as i64,
        )?;
        gauge(
            out,
            "etcd_debugging_mvcc_slow_watcher_total",
            "Total number of unsynced slow watchers.",
            metrics.slow_watchers(),
        )?;
    }
    // Measured after each engine sync: measuring waits for the writer, a scrape must not.
    gauge(
        out,
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes.",
        metrics.member.db_size_in_use_bytes.get(),
    )
}

fn grpc(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    // Sum each method over the cores' routers (every core registers the same methods, in the
    // same order).
    struct Totals {
        labels: [(&'static str, String); 3],
        started: u64,
        handled: Vec<u64>,
        seconds: Option<HistogramSnapshot>,
    }
    let mut totals: Vec<Totals> = Vec::new();
    let (mut received_bytes, mut sent_bytes) = (0u64, 0u64);
    for part in metrics.grpc_parts().iter() {
        received_bytes += part.message_bytes().received();
        sent_bytes += part.message_bytes().sent();
        for (index, method) in part.methods().enumerate() {
            if totals.len() <= index {
                totals.push(Totals {
                    labels: [
                        ("grpc_method", method.method.clone()),
                        ("grpc_service", method.service.clone()),
                        ("grpc_type", method.kind.label().to_string()),
                    ],
                    started: 0,
                    handled: vec![0; ALL_CODES.len()],
                    seconds: None,
                });
            }
            let total = &mut totals[index];
            assert_eq!(
                total.labels[0].1, method.method,
                "every core registers the same methods in the same order"
            );
            total.started += method.started();
            for (code, handled) in ALL_CODES.iter().zip(total.handled.iter_mut()) {
                *handled += method.handled(*code);
            }
            if let Some(histogram) = method.handling_seconds() {
                total
                    .seconds
                    .get_or_insert_with(|| HistogramSnapshot {
                        sum: 0.0,
                        count: 0,
                        buckets: Vec::new(),
                    })
                    .add(histogram);
            }
        }
    }
    counter(
        out,
        "etcd_network_client_grpc_received_bytes",
        "The total number of bytes received from grpc clients.",
        received_bytes,
    )?;
    counter(
        out,
        "etcd_network_client_grpc_sent_bytes",
        "The total number of bytes sent to grpc clients.",
        sent_bytes,
    )?;
    {
        let mut family = out.encode_descriptor(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            None,
            MetricType::Counter,
        )?;
        for total in &totals {
            family
                .encode_family(&total.labels)?
                .encode_counter::<NoLabelSet, _, u64>(&total.started, None)?;
        }
    }
    {
        let mut family = out.encode_descriptor(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            None,
            MetricType::Counter,
        )?;
        for total in &totals {
            for (code, handled) in ALL_CODES.iter().zip(&total.handled) {
                let [method, service, kind] = &total.labels;
                let labels = [
                    ("grpc_code", code_label(*code).to_string()),
                    method.clone(),
                    service.clone(),
                    kind.clone(),
                ];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(handled, None)?;
            }
        }
    }
    if totals.iter().any(|total| total.seconds.is_some()) {
        let mut family = out.encode_descriptor("grpc_server_handling_seconds", "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.", None, MetricType::Histogram)?;
        for total in &totals {
            if let Some(seconds) = &total.seconds {
                family
                    .encode_family(&total.labels)?
                    .encode_histogram::<NoLabelSet>(
                        seconds.sum,
                        seconds.count,
                        &seconds.buckets,
                        None,
                    )?;
            }
        }
    }
    Ok(())
}

fn process(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    let reading = process_metrics::read();
    if let Some(seconds) = reading.cpu_seconds {
        counter(
            out,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            seconds,
        )?;
    }
    if let Some(fds) = reading.open_fds {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            fds,
        )?;
    }
    if let Some(fds) = reading.max_fds {
        gauge(
            out,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            fds,
        )?;
    }
    if let Some(bytes) = reading.virtual_bytes {
        gauge(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            bytes,
        )?;
    }
    if let Some(bytes) = reading.resident_bytes {
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            bytes,
        )?;
    }
    let started = metrics
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    gauge(
        out,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        started,
    )
}

/// basalt's own: what waits on each client core's link to the raft owner.
fn owner_links(out: &mut DescriptorEncoder, metrics: &ServerMetrics) -> fmt::Result {
    let links = metrics.owner_links();
    if links.is_empty() {
        return Ok(());
    }
    link_gauge(
        out,
        &links,
        "basalt_owner_link_calls_waiting",
        "Calls (writes, read points, lease and cluster operations) a client core has sent to the raft owner's core that the owner has not taken yet: queued in the bounded cross-core channel, or waiting for room in it. By client core.",
        super::OwnerLinkDepth::waiting,
    )?;
    link_gauge(
        out,
        &links,
        "basalt_owner_link_calls_in_flight",
        "Calls from a client core the raft owner has taken and not answered yet (proposals waiting for commit and apply, reads waiting for their read index). By client core.",
        super::OwnerLinkDepth::in_flight,
    )?;
    let mut family = out.encode_descriptor(
        "basalt_owner_link_calls",
        "Calls a client core has sent to the raft owner's core over its link. By client core.",
        None,
        MetricType::Counter,
    )?;
    for (core, depth) in &links {
        family
            .encode_family(&[("core", core.to_string())])?
            .encode_counter::<NoLabelSet, _, u64>(&depth.carried(), None)?;
    }
    Ok(())
}

/// A gauge per client core's link.
fn link_gauge(
    out: &mut DescriptorEncoder,
    links: &[(usize, Arc<super::OwnerLinkDepth>)],
    name: &str,
    help: &str,
    read: fn(&super::OwnerLinkDepth) -> u64,
) -> fmt::Result {
    let mut family = out.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (core, depth) in links {
        family
            .encode_family(&[("core", core.to_string())])?
            .encode_gauge(&(read(depth) as i64))?;
    }
    Ok(())
}

fn gauge(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeGaugeValue,
) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A counter; `name` without `_total`, which the text format appends.
fn counter(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeCounterValue,
) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A gauge of 1 carrying a fact in a label (`etcd_server_version{server_version="3.5.17"} 1`).
fn labeled_one(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: (&'static str, String),
) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_family(&[label])?
        .encode_gauge(&1i64)
}

fn histogram(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    snapshot: &HistogramSnapshot,
) -> fmt::Result {
    out.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count, &snapshot.buckets, None)
}
