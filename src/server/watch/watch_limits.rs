//! The member-wide bounds on watchers and Watch streams, shared by every core's hub: one
//! client cannot hold the memory of millions of watchers (each with its key range) or of
//! thousands of streams (each with its response queue) by spreading them over connections,
//! which the per-stream and per-connection limits alone would allow. etcd has no such bound;
//! past one, a create is refused with the reason below and a stream with ResourceExhausted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A create refused because the member holds `--max-watchers` watchers.
pub const TOO_MANY_WATCHERS: &str = "etcdserver: too many watchers on this member";

/// A Watch call refused because the member holds `--max-watch-streams` streams.
pub const TOO_MANY_WATCH_STREAMS: &str = "etcdserver: too many watch streams on this member";

/// Counts of watchers and Watch streams over every core, with their limits.
#[derive(Debug)]
pub struct WatchLimits {
    watchers_limit: usize,
    streams_limit: usize,
    watchers: AtomicUsize,
    streams: AtomicUsize,
}

impl WatchLimits {
    /// Limits for one member.
    pub fn new(watchers_limit: usize, streams_limit: usize) -> Arc<WatchLimits> {
        Arc::new(WatchLimits {
            watchers_limit,
            streams_limit,
            watchers: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
        })
    }

    /// No limits (a hub built before the server sets them, and tests).
    pub fn unlimited() -> Arc<WatchLimits> {
        WatchLimits::new(usize::MAX, usize::MAX)
    }

    /// Counts one more watcher if the member is below its limit.
    pub fn try_add_watcher(&self) -> bool {
        try_increment(&self.watchers, self.watchers_limit)
    }

    /// Uncounts `count` watchers that were removed.
    pub fn remove_watchers(&self, count: usize) {
        let before = self.watchers.fetch_sub(count, Ordering::Relaxed);
        assert!(before >= count, "more watchers removed than added");
    }

    /// A permit for one more Watch stream, held while it is open; `None` at the limit.
    pub fn try_open_stream(self: &Arc<Self>) -> Option<StreamPermit> {
        try_increment(&self.streams, self.streams_limit).then(|| StreamPermit(self.clone()))
    }
}

impl crate::server::metrics::WatchCounts for WatchLimits {
    fn watch_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }
}

fn try_increment(count: &AtomicUsize, limit: usize) -> bool {
    count
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            (now < limit).then_some(now + 1)
        })
        .is_ok()
}

/// One open Watch stream's place under the member's limit, given back on drop.
#[derive(Debug)]
pub struct StreamPermit(Arc<WatchLimits>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! Goal: counts never pass their limits and come back as watchers and streams go.
    use super::*;

    #[test]
    fn limits_hold_and_release() {
        let limits = WatchLimits::new(2, 1);
        assert!(limits.try_add_watcher());
        assert!(limits.try_add_watcher());
        assert!(!limits.try_add_watcher());
        limits.remove_watchers(1);
        assert!(limits.try_add_watcher());
        assert!(!limits.try_add_watcher());
        limits.remove_watchers(2);
        assert!(limits.try_add_watcher());
        let permit = limits.try_open_stream().expect("below the limit");
        assert!(limits.try_open_stream().is_none());
        drop(permit);
        assert!(limits.try_open_stream().is_some());
    }
}
