//! A Txn whose every op (on both branches, nested too) is a Range, evaluated on a read snapshot:
//! etcd serves these without raft, and a reader on any core must be able to answer one without
//! touching the single writer.

use super::read::{compare, range};
use super::response_budget::ResponseBudget;
use super::types::{RequestOp, ResponseOp, TxnRequest, TxnResponse};
use crate::db::Tables;
use crate::error::{Error, Result};

/// Whether every op of `request`, on both branches and in nested txns, is a Range.
pub fn is_read_only(request: &TxnRequest) -> bool {
    request
        .success
        .iter()
        .chain(&request.failure)
        .all(|op| match op {
            RequestOp::Range(_) => true,
            RequestOp::Txn(nested) => is_read_only(nested),
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
        })
}

/// Evaluates a read-only txn at revision `current`: the compares pick a branch, its ranges run.
/// A txn with a write is refused with [`Error::NotReadOnly`] (it must go through the writer).
pub(crate) fn read_only_txn<T: Tables>(
    tables: &T,
    request: &TxnRequest,
    current: i64,
    compacted: i64,
    budget: &mut ResponseBudget,
) -> Result<TxnResponse> {
    if !is_read_only(request) {
        return Err(Error::NotReadOnly);
    }
    evaluate(tables, request, current, compacted, budget)
}

fn evaluate<T: Tables>(
    tables: &T,
    request: &TxnRequest,
    current: i64,
    compacted: i64,
    budget: &mut ResponseBudget,
) -> Result<TxnResponse> {
    let mut succeeded = true;
    for c in &request.compare {
        if !compare(tables, c, current)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &request.success
    } else {
        &request.failure
    };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        responses.push(match op {
            RequestOp::Range(r) => ResponseOp::Range(range(tables, r, current, compacted, budget)?),
            RequestOp::Txn(nested) => {
                // A nested response's own framing, so that thousands of empty nested txns count.
                budget.charge(16)?;
                ResponseOp::Txn(evaluate(tables, nested, current, compacted, budget)?)
            }
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => {
                unreachable!("checked read-only before evaluating")
            }
        });
    }
    Ok(TxnResponse {
        header_revision: current,
        succeeded,
        responses,
    })
}
