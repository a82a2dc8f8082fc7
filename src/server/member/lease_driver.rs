//! The lessor's async shell on the raft owner's executor: every half second (etcd's lessor
//! loop period) it reads the clock, takes the leases that expired and the checkpoints that are
//! due, and proposes them through raft in bounded batches.
//!
//! Rates follow etcd: at most 500 revocations per round (its `leaseRevokeRate / 2`), here in
//! proposals of at most [`EXPIRE_PER_PROPOSAL`] leases so one raft entry never deletes an
//! unbounded number of keys; checkpoints in proposals of at most 1000 (its
//! `maxLeaseCheckpointBatchSize`), up to 500 proposals a round.

use std::rc::Rc;
use std::time::Duration;

use basalt_net::proto::etcdserverpb as pb;

use super::raft_member::Member;
use crate::server::state_machine::proposal::Proposal;

/// Period of the lessor loop (etcd's).
const ROUND: Duration = Duration::from_millis(500);
/// Leases revoked per round at most.
const EXPIRE_PER_ROUND: usize = 500;
/// Leases revoked per proposal at most.
pub const EXPIRE_PER_PROPOSAL: usize = 16;
/// Checkpoints per proposal at most.
const CHECKPOINTS_PER_PROPOSAL: usize = 1000;
/// Checkpoint proposals per round at most.
const CHECKPOINT_PROPOSALS_PER_ROUND: usize = 500;

/// Starts the lessor loop for `member`.
pub fn start(member: Rc<Member>) {
    glommio::spawn_local(run(member)).detach();
}

async fn run(member: Rc<Member>) {
    loop {
        glommio::timer::sleep(ROUND).await;
        if member.is_stopped() {
            return;
        }
        let now = member.now_ms();
        let expired = member.lessor().expired(now, EXPIRE_PER_ROUND);
        for ids in expired.chunks(EXPIRE_PER_PROPOSAL) {
            propose_detached(&member, Proposal::LeaseExpire(ids.to_vec()));
        }
        for _ in 0..CHECKPOINT_PROPOSALS_PER_ROUND {
            let due = member
                .lessor()
                .due_checkpoints(now, CHECKPOINTS_PER_PROPOSAL);
            let full = due.len() == CHECKPOINTS_PER_PROPOSAL;
            if !due.is_empty() {
                propose_detached(&member, checkpoint(&due));
            }
            if !full {
                break;
            }
        }
    }
}

/// A checkpoint proposal recording `(lease id, remaining seconds)` pairs.
pub fn checkpoint(remaining: &[(i64, i64)]) -> Proposal {
    Proposal::LeaseCheckpoint(pb::LeaseCheckpointRequest {
        checkpoints: remaining
            .iter()
            .map(|&(id, remaining_ttl)| pb::LeaseCheckpoint { id, remaining_ttl })
            .collect(),
    })
}

/// Proposes without waiting: a lost proposal is retried by the lessor's own rules (an expired
/// lease is handed out again after the retry interval, a checkpoint one interval later).
fn propose_detached(member: &Rc<Member>, proposal: Proposal) {
    let member = member.clone();
    glommio::spawn_local(async move {
        if let Err(status) = member.propose(proposal).await {
            tracing::warn!(?status, "lease proposal failed");
        }
    })
    .detach();
}
