//! The hash of the key space at a revision (what etcd's HashKV returns), for comparing members.
//!
//! crc32 over (index key, record, value) of every revision ≤ `rev` that a finished compaction
//! keeps. Revisions a compaction in progress has not removed yet are skipped by rule, so two
//! members agree whatever their compaction progress. It is not byte-compatible with etcd's hash
//! (etcd hashes its own protobuf encoding); it only needs to agree between basalt members —
//! including members of different basalt versions, so it hashes the logical bytes, not the
//! table layout: record ++ value is what format 1 stored as one index value, and the result is
//! the same now that the value lives in the change log (`tests/hash_pin.rs` pins it).

use std::ops::Bound;

use super::compact::is_dropped;
use super::keys::{encode_user_key, index_key, Revision, REVISION_BYTES};
use super::log::{self, Entry};
use super::read::resolve_revision;
use super::types::HashKv;
use crate::db::{Table, Tables};
use crate::error::Result;

/// The hash at `rev` (0 = current).
pub(crate) fn hash_kv<T: Tables>(
    tables: &T,
    rev: i64,
    current: i64,
    compacted: i64,
) -> Result<HashKv> {
    let rev = resolve_revision(rev, current, compacted)?;
    let end = Revision {
        main: rev,
        sub: i64::MAX,
    };
    let mut changes: Vec<(Revision, Entry)> = Vec::new();
    log::scan(tables, Bound::Unbounded, end, &mut |rev, entry| {
        changes.push((rev, entry));
        Ok(true)
    })?;
    let mut hasher = crc32fast::Hasher::new();
    for (rev, entry) in changes {
        let encoded = encode_user_key(entry.key);
        if rev.main <= compacted && is_dropped(tables, &encoded, rev, compacted)? {
            continue;
        }
        let index = index_key(&encoded, rev);
        let record = tables.get(Table::Index, &index)?.ok_or_else(|| {
            tables
                .view()
                .corrupt(0, format!("revision {rev:?} has no index entry"))
        })?;
        hasher.update(&index);
        hasher.update(record);
        hasher.update(entry.value);
    }
    Ok(HashKv {
        hash: hasher.finalize(),
        compact_revision: compacted,
        header_revision: current,
    })
}

/// etcd's Hash (of the whole backend): crc32 over (table number, key length, key, value length,
/// value) of every entry of every table, in table then key order. It hashes logical content,
/// not pages, so two members with the same data agree whatever their page layout; like etcd
/// (which skips its consistent index), it skips what is local progress rather than data: the
/// applied raft index and the cursor of a compaction still running. Unlike HashKV it hashes the
/// tables as stored, so its result changes with the file format (format 2 moved values from the
/// key index into the change log); members on one format agree. Change log entries are hashed
/// in the format 3 layout whichever layout they are stored in: a member upgraded from format 2
/// holds legacy entries for the revisions it applied before the upgrade, and its peers hold the
/// same revisions in either layout depending on when they were upgraded.
pub(crate) fn hash_store<T: Tables>(tables: &T) -> Result<u32> {
    use super::state::{APPLIED_INDEX, COMPACT_CURSOR};
    let mut hasher = crc32fast::Hasher::new();
    // Every table, in slot order.
    for table in Table::ALL {
        tables.scan(
            table,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, v| {
                if table == Table::Meta && (k == APPLIED_INDEX || k == COMPACT_CURSOR) {
                    return Ok(true);
                }
                hasher.update(&[table as u8]);
                if table == Table::Revisions {
                    let (revision, entry) = log::parse(tables, k, v)?;
                    let key_len = REVISION_BYTES + entry.key.len();
                    hasher.update(&(key_len as u32).to_le_bytes());
                    hasher.update(&revision.to_bytes());
                    hasher.update(entry.key);
                    hasher.update(&(entry.value.len() as u32).to_le_bytes());
                    hasher.update(entry.value);
                    return Ok(true);
                }
                hasher.update(&(k.len() as u32).to_le_bytes());
                hasher.update(k);
                hasher.update(&(v.len() as u32).to_le_bytes());
                hasher.update(v);
                Ok(true)
            },
        )?;
    }
    Ok(hasher.finalize())
}
