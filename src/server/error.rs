//! Why the member could not start, or stopped serving: one error type, printed by `main` and
//! mapped to the process's exit status there.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// A reason the member did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration does not describe a member basalt can run.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The data directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The database file could not be opened (or failed its checks).
    #[error("cannot open the database {}: {source}", path.display())]
    OpenDatabase {
        path: PathBuf,
        source: basalt_engine::Error,
    },

    /// The write-ahead log could not be opened or recovered.
    #[error("cannot open the wal {}: {source}", path.display())]
    OpenWal {
        path: PathBuf,
        source: basalt_wal::WalError,
    },

    /// A `--log-outputs` file could not be opened.
    #[error("cannot open log output {}: {source}", path.display())]
    LogOutput {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A listen client URL cannot be served.
    #[error("listen client URL {url}: {reason}")]
    ClientUrl { url: String, reason: String },

    /// A listen peer URL cannot be resolved or bound (e.g. another process holds the port).
    #[error("listen peer URL {url}: {reason}")]
    PeerUrl { url: String, reason: String },

    /// A client listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: basalt_net::NetError,
    },

    /// An executor thread could not be started.
    #[error("cannot start executor {name}: {reason}")]
    Executor { name: String, reason: String },

    /// io_uring cannot be used by this process (seccomp, sysctl, kernel).
    #[error("io_uring is not available: {0}")]
    IoUringUnavailable(String),

    /// A `BASALT_*` environment setting is malformed.
    #[error("{name} {reason}, got {value:?}")]
    Environment {
        name: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The TLS settings or files cannot be used.
    #[error(transparent)]
    Tls(#[from] basalt_net::TlsError),

    /// `--auth-token` cannot be used (an unknown type, a missing or unreadable key).
    #[error("invalid --auth-token: {0}")]
    AuthToken(String),

    /// The member could not start from what its log and database hold.
    #[error("the member cannot start: {0}")]
    Member(String),

    /// Serving clients failed on an executor.
    #[error("serving clients failed: {0}")]
    Serving(basalt_net::NetError),

    /// Another executor failed first (its error is the one reported).
    #[error("an executor failed to start")]
    PeerExecutorFailed,
}
