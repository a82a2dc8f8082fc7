//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact. Writes go through raft (the
//! member); serializable reads are served from the engine at once, linearizable ones after a
//! ReadIndex round.

use std::rc::Rc;
use std::sync::Arc;

use basalt_engine::{ReadView, ResponseMemory, ResponseMemoryHold};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Metadata, Router, Status};

use super::quota::Quota;
use super::read_memory::read_within_memory;
use crate::server::member::offload::on_blocking_thread;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;
use crate::server::state_machine::convert;
use crate::server::state_machine::write_cost;

/// Request limits the KV service enforces before proposing, and the member's bound on read
/// answers.
#[derive(Clone, Debug)]
pub struct KvLimits {
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// `--quota-backend-bytes`.
    pub quota: Quota,
    /// Bytes held by every read answer together (see `read_memory`).
    pub read_memory: Arc<ResponseMemory>,
}

/// Registers the KV methods on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>, limits: KvLimits) {
    let m = member.clone();
    let read_memory = limits.read_memory.clone();
    router.unary_holding(
        "/etcdserverpb.KV/Range",
        move |metadata: Metadata, request: pb::RangeRequest| {
            let member = m.clone();
            let read_memory = read_memory.clone();
            async move {
                let caller = member.caller(&metadata)?;
                caller.check_read(&request.key, &request.range_end)?;
                range(&member, &read_memory, request).await
            }
        },
    );
    let quota = limits.quota;
    let max_txn_ops = limits.max_txn_ops;
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
                quota.check(&member, write_cost::put_cost(&request)).await?;
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
    let read_memory = limits.read_memory;
    router.unary_holding(
        "/etcdserverpb.KV/Txn",
        move |metadata: Metadata, request: pb::TxnRequest| {
            let member = m.clone();
            let read_memory = read_memory.clone();
            async move {
                check_txn(&request, max_txn_ops)?;
                let caller = member.caller(&metadata)?;
                if caller.auth_enabled() {
                    caller.check_txn(&request, &read_view(&member)?)?;
                }
                if is_read_only(&request) {
                    return read_only_txn(&member, &read_memory, &request).await;
                }
                quota.check(&member, write_cost::txn_cost(&request)).await?;
                Ok((member.propose_as(&caller, request).await?, None))
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

/// A Range, with the member-wide hold of its answer's bytes.
async fn range(
    member: &Gateway,
    read_memory: &Arc<ResponseMemory>,
    request: pb::RangeRequest,
) -> Result<(pb::RangeResponse, Option<ResponseMemoryHold>), Status> {
    if request.key.is_empty() {
        return Err(EtcdStatus::EmptyKey.into());
    }
    if !request.serializable {
        member.wait_linearizable().await?;
    }
    let range = convert::range_request(&request);
    let (response, hold) = read_within_memory(
        read_memory,
        basalt_net::MAX_SEND_MESSAGE_BYTES,
        |mut budget| {
            let range = range.clone();
            async move {
                let view = member.engine().read()?;
                if view.is_small_range(&range.key, &range.range_end)? {
                    let response = view.range_within(&range, &mut budget)?;
                    return Ok((response, budget));
                }
                // etcd's count covers the whole range whatever the limit: a range over a
                // large prefix (a Kubernetes LIST page or count) scans all of it, for up to
                // ~100 ms. Served here it would stop every request on this core meanwhile.
                // The scan pins a snapshot of its own when it starts (still past the read
                // index): one pinned while it waits in the queue would hold back page reuse
                // for the whole wait.
                drop(view);
                let engine = member.shared_engine();
                // `None` only when nobody waits for the answer any more.
                on_blocking_thread(move || {
                    let response = engine.read()?.range_within(&range, &mut budget)?;
                    Ok((response, budget))
                })
                .await
                .unwrap_or(Err(basalt_engine::Error::Busy))
            }
        },
    )
    .await?;
    Ok((convert::range_response(response, member.header(0)), hold))
}

/// A read-only Txn: etcd serves it without raft, after a ReadIndex round.
async fn read_only_txn(
    member: &Gateway,
    read_memory: &Arc<ResponseMemory>,
    request: &pb::TxnRequest,
) -> Result<(pb::TxnResponse, Option<ResponseMemoryHold>), Status> {
    member.wait_linearizable().await?;
    let txn = convert::txn_request(request).ok_or_else(empty_op)?;
    let (response, hold) = read_within_memory(
        read_memory,
        basalt_net::MAX_SEND_MESSAGE_BYTES,
        |mut budget| {
            let txn = txn.clone();
            async move {
                let view = member.engine().read()?;
                if has_only_small_ranges(&view, request)? {
                    let response = view.read_only_txn_within(&txn, &mut budget)?;
                    return Ok((response, budget));
                }
                // Off this core, as a large Range (see `range`).
                drop(view);
                let engine = member.shared_engine();
                on_blocking_thread(move || {
                    let response = engine.read()?.read_only_txn_within(&txn, &mut budget)?;
                    Ok((response, budget))
                })
                .await
                .unwrap_or(Err(basalt_engine::Error::Busy))
            }
        },
    )
    .await?;
    Ok((convert::txn_response(response, member.header(0)), hold))
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
fn has_only_small_ranges(
    view: &ReadView,
    request: &pb::TxnRequest,
) -> Result<bool, basalt_engine::Error> {
    use pb::request_op::Request;
    for op in request.success.iter().chain(&request.failure) {
        let small = match &op.request {
            Some(Request::RequestRange(r)) => view.is_small_range(&r.key, &r.range_end)?,
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
