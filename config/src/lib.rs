//! The server's configuration: etcd's flags, `ETCD_*` environment variables and YAML config
//! file, read into one validated [`Config`], plus etcd's member and cluster ID derivation.
//!
//! Precedence is etcd's: with `--config-file` (or `ETCD_CONFIG_FILE`) the file alone is read
//! and every other flag and variable is ignored; otherwise a flag beats the default and a
//! variable beats the default, and a flag and variable for the same setting is an error.
//!
//! Reading is pure: [`load`] takes the arguments and the environment as values, so tests need
//! neither a process nor a mutated environment.
//!
//! Where basalt deliberately differs from etcd 3.5:
//! - defaults: data in `${name}.basalt`; listen on `127.0.0.1` (the socket etcd's `localhost`
//!   binds) while advertising etcd's `localhost` URLs, so the default member ID is etcd's;
//! - `--logger=capnslog` (etcd 3.4's default, an error in 3.5) is accepted and means plain-text
//!   logs, so 3.4-era unit files keep working;
//! - a config file may give a duration as text ("10m") besides etcd's nanoseconds, and a scalar
//!   where etcd wants a string; an unknown key is an error (etcd ignores it);
//! - negative durations are refused (Go accepts them and etcd misbehaves on them);
//! - flags basalt cannot honour are accepted at their default only (`--enable-v2=false`,
//!   `--unsafe-no-fsync=false`, no discovery) and flags without effect draw a warning;
//! - no default-host detection for `0.0.0.0` listen URLs; `basalt`'s own flags (`--cores`,
//!   `--reported-version`) read `BASALT_*` variables.

mod args;
mod bootstrap;
mod env;
mod error;
mod file;
mod go_values;
mod help;
mod ids;
mod resolve;
mod settings;
mod spec;
mod summary;
mod urls;
mod validate;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

pub use bootstrap::{Bootstrap, BootstrapMember};
pub use error::{ConfigError, Origin};
pub use go_values::format_duration;
pub use go_values::parse_duration as parse_go_duration;
pub use help::{help_text, version_text};
pub use ids::{cluster_id, member_id, Id};
pub use spec::{FlagSpec, Support, FLAGS};
pub use urls::{InitialCluster, Scheme, Url};

/// What the command line asked `basalt` to do.
#[derive(Debug)]
pub enum Invocation {
    /// Serve with this configuration.
    Serve(Box<Config>),
    /// Print `--help` and exit 0.
    Help,
    /// Print this `--version` text and exit 0.
    Version(String),
}

/// Reads the arguments after the program name and the environment into what to do.
pub fn load(args: &[String], env: &[(String, String)]) -> Result<Invocation, ConfigError> {
    let line = args::parse(args)?;
    if line.help {
        return Ok(Invocation::Help);
    }
    if line.version {
        // Like etcd, --version answers before any configuration is read; only the version
        // basalt reports is taken from the command line or environment.
        let reported_version = line
            .last("reported-version")
            .map(str::to_string)
            .or_else(|| env::reported_version(env))
            .unwrap_or_else(|| {
                spec::lookup("reported-version")
                    .map_or("", |s| s.default)
                    .into()
            });
        return Ok(Invocation::Version(version_text(&reported_version)));
    }
    // An empty --config-file means none, as in etcd.
    let config_file = line
        .config_file
        .clone()
        .filter(|path| !path.is_empty())
        .or_else(|| env::config_file(env));
    let mut settings = match config_file {
        Some(path) => settings::Settings::from_file(PathBuf::from(path), &line, env)?,
        None => settings::Settings::from_command_line_and_env(&line, env)?,
    };
    // Said whichever source the settings came from: the variable is set either way.
    settings.warnings.extend(env::obsolete_warnings(env));
    let config = resolve::resolve(&settings)?;
    validate::validate(&config, &settings)?;
    Ok(Invocation::Serve(Box::new(config)))
}

/// Where the configuration was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Command-line flags and environment variables over the defaults.
    FlagsAndEnv,
    /// The YAML file alone (flags and variables ignored, as in etcd).
    File(PathBuf),
}

/// Whether this member starts a new cluster or joins a running one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// Bootstrap a new cluster from `--initial-cluster`.
    New,
    /// Join a cluster that already runs (the member was added with `member add`).
    Existing,
}

/// This member: its name and where its data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberConfig {
    /// `--name`.
    pub name: String,
    /// `--data-dir` (default `${name}.basalt`).
    pub data_dir: PathBuf,
    /// `--wal-dir`; `None` keeps the WAL inside the data directory.
    pub wal_dir: Option<PathBuf>,
    /// `--snapshot-count`: applied entries between raft snapshots.
    pub snapshot_count: u64,
    /// `--max-snapshots`: snapshot files kept; 0 keeps all.
    pub max_snapshot_files: u64,
    /// `--max-wals`: WAL files kept; 0 keeps all.
    pub max_wal_files: u64,
}

/// Where this member listens and what it tells others to dial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlConfig {
    /// `--listen-client-urls`.
    pub listen_client: Vec<Url>,
    /// `--advertise-client-urls`.
    pub advertise_client: Vec<Url>,
    /// `--listen-peer-urls`.
    pub listen_peer: Vec<Url>,
    /// `--initial-advertise-peer-urls`.
    pub advertise_peer: Vec<Url>,
    /// `--listen-metrics-urls` (empty: metrics only on the client URLs).
    pub listen_metrics: Vec<Url>,
}

/// How the cluster is formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `--initial-cluster`, after etcd's rule that a lone `--name` renames the default entry.
    pub initial_cluster: InitialCluster,
    /// `--initial-cluster-state`.
    pub state: ClusterState,
    /// `--initial-cluster-token`: hashed into every member ID.
    pub token: String,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--pre-vote`.
    pub pre_vote: bool,
    /// `--experimental-max-learners`.
    pub max_learners: u64,
}

/// raft's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    /// `--heartbeat-interval`, also raft's tick.
    pub heartbeat_interval: Duration,
    /// `--election-timeout` (at least 5 heartbeats, at most 50 s).
    pub election_timeout: Duration,
    /// `--experimental-snapshot-catchup-entries`: entries kept after a snapshot for followers.
    pub snapshot_catchup_entries: u64,
}

/// The backend quota (`--quota-backend-bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendQuota {
    /// Raise the NOSPACE alarm above this many bytes (0 in etcd means 2 GiB).
    Bytes(u64),
    /// A negative value: etcd disables the quota, and so does basalt.
    Disabled,
}

/// etcd's default backend quota, used when `--quota-backend-bytes` is 0.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Limits on what one request and one connection may ask of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `--quota-backend-bytes`.
    pub quota_backend: BackendQuota,
    /// `--max-request-bytes`.
    pub max_request_bytes: u64,
    /// `--max-txn-ops`.
    pub max_txn_ops: u64,
    /// `--max-concurrent-streams`.
    pub max_concurrent_streams: u32,
}

/// `--auto-compaction-mode` with `--auto-compaction-retention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Retention 0: never compact automatically.
    Disabled,
    /// Keep this much history (a plain number means hours, as in etcd).
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(u64),
}

/// Compaction settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Automatic compaction.
    pub auto: AutoCompaction,
    /// `--experimental-compaction-batch-limit`: revisions deleted per batch.
    pub batch_limit: u64,
    /// `--experimental-compaction-sleep-interval`: pause between batches.
    pub sleep_interval: Duration,
}

/// gRPC keepalive (`--grpc-keepalive-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcKeepalive {
    /// Minimum interval a client should wait between pings.
    pub min_time: Duration,
    /// Server-to-client ping interval; zero disables.
    pub interval: Duration,
    /// Wait for a ping answer before closing; zero disables.
    pub timeout: Duration,
}

/// Auth (`--auth-token`, `--bcrypt-cost`, `--auth-token-ttl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// `--auth-token`: `simple`, or `jwt,...` with its options (checked by the server).
    pub token: String,
    /// `--bcrypt-cost` (4 to 31).
    pub bcrypt_cost: u32,
    /// `--auth-token-ttl`: a simple token's lifetime after its last use.
    pub token_ttl: Duration,
}

/// TLS for one side (client or peer); paths as given, files are not opened here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Server certificate (`--cert-file` / `--peer-cert-file`).
    pub cert_file: Option<PathBuf>,
    /// Server key.
    pub key_file: Option<PathBuf>,
    /// Certificate presented when this member is the client.
    pub client_cert_file: Option<PathBuf>,
    /// Key presented when this member is the client.
    pub client_key_file: Option<PathBuf>,
    /// Require and verify client certificates.
    pub client_cert_auth: bool,
    /// CA bundle for verifying clients.
    pub trusted_ca_file: Option<PathBuf>,
    /// Certificate revocation list.
    pub crl_file: Option<PathBuf>,
    /// Generate a self-signed certificate when none is given.
    pub auto_tls: bool,
    /// Required CN of client certificates (peer side only).
    pub allowed_cn: Option<String>,
    /// Allowed hostname of client certificates.
    pub allowed_hostname: Option<String>,
    /// Skip the SAN check of client certificates (peer side only).
    pub skip_client_san_verification: bool,
}

impl TlsConfig {
    /// Whether a certificate and key were given.
    pub fn has_certificate(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// TLS settings shared by both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCommon {
    /// `--cipher-suites` (empty: the TLS library's defaults).
    pub cipher_suites: Vec<String>,
    /// `--tls-min-version`.
    pub min_version: String,
    /// `--tls-max-version` (`None`: the newest the library has).
    pub max_version: Option<String>,
    /// `--self-signed-cert-validity` in years, for `--auto-tls`.
    pub self_signed_cert_validity_years: u64,
}

/// The log format: etcd 3.5's `zap` writes JSON lines; `capnslog` (etcd 3.4) plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logger {
    /// JSON lines, one object per event, with etcd's field names.
    Zap,
    /// Human-readable lines.
    Capnslog,
}

/// Log severity threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Milestones and notable events (etcd's default).
    Info,
    /// Problems that do not stop the member.
    Warn,
    /// Failures.
    Error,
    /// Only what ends a request in a panic.
    Panic,
    /// Only what ends the process.
    Fatal,
}

/// Where log lines go (`--log-outputs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard error: `stderr`, and etcd's `default` outside systemd's journal.
    Stderr,
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `--logger`.
    pub logger: Logger,
    /// `--log-level`.
    pub level: LogLevel,
    /// `--log-outputs`, each target once, in the order given.
    pub outputs: Vec<LogOutput>,
}

/// Metrics and the HTTP side of the client port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservabilityConfig {
    /// `--metrics=extensive` adds histograms.
    pub extensive_metrics: bool,
    /// `--enable-grpc-gateway`: the JSON gateway on the client URLs.
    pub grpc_gateway: bool,
}

/// The `--experimental-*` settings basalt honours (those Kubernetes installers pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Experimental {
    /// Check the data against peers before serving.
    pub initial_corrupt_check: bool,
    /// Period of the cluster corruption check; zero disables.
    pub corrupt_check_time: Duration,
    /// Leader compares followers' hashes after compaction.
    pub compact_hash_check: bool,
    /// Period of that check.
    pub compact_hash_check_time: Duration,
    /// Leader checkpoints lease TTLs to followers.
    pub lease_checkpoint: bool,
    /// Checkpointed TTLs persist across restarts.
    pub lease_checkpoint_persist: bool,
    /// Period of watch progress notifications (kubeadm sets 5s).
    pub watch_progress_notify_interval: Duration,
    /// Log an apply slower than this.
    pub warning_apply_duration: Duration,
    /// Log a unary request slower than this.
    pub warning_unary_request_duration: Duration,
}

/// basalt's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasaltConfig {
    /// `--cores`: executors to run; `None` means one per available core.
    pub cores: Option<NonZeroUsize>,
    /// `--pin-cores`: each executor pinned to its own CPU.
    pub pin_cores: bool,
    /// `--reported-version`: the etcd version reported to clients.
    pub reported_version: String,
    /// `--max-watchers`: watchers over every client.
    pub max_watchers: u64,
    /// `--max-watch-streams`: Watch streams over every client.
    pub max_watch_streams: u64,
}

/// The validated configuration of one `basalt` member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Name, data and WAL directories, snapshot and file retention.
    pub member: MemberConfig,
    /// Listen and advertise URLs for clients, peers and metrics.
    pub urls: UrlConfig,
    /// Initial cluster, its state and token.
    pub cluster: ClusterConfig,
    /// Heartbeat and election timeout.
    pub raft: RaftTiming,
    /// Quota, request size, txn ops, streams.
    pub limits: Limits,
    /// Automatic compaction.
    pub compaction: CompactionConfig,
    /// gRPC keepalive.
    pub keepalive: GrpcKeepalive,
    /// TLS towards clients.
    pub client_tls: TlsConfig,
    /// TLS towards peers.
    pub peer_tls: TlsConfig,
    /// TLS settings shared by both sides.
    pub tls: TlsCommon,
    /// Logging.
    pub log: LogConfig,
    /// Metrics and the JSON gateway.
    pub observability: ObservabilityConfig,
    /// The honoured `--experimental-*` settings.
    pub experimental: Experimental,
    /// Auth tokens and password hashing.
    pub auth: AuthConfig,
    /// basalt's own settings.
    pub basalt: BasaltConfig,
    /// Where the settings came from.
    pub source: Source,
    /// What the operator should be told at start-up (ignored or ineffective settings).
    pub warnings: Vec<String>,
}

impl Config {
    /// The configuration `basalt` runs with when given no flags and no environment.
    pub fn defaults() -> Config {
        match load(&[], &[]) {
            Ok(Invocation::Serve(config)) => *config,
            other => unreachable!("the defaults are valid: {other:?}"),
        }
    }

    /// Checks `--initial-cluster` against this member the way etcd does before bootstrapping
    /// a new data directory, and derives the member and cluster IDs.
    pub fn bootstrap(&self) -> Result<Bootstrap, ConfigError> {
        bootstrap::plan(self)
    }

    /// The data directory of the WAL: `--wal-dir`, or `member/wal` inside the data directory
    /// (etcd's layout).
    pub fn wal_dir(&self) -> PathBuf {
        self.member
            .wal_dir
            .clone()
            .unwrap_or_else(|| self.member.data_dir.join("member").join("wal"))
    }
}
