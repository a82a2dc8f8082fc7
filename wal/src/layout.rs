//! The on-disk layout of a segment file: a header block, then 8-byte-aligned records.
//!
//! ```text
//! segment file (segment_bytes long, pre-written before use):
//!   block 0 (4096 B): SegmentHeader, zero padded
//!   from 4096:        record, record, ... then zeros (or an earlier life's bytes)
//!
//! record (RECORD_HEADER_BYTES + payload, padded with zeros to a multiple of 8):
//!   0  u32  crc32 of (segment seq as 8 LE bytes) ++ record bytes [4 .. 24 + len]
//!   4  u8   kind (1 = entry, 2 = metadata)
//!   5  3 B  zero
//!   8  u32  payload length
//!   12 u32  batch_start: byte offset in the segment of the first record of the write batch
//!   16 u64  index (entries: the record's index; metadata: the last entry index before it)
//!   24 ...  payload
//! ```
//!
//! The crc is salted with the segment's sequence number, so a recycled segment's records from an
//! earlier life never validate in its new one. `batch_start` lets recovery tell a torn final batch
//! (never acknowledged: truncate it) from a hole in an acknowledged batch (corruption: refuse).

/// The unit of O_DIRECT I/O and of the segment header.
pub const BLOCK_BYTES: usize = 4096;
/// Size of a record header.
pub const RECORD_HEADER_BYTES: usize = 24;
/// Records start and end on this alignment.
pub const RECORD_ALIGN: usize = 8;
/// First byte of the first record of every segment.
pub const FIRST_RECORD_OFFSET: u64 = BLOCK_BYTES as u64;

const SEGMENT_MAGIC: [u8; 8] = *b"BSLTWAL1";
/// Marks block 0 of a recycled segment: a spare, whatever records of an earlier life it holds.
const FREE_MAGIC: [u8; 8] = *b"BSLTFREE";
const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header that carry meaning (the rest of block 0 is zero).
const SEGMENT_HEADER_BYTES: usize = 64;

/// Rounds `n` up to a multiple of `align` (a power of two).
pub const fn align_up(n: u64, align: u64) -> u64 {
    (n + align - 1) & !(align - 1)
}

/// Rounds `n` down to a multiple of `align` (a power of two).
pub const fn align_down(n: u64, align: u64) -> u64 {
    n & !(align - 1)
}

/// Bytes a record with a payload of `payload_bytes` occupies in a segment, padding included.
pub const fn record_bytes(payload_bytes: usize) -> usize {
    align_up(
        (RECORD_HEADER_BYTES + payload_bytes) as u64,
        RECORD_ALIGN as u64,
    ) as usize
}

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A log entry with its own index.
    Entry = 1,
    /// The log's metadata (checkpoint + the caller's small metadata); the latest one wins.
    Metadata = 2,
}

impl RecordKind {
    /// The kind a header byte names, if any.
    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::Metadata),
            _ => None,
        }
    }
}

/// The identity of a segment file, stored in its first block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Position of the segment in the log; strictly increasing, never reused.
    pub seq: u64,
    /// Index the first entry of this segment has (or will have).
    pub first_index: u64,
    /// Length of the segment file.
    pub segment_bytes: u64,
}

impl SegmentHeader {
    /// Encodes the header into the start of `block` (which must be zeroed by the caller).
    pub fn encode(&self, block: &mut [u8]) {
        assert!(block.len() >= SEGMENT_HEADER_BYTES);
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        block[16..24].copy_from_slice(&self.seq.to_le_bytes());
        block[24..32].copy_from_slice(&self.first_index.to_le_bytes());
        block[32..40].copy_from_slice(&self.segment_bytes.to_le_bytes());
        let crc = crc32fast::hash(&block[0..SEGMENT_HEADER_BYTES - 4]);
        block[SEGMENT_HEADER_BYTES - 4..SEGMENT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    }

    /// Fills `block` with the marker of a recycled (free) segment.
    pub fn encode_free(block: &mut [u8]) {
        block.fill(0);
        block[0..8].copy_from_slice(&FREE_MAGIC);
    }

    /// Whether block 0 carries the recycled marker.
    pub fn is_free_marker(block: &[u8]) -> bool {
        block.starts_with(&FREE_MAGIC)
    }

    /// Decodes a header; `None` when the block holds no valid header (a spare file, or a segment
    /// whose first write never reached the disk).
    pub fn decode(block: &[u8]) -> Option<SegmentHeader> {
        if block.len() < SEGMENT_HEADER_BYTES || block[0..8] != SEGMENT_MAGIC {
            return None;
        }
        let stored_crc = u32::from_le_bytes(block[60..64].try_into().ok()?);
        if crc32fast::hash(&block[0..SEGMENT_HEADER_BYTES - 4]) != stored_crc {
            return None;
        }
        if u32::from_le_bytes(block[8..12].try_into().ok()?) != SEGMENT_FORMAT_VERSION {
            return None;
        }
        let header = SegmentHeader {
            seq: u64::from_le_bytes(block[16..24].try_into().ok()?),
            first_index: u64::from_le_bytes(block[24..32].try_into().ok()?),
            segment_bytes: u64::from_le_bytes(block[32..40].try_into().ok()?),
        };
        // A checksummed header the log could never have written is still not a header.
        let sane_size = header.segment_bytes >= 4 * BLOCK_BYTES as u64
            && header.segment_bytes.is_multiple_of(BLOCK_BYTES as u64)
            && header.segment_bytes <= u32::MAX as u64;
        (sane_size && header.first_index >= 1 && header.seq >= 1).then_some(header)
    }
}

/// Writes a record without its crc and batch_start (the flusher fills those once it knows where
/// the record lands) at the end of `out`, padded to RECORD_ALIGN.
pub fn append_unsealed_record(out: &mut Vec<u8>, kind: RecordKind, index: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("record length is limited far below 4 GiB");
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind as u8);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(start + record_bytes(payload.len()), 0);
}

/// Fills in `batch_start` and the crc of the record at the start of `record` (for segment `seq`),
/// and returns the record's length with padding.
pub fn seal_record(record: &mut [u8], seq: u64, batch_start: u32) -> usize {
    let len = u32::from_le_bytes(record[8..12].try_into().expect("4 bytes")) as usize;
    record[12..16].copy_from_slice(&batch_start.to_le_bytes());
    let crc = record_crc(seq, &record[4..RECORD_HEADER_BYTES + len]);
    record[0..4].copy_from_slice(&crc.to_le_bytes());
    record_bytes(len)
}

fn record_crc(seq: u64, covered: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(covered);
    hasher.finalize()
}

/// The fields of a record's header that the flusher needs while placing it: (kind byte, payload
/// length, index). Does not check the crc.
pub fn record_fields(record: &[u8]) -> (u8, usize, u64) {
    let len = u32::from_le_bytes(record[8..12].try_into().expect("4 bytes")) as usize;
    let index = u64::from_le_bytes(record[16..24].try_into().expect("8 bytes"));
    (record[4], len, index)
}

/// A record read back from a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub kind: RecordKind,
    pub index: u64,
    pub batch_start: u32,
    pub payload: &'a [u8],
    /// Bytes the record occupies, padding included.
    pub stored_bytes: usize,
}

/// Why no record could be read at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordProblem {
    /// The header is all zeros: nothing was ever written here in this segment's life.
    Empty,
    /// The bytes do not form a valid record of this segment (torn, corrupt, or an earlier life).
    Invalid,
}

/// Reads the record at the start of `bytes` (the rest of the segment from its position), checking
/// its crc against segment `seq`.
pub fn read_record(bytes: &[u8], seq: u64) -> Result<RecordView<'_>, RecordProblem> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(RecordProblem::Invalid);
    }
    let header = &bytes[..RECORD_HEADER_BYTES];
    if header.iter().all(|&b| b == 0) {
        return Err(RecordProblem::Empty);
    }
    let kind = RecordKind::from_byte(header[4]).ok_or(RecordProblem::Invalid)?;
    if header[5..8] != [0, 0, 0] {
        return Err(RecordProblem::Invalid);
    }
    let len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    if len > bytes.len() - RECORD_HEADER_BYTES {
        return Err(RecordProblem::Invalid);
    }
    let stored_crc = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    if record_crc(seq, &bytes[4..RECORD_HEADER_BYTES + len]) != stored_crc {
        return Err(RecordProblem::Invalid);
    }
    Ok(RecordView {
        kind,
        index: u64::from_le_bytes(header[16..24].try_into().expect("8 bytes")),
        batch_start: u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")),
        payload: &bytes[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len],
        stored_bytes: record_bytes(len),
    })
}

/// The payload of a metadata record: the checkpoint, then the caller's metadata bytes.
pub fn encode_metadata(checkpoint: u64, user_metadata: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + user_metadata.len());
    payload.extend_from_slice(&checkpoint.to_le_bytes());
    payload.extend_from_slice(user_metadata);
    payload
}

/// Splits a metadata payload into (checkpoint, caller's metadata); `None` if it is too short or
/// names checkpoint 0 (indices start at 1).
pub fn decode_metadata(payload: &[u8]) -> Option<(u64, &[u8])> {
    let checkpoint = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
    (checkpoint >= 1).then_some((checkpoint, &payload[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_other_segment_and_flipped_bytes() {
        let mut buf = Vec::new();
        append_unsealed_record(&mut buf, RecordKind::Entry, 42, b"hello");
        assert_eq!(buf.len(), record_bytes(5));
        assert_eq!(buf.len() % RECORD_ALIGN, 0);
        let sealed = seal_record(&mut buf, 7, 4096);
        assert_eq!(sealed, buf.len());
        let view = read_record(&buf, 7).expect("valid record");
        assert_eq!(
            (view.kind, view.index, view.batch_start),
            (RecordKind::Entry, 42, 4096)
        );
        assert_eq!(view.payload, b"hello");
        assert_eq!(read_record(&buf, 8), Err(RecordProblem::Invalid));
        for i in 0..RECORD_HEADER_BYTES + 5 {
            let mut flipped = buf.clone();
            flipped[i] ^= 0x10;
            assert!(
                read_record(&flipped, 7).is_err(),
                "flip at byte {i} not caught"
            );
        }
    }

    #[test]
    fn zero_header_reads_as_empty_and_short_buffer_as_invalid() {
        assert_eq!(read_record(&[0; 64], 1), Err(RecordProblem::Empty));
        assert_eq!(read_record(&[0; 10], 1), Err(RecordProblem::Invalid));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            seq: 3,
            first_index: 1000,
            segment_bytes: 1 << 20,
        };
        let mut block = vec![0u8; BLOCK_BYTES];
        header.encode(&mut block);
        assert_eq!(SegmentHeader::decode(&block), Some(header));
        block[20] ^= 1;
        assert_eq!(SegmentHeader::decode(&block), None);
        assert_eq!(SegmentHeader::decode(&[0; BLOCK_BYTES]), None);
    }
}
