//! `first-read`: how long a server takes, from the moment its process starts, to answer a
//! linearizable read of a key with that key's value — the "restart after kill -9 serves reads
//! again in under 1 s" figure.
//!
//! The tool starts the server itself (everything after `--`), so the clock starts at the spawn
//! and not when some script got round to polling. The server is left running (its pid is
//! printed) so the caller can measure its memory afterwards and stop it.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

/// Flags of `basalt-bench first-read`.
#[derive(clap::Args, Debug)]
pub struct FirstReadArgs {
    /// The server's client endpoint (host:port).
    #[arg(long, default_value = "127.0.0.1:2379")]
    pub endpoint: String,
    /// The key to read; the server counts as serving once the read returns it.
    #[arg(long)]
    pub key: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Where the server's stdout and stderr go.
    #[arg(long, default_value = "/dev/null")]
    pub server_log: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// The server command line.
    #[arg(last = true, required = true)]
    pub server: Vec<String>,
}

/// Pause between attempts: short next to the figures measured (tens of milliseconds and up).
const RETRY_PAUSE: Duration = Duration::from_millis(2);
/// One attempt's limit, so a server that accepts but stalls is retried rather than waited on.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// Starts the server, polls until the first read succeeds, prints the elapsed time.
pub fn run(args: FirstReadArgs) -> Result<(), String> {
    let (program, program_args) = args
        .server
        .split_first()
        .ok_or("give the server command after --")?;
    let log = File::create(&args.server_log)
        .map_err(|error| format!("cannot create {}: {error}", args.server_log.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|error| format!("cannot duplicate the log file handle: {error}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(program_args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|error| format!("cannot start {program}: {error}"))?;
    let deadline = started + Duration::from_secs(args.timeout);
    let (attempts, value_bytes) = runtime.block_on(async {
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            if let Ok(Some(bytes)) = read_once(&args.endpoint, &args.key).await {
                return Ok((attempts, bytes));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the server exited before serving: {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no read of {:?} succeeded within {} s",
                    args.key, args.timeout
                ));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    })?;
    let elapsed = started.elapsed();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "workload": "first-read",
                "ready_ms": elapsed.as_secs_f64() * 1e3,
                "attempts": attempts,
                "value_bytes": value_bytes,
                "pid": child.id(),
            })
        );
    } else {
        println!(
            "first-read: {:.1} ms after start ({attempts} attempts, value {value_bytes} bytes), server pid {}",
            elapsed.as_secs_f64() * 1e3,
            child.id()
        );
    }
    Ok(())
}

/// One linearizable read: `Ok(Some(value length))` when the key came back.
async fn read_once(endpoint: &str, key: &str) -> Result<Option<usize>, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(ATTEMPT_TIMEOUT)
        .with_timeout(ATTEMPT_TIMEOUT);
    let mut client = Client::connect([endpoint], Some(options)).await?;
    let response = client.get(key, None).await?;
    Ok(response.kvs().first().map(|kv| kv.value().len()))
}
