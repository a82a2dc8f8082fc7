//! etcd's MVCC model over the B+tree tables: revisions, the key index, ranges, writes, txns,
//! compaction, event replay and the key-space hash.

pub(crate) mod compact;
pub(crate) mod events;
pub(crate) mod hash;
pub(crate) mod keys;
pub(crate) mod lease;
pub(crate) mod read;
pub(crate) mod read_txn;
pub(crate) mod record;
pub(crate) mod state;
pub(crate) mod txn_check;
pub mod types;
pub(crate) mod write;
