//! `k8s-events`: what kube-apiserver does to a dedicated events cluster, and a verifier of
//! what it reads back.
//!
//! `--clients` writers create events (guarded Txn with a shared lease) and sometimes update
//! one (guarded by mod_revision); meanwhile a prefix watch with prev_kv follows every write,
//! paginated LISTs read the prefix at a fixed revision, count-only ranges count it, and a
//! compactor compacts every `--compaction-interval`. After the writers stop, the watch gets
//! time to catch up, then `verifier` checks the whole history. Throughput and latency are
//! those of the writes; the read side's figures are extras.

mod history;
mod lease_pool;
mod lister;
mod objects;
mod verifier;
mod watcher;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::GetOptions;
use tokio::sync::{oneshot, watch};

use super::args::{CommonArgs, Stop, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::progress::Progress;
use super::rate_limit::RateLimiter;
use super::recorder::{Outcome, Recorder};
use super::report::summary_ms;
use history::{History, WriteOutcome};
use lease_pool::{LeasePolicy, LeasePool};
use objects::EVENTS_PREFIX;
use writer::{run_writer, WriterShared};

/// How long the watch may take to deliver the last write once the writers stopped.
const WATCH_CATCH_UP_LIMIT: Duration = Duration::from_secs(15);
/// Violations described in the report (all are counted).
const VIOLATION_SAMPLES_LIMIT: usize = 10;

/// Flags of `basalt-bench k8s-events`.
#[derive(clap::Args, Clone, Debug)]
pub struct K8sEventsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Length of the write phase in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Maximum writes per second over all writers (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Namespaces the events are spread over.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub namespaces: u32,
    /// Size of an event object in bytes.
    #[arg(long, default_value_t = 1536)]
    pub val_size: usize,
    /// Share of writes that update an event the writer created (the rest create new ones).
    #[arg(long, default_value_t = 0.1)]
    pub update_ratio: f64,
    /// TTL of the shared event lease in seconds (kube: event TTL 1 h + 60 s).
    #[arg(long, default_value_t = 3660)]
    pub lease_ttl: i64,
    /// Seconds a lease is reused before a new one is granted.
    #[arg(long, default_value_t = 60.0)]
    pub lease_reuse_seconds: f64,
    /// Objects attached to one lease at most.
    #[arg(long, default_value_t = 1000)]
    pub lease_max_objects: u64,
    /// Seconds between paginated LISTs of the prefix.
    #[arg(long, default_value_t = 10.0)]
    pub list_interval: f64,
    /// Page size of a LIST.
    #[arg(long, default_value_t = 500)]
    pub list_limit: i64,
    /// Seconds between count-only ranges of the prefix.
    #[arg(long, default_value_t = 1.0)]
    pub count_interval: f64,
    /// Seconds between compactions (kube-apiserver: 300; scale down for short runs).
    #[arg(long, default_value_t = 300.0)]
    pub compaction_interval: f64,
}

impl Workload for K8sEventsArgs {
    fn name(&self) -> &'static str {
        "k8s-events"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(run(self, pool))
    }
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value > 0.0 && value.is_finite() {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "--{name} must be a positive number of seconds, got {value}"
        ))
    }
}

async fn run(args: &K8sEventsArgs, pool: &ClientPool) -> Result<Outcome, String> {
    let duration = seconds("seconds", args.seconds)?;
    let list_every = seconds("list-interval", args.list_interval)?;
    let count_every = seconds("count-interval", args.count_interval)?;
    let compact_every = seconds("compaction-interval", args.compaction_interval)?;
    if !(0.0..=1.0).contains(&args.update_ratio) {
        return Err("--update-ratio must be within 0..=1".into());
    }
    let run_id = format!(
        "r{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_micros())
    );

    // The watch starts right after the current revision, before any write of this run.
    let start_revision = pool
        .client(0)
        .get(
            EVENTS_PREFIX,
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .map_err(|error| format!("cannot read the current revision: {error}"))?
        .header()
        .map_or(0, |header| header.revision())
        + 1;
    let (stop_sender, stop) = watch::channel(false);
    let seen_revision = Arc::new(AtomicI64::new(0));
    let (ready_sender, ready) = oneshot::channel();
    let watcher = tokio::spawn(watcher::run_watcher(
        pool.client(0),
        run_id.clone(),
        start_revision,
        ready_sender,
        seen_revision.clone(),
        stop.clone(),
    ));
    ready
        .await
        .map_err(|_| "the watcher ended early".to_string())??;

    let list_pages = Arc::new(Recorder::start());
    let counts = Arc::new(Recorder::start());
    let lister = tokio::spawn(lister::run_lister(
        pool.client(1),
        run_id.clone(),
        list_every,
        args.list_limit.max(1),
        list_pages.clone(),
        stop.clone(),
    ));
    let counter = tokio::spawn(lister::run_counter(
        pool.client(2),
        count_every,
        counts.clone(),
        stop.clone(),
    ));
    let compactor = tokio::spawn(lister::run_compactor(
        pool.client(3),
        compact_every,
        stop.clone(),
    ));

    let recorder = Arc::new(Recorder::start());
    let shared = Arc::new(WriterShared {
        run_id: run_id.clone(),
        namespaces: args.namespaces,
        val_size: args.val_size,
        update_ratio: args.update_ratio,
        duration,
        leases: LeasePool::new(LeasePolicy {
            ttl_seconds: args.lease_ttl,
            reuse_for: seconds("lease-reuse-seconds", args.lease_reuse_seconds)?,
            objects_per_lease_limit: args.lease_max_objects.max(1),
        }),
        limiter: RateLimiter::new(args.rate),
        recorder: recorder.clone(),
        writes: Mutex::new(Vec::new()),
        history_full: AtomicBool::new(false),
    });
    let progress = Progress::start("k8s-events", Stop::AfterTime(duration), recorder.clone());
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..pool.clients {
        writers.spawn(run_writer(
            shared.clone(),
            pool.client(writer as usize),
            writer,
        ));
    }
    while let Some(joined) = writers.join_next().await {
        joined.map_err(|error| format!("a writer panicked: {error}"))?;
    }
    let elapsed = recorder.started().elapsed();
    progress.finish();

    // Give the watch time to deliver the last applied write, then stop every reader.
    let writes = std::mem::take(&mut *shared.writes.lock().expect("writes lock"));
    let last_applied = writes
        .iter()
        .filter_map(|write| match write.outcome {
            WriteOutcome::Applied { revision } => Some(revision),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let catch_up_started = Instant::now();
    while seen_revision.load(Ordering::Relaxed) < last_applied
        && catch_up_started.elapsed() < WATCH_CATCH_UP_LIMIT
        && !watcher.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let watch_lag = catch_up_started.elapsed();
    let _ = stop_sender.send(true);
    let join_error = |error: tokio::task::JoinError| format!("a reader panicked: {error}");
    let watch = watcher.await.map_err(join_error)?;
    let lists = lister.await.map_err(join_error)?;
    let count_record = counter.await.map_err(join_error)?;
    let compactions = compactor.await.map_err(join_error)?.compactions;

    let creates = writes
        .iter()
        .filter(|write| write.kind == history::WriteKind::Create)
        .count();
    let history = History {
        writes,
        events: watch.events,
        watch_complete_through: last_applied,
        watch_failure: watch.failure,
        lists: lists.lists,
        counts: count_record.counts,
    };
    let violations = verifier::verify(&history);
    let history_full = shared.history_full.load(Ordering::Relaxed);

    let list_outcome = list_pages.finish(elapsed);
    let count_outcome = counts.finish(elapsed);
    let list_summary = summary_ms(&list_outcome.latency);
    let count_summary = summary_ms(&count_outcome.latency);
    let mut outcome = recorder.finish(elapsed);
    outcome.violations = violations.len() as u64;
    outcome.violation_samples = violations
        .iter()
        .take(VIOLATION_SAMPLES_LIMIT)
        .map(|violation| violation.to_string())
        .collect();
    if history_full {
        outcome.error_samples.push(format!(
            "history limit of {} writes reached: writers stopped early",
            writer::HISTORY_WRITES_LIMIT
        ));
    }
    Ok(outcome
        .with_extra("creates", creates as f64)
        .with_extra("updates", (history.writes.len() - creates) as f64)
        .with_extra("leases_granted", shared.leases.grants() as f64)
        .with_extra("watch_events", history.events.len() as f64)
        .with_extra("watch_catch_up_ms", watch_lag.as_secs_f64() * 1000.0)
        .with_extra("lists", history.lists.len() as f64)
        .with_extra("lists_expired", lists.lists_expired as f64)
        .with_extra("list_errors", list_outcome.errors as f64)
        .with_extra("list_page_p50_ms", list_summary.p50_ms)
        .with_extra("list_page_p99_ms", list_summary.p99_ms)
        .with_extra("counts", history.counts.len() as f64)
        .with_extra("count_errors", count_outcome.errors as f64)
        .with_extra("count_p99_ms", count_summary.p99_ms)
        .with_extra("compactions", compactions as f64))
}
