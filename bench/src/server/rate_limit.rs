//! `--rate`: paces all the workers of a run to at most N requests per second.
//!
//! Each request claims the next slot on a shared schedule (one atomic) and sleeps until it.
//! A worker that fell behind may catch up, but only by `BURST_LIMIT` worth of slots: a stall
//! must not turn into an unbounded burst that measures something else than the asked rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How far behind schedule the limiter lets requests catch up.
const BURST_LIMIT: Duration = Duration::from_millis(100);

/// A shared pacing schedule of `rate` slots per second.
pub struct RateLimiter {
    origin: Instant,
    slot_interval_ns: u64,
    slot_next_ns: AtomicU64,
}

impl RateLimiter {
    /// A limiter for `rate` requests per second; `None` when `rate` is 0 (no limit).
    pub fn new(rate: u64) -> Option<Self> {
        (rate > 0).then(|| RateLimiter {
            origin: Instant::now(),
            slot_interval_ns: (1_000_000_000 / rate).max(1),
            slot_next_ns: AtomicU64::new(0),
        })
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let now_ns = self.origin.elapsed().as_nanos() as u64;
        let due_ns = self.claim(now_ns);
        if due_ns > now_ns {
            tokio::time::sleep_until((self.origin + Duration::from_nanos(due_ns)).into()).await;
        }
    }

    /// Claims the next slot at `now` and returns when it is due (for loops that wait on
    /// their own, such as the lean client's).
    pub fn claim_at(&self, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.origin).as_nanos() as u64;
        self.origin + Duration::from_nanos(self.claim(now_ns))
    }

    /// Claims the next slot at time `now_ns` (since the origin) and returns when it is due.
    fn claim(&self, now_ns: u64) -> u64 {
        let burst_ns = BURST_LIMIT.as_nanos() as u64;
        let mut current = self.slot_next_ns.load(Ordering::Relaxed);
        loop {
            let due = current.max(now_ns.saturating_sub(burst_ns));
            let next = due + self.slot_interval_ns;
            match self.slot_next_ns.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return due,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: slots are spaced 1/rate apart, and a late claimer catches up by at most the burst
    // limit instead of firing every missed slot at once.
    #[test]
    fn slots_are_spaced_and_bursts_are_bounded() {
        let limiter = RateLimiter::new(1000).unwrap();
        assert_eq!(limiter.claim(0), 0);
        assert_eq!(limiter.claim(0), 1_000_000);
        assert_eq!(limiter.claim(0), 2_000_000);
        // Ten seconds later: the schedule restarts 100 ms in the past, not at 3 ms.
        let late = limiter.claim(10_000_000_000);
        assert_eq!(late, 10_000_000_000 - 100_000_000);
        assert_eq!(limiter.claim(10_000_000_000), late + 1_000_000);
        assert!(RateLimiter::new(0).is_none());
    }
}
