//! etcd's Lock service (v3lockpb): Lock and Unlock, etcd's `concurrency.Mutex` served inside
//! the server. A waiter is the key `<name>/<lease hex>` put with its lease; the oldest key under
//! `<name>/` holds the lock, the others wait for their predecessors' deletion
//! (`concurrency.rs`). Revoking or letting the holder's lease expire deletes its key, so the
//! next waiter acquires.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::proto::v3lockpb as lockpb;
use basalt_net::Metadata;
use basalt_net::{EtcdStatus, Router, Status};

use super::concurrency::{self, Cleanup, Waited};
use super::quota::Quota;
use crate::server::routing::gateway::Gateway;

/// Registers the Lock methods on `router`.
pub fn register(router: &mut Router, gateway: Rc<Gateway>, quota: Quota) {
    let g = gateway.clone();
    router.unary(
        "/v3lockpb.Lock/Lock",
        move |metadata: Metadata, request: lockpb::LockRequest| {
            let gateway = g.clone();
            async move {
                concurrency::check_name(&gateway, &metadata, &request.name, true)?;
                lock(gateway, quota, request).await
            }
        },
    );
    let g = gateway;
    router.unary(
        "/v3lockpb.Lock/Unlock",
        move |metadata: Metadata, request: lockpb::UnlockRequest| {
            let gateway = g.clone();
            async move {
                gateway.caller(&metadata)?.check_write(&request.key, &[])?;
                unlock(&gateway, request).await
            }
        },
    );
}

/// etcd's `Mutex.Lock`: join the waiters (or find our key from an earlier Lock with the same
/// lease), then wait for every older waiter to go.
async fn lock(
    gateway: Rc<Gateway>,
    quota: Quota,
    request: lockpb::LockRequest,
) -> Result<lockpb::LockResponse, Status> {
    let lease = concurrency::session_lease(&gateway, request.lease).await?;
    let prefix = concurrency::prefix(&request.name);
    let key = concurrency::waiter_key(&prefix, lease);
    // One txn for the uncontended path: create our key if it is new, and read the holder.
    let joined = concurrency::txn(
        &gateway,
        quota,
        pb::TxnRequest {
            compare: vec![concurrency::created_at(&key, 0)],
            success: vec![
                concurrency::put_op(&key, b"", lease),
                concurrency::first_created_op(&prefix),
            ],
            failure: vec![
                concurrency::get_op(&key),
                concurrency::first_created_op(&prefix),
            ],
        },
    )
    .await?;
    let header = joined.header.unwrap_or_default();
    let own_revision = if joined.succeeded {
        header.revision
    } else {
        let existing = concurrency::range_answer(&joined, 0)?;
        existing
            .kvs
            .first()
            .map(|kv| kv.create_revision)
            .ok_or_else(|| Status::internal("etcdserver: lock key vanished inside its txn"))?
    };
    let holder = concurrency::range_answer(&joined, 1)?.kvs.first();
    if holder.is_none_or(|kv| kv.create_revision == own_revision) {
        return Ok(lockpb::LockResponse {
            header: Some(header),
            key,
        });
    }

    // Until we hold, a call that ends early must take its key back out of the line.
    let unlock_on_exit = Cleanup::arm(
        gateway.clone(),
        pb::TxnRequest {
            success: vec![concurrency::delete_op(&key)],
            ..Default::default()
        },
    );
    match concurrency::wait_deletes(&gateway, &prefix, &key, own_revision - 1).await? {
        Waited::Holds => {}
        Waited::OwnKeyDeleted => {
            unlock_on_exit.disarm();
            return Err(EtcdStatus::MutexSessionExpired.into());
        }
    }
    // As etcd: make sure our key (our lease) still exists now that we hold.
    let own = concurrency::range(
        &gateway,
        &pb::RangeRequest {
            key: key.clone(),
            ..Default::default()
        },
    )
    .await?;
    unlock_on_exit.disarm();
    if own.kvs.is_empty() {
        return Err(EtcdStatus::MutexSessionExpired.into());
    }
    Ok(lockpb::LockResponse {
        header: own.header,
        key,
    })
}

/// etcd's Unlock: deletes the key Lock returned (whoever holds it; no key is no error).
async fn unlock(
    gateway: &Gateway,
    request: lockpb::UnlockRequest,
) -> Result<lockpb::UnlockResponse, Status> {
    if request.key.is_empty() {
        return Err(EtcdStatus::EmptyKey.into());
    }
    let deleted = gateway
        .propose(pb::DeleteRangeRequest {
            key: request.key,
            ..Default::default()
        })
        .await?;
    Ok(lockpb::UnlockResponse {
        header: deleted.header,
    })
}
