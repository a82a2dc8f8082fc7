//! What the client-facing services of one core use to reach the member, the same on every
//! core: on the raft owner's core the calls go straight to the member; on the others they go
//! over the core's link to the owner. Reads are served from the shared engine on the caller's
//! core either way, and each core has its own watch hub.

use std::rc::Rc;
use std::sync::Arc;

use basalt_engine::Engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Status;

use super::owner_link::{OwnerCall, RemoteOwner};
use crate::server::member::lease_owner;
use crate::server::member::raft_member::{Member, RaftStatus};
use crate::server::state_machine::apply::Applied;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::header::{HeaderSource, Identity};
use crate::server::state_machine::proposal::Proposal;
use crate::server::watch::watch_hub::WatchHub;

/// One core's way to the member.
pub struct Gateway {
    route: Route,
    engine: Arc<Engine>,
    headers: HeaderSource,
    watch_hub: Rc<WatchHub>,
}

enum Route {
    /// This core runs the member.
    Owner(Rc<Member>),
    /// The member runs on another core.
    Remote(RemoteOwner),
}

impl Gateway {
    /// The gateway of the raft owner's core.
    pub fn on_owner(member: Rc<Member>) -> Rc<Gateway> {
        Rc::new(Gateway {
            engine: member.shared_engine(),
            headers: member.headers(),
            watch_hub: member.watch_hub(),
            route: Route::Owner(member),
        })
    }

    /// The gateway of another core: calls go over `link`, watchers live in a hub of this core
    /// (fed by `WatchHub::publish_from_engine` when the owner rings).
    pub fn remote(link: RemoteOwner, engine: Arc<Engine>, headers: HeaderSource) -> Rc<Gateway> {
        let watch_hub = WatchHub::new(engine.clone(), headers.clone());
        watch_hub.set_pulls_from_engine();
        Rc::new(Gateway {
            watch_hub,
            engine,
            headers,
            route: Route::Remote(link),
        })
    }

    /// Proposes a write and waits until it is applied; returns its answer.
    pub async fn propose(&self, proposal: Proposal) -> Result<Applied, Status> {
        match &self.route {
            Route::Owner(member) => member.propose(proposal).await,
            Route::Remote(link) => link
                .call(|reply| OwnerCall::Propose(proposal, reply))
                .await
                .and_then(|answer| answer),
        }
    }

    /// Waits until a read of the engine on this core is linearizable: the owner's ReadIndex
    /// round, then its apply reaching the read index. The engine is shared, so what the owner
    /// applied is what this core reads.
    pub async fn wait_linearizable(&self) -> Result<(), Status> {
        match &self.route {
            Route::Owner(member) => member.wait_linearizable().await,
            Route::Remote(link) => link
                .call(OwnerCall::WaitLinearizable)
                .await
                .and_then(|answer| answer),
        }
    }

    /// Raft's numbers, for Status.
    pub async fn raft_status(&self) -> Result<RaftStatus, Status> {
        match &self.route {
            Route::Owner(member) => Ok(member.raft_status()),
            Route::Remote(link) => link.call(OwnerCall::RaftStatus).await,
        }
    }

    /// Alarms and member attributes as of the owner's last applied entry (a copy: they are
    /// small, and change only through raft).
    pub async fn cluster(&self) -> Result<ClusterState, Status> {
        match &self.route {
            Route::Owner(member) => Ok(member.cluster().clone()),
            Route::Remote(link) => link.call(OwnerCall::ClusterState).await,
        }
    }

    /// LeaseGrant, on the owner (its id generator and minimum TTL live there).
    pub async fn lease_grant(
        &self,
        request: pb::LeaseGrantRequest,
    ) -> Result<pb::LeaseGrantResponse, Status> {
        match &self.route {
            Route::Owner(member) => lease_owner::grant(member, request).await,
            Route::Remote(link) => link
                .call(|reply| OwnerCall::LeaseGrant(request, reply))
                .await
                .and_then(|answer| answer),
        }
    }

    /// A keep-alive of lease `id`: the TTL to answer (0: unknown or expired).
    pub async fn lease_renew(&self, id: i64) -> Result<i64, Status> {
        match &self.route {
            Route::Owner(member) => lease_owner::renew(member, id).await,
            Route::Remote(link) => link
                .call(|reply| OwnerCall::LeaseRenew(id, reply))
                .await
                .and_then(|answer| answer),
        }
    }

    /// (remaining, granted) TTL of lease `id` in seconds, if it exists.
    pub async fn lease_time_to_live(&self, id: i64) -> Result<Option<(i64, i64)>, Status> {
        match &self.route {
            Route::Owner(member) => Ok(lease_owner::time_to_live(member, id)),
            Route::Remote(link) => {
                link.call(|reply| OwnerCall::LeaseTimeToLive(id, reply))
                    .await
            }
        }
    }

    /// Every lease id.
    pub async fn lease_ids(&self) -> Result<Vec<i64>, Status> {
        match &self.route {
            Route::Owner(member) => Ok(lease_owner::ids(member)),
            Route::Remote(link) => link.call(OwnerCall::LeaseIds).await,
        }
    }

    /// The engine, for work on a thread of its own (defragmentation).
    pub fn shared_engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// The engine, for reads on this core.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The header every response carries (its revision is set by the caller).
    pub fn header(&self, revision: i64) -> pb::ResponseHeader {
        self.headers.header(revision)
    }

    pub fn identity(&self) -> Identity {
        self.headers.identity()
    }

    /// This core's watchers.
    pub fn watch_hub(&self) -> Rc<WatchHub> {
        self.watch_hub.clone()
    }
}
