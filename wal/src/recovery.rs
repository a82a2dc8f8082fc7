//! Recovery at open: find the segments, validate every record from the first retained segment to
//! the end, repair a torn tail of the last segment, and refuse anything a crash cannot explain.
//!
//! What a crash can leave, given how the log writes (one write batch at a time, the next batch
//! issued only after the previous batch's fdatasync completed, a new segment only after the old
//! one's last batch is synced):
//! - the final batch of the last segment partially on disk, in any order of its 512-byte sectors;
//! - a last segment whose first write (header + opening metadata) is partly or not on disk;
//! - spare files in any state of being made, segments half-recycled.
//!
//! Anything else — a bad record before the final batch, a record after a hole that belongs to a
//! later batch, an entry whose index breaks the sequence, a segment shorter than its header says
//! (or too short to hold one), a gap between segments — is corruption, and opening fails naming the file and byte offset.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{WalError, WalResult};
use crate::layout::{
    align_down, align_up, decode_metadata, read_record, RecordKind, RecordProblem, RecordView,
    SegmentHeader, BLOCK_BYTES, FIRST_RECORD_OFFSET, RECORD_ALIGN,
};

/// File name suffix of a segment that is part of the log.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// File name suffix of a pre-written segment waiting to be used.
pub const SPARE_SUFFIX: &str = ".spare";
/// File name suffix of a spare still being pre-written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// One segment as recovery found it.
#[derive(Debug)]
pub struct RecoveredSegment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    /// Where each entry is; entry `header.first_index + i` is `entries[i]`.
    pub entries: Vec<EntryLocation>,
    /// Where the valid records end: the next write goes here.
    pub end_offset: u64,
}

impl RecoveredSegment {
    /// Index the next entry after this segment's last one gets.
    pub fn next_index(&self) -> u64 {
        self.header.first_index + self.entries.len() as u64
    }
}

/// The state of the log on disk after recovery.
#[derive(Debug)]
pub struct RecoveredLog {
    /// Retained segments, oldest first; the last one is the tail that appends continue in.
    pub segments: Vec<RecoveredSegment>,
    /// Pre-written files free for use as new segments.
    pub spares: Vec<PathBuf>,
    /// First index the log still holds (everything below was released).
    pub checkpoint: u64,
    /// The caller's latest durable metadata, if any was ever stored.
    pub user_metadata: Option<Vec<u8>>,
    /// Bytes of the tail segment from its last block boundary to its end of data.
    pub tail_block: Vec<u8>,
    /// Bytes of a torn final batch that recovery discarded.
    pub discarded_tail_bytes: u64,
    /// The highest segment sequence number any file carries (in its header or its name),
    /// discarded ones included: new segments go above it, so records left in a discarded
    /// segment can never validate in a file's next life.
    pub highest_seq: u64,
}

impl RecoveredLog {
    /// Index the next appended entry gets.
    pub fn next_index(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.checkpoint, RecoveredSegment::next_index)
    }
}

/// Where an entry's record lies in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLocation {
    /// Byte offset of the record.
    pub offset: u32,
    /// Length of its payload.
    pub payload_bytes: u32,
}

/// Everything found in one segment's bytes.
pub(crate) struct ScannedSegment {
    entries: Vec<EntryLocation>,
    /// The checkpoint in the segment's opening metadata record.
    first_metadata_checkpoint: Option<u64>,
    pub(crate) end_offset: u64,
    /// The last metadata record's (checkpoint, caller metadata).
    last_metadata: Option<(u64, Vec<u8>)>,
    /// Where a torn final batch's bytes end, if records of it were found past a hole.
    pub(crate) torn_extent_end: Option<u64>,
}

/// Recovers the log in `dir` (which must exist). Repairs what a crash explains: zeroes a torn
/// final batch, recycles released and half-made segments into spares, deletes half-made spares.
pub fn recover(dir: &Path, spare_bytes: u64) -> WalResult<RecoveredLog> {
    let mut found = Vec::new();
    let mut highest_seq = 0;
    let mut headerless = Vec::new();
    let mut spares = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("read directory", dir, e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| WalError::io("read directory", dir, e))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(seq) = seq_from_name(&path) {
            highest_seq = highest_seq.max(seq);
        }
        if name.ends_with(PARTIAL_SUFFIX) {
            fs::remove_file(&path).map_err(|e| WalError::io("remove partial spare", &path, e))?;
        } else if name.ends_with(SPARE_SUFFIX) {
            match read_header(&path)? {
                // A roll renames a spare before writing its header and syncs the directory
                // before acknowledging anything in it; should a rename still be lost, the header
                // says what the file is.
                BlockZero::Header(header) => found.push((header, path)),
                _ => spares.push(path),
            }
        } else if name.ends_with(SEGMENT_SUFFIX) {
            match read_header(&path)? {
                BlockZero::Header(header) => found.push((header, path)),
                BlockZero::FreeMarker => spares.push(recycle_to_spare(&path, false)?),
                BlockZero::Zeros | BlockZero::Damaged => headerless.push(path),
            }
        }
    }
    found.sort_by_key(|(header, _)| header.seq);
    let newest_seq = found.last().map_or(0, |(header, _)| header.seq);
    highest_seq = highest_seq.max(newest_seq);
    for path in headerless {
        check_headerless_segment(&path, newest_seq)?;
        spares.push(recycle_to_spare(&path, false)?);
    }
    for pair in found.windows(2) {
        if pair[0].0.seq == pair[1].0.seq {
            return Err(corrupt(
                &pair[1].1,
                0,
                format!("segment seq {} appears twice", pair[1].0.seq),
            ));
        }
    }

    let mut scans = Vec::with_capacity(found.len());
    let last_position = found.len().saturating_sub(1);
    crate::segment_reader::for_each_segment(&found, |position, bytes| {
        let (header, path) = &found[position];
        scans.push(scan_segment(
            path,
            *header,
            bytes,
            position == last_position,
            &mut |_, _| {},
        )?);
        Ok(())
    })?;
    let mut scanned: Vec<_> = found
        .into_iter()
        .zip(scans)
        .map(|((header, path), scan)| (header, path, scan))
        .collect();

    // A last segment with no record at all: its opening write was torn (nothing in it was ever
    // acknowledged); appends go on in the one before it.
    if scanned
        .last()
        .is_some_and(|(_, _, scan)| scan.end_offset == FIRST_RECORD_OFFSET)
    {
        let (_, path, _) = scanned.pop().expect("checked non-empty");
        spares.push(recycle_to_spare(&path, true)?);
    }

    // Replay the segments in order. A segment that starts at or below the index where the log
    // so far ends overrides the entries from its first index on (a suffix truncation rolls to a
    // new segment instead of rewriting old bytes); one that starts above it must be preceded by a
    // release of everything before it (a reset), or entries are missing.
    let mut segments: Vec<RecoveredSegment> = Vec::with_capacity(scanned.len());
    let mut checkpoint = 1;
    let mut user_metadata = None;
    let mut discarded_tail_bytes = 0;
    let count = scanned.len();
    for (position, (header, path, scan)) in scanned.into_iter().enumerate() {
        let segment_checkpoint = scan.first_metadata_checkpoint.unwrap_or(checkpoint);
        if let Some(previous) = segments.last() {
            let expected = previous.next_index();
            if header.first_index < expected {
                while segments
                    .last()
                    .is_some_and(|s| s.header.first_index >= header.first_index)
                {
                    let overridden = segments.pop().expect("checked non-empty");
                    spares.push(recycle_to_spare(&overridden.path, true)?);
                }
                if let Some(trimmed) = segments.last_mut() {
                    let keep = (header.first_index - trimmed.header.first_index) as usize;
                    trimmed.entries.truncate(keep);
                }
            } else if header.first_index > expected {
                if segment_checkpoint < header.first_index {
                    return Err(corrupt(
                        &path,
                        0,
                        format!(
                            "segment starts at index {} but the previous segment ends before \
                             index {expected}",
                            header.first_index
                        ),
                    ));
                }
                for released in segments.drain(..) {
                    spares.push(recycle_to_spare(&released.path, true)?);
                }
            }
        }
        if let Some((segment_checkpoint, metadata)) = &scan.last_metadata {
            checkpoint = *segment_checkpoint;
            user_metadata = Some(metadata.clone());
        }
        let segment = RecoveredSegment {
            path,
            header,
            entries: scan.entries,
            end_offset: scan.end_offset,
        };
        if let Some(extent_end) = scan.torn_extent_end {
            assert_eq!(
                position + 1,
                count,
                "only the last segment may hold a torn batch"
            );
            discarded_tail_bytes = extent_end - segment.end_offset;
            zero_range(&segment.path, segment.end_offset, extent_end)?;
        }
        segments.push(segment);
    }

    // Segments entirely below the checkpoint were released; their recycling was cut short.
    while segments.len() > 1 && segments[0].next_index() <= checkpoint {
        let released = segments.remove(0);
        spares.push(recycle_to_spare(&released.path, true)?);
    }
    if let Some(first) = segments.first() {
        if first.header.first_index > checkpoint {
            return Err(corrupt(
                &first.path,
                0,
                format!(
                    "log should hold entries from index {checkpoint} but its first segment starts at {}",
                    first.header.first_index
                ),
            ));
        }
    }
    let tail_block = match segments.last() {
        Some(tail) => read_tail_block(&tail.path, tail.end_offset)?,
        None => Vec::new(),
    };
    let spares = keep_full_size_spares(spares, spare_bytes)?;
    Ok(RecoveredLog {
        segments,
        spares,
        checkpoint,
        user_metadata,
        tail_block,
        discarded_tail_bytes,
        highest_seq,
    })
}

/// A segment file whose block 0 is zeros or damaged is a roll whose opening write was torn
/// (nothing in it was acknowledged: it becomes a spare). It is corruption instead when the file
/// is too short to hold its header block (cut: a roll renames a full-size spare), or when, read
/// with the sequence number its name carries, it holds a record that proves it was synced: one
/// written after its first fdatasync (batch_start past the first record), or any record while a
/// newer segment exists (a segment is synced before the log rolls past it).
pub(crate) fn check_headerless_segment(path: &Path, newest_seq: u64) -> WalResult<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let Ok(seq) = u64::from_str_radix(stem, 16) else {
        return Ok(());
    };
    let bytes = fs::read(path).map_err(|e| WalError::io("read segment", path, e))?;
    if (bytes.len() as u64) < FIRST_RECORD_OFFSET {
        // A roll renames a spare written in full, so a torn roll is a whole file of zeros; one
        // too short to hold even its header was cut, and its records (if any) went with it.
        return Err(corrupt(
            path,
            bytes.len() as u64,
            format!(
                "segment is {} bytes, shorter than its header block: the file was cut",
                bytes.len()
            ),
        ));
    }
    let mut position = FIRST_RECORD_OFFSET;
    while position + RECORD_ALIGN as u64 <= bytes.len() as u64 {
        if let Ok(record) = read_record(&bytes[position as usize..], seq) {
            if record.batch_start as u64 > FIRST_RECORD_OFFSET || seq < newest_seq {
                return Err(corrupt(
                    path,
                    0,
                    format!("segment header is damaged but the segment holds synced records (one at offset {position})"),
                ));
            }
            position += record.stored_bytes as u64;
        } else {
            position += RECORD_ALIGN as u64;
        }
    }
    Ok(())
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: String) -> WalError {
    WalError::Corrupt {
        path: path.to_owned(),
        offset,
        reason,
    }
}

/// What block 0 of a segment file holds.
pub(crate) enum BlockZero {
    Header(SegmentHeader),
    /// The recycled marker: recycling was cut short before the rename.
    FreeMarker,
    /// Zeros: a roll whose header write did not reach the disk — or a header wiped out.
    Zeros,
    /// A header damaged after it was written, or a torn opening write.
    Damaged,
}

/// The sequence number a segment's file name carries (`{seq:016x}.wal`, and `.spare` once
/// recycled), if it has one.
fn seq_from_name(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok()
}

pub(crate) fn read_header(path: &Path) -> WalResult<BlockZero> {
    let file = File::open(path).map_err(|e| WalError::io("open segment", path, e))?;
    let mut block = vec![0u8; BLOCK_BYTES];
    let read = read_up_to(&file, &mut block, 0)
        .map_err(|e| WalError::io("read segment header", path, e))?;
    let block = &block[..read];
    Ok(match SegmentHeader::decode(block) {
        Some(header) => BlockZero::Header(header),
        None if SegmentHeader::is_free_marker(block) => BlockZero::FreeMarker,
        None if block.iter().all(|&b| b == 0) => BlockZero::Zeros,
        None => BlockZero::Damaged,
    })
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads one segment's records in order, handing each valid one (checked as recovery checks
/// it) to `on_record` with its byte offset, and classifies what follows the first unreadable position (end, torn final batch
/// of the last segment, or corruption). Reads only.
pub(crate) fn scan_segment(
    path: &Path,
    header: SegmentHeader,
    bytes: &[u8],
    is_last: bool,
    on_record: &mut dyn FnMut(u64, &RecordView<'_>),
) -> WalResult<ScannedSegment> {
    let mut entries = Vec::new();
    let mut first_metadata_checkpoint = None;
    let mut last_metadata = None;
    let mut next_index = header.first_index;
    let mut position = FIRST_RECORD_OFFSET;
    let stop = loop {
        match read_record(&bytes[position as usize..], header.seq) {
            Ok(record) => {
                match record.kind {
                    RecordKind::Entry => {
                        if record.index != next_index {
                            return Err(corrupt(
                                path,
                                position,
                                format!(
                                    "entry has index {} where {next_index} was expected",
                                    record.index
                                ),
                            ));
                        }
                        entries.push(EntryLocation {
                            offset: position as u32,
                            payload_bytes: record.payload.len() as u32,
                        });
                        next_index += 1;
                    }
                    RecordKind::Metadata => {
                        let (checkpoint, metadata) =
                            decode_metadata(record.payload).ok_or_else(|| {
                                corrupt(path, position, "metadata record too short".into())
                            })?;
                        first_metadata_checkpoint.get_or_insert(checkpoint);
                        last_metadata = Some((checkpoint, metadata.to_vec()));
                    }
                }
                on_record(position, &record);
                position += record.stored_bytes as u64;
            }
            Err(RecordProblem::Empty) | Err(RecordProblem::Invalid) => break position,
        }
    };

    // Past the first unreadable position, any valid record of this segment means either a torn
    // final batch (the valid record's batch began at or before the hole: that batch was never
    // acknowledged) or corruption (it belongs to a later batch, so the hole's batch was synced).
    let mut torn_extent_end = None;
    let mut probe = stop + RECORD_ALIGN as u64;
    while probe < bytes.len() as u64 {
        match read_record(&bytes[probe as usize..], header.seq) {
            Ok(record) => {
                let batch_start = record.batch_start as u64;
                if !is_last || batch_start > stop {
                    return Err(corrupt(
                        path,
                        stop,
                        format!(
                            "unreadable record followed by a valid record at offset {probe} \
                             written in a later batch"
                        ),
                    ));
                }
                probe += record.stored_bytes as u64;
                torn_extent_end = Some(probe);
            }
            Err(_) => probe += RECORD_ALIGN as u64,
        }
    }
    Ok(ScannedSegment {
        entries,
        first_metadata_checkpoint,
        end_offset: stop,
        last_metadata,
        torn_extent_end,
    })
}

/// Zeroes `[from, to)` of a segment (block-aligned outward, keeping the bytes before `from` in its
/// block) and syncs it, so discarded records can never be read back after later appends.
fn zero_range(path: &Path, from: u64, to: u64) -> WalResult<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open segment", path, e))?;
    let block_start = align_down(from, BLOCK_BYTES as u64);
    let block_end = align_up(to, BLOCK_BYTES as u64);
    let mut bytes = vec![0u8; (block_end - block_start) as usize];
    let keep = (from - block_start) as usize;
    read_up_to(&file, &mut bytes[..keep], block_start)
        .map_err(|e| WalError::io("read segment", path, e))?;
    file.write_all_at(&bytes, block_start)
        .map_err(|e| WalError::io("zero torn tail", path, e))?;
    file.sync_data()
        .map_err(|e| WalError::io("fdatasync", path, e))?;
    Ok(())
}

fn read_tail_block(path: &Path, end_offset: u64) -> WalResult<Vec<u8>> {
    let file = File::open(path).map_err(|e| WalError::io("open segment", path, e))?;
    let block_start = align_down(end_offset, BLOCK_BYTES as u64);
    let mut block = vec![0u8; (end_offset - block_start) as usize];
    let read = read_up_to(&file, &mut block, block_start)
        .map_err(|e| WalError::io("read segment", path, e))?;
    assert_eq!(
        read,
        block.len(),
        "the tail block lies inside a full-size segment"
    );
    Ok(block)
}

/// Turns a segment into a spare: mark block 0 free (so it can never be mistaken for part of the
/// log again), sync, and rename it. `had_header` says whether there is a header to erase.
pub fn recycle_to_spare(path: &Path, had_header: bool) -> WalResult<PathBuf> {
    if had_header {
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| WalError::io("open segment", path, e))?;
        let mut block = [0u8; BLOCK_BYTES];
        SegmentHeader::encode_free(&mut block);
        file.write_all(&block)
            .map_err(|e| WalError::io("erase segment header", path, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync", path, e))?;
    }
    let spare = path.with_extension(&SPARE_SUFFIX[1..]);
    fs::rename(path, &spare).map_err(|e| WalError::io("rename segment to spare", path, e))?;
    Ok(spare)
}

/// Keeps the spares that are exactly one segment long (pre-written in full); removes the rest.
fn keep_full_size_spares(spares: Vec<PathBuf>, spare_bytes: u64) -> WalResult<Vec<PathBuf>> {
    let mut kept = Vec::new();
    for path in spares {
        let length = fs::metadata(&path)
            .map_err(|e| WalError::io("stat spare", &path, e))?
            .len();
        if length == spare_bytes {
            kept.push(path);
        } else {
            fs::remove_file(&path).map_err(|e| WalError::io("remove spare", &path, e))?;
        }
    }
    kept.sort();
    Ok(kept)
}
