//! The change log (the Revisions table): revision → the user key changed at that revision and
//! the value written (empty for a delete).
//!
//! ```text
//! key:   main u64 BE ++ sub u64 BE ++ user key
//! value: the value
//! ```
//!
//! The key index holds only record headers (`mvcc::record`), so counts, keys-only ranges and
//! most compares never read a value; a read that returns values looks each one up here by the
//! revision the index names. The value sits with the log entry rather than in a table of its
//! own because every change already writes one log entry and compaction already deletes it:
//! a put stays two B+tree inserts, and replay and the hash, which walk the log in revision
//! order, get key and value in one scan. The entry names its key, so a lookup checks that the
//! value it found belongs to the key it was asked for.
//!
//! The user key is part of the B+tree key, not of the value, so a large value is stored alone
//! in its value run: a 4 KiB value takes one page (format 3). Format 2 logged
//! `key length u16 LE | user key | value` under the revision alone; such legacy entries are
//! still read (their B+tree key is exactly the 16 revision bytes, while a current entry's is
//! longer: user keys are never empty) until compaction or an overwrite retires them.

use std::ops::Bound;

use super::keys::{Revision, REVISION_BYTES};
use crate::btree::KEY_BYTES_MAX;
use crate::db::{Table, Tables, WriteTxn};
use crate::error::Result;

/// Bytes of a legacy entry's key length prefix.
const KEY_LEN_BYTES: usize = 2;

/// One decoded log entry, borrowed from the snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// The B+tree key of the entry of `key` at `revision`.
pub(crate) fn tree_key(revision: Revision, key: &[u8]) -> Vec<u8> {
    assert!(!key.is_empty(), "user keys are never empty");
    let mut out = Vec::with_capacity(REVISION_BYTES + key.len());
    out.extend_from_slice(&revision.to_bytes());
    out.extend_from_slice(key);
    out
}

/// Logs that `key` was given `value` (empty: deleted) at `revision`.
pub(crate) fn put(txn: &mut WriteTxn, revision: Revision, key: &[u8], value: &[u8]) -> Result<()> {
    txn.put(Table::Revisions, &tree_key(revision, key), value)?;
    Ok(())
}

/// Removes the entry of `key` at `revision`, in whichever layout it was written.
pub(crate) fn delete(txn: &mut WriteTxn, revision: Revision, key: &[u8]) -> Result<()> {
    if !txn.delete(Table::Revisions, &tree_key(revision, key))? {
        txn.delete(Table::Revisions, &revision.to_bytes())?;
    }
    Ok(())
}

/// Serialises a legacy (format 2) log entry value; tests build format 2 entries with it.
#[cfg(test)]
pub(crate) fn encode_legacy(key: &[u8], value: &[u8]) -> Vec<u8> {
    let key_len = u16::try_from(key.len()).expect("keys are limited to a quarter page");
    let mut out = Vec::with_capacity(KEY_LEN_BYTES + key.len() + value.len());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Parses a legacy (format 2) entry value; `None` if it is shorter than its key length says.
fn decode_legacy(bytes: &[u8]) -> Option<Entry<'_>> {
    let key_len = u16::from_le_bytes(bytes.get(..KEY_LEN_BYTES)?.try_into().ok()?) as usize;
    let rest = &bytes[KEY_LEN_BYTES..];
    if rest.len() < key_len {
        return None;
    }
    let (key, value) = rest.split_at(key_len);
    Some(Entry { key, value })
}

/// Decodes a stored (B+tree key, value) pair of either layout; `None` if malformed.
fn decode<'a>(key: &'a [u8], value: &'a [u8]) -> Option<(Revision, Entry<'a>)> {
    let revision = Revision::from_bytes(key.get(..REVISION_BYTES)?)?;
    if key.len() == REVISION_BYTES {
        return Some((revision, decode_legacy(value)?));
    }
    Some((
        revision,
        Entry {
            key: &key[REVISION_BYTES..],
            value,
        },
    ))
}

/// Parses a (B+tree key, value) pair met in a scan of the log.
pub(crate) fn parse<'a, T: Tables>(
    tables: &T,
    key: &'a [u8],
    value: &'a [u8],
) -> Result<(Revision, Entry<'a>)> {
    decode(key, value).ok_or_else(|| {
        tables.view().corrupt(
            0,
            format!(
                "malformed change log entry under key {:?} ({} bytes)",
                String::from_utf8_lossy(key),
                key.len()
            ),
        )
    })
}

/// The 16 bytes right after `bytes` in byte order, or `None` past the last one: every log key
/// of a revision (its 16 bytes, or them followed by a user key) sorts below the successor of
/// that revision's bytes.
fn successor(mut bytes: [u8; REVISION_BYTES]) -> Option<[u8; REVISION_BYTES]> {
    for byte in bytes.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(bytes);
        }
    }
    None
}

/// Visits the log entries from `from` up to `to` (inclusive), in revision order; the visitor
/// returns `false` to stop.
pub(crate) fn scan<'a, T: Tables>(
    tables: &'a T,
    from: Bound<Revision>,
    to: Revision,
    visit: &mut dyn FnMut(Revision, Entry<'a>) -> Result<bool>,
) -> Result<()> {
    // Bounds on whole revisions: every entry of `from` (excluded) or `to` (included) has a key
    // that starts with its 16 bytes.
    let lower_bytes = match from {
        Bound::Included(r) => Some(r.to_bytes()),
        Bound::Excluded(r) => match successor(r.to_bytes()) {
            Some(next) => Some(next),
            None => return Ok(()),
        },
        Bound::Unbounded => None,
    };
    let upper_bytes = successor(to.to_bytes());
    let lower = lower_bytes
        .as_ref()
        .map_or(Bound::Unbounded, |b| Bound::Included(&b[..]));
    let upper = upper_bytes
        .as_ref()
        .map_or(Bound::Unbounded, |b| Bound::Excluded(&b[..]));
    tables.scan(Table::Revisions, lower, upper, false, &mut |k, v| {
        let (revision, entry) = parse(tables, k, v)?;
        visit(revision, entry)
    })
}

/// The value `key` (a user key) was given at `revision`: one descent of the log, to the
/// greatest B+tree key at or below the current layout's key, which finds a legacy entry (the
/// revision alone sorts just below) as well. A missing entry, or one naming another key, is
/// corruption: the key index said it is there.
pub(crate) fn value<'a, T: Tables>(
    tables: &'a T,
    key: &[u8],
    revision: Revision,
) -> Result<&'a [u8]> {
    #[cfg(test)]
    tests::count_value_read();
    // On the stack: a range returning values does one lookup per value.
    let mut stack = [0u8; KEY_BYTES_MAX];
    let heap;
    let wanted: &[u8] = match stack.get_mut(..REVISION_BYTES + key.len()) {
        Some(buffer) => {
            buffer[..REVISION_BYTES].copy_from_slice(&revision.to_bytes());
            buffer[REVISION_BYTES..].copy_from_slice(key);
            buffer
        }
        None => {
            heap = [&revision.to_bytes()[..], key].concat();
            &heap
        }
    };
    let missing = || {
        tables.view().corrupt(
            0,
            format!(
                "revision {revision:?} of key {:?} has no change log entry",
                String::from_utf8_lossy(key)
            ),
        )
    };
    let (found_key, found_value) = tables
        .seek_le(Table::Revisions, wanted)?
        .ok_or_else(missing)?;
    // A key of exactly the revision's bytes is a legacy entry, whatever `key` is.
    if found_key.len() > REVISION_BYTES && found_key == wanted {
        return Ok(found_value);
    }
    if found_key.get(..REVISION_BYTES) != Some(&wanted[..REVISION_BYTES]) {
        return Err(missing());
    }
    let (_, entry) = parse(tables, found_key, found_value)?;
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
    fn entries_of_both_layouts_decode_and_short_legacy_ones_are_refused() {
        let revision = Revision { main: 9, sub: 2 };
        for (key, value) in [(&b"k"[..], &b"v"[..]), (b"a\0b", b""), (b"x", &[7u8; 5000])] {
            let current = tree_key(revision, key);
            let (r, entry) = decode(&current, value).unwrap();
            assert_eq!((r, entry.key, entry.value), (revision, key, value));
            let (legacy_key, legacy) = (revision.to_bytes(), encode_legacy(key, value));
            let (r, entry) = decode(&legacy_key, &legacy).unwrap();
            assert_eq!((r, entry.key, entry.value), (revision, key, value));
        }
        let revision_bytes = revision.to_bytes();
        assert!(decode(&revision_bytes, &[]).is_none());
        assert!(decode(&revision_bytes, &[5, 0, b'a']).is_none());
        assert!(decode(&revision_bytes[..15], b"v").is_none());
    }

    #[test]
    fn successor_orders_after_every_key_of_the_revision() {
        let revision = Revision {
            main: 3,
            sub: i64::MAX,
        };
        let next = successor(revision.to_bytes()).unwrap();
        assert!(tree_key(revision, &[0xFF; 40]).as_slice() < &next[..]);
        assert!(revision.to_bytes()[..] < next[..]);
        assert_eq!(Revision::from_bytes(&next).unwrap().main, 3);
        assert!(successor([0xFF; REVISION_BYTES]).is_none());
    }
}
