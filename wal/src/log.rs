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
use crate::spare_pool::{open_segment_file, sync_directory, SparePool};
use crate::wait_list::WaitList;

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
    /// Write batches made durable (each ends with one fdatasync of the tail).
    pub batches: u64,
    /// fdatasync calls (a batch that rolls to a new segment needs two).
    pub fdatasyncs: u64,
    /// Bytes handed to write calls, block padding included.
    pub bytes_written: u64,
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
        );
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

/// The flusher task: one batch at a time, one write and one fdatasync per batch.
async fn run_flusher(shared: Rc<Shared>) {
    loop {
        let has_work = poll_fn(|cx| {
            let state = shared.state.borrow();
            if state.stopped.is_some() {
                return Poll::Ready(false);
            }
            if !state.pending.is_empty() {
                return Poll::Ready(true);
            }
            if state.closing {
                return Poll::Ready(false);
            }
            shared.flusher_waiters.register(cx.waker());
            Poll::Pending
        })
        .await;
        if !has_work {
            break;
        }
        let (mut batch, generation) = {
            let mut state = shared.state.borrow_mut();
            let empty = std::mem::take(&mut state.reusable_buffer);
            let batch = std::mem::replace(&mut state.pending, empty);
            let generation = state.pending_generation;
            state.pending_generation += 1;
            state.flushing = true;
            (batch, generation)
        };
        shared.space_waiters.wake_all();
        let result = write_batch(&shared, &mut batch).await;
        {
            let mut state = shared.state.borrow_mut();
            state.flushing = false;
            match result {
                Ok(()) => state.durable_generation = generation,
                Err(error) => {
                    tracing::error!(%error, "wal storage fault: the log stops accepting appends");
                    state.stopped = Some(Arc::new(error));
                }
            }
            batch.clear();
            state.reusable_buffer = batch;
        }
        wake_durable_waiters(&shared);
        shared.idle_waiters.wake_all();
        shared.space_waiters.wake_all();
    }
    shared.state.borrow_mut().flusher_running = false;
    wake_durable_waiters(&shared);
    shared.idle_waiters.wake_all();
    shared.space_waiters.wake_all();
}

fn wake_durable_waiters(shared: &Shared) {
    let (durable, stopped) = {
        let state = shared.state.borrow();
        (state.durable_generation, state.stopped.is_some())
    };
    let mut woken = Vec::new();
    shared
        .durable_waiters
        .borrow_mut()
        .retain(|(generation, waker)| {
            let ready = *generation <= durable || stopped;
            if ready {
                woken.push(waker.clone());
            }
            !ready
        });
    for waker in woken {
        waker.wake();
    }
}

/// Places a batch of unsealed records in the tail (rolling as needed), writes and syncs it.
async fn write_batch(shared: &Shared, batch: &mut [u8]) -> WalResult<()> {
    let mut cursor = 0;
    let mut records = 0u64;
    while cursor < batch.len() {
        let (mut position, tail_bytes, tail_next_index) = {
            let state = shared.state.borrow();
            let tail = state
                .segments
                .last()
                .expect("an open log always has a tail segment");
            (tail.end_offset, tail.segment_bytes, tail.next_index())
        };
        let mut end = cursor;
        while end < batch.len() {
            let (_, payload_bytes, _) = record_fields(&batch[end..]);
            let stored = record_bytes(payload_bytes);
            if position + stored as u64 > tail_bytes {
                break;
            }
            position += stored as u64;
            end += stored;
            records += 1;
        }
        if end == cursor {
            roll(shared, tail_next_index, None).await?;
            continue;
        }
        write_chunk(shared, &mut batch[cursor..end]).await?;
        cursor = end;
    }
    sync_tail(shared).await?;
    let mut state = shared.state.borrow_mut();
    state.durable_last_index = state.placed_last_index;
    state.durable_checkpoint = state.placed_checkpoint;
    if state.durable_metadata != state.placed_metadata {
        state.durable_metadata = state.placed_metadata.clone();
    }
    state.stats.records += records;
    state.stats.batches += 1;
    Ok(())
}

/// Seals the records of `chunk` for the tail segment and writes them after its end of data, with
/// the tail's partial last block in front so the write is block-aligned.
async fn write_chunk(shared: &Shared, chunk: &mut [u8]) -> WalResult<()> {
    let placed = {
        let mut state = shared.state.borrow_mut();
        let state = &mut *state;
        let tail = state
            .segments
            .last_mut()
            .expect("an open log always has a tail segment");
        let end = tail.end_offset;
        let batch_start = state.unsynced_start.unwrap_or(end);
        let mut cursor = 0;
        while cursor < chunk.len() {
            let record = &mut chunk[cursor..];
            let (kind, payload_bytes, index) = record_fields(record);
            let stored = seal_record(record, tail.seq, batch_start as u32);
            match RecordKind::from_byte(kind).expect("the log queues only known kinds") {
                RecordKind::Entry => {
                    assert_eq!(
                        index,
                        tail.next_index(),
                        "entries are placed in index order"
                    );
                    tail.entries.push(EntryLocation {
                        offset: (end + cursor as u64) as u32,
                        payload_bytes: payload_bytes as u32,
                    });
                    state.placed_last_index = index;
                }
                RecordKind::Metadata => {
                    let payload = &record[crate::layout::RECORD_HEADER_BYTES..][..payload_bytes];
                    let (checkpoint, metadata) =
                        decode_metadata(payload).expect("the log encodes metadata");
                    state.placed_checkpoint = checkpoint;
                    if state.placed_metadata != metadata {
                        state.placed_metadata = metadata.to_vec();
                    }
                }
            }
            cursor += stored;
        }
        let block_start = align_down(end, BLOCK_BYTES as u64);
        let new_end = end + chunk.len() as u64;
        let buffer_len = (align_up(new_end, BLOCK_BYTES as u64) - block_start) as usize;
        assert_eq!(
            state.tail_block.len() as u64,
            end - block_start,
            "tail block tracks the end of data"
        );
        let mut buffer = tail.file.alloc_dma_buffer(buffer_len);
        let bytes = buffer.as_bytes_mut();
        let prefix = state.tail_block.len();
        bytes[..prefix].copy_from_slice(&state.tail_block);
        bytes[prefix..prefix + chunk.len()].copy_from_slice(chunk);
        bytes[prefix + chunk.len()..].fill(0);
        let last_block = (align_down(new_end, BLOCK_BYTES as u64) - block_start) as usize;
        let new_tail_block = bytes[last_block..prefix + chunk.len()].to_vec();
        state.unsynced_start = Some(batch_start);
        let placed = (
            tail.file.clone(),
            tail.path.clone(),
            block_start,
            buffer_len,
            new_end,
            new_tail_block,
        );
        (placed, buffer)
    };
    let ((file, path, write_at, buffer_len, new_end, new_tail_block), buffer) = placed;
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_write(&path, write_at, buffer_len)
            .map_err(|e| WalError::io("write", &path, e))?;
    }
    let written = file
        .write_at(buffer, write_at)
        .await
        .map_err(|e| WalError::glommio("write", &path, e))?;
    if written != buffer_len {
        let short = std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("wrote {written} of {buffer_len} bytes"),
        );
        return Err(WalError::io("write", &path, short));
    }
    let mut state = shared.state.borrow_mut();
    let tail = state
        .segments
        .last_mut()
        .expect("an open log always has a tail segment");
    tail.end_offset = new_end;
    state.tail_block = new_tail_block;
    state.stats.bytes_written += buffer_len as u64;
    Ok(())
}

/// Makes the tail's writes since its last fdatasync durable.
async fn sync_tail(shared: &Shared) -> WalResult<()> {
    let (file, path) = {
        let state = shared.state.borrow();
        if state.unsynced_start.is_none() {
            return Ok(());
        }
        let tail = state
            .segments
            .last()
            .expect("an open log always has a tail segment");
        (tail.file.clone(), tail.path.clone())
    };
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_fdatasync(&path)
            .map_err(|e| WalError::io("fdatasync", &path, e))?;
    }
    file.fdatasync()
        .await
        .map_err(|e| WalError::glommio("fdatasync", &path, e))?;
    let mut state = shared.state.borrow_mut();
    state.unsynced_start = None;
    state.stats.fdatasyncs += 1;
    Ok(())
}

/// Starts a new tail segment whose first entry will be `first_index`, from a pre-written spare:
/// syncs the old tail first (so a new segment never holds data while an older one has unsynced
/// writes), then writes the header block and an opening metadata record (not yet synced).
/// `checkpoint` replaces the checkpoint (a reset); otherwise the current one is carried over.
async fn roll(shared: &Shared, first_index: u64, checkpoint: Option<u64>) -> WalResult<()> {
    sync_tail(shared).await?;
    let spare = shared.spares.take().await?;
    let (seq, path, opening) = {
        let mut state = shared.state.borrow_mut();
        let seq = state.next_seq;
        state.next_seq += 1;
        if let Some(checkpoint) = checkpoint {
            state.placed_checkpoint = checkpoint;
        }
        let mut opening = Vec::new();
        let encoded = encode_metadata(state.placed_checkpoint, &state.placed_metadata);
        append_unsealed_record(
            &mut opening,
            RecordKind::Metadata,
            first_index - 1,
            &encoded,
        );
        seal_record(&mut opening, seq, FIRST_RECORD_OFFSET as u32);
        (seq, shared.dir.join(segment_file_name(seq)), opening)
    };
    std::fs::rename(&spare, &path)
        .map_err(|e| WalError::io("rename spare to segment", &spare, e))?;
    // Make the new name durable before any record in the file is: a later fdatasync of a
    // pre-written file commits no metadata, so it would not carry the rename. Recovery also
    // reads a spare's header, but the name keeps the file's seq known even if its header write
    // is lost, so a discarded segment's seq is never handed out again.
    sync_directory(&shared.dir)
        .await
        .map_err(|e| WalError::io("sync directory", &shared.dir, e))?;
    let file = open_segment_file(&path).await?;
    let segment_bytes = shared.options.segment_bytes;
    let end = FIRST_RECORD_OFFSET + opening.len() as u64;
    let buffer_len = align_up(end, BLOCK_BYTES as u64) as usize;
    let mut buffer = file.alloc_dma_buffer(buffer_len);
    let bytes = buffer.as_bytes_mut();
    bytes.fill(0);
    SegmentHeader {
        seq,
        first_index,
        segment_bytes,
    }
    .encode(&mut bytes[..BLOCK_BYTES]);
    bytes[BLOCK_BYTES..end as usize].copy_from_slice(&opening);
    let tail_block = bytes[align_down(end, BLOCK_BYTES as u64) as usize..end as usize].to_vec();
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_write(&path, 0, buffer_len)
            .map_err(|e| WalError::io("write", &path, e))?;
    }
    let written = file
        .write_at(buffer, 0)
        .await
        .map_err(|e| WalError::glommio("write", &path, e))?;
    if written != buffer_len {
        let short = std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("wrote {written} of {buffer_len} bytes"),
        );
        return Err(WalError::io("write", &path, short));
    }
    let mut state = shared.state.borrow_mut();
    state.segments.push(Segment {
        seq,
        first_index,
        segment_bytes,
        path,
        file: Rc::new(file),
        entries: Vec::new(),
        end_offset: end,
    });
    state.tail_block = tail_block;
    state.unsynced_start = Some(FIRST_RECORD_OFFSET);
    state.stats.bytes_written += buffer_len as u64;
    Ok(())
}

/// Turns a segment the log no longer needs into a spare: mark block 0 free durably (so recovery
/// can never take it for part of the log), rename it, and hand it to the spare pool.
async fn recycle(shared: &Shared, segment: Segment) -> WalResult<()> {
    let path = &segment.path;
    let mut buffer = segment.file.alloc_dma_buffer(BLOCK_BYTES);
    SegmentHeader::encode_free(buffer.as_bytes_mut());
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_write(path, 0, BLOCK_BYTES)
            .map_err(|e| WalError::io("write", path, e))?;
    }
    segment
        .file
        .write_at(buffer, 0)
        .await
        .map_err(|e| WalError::glommio("erase segment header", path, e))?;
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_fdatasync(path)
            .map_err(|e| WalError::io("fdatasync", path, e))?;
    }
    segment
        .file
        .fdatasync()
        .await
        .map_err(|e| WalError::glommio("fdatasync", path, e))?;
    let spare = path.with_extension(&SPARE_SUFFIX[1..]);
    std::fs::rename(path, &spare).map_err(|e| WalError::io("rename segment to spare", path, e))?;
    if segment.segment_bytes == shared.options.segment_bytes {
        shared.spares.give_back(spare)
    } else {
        std::fs::remove_file(&spare).map_err(|e| WalError::io("remove spare", &spare, e))
    }
}

/// Queues one record (waiting while the pending buffer is full) and says which generation will
/// carry it. A metadata record with `checkpoint` advances the checkpoint (never backwards).
async fn queue(
    shared: &Shared,
    kind: RecordKind,
    checkpoint: Option<u64>,
    payload: &[u8],
) -> WalResult<Queued> {
    poll_fn(|cx| {
        let mut state = shared.state.borrow_mut();
        let stored = match (kind, checkpoint) {
            (RecordKind::Entry, _) => record_bytes(payload.len()),
            (RecordKind::Metadata, None) => record_bytes(8 + payload.len()),
            (RecordKind::Metadata, Some(_)) => record_bytes(8 + state.queued_metadata.len()),
        };
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.closing {
            return Poll::Ready(Err(WalError::Closed));
        }
        if let Some(checkpoint) = checkpoint {
            // Checked here, atomically with queueing: a truncation may have run meanwhile.
            if checkpoint > state.next_index {
                let (first, last) = (state.durable_checkpoint, state.next_index - 1);
                return Poll::Ready(Err(WalError::OutOfRange {
                    index: checkpoint,
                    first,
                    last,
                }));
            }
        }
        let fits = state.pending.is_empty()
            || state.pending.len() + stored <= shared.options.pending_bytes_limit;
        if state.exclusive || !fits {
            shared.space_waiters.register(cx.waker());
            return Poll::Pending;
        }
        let was_empty = state.pending.is_empty();
        let state = &mut *state;
        let index = match kind {
            RecordKind::Entry => {
                let index = state.next_index;
                state.next_index += 1;
                append_unsealed_record(&mut state.pending, kind, index, payload);
                index
            }
            RecordKind::Metadata => {
                let index = state.next_index - 1;
                if let Some(checkpoint) = checkpoint {
                    state.queued_checkpoint = state.queued_checkpoint.max(checkpoint);
                } else {
                    state.queued_metadata = payload.to_vec();
                }
                let encoded = encode_metadata(state.queued_checkpoint, &state.queued_metadata);
                append_unsealed_record(&mut state.pending, kind, index, &encoded);
                index
            }
        };
        if was_empty {
            shared.flusher_waiters.wake_all();
        }
        Poll::Ready(Ok(Queued {
            index,
            generation: state.pending_generation,
        }))
    })
    .await
}

/// Waits until the generation of `queued` is durable, or the log stopped.
async fn wait_durable(shared: &Shared, queued: Queued) -> WalResult<()> {
    poll_fn(|cx| {
        let state = shared.state.borrow();
        if state.durable_generation >= queued.generation {
            return Poll::Ready(Ok(()));
        }
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err((**fault).clone()));
        }
        // Registered on every pending poll, so a changed waker is honoured; stale entries are
        // dropped by the next wake-up.
        shared
            .durable_waiters
            .borrow_mut()
            .push((queued.generation, cx.waker().clone()));
        Poll::Pending
    })
    .await
}

/// Runs a multi-step operation as its own task, so that dropping the caller's future (a timeout,
/// a select) cannot stop it halfway and leave the log held or half-changed.
async fn run_to_completion<T: 'static>(
    operation: impl Future<Output = WalResult<T>> + 'static,
) -> WalResult<T> {
    glommio::spawn_local(operation)
        .detach()
        .await
        .unwrap_or(Err(WalError::Closed))
}

/// Runs `operation` holding the log (appends wait, queued records drain first), to completion.
async fn exclusively<F, Fut>(shared: Rc<Shared>, operation: F) -> WalResult<()>
where
    F: FnOnce(Rc<Shared>) -> Fut + 'static,
    Fut: Future<Output = WalResult<()>> + 'static,
{
    run_to_completion(async move {
        begin_exclusive(&shared).await?;
        let result = operation(shared.clone()).await;
        end_exclusive(&shared, &result);
        result
    })
    .await
}

/// Marks the log stopped if `result` is a storage fault (fail-stop).
fn stop_on_storage_fault<T>(shared: &Shared, result: &WalResult<T>) {
    if let Err(error) = result {
        let mut state = shared.state.borrow_mut();
        if error.is_storage_fault() && state.stopped.is_none() {
            tracing::error!(%error, "wal storage fault: the log stops accepting appends");
            state.stopped = Some(Arc::new(error.clone()));
        }
    }
}

/// Holds the log for a truncation or reset: new appends wait, queued ones drain first.
async fn begin_exclusive(shared: &Shared) -> WalResult<()> {
    poll_fn(|cx| {
        let mut state = shared.state.borrow_mut();
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.closing {
            return Poll::Ready(Err(WalError::Closed));
        }
        if state.exclusive {
            shared.idle_waiters.register(cx.waker());
            return Poll::Pending;
        }
        state.exclusive = true;
        Poll::Ready(Ok(()))
    })
    .await?;
    let drained = poll_fn(|cx| {
        let state = shared.state.borrow();
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.pending.is_empty() && !state.flushing {
            return Poll::Ready(Ok(()));
        }
        shared.idle_waiters.register(cx.waker());
        Poll::Pending
    })
    .await;
    if drained.is_err() {
        end_exclusive(shared, &Ok(()));
    }
    drained
}

/// Releases the log held by `begin_exclusive`; a storage fault in the operation stops it.
fn end_exclusive(shared: &Shared, result: &WalResult<()>) {
    shared.state.borrow_mut().exclusive = false;
    stop_on_storage_fault(shared, result);
    shared.space_waiters.wake_all();
    shared.idle_waiters.wake_all();
    wake_durable_waiters(shared);
}

async fn truncate_after_exclusive(shared: &Shared, last_kept: u64) -> WalResult<()> {
    let (next_index, checkpoint) = {
        let state = shared.state.borrow();
        (state.next_index, state.durable_checkpoint)
    };
    if last_kept + 1 >= next_index {
        return Ok(());
    }
    if last_kept + 1 < checkpoint {
        return Err(WalError::OutOfRange {
            index: last_kept + 1,
            first: checkpoint,
            last: next_index - 1,
        });
    }
    // Never rewrite old bytes: roll to a new segment that starts at the cut. Recovery lets a
    // later segment override the entries from its first index on.
    roll(shared, last_kept + 1, None).await?;
    sync_tail(shared).await?;
    let overridden = {
        let mut state = shared.state.borrow_mut();
        let fresh = state.segments.pop().expect("roll pushed a segment");
        let mut overridden = Vec::new();
        while state
            .segments
            .last()
            .is_some_and(|s| s.first_index > last_kept)
        {
            overridden.push(state.segments.pop().expect("checked non-empty"));
        }
        if let Some(trimmed) = state.segments.last_mut() {
            let keep = (last_kept + 1 - trimmed.first_index) as usize;
            trimmed.entries.truncate(keep);
        }
        state.segments.push(fresh);
        state.next_index = last_kept + 1;
        state.placed_last_index = last_kept;
        state.durable_last_index = last_kept;
        overridden
    };
    for segment in overridden {
        recycle(shared, segment).await?;
    }
    Ok(())
}

async fn reset_exclusive(shared: &Shared, next_index: u64) -> WalResult<()> {
    roll(shared, next_index, Some(next_index)).await?;
    sync_tail(shared).await?;
    let released = {
        let mut state = shared.state.borrow_mut();
        let fresh = state.segments.pop().expect("roll pushed a segment");
        let released = std::mem::take(&mut state.segments);
        state.segments.push(fresh);
        state.next_index = next_index;
        state.placed_last_index = next_index - 1;
        state.durable_last_index = next_index - 1;
        state.queued_checkpoint = next_index;
        state.durable_checkpoint = next_index;
        released
    };
    for segment in released {
        recycle(shared, segment).await?;
    }
    Ok(())
}

/// Recycles, oldest first, every segment (but the tail) whose entries all lie below `index`.
async fn recycle_released(shared: &Shared, index: u64) -> WalResult<()> {
    loop {
        let released = {
            let mut state = shared.state.borrow_mut();
            if state.segments.len() > 1 && state.segments[0].next_index() <= index {
                Some(state.segments.remove(0))
            } else {
                None
            }
        };
        match released {
            Some(segment) => recycle(shared, segment).await?,
            None => return Ok(()),
        }
    }
}
