//! A caller waiting on the raft member (its proposal to apply, its read index, the apply of an
//! index), answered by the member or, once its deadline has passed, with etcd's "request timed
//! out" by the member's tick.
//!
//! Why not a timer per wait: under puts, arming and dropping one glommio timer per request
//! (a BTreeMap insert and removal on the reactor) cost about 2 % of a member's CPU, for a
//! deadline that almost never fires. Expiry by the tick is coarser by at most one heartbeat
//! interval (100 ms against etcd's 7 s request timeout), and costs one pass over the waits per
//! tick, bounded by the waits' own limits.

use std::time::Instant;

use basalt_net::{EtcdStatus, Status};
use futures_channel::oneshot;

/// One caller's answer channel and the moment it gives up.
pub struct DeadlineWait<T> {
    pub sender: oneshot::Sender<Result<T, Status>>,
    pub deadline: Instant,
}

impl<T> DeadlineWait<T> {
    /// A wait ending at `deadline`, and the receiver its caller awaits.
    pub fn until(deadline: Instant) -> (DeadlineWait<T>, oneshot::Receiver<Result<T, Status>>) {
        let (sender, receiver) = oneshot::channel();
        (DeadlineWait { sender, deadline }, receiver)
    }

    /// Whether the deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline <= now
    }

    /// Answers the caller (a caller that gave up is not an error).
    pub fn answer(self, answer: Result<T, Status>) {
        let _ = self.sender.send(answer);
    }

    /// Answers the caller with etcd's "request timed out".
    pub fn time_out(self) {
        self.answer(Err(EtcdStatus::Timeout.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_expires_at_its_deadline_and_answers_a_timeout() {
        let start = Instant::now();
        let (wait, mut receiver) = DeadlineWait::<u64>::until(start + Duration::from_secs(1));
        assert!(!wait.expired(start));
        assert!(wait.expired(start + Duration::from_secs(1)));
        wait.time_out();
        let status = receiver.try_recv().unwrap().unwrap().unwrap_err();
        assert_eq!(status, Status::from(EtcdStatus::Timeout));
    }
}
