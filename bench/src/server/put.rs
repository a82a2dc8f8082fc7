//! `put`: every client writes keys as fast as answers come back (etcd `benchmark put`).
//!
//! Two clients can issue the puts: the lean one (`lean/`, a minimal HTTP/2 client whose CPU
//! cost per put is a small fraction of the server's) or etcd-client (the real Rust etcd
//! client, with TLS and auth).

use std::sync::Arc;

use etcd_client::Client;

use super::args::{ClientArgs, ClientKind, CommonArgs, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, run_lean, Request};
use super::keys::KeyArgs;
use super::lean;

/// Flags of `basalt-bench put`.
#[derive(clap::Args, Clone, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub client: ClientArgs,
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

/// The lean client's calls for the same puts `PutRequest` makes.
fn lean_calls(keys: KeyArgs) -> lean::Calls {
    let value = keys.value();
    lean::Calls {
        path: lean::PUT_PATH,
        message: Box::new(move |sequence, out| {
            let key = keys.key(sequence);
            lean::put_message(out, &key, &keys.value_for(&value, sequence));
        }),
    }
}

impl Workload for PutArgs {
    fn name(&self) -> &'static str {
        "put"
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
        Box::pin(async move {
            match self.client.kind(&self.common)? {
                ClientKind::Lean => {
                    let calls = lean_calls(self.keys.clone());
                    run_lean(self.name(), pool, &self.common, &self.length, calls).await
                }
                ClientKind::EtcdClient => {
                    let request = Arc::new(PutRequest {
                        keys: self.keys.clone(),
                        value: self.keys.value(),
                    });
                    run_closed_loop(self.name(), pool, &self.length, request).await
                }
            }
        })
    }
}
