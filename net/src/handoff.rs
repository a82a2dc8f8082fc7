//! Which executor serves a new client connection.
//!
//! The kernel spreads connections over the executors' SO_REUSEPORT listeners by a hash of the
//! connection's addresses, so a lone client (etcdctl, a controller with one connection) lands
//! on a client core or on the raft owner by chance. On a client core each of its calls costs
//! two hops between cores (to the owner and back); on the owner, none: one client's puts on
//! one member ran at ~3,000/s from a client core and ~4,000/s from the owner
//! (`basalt-bench put --conns 1 --clients 1`, 2 CPUs). A client core that accepts a connection
//! while the owner serves none therefore hands it to the owner; every other connection stays
//! where the kernel put it, so under many connections the owner keeps its even share (with it
//! the owner is already near a full CPU at 100 connections; a fixed quarter instead cost
//! 10 connections of 10 clients 11 % in hops between cores; see `docs/benchmarks.md`).
//!
//! A handed-off connection is a plain accepted TCP socket (before any TLS handshake or
//! protocol sniff), moved as an owned descriptor over a bounded channel; when the channel is
//! full or closed, the accepting core serves the connection itself. A client core closes its end
//! when it stops accepting, and the owner takes connections until then, also after its own
//! accepting stopped: at a graceful stop every handed-off connection is the owner's, drained
//! with its others, once every core has stopped accepting (`net/tests/handoff.rs`).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::tls::ServerTls;

/// The executor that runs the raft loop is executor 0.
pub const OWNER: usize = 0;

/// Connections handed to the owner and not yet taken, at most (beyond it, the accepting core
/// serves them).
pub const HANDOFF_QUEUE_LIMIT: usize = 64;

/// Client connections each executor serves now, shared by every executor of the process.
#[derive(Debug)]
pub struct ConnectionShares {
    served: Box<[AtomicUsize]>,
}

impl ConnectionShares {
    /// Shares for `executors` executors, the owner being [`OWNER`].
    pub fn new(executors: usize) -> Arc<ConnectionShares> {
        assert!(executors > 0, "a process has at least its owner executor");
        Arc::new(ConnectionShares {
            served: (0..executors).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// Whether a client core should hand the owner the connection it just accepted: while the
    /// owner serves none. Read without a lock: two cores deciding at once may both hand it
    /// one, which is harmless.
    pub fn owner_takes_next(&self) -> bool {
        self.served_by(OWNER) == 0
    }

    /// Connections `executor` serves now.
    pub fn served_by(&self, executor: usize) -> usize {
        self.served[executor].load(Ordering::Relaxed)
    }

    /// Executors counted.
    pub fn executors(&self) -> usize {
        self.served.len()
    }

    /// Counts a connection for `executor` for as long as the answer lives. A connection handed
    /// to the owner is counted from the moment it is sent, so the next accept sees it.
    pub fn serve(self: &Arc<Self>, executor: usize) -> Served {
        self.served[executor].fetch_add(1, Ordering::Relaxed);
        Served {
            shares: self.clone(),
            executor,
        }
    }
}

/// One connection counted in [`ConnectionShares`] until dropped.
#[derive(Debug)]
pub struct Served {
    shares: Arc<ConnectionShares>,
    executor: usize,
}

impl Drop for Served {
    fn drop(&mut self) {
        let before = self.shares.served[self.executor].fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a connection uncounted that was never counted");
    }
}

/// An accepted connection on its way to the owner.
pub struct HandedOff {
    /// The accepted socket (its own descriptor).
    pub socket: OwnedFd,
    /// The TLS of the listener that accepted it (`None`: plaintext).
    pub tls: Option<Arc<ServerTls>>,
    /// Its count as the owner's connection, released when the connection ends (or when it is
    /// dropped untaken).
    pub served: Served,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_takes_a_connection_only_while_it_serves_none() {
        let shares = ConnectionShares::new(2);
        assert!(shares.owner_takes_next());
        let on_client_core: Vec<_> = (0..3).map(|_| shares.serve(1)).collect();
        assert!(shares.owner_takes_next(), "the owner serves none yet");
        let on_owner = shares.serve(OWNER);
        assert!(!shares.owner_takes_next());
        assert_eq!(
            (shares.served_by(OWNER), shares.served_by(1)),
            (1, on_client_core.len())
        );
        drop(on_owner);
        assert!(shares.owner_takes_next(), "its one connection ended");
    }

    #[test]
    fn a_count_lasts_as_long_as_its_guard() {
        let shares = ConnectionShares::new(3);
        let served: Vec<_> = (0..5).map(|i| shares.serve(i % 3)).collect();
        assert_eq!(
            (0..3).map(|i| shares.served_by(i)).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        drop(served);
        assert!((0..3).all(|i| shares.served_by(i) == 0));
    }
}
