//! The machinery under `watch` and `watch-latency`: open `--streams` watch streams with
//! `--watchers-per-stream` watchers each, then put stamped values into the watched keys and
//! measure, at every watcher, the time from the put's send to the event's arrival.
//!
//! Each put value starts with its send time (nanoseconds since the run's origin, 8 bytes
//! little-endian), so a watcher computes latency from the event alone: no shared map from
//! revision to send time, no lock between putters and watchers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};

use super::args::LengthArgs;
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};
use super::recorder::{Outcome, Recorder};
use super::report::summary_ms;

/// Most watch streams one run opens.
pub const STREAMS_LIMIT: u32 = 10_000;
/// Most watchers on one stream.
pub const WATCHERS_PER_STREAM_LIMIT: u32 = 10_000;
/// Most distinct watched keys.
pub const WATCHED_KEYS_LIMIT: u64 = 100_000;
/// How long to wait for late events after the last put answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Prefix of the watched keys.
const KEY_PREFIX: &str = "/basalt-bench/watch/";

/// The shape of one fan-out run.
#[derive(Clone, Debug)]
pub struct Fanout {
    pub streams: u32,
    pub watchers_per_stream: u32,
    /// Distinct keys; watcher i watches key i mod this.
    pub watched_keys: u64,
    pub put_total: u64,
    pub put_rate: u64,
    pub val_size: usize,
    pub prev_kv: bool,
}

/// The send time stamped into a put value.
pub fn stamp(sent_ns: u64, val_size: usize) -> Vec<u8> {
    let mut value = sent_ns.to_le_bytes().to_vec();
    value.resize(val_size.max(8), b'v');
    value
}

/// The send time a stamped value carries (`None` for a foreign value).
pub fn unstamp(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.get(..8)?.try_into().ok()?))
}

fn watched_key(index: u64) -> String {
    format!("{KEY_PREFIX}{index:08}")
}

struct StampedPut {
    origin: Instant,
    fanout: Fanout,
    /// Successful puts per watched key (to know how many events to expect).
    puts_per_key: Vec<AtomicU64>,
}

impl Request for StampedPut {
    async fn issue(&self, client: &mut Client, sequence: u64) -> Result<(), etcd_client::Error> {
        let key_index = sequence % self.fanout.watched_keys;
        let sent_ns = self.origin.elapsed().as_nanos() as u64;
        let value = stamp(sent_ns, self.fanout.val_size);
        client.put(watched_key(key_index), value, None).await?;
        self.puts_per_key[key_index as usize].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs one fan-out measurement over the pool.
pub async fn run(label: &str, pool: &ClientPool, fanout: &Fanout) -> Result<Outcome, String> {
    if fanout.streams == 0 || fanout.streams > STREAMS_LIMIT {
        return Err(format!("--streams must be 1..={STREAMS_LIMIT}"));
    }
    if fanout.watchers_per_stream == 0 || fanout.watchers_per_stream > WATCHERS_PER_STREAM_LIMIT {
        return Err(format!(
            "watchers per stream must be 1..={WATCHERS_PER_STREAM_LIMIT}"
        ));
    }
    if fanout.watched_keys == 0 || fanout.watched_keys > WATCHED_KEYS_LIMIT {
        return Err(format!(
            "--watched-key-total must be 1..={WATCHED_KEYS_LIMIT}"
        ));
    }
    let events = Arc::new(Recorder::start());
    let origin = events.started();
    let creations = Recorder::start();
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    let mut watcher_index = 0u64;
    for stream_index in 0..fanout.streams {
        let mut client = pool.client(stream_index as usize);
        let options = || {
            let options = WatchOptions::new();
            if fanout.prev_kv {
                options.with_prev_key()
            } else {
                options
            }
        };
        let created_at = Instant::now();
        let mut stream = client
            .watch(
                watched_key(watcher_index % fanout.watched_keys),
                Some(options()),
            )
            .await
            .map_err(|error| format!("cannot open a watch stream: {error}"))?;
        watcher_index += 1;
        for _ in 1..fanout.watchers_per_stream {
            let key = watched_key(watcher_index % fanout.watched_keys);
            stream
                .watch(key, Some(options()))
                .await
                .map_err(|error| format!("cannot add a watcher: {error}"))?;
            watcher_index += 1;
        }
        // A watcher's creation latency runs from the stream's first create request to its own
        // `created` answer: creates are pipelined on the stream and acknowledged in order.
        let mut created = 0;
        while created < fanout.watchers_per_stream {
            let response = stream
                .message()
                .await
                .map_err(|error| format!("watch stream failed: {error}"))?
                .ok_or("watch stream closed while creating watchers")?;
            if response.created() {
                created += 1;
                creations.success(created_at.elapsed());
            }
        }
        let events = events.clone();
        let received = received.clone();
        readers.spawn(async move {
            // Keep the stream (and its request sender) alive for the whole run.
            while let Ok(Some(response)) = stream.message().await {
                let now_ns = origin.elapsed().as_nanos() as u64;
                let latencies: Vec<Duration> = response
                    .events()
                    .iter()
                    .filter(|event| event.event_type() == EventType::Put)
                    .filter_map(|event| unstamp(event.kv()?.value()))
                    .map(|sent_ns| Duration::from_nanos(now_ns.saturating_sub(sent_ns)))
                    .collect();
                received.fetch_add(latencies.len() as u64, Ordering::Relaxed);
                events.successes(latencies);
            }
        });
    }
    let watchers_created = creations.ops();

    let put = Arc::new(StampedPut {
        origin,
        fanout: fanout.clone(),
        puts_per_key: (0..fanout.watched_keys)
            .map(|_| AtomicU64::new(0))
            .collect(),
    });
    let length = LengthArgs {
        total: fanout.put_total,
        seconds: None,
        rate: fanout.put_rate,
    };
    let put_started = Instant::now();
    let puts = run_closed_loop(label, pool, &length, put.clone()).await?;

    let watchers_per_key = |key: u64| {
        let total = fanout.streams as u64 * fanout.watchers_per_stream as u64;
        total / fanout.watched_keys + u64::from(key < total % fanout.watched_keys)
    };
    let expected: u64 = (0..fanout.watched_keys)
        .map(|key| put.puts_per_key[key as usize].load(Ordering::Relaxed) * watchers_per_key(key))
        .sum();
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = put_started.elapsed();
    readers.abort_all();
    let delivered = received.load(Ordering::Relaxed);

    let creation = summary_ms(&creations.finish(elapsed).latency);
    let put_summary = summary_ms(&puts.latency);
    let mut outcome = events.finish(elapsed);
    outcome.errors = puts.errors;
    outcome.error_samples = puts.error_samples.clone();
    Ok(outcome
        .with_extra("watchers", watchers_created as f64)
        .with_extra("create_p50_ms", creation.p50_ms)
        .with_extra("create_p99_ms", creation.p99_ms)
        .with_extra("puts", puts.ops as f64)
        .with_extra(
            "put_qps",
            puts.ops as f64 / puts.elapsed.as_secs_f64().max(1e-9),
        )
        .with_extra("put_p99_ms", put_summary.p99_ms)
        .with_extra("events_expected", expected as f64)
        .with_extra("events_missing", expected.saturating_sub(delivered) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a stamped value carries its send time and has the asked size (at least 8 bytes).
    #[test]
    fn stamp_round_trips() {
        let value = stamp(123_456_789, 256);
        assert_eq!(value.len(), 256);
        assert_eq!(unstamp(&value), Some(123_456_789));
        assert_eq!(stamp(1, 0).len(), 8);
        assert_eq!(unstamp(b"short"), None);
    }
}
