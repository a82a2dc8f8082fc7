//! etcd's rule that a txn may not write a key twice: within one branch (nested txns included)
//! no two puts of the same key and no put inside a deleted range; the success and failure
//! branches of a nested txn may put the same key, since only one of them runs.

use std::collections::HashSet;

use super::read::KeyRange;
use super::types::{RequestOp, TxnRequest};
use crate::error::{Error, Result};

/// Checks both branches of a txn request.
pub(crate) fn check_duplicates(request: &TxnRequest) -> Result<()> {
    check_ops(&request.success)?;
    check_ops(&request.failure)?;
    Ok(())
}

fn deleted(dels: &[KeyRange], key: &[u8]) -> bool {
    dels.iter().any(|range| range.contains(key))
}

/// Returns (puts, deleted ranges) of one branch, or the duplicate-key error.
fn check_ops(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<KeyRange>)> {
    let mut dels: Vec<KeyRange> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(KeyRange::new(&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let mut puts = HashSet::new();
    for op in ops {
        let RequestOp::Txn(nested) = op else { continue };
        let (puts_then, dels_then) = check_ops(&nested.success)?;
        let (puts_else, dels_else) = check_ops(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in puts_else {
            if (puts.contains(&key) && !puts_then.contains(&key)) || deleted(&dels, &key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}
