//! The link from a core that is not the raft owner to the owner: a bounded cross-core channel
//! of calls, each an owner operation (`member::owner_op`: propose a write, wait for a
//! linearizable read point, read raft's numbers, the lease operations) answered on a oneshot. The owner serves each link with a bounded number of calls in flight,
//! so a flood on one core waits in that core's channel instead of growing the owner's memory.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use basalt_net::{EtcdStatus, Status};
use futures_channel::oneshot;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;

use crate::server::member::owner_op::OwnerOp;
use crate::server::member::raft_member::Member;
use crate::server::metrics::OwnerLinkDepth;

/// Calls a link's channel holds before the sending core waits.
pub const CALL_QUEUE_LIMIT: usize = 4096;
/// Calls from one core the owner works on at once; the member's own limits (waiting proposals,
/// request timeout) apply inside.
const CALLS_IN_FLIGHT_PER_LINK: u64 = 16 * 1024;

/// A call from another core: one owner operation and the oneshot its answer goes back on,
/// closed over so the link carries every kind of operation alike.
pub struct OwnerCall(Box<dyn FnOnce(Rc<Member>) -> Answering + Send>);

/// An operation running on the owner, which sends its answer when it ends.
type Answering = Pin<Box<dyn Future<Output = ()>>>;

impl OwnerCall {
    fn new<Op: OwnerOp>(op: Op, reply: oneshot::Sender<Op::Answer>) -> OwnerCall {
        OwnerCall(Box::new(move |member| {
            Box::pin(async move {
                // A caller that gave up dropped its receiver; its answer is simply not
                // delivered.
                let _ = reply.send(op.run(member).await);
            })
        }))
    }
}

/// The sending end of a link, on a core that is not the raft owner.
pub struct RemoteOwner {
    calls: ConnectedSender<OwnerCall>,
    /// `/metrics`: this link's depth (the calls this core sent).
    depth: Arc<OwnerLinkDepth>,
}

impl RemoteOwner {
    pub fn new(calls: ConnectedSender<OwnerCall>, depth: Arc<OwnerLinkDepth>) -> RemoteOwner {
        RemoteOwner { calls, depth }
    }

    /// Sends `op` to the owner and waits for its answer. A closed link or a dropped answer
    /// means the owner stopped (it exits the process on a storage fault).
    pub async fn call<Op: OwnerOp>(&self, op: Op) -> Result<Op::Answer, Status> {
        let (sender, receiver) = oneshot::channel();
        self.depth.on_send();
        if self.calls.send(OwnerCall::new(op, sender)).await.is_err() {
            self.depth.on_refused();
            return Err(EtcdStatus::Stopped.into());
        }
        receiver.await.map_err(|_| EtcdStatus::Stopped.into())
    }
}

/// Serves one link on the owner's executor until the other core closes it.
pub async fn serve_link(
    member: Rc<Member>,
    calls: ConnectedReceiver<OwnerCall>,
    depth: Arc<OwnerLinkDepth>,
) {
    let in_flight = Rc::new(Semaphore::new(CALLS_IN_FLIGHT_PER_LINK));
    while let Some(OwnerCall(run)) = calls.recv().await {
        let permit = match in_flight.acquire_static_permit(1).await {
            Ok(permit) => permit,
            Err(_) => return, // the semaphore is never closed; nothing to serve with
        };
        // Taken once it runs: a call held back by the in-flight bound still waits.
        depth.on_taken();
        let answered = run(member.clone());
        let depth = depth.clone();
        glommio::spawn_local(async move {
            answered.await;
            depth.on_answered();
            drop(permit);
        })
        .detach();
    }
}
