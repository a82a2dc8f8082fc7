//! What the client-facing services of one core use to reach the member, the same on every
//! core: on the raft owner's core the calls go straight to the member; on the others they go
//! over the core's link to the owner. Reads are served from the shared engine on the caller's
//! core either way, and each core has its own watch hub.

use std::rc::Rc;
use std::sync::Arc;

use basalt_engine::Engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{Metadata, Status};

use super::owner_link::RemoteOwner;
use crate::server::member::owner_op::{OwnerOp, Propose, ProposeAs, WaitLinearizable};
use crate::server::member::raft_member::Member;
use crate::server::state_machine::auth_caller::Caller;
use crate::server::state_machine::auth_hub::{AuthHub, LocalAuth};
use crate::server::state_machine::header::{HeaderSource, Identity};
use crate::server::state_machine::typed_write::Write;
use crate::server::watch::watch_hub::WatchHub;
use crate::server::watch::watcher_presence::WatcherPresence;

/// One core's way to the member.
pub struct Gateway {
    route: Route,
    engine: Arc<Engine>,
    headers: HeaderSource,
    watch_hub: Rc<WatchHub>,
    auth: LocalAuth,
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
            auth: LocalAuth::new(member.auth_hub()),
            route: Route::Owner(member),
        })
    }

    /// The gateway of another core: calls go over `link`, watchers live in a hub of this core
    /// (fed by `WatchHub::publish_from_engine` when the owner rings).
    pub fn remote(
        link: RemoteOwner,
        engine: Arc<Engine>,
        headers: HeaderSource,
        auth: Arc<AuthHub>,
        watchers: WatcherPresence,
    ) -> Rc<Gateway> {
        let watch_hub = WatchHub::new(engine.clone(), headers.clone());
        watch_hub.set_pulls_from_engine(watchers);
        Rc::new(Gateway {
            watch_hub,
            engine,
            headers,
            auth: LocalAuth::new(auth),
            route: Route::Remote(link),
        })
    }

    /// Runs an owner operation: directly on the owner's core, over this core's link elsewhere.
    pub async fn call<Op: OwnerOp>(&self, op: Op) -> Result<Op::Answer, Status> {
        match &self.route {
            Route::Owner(member) => Ok(op.run(member.clone()).await),
            Route::Remote(link) => link.call(op).await,
        }
    }

    /// Proposes a client write and waits until it is applied; returns its response.
    pub async fn propose<W: Write>(&self, write: W) -> Result<W::Answer, Status> {
        self.call(Propose(write)).await?
    }

    /// Proposes a client write on behalf of `caller` (its user and the auth revision its
    /// permissions were checked at; apply refuses it if auth changed since).
    pub async fn propose_as<W: Write>(
        &self,
        caller: &Caller,
        write: W,
    ) -> Result<W::Answer, Status> {
        self.call(ProposeAs {
            user: caller.user.clone(),
            auth_revision: caller.revision,
            write,
        })
        .await?
    }

    /// Who sent a call (etcd's AuthInfo from the call's token or client certificate), with
    /// the auth store the checks of this call use.
    pub fn caller(&self, metadata: &Metadata) -> Result<Caller, Status> {
        Caller::of(&self.auth, metadata)
    }

    /// The auth store as of the last applied auth change.
    pub fn auth(&self) -> &LocalAuth {
        &self.auth
    }

    /// Waits until a read of the engine on this core is linearizable: the owner's ReadIndex
    /// round, then its apply reaching the read index. The engine is shared, so what the owner
    /// applied is what this core reads.
    pub async fn wait_linearizable(&self) -> Result<(), Status> {
        self.call(WaitLinearizable).await?
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
