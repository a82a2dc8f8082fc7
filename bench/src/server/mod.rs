//! Server workloads speaking the etcd v3 API (land with the bench harness issue).

/// Server workload subcommands.
#[derive(clap::Subcommand)]
pub enum ServerCommand {}

/// Runs one server workload.
pub fn run(command: ServerCommand) -> Result<(), String> {
    match command {}
}
