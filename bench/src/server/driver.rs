//! The closed-loop driver: `--clients` workers, each issuing one request at a time, until
//! `--total` requests or `--seconds` have passed, optionally paced by `--rate`.
//!
//! This is the shape of etcd's `benchmark` tool, so the figures compare: a worker sends its
//! next request as soon as the previous one answered, and latency is measured from send to
//! answer (time spent waiting for a `--rate` slot is not latency). `run_lean` is the same loop
//! with the lean client (`lean/`) in place of etcd-client.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use etcd_client::Client;

use super::args::{CommonArgs, LengthArgs, Stop};
use super::connection::ClientPool;
use super::lean;
use super::progress::Progress;
use super::rate_limit::RateLimiter;
use super::recorder::{Outcome, Recorder};

/// One kind of request a closed-loop workload issues.
pub trait Request: Send + Sync + 'static {
    /// Issues request number `sequence` (0-based over the whole run) on `client`.
    fn issue(
        &self,
        client: &mut Client,
        sequence: u64,
    ) -> impl Future<Output = Result<(), etcd_client::Error>> + Send;
}

/// Runs `request` closed-loop over the pool and returns what was measured.
pub async fn run_closed_loop<R: Request>(
    label: &str,
    pool: &ClientPool,
    length: &LengthArgs,
    request: Arc<R>,
) -> Result<Outcome, String> {
    let stop = length.stop()?;
    let recorder = Arc::new(Recorder::start());
    let limiter = Arc::new(RateLimiter::new(length.rate));
    let sequence_next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(label, stop, recorder.clone());
    let started = recorder.started();

    let mut workers = tokio::task::JoinSet::new();
    for index in 0..pool.clients as usize {
        let mut client = pool.client(index);
        let request = request.clone();
        let recorder = recorder.clone();
        let limiter = limiter.clone();
        let sequence_next = sequence_next.clone();
        workers.spawn(async move {
            loop {
                let sequence = sequence_next.fetch_add(1, Ordering::Relaxed);
                let more = match stop {
                    Stop::AfterRequests(total) => sequence < total,
                    Stop::AfterTime(duration) => started.elapsed() < duration,
                };
                if !more {
                    break;
                }
                if let Some(limiter) = limiter.as_ref() {
                    limiter.wait().await;
                }
                let sent = Instant::now();
                match request.issue(&mut client, sequence).await {
                    Ok(()) => recorder.success(sent.elapsed()),
                    Err(error) => recorder.error(error),
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|error| format!("a worker panicked: {error}"))?;
    }
    let elapsed = started.elapsed();
    progress.finish();
    Ok(recorder.finish(elapsed))
}

/// Runs `calls` closed-loop with the lean client over `pool`'s endpoints (its own `--conns`
/// connections, one event loop per `--threads`, default one) and returns what was measured.
pub async fn run_lean(
    label: &str,
    pool: &ClientPool,
    common: &CommonArgs,
    length: &LengthArgs,
    calls: lean::Calls,
) -> Result<Outcome, String> {
    let connection = &common.connection;
    let run = lean::Run {
        endpoints: pool.endpoints.clone(),
        rate: length.rate,
        conns: connection.conns,
        clients: connection.clients,
        // One event loop by default: it is the cheapest per request (more answers per
        // wakeup), and it keeps up with far more requests than a server on this machine serves.
        threads: common.threads.map_or(1, usize::from),
        dial_timeout: std::time::Duration::from_secs(connection.dial_timeout.max(1)),
        stop: length.stop()?,
    };
    let stop = run.stop;
    let (recorder_sender, recorder_receiver) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        lean::run(&run, calls, move || {
            let recorder = Arc::new(Recorder::start());
            let _ = recorder_sender.send(recorder.clone());
            recorder
        })
    });
    // No recorder: the client failed before the run started (it says why below).
    let running = recorder_receiver
        .await
        .ok()
        .map(|recorder| (Progress::start(label, stop, recorder.clone()), recorder));
    let result = worker
        .await
        .map_err(|error| format!("the lean client panicked: {error}"))?;
    let Some((progress, recorder)) = running else {
        return Err(result
            .err()
            .unwrap_or_else(|| "the lean client did not start".into()));
    };
    let elapsed = recorder.started().elapsed();
    progress.finish();
    result?;
    Ok(recorder.finish(elapsed))
}
