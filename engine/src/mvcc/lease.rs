//! Leases in the store: one record per lease, and a persistent lease → keys index, so a revoke
//! visits exactly the keys it deletes (etcd rebuilds this index in memory by scanning every key
//! at start; here it lives in the B+tree and costs nothing at start).
//!
//! Both live in the Leases table, told apart by a one-byte tag:
//!
//! ```text
//! 'L' ++ id (8 bytes BE)            → ttl i64 LE ++ remaining_ttl i64 LE     (the lease)
//! 'K' ++ id (8 bytes BE) ++ user key → empty                                  (an attached key)
//! ```
//!
//! The index is kept by the MVCC writer: a put attaches its key to its lease and detaches it
//! from the lease of the version it replaces; a delete detaches it. So at every commit the index
//! holds exactly the live keys whose newest version names a lease.

use std::ops::Bound;

use crate::db::{Table, Tables, WriteTxn};
use crate::error::{Error, Result};

const TAG_LEASE: u8 = b'L';
const TAG_KEY: u8 = b'K';
const RECORD_BYTES: usize = 16;

/// A lease as stored: what a restart (or a new leader) needs to rebuild its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// The granted TTL in seconds (after the server raised it to its minimum).
    pub ttl: i64,
    /// The remaining TTL in seconds at the last checkpoint; 0 when none is recorded (etcd's
    /// `RemainingTTL`).
    pub remaining_ttl: i64,
}

fn record_key(id: i64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = TAG_LEASE;
    out[1..].copy_from_slice(&(id as u64).to_be_bytes());
    out
}

fn keys_prefix(id: i64) -> [u8; 9] {
    let mut out = record_key(id);
    out[0] = TAG_KEY;
    out
}

/// Always fits the B+tree's key limit when the key's index entry does: 9 + len(key) is at most
/// the index key's escaped key + 2 + 16 bytes.
fn attach_key(id: i64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.extend_from_slice(&keys_prefix(id));
    out.extend_from_slice(key);
    out
}

fn decode<T: Tables>(tables: &T, id: i64, bytes: &[u8]) -> Result<Lease> {
    if bytes.len() != RECORD_BYTES {
        return Err(tables
            .view()
            .corrupt(0, format!("lease {id:x} record has {} bytes", bytes.len())));
    }
    Ok(Lease {
        id,
        ttl: i64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        remaining_ttl: i64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
    })
}

fn encode(lease: &Lease) -> [u8; RECORD_BYTES] {
    let mut out = [0u8; RECORD_BYTES];
    out[..8].copy_from_slice(&lease.ttl.to_le_bytes());
    out[8..].copy_from_slice(&lease.remaining_ttl.to_le_bytes());
    out
}

/// The lease `id`, if it exists.
pub(crate) fn get<T: Tables>(tables: &T, id: i64) -> Result<Option<Lease>> {
    match tables.get(Table::Leases, &record_key(id))? {
        Some(bytes) => Ok(Some(decode(tables, id, bytes)?)),
        None => Ok(None),
    }
}

/// Every lease, in id order (as unsigned, the order of the stored keys).
pub(crate) fn all<T: Tables>(tables: &T) -> Result<Vec<Lease>> {
    let mut raw = Vec::new();
    tables.scan(
        Table::Leases,
        Bound::Included(&[TAG_LEASE][..]),
        Bound::Excluded(&[TAG_LEASE + 1][..]),
        false,
        &mut |k, v| {
            raw.push((k.to_vec(), v.to_vec()));
            Ok(true)
        },
    )?;
    raw.into_iter()
        .map(|(k, v)| {
            let id = k
                .get(1..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|b| u64::from_be_bytes(b) as i64)
                .ok_or_else(|| tables.view().corrupt(0, "lease record key is malformed"))?;
            decode(tables, id, &v)
        })
        .collect()
}

/// The keys attached to lease `id`, in key order.
pub(crate) fn keys<T: Tables>(tables: &T, id: i64) -> Result<Vec<Vec<u8>>> {
    let prefix = keys_prefix(id);
    let mut upper = prefix;
    // The next id's prefix; the all-ones id has no successor, so scan to the end of the tag.
    let end = match (id as u64).checked_add(1) {
        Some(next) => {
            upper[1..].copy_from_slice(&next.to_be_bytes());
            upper.to_vec()
        }
        None => vec![TAG_KEY + 1],
    };
    let mut out = Vec::new();
    tables.scan(
        Table::Leases,
        Bound::Included(&prefix[..]),
        Bound::Excluded(&end[..]),
        false,
        &mut |k, _| {
            out.push(k[prefix.len()..].to_vec());
            Ok(true)
        },
    )?;
    Ok(out)
}

/// Stores `lease` (new or updated).
pub(crate) fn put(txn: &mut WriteTxn, lease: &Lease) -> Result<()> {
    txn.put(Table::Leases, &record_key(lease.id), &encode(lease))
        .map(drop)
}

/// Removes lease `id`'s record and whatever is left of its key index.
pub(crate) fn remove(txn: &mut WriteTxn, id: i64) -> Result<()> {
    for key in keys(&*txn, id)? {
        txn.delete(Table::Leases, &attach_key(id, &key))?;
    }
    txn.delete(Table::Leases, &record_key(id)).map(drop)
}

/// Records that `key`'s newest version names lease `id`.
pub(crate) fn attach(txn: &mut WriteTxn, id: i64, key: &[u8]) -> Result<()> {
    txn.put(Table::Leases, &attach_key(id, key), &[]).map(drop)
}

/// Records that `key` no longer belongs to lease `id`.
pub(crate) fn detach(txn: &mut WriteTxn, id: i64, key: &[u8]) -> Result<()> {
    txn.delete(Table::Leases, &attach_key(id, key)).map(drop)
}

/// Fails with etcd's "requested lease not found" unless lease `id` exists (0 is "no lease").
pub(crate) fn check_exists<T: Tables>(tables: &T, id: i64) -> Result<()> {
    if id == 0 || tables.get(Table::Leases, &record_key(id))?.is_some() {
        Ok(())
    } else {
        Err(Error::LeaseNotFound)
    }
}
