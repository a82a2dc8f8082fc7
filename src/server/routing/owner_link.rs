//! The link from a core that is not the raft owner to the owner: a bounded cross-core channel
//! of calls (propose a write, wait for a linearizable read point, read raft's numbers), each
//! answered on a oneshot. The owner serves each link with a bounded number of calls in flight,
//! so a flood on one core waits in that core's channel instead of growing the owner's memory.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use futures_channel::oneshot;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;

use crate::server::member::lease_owner;
use crate::server::member::raft_member::{Member, RaftStatus};
use crate::server::state_machine::apply::Applied;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::proposal::Proposal;

/// Calls a link's channel holds before the sending core waits.
pub const CALL_QUEUE_LIMIT: usize = 4096;
/// Calls from one core the owner works on at once; the member's own limits (waiting proposals,
/// request timeout) apply inside.
const CALLS_IN_FLIGHT_PER_LINK: u64 = 16 * 1024;

/// A call from another core, with the oneshot its answer goes back on.
pub enum OwnerCall {
    Propose(Proposal, oneshot::Sender<Result<Applied, Status>>),
    WaitLinearizable(oneshot::Sender<Result<(), Status>>),
    RaftStatus(oneshot::Sender<RaftStatus>),
    /// A copy of the alarms and member attributes as of the last applied entry.
    ClusterState(oneshot::Sender<ClusterState>),
    LeaseGrant(
        pb::LeaseGrantRequest,
        oneshot::Sender<Result<pb::LeaseGrantResponse, Status>>,
    ),
    /// A keep-alive: the TTL to answer.
    LeaseRenew(i64, oneshot::Sender<Result<i64, Status>>),
    /// (remaining, granted) TTL of a lease, if it exists.
    LeaseTimeToLive(i64, oneshot::Sender<Option<(i64, i64)>>),
    LeaseIds(oneshot::Sender<Vec<i64>>),
}

/// The sending end of a link, on a core that is not the raft owner.
pub struct RemoteOwner {
    calls: ConnectedSender<OwnerCall>,
}

impl RemoteOwner {
    pub fn new(calls: ConnectedSender<OwnerCall>) -> RemoteOwner {
        RemoteOwner { calls }
    }

    /// Sends a call made with the answer's oneshot and waits for the answer. A closed link or
    /// a dropped answer means the owner stopped (it exits the process on a storage fault).
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> OwnerCall,
    ) -> Result<T, Status> {
        let (sender, receiver) = oneshot::channel();
        if self.calls.send(make(sender)).await.is_err() {
            return Err(EtcdStatus::Stopped.into());
        }
        receiver.await.map_err(|_| EtcdStatus::Stopped.into())
    }
}

/// Serves one link on the owner's executor until the other core closes it.
pub async fn serve_link(member: Rc<Member>, calls: ConnectedReceiver<OwnerCall>) {
    let in_flight = Rc::new(Semaphore::new(CALLS_IN_FLIGHT_PER_LINK));
    while let Some(call) = calls.recv().await {
        let permit = match in_flight.acquire_static_permit(1).await {
            Ok(permit) => permit,
            Err(_) => return, // the semaphore is never closed; nothing to serve with
        };
        let member = member.clone();
        glommio::spawn_local(async move {
            answer(&member, call).await;
            drop(permit);
        })
        .detach();
    }
}

async fn answer(member: &Rc<Member>, call: OwnerCall) {
    // A caller that gave up dropped its receiver; its answer is simply not delivered.
    match call {
        OwnerCall::Propose(proposal, reply) => {
            let _ = reply.send(member.propose(proposal).await);
        }
        OwnerCall::WaitLinearizable(reply) => {
            let _ = reply.send(member.wait_linearizable().await);
        }
        OwnerCall::RaftStatus(reply) => {
            let _ = reply.send(member.raft_status());
        }
        OwnerCall::ClusterState(reply) => {
            let _ = reply.send(member.cluster().clone());
        }
        OwnerCall::LeaseGrant(request, reply) => {
            let _ = reply.send(lease_owner::grant(member, request).await);
        }
        OwnerCall::LeaseRenew(id, reply) => {
            let _ = reply.send(lease_owner::renew(member, id).await);
        }
        OwnerCall::LeaseTimeToLive(id, reply) => {
            let _ = reply.send(lease_owner::time_to_live(member, id));
        }
        OwnerCall::LeaseIds(reply) => {
            let _ = reply.send(lease_owner::ids(member));
        }
    }
}
