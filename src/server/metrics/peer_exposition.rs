//! etcd's `etcd_network_*` peer families (etcd 3.4's `rafthttp/metrics.go`: the same names,
//! label names, types and buckets), read from the peer transport's per-peer counters. Peers
//! are labelled by member ID in hex, as etcd prints a `types.ID`.

use std::fmt;
use std::sync::Arc;

use basalt_metrics::HistogramSnapshot;
use basalt_net::peer::{PeerCounters, PeerMetrics};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Writes every peer family; nothing when no peer is counted (etcd registers its vectors
/// but a vector without a child prints nothing, so a lone member shows none of them).
pub(super) fn network(out: &mut DescriptorEncoder, metrics: &PeerMetrics) -> fmt::Result {
    let peers: Vec<(String, Arc<PeerCounters>)> = metrics
        .peers()
        .into_iter()
        .map(|(id, counters)| (format!("{id:x}"), counters))
        .collect();
    if peers.is_empty() {
        return Ok(());
    }
    let local = format!("{:x}", metrics.local_id());
    // Reachability is kept for members only (a sender merely heard from has no link).
    let members: Vec<&(String, Arc<PeerCounters>)> = peers
        .iter()
        .filter(|(_, counters)| counters.member.get() == 1)
        .collect();
    {
        let mut family = out.encode_descriptor(
            "etcd_network_active_peers",
            "The current number of active peer connections.",
            None,
            MetricType::Gauge,
        )?;
        for (remote, counters) in &members {
            family
                .encode_family(&[("Local", local.as_str()), ("Remote", remote.as_str())])?
                .encode_gauge(&counters.active.get())?;
        }
    }
    {
        let mut family = out.encode_descriptor(
            "etcd_network_disconnected_peers",
            "The total number of disconnected peers.",
            None,
            MetricType::Counter,
        )?;
        for (remote, counters) in &members {
            family
                .encode_family(&[("Local", local.as_str()), ("Remote", remote.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&counters.disconnects.get(), None)?;
        }
    }
    per_peer_counter(
        out,
        &peers,
        "etcd_network_peer_sent_bytes",
        "The total number of bytes sent to peers.",
        "To",
        |c| c.sent_bytes.get(),
    )?;
    per_peer_counter(
        out,
        &peers,
        "etcd_network_peer_received_bytes",
        "The total number of bytes received from peers.",
        "From",
        |c| c.received_bytes.get(),
    )?;
    per_peer_counter(
        out,
        &peers,
        "etcd_network_peer_sent_failures",
        "The total number of send failures from peers.",
        "To",
        |c| c.sent_failures.get(),
    )?;
    per_peer_counter(
        out,
        &peers,
        "etcd_network_peer_received_failures",
        "The total number of receive failures from peers.",
        "From",
        |c| c.received_failures.get(),
    )?;
    per_peer_histogram(
        out,
        &members,
        "etcd_network_peer_round_trip_time_seconds",
        "Round-Trip-Time histogram between peers",
        "To",
        |c| c.round_trip_seconds.snapshot(),
    )?;
    // etcd names these four counters without `_total`; prometheus-client appends it to every
    // counter, so they go out untyped to keep etcd's names (what queries match on).
    per_peer_untyped(
        out,
        &peers,
        "etcd_network_snapshot_send_success",
        "Total number of successful snapshot sends",
        "To",
        |c| c.snapshot_send_successes.get() as i64,
    )?;
    per_peer_untyped(
        out,
        &peers,
        "etcd_network_snapshot_send_failures",
        "Total number of snapshot send failures",
        "To",
        |c| c.snapshot_send_failures.get() as i64,
    )?;
    per_peer_gauge(
        out,
        &peers,
        "etcd_network_snapshot_send_inflights_total",
        "Total number of inflight snapshot sends",
        "To",
        |c| c.snapshot_send_inflight.get(),
    )?;
    per_peer_histogram(
        out,
        &peers.iter().collect::<Vec<_>>(),
        "etcd_network_snapshot_send_total_duration_seconds",
        "Total latency distributions of v3 snapshot sends",
        "To",
        |c| c.snapshot_send_seconds.snapshot(),
    )?;
    per_peer_untyped(
        out,
        &peers,
        "etcd_network_snapshot_receive_success",
        "Total number of successful snapshot receives",
        "From",
        |c| c.snapshot_receive_successes.get() as i64,
    )?;
    per_peer_untyped(
        out,
        &peers,
        "etcd_network_snapshot_receive_failures",
        "Total number of snapshot receive failures",
        "From",
        |c| c.snapshot_receive_failures.get() as i64,
    )?;
    per_peer_gauge(
        out,
        &peers,
        "etcd_network_snapshot_receive_inflights_total",
        "Total number of inflight snapshot receives",
        "From",
        |c| c.snapshot_receive_inflight.get(),
    )?;
    per_peer_histogram(
        out,
        &peers.iter().collect::<Vec<_>>(),
        "etcd_network_snapshot_receive_total_duration_seconds",
        "Total latency distributions of v3 snapshot receives",
        "From",
        |c| c.snapshot_receive_seconds.snapshot(),
    )
}

/// A counter per peer; `name` without `_total`, which the text format appends.
fn per_peer_counter(
    out: &mut DescriptorEncoder,
    peers: &[(String, Arc<PeerCounters>)],
    name: &str,
    help: &str,
    label: &'static str,
    value: impl Fn(&PeerCounters) -> u64,
) -> fmt::Result {
    let mut family = out.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (peer, counters) in peers {
        family
            .encode_family(&[(label, peer.as_str())])?
            .encode_counter::<NoLabelSet, _, u64>(&value(counters), None)?;
    }
    Ok(())
}

fn per_peer_gauge(
    out: &mut DescriptorEncoder,
    peers: &[(String, Arc<PeerCounters>)],
    name: &str,
    help: &str,
    label: &'static str,
    value: impl Fn(&PeerCounters) -> i64,
) -> fmt::Result {
    typed_per_peer(out, peers, name, help, label, MetricType::Gauge, value)
}

fn per_peer_untyped(
    out: &mut DescriptorEncoder,
    peers: &[(String, Arc<PeerCounters>)],
    name: &str,
    help: &str,
    label: &'static str,
    value: impl Fn(&PeerCounters) -> i64,
) -> fmt::Result {
    typed_per_peer(out, peers, name, help, label, MetricType::Unknown, value)
}

fn typed_per_peer(
    out: &mut DescriptorEncoder,
    peers: &[(String, Arc<PeerCounters>)],
    name: &str,
    help: &str,
    label: &'static str,
    kind: MetricType,
    value: impl Fn(&PeerCounters) -> i64,
) -> fmt::Result {
    let mut family = out.encode_descriptor(name, help, None, kind)?;
    for (peer, counters) in peers {
        family
            .encode_family(&[(label, peer.as_str())])?
            .encode_gauge(&value(counters))?;
    }
    Ok(())
}

fn per_peer_histogram(
    out: &mut DescriptorEncoder,
    peers: &[&(String, Arc<PeerCounters>)],
    name: &str,
    help: &str,
    label: &'static str,
    snapshot: impl Fn(&PeerCounters) -> HistogramSnapshot,
) -> fmt::Result {
    let mut family = out.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (peer, counters) in peers {
        let histogram = snapshot(counters);
        family
            .encode_family(&[(label, peer.as_str())])?
            .encode_histogram::<NoLabelSet>(
                histogram.sum,
                histogram.count,
                &histogram.buckets,
                None,
            )?;
    }
    Ok(())
}
