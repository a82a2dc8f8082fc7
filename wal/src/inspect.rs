//! Reading a log without changing it, record by record (what `basalt-util wal dump` prints).
//!
//! The same rules as recovery tell a segment's normal end, a torn final batch and corruption
//! apart, but nothing is repaired, recycled or deleted: a torn tail is reported, corruption is
//! the error naming the segment file and byte offset. Segments are visited in sequence order,
//! each record as it lies in its file (entries a later segment overrides after a suffix
//! truncation are shown where they are).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{WalError, WalResult};
use crate::layout::{decode_metadata, RecordKind, SegmentHeader};
use crate::recovery::{
    check_headerless_segment, corrupt, read_header, scan_segment, BlockZero, PARTIAL_SUFFIX,
    SEGMENT_SUFFIX, SPARE_SUFFIX,
};

/// What an inspection meets, in order.
#[derive(Debug)]
pub enum Inspected<'a> {
    /// A segment begins.
    Segment {
        path: &'a Path,
        seq: u64,
        first_index: u64,
    },
    /// A valid record of the current segment.
    Record {
        /// Byte offset of the record in its segment file.
        offset: u64,
        record: InspectedRecord<'a>,
    },
}

/// A record's meaning to the log.
#[derive(Debug)]
pub enum InspectedRecord<'a> {
    /// A log entry and its index.
    Entry { index: u64, payload: &'a [u8] },
    /// The log's metadata: the first index it holds, and the caller's metadata bytes.
    Metadata { checkpoint: u64, metadata: &'a [u8] },
}

/// A torn final batch: never acknowledged, discarded by the next open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the valid records end.
    pub offset: u64,
    /// Bytes of the torn batch past that point.
    pub bytes: u64,
}

/// Visits every segment and record of the log in `dir`, reading only. Fails on corruption
/// (with the file and offset) or an I/O error; a torn tail is returned, not an error.
pub fn inspect(dir: &Path, mut visit: impl FnMut(Inspected<'_>)) -> WalResult<Option<TornTail>> {
    let mut found: Vec<(SegmentHeader, PathBuf)> = Vec::new();
    let mut headerless = Vec::new();
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
        if name.ends_with(PARTIAL_SUFFIX) {
            continue;
        }
        let is_segment = name.ends_with(SEGMENT_SUFFIX);
        if !is_segment && !name.ends_with(SPARE_SUFFIX) {
            continue;
        }
        match read_header(&path)? {
            // A spare with a header is a segment whose rename was lost (recovery uses it).
            BlockZero::Header(header) => found.push((header, path)),
            BlockZero::Zeros | BlockZero::Damaged if is_segment => headerless.push(path),
            _ => {}
        }
    }
    found.sort_by_key(|(header, _)| header.seq);
    let newest_seq = found.last().map_or(0, |(header, _)| header.seq);
    for path in &headerless {
        check_headerless_segment(path, newest_seq)?;
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

    let mut torn_tail = None;
    let last_position = found.len().saturating_sub(1);
    crate::segment_reader::for_each_segment(&found, |position, bytes| {
        let (header, path) = &found[position];
        visit(Inspected::Segment {
            path,
            seq: header.seq,
            first_index: header.first_index,
        });
        let scanned = scan_segment(
            path,
            *header,
            bytes,
            position == last_position,
            &mut |offset, record| {
                let record = match record.kind {
                    RecordKind::Entry => InspectedRecord::Entry {
                        index: record.index,
                        payload: record.payload,
                    },
                    RecordKind::Metadata => {
                        let (checkpoint, metadata) = decode_metadata(record.payload)
                            .expect("the scan checked the metadata record");
                        InspectedRecord::Metadata {
                            checkpoint,
                            metadata,
                        }
                    }
                };
                visit(Inspected::Record { offset, record });
            },
        )?;
        if let Some(extent_end) = scanned.torn_extent_end {
            torn_tail = Some(TornTail {
                path: path.clone(),
                offset: scanned.end_offset,
                bytes: extent_end - scanned.end_offset,
            });
        }
        Ok(())
    })?;
    Ok(torn_tail)
}
