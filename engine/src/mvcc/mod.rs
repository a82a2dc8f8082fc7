//! etcd's MVCC model over the B+tree tables: revisions, the key index (records without values),
//! the change log (revision → key and value), ranges, writes, txns, compaction, event replay,
//! the key-space hash and the check that index and log agree.

pub(crate) mod check;
pub(crate) mod compact;
pub(crate) mod events;
pub(crate) mod hash;
#[cfg(test)]
mod index_log_tests;
pub(crate) mod keys;
pub(crate) mod lease;
pub(crate) mod log;
pub(crate) mod read;
pub(crate) mod read_txn;
pub(crate) mod record;
pub(crate) mod response_budget;
pub(crate) mod response_memory;
pub(crate) mod state;
pub(crate) mod txn_check;
pub mod types;
pub(crate) mod write;
