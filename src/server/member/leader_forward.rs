//! Questions a follower forwards to the leader over the peer transport's control lane, as
//! small numbered request and answer frames beside raft's messages (etcd asks them over its
//! peer HTTP):
//!
//! - lease keep-alives and TimeToLive: only the leader's lessor knows when a lease expires;
//! - MemberPromote: only the leader knows how far a learner is (etcd's `PromoteMember`
//!   forwards to `/members/promote/<id>` on the leader's peer URL).
//!
//! A frame of this module opens with byte 0, which never opens a raft message's protobuf
//! encoding (field number 0 does not exist), so the peer link tells the two apart by it:
//!
//! ```text
//! request   0 u8 | kind u8 (1 renew, 2 time to live, 3 promote) | request id u64 | lease or member id
//! answer    0 u8 | kind u8 (request kind + 16) | request id u64 | outcome u8 | a i64 | b i64
//! ```
//!
//! Outcomes: 0 done (renew: `a` = TTL, 0 for an unknown lease; time to live: `a` = remaining,
//! `b` = granted), 1 the receiver cannot answer now (its lessor is not primary, it does not
//! lead, or a proposal failed: the asker retries), 2 unknown lease (time to live) or member
//! (promote), 4 not a learner, 5 learner not in sync (promote: etcd's final refusals).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use basalt_net::peer::{Lane, Transport};
use basalt_net::{EtcdStatus, Status};
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::oneshot;

use super::lease_owner;
use super::raft_member::Member;
use crate::server::state_machine::membership_change::MembershipChange;

/// The first byte of every frame of this module.
pub const FRAME_MARKER: u8 = 0;

/// Forwarded questions waiting for their answer, at most: one per keep-alive, TimeToLive or
/// promotion in flight on this member's clients; beyond, the client is told to retry (too many requests).
const PENDING_MAX: usize = 4096;

const KIND_RENEW: u8 = 1;
const KIND_TIME_TO_LIVE: u8 = 2;
const KIND_PROMOTE: u8 = 3;
const KIND_RENEW_ANSWER: u8 = 17;
const KIND_TIME_TO_LIVE_ANSWER: u8 = 18;
const KIND_PROMOTE_ANSWER: u8 = 19;

const OUTCOME_DONE: u8 = 0;
const OUTCOME_NOT_PRIMARY: u8 = 1;
const OUTCOME_NOT_FOUND: u8 = 2;
const OUTCOME_FAILED: u8 = 3;
const OUTCOME_NOT_LEARNER: u8 = 4;
const OUTCOME_NOT_READY: u8 = 5;

const REQUEST_BYTES: usize = 1 + 1 + 8 + 8;
const ANSWER_BYTES: usize = 1 + 1 + 8 + 1 + 8 + 8;

/// What a follower asks the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderQuery {
    /// A keep-alive of this lease.
    Renew(i64),
    /// TimeToLive of this lease.
    TimeToLive(i64),
    /// MemberPromote of this learner.
    Promote(u64),
}

/// The leader's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderReply {
    /// The keep-alive's TTL (0: unknown or expired lease).
    Renewed(i64),
    /// (remaining, granted) TTL, or `None` for an unknown lease.
    TimeToLive(Option<(i64, i64)>),
    /// The promotion applied, or etcd's final refusal of it (member not found, not a
    /// learner, learner not in sync).
    Promoted(Result<(), EtcdStatus>),
    /// The asked member could not answer (not primary, a failed checkpoint): ask again.
    Retry,
    /// Too many questions in flight here.
    Busy,
}

/// The asking side: numbered questions in flight and their answer slots.
pub struct LeaderForwarder {
    transport: Transport,
    pending: RefCell<HashMap<u64, (LeaderQuery, oneshot::Sender<LeaderReply>)>>,
    next_request: Cell<u64>,
}

impl LeaderForwarder {
    /// A forwarder sending over `transport`.
    pub fn new(transport: Transport) -> LeaderForwarder {
        LeaderForwarder {
            transport,
            pending: RefCell::default(),
            next_request: Cell::new(1),
        }
    }

    /// Asks member `to`; `None` when the question could not leave or its answer was lost
    /// (the caller bounds the wait).
    pub fn ask(
        self: &Rc<Self>,
        to: u64,
        query: LeaderQuery,
    ) -> Pin<Box<dyn Future<Output = Option<LeaderReply>>>> {
        if self.pending.borrow().len() >= PENDING_MAX {
            return Box::pin(async { Some(LeaderReply::Busy) });
        }
        let request = self.next_request.get();
        self.next_request.set(request.wrapping_add(1).max(1));
        let (kind, lease) = match query {
            LeaderQuery::Renew(id) => (KIND_RENEW, id),
            LeaderQuery::TimeToLive(id) => (KIND_TIME_TO_LIVE, id),
            LeaderQuery::Promote(id) => (KIND_PROMOTE, id as i64),
        };
        let mut frame = BytesMut::with_capacity(REQUEST_BYTES);
        frame.put_u8(FRAME_MARKER);
        frame.put_u8(kind);
        frame.put_u64(request);
        frame.put_i64(lease);
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(request, (query, sender));
        if self
            .transport
            .send(to, Lane::Control, frame.freeze())
            .is_err()
        {
            self.pending.borrow_mut().remove(&request);
            return Box::pin(async { None });
        }
        let pending = PendingGuard {
            forwarder: self.clone(),
            request,
        };
        Box::pin(async move {
            let answer = receiver.await.ok();
            drop(pending);
            answer
        })
    }

    /// Hands a received answer to its question; unknown or malformed answers are dropped.
    fn answer(&self, kind: u8, request: u64, outcome: u8, a: i64, b: i64) {
        let Some((query, sender)) = self.pending.borrow_mut().remove(&request) else {
            return; // its asker gave up
        };
        let reply = match (query, kind, outcome) {
            (_, _, OUTCOME_NOT_PRIMARY | OUTCOME_FAILED) => LeaderReply::Retry,
            (LeaderQuery::Renew(_), KIND_RENEW_ANSWER, OUTCOME_DONE) => LeaderReply::Renewed(a),
            (LeaderQuery::TimeToLive(_), KIND_TIME_TO_LIVE_ANSWER, OUTCOME_DONE) => {
                LeaderReply::TimeToLive(Some((a, b)))
            }
            (LeaderQuery::TimeToLive(_), KIND_TIME_TO_LIVE_ANSWER, OUTCOME_NOT_FOUND) => {
                LeaderReply::TimeToLive(None)
            }
            (LeaderQuery::Promote(_), KIND_PROMOTE_ANSWER, outcome) => match outcome {
                OUTCOME_DONE => LeaderReply::Promoted(Ok(())),
                OUTCOME_NOT_FOUND => LeaderReply::Promoted(Err(EtcdStatus::MemberNotFound)),
                OUTCOME_NOT_LEARNER => LeaderReply::Promoted(Err(EtcdStatus::MemberNotLearner)),
                OUTCOME_NOT_READY => LeaderReply::Promoted(Err(EtcdStatus::LearnerNotReady)),
                _ => LeaderReply::Retry,
            },
            _ => {
                tracing::warn!(
                    kind,
                    outcome,
                    "dropped a lease answer that fits no question"
                );
                LeaderReply::Retry
            }
        };
        let _ = sender.send(reply);
    }
}

impl LeaderForwarder {
    /// Sends an answer to `to`; a lost answer is the asker's timeout and retry.
    fn send_answer(&self, to: u64, kind: u8, request: u64, outcome: u8, a: i64, b: i64) {
        let mut answer = BytesMut::with_capacity(ANSWER_BYTES);
        answer.put_u8(FRAME_MARKER);
        answer.put_u8(kind);
        answer.put_u64(request);
        answer.put_u8(outcome);
        answer.put_i64(a);
        answer.put_i64(b);
        let _ = self.transport.send(to, Lane::Control, answer.freeze());
    }
}

/// How long a follower waits between two tries of a forwarded promotion (a leader being
/// elected, an answer lost).
const PROMOTE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// etcd's `PromoteMember` on a member that does not lead: asks the leader (whoever leads at
/// each try, this member too if it comes to lead) until the promotion applies, the leader
/// refuses it for good, or etcd's request timeout passes ("request timed out").
pub async fn promote_through_leader(member: &Rc<Member>, learner: u64) -> Result<(), Status> {
    let deadline = std::time::Instant::now() + member.request_timeout();
    let own = member.headers().identity().member_id;
    loop {
        let leader = member.raft_status().leader;
        let outlet = member.peer_outlet();
        if leader == own {
            let change = MembershipChange::Promote { member_id: learner };
            match member.propose_membership(change).await {
                Err(status) if status == EtcdStatus::NotLeader.into() => {}
                answer => return answer,
            }
        } else if let (Some(outlet), true) = (outlet, leader != 0) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let asked = futures_lite::future::or(
                outlet.forward_to_leader(leader, LeaderQuery::Promote(learner)),
                async {
                    glommio::timer::sleep(left).await;
                    None
                },
            )
            .await;
            match asked {
                Some(LeaderReply::Promoted(answer)) => return answer.map_err(Status::from),
                Some(LeaderReply::Busy) => return Err(EtcdStatus::TooManyRequests.into()),
                _ => {}
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(EtcdStatus::Timeout.into());
        }
        glommio::timer::sleep(PROMOTE_RETRY).await;
    }
}

/// A forwarded promotion, proposed here as this member's own: its outcome for the asker.
/// etcd's follower gives up at once on three refusals only (member not found, not a learner,
/// learner not in sync) and retries every other failure until its request timeout.
async fn promote_here(member: &Rc<Member>, learner: u64) -> u8 {
    let change = MembershipChange::Promote { member_id: learner };
    match member.propose_membership(change).await {
        Ok(()) => OUTCOME_DONE,
        Err(status) if status == EtcdStatus::MemberNotFound.into() => OUTCOME_NOT_FOUND,
        Err(status) if status == EtcdStatus::MemberNotLearner.into() => OUTCOME_NOT_LEARNER,
        Err(status) if status == EtcdStatus::LearnerNotReady.into() => OUTCOME_NOT_READY,
        Err(_) => OUTCOME_FAILED,
    }
}

/// Removes a question whose asker stopped waiting (timed out, or its client went away), so
/// the pending map stays bounded by the questions really waiting.
struct PendingGuard {
    forwarder: Rc<LeaderForwarder>,
    request: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.forwarder.pending.borrow_mut().remove(&self.request);
    }
}

/// Handles one frame of this module from member `from`: answers a question (on a task of its
/// own: a renew may propose a checkpoint through raft first), or hands an answer to its
/// question. A malformed frame is dropped with a warning.
pub fn on_frame(member: &Rc<Member>, forwarder: &Rc<LeaderForwarder>, from: u64, frame: Bytes) {
    let read_u64 = |at: usize| u64::from_be_bytes(frame[at..at + 8].try_into().unwrap());
    let kind = frame.get(1).copied().unwrap_or(u8::MAX);
    match kind {
        KIND_PROMOTE if frame.len() == REQUEST_BYTES => {
            let request = read_u64(2);
            let learner = read_u64(10);
            let (member, forwarder) = (member.clone(), forwarder.clone());
            glommio::spawn_local(async move {
                let outcome = promote_here(&member, learner).await;
                forwarder.send_answer(from, KIND_PROMOTE_ANSWER, request, outcome, 0, 0);
            })
            .detach();
        }
        KIND_RENEW | KIND_TIME_TO_LIVE if frame.len() == REQUEST_BYTES => {
            let request = read_u64(2);
            let lease = read_u64(10) as i64;
            let (member, forwarder) = (member.clone(), forwarder.clone());
            glommio::spawn_local(async move {
                let (outcome, a, b) = if kind == KIND_RENEW {
                    match lease_owner::renew_here(&member, lease).await {
                        Ok(Some(ttl)) => (OUTCOME_DONE, ttl, 0),
                        Ok(None) => (OUTCOME_NOT_PRIMARY, 0, 0),
                        Err(_) => (OUTCOME_FAILED, 0, 0),
                    }
                } else {
                    match lease_owner::time_to_live_here(&member, lease) {
                        None => (OUTCOME_NOT_PRIMARY, 0, 0),
                        Some(None) => (OUTCOME_NOT_FOUND, 0, 0),
                        Some(Some((remaining, granted))) => (OUTCOME_DONE, remaining, granted),
                    }
                };
                forwarder.send_answer(from, kind + 16, request, outcome, a, b);
            })
            .detach();
        }
        KIND_RENEW_ANSWER | KIND_TIME_TO_LIVE_ANSWER | KIND_PROMOTE_ANSWER
            if frame.len() == ANSWER_BYTES =>
        {
            let request = read_u64(2);
            let outcome = frame[10];
            let a = read_u64(11) as i64;
            let b = read_u64(19) as i64;
            forwarder.answer(kind, request, outcome, a, b);
        }
        _ => tracing::warn!(
            from = format!("{from:x}"),
            kind,
            bytes = frame.len(),
            "dropped a malformed frame forwarded to or from the leader"
        ),
    }
}
