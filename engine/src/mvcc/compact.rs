//! Compaction: after `compact(C)`, every revision ≤ C that is not the newest ≤ C of its key,
//! and every tombstone ≤ C, is physically removed — its key index record and its change log
//! entry, which holds its value — in bounded steps, so a huge compaction
//! never holds the writer for long. Progress is a cursor in the Meta table, committed with the
//! deletions, so a restart resumes where the last commit left off.

use std::ops::Bound;

use super::keys::{encode_user_key, index_key, Revision};
use super::log;
use super::record::Record;
use super::state::MvccState;
use crate::db::{Table, Tables};
use crate::error::{Error, Result};

/// Records `rev` as the compaction revision; reads below it fail from now on.
pub(crate) fn schedule(state: &mut MvccState, rev: i64) -> Result<()> {
    if rev <= state.compact_revision {
        return Err(Error::Compacted);
    }
    if rev > state.current_revision {
        return Err(Error::FutureRevision);
    }
    state.compact_revision = rev;
    state.compact_cursor = Some((0, 0));
    Ok(())
}

/// Whether the revision `rev` of the (encoded) key is dropped by a compaction at `compacted`:
/// it is a tombstone, or a newer revision ≤ `compacted` exists.
pub(crate) fn is_dropped<T: Tables>(
    tables: &T,
    encoded_key: &[u8],
    rev: Revision,
    compacted: i64,
) -> Result<bool> {
    let key = index_key(encoded_key, rev);
    let record = tables.get(Table::Index, &key)?.ok_or_else(|| {
        tables
            .view()
            .corrupt(0, format!("revision {rev:?} has no index entry"))
    })?;
    let record =
        Record::decode(record).ok_or_else(|| tables.view().corrupt(0, "malformed record"))?;
    if record.tombstone {
        return Ok(true);
    }
    let newest_kept = index_key(
        encoded_key,
        Revision {
            main: compacted,
            sub: i64::MAX,
        },
    );
    let mut newer = false;
    tables.scan(
        Table::Index,
        Bound::Excluded(&key),
        Bound::Included(&newest_kept),
        false,
        &mut |_, _| {
            newer = true;
            Ok(false)
        },
    )?;
    Ok(newer)
}

/// Visits up to `budget` revisions after the cursor; returns `true` when compaction is done.
pub(crate) fn step(
    txn: &mut crate::db::WriteTxn,
    state: &mut MvccState,
    budget: usize,
) -> Result<bool> {
    let Some((main, sub)) = state.compact_cursor else {
        return Ok(true);
    };
    let budget = budget.max(1);
    let compacted = state.compact_revision;
    let start = Revision { main, sub };
    let end = Revision {
        main: compacted,
        sub: i64::MAX,
    };
    let lower = if (main, sub) == (0, 0) {
        Bound::Included(start)
    } else {
        Bound::Excluded(start)
    };
    let mut batch: Vec<(Revision, Vec<u8>)> = Vec::new();
    log::scan(&*txn, lower, end, &mut |rev, entry| {
        batch.push((rev, entry.key.to_vec()));
        Ok(batch.len() < budget)
    })?;
    let mut doomed = Vec::new();
    for (rev, key) in &batch {
        let encoded = encode_user_key(key);
        if is_dropped(&*txn, &encoded, *rev, compacted)? {
            doomed.push((*rev, key, encoded));
        }
    }
    for (rev, key, encoded) in doomed {
        txn.delete(Table::Index, &index_key(&encoded, rev))?;
        log::delete(txn, rev, key)?;
    }
    let done = batch.len() < budget;
    state.compact_cursor = match batch.last() {
        Some((rev, _)) if !done => Some((rev.main, rev.sub)),
        _ => None,
    };
    Ok(done)
}
