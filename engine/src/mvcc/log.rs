//! The change log (the Revisions table): revision → the user key changed at that revision and
//! the value written (empty for a delete).
//!
//! ```text
//! key: main u64 BE ++ sub u64 BE
//! value: key length u16 LE | user key | value
//! ```
//!
//! The key index holds only record headers (`mvcc::record`), so counts, keys-only ranges and
//! most compares never read a value; a read that returns values looks each one up here by the
//! revision the index names. The value sits with the log entry rather than in a table of its
//! own because every change already writes one log entry and compaction already deletes it:
//! a put stays two B+tree inserts, and replay and the hash, which walk the log in revision
//! order, get key and value in one scan. The entry names its key, so a lookup checks that the
//! value it found belongs to the key it was asked for.

use std::ops::Bound;

use super::keys::{Revision, REVISION_BYTES};
use crate::db::{Table, Tables};
use crate::error::Result;

/// Bytes of the key length prefix.
const KEY_LEN_BYTES: usize = 2;

/// One decoded log entry, borrowed from the snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Serialises a log entry. Keys are far shorter than 64 KiB: the index key holding them is
/// limited to a quarter page.
pub(crate) fn encode(key: &[u8], value: &[u8]) -> Vec<u8> {
    let key_len = u16::try_from(key.len()).expect("keys are limited to a quarter page");
    let mut out = Vec::with_capacity(KEY_LEN_BYTES + key.len() + value.len());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Parses a stored log entry; `None` if it is shorter than its key length says.
pub(crate) fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
    let key_len = u16::from_le_bytes(bytes.get(..KEY_LEN_BYTES)?.try_into().ok()?) as usize;
    let rest = &bytes[KEY_LEN_BYTES..];
    if rest.len() < key_len {
        return None;
    }
    let (key, value) = rest.split_at(key_len);
    Some(Entry { key, value })
}

/// Parses a (revision, entry) pair met in a scan of the log.
pub(crate) fn parse<'a, T: Tables>(
    tables: &T,
    key: &'a [u8],
    value: &'a [u8],
) -> Result<(Revision, Entry<'a>)> {
    let revision = Revision::from_bytes(key).ok_or_else(|| {
        tables.view().corrupt(
            0,
            format!(
                "change log key of {} bytes (expected {REVISION_BYTES})",
                key.len()
            ),
        )
    })?;
    let entry = decode(value).ok_or_else(|| {
        tables
            .view()
            .corrupt(0, format!("malformed change log entry at {revision:?}"))
    })?;
    Ok((revision, entry))
}

/// Visits the log entries from `from` up to `to` (inclusive), in revision order; the visitor
/// returns `false` to stop.
pub(crate) fn scan<'a, T: Tables>(
    tables: &'a T,
    from: Bound<Revision>,
    to: Revision,
    visit: &mut dyn FnMut(Revision, Entry<'a>) -> Result<bool>,
) -> Result<()> {
    let from_bytes = match from {
        Bound::Included(r) | Bound::Excluded(r) => r.to_bytes(),
        Bound::Unbounded => [0; REVISION_BYTES],
    };
    let lower = match from {
        Bound::Included(_) => Bound::Included(&from_bytes[..]),
        Bound::Excluded(_) => Bound::Excluded(&from_bytes[..]),
        Bound::Unbounded => Bound::Unbounded,
    };
    let to_bytes = to.to_bytes();
    tables.scan(
        Table::Revisions,
        lower,
        Bound::Included(&to_bytes),
        false,
        &mut |k, v| {
            let (revision, entry) = parse(tables, k, v)?;
            visit(revision, entry)
        },
    )
}

/// The value `key` (a user key) was given at `revision`: one point lookup in the log. A
/// missing entry, or one naming another key, is corruption: the key index said it is there.
pub(crate) fn value<'a, T: Tables>(
    tables: &'a T,
    key: &[u8],
    revision: Revision,
) -> Result<&'a [u8]> {
    #[cfg(test)]
    tests::count_value_read();
    let bytes = tables
        .get(Table::Revisions, &revision.to_bytes())?
        .ok_or_else(|| {
            tables.view().corrupt(
                0,
                format!(
                    "revision {revision:?} of key {:?} has no change log entry",
                    String::from_utf8_lossy(key)
                ),
            )
        })?;
    let entry = decode(bytes).ok_or_else(|| {
        tables
            .view()
            .corrupt(0, format!("malformed change log entry at {revision:?}"))
    })?;
    if entry.key != key {
        return Err(tables.view().corrupt(
            0,
            format!(
                "revision {revision:?} is logged for key {:?}, the key index says {:?}",
                String::from_utf8_lossy(entry.key),
                String::from_utf8_lossy(key)
            ),
        ));
    }
    Ok(entry.value)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static VALUE_READS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) fn count_value_read() {
        VALUE_READS.with(|n| n.set(n.get() + 1));
    }

    /// Values this thread has looked up in the log so far (tests run one per thread).
    pub(crate) fn value_reads() -> u64 {
        VALUE_READS.with(Cell::get)
    }

    #[test]
    fn entries_round_trip_and_short_ones_are_refused() {
        for (key, value) in [(&b"k"[..], &b"v"[..]), (b"a\0b", b""), (b"x", &[7u8; 5000])] {
            let bytes = encode(key, value);
            let entry = decode(&bytes).unwrap();
            assert_eq!((entry.key, entry.value), (key, value));
        }
        assert!(decode(&[]).is_none());
        assert!(decode(&[5, 0, b'a']).is_none());
    }
}
