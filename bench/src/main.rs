//! `basalt-bench`: every performance figure the project claims comes from this one tool.
//!
//! Subcommands: `wal` (write-ahead log micro-benchmark), `engine` (storage engine
//! micro-benchmark), `first-read` (time from a server's start to its first answered read),
//! and the server workloads that speak the etcd v3 API to any endpoint.

mod engine_bench;
mod first_read;
mod latency;
mod server;
mod wal_bench;

use clap::{Parser, Subcommand};

/// Command line of `basalt-bench`.
#[derive(Parser)]
#[command(
    name = "basalt-bench",
    version,
    about = "Benchmarks for basalt and etcd"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write-ahead log micro-benchmark: group-commit appends vs the raw fdatasync floor.
    Wal(wal_bench::WalArgs),
    /// Write-ahead log recovery: time to reopen a large log.
    WalRecovery(wal_bench::WalRecoveryArgs),
    /// Storage engine micro-benchmark (basalt-engine side by side with redb).
    Engine(engine_bench::EngineArgs),
    /// Starts a server and measures the time until it first answers a linearizable read.
    FirstRead(first_read::FirstReadArgs),
    #[command(flatten)]
    Server(server::ServerCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wal(args) => wal_bench::run(args),
        Command::WalRecovery(args) => wal_bench::run_recovery(args),
        Command::Engine(args) => engine_bench::run(args),
        Command::FirstRead(args) => first_read::run(args),
        Command::Server(command) => server::run(command),
    };
    if let Err(error) = result {
        eprintln!("basalt-bench: {error}");
        std::process::exit(1);
    }
}
