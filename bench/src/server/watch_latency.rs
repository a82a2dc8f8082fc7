//! `watch-latency`: put → event delivery latency at every watcher of one key
//! (etcd `benchmark watch-latency`).

use super::args::{CommonArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::watch_fanout::{self, Fanout};

/// Flags of `basalt-bench watch-latency`.
#[derive(clap::Args, Clone, Debug)]
pub struct WatchLatencyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Total puts to the watched key.
    #[arg(long, default_value_t = 10_000)]
    pub put_total: u64,
    /// Puts per second (0: as fast as the --clients putters go).
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Watch streams (spread over --conns).
    #[arg(long, default_value_t = 10)]
    pub streams: u32,
    /// Watchers per stream, all on the same key.
    #[arg(long, default_value_t = 10)]
    pub watchers_per_stream: u32,
    /// Value size in bytes (at least 8: the value carries its send time).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Ask for the previous key-value with each event.
    #[arg(long)]
    pub prevkv: bool,
}

impl Workload for WatchLatencyArgs {
    fn name(&self) -> &'static str {
        "watch-latency"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        let fanout = Fanout {
            streams: self.streams,
            watchers_per_stream: self.watchers_per_stream,
            watched_keys: 1,
            put_total: self.put_total,
            put_rate: self.put_rate,
            val_size: self.val_size,
            prev_kv: self.prevkv,
        };
        Box::pin(async move { watch_fanout::run(self.name(), pool, &fanout).await })
    }
}
