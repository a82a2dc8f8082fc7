//! `put`: every client writes keys as fast as answers come back (etcd `benchmark put`).

use std::sync::Arc;

use etcd_client::Client;

use super::args::{CommonArgs, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};
use super::keys::KeyArgs;

/// Flags of `basalt-bench put`.
#[derive(clap::Args, Clone, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}

struct PutRequest {
    keys: KeyArgs,
    value: Vec<u8>,
}

impl Request for PutRequest {
    async fn issue(&self, client: &mut Client, sequence: u64) -> Result<(), etcd_client::Error> {
        client
            .put(
                self.keys.key(sequence),
                self.keys.value_for(&self.value, sequence),
                None,
            )
            .await
            .map(drop)
    }
}

impl Workload for PutArgs {
    fn name(&self) -> &'static str {
        "put"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        let request = Arc::new(PutRequest {
            keys: self.keys.clone(),
            value: self.keys.value(),
        });
        Box::pin(run_closed_loop(self.name(), pool, &self.length, request))
    }
}
