//! `txn-mixed`: read transactions and write transactions mixed at `--rw-ratio` reads per write
//! (etcd `benchmark txn-mixed key [end-range]`). Reads and writes are also measured apart.

use std::sync::Arc;
use std::time::Instant;

use etcd_client::{Client, GetOptions, Txn, TxnOp};

use super::args::{CommonArgs, Consistency, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};
use super::keys::{mix, KeyArgs};
use super::recorder::Recorder;
use super::report::summary_ms;

/// Flags of `basalt-bench txn-mixed`.
#[derive(clap::Args, Clone, Debug)]
pub struct TxnMixedArgs {
    /// Start of the range the read transactions read.
    // Its own id: the flattened connection flags have `--key` (mutual TLS), and a shared id
    // made `--key FILE` fill this argument instead.
    #[arg(id = "range_key", value_name = "KEY")]
    pub key: String,
    /// End of that range (exclusive); without it reads get KEY only.
    pub end: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Read transactions per write transaction.
    #[arg(long, default_value_t = 1.0)]
    pub rw_ratio: f64,
    /// Consistency of the reads: l (linearizable) or s (serializable).
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Maximum keys a read returns (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
}

/// Whether request `sequence` is a read, for `rw_ratio` reads per write.
pub fn is_read(sequence: u64, rw_ratio: f64) -> bool {
    let read_share = rw_ratio / (rw_ratio + 1.0);
    let draw = (mix(sequence ^ 0x5eed) >> 11) as f64 / (1u64 << 53) as f64;
    draw < read_share
}

struct TxnMixedRequest {
    args: TxnMixedArgs,
    value: Vec<u8>,
    reads: Recorder,
    writes: Recorder,
}

impl Request for TxnMixedRequest {
    async fn issue(&self, client: &mut Client, sequence: u64) -> Result<(), etcd_client::Error> {
        let sent = Instant::now();
        let read = is_read(sequence, self.args.rw_ratio);
        let op = if read {
            let mut options = GetOptions::new();
            if let Some(end) = &self.args.end {
                options = options.with_range(end.as_bytes());
            }
            if self.args.consistency == Consistency::Serializable {
                // etcd serves a txn of serializable reads only from local state.
                options = options.with_serializable();
            }
            if self.args.limit > 0 {
                options = options.with_limit(self.args.limit);
            }
            TxnOp::get(self.args.key.as_bytes(), Some(options))
        } else {
            TxnOp::put(
                self.args.keys.key(sequence),
                self.args.keys.value_for(&self.value, sequence),
                None,
            )
        };
        let result = client.txn(Txn::new().and_then([op])).await;
        let recorder = if read { &self.reads } else { &self.writes };
        match &result {
            Ok(_) => recorder.success(sent.elapsed()),
            Err(error) => recorder.error(error),
        }
        result.map(drop)
    }
}

impl Workload for TxnMixedArgs {
    fn name(&self) -> &'static str {
        "txn-mixed"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(async move {
            if !(self.rw_ratio >= 0.0 && self.rw_ratio.is_finite()) {
                return Err(format!("--rw-ratio must be >= 0, got {}", self.rw_ratio));
            }
            let request = Arc::new(TxnMixedRequest {
                args: self.clone(),
                value: self.keys.value(),
                reads: Recorder::start(),
                writes: Recorder::start(),
            });
            let outcome = run_closed_loop(self.name(), pool, &self.length, request.clone()).await?;
            let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
            let mut outcome = outcome;
            for (name, recorder) in [("read", &request.reads), ("write", &request.writes)] {
                let part = recorder.finish(outcome.elapsed);
                let summary = summary_ms(&part.latency);
                outcome = outcome
                    .with_extra(&format!("{name}_ops"), part.ops as f64)
                    .with_extra(&format!("{name}_qps"), part.ops as f64 / seconds)
                    .with_extra(&format!("{name}_p50_ms"), summary.p50_ms)
                    .with_extra(&format!("{name}_p99_ms"), summary.p99_ms);
            }
            Ok(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: --rw-ratio 4 gives about four reads per write; 0 gives only writes.
    #[test]
    fn rw_ratio_sets_the_read_share() {
        let reads = (0..100_000).filter(|&s| is_read(s, 4.0)).count();
        assert!((79_000..81_000).contains(&reads), "{reads}");
        assert_eq!((0..1000).filter(|&s| is_read(s, 0.0)).count(), 0);
    }
}
