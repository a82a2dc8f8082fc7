//! Byte encodings of MVCC keys.
//!
//! Index table key: `escape(user key) ++ 0x00 0x01 ++ main u64 BE ++ sub u64 BE`. Escaping maps
//! each 0x00 byte to 0x00 0xFF, so the encoding preserves the order of user keys, is prefix-free,
//! and keeps every revision of a key adjacent and in revision order: a range over user keys is a
//! range over index keys, and "newest revision ≤ R of key k" is one reverse seek.
//!
//! Revisions table (change log) key: `main u64 BE ++ sub u64 BE ++ user key` (format 2: the
//! revision alone); see `mvcc::log`.

use crate::btree::KEY_BYTES_MAX;
use crate::error::{Error, Result};

/// A revision: `main` increments once per write transaction, `sub` per change inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

/// Bytes of an encoded revision.
pub(crate) const REVISION_BYTES: usize = 16;

impl Revision {
    /// Big-endian bytes, ordered like the revision.
    pub(crate) fn to_bytes(self) -> [u8; REVISION_BYTES] {
        let mut out = [0u8; REVISION_BYTES];
        out[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        out[8..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        out
    }

    /// Parses `to_bytes` output; `None` if the length is wrong.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Revision> {
        if bytes.len() != REVISION_BYTES {
            return None;
        }
        Some(Revision {
            main: u64::from_be_bytes(bytes[..8].try_into().unwrap()) as i64,
            sub: u64::from_be_bytes(bytes[8..].try_into().unwrap()) as i64,
        })
    }
}

/// The order-preserving, prefix-free encoding of a user key (no revision).
pub(crate) fn encode_user_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + REVISION_BYTES);
    if !key.contains(&0) {
        out.extend_from_slice(key);
        out.extend_from_slice(&[0x00, 0x01]);
        return out;
    }
    for &byte in key {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
    out
}

/// Checks that a user key fits in the index; returns its encoding.
pub(crate) fn checked_user_key(key: &[u8]) -> Result<Vec<u8>> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    let encoded = encode_user_key(key);
    let len = encoded.len() + REVISION_BYTES;
    if len > KEY_BYTES_MAX {
        return Err(Error::KeyTooLarge {
            len,
            limit: KEY_BYTES_MAX,
        });
    }
    Ok(encoded)
}

/// The index key of `key` (already encoded) at `revision`.
pub(crate) fn index_key(encoded_user_key: &[u8], revision: Revision) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_user_key.len() + REVISION_BYTES);
    out.extend_from_slice(encoded_user_key);
    out.extend_from_slice(&revision.to_bytes());
    out
}

/// Splits an index key into (encoded user key, revision); `None` if malformed.
pub(crate) fn split_index_key(index_key: &[u8]) -> Option<(&[u8], Revision)> {
    let at = index_key.len().checked_sub(REVISION_BYTES)?;
    let (user, rev) = index_key.split_at(at);
    if !user.ends_with(&[0x00, 0x01]) {
        return None;
    }
    Some((user, Revision::from_bytes(rev)?))
}

/// Decodes an encoded user key back to the user's bytes; `None` if malformed.
pub(crate) fn decode_user_key(encoded: &[u8]) -> Option<Vec<u8>> {
    let body = encoded.strip_suffix(&[0x00, 0x01])?;
    if !body.contains(&0) {
        return Some(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter();
    while let Some(&byte) = bytes.next() {
        out.push(byte);
        if byte == 0 && bytes.next() != Some(&0xFF) {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // The encoding must keep user-key order, so index ranges equal user-key ranges.
        #[test]
        fn encoding_preserves_order_and_round_trips(a in proptest::collection::vec(0u8..4, 0..6),
                                                   b in proptest::collection::vec(0u8..4, 0..6)) {
            let (ea, eb) = (encode_user_key(&a), encode_user_key(&b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            prop_assert_eq!(decode_user_key(&ea), Some(a.clone()));
            let ia = index_key(&ea, Revision { main: 5, sub: 1 });
            let ib = index_key(&eb, Revision { main: 1, sub: 0 });
            if a != b {
                prop_assert_eq!(a.cmp(&b), ia.cmp(&ib));
            }
        }
    }
}
