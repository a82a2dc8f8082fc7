//! `basalt-bench engine`: storage engine micro-benchmark (lands with the engine issue).

/// Arguments of `basalt-bench engine`.
#[derive(clap::Args)]
pub struct EngineArgs {}

/// Runs the engine benchmark.
pub fn run(_args: EngineArgs) -> Result<(), String> {
    Err("the engine benchmark lands with the storage engine".into())
}
