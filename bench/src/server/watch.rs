//! `watch`: many watchers over a set of keys; measures watcher creation and event delivery
//! under a stream of puts (etcd `benchmark watch`).

use super::args::{CommonArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::watch_fanout::{self, Fanout};

/// Flags of `basalt-bench watch`.
#[derive(clap::Args, Clone, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Watch streams (spread over --conns).
    #[arg(long, default_value_t = 10)]
    pub streams: u32,
    /// Watchers per stream.
    #[arg(long, default_value_t = 100)]
    pub watch_per_stream: u32,
    /// Distinct watched keys; watcher i watches key i mod this.
    #[arg(long, default_value_t = 1)]
    pub watched_key_total: u64,
    /// Total puts to the watched keys.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Puts per second (0: as fast as the --clients putters go).
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Value size in bytes (at least 8: the value carries its send time).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
}

impl Workload for WatchArgs {
    fn name(&self) -> &'static str {
        "watch"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        let fanout = Fanout {
            streams: self.streams,
            watchers_per_stream: self.watch_per_stream,
            watched_keys: self.watched_key_total,
            put_total: self.put_total,
            put_rate: self.put_rate,
            val_size: self.val_size,
            prev_kv: false,
        };
        Box::pin(async move { watch_fanout::run(self.name(), pool, &fanout).await })
    }
}
