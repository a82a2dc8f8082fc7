//! `basalt-bench wal`: group-commit appends against the raw fdatasync floor.

/// Arguments of `basalt-bench wal`.
#[derive(clap::Args)]
pub struct WalArgs {}

/// Runs the WAL benchmark.
pub fn run(_args: WalArgs) -> Result<(), String> {
    Err("not yet".into())
}
