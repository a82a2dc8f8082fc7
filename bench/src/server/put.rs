//! `put`: every client writes keys as fast as answers come back (etcd `benchmark put`).
//!
//! Two clients can issue the puts: the lean one (`lean/`, a minimal HTTP/2 client whose CPU
//! cost per put is a small fraction of the server's) or etcd-client (the real Rust etcd
//! client, with TLS and auth).

use std::sync::Arc;
use std::time::Instant;

use etcd_client::Client;

use super::args::{CommonArgs, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};
use super::keys::KeyArgs;
use super::lean;
use super::progress::Progress;
use super::recorder::{Outcome, Recorder};

/// Flags of `basalt-bench put`.
#[derive(clap::Args, Clone, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Client that issues the puts: `lean` (a minimal HTTP/2 client, least CPU per put) or
    /// `etcd-client` (the Rust etcd client). Default: lean, but etcd-client when --cacert,
    /// --cert, --key, --user or --rate is given (lean has no TLS, auth or pacing).
    #[arg(long, value_enum, value_name = "CLIENT")]
    pub client: Option<ClientKind>,
}

/// The client library a put workload uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum ClientKind {
    /// The bench's own minimal HTTP/2 gRPC client.
    Lean,
    /// The etcd-client crate (tonic).
    EtcdClient,
}

impl PutArgs {
    /// The client this run uses, or why the asked one cannot serve these flags.
    fn client_kind(&self) -> Result<ClientKind, String> {
        let connection = &self.common.connection;
        let lean_lacks =
            if connection.cacert.is_some() || connection.cert.is_some() || connection.key.is_some()
            {
                Some("TLS")
            } else if connection.user.is_some() {
                Some("authentication (--user)")
            } else if self.length.rate > 0 {
                Some("--rate")
            } else {
                None
            };
        match (self.client, lean_lacks) {
            (Some(ClientKind::Lean), Some(what)) => Err(format!(
                "--client lean has no {what}; use --client etcd-client"
            )),
            (Some(kind), _) => Ok(kind),
            (None, Some(_)) => Ok(ClientKind::EtcdClient),
            (None, None) => Ok(ClientKind::Lean),
        }
    }

    async fn run_lean(&self, pool: &ClientPool) -> Result<Outcome, String> {
        let connection = &self.common.connection;
        let run = lean::PutRun {
            endpoints: pool.endpoints.clone(),
            conns: connection.conns,
            clients: connection.clients,
            // One event loop by default: it is the cheapest per put (more puts per wakeup) and
            // far faster than any server this bench shares a machine with.
            threads: self.common.threads.map_or(1, usize::from),
            dial_timeout: std::time::Duration::from_secs(connection.dial_timeout.max(1)),
            stop: self.length.stop()?,
            keys: self.keys.clone(),
        };
        let recorder = Arc::new(Recorder::start());
        let progress = Progress::start(self.name(), run.stop, recorder.clone());
        let started: Instant = recorder.started();
        let worker_recorder = recorder.clone();
        let result = tokio::task::spawn_blocking(move || lean::run_put(&run, worker_recorder))
            .await
            .map_err(|error| format!("the lean client panicked: {error}"))?;
        let elapsed = started.elapsed();
        progress.finish();
        result?;
        Ok(recorder.finish(elapsed))
    }
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

    fn connects_itself(&self) -> bool {
        self.client_kind() == Ok(ClientKind::Lean)
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(async move {
            match self.client_kind()? {
                ClientKind::Lean => self.run_lean(pool).await,
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
