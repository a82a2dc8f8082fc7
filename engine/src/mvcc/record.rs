//! The stored form of one revision of a key in the key index (the Index table's value): what
//! a count, a keys-only range, a compare on version/create/mod/lease and a watch event need,
//! and nothing else. The value lives in the change log, under the revision (`mvcc::log`).
//!
//! ```text
//! flags u8 (bit 0: tombstone) | create_revision i64 LE | version i64 LE | lease i64 LE
//! ```
//! The mod revision and the key are not repeated: both are in the index key.

const FLAG_TOMBSTONE: u8 = 1;
/// Bytes of a stored record.
pub(crate) const RECORD_BYTES: usize = 25;

/// A decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) tombstone: bool,
    pub(crate) create_revision: i64,
    pub(crate) version: i64,
    pub(crate) lease: i64,
}

impl Record {
    /// The record of a delete.
    pub(crate) const TOMBSTONE: Record = Record {
        tombstone: true,
        create_revision: 0,
        version: 0,
        lease: 0,
    };

    /// Parses a stored record; `None` if it has the wrong length, unknown flags, or a version
    /// outside its range.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.len() != RECORD_BYTES || bytes[0] & !FLAG_TOMBSTONE != 0 {
            return None;
        }
        let i64_at = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let record = Record {
            tombstone: bytes[0] & FLAG_TOMBSTONE != 0,
            create_revision: i64_at(1),
            version: i64_at(9),
            lease: i64_at(17),
        };
        // A live version counts from 1 and the next put adds one: a stored version outside
        // that range (a checksum-valid but absurd page) is malformed, not arithmetic to wrap.
        let version_ok = if record.tombstone {
            record.version == 0
        } else {
            (1..i64::MAX).contains(&record.version)
        };
        version_ok.then_some(record)
    }

    /// Serialises the record.
    pub(crate) fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut out = [0u8; RECORD_BYTES];
        out[0] = if self.tombstone { FLAG_TOMBSTONE } else { 0 };
        out[1..9].copy_from_slice(&self.create_revision.to_le_bytes());
        out[9..17].copy_from_slice(&self.version.to_le_bytes());
        out[17..25].copy_from_slice(&self.lease.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod version_bounds_tests {
    use super::*;

    /// Goal: a record whose version the next put could not increment, or a live record with
    /// version 0, reads as malformed (callers report `Corrupt`) instead of overflowing later.
    #[test]
    fn versions_outside_their_range_are_malformed() {
        let live = |version: i64| Record {
            tombstone: false,
            create_revision: 5,
            version,
            lease: 0,
        };
        assert!(Record::decode(&live(1).encode()).is_some());
        assert!(Record::decode(&live(i64::MAX - 1).encode()).is_some());
        assert!(Record::decode(&live(i64::MAX).encode()).is_none());
        assert!(Record::decode(&live(0).encode()).is_none());
        assert!(Record::decode(&live(-3).encode()).is_none());
        assert!(Record::decode(&Record::TOMBSTONE.encode()).is_some());
    }
}
