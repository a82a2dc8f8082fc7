//! basalt-engine: Basalt's storage engine — a copy-on-write B+tree on a memory-mapped file,
//! with etcd's MVCC model on top. A pure library: no sockets, no raft, no async runtime.
//!
//! Layers, bottom up:
//! - [`pager`]: the file as 4 KiB pages, two checksummed meta pages, the page allocator and
//!   the memory map and pwritev (the only `unsafe` code);
//! - `btree`: copy-on-write B+tree nodes in slotted pages, headerless value runs for large
//!   values (length and checksum in the leaf entry);
//! - `db`: tables, read snapshots (`Send`, lock-free), the single writer and its commit;
//! - `mvcc`: revisions, the key index (records without values), the change log (revision →
//!   key and value), Range/Put/DeleteRange/Txn, compaction, events, hash;
//! - [`Engine`]: the API the server calls.

#![deny(unsafe_op_in_unsafe_fn)]

mod btree;
pub(crate) mod db;
mod engine;
mod error;
pub mod file_lock;
#[cfg(test)]
mod file_lock_tests;
mod mvcc;
pub mod pager;

pub use btree::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
pub use db::check::CheckReport;
pub use db::defrag::DefragReport;
pub use db::snapshot::Snapshot;
#[doc(hidden)]
pub use db::write::crash_point;
pub use engine::{AuthTable, Engine, ReadView, WriteBatch, COMPACT_STEP_BUDGET};
pub use error::{Error, Result};
pub use mvcc::keys::Revision;
pub use mvcc::lease::Lease;
pub use mvcc::read_txn::is_read_only as is_read_only_txn;
pub use mvcc::response_budget::{ResponseBudget, KEY_VALUE_OVERHEAD_BYTES};
pub use mvcc::response_memory::{ResponseMemory, ResponseMemoryHold, TAKE_CHUNK_BYTES};
pub use mvcc::types::*;
