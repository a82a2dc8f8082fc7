//! The member-wide bounds on watchers, Watch streams and the bytes their queues hold, shared by
//! every core's hub: one client cannot hold the memory of millions of watchers (each with its
//! key range), of thousands of streams (each with its response queue), or of many slow
//! streams each filling its queue with large values, by spreading them over connections, which
//! the per-stream and per-connection limits alone would allow. etcd has no such bound; past
//! the counts, a create is refused with the reason below and a stream with ResourceExhausted;
//! past the bytes, watchers fall behind and catch up from the engine's history later, as on a
//! full stream queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A create refused because the member holds `--max-watchers` watchers.
pub const TOO_MANY_WATCHERS: &str = "etcdserver: too many watchers on this member";

/// A Watch call refused because the member holds `--max-watch-streams` streams.
pub const TOO_MANY_WATCH_STREAMS: &str = "etcdserver: too many watch streams on this member";

/// Test-only knob: the member's bound on queued watch bytes instead of the one sized from the
/// machine.
pub const QUEUED_BYTES_ENV: &str = "BASALT_TEST_WATCH_QUEUE_BYTES";

/// The smallest bound on queued watch bytes: 32 full stream queues.
const QUEUED_BYTES_FLOOR: usize = 256 * 1024 * 1024;

/// The member's bound on bytes queued for Watch streams: an eighth of physical memory, at
/// least 256 MiB. Read answers have their own eighth (`v3rpc::read_memory`); together they
/// leave most of the machine to the engine's mapped pages, the page cache and everything else.
pub fn queued_bytes_limit() -> usize {
    if let Some(bytes) = std::env::var(QUEUED_BYTES_ENV)
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
    {
        return bytes;
    }
    // SAFETY: sysconf reads a system constant; it has no memory effects.
    let (pages, page_bytes) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let physical = usize::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(usize::try_from(page_bytes).unwrap_or(0));
    (physical / 8).max(QUEUED_BYTES_FLOOR)
}

/// Counts of watchers, Watch streams and queued response bytes over every core, with their
/// limits.
#[derive(Debug)]
pub struct WatchLimits {
    watchers_limit: usize,
    streams_limit: usize,
    queued_bytes_limit: usize,
    watchers: AtomicUsize,
    streams: AtomicUsize,
    queued_bytes: AtomicUsize,
}

impl WatchLimits {
    /// Limits for one member.
    pub fn new(
        watchers_limit: usize,
        streams_limit: usize,
        queued_bytes_limit: usize,
    ) -> Arc<WatchLimits> {
        Arc::new(WatchLimits {
            watchers_limit,
            streams_limit,
            queued_bytes_limit,
            watchers: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
        })
    }

    /// No limits (a hub built before the server sets them, and tests).
    pub fn unlimited() -> Arc<WatchLimits> {
        WatchLimits::new(usize::MAX, usize::MAX, usize::MAX)
    }

    /// Whether event responses may be queued: the streams of every core together hold less
    /// than the limit (one response may take them past it; then nothing more until they
    /// drain).
    pub fn has_queue_room(&self) -> bool {
        self.queued_bytes.load(Ordering::Relaxed) < self.queued_bytes_limit
    }

    /// Bytes queued on every stream of every core.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Counts `bytes` queued for a stream.
    pub fn queue_bytes(&self, bytes: usize) {
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Uncounts `bytes` sent or dropped.
    pub fn unqueue_bytes(&self, bytes: usize) {
        let before = self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        assert!(before >= bytes, "more watch bytes unqueued than queued");
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
    fn queued_bytes_hold_and_release() {
        let limits = WatchLimits::new(1, 1, 100);
        assert!(limits.has_queue_room());
        limits.queue_bytes(60);
        assert!(limits.has_queue_room());
        limits.queue_bytes(60);
        assert!(!limits.has_queue_room());
        limits.unqueue_bytes(60);
        assert!(limits.has_queue_room());
        limits.unqueue_bytes(60);
        assert_eq!(limits.queued_bytes(), 0);
    }

    #[test]
    fn limits_hold_and_release() {
        let limits = WatchLimits::new(2, 1, usize::MAX);
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
