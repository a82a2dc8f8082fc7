//! etcd's Election service (v3electionpb): Campaign, Proclaim, Leader, Observe, Resign —
//! etcd's `concurrency.Election` served inside the server. A campaigner is the key
//! `<name>/<lease hex>` holding its value; the oldest key under `<name>/` leads. A leadership is
//! named by its key and that key's create revision: Proclaim and Resign act only while the key
//! still has that create revision, so a leader whose lease ended cannot act on a later one.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::proto::mvccpb;
use basalt_net::proto::v3electionpb as epb;
use basalt_net::Metadata;
use basalt_net::{EtcdStatus, ResponseSink, Router, Status};

use super::concurrency::{self, Cleanup, Subscription, Waited};
use super::quota::Quota;
use crate::server::routing::gateway::Gateway;

/// Registers the Election methods on `router`.
pub fn register(router: &mut Router, gateway: Rc<Gateway>, quota: Quota) {
    let g = gateway.clone();
    router.unary(
        "/v3electionpb.Election/Campaign",
        move |metadata: Metadata, request: epb::CampaignRequest| {
            let gateway = g.clone();
            async move {
                concurrency::check_name(&gateway, &metadata, &request.name, true)?;
                campaign(gateway, quota, request).await
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/v3electionpb.Election/Proclaim",
        move |metadata: Metadata, request: epb::ProclaimRequest| {
            let gateway = g.clone();
            async move {
                if let Some(leader) = &request.leader {
                    concurrency::check_name(&gateway, &metadata, &leader.name, true)?;
                }
                let leader = request.leader.ok_or(EtcdStatus::ElectionMissingLeaderKey)?;
                let header = proclaim(&gateway, quota, &leader, &request.value).await?;
                Ok(epb::ProclaimResponse {
                    header: Some(header),
                })
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/v3electionpb.Election/Leader",
        move |metadata: Metadata, request: epb::LeaderRequest| {
            let gateway = g.clone();
            async move {
                concurrency::check_name(&gateway, &metadata, &request.name, false)?;
                leader(&gateway, &request.name).await
            }
        },
    );
    let g = gateway.clone();
    router.server_streaming(
        "/v3electionpb.Election/Observe",
        move |metadata: Metadata, request: epb::LeaderRequest, responses| {
            let gateway = g.clone();
            async move {
                concurrency::check_name(&gateway, &metadata, &request.name, false)?;
                observe(&gateway, &request.name, responses).await
            }
        },
    );
    let g = gateway;
    router.unary(
        "/v3electionpb.Election/Resign",
        move |metadata: Metadata, request: epb::ResignRequest| {
            let gateway = g.clone();
            async move {
                if let Some(leader) = &request.leader {
                    concurrency::check_name(&gateway, &metadata, &leader.name, true)?;
                }
                let leader = request.leader.ok_or(EtcdStatus::ElectionMissingLeaderKey)?;
                let resigned = concurrency::txn(&gateway, quota, resign_txn(&leader)).await?;
                // As etcd: resigning a leadership that already ended is no error.
                Ok(epb::ResignResponse {
                    header: resigned.header,
                })
            }
        },
    );
}

/// etcd's `Election.Campaign`: join the campaigners with our value (or find our key from an
/// earlier campaign with the same lease, proclaiming the new value on it), then wait for every
/// older campaigner to go.
async fn campaign(
    gateway: Rc<Gateway>,
    quota: Quota,
    request: epb::CampaignRequest,
) -> Result<epb::CampaignResponse, Status> {
    let lease = concurrency::session_lease(&gateway, request.lease).await?;
    let prefix = concurrency::prefix(&request.name);
    let key = concurrency::waiter_key(&prefix, lease);
    let joined = concurrency::txn(
        &gateway,
        quota,
        pb::TxnRequest {
            compare: vec![concurrency::created_at(&key, 0)],
            success: vec![concurrency::put_op(&key, &request.value, lease)],
            failure: vec![concurrency::get_op(&key)],
        },
    )
    .await?;
    let header = joined.header.unwrap_or_default();
    let mut leadership = epb::LeaderKey {
        name: request.name.clone(),
        key: key.clone(),
        rev: header.revision,
        lease,
    };
    let resign_on_exit;
    if joined.succeeded {
        resign_on_exit = Cleanup::arm(gateway.clone(), resign_txn(&leadership));
    } else {
        let existing = concurrency::range_answer(&joined, 0)?
            .kvs
            .first()
            .cloned()
            .ok_or_else(|| Status::internal("etcdserver: campaign key vanished inside its txn"))?;
        leadership.rev = existing.create_revision;
        resign_on_exit = Cleanup::arm(gateway.clone(), resign_txn(&leadership));
        if existing.value != request.value {
            // A failed proclaim resigns (the armed cleanup), as etcd does.
            proclaim(&gateway, quota, &leadership, &request.value).await?;
        }
    }
    match concurrency::wait_deletes(&gateway, &prefix, &key, leadership.rev - 1).await? {
        Waited::Holds => {}
        Waited::OwnKeyDeleted => {
            // The lease ended while waiting: this campaign can never lead. etcd would wait
            // on and report a leadership already lost; the next Proclaim would say this.
            resign_on_exit.disarm();
            return Err(EtcdStatus::ElectionNotLeader.into());
        }
    }
    resign_on_exit.disarm();
    Ok(epb::CampaignResponse {
        header: Some(header),
        leader: Some(leadership),
    })
}

/// etcd's `Election.Proclaim`: a new value on the leader key, while it is still this
/// leadership's key.
async fn proclaim(
    gateway: &Gateway,
    quota: Quota,
    leader: &epb::LeaderKey,
    value: &[u8],
) -> Result<pb::ResponseHeader, Status> {
    let proclaimed = concurrency::txn(
        gateway,
        quota,
        pb::TxnRequest {
            compare: vec![concurrency::created_at(&leader.key, leader.rev)],
            success: vec![concurrency::put_op(&leader.key, value, leader.lease)],
            failure: Vec::new(),
        },
    )
    .await?;
    if !proclaimed.succeeded {
        return Err(EtcdStatus::ElectionNotLeader.into());
    }
    Ok(proclaimed.header.unwrap_or_default())
}

/// Deletes the leader key while it is still this leadership's key.
fn resign_txn(leader: &epb::LeaderKey) -> pb::TxnRequest {
    pb::TxnRequest {
        compare: vec![concurrency::created_at(&leader.key, leader.rev)],
        success: vec![concurrency::delete_op(&leader.key)],
        failure: Vec::new(),
    }
}

/// etcd's `Election.Leader`: the oldest campaigner's key-value.
async fn leader(gateway: &Gateway, name: &[u8]) -> Result<epb::LeaderResponse, Status> {
    let found = concurrency::range_first_created(gateway, &concurrency::prefix(name)).await?;
    let kv = found
        .kvs
        .into_iter()
        .next()
        .ok_or(EtcdStatus::ElectionNoLeader)?;
    Ok(epb::LeaderResponse {
        header: found.header,
        kv: Some(kv),
    })
}

/// etcd's `Election.Observe`: the leader now (or, if none, the first one to come), then its
/// every proclaim, and on its deletion the next leader, until the client goes away. Sending
/// waits for the client's window, and the hub holds at most its stream queue for us, so a slow
/// observer costs bounded memory.
async fn observe(
    gateway: &Gateway,
    name: &[u8],
    mut responses: ResponseSink<epb::LeaderResponse>,
) -> Result<(), Status> {
    let prefix = concurrency::prefix(name);
    loop {
        let found = concurrency::range_first_created(gateway, &prefix).await?;
        let found_header = found.header.unwrap_or_default();
        let (header, leader) = match found.kvs.into_iter().next() {
            Some(kv) => (found_header, kv),
            None => first_leader(gateway, &prefix, found_header.revision + 1).await?,
        };
        let leader_key = leader.key.clone();
        let from = header.revision + 1;
        responses
            .send(&epb::LeaderResponse {
                header: Some(header),
                kv: Some(leader),
            })
            .await?;
        // Follow this leader's key until it is deleted, then look for the next leader.
        let watch = Subscription::open(gateway.watch_hub());
        watch.watch(&leader_key, Vec::new(), from, false);
        'following: loop {
            let (header, events) = watch.next_events().await?;
            for event in events {
                if event.r#type == mvccpb::event::EventType::Delete as i32 {
                    break 'following;
                }
                responses
                    .send(&epb::LeaderResponse {
                        header: Some(header),
                        kv: event.kv,
                    })
                    .await?;
            }
        }
    }
}

/// Waits for the first put under `prefix` from `start_revision`: the first campaigner of an
/// election nobody leads. The header's revision is that put's (etcd's `observe` does so, since
/// one watch response may carry several revisions).
async fn first_leader(
    gateway: &Gateway,
    prefix: &[u8],
    start_revision: i64,
) -> Result<(pb::ResponseHeader, mvccpb::KeyValue), Status> {
    let watch = Subscription::open(gateway.watch_hub());
    watch.watch(
        prefix,
        concurrency::prefix_end(prefix),
        start_revision,
        false,
    );
    loop {
        let (mut header, events) = watch.next_events().await?;
        let put = events
            .into_iter()
            .find(|event| event.r#type == mvccpb::event::EventType::Put as i32)
            .and_then(|event| event.kv);
        if let Some(kv) = put {
            header.revision = kv.mod_revision;
            return Ok((header, kv));
        }
    }
}
