//! Server workloads speaking the etcd v3 API to any endpoint (basalt or etcd).
//!
//! Every workload runs on a tokio runtime created here, not globally: the rest of the binary
//! (the `wal` and `engine` micro-benchmarks) runs on glommio. The flow of one invocation:
//! parse flags (`args`) → connect a pool of gRPC connections (`connection`) → drive the workload
//! (`driver` for closed-loop request workloads, or the workload's own loop for watches and
//! k8s-events) into a `Recorder` → turn it into a `Report` (`report`), optionally plotted
//! (`plot`); with `--vs` the same workload alternates between two endpoint sets (`versus`).

mod args;
mod connection;
mod driver;
#[cfg(test)]
mod etcd_e2e_tests;
mod k8s_events;
mod keys;
mod lean;
#[cfg(test)]
mod lean_e2e_tests;
mod lease_keepalive;
mod plot;
mod progress;
mod put;
mod range;
mod rate_limit;
mod recorder;
mod report;
mod txn_mixed;
mod txn_put;
mod versus;
mod watch;
mod watch_fanout;
mod watch_latency;

use args::{CommonArgs, Workload};
use connection::ClientPool;
use report::Report;

/// Server workload subcommands (etcd `benchmark`-compatible names and flags where they exist).
/// Boxed: the flag structs are large and the top-level command enum holds one of them.
#[derive(clap::Subcommand)]
pub enum ServerCommand {
    /// Puts: N clients writing keys of --key-size bytes with --val-size byte values.
    Put(Box<put::PutArgs>),
    /// Ranges over one key (or a key range / prefix), linearizable or serializable.
    Range(Box<range::RangeArgs>),
    /// Transactions of --txn-ops puts each.
    TxnPut(Box<txn_put::TxnPutArgs>),
    /// A mix of read transactions and write transactions (--rw-ratio reads per write).
    TxnMixed(Box<txn_mixed::TxnMixedArgs>),
    /// Watch fan-out: creates many watchers, then measures event delivery under puts.
    Watch(Box<watch::WatchArgs>),
    /// Put → event delivery latency, measured at every watcher.
    WatchLatency(Box<watch_latency::WatchLatencyArgs>),
    /// Lease keep-alive round trips over keep-alive streams.
    LeaseKeepalive(Box<lease_keepalive::LeaseKeepaliveArgs>),
    /// What kube-apiserver does to a dedicated events cluster, with a consistency verifier.
    K8sEvents(Box<k8s_events::K8sEventsArgs>),
}

/// Runs one server workload (`--vs-rounds` times per endpoint set, alternating, with `--vs`).
pub fn run(command: ServerCommand) -> Result<(), String> {
    let workload: Box<dyn Workload> = match command {
        ServerCommand::Put(args) => args,
        ServerCommand::Range(args) => args,
        ServerCommand::TxnPut(args) => args,
        ServerCommand::TxnMixed(args) => args,
        ServerCommand::Watch(args) => args,
        ServerCommand::WatchLatency(args) => args,
        ServerCommand::LeaseKeepalive(args) => args,
        ServerCommand::K8sEvents(args) => args,
    };
    workload.check()?;
    let common = workload.common().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads.map_or_else(default_threads, usize::from))
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    runtime.block_on(run_workload(workload.as_ref(), &common))
}

async fn run_workload(workload: &dyn Workload, common: &CommonArgs) -> Result<(), String> {
    match &common.vs {
        None => {
            let report = run_once(workload, common, &common.connection.endpoints).await?;
            if let Some(path) = &common.plot {
                plot::write_svg(path, &[&report])?;
            }
            print!("{}", report.table());
            if common.json {
                println!("{}", report.json_line());
            }
            if report.violations > 0 {
                return Err(format!("{} consistency violations", report.violations));
            }
            Ok(())
        }
        Some(endpoints_b) => versus::run(workload, common, endpoints_b).await,
    }
}

/// Connects to one endpoint set, runs the workload once and summarises it.
async fn run_once(
    workload: &dyn Workload,
    common: &CommonArgs,
    endpoints: &[String],
) -> Result<Report, String> {
    let pool = if workload.connects_itself() {
        ClientPool::unconnected(&common.connection, endpoints)?
    } else {
        ClientPool::connect(&common.connection, endpoints).await?
    };
    let outcome = workload.run(&pool).await?;
    Ok(Report::new(workload.name(), endpoints, &outcome))
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
