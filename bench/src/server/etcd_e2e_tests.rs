//! End-to-end check of the workloads against a real etcd (Debian's `etcd-server`).
//!
//! Ignored by default: it needs the `etcd` binary and takes a few seconds. Run it with
//! `apt-get install -y etcd-server && cargo test --release -p basalt-bench -- --ignored`.
//! It starts its own etcd on loopback ports 24891/24991 with a fresh data dir, runs every
//! workload briefly, and checks that requests succeed and k8s-events finds no violation.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

use super::args::Workload;
use super::connection::ClientPool;
use super::ServerCommand;

const CLIENT_PORT: u16 = 24891;
const PEER_PORT: u16 = 24991;

/// An etcd process killed (and its data dir removed) on drop.
struct Etcd {
    child: Child,
    data_dir: std::path::PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn start_etcd() -> Etcd {
    let data_dir = std::env::temp_dir().join(format!("basalt-bench-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let client = format!("http://127.0.0.1:{CLIENT_PORT}");
    let peer = format!("http://127.0.0.1:{PEER_PORT}");
    let child = Command::new("etcd")
        .args(["--name", "e2e", "--data-dir"])
        .arg(&data_dir)
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("e2e={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd on PATH (apt-get install -y etcd-server)");
    Etcd { child, data_dir }
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: ServerCommand,
}

fn workload(args: &str) -> Box<dyn Workload> {
    let endpoint = format!("--endpoints=127.0.0.1:{CLIENT_PORT}");
    let words = std::iter::once("bench")
        .chain(args.split_whitespace())
        .chain(std::iter::once(endpoint.as_str()));
    match Cli::try_parse_from(words)
        .expect("valid test flags")
        .command
    {
        ServerCommand::Put(args) => args,
        ServerCommand::Range(args) => args,
        ServerCommand::TxnPut(args) => args,
        ServerCommand::TxnMixed(args) => args,
        ServerCommand::Watch(args) => args,
        ServerCommand::WatchLatency(args) => args,
        ServerCommand::LeaseKeepalive(args) => args,
        ServerCommand::K8sEvents(args) => args,
    }
}

// Goal: every workload runs against a real etcd without errors, watch workloads see every
// event, and k8s-events' verifier passes a real server's history.
#[test]
#[ignore = "needs Debian's etcd-server; run with --ignored"]
fn workloads_run_against_real_etcd() {
    let _etcd = start_etcd();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let probe = workload("put --total 1");
        let deadline = Instant::now() + Duration::from_secs(15);
        let pool = loop {
            match ClientPool::connect(&probe.common().connection, &probe.common().connection.endpoints).await {
                Ok(pool) => break pool,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("etcd did not come up: {error}"),
            }
        };
        drop(pool);
        for args in [
            "put --conns 2 --clients 8 --total 500 --val-size 256 --key-space-size 1000",
            "put --client etcd-client --conns 2 --clients 8 --total 500 --val-size 256",
            "range bench-key --seed-val-size 64 --clients 8 --total 500 --consistency s",
            "txn-put --clients 8 --total 200 --txn-ops 4 --key-space-size 100",
            "range bench-key --client etcd-client --clients 8 --total 500 --consistency l",
            "range bench --prefix --limit 5 --clients 8 --total 500 --consistency l",
            "txn-put --client etcd-client --clients 8 --total 200 --txn-ops 4 --key-space-size 100",
            "txn-mixed 00000000 00000100 --clients 8 --total 300 --key-space-size 100",
            "watch --streams 2 --watch-per-stream 10 --watched-key-total 3 --put-total 60 --put-rate 0",
            "watch-latency --streams 2 --watchers-per-stream 5 --put-total 50 --put-rate 200",
            "lease-keepalive --clients 4 --total 200",
            "k8s-events --conns 4 --clients 16 --seconds 2 --list-interval 0.5 --count-interval 0.2 --compaction-interval 0.7 --list-limit 50",
        ] {
            let workload = workload(args);
            let pool = ClientPool::connect(
                &workload.common().connection,
                &workload.common().connection.endpoints,
            )
            .await
            .unwrap();
            let outcome = workload.run(&pool).await.unwrap_or_else(|e| panic!("{args}: {e}"));
            assert!(outcome.ops > 0, "{args}: no request succeeded");
            assert_eq!(outcome.errors, 0, "{args}: {:?}", outcome.error_samples);
            assert_eq!(outcome.violations, 0, "{args}: {:?}", outcome.violation_samples);
            let missing = outcome.extra.iter().find(|(name, _)| name == "events_missing");
            assert!(missing.is_none_or(|(_, n)| *n == 0.0), "{args}: events missing");
        }
    });
}
