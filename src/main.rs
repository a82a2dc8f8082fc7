//! `basalt`: the etcd-compatible server binary. It reads etcd's flags, `ETCD_*` variables or
//! config file, then runs the member.

use std::process::ExitCode;

use basalt::config::{self, Invocation};
use basalt::server::ServerError;

/// mimalloc: per-thread heaps with cheap frees from other threads. glibc's malloc took ~22 % of
/// a member's CPU under put load, most of it in bin upkeep for buffers one core allocates and
/// another frees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // The flags are checked at every start (etcd checks them only at bootstrap); a data
    // directory's stored identity wins over them after its first start.
    if let Err(error) = config.bootstrap() {
        eprintln!("basalt: {error}");
        return ExitCode::from(error.exit_code() as u8);
    }
    raise_open_files_limit();
    basalt::server::fail_stop::install_fail_stop_panic_hook();
    match basalt::server::run(*config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("basalt: {error}");
            let status = match &error {
                ServerError::Config(config_error) => config_error.exit_code(),
                _ => 1,
            };
            ExitCode::from(status as u8)
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for etcd (since
/// Go 1.19): every client connection and watcher stream holds a descriptor, and a member that
/// runs out refuses clients a soft limit of 1024 would never have let in. Failure leaves the
/// limit as it was; the member still runs.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit; getrlimit writes exactly one.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit with soft <= hard, read just above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
}
