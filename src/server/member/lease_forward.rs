//! Lease keep-alives and TimeToLive through any member: only the leader's lessor knows when a
//! lease expires, so a follower forwards them to the leader (etcd forwards them over its peer
//! HTTP; basalt over the peer transport's control lane, as small request and answer frames
//! beside raft's messages).
//!
//! A frame of this module opens with byte 0, which never opens a raft message's protobuf
//! encoding (field number 0 does not exist), so the peer link tells the two apart by it:
//!
//! ```text
//! request   0 u8 | kind u8 (1 renew, 2 time to live) | request id u64 | lease id i64
//! answer    0 u8 | kind u8 (17 renew, 18 time to live) | request id u64 | outcome u8 | a i64 | b i64
//! ```
//!
//! Outcomes: 0 done (renew: `a` = TTL, 0 for an unknown lease; time to live: `a` = remaining,
//! `b` = granted), 1 the receiver's lessor is not primary (the asker retries), 2 unknown lease
//! (time to live), 3 failed (the renew's checkpoint proposal failed; the asker retries).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use basalt_net::peer::{Lane, Transport};
use bytes::{BufMut, Bytes, BytesMut};
use futures_channel::oneshot;

use super::lease_owner;
use super::raft_member::Member;

/// The first byte of every frame of this module.
pub const FRAME_MARKER: u8 = 0;

/// Forwarded questions waiting for their answer, at most: one per keep-alive or TimeToLive in
/// flight on this member's clients; beyond, the client is told to retry (too many requests).
const PENDING_MAX: usize = 4096;

const KIND_RENEW: u8 = 1;
const KIND_TIME_TO_LIVE: u8 = 2;
const KIND_RENEW_ANSWER: u8 = 17;
const KIND_TIME_TO_LIVE_ANSWER: u8 = 18;

const OUTCOME_DONE: u8 = 0;
const OUTCOME_NOT_PRIMARY: u8 = 1;
const OUTCOME_NOT_FOUND: u8 = 2;
const OUTCOME_FAILED: u8 = 3;

const REQUEST_BYTES: usize = 1 + 1 + 8 + 8;
const ANSWER_BYTES: usize = 1 + 1 + 8 + 1 + 8 + 8;

/// What a follower asks the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseQuery {
    /// A keep-alive of this lease.
    Renew(i64),
    /// TimeToLive of this lease.
    TimeToLive(i64),
}

/// The leader's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseReply {
    /// The keep-alive's TTL (0: unknown or expired lease).
    Renewed(i64),
    /// (remaining, granted) TTL, or `None` for an unknown lease.
    TimeToLive(Option<(i64, i64)>),
    /// The asked member could not answer (not primary, a failed checkpoint): ask again.
    Retry,
    /// Too many questions in flight here.
    Busy,
}

/// The asking side: numbered questions in flight and their answer slots.
pub struct LeaseForwarder {
    transport: Transport,
    pending: RefCell<HashMap<u64, (LeaseQuery, oneshot::Sender<LeaseReply>)>>,
    next_request: Cell<u64>,
}

impl LeaseForwarder {
    /// A forwarder sending over `transport`.
    pub fn new(transport: Transport) -> LeaseForwarder {
        LeaseForwarder {
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
        query: LeaseQuery,
    ) -> Pin<Box<dyn Future<Output = Option<LeaseReply>>>> {
        if self.pending.borrow().len() >= PENDING_MAX {
            return Box::pin(async { Some(LeaseReply::Busy) });
        }
        let request = self.next_request.get();
        self.next_request.set(request.wrapping_add(1).max(1));
        let (kind, lease) = match query {
            LeaseQuery::Renew(id) => (KIND_RENEW, id),
            LeaseQuery::TimeToLive(id) => (KIND_TIME_TO_LIVE, id),
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
            (_, _, OUTCOME_NOT_PRIMARY | OUTCOME_FAILED) => LeaseReply::Retry,
            (LeaseQuery::Renew(_), KIND_RENEW_ANSWER, OUTCOME_DONE) => LeaseReply::Renewed(a),
            (LeaseQuery::TimeToLive(_), KIND_TIME_TO_LIVE_ANSWER, OUTCOME_DONE) => {
                LeaseReply::TimeToLive(Some((a, b)))
            }
            (LeaseQuery::TimeToLive(_), KIND_TIME_TO_LIVE_ANSWER, OUTCOME_NOT_FOUND) => {
                LeaseReply::TimeToLive(None)
            }
            _ => {
                tracing::warn!(
                    kind,
                    outcome,
                    "dropped a lease answer that fits no question"
                );
                LeaseReply::Retry
            }
        };
        let _ = sender.send(reply);
    }
}

/// Removes a question whose asker stopped waiting (timed out, or its client went away), so
/// the pending map stays bounded by the questions really waiting.
struct PendingGuard {
    forwarder: Rc<LeaseForwarder>,
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
pub fn on_frame(member: &Rc<Member>, forwarder: &Rc<LeaseForwarder>, from: u64, frame: Bytes) {
    let read_u64 = |at: usize| u64::from_be_bytes(frame[at..at + 8].try_into().unwrap());
    let kind = frame.get(1).copied().unwrap_or(u8::MAX);
    match kind {
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
                let mut answer = BytesMut::with_capacity(ANSWER_BYTES);
                answer.put_u8(FRAME_MARKER);
                answer.put_u8(kind + 16);
                answer.put_u64(request);
                answer.put_u8(outcome);
                answer.put_i64(a);
                answer.put_i64(b);
                // A lost answer is the asker's timeout and retry.
                let _ = forwarder
                    .transport
                    .send(from, Lane::Control, answer.freeze());
            })
            .detach();
        }
        KIND_RENEW_ANSWER | KIND_TIME_TO_LIVE_ANSWER if frame.len() == ANSWER_BYTES => {
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
            "dropped a malformed lease frame"
        ),
    }
}
