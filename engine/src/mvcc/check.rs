//! The check that the key index and the change log describe the same revisions: every index
//! record has the log entry of its revision, logged for its key (a tombstone's with no value),
//! and the log has no entry the index does not name. Run by `Engine::check` after the page walk.

use std::ops::Bound;

use super::keys::{decode_user_key, encode_user_key, index_key, Revision};
use super::log;
use super::read::entry;
use crate::db::{Table, Tables};
use crate::error::Result;

/// Walks the key index and looks up each record's log entry; counts both tables. A log with as
/// many entries as the index, each index record owning a different one (its own revision), has
/// no entry left over; only when the counts differ does a second walk find which one.
pub(crate) fn check_index_and_log<T: Tables>(tables: &T) -> Result<()> {
    let corrupt = |reason: String| tables.view().corrupt(0, reason);
    let mut records = 0u64;
    tables.scan(
        Table::Index,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |k, v| {
            let found = entry(k, v).ok_or_else(|| corrupt("malformed index entry".into()))?;
            let key = decode_user_key(found.encoded_key)
                .ok_or_else(|| corrupt("malformed key in the index".into()))?;
            let value = log::value(tables, &key, found.revision)?;
            if found.record.tombstone && !value.is_empty() {
                return Err(corrupt(format!(
                    "the delete of {:?} at {:?} has a value in the change log",
                    String::from_utf8_lossy(&key),
                    found.revision
                )));
            }
            records += 1;
            Ok(true)
        },
    )?;
    // The whole log, whatever its keys claim (`log::scan` stops at the largest revision).
    let whole_log = |visit: &mut dyn FnMut(Revision, log::Entry) -> Result<bool>| {
        tables.scan(
            Table::Revisions,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, v| {
                let (revision, logged) = log::parse(tables, k, v)?;
                visit(revision, logged)
            },
        )
    };
    let mut logged = 0u64;
    whole_log(&mut |_, _| {
        logged += 1;
        Ok(true)
    })?;
    if logged == records {
        return Ok(());
    }
    let mut orphan = None;
    whole_log(&mut |revision, logged| {
        let index = index_key(&encode_user_key(logged.key), revision);
        if tables.get(Table::Index, &index)?.is_none() {
            orphan = Some((revision, logged.key.to_vec()));
            return Ok(false);
        }
        Ok(true)
    })?;
    Err(corrupt(match orphan {
        Some((revision, key)) => format!(
            "change log entry {revision:?} of key {:?} has no index record",
            String::from_utf8_lossy(&key)
        ),
        None => format!("the change log has {logged} entries, the key index {records}"),
    }))
}
