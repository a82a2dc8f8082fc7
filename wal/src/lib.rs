//! Basalt's write-ahead log: segmented, checksummed, group-committed.
//!
//! A write is acknowledged only once its record is on disk, and an fdatasync costs from tens of
//! microseconds to milliseconds, so one fdatasync must serve many writers: appends that arrive
//! while a sync is in flight form the next batch, written with one O_DIRECT write (io_uring, on a
//! glommio executor) that is durable when it completes: segment files are opened O_DSYNC, so the
//! kernel flushes the device cache as part of the write. (A separate fdatasync cannot be run
//! inline by io_uring: it is handed to a kernel worker thread, one more thread hop per batch,
//! which cost ~40 % of a lone appender's latency.) Segments are pre-written before use so that
//! the sync never has to commit filesystem metadata on the hot path.
//!
//! The log knows nothing about raft's meaning: it stores opaque entries under monotonic indices,
//! plus small metadata (raft's hard state) that is written in the same batches as the entries.
//! Recovery truncates a torn final batch and refuses to open on corruption anywhere else.
#![deny(unsafe_code)]

mod device_probe;
mod error;
mod fault;
mod inspect;
mod layout;
mod log;
mod options;
mod recovery;
mod segment;
mod segment_reader;
mod spare_pool;
mod wait_list;

pub use error::{WalError, WalResult};
pub use fault::FaultInjector;
pub use inspect::{inspect, Inspected, InspectedRecord, TornTail};
pub use layout::{record_bytes, BLOCK_BYTES, RECORD_HEADER_BYTES};
pub use log::{Queued, RecoveryReport, Wal, WalMetrics, WalStats};
pub use options::WalOptions;
