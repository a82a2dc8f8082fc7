//! The one error type of the engine.

use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
///
/// The `Compacted`, `FutureRevision`, `KeyNotFound` and `DuplicateKey` texts are the ones etcd
/// users already grep for; the server maps them to gRPC codes at the edge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call on the data file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A page failed its checksum or structural check; the engine refuses to use it.
    #[error("corrupt page {page} in {path}: {reason}")]
    Corrupt {
        path: PathBuf,
        page: u64,
        reason: String,
    },
    /// The file is not a basalt database (bad magic or version) or is shorter than its meta says.
    #[error("{path} is not a usable basalt database: {reason}")]
    BadFile { path: PathBuf, reason: String },
    /// The requested revision has been compacted away.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision is newer than the current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A txn writes the same key twice (or puts a key it also deletes).
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// An empty key was given where etcd requires one.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// The key is longer than the B+tree can hold in a branch page.
    #[error("etcdserver: key is too large ({len} bytes encoded, limit {limit})")]
    KeyTooLarge { len: usize, limit: usize },
    /// The value is larger than the engine's limit.
    #[error("etcdserver: request is too large ({len} bytes, limit {limit})")]
    ValueTooLarge { len: usize, limit: usize },
    /// A write was given where only reads are allowed (a txn evaluated on a read snapshot).
    #[error("the request writes; it must go through the writer")]
    NotReadOnly,
    /// A put names a lease that does not exist, or a revoke names an unknown lease.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant names a lease id that exists.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// Writers kept publishing faster than a durable view could be pinned.
    #[error("the database is too busy to pin a durable commit; try again")]
    Busy,
    /// A response passed its byte budget (grpc-go's words for a message over its send limit).
    #[error("grpc: trying to send message larger than max ({at_least} vs. {limit})")]
    ResponseTooLarge { at_least: usize, limit: usize },
    /// The member's responses together hold their member-wide bound (`ResponseMemory`); the
    /// read, refused at `needed_bytes`, may be tried again once there is room.
    #[error("etcdserver: too many response bytes held on this member")]
    ResponseMemoryFull { needed_bytes: usize },
    /// A previous error left this write batch half-applied; it can only be dropped.
    #[error("write batch is poisoned by an earlier error and cannot be used or committed")]
    Poisoned,
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;
