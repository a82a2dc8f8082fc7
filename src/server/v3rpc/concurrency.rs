//! What the Lock and Election services share: etcd's `concurrency` recipes (a waiter is a key
//! `<name>/<lease hex>` under the name's prefix; the oldest key by create revision holds),
//! served inside the server over the member's own KV, Lease and Watch.
//!
//! Waiting uses this core's watch hub as a server-side watch stream: no polling, and no gap
//! between the linearizable read that finds whom to wait for and the watch that waits (the
//! watch starts right after that read's revision and catches up from history). Every wait ends
//! when the awaited key is deleted, when the waiter's own key is deleted (its lease ended), or
//! when the call is dropped (client deadline); a dropped wait runs its `Cleanup`, as etcd
//! releases a waiter's key when its context ends.

use std::rc::Rc;

use basalt_net::proto::{etcdserverpb as pb, mvccpb};
use basalt_net::{EtcdStatus, Status};

use super::quota::Quota;
use crate::server::member::lease_owner::LeaseGrant;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;
use crate::server::state_machine::convert;
use crate::server::state_machine::write_cost;
use crate::server::watch::watch_hub::{StreamQueue, WatchHub};

/// TTL of the lease granted for a Lock or Campaign that names no lease (etcd's
/// `defaultSessionTTL`).
pub const SESSION_TTL_S: i64 = 60;

/// The lease a request's keys are attached to: its own, or (lease 0) a new one, as etcd's
/// `concurrency.NewSession` grants one when given none.
pub async fn session_lease(gateway: &Gateway, lease: i64) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let granted = gateway
        .call(LeaseGrant(pb::LeaseGrantRequest {
            ttl: SESSION_TTL_S,
            id: 0,
        }))
        .await??;
    Ok(granted.id)
}

/// The prefix every waiter's key of `name` lives under.
/// The permission check of a Lock or Election call on `name`: etcd's servers run the recipe's
/// KV calls with the caller's credentials, and those read the waiters under `name/` (a
/// range) and, to join, write there; a caller without those permissions is refused before
/// any of them runs. Joining also grants a session lease, which needs a user.
pub fn check_name(
    gateway: &Gateway,
    metadata: &basalt_net::Metadata,
    name: &[u8],
    writes: bool,
) -> Result<(), Status> {
    let caller = gateway.caller(metadata)?;
    caller.require()?;
    let prefix = prefix(name);
    let end = prefix_end(&prefix);
    caller.check_read(&prefix, &end)?;
    if writes {
        caller.check_write(&prefix, &end)?;
    }
    Ok(())
}

pub fn prefix(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// The key of the waiter holding `lease` (etcd formats the lease id in lowercase hex).
pub fn waiter_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// The end of the range of keys starting with `prefix` (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every byte was 0xff: to the end of the keyspace
}

/// A compare that `key`'s create revision is `revision` (0: the key does not exist).
pub fn created_at(key: &[u8], revision: i64) -> pb::Compare {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    pb::Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
    }
}

pub fn put_op(key: &[u8], value: &[u8], lease: i64) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

pub fn get_op(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    }
}

pub fn delete_op(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestDeleteRange(
            pb::DeleteRangeRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )),
    }
}

/// The oldest key under `prefix` (etcd's `WithFirstCreate`): the holder.
pub fn first_created_op(prefix: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(first_created(prefix))),
    }
}

fn first_created(prefix: &[u8]) -> pb::RangeRequest {
    use pb::range_request::{SortOrder, SortTarget};
    pb::RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: SortOrder::Ascend as i32,
        sort_target: SortTarget::Create as i32,
        ..Default::default()
    }
}

/// Proposes a txn and waits for its answer, after the backend quota check the KV service
/// makes (etcd's Lock and Election write through its quota-checked KV server too).
pub async fn txn(
    gateway: &Gateway,
    quota: Quota,
    request: pb::TxnRequest,
) -> Result<pb::TxnResponse, Status> {
    quota.check(gateway, write_cost::txn_cost(&request)).await?;
    propose_txn(gateway, request).await
}

async fn propose_txn(
    gateway: &Gateway,
    request: pb::TxnRequest,
) -> Result<pb::TxnResponse, Status> {
    gateway.propose(request).await
}

/// The range answer of op `index` of a txn's answer.
pub fn range_answer(
    response: &pb::TxnResponse,
    index: usize,
) -> Result<&pb::RangeResponse, Status> {
    match response
        .responses
        .get(index)
        .and_then(|op| op.response.as_ref())
    {
        Some(pb::response_op::Response::ResponseRange(range)) => Ok(range),
        _ => Err(Status::internal(format!(
            "etcdserver: txn answer {index} is not a range"
        ))),
    }
}

/// A linearizable range, as the KV service serves it.
pub async fn range(
    gateway: &Gateway,
    request: &pb::RangeRequest,
) -> Result<pb::RangeResponse, Status> {
    gateway.wait_linearizable().await?;
    let view = gateway.engine().read().map_err(|e| status_of(&e))?;
    let response = view
        .range(&convert::range_request(request))
        .map_err(|e| status_of(&e))?;
    Ok(convert::range_response(response, gateway.header(0)))
}

/// A linearizable read of the oldest key under `prefix`.
pub async fn range_first_created(
    gateway: &Gateway,
    prefix: &[u8],
) -> Result<pb::RangeResponse, Status> {
    range(gateway, &first_created(prefix)).await
}

/// How a wait for the older waiters ended.
pub enum Waited {
    /// Every key under the prefix created at or before the limit is gone: the caller holds.
    Holds,
    /// The caller's own key was deleted first (its lease ended, or someone deleted it).
    OwnKeyDeleted,
}

/// etcd's `waitDeletes`: waits until no key under `prefix` has a create revision at or below
/// `max_create_revision`, one deletion at a time (the newest older waiter first, so a waiter
/// wakes once, when its direct predecessor goes). Also ends when `own_key` is deleted: a
/// waiter whose lease ended must not wait on (etcd would, then fail on its next read).
pub async fn wait_deletes(
    gateway: &Gateway,
    prefix: &[u8],
    own_key: &[u8],
    max_create_revision: i64,
) -> Result<Waited, Status> {
    use pb::range_request::{SortOrder, SortTarget};
    let newest_older = pb::RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: SortOrder::Descend as i32,
        sort_target: SortTarget::Create as i32,
        max_create_revision,
        ..Default::default()
    };
    loop {
        let found = range(gateway, &newest_older).await?;
        let header = found.header.unwrap_or_default();
        let Some(older) = found.kvs.first() else {
            return Ok(Waited::Holds);
        };
        let watch = Subscription::open(gateway.watch_hub());
        watch.watch(&older.key, Vec::new(), header.revision + 1, true);
        watch.watch(own_key, Vec::new(), header.revision + 1, true);
        // Only deletes arrive (the watchers filter puts): ours, the older waiter's, or both.
        let (_, deleted) = watch.next_events().await?;
        if deleted
            .iter()
            .any(|event| event.kv.as_ref().is_some_and(|kv| kv.key == own_key))
        {
            return Ok(Waited::OwnKeyDeleted);
        }
    }
}

/// A server-side watch stream on this core's hub; closed (its watchers dropped) on drop.
pub struct Subscription {
    hub: Rc<WatchHub>,
    stream: u64,
    queue: Rc<StreamQueue>,
}

impl Subscription {
    pub fn open(hub: Rc<WatchHub>) -> Subscription {
        let (stream, queue) = hub.open_stream();
        Subscription { hub, stream, queue }
    }

    /// Watches `key` (to `range_end`, if given) from `start_revision`; `deletes_only` leaves
    /// out puts.
    pub fn watch(&self, key: &[u8], range_end: Vec<u8>, start_revision: i64, deletes_only: bool) {
        use pb::watch_create_request::FilterType;
        let filters = if deletes_only {
            vec![FilterType::Noput as i32]
        } else {
            Vec::new()
        };
        self.hub.create(
            self.stream,
            &pb::WatchCreateRequest {
                key: key.to_vec(),
                range_end,
                start_revision,
                filters,
                ..Default::default()
            },
        );
    }

    /// The events of the next response that carries any, with its header (one response
    /// may cover several revisions). A watcher canceled by the hub (its start revision was
    /// compacted) ends the wait with etcd's error.
    pub async fn next_events(&self) -> Result<(pb::ResponseHeader, Vec<mvccpb::Event>), Status> {
        loop {
            let Some(response) = self.queue.next().await else {
                return Err(Status::unavailable("etcdserver: watch stream closed"));
            };
            // Taking a response makes room: lagging watchers continue from history.
            self.hub.catch_up(self.stream);
            if response.canceled {
                if response.compact_revision > 0 {
                    return Err(EtcdStatus::Compacted.into());
                }
                return Err(Status::internal(format!(
                    "etcdserver: watch canceled: {}",
                    response.cancel_reason
                )));
            }
            if !response.events.is_empty() {
                return Ok((response.header.unwrap_or_default(), response.events));
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.close_stream(self.stream);
    }
}

/// A write that must happen if a waiting call ends early (its client's deadline dropped it,
/// or a step after the key's creation failed): etcd unlocks or resigns when its context ends,
/// so a waiter that gave up never acquires a lock or leadership nobody will release.
pub struct Cleanup {
    gateway: Rc<Gateway>,
    txn: Option<pb::TxnRequest>,
}

impl Cleanup {
    /// Arms a cleanup that proposes `txn` unless `disarm` is called first.
    pub fn arm(gateway: Rc<Gateway>, txn: pb::TxnRequest) -> Cleanup {
        Cleanup {
            gateway,
            txn: Some(txn),
        }
    }

    pub fn disarm(mut self) {
        self.txn = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(request) = self.txn.take() {
            let gateway = self.gateway.clone();
            // A drop cannot await: the cleanup runs as its own task on this core. Its outcome
            // has nobody to go to; a failure leaves the key to its lease, as in etcd.
            glommio::spawn_local(async move {
                // Deletes only: they cost no quota.
                let _ = propose_txn(&gateway, request).await;
            })
            .detach();
        }
    }
}
