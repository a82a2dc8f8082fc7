//! `basalt`: the etcd-compatible server binary. It reads etcd's flags, `ETCD_*` variables or
//! config file, then runs the member.

use std::process::ExitCode;

use basalt::config::{self, Invocation};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Variables whose name or value is not UTF-8 cannot be etcd settings; skip them.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let config = match config::load(&args, &env) {
        Ok(Invocation::Serve(config)) => config,
        Ok(Invocation::Help) => {
            print!("{}", config::help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            if error.is_usage_error() {
                eprintln!("basalt: {error}\nRun 'basalt --help' for the flags basalt accepts.");
            } else {
                eprintln!("basalt: error verifying flags, {error}. See 'basalt --help'.");
            }
            return ExitCode::from(error.exit_code() as u8);
        }
    };
    for warning in &config.warnings {
        eprintln!("basalt: warning: {warning}");
    }
    // etcd checks --initial-cluster only when it bootstraps a fresh data directory; basalt
    // does not store its member and cluster IDs yet, so every start derives them from the
    // flags and checks them. More than one member is refused (see `one_member_bootstrap`).
    if let Err(error) = config.one_member_bootstrap() {
        eprintln!("basalt: {error}");
        return ExitCode::from(error.exit_code() as u8);
    }
    match basalt::server::run(*config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("basalt: {error}");
            ExitCode::from(1)
        }
    }
}
