//! The one error type of the write-ahead log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in the log. Cloneable, because one storage fault is handed to
/// every appender that was waiting on it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WalError {
    /// A storage operation failed. The log stops accepting appends after this (fail-stop): after a
    /// failed write or fdatasync the state of the page cache and the disk is unknown.
    #[error("wal: {operation} failed on {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: Arc<io::Error>,
    },

    /// The disk is full and no pre-written segment is left to roll onto.
    #[error("wal: no space left for a new segment in {}: {source}", dir.display())]
    NoSpace {
        dir: PathBuf,
        source: Arc<io::Error>,
    },

    /// The files on disk are damaged somewhere a crash cannot explain.
    #[error("wal: corrupt log: {} at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// An earlier storage fault stopped the log; it refuses every further append.
    #[error("wal: the log stopped after a storage fault and refuses appends: {0}")]
    Stopped(Arc<WalError>),

    /// A record is larger than the log accepts.
    #[error("wal: record of {bytes} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge { bytes: usize, limit: usize },

    /// The caller's metadata is larger than the log accepts.
    #[error("wal: metadata of {bytes} bytes exceeds the limit of {limit} bytes")]
    MetadataTooLarge { bytes: usize, limit: usize },

    /// An index outside the readable range was asked for.
    #[error("wal: index {index} is outside the log's readable range [{first}, {last}]")]
    OutOfRange { index: u64, first: u64, last: u64 },

    /// The log was closed.
    #[error("wal: the log is closed")]
    Closed,

    /// Options that cannot work together.
    #[error("wal: invalid options: {0}")]
    InvalidOptions(String),
}

impl WalError {
    /// Wraps an I/O error of `operation` on `path`.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> WalError {
        WalError::Io {
            operation,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Wraps a glommio error of `operation` on `path`.
    pub(crate) fn glommio(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: glommio::GlommioError<()>,
    ) -> WalError {
        WalError::io(operation, path, io_error_of(source))
    }

    /// Whether this is a storage fault that must stop the log.
    pub fn is_storage_fault(&self) -> bool {
        matches!(self, WalError::Io { .. } | WalError::NoSpace { .. })
    }
}

/// Result alias of the log.
pub type WalResult<T> = Result<T, WalError>;

/// The kernel's error inside a glommio error, so its errno (EIO, ENOSPC) stays visible.
pub(crate) fn io_error_of(error: glommio::GlommioError<()>) -> io::Error {
    match error {
        glommio::GlommioError::IoError(source) => source,
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}
