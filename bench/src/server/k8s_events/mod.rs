//! `k8s-events` (in progress).

use super::args::{CommonArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;

/// Flags of `basalt-bench k8s-events`.
#[derive(clap::Args, Clone, Debug)]
pub struct K8sEventsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Workload for K8sEventsArgs {
    fn name(&self) -> &'static str {
        "k8s-events"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, _pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(async { Err("not yet".to_string()) })
    }
}
