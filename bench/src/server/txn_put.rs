//! `txn-put`: transactions of `--txn-ops` puts each, no guard (etcd `benchmark txn-put`).

use std::sync::Arc;

use etcd_client::{Client, Txn, TxnOp};

use super::args::{ClientArgs, ClientKind, CommonArgs, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, run_lean, Request};
use super::keys::KeyArgs;
use super::lean;

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
    #[command(flatten)]
    pub client: ClientArgs,
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

/// The lean client's calls for the same transactions `TxnPutRequest` makes.
fn lean_calls(keys: KeyArgs, txn_ops: u64) -> lean::Calls {
    let value = keys.value();
    lean::Calls {
        path: lean::TXN_PATH,
        message: Box::new(move |sequence, out| {
            let first = keys.index(sequence * txn_ops);
            let ops: Vec<(Vec<u8>, Vec<u8>)> = (first..first + txn_ops)
                .map(|index| (keys.key_at(index), keys.value_for(&value, index)))
                .collect();
            lean::grpc_message(out, |body| {
                let pairs = ops.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
                lean::txn_put_request(body, pairs);
            });
        }),
    }
}

impl Workload for TxnPutArgs {
    fn name(&self) -> &'static str {
        "txn-put"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn check(&self) -> Result<(), String> {
        self.client.kind(&self.common).map(drop)
    }

    fn connects_itself(&self) -> bool {
        self.client.kind(&self.common) == Ok(ClientKind::Lean)
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        if self.txn_ops > self.keys.key_space_size {
            let error = format!(
                "--txn-ops {} needs --key-space-size of at least as many keys",
                self.txn_ops
            );
            return Box::pin(async move { Err(error) });
        }
        Box::pin(async move {
            match self.client.kind(&self.common)? {
                ClientKind::Lean => {
                    let calls = lean_calls(self.keys.clone(), self.txn_ops);
                    run_lean(self.name(), pool, &self.common, &self.length, calls).await
                }
                ClientKind::EtcdClient => {
                    let request = Arc::new(TxnPutRequest {
                        keys: self.keys.clone(),
                        value: self.keys.value(),
                        txn_ops: self.txn_ops,
                    });
                    run_closed_loop(self.name(), pool, &self.length, request).await
                }
            }
        })
    }
}
