//! `lease-keepalive`: each client grants a lease, then sends keep-alives on its own
//! keep-alive stream, one at a time (etcd `benchmark lease-keepalive`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::args::{CommonArgs, LengthArgs, Stop, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::progress::Progress;
use super::rate_limit::RateLimiter;
use super::recorder::{Outcome, Recorder};

/// Flags of `basalt-bench lease-keepalive`.
#[derive(clap::Args, Clone, Debug)]
pub struct LeaseKeepaliveArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    /// TTL of each client's lease, in seconds.
    #[arg(long, default_value_t = 60)]
    pub ttl: i64,
}

impl Workload for LeaseKeepaliveArgs {
    fn name(&self) -> &'static str {
        "lease-keepalive"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(run(self, pool))
    }
}

async fn run(args: &LeaseKeepaliveArgs, pool: &ClientPool) -> Result<Outcome, String> {
    let stop = args.length.stop()?;
    // Set-up (grants and stream opens) is not measured.
    let mut streams = Vec::with_capacity(pool.clients as usize);
    for index in 0..pool.clients as usize {
        let mut client = pool.client(index);
        let lease = client
            .lease_grant(args.ttl, None)
            .await
            .map_err(|error| format!("cannot grant a lease: {error}"))?;
        let stream = client
            .lease_keep_alive(lease.id())
            .await
            .map_err(|error| format!("cannot open a keep-alive stream: {error}"))?;
        streams.push((client, lease.id(), stream));
    }

    let recorder = Arc::new(Recorder::start());
    let limiter = Arc::new(RateLimiter::new(args.length.rate));
    let sequence_next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start("lease-keepalive", stop, recorder.clone());
    let started = recorder.started();
    let mut workers = tokio::task::JoinSet::new();
    for (mut client, lease_id, (mut keeper, mut responses)) in streams {
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
                if let Err(error) = keeper.keep_alive().await {
                    recorder.error(error);
                    break;
                }
                match responses.message().await {
                    Ok(Some(response)) if response.ttl() > 0 => recorder.success(sent.elapsed()),
                    Ok(Some(_)) => recorder.error("lease expired (keep-alive answered TTL 0)"),
                    Ok(None) => {
                        recorder.error("keep-alive stream closed");
                        break;
                    }
                    Err(error) => {
                        recorder.error(error);
                        break;
                    }
                }
            }
            // The measured phase of this worker ends here, before the clean-up.
            let finished = started.elapsed();
            // Leave the server as found; a failed revoke only leaves a lease to expire.
            let _ = client.lease_revoke(lease_id).await;
            finished
        });
    }
    let mut elapsed = std::time::Duration::ZERO;
    while let Some(joined) = workers.join_next().await {
        let finished = joined.map_err(|error| format!("a worker panicked: {error}"))?;
        elapsed = elapsed.max(finished);
    }
    progress.finish();
    Ok(recorder.finish(elapsed))
}
