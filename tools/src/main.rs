//! `basalt-util`: offline work on a stopped member's files, with `etcdutl`'s commands and
//! flags where etcdutl has them: `snapshot status`, `snapshot restore`, `defrag`, and basalt's
//! `check`, `migrate` and `wal dump` (etcd's `etcd-dump-logs`).

mod bbolt;
mod check;
mod defrag;
mod human_size;
mod migrate;
mod snapshot_file;
mod snapshot_restore;
mod snapshot_status;
mod stopped_member;
mod wal_dump;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "basalt-util",
    version,
    about = "Offline utilities for basalt's data files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Snapshot files (written by `etcdctl snapshot save` against basalt)
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Defragments the database of a stopped member
    Defrag {
        /// The member's data directory
        #[arg(long = "data-dir")]
        data_dir: PathBuf,
    },
    /// Creates the data directory of a new one-member cluster from an etcd snapshot file,
    /// keeping every key's revisions and the leases
    Migrate(migrate::MigrateArgs),
    /// Checks every page, key and revision of a stopped member's database
    Check {
        /// The member's data directory
        #[arg(long = "data-dir")]
        data_dir: PathBuf,
    },
    /// The member's write-ahead log
    Wal {
        #[command(subcommand)]
        command: WalCommand,
    },
}

#[derive(Subcommand)]
enum WalCommand {
    /// Prints every WAL record: offset, term, index, type and what the entry does
    Dump(wal_dump::DumpArgs),
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Prints the hash, revision, total keys and size of a snapshot file
    Status {
        file: PathBuf,
        /// Output format
        #[arg(short = 'w', long = "write-out", value_enum, default_value = "simple")]
        write_out: OutputFormat,
    },
    /// Creates the data directory of a new one-member cluster from a snapshot file
    Restore(snapshot_restore::RestoreArgs),
}

/// etcdutl's `--write-out` choices that make sense for a status line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormat {
    Simple,
    Json,
    Table,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Snapshot {
            command: SnapshotCommand::Status { file, write_out },
        } => snapshot_status::run(&file, write_out),
        Command::Snapshot {
            command: SnapshotCommand::Restore(args),
        } => snapshot_restore::run(&args),
        Command::Defrag { data_dir } => defrag::run(&data_dir),
        Command::Check { data_dir } => check::run(&data_dir),
        Command::Migrate(args) => migrate::run(&args),
        Command::Wal {
            command: WalCommand::Dump(args),
        } => wal_dump::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // etcdutl's way of failing.
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where a member keeps its database inside its data directory (etcd's layout).
pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("snap").join("db")
}
