//! End-to-end check of the lean client (put, range, txn-put) against a real basalt.
//!
//! It starts the `basalt` binary of this build (target/<profile>/basalt, next to the test
//! executable's deps/ folder: `cargo test --workspace` builds it; alone, build it first with
//! `cargo build --release --bin basalt`) on a free loopback port with a fresh data dir, runs
//! `put --client lean` over several connections and threads, then counts the keys with
//! etcd-client: every acknowledged put must have landed, and nothing else.

/// Ports from below the kernel's ephemeral range, shared with the server's test support.
#[path = "../../../tests/server/support/free_port.rs"]
mod free_port;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use etcd_client::{Client, GetOptions};

use super::args::Workload;
use super::connection::ClientPool;
use super::recorder::Outcome;
use super::ServerCommand;
use free_port::free_port;

/// How long basalt may take to serve its first request.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A basalt process, killed on drop (its data dir goes with the `TempDir`).
struct Basalt {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Basalt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn basalt_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("basalt");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build --release --bin basalt)",
        binary.display()
    );
    binary
}

fn start_basalt() -> Basalt {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(basalt_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", "http://127.0.0.1:0"])
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("basalt starts");
    Basalt {
        child,
        port,
        _dir: dir,
    }
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: ServerCommand,
}

fn workload(args: &str) -> Box<dyn Workload> {
    let words = std::iter::once("bench").chain(args.split_whitespace());
    match Cli::try_parse_from(words)
        .expect("valid test flags")
        .command
    {
        ServerCommand::Put(args) => args,
        ServerCommand::Range(args) => args,
        ServerCommand::TxnPut(args) => args,
        _ => unreachable!("a workload the lean client serves"),
    }
}

/// Runs `args` once against `endpoint` with the lean client; asserts no error and `total` ops.
async fn run_lean(endpoint: &str, args: &str, total: u64) -> Outcome {
    let workload = workload(&format!("{args} --client lean --endpoints {endpoint}"));
    assert!(workload.connects_itself(), "{args}");
    let endpoints = [endpoint.to_string()];
    let pool = ClientPool::connect(&workload.common().connection, &endpoints)
        .await
        .unwrap();
    let outcome = workload.run(&pool).await.unwrap();
    assert_eq!(outcome.errors, 0, "{args}: {:?}", outcome.error_samples);
    assert_eq!(outcome.ops, total, "{args}");
    assert_eq!(outcome.latency.len(), total, "{args}");
    outcome
}

/// Connects etcd-client once basalt answers (bounded by `START_LIMIT`).
async fn wait_serving(endpoint: &str) -> Client {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let attempt = async {
            let mut client = Client::connect([endpoint], None).await?;
            client.get("probe", None).await?;
            Ok::<_, etcd_client::Error>(client)
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(client)) => return client,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(Err(error)) => panic!("basalt does not serve {endpoint}: {error}"),
            Err(_) => panic!("basalt does not answer {endpoint} in time"),
        }
    }
}

// Goal: the lean client's acknowledged puts are exactly the keys the server holds. Method:
// 3000 puts of distinct sequential keys over 3 connections, 2 threads and 20 clients (so
// streams interleave on each connection), then count every key and read one back with
// etcd-client; the ops accounting must match --total exactly, with no error.
#[test]
fn lean_puts_all_land_in_basalt() {
    let basalt = start_basalt();
    let endpoint = format!("127.0.0.1:{}", basalt.port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = wait_serving(&endpoint).await;
        let put = "put --conns 3 --clients 20 --threads 2 --total 3000 --sequential-keys \
                   --key-space-size 1000000 --val-size 100";
        run_lean(&endpoint, put, 3000).await;

        let all = GetOptions::new().with_all_keys().with_count_only();
        let count = client.get("", Some(all)).await.unwrap().count();
        assert_eq!(count, 3000, "every put landed, and only those");
        let last = client.get("00002999", None).await.unwrap();
        assert_eq!(last.kvs()[0].value(), vec![b'v'; 100].as_slice());
        let beyond = client.get("00003000", None).await.unwrap();
        assert!(beyond.kvs().is_empty());
    });
}

// Goal: ranges (both consistencies, one key and a limited prefix) and transactions go through
// the lean client against basalt without an error, the transactions' puts land, and --rate
// paces. Method: txn-put of 4 keys per transaction over a 400-key space, then count the keys;
// then ranges over what it wrote, the last one paced.
#[test]
fn lean_ranges_and_transactions_run_against_basalt() {
    let basalt = start_basalt();
    let endpoint = format!("127.0.0.1:{}", basalt.port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = wait_serving(&endpoint).await;
        let txn = "txn-put --conns 2 --clients 10 --total 100 --txn-ops 4 --sequential-keys \
                   --key-space-size 400";
        run_lean(&endpoint, txn, 100).await;
        let all = GetOptions::new().with_all_keys().with_count_only();
        assert_eq!(client.get("", Some(all)).await.unwrap().count(), 400);
        for range in [
            "range 00000007 --consistency l --conns 2 --clients 10 --total 500",
            "range 00000007 --consistency s --conns 2 --clients 10 --total 500",
            "range 0000001 --prefix --limit 3 --consistency s --clients 4 --total 200",
        ] {
            let total = range.rsplit(' ').next().unwrap().parse().unwrap();
            run_lean(&endpoint, range, total).await;
        }
        // --rate paces the lean client too: 100 requests at 200/s take at least 495 ms (the
        // 100th slot), where unpaced they take a few milliseconds here.
        let paced = "range 00000007 --clients 10 --total 100 --rate 200";
        let outcome = run_lean(&endpoint, paced, 100).await;
        assert!(
            outcome.elapsed >= Duration::from_millis(450),
            "{:?}",
            outcome.elapsed
        );
    });
}
