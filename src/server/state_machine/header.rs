//! The header every response carries (cluster id, member id, raft term, revision), readable on
//! every core: the raft owner updates the term, any core stamps headers with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use basalt_net::proto::etcdserverpb as pb;

/// Who this member is, for response headers.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
}

/// Builds response headers; cheap to clone and to send to another core.
#[derive(Clone, Debug)]
pub struct HeaderSource {
    identity: Identity,
    term: Arc<AtomicU64>,
}

impl HeaderSource {
    pub fn new(identity: Identity) -> HeaderSource {
        HeaderSource {
            identity,
            term: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records the raft term (the raft owner calls this as the term changes).
    pub fn set_term(&self, term: u64) {
        // Relaxed: the term is a label on answers, ordered by nothing else it guards.
        self.term.store(term, Ordering::Relaxed);
    }

    /// The header of a response at `revision`.
    pub fn header(&self, revision: i64) -> pb::ResponseHeader {
        pb::ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision,
            raft_term: self.term.load(Ordering::Relaxed),
        }
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }
}
