//! The flusher task: takes the whole pending buffer as one batch, places it in the tail
//! segment, writes it with one O_DIRECT, O_DSYNC write (durable when it completes), then wakes
//! the batch's appenders.

use super::*;

/// The flusher task: one batch at a time, one durable write per batch.
pub(super) async fn run_flusher(shared: Rc<Shared>) {
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

pub(super) fn wake_durable_waiters(shared: &Shared) {
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
pub(super) async fn write_batch(shared: &Shared, batch: &mut [u8]) -> WalResult<()> {
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
    shared.metrics.batch_records.observe(records as f64);
    Ok(())
}

/// Seals the records of `chunk` for the tail segment and writes them after its end of data, with
/// the tail's partial last block in front so the write is block-aligned.
pub(super) async fn write_chunk(shared: &Shared, chunk: &mut [u8]) -> WalResult<()> {
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
    let started = std::time::Instant::now();
    let written = file
        .write_at(buffer, write_at)
        .await
        .map_err(|e| WalError::glommio("write", &path, e))?;
    shared
        .metrics
        .fsync_seconds
        .observe_duration(started.elapsed());
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
    state.stats.fdatasyncs += 1;
    Ok(())
}

/// Ends the tail's unsynced run: its writes since the last boundary are durable. Segment files
/// are O_DSYNC, so each of those writes was durable when it completed and no syscall is needed
/// here; the fault seam stays, so tests can fail the durability of a batch whose bytes were
/// written (as an O_DSYNC write's failed flush, or an fdatasync's, would).
pub(super) async fn sync_tail(shared: &Shared) -> WalResult<()> {
    let path = {
        let state = shared.state.borrow();
        if state.unsynced_start.is_none() {
            return Ok(());
        }
        let tail = state
            .segments
            .last()
            .expect("an open log always has a tail segment");
        tail.path.clone()
    };
    if let Some(injector) = &shared.options.fault_injector {
        injector
            .before_fdatasync(&path)
            .map_err(|e| WalError::io("fdatasync", &path, e))?;
    }
    shared.state.borrow_mut().unsynced_start = None;
    Ok(())
}
