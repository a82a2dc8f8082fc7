//! The open write-ahead log: group-committed appends, reads, suffix truncation, release of old
//! segments, and durable metadata.
//!
//! Appenders copy their record into the pending buffer and wait for the generation it belongs to
//! to become durable. One flusher task takes the whole pending buffer as a batch, places it in the
//! tail segment (rolling to a pre-written spare when it does not fit), issues one O_DIRECT write
//! and one fdatasync, then wakes every appender of that batch. Appends that arrive meanwhile form
//! the next batch. Everything runs on the log's one glommio executor; state lives in a `RefCell`
//! that is never borrowed across an await.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::error::{WalError, WalResult};
use crate::layout::{
    align_down, align_up, append_unsealed_record, decode_metadata, encode_metadata, read_record,
    record_bytes, record_fields, seal_record, RecordKind, SegmentHeader, BLOCK_BYTES,
    FIRST_RECORD_OFFSET,
};
use crate::options::WalOptions;
use crate::recovery::{self, EntryLocation, SPARE_SUFFIX};
use crate::segment::{segment_file_name, Segment};
use crate::spare_pool::{open_segment_file, sync_directory, Spare, SparePool};
use crate::wait_list::WaitList;

mod exclusive;
mod flusher;
mod queue;
mod segments;

use exclusive::*;
use flusher::*;
use queue::*;
use segments::*;

/// A handle on a queued record: await it with [`Wal::wait_durable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The entry's index (for metadata: the index of the last entry before it).
    pub index: u64,
    /// The write batch the record belongs to.
    generation: u64,
}

/// Counters of the log's work since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Entry and metadata records made durable.
    pub records: u64,
    /// Write batches made durable.
    pub batches: u64,
    /// Device syncs: segment files are O_DSYNC, so every write of the log is one (a batch is one
    /// write; one that rolls to a new segment is three: the old tail, the new header, the rest).
    pub fdatasyncs: u64,
    /// Bytes handed to write calls, block padding included.
    pub bytes_written: u64,
}

/// The log's latency and batching, for Prometheus (`etcd_disk_wal_fsync_duration_seconds` and
/// basalt's group-commit batch size). Written by the log's own executor only; read by scrapes
/// from any core.
#[derive(Debug)]
pub struct WalMetrics {
    /// Seconds each durable (O_DSYNC) write of a segment took: the write and its device flush,
    /// what etcd's fsync histogram times after its write.
    pub fsync_seconds: basalt_metrics::Histogram,
    /// Records made durable per write batch (group commit).
    pub batch_records: basalt_metrics::Histogram,
}

impl Default for WalMetrics {
    fn default() -> WalMetrics {
        WalMetrics {
            fsync_seconds: basalt_metrics::Histogram::new(&basalt_metrics::DISK_SECONDS_BUCKETS),
            batch_records: basalt_metrics::Histogram::new(&basalt_metrics::BATCH_SIZE_BUCKETS),
        }
    }
}

/// What recovery found when the log was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments retained.
    pub segments: usize,
    /// Bytes of a torn, never-acknowledged final batch that were discarded.
    pub discarded_tail_bytes: u64,
}

/// A segmented, checksummed write-ahead log with group commit. Lives on one glommio executor.
pub struct Wal {
    shared: Rc<Shared>,
    recovery_report: RecoveryReport,
}

struct Shared {
    dir: PathBuf,
    options: WalOptions,
    state: RefCell<State>,
    spares: Rc<SparePool>,
    /// Appenders waiting for room in the pending buffer or for an exclusive operation to end.
    space_waiters: WaitList,
    /// The flusher waiting for records.
    flusher_waiters: WaitList,
    /// Exclusive operations waiting for the flusher to go idle, and `close` waiting for it to end.
    idle_waiters: WaitList,
    /// Appenders waiting for their generation to become durable. Bounded by the appenders'
    /// polls between wake-ups; emptied of every ready entry at each wake-up.
    durable_waiters: RefCell<Vec<(u64, Waker)>>,
    metrics: Arc<WalMetrics>,
}

struct State {
    /// The storage fault that stopped the log; every later append fails with it.
    stopped: Option<Arc<WalError>>,
    closing: bool,
    flusher_running: bool,

    // What appenders see and change.
    next_index: u64,
    pending: Vec<u8>,
    pending_generation: u64,
    /// A truncation, reset or close holds the log: appenders wait.
    exclusive: bool,
    queued_checkpoint: u64,
    queued_metadata: Vec<u8>,

    // What the flusher (or an exclusive operation, while the flusher is idle) changes.
    flushing: bool,
    segments: Vec<Segment>,
    /// Bytes of the tail segment from its last block boundary to its end of data; rewritten
    /// unchanged in front of the next batch so each write is block-aligned.
    tail_block: Vec<u8>,
    /// Where the tail's writes since its last fdatasync began (recorded in each record as
    /// `batch_start`, so recovery can tell a torn batch from corruption).
    unsynced_start: Option<u64>,
    placed_last_index: u64,
    placed_checkpoint: u64,
    placed_metadata: Vec<u8>,
    next_seq: u64,
    reusable_buffer: Vec<u8>,

    // What is durable.
    durable_generation: u64,
    durable_last_index: u64,
    durable_checkpoint: u64,
    durable_metadata: Vec<u8>,
    stats: WalStats,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering what is on disk: a torn final batch is
    /// discarded, corruption anywhere else fails the open with the file and byte offset.
    pub async fn open(dir: impl AsRef<Path>, options: WalOptions) -> WalResult<Wal> {
        options.validate()?;
        let dir = dir.as_ref().to_owned();
        let created = !dir.is_dir();
        if created {
            std::fs::create_dir_all(&dir).map_err(|e| WalError::io("create directory", &dir, e))?;
        }
        // Absolute from here on: glommio resolves relative paths of its directory handles
        // against no particular directory, so a relative one fails with EBADF.
        let dir = dir
            .canonicalize()
            .map_err(|e| WalError::io("resolve directory", &dir, e))?;
        if created {
            // The directory's own entry must be durable before anything in it is acknowledged.
            if let Some(parent) = dir.parent() {
                sync_directory(parent)
                    .await
                    .map_err(|e| WalError::io("sync directory", parent, e))?;
            }
        }
        let recovered = recovery::recover(&dir, options.segment_bytes)?;
        let existing = recovered
            .segments
            .first()
            .map(|s| &s.path)
            .or(recovered.spares.first());
        crate::device_probe::probe_device(&dir, existing.map(PathBuf::as_path)).await?;
        if recovered.discarded_tail_bytes > 0 {
            tracing::warn!(
                dir = %dir.display(),
                bytes = recovered.discarded_tail_bytes,
                "discarded a torn final write batch of the wal (never acknowledged)"
            );
        }
        let recovery_report = RecoveryReport {
            segments: recovered.segments.len(),
            discarded_tail_bytes: recovered.discarded_tail_bytes,
        };

        let mut segments = Vec::with_capacity(recovered.segments.len());
        let next_seq = recovered.highest_seq + 1;
        for found in recovered.segments.iter() {
            let file = open_segment_file(&found.path).await?;

            segments.push(Segment {
                seq: found.header.seq,
                first_index: found.header.first_index,
                segment_bytes: found.header.segment_bytes,
                path: found.path.clone(),
                file: Rc::new(file),
                entries: found.entries.clone(),
                end_offset: found.end_offset,
            });
        }
        let next_index = recovered.next_index();
        let metadata = recovered.user_metadata.clone().unwrap_or_default();
        let spares = SparePool::new(
            &dir,
            options.segment_bytes,
            options.spare_segments,
            recovered.spares,
            options.fault_injector.clone(),
        )
        .await?;
        let is_new = segments.is_empty();
        let shared = Rc::new(Shared {
            dir,
            options,
            spares: spares.clone(),
            state: RefCell::new(State {
                stopped: None,
                closing: false,
                flusher_running: true,
                next_index,
                pending: Vec::new(),
                pending_generation: 1,
                exclusive: false,
                queued_checkpoint: recovered.checkpoint,
                queued_metadata: metadata.clone(),
                flushing: false,
                segments,
                tail_block: recovered.tail_block,
                unsynced_start: None,
                placed_last_index: next_index - 1,
                placed_checkpoint: recovered.checkpoint,
                placed_metadata: metadata.clone(),
                next_seq,
                reusable_buffer: Vec::new(),
                durable_generation: 0,
                durable_last_index: next_index - 1,
                durable_checkpoint: recovered.checkpoint,
                durable_metadata: metadata,
                stats: WalStats::default(),
            }),
            space_waiters: WaitList::default(),
            flusher_waiters: WaitList::default(),
            idle_waiters: WaitList::default(),
            durable_waiters: RefCell::new(Vec::new()),
            metrics: Arc::default(),
        });
        glommio::spawn_local(spares.run_refill()).detach();
        if is_new {
            let first = shared.state.borrow().next_index;
            let made = async {
                roll(&shared, first, None).await?;
                sync_tail(&shared).await
            };
            if let Err(error) = made.await {
                shared.spares.stop();
                return Err(error);
            }
        }
        glommio::spawn_local(run_flusher(shared.clone())).detach();
        Ok(Wal {
            shared,
            recovery_report,
        })
    }

    /// Appends an entry and waits until it is durable; returns its index.
    pub async fn append(&self, payload: &[u8]) -> WalResult<u64> {
        let queued = self.queue_entry(payload).await?;
        self.wait_durable(queued).await?;
        Ok(queued.index)
    }

    /// Stores the caller's metadata (e.g. raft's hard state) durably; the latest one wins.
    pub async fn set_metadata(&self, metadata: &[u8]) -> WalResult<()> {
        let queued = self.queue_metadata(metadata).await?;
        self.wait_durable(queued).await
    }

    /// Queues an entry (waiting while the pending buffer is full) without waiting for it to become
    /// durable: queue several records, then wait for the last one.
    pub async fn queue_entry(&self, payload: &[u8]) -> WalResult<Queued> {
        let limit = self.shared.options.record_bytes_limit;
        if payload.len() > limit {
            return Err(WalError::RecordTooLarge {
                bytes: payload.len(),
                limit,
            });
        }
        self.queue(RecordKind::Entry, None, payload).await
    }

    /// Queues new caller metadata without waiting for it to become durable.
    pub async fn queue_metadata(&self, metadata: &[u8]) -> WalResult<Queued> {
        let limit = self.shared.options.metadata_bytes_limit;
        if metadata.len() > limit {
            return Err(WalError::MetadataTooLarge {
                bytes: metadata.len(),
                limit,
            });
        }
        self.queue(RecordKind::Metadata, None, metadata).await
    }

    /// Whether a queued record is durable already (without waiting).
    pub fn is_durable(&self, queued: Queued) -> bool {
        self.shared.state.borrow().durable_generation >= queued.generation
    }

    /// Waits until a queued record is durable. Fails with the storage fault if the log stopped
    /// before that.
    pub async fn wait_durable(&self, queued: Queued) -> WalResult<()> {
        wait_durable(&self.shared, queued).await
    }

    async fn queue(
        &self,
        kind: RecordKind,
        checkpoint: Option<u64>,
        payload: &[u8],
    ) -> WalResult<Queued> {
        queue(&self.shared, kind, checkpoint, payload).await
    }
    /// Reads entries `[low, high)`. They must be durable and not released.
    pub async fn read(&self, low: u64, high: u64) -> WalResult<Vec<Vec<u8>>> {
        self.read_limited(low, high, u64::MAX).await
    }

    /// Reads entries from `low` up to `high` (exclusive), stopping before the total payload would
    /// pass `max_bytes` — but always returning at least one entry when the range is not empty.
    pub async fn read_limited(
        &self,
        low: u64,
        high: u64,
        max_bytes: u64,
    ) -> WalResult<Vec<Vec<u8>>> {
        {
            let state = self.shared.state.borrow();
            let (first, last) = (state.durable_checkpoint, state.durable_last_index);
            for index in [low, high.saturating_sub(1)] {
                if low < high && (index < first || index > last) {
                    return Err(WalError::OutOfRange { index, first, last });
                }
            }
        }
        let mut entries = Vec::with_capacity(high.saturating_sub(low).min(4096) as usize);
        let mut total_bytes = 0u64;
        let mut index = low;
        while index < high {
            let (file, path, seq, locations) = {
                let state = self.shared.state.borrow();
                let position = state.segments.partition_point(|s| s.first_index <= index);
                let segment = position.checked_sub(1).map(|p| &state.segments[p]);
                let Some(segment) = segment.filter(|s| s.holds(index)) else {
                    let (first, last) = (state.durable_checkpoint, state.durable_last_index);
                    return Err(WalError::OutOfRange { index, first, last });
                };
                let run_end = high.min(segment.next_index());
                let from = (index - segment.first_index) as usize;
                let to = (run_end - segment.first_index) as usize;
                let locations: Vec<EntryLocation> = segment.entries[from..to].to_vec();
                (
                    segment.file.clone(),
                    segment.path.clone(),
                    segment.seq,
                    locations,
                )
            };
            let start = locations[0].offset as u64;
            let last = locations[locations.len() - 1];
            let end = last.offset as u64 + record_bytes(last.payload_bytes as usize) as u64;
            let bytes = file
                .read_at(start, (end - start) as usize)
                .await
                .map_err(|e| WalError::glommio("read", &path, e))?;
            for location in &locations {
                let offset = location.offset as u64;
                let Ok(record) = read_record(&bytes[(offset - start) as usize..], seq) else {
                    // The segment may have been released or overridden, and its file reused,
                    // while the read was in flight: that is a range error, not damage.
                    let state = self.shared.state.borrow();
                    if !state.segments.iter().any(|s| s.seq == seq) {
                        let (first, last) = (state.durable_checkpoint, state.durable_last_index);
                        return Err(WalError::OutOfRange { index, first, last });
                    }
                    return Err(WalError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason: format!("entry {index} failed its checksum when read back"),
                    });
                };
                if record.kind != RecordKind::Entry || record.index != index {
                    return Err(WalError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason: format!(
                            "expected entry {index}, found {:?} {}",
                            record.kind, record.index
                        ),
                    });
                }
                total_bytes += record.payload.len() as u64;
                if !entries.is_empty() && total_bytes > max_bytes {
                    return Ok(entries);
                }
                entries.push(record.payload.to_vec());
                index += 1;
            }
        }
        Ok(entries)
    }

    /// Discards every entry after `last_kept` (a new raft leader overwrote them). Waits for queued
    /// records first; durable when it returns. The next entry appended gets index `last_kept + 1`.
    pub async fn truncate_after(&self, last_kept: u64) -> WalResult<()> {
        let shared = self.shared.clone();
        exclusively(shared, move |shared| async move {
            truncate_after_exclusive(&shared, last_kept).await
        })
        .await
    }

    /// Drops the whole log and restarts it at `next_index` (a raft snapshot at `next_index - 1`
    /// replaced it). Durable when it returns.
    pub async fn reset(&self, next_index: u64) -> WalResult<()> {
        assert!(next_index >= 1, "indices start at 1");
        let shared = self.shared.clone();
        exclusively(shared, move |shared| async move {
            reset_exclusive(&shared, next_index).await
        })
        .await
    }

    /// Releases entries below `index` (a checkpoint covers them): records the new first index
    /// durably, then recycles every segment that holds only released entries.
    pub async fn release_before(&self, index: u64) -> WalResult<()> {
        if index <= self.shared.state.borrow().durable_checkpoint {
            return Ok(());
        }
        let shared = self.shared.clone();
        run_to_completion(async move {
            let queued = queue(&shared, RecordKind::Metadata, Some(index), &[]).await?;
            wait_durable(&shared, queued).await?;
            let result = recycle_released(&shared, index).await;
            stop_on_storage_fault(&shared, &result);
            result
        })
        .await
    }

    /// Waits for every queued record to become durable, then stops the log's tasks. Appends after
    /// this fail with `Closed`.
    pub async fn close(self) -> WalResult<()> {
        let shared = self.shared.clone();
        shared.state.borrow_mut().closing = true;
        shared.flusher_waiters.wake_all();
        shared.space_waiters.wake_all();
        poll_fn(|cx| {
            if !shared.state.borrow().flusher_running {
                return Poll::Ready(());
            }
            shared.idle_waiters.register(cx.waker());
            Poll::Pending
        })
        .await;
        shared.spares.stop();
        let stopped = shared.state.borrow().stopped.clone();
        match stopped {
            Some(fault) => Err(WalError::Stopped(fault)),
            None => Ok(()),
        }
    }

    /// First index the log holds (everything below was released).
    pub fn first_index(&self) -> u64 {
        self.shared.state.borrow().durable_checkpoint
    }

    /// Last durable entry index (first_index - 1 when the log holds no entry).
    pub fn last_index(&self) -> u64 {
        self.shared.state.borrow().durable_last_index
    }

    /// Index the next queued entry gets.
    pub fn next_index(&self) -> u64 {
        self.shared.state.borrow().next_index
    }

    /// The caller's latest durable metadata (empty if never set).
    pub fn metadata(&self) -> Vec<u8> {
        self.shared.state.borrow().durable_metadata.clone()
    }

    /// The storage fault that stopped the log, if one did.
    pub fn fault(&self) -> Option<Arc<WalError>> {
        self.shared.state.borrow().stopped.clone()
    }

    /// Latency and batching histograms, shared with whoever exposes them.
    pub fn metrics(&self) -> Arc<WalMetrics> {
        self.shared.metrics.clone()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.shared.state.borrow().stats
    }

    /// What recovery found at open.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.recovery_report
    }

    /// Segments the log holds now.
    pub fn segment_count(&self) -> usize {
        self.shared.state.borrow().segments.len()
    }

    /// Pre-written spares ready now.
    pub fn spare_count(&self) -> usize {
        self.shared.spares.ready_count()
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Let the background tasks finish what is queued and end; they hold their own references.
        self.shared.state.borrow_mut().closing = true;
        self.shared.flusher_waiters.wake_all();
        self.shared.space_waiters.wake_all();
        self.shared.spares.stop();
    }
}
