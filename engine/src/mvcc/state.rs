//! The MVCC store's small persistent state, kept in the Meta table and written in the same
//! B+tree commit as the data it describes.

use crate::db::{Table, Tables};
use crate::error::Result;

const CURRENT_REVISION: &[u8] = b"current_revision";
/// The revision of an empty store, as etcd's.
pub(crate) const INITIAL_REVISION: i64 = 1;
const COMPACT_REVISION: &[u8] = b"compact_revision";
pub(crate) const COMPACT_CURSOR: &[u8] = b"compact_cursor";
pub(crate) const APPLIED_INDEX: &[u8] = b"applied_index";

/// Revisions and progress markers of the store at one snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MvccState {
    /// Newest main revision written (0 in an empty store).
    pub(crate) current_revision: i64,
    /// Reads below this revision fail with the compacted error.
    pub(crate) compact_revision: i64,
    /// Physical compaction up to `compact_revision` still has to visit revisions after this
    /// main revision; `None` when it is finished.
    pub(crate) compact_cursor: Option<(i64, i64)>,
    /// Index of the last raft entry whose effects this snapshot holds.
    pub(crate) applied_index: u64,
}

fn read_u64<T: Tables>(tables: &T, key: &[u8]) -> Result<Option<u64>> {
    let Some(bytes) = tables.get(Table::Meta, key)? else {
        return Ok(None);
    };
    match bytes.try_into() {
        Ok(array) => Ok(Some(u64::from_le_bytes(array))),
        Err(_) => Err(tables.view().corrupt(
            0,
            format!(
                "meta table value {:?} has {} bytes",
                String::from_utf8_lossy(key),
                bytes.len()
            ),
        )),
    }
}

impl MvccState {
    /// Loads the state of a snapshot.
    pub(crate) fn load<T: Tables>(tables: &T) -> Result<MvccState> {
        let cursor = match tables.get(Table::Meta, COMPACT_CURSOR)? {
            Some(bytes) if bytes.len() == 16 => Some((
                i64::from_le_bytes(bytes[..8].try_into().unwrap()),
                i64::from_le_bytes(bytes[8..].try_into().unwrap()),
            )),
            Some(_) => return Err(tables.view().corrupt(0, "bad compact cursor")),
            None => None,
        };
        Ok(MvccState {
            // etcd's store starts at revision 1 (its first write gets 2); clients see absolute
            // revisions, so a fresh basalt starts where a fresh etcd does.
            current_revision: read_u64(tables, CURRENT_REVISION)?.unwrap_or(INITIAL_REVISION as u64)
                as i64,
            compact_revision: read_u64(tables, COMPACT_REVISION)?.unwrap_or(0) as i64,
            compact_cursor: cursor,
            applied_index: read_u64(tables, APPLIED_INDEX)?.unwrap_or(0),
        })
    }

    /// Writes the fields that differ from `old`.
    pub(crate) fn store(&self, old: &MvccState, txn: &mut crate::db::WriteTxn) -> Result<()> {
        if self.current_revision != old.current_revision {
            txn.put(
                Table::Meta,
                CURRENT_REVISION,
                &(self.current_revision as u64).to_le_bytes(),
            )?;
        }
        if self.compact_revision != old.compact_revision {
            txn.put(
                Table::Meta,
                COMPACT_REVISION,
                &(self.compact_revision as u64).to_le_bytes(),
            )?;
        }
        if self.compact_cursor != old.compact_cursor {
            match self.compact_cursor {
                Some((main, sub)) => {
                    let mut bytes = main.to_le_bytes().to_vec();
                    bytes.extend_from_slice(&sub.to_le_bytes());
                    txn.put(Table::Meta, COMPACT_CURSOR, &bytes)?;
                }
                None => {
                    txn.delete(Table::Meta, COMPACT_CURSOR)?;
                }
            }
        }
        if self.applied_index != old.applied_index {
            txn.put(
                Table::Meta,
                APPLIED_INDEX,
                &self.applied_index.to_le_bytes(),
            )?;
        }
        Ok(())
    }
}
