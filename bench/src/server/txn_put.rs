//! `txn-put`: transactions of `--txn-ops` puts each, no guard (etcd `benchmark txn-put`).

use std::sync::Arc;

use etcd_client::{Client, Txn, TxnOp};

use super::args::{CommonArgs, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};
use super::keys::KeyArgs;

/// Flags of `basalt-bench txn-put`.
#[derive(clap::Args, Clone, Debug)]
pub struct TxnPutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Puts per transaction (etcd's default limit is 128 ops per txn).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub txn_ops: u64,
}

struct TxnPutRequest {
    keys: KeyArgs,
    value: Vec<u8>,
    txn_ops: u64,
}

impl Request for TxnPutRequest {
    async fn issue(&self, client: &mut Client, sequence: u64) -> Result<(), etcd_client::Error> {
        // Consecutive keys from the request's index: etcd refuses a txn that writes a key twice,
        // and `run` checked that --txn-ops fits in the key space.
        let first = self.keys.index(sequence * self.txn_ops);
        let ops: Vec<TxnOp> = (first..first + self.txn_ops)
            .map(|index| {
                let value = self.keys.value_for(&self.value, index);
                TxnOp::put(self.keys.key_at(index), value, None)
            })
            .collect();
        client.txn(Txn::new().and_then(ops)).await.map(drop)
    }
}

impl Workload for TxnPutArgs {
    fn name(&self) -> &'static str {
        "txn-put"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        if self.txn_ops > self.keys.key_space_size {
            let error = format!(
                "--txn-ops {} needs --key-space-size of at least as many keys",
                self.txn_ops
            );
            return Box::pin(async move { Err(error) });
        }
        let request = Arc::new(TxnPutRequest {
            keys: self.keys.clone(),
            value: self.keys.value(),
            txn_ops: self.txn_ops,
        });
        Box::pin(run_closed_loop(self.name(), pool, &self.length, request))
    }
}
