//! The log's segments: rolling to a pre-written spare when the tail is full, and turning
//! segments the log no longer needs back into spares.

use super::*;

/// Starts a new tail segment whose first entry will be `first_index`, from a pre-written spare:
/// syncs the old tail first (so a new segment never holds data while an older one has unsynced
/// writes), then writes the header block and an opening metadata record (durable once written: segment
/// files are O_DSYNC).
/// `checkpoint` replaces the checkpoint (a reset); otherwise the current one is carried over.
pub(super) async fn roll(
    shared: &Shared,
    first_index: u64,
    checkpoint: Option<u64>,
) -> WalResult<()> {
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
    std::fs::rename(&spare.path, &path)
        .map_err(|e| WalError::io("rename spare to segment", &spare.path, e))?;
    // Make the new name durable before any record in the file is: a later fdatasync of a
    // pre-written file commits no metadata, so it would not carry the rename. Recovery also
    // reads a spare's header, but the name keeps the file's seq known even if its header write
    // is lost, so a discarded segment's seq is never handed out again.
    shared
        .spares
        .sync_directory()
        .await
        .map_err(|e| WalError::io("sync directory", &shared.dir, e))?;
    // The spare's file stays open under its new name: no descriptor is opened here.
    let file = spare.file;
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
        file,
        entries: Vec::new(),
        end_offset: end,
    });
    state.tail_block = tail_block;
    state.unsynced_start = Some(FIRST_RECORD_OFFSET);
    state.stats.bytes_written += buffer_len as u64;
    state.stats.fdatasyncs += 1;
    Ok(())
}

/// Turns a segment the log no longer needs into a spare: mark block 0 free durably (so recovery
/// can never take it for part of the log), rename it, and hand it to the spare pool.
pub(super) async fn recycle(shared: &Shared, segment: Segment) -> WalResult<()> {
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
        shared.spares.give_back(Spare {
            path: spare,
            file: segment.file,
        })
    } else {
        std::fs::remove_file(&spare).map_err(|e| WalError::io("remove spare", &spare, e))
    }
}

/// Recycles, oldest first, every segment (but the tail) whose entries all lie below `index`.
pub(super) async fn recycle_released(shared: &Shared, index: u64) -> WalResult<()> {
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
