//! The stored form of one revision of a key (the index table's value).
//!
//! ```text
//! flags u8 (bit 0: tombstone) | create_revision i64 LE | version i64 LE | lease i64 LE | value
//! ```
//! The mod revision and the key are not repeated: both are in the index key.

const FLAG_TOMBSTONE: u8 = 1;
const HEADER_BYTES: usize = 25;

/// A decoded record borrowing its value from the page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) tombstone: bool,
    pub(crate) create_revision: i64,
    pub(crate) version: i64,
    pub(crate) lease: i64,
    pub(crate) value: &'a [u8],
}

impl<'a> Record<'a> {
    /// Parses a stored record; `None` if it is too short or has unknown flags.
    pub(crate) fn decode(bytes: &'a [u8]) -> Option<Record<'a>> {
        if bytes.len() < HEADER_BYTES || bytes[0] & !FLAG_TOMBSTONE != 0 {
            return None;
        }
        let i64_at = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        Some(Record {
            tombstone: bytes[0] & FLAG_TOMBSTONE != 0,
            create_revision: i64_at(1),
            version: i64_at(9),
            lease: i64_at(17),
            value: &bytes[HEADER_BYTES..],
        })
    }

    /// Serialises the record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.value.len());
        out.push(if self.tombstone { FLAG_TOMBSTONE } else { 0 });
        out.extend_from_slice(&self.create_revision.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.lease.to_le_bytes());
        out.extend_from_slice(self.value);
        out
    }
}
