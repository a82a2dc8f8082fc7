//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact. Writes go through raft (the
//! member); serializable reads are served from the engine at once, linearizable ones after a
//! ReadIndex round.

use std::rc::Rc;

use basalt_engine::{ReadView, ResponseBudget};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Metadata, Router, Status};

use super::quota::Quota;
use crate::server::member::offload::on_blocking_thread;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;
use crate::server::state_machine::convert;
use crate::server::state_machine::write_cost;

/// Request limits the KV service enforces before proposing.
#[derive(Clone, Copy, Debug)]
pub struct KvLimits {
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// `--quota-backend-bytes`.
    pub quota: Quota,
}

/// Registers the KV methods on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>, limits: KvLimits) {
    let m = member.clone();
    router.unary(
        "/etcdserverpb.KV/Range",
        move |metadata: Metadata, request: pb::RangeRequest| {
            let member = m.clone();
            async move {
                let caller = member.caller(&metadata)?;
                caller.check_read(&request.key, &request.range_end)?;
                range(&member, request).await
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.KV/Put",
        move |metadata: Metadata, request: pb::PutRequest| {
            let member = m.clone();
            async move {
                check_put(&request)?;
                let caller = member.caller(&metadata)?;
                if caller.auth_enabled() {
                    caller.check_put(&request, &read_view(&member)?)?;
                }
                limits
                    .quota
                    .check(&member, write_cost::put_cost(&request))
                    .await?;
                member.propose_as(&caller, request).await
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.KV/DeleteRange",
        move |metadata: Metadata, request: pb::DeleteRangeRequest| {
            let member = m.clone();
            async move {
                if request.key.is_empty() {
                    return Err(EtcdStatus::EmptyKey.into());
                }
                let caller = member.caller(&metadata)?;
                caller.check_delete(&request)?;
                member.propose_as(&caller, request).await
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.KV/Txn",
        move |metadata: Metadata, request: pb::TxnRequest| {
            let member = m.clone();
            async move {
                check_txn(&request, limits.max_txn_ops)?;
                let caller = member.caller(&metadata)?;
                if caller.auth_enabled() {
                    caller.check_txn(&request, &read_view(&member)?)?;
                }
                if is_read_only(&request) {
                    // etcd serves a read-only txn without raft, after a ReadIndex round.
                    member.wait_linearizable().await?;
                    let txn = convert::txn_request(&request).ok_or_else(empty_op)?;
                    let view = member.engine().read().map_err(|e| status_of(&e))?;
                    let response = if has_only_small_ranges(&view, &request)? {
                        view.read_only_txn_within(&txn, &mut response_budget())
                    } else {
                        // Off this core, as a large Range (see `range`).
                        drop(view);
                        let engine = member.shared_engine();
                        on_blocking_thread(move || {
                            engine.read().and_then(|view| {
                                view.read_only_txn_within(&txn, &mut response_budget())
                            })
                        })
                        .await
                        .unwrap_or(Err(basalt_engine::Error::Busy))
                    }
                    .map_err(|e| status_of(&e))?;
                    return Ok(convert::txn_response(response, member.header(0)));
                }
                limits
                    .quota
                    .check(&member, write_cost::txn_cost(&request))
                    .await?;
                member.propose_as(&caller, request).await
            }
        },
    );
    let m = member;
    router.unary(
        "/etcdserverpb.KV/Compact",
        move |metadata: Metadata, request: pb::CompactionRequest| {
            let member = m.clone();
            async move {
                // etcd checks nothing for Compact; compaction destroys every user's history,
                // so basalt asks for root (the stricter rule, see docs/server.md).
                let caller = member.caller(&metadata)?;
                caller.check_admin()?;
                member.propose_as(&caller, request).await
            }
        },
    );
}

async fn range(member: &Gateway, request: pb::RangeRequest) -> Result<pb::RangeResponse, Status> {
    if request.key.is_empty() {
        return Err(EtcdStatus::EmptyKey.into());
    }
    if !request.serializable {
        member.wait_linearizable().await?;
    }
    let view = member.engine().read().map_err(|e| status_of(&e))?;
    let range = convert::range_request(&request);
    let small = view
        .is_small_range(&range.key, &range.range_end)
        .map_err(|e| status_of(&e))?;
    let response = if small {
        view.range_within(&range, &mut response_budget())
    } else {
        // etcd's count covers the whole range whatever the limit: a range over a large prefix
        // (a Kubernetes LIST page or count) scans all of it, for up to ~100 ms. Served here it
        // would stop every request on this core meanwhile. The scan pins a snapshot of its own
        // when it starts (still past the read index): one pinned while it waits in the queue
        // would hold back page reuse for the whole wait.
        drop(view);
        let engine = member.shared_engine();
        // `None` only when nobody waits for the answer any more.
        on_blocking_thread(move || {
            engine
                .read()
                .and_then(|view| view.range_within(&range, &mut response_budget()))
        })
        .await
        .unwrap_or(Err(basalt_engine::Error::Busy))
    }
    .map_err(|e| status_of(&e))?;
    Ok(convert::range_response(response, member.header(0)))
}

/// etcd's checks of a put before it is proposed (`checkPutRequest`).
fn check_put(request: &pb::PutRequest) -> Result<(), Status> {
    if request.key.is_empty() {
        return Err(EtcdStatus::EmptyKey.into());
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(EtcdStatus::ValueProvided.into());
    }
    if request.ignore_lease && request.lease != 0 {
        return Err(EtcdStatus::LeaseProvided.into());
    }
    Ok(())
}

/// etcd's checks of a txn before it is proposed (`checkTxnRequest`): the op limit (the most of
/// compares, success ops and failure ops; a nested txn gets what its parent leaves), compares
/// with a key, and every op checked as its own RPC would be.
fn check_txn(request: &pb::TxnRequest, max_txn_ops: usize) -> Result<(), Status> {
    use pb::request_op::Request;
    let ops = convert::txn_ops(request);
    if ops > max_txn_ops {
        return Err(EtcdStatus::TooManyOps.into());
    }
    if request.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdStatus::EmptyKey.into());
    }
    for op in request.success.iter().chain(&request.failure) {
        match &op.request {
            // etcd answers an op with no request as "key not found".
            None => return Err(EtcdStatus::KeyNotFound.into()),
            Some(Request::RequestRange(r)) if r.key.is_empty() => {
                return Err(EtcdStatus::EmptyKey.into())
            }
            Some(Request::RequestPut(r)) => check_put(r)?,
            Some(Request::RequestDeleteRange(r)) if r.key.is_empty() => {
                return Err(EtcdStatus::EmptyKey.into())
            }
            Some(Request::RequestTxn(nested)) => check_txn(nested, max_txn_ops - ops)?,
            Some(_) => {}
        }
    }
    Ok(())
}

/// What one read's answer may hold: what gRPC would send at most. The read stops there instead
/// of building an answer larger than memory (128 full-range reads in one txn, say).
fn response_budget() -> ResponseBudget {
    ResponseBudget::new(basalt_net::MAX_SEND_MESSAGE_BYTES)
}

fn is_read_only(request: &pb::TxnRequest) -> bool {
    use pb::request_op::Request;
    request
        .success
        .iter()
        .chain(&request.failure)
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) => true,
            Some(Request::RequestTxn(nested)) => is_read_only(nested),
            _ => false,
        })
}

/// Whether every Range of a read-only txn (nested ones included) is cheap to serve on this core.
fn has_only_small_ranges(view: &ReadView, request: &pb::TxnRequest) -> Result<bool, Status> {
    use pb::request_op::Request;
    for op in request.success.iter().chain(&request.failure) {
        let small = match &op.request {
            Some(Request::RequestRange(r)) => view
                .is_small_range(&r.key, &r.range_end)
                .map_err(|e| status_of(&e))?,
            Some(Request::RequestTxn(nested)) => has_only_small_ranges(view, nested)?,
            _ => true,
        };
        if !small {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A view of the engine for a permission check that reads it (a lease's keys).
fn read_view(member: &Gateway) -> Result<ReadView, Status> {
    member.engine().read().map_err(|e| status_of(&e))
}

fn empty_op() -> Status {
    Status::invalid_argument("etcdserver: request op is empty")
}
