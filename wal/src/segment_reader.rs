//! Reads whole segments for recovery, fast: O_DIRECT into reused aligned buffers (no page-cache
//! copy, which dominated a buffered read), on a reader thread one segment ahead of the scanner so
//! the disk and the checksum work overlap.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::error::{WalError, WalResult};
use crate::layout::{SegmentHeader, BLOCK_BYTES};

/// Bytes per read call.
const READ_CHUNK_BYTES: usize = 8 << 20;
/// Segments read ahead of the scanner (each holds one buffer).
const READ_AHEAD_SEGMENTS: usize = 1;

/// A heap buffer whose usable part starts on a block boundary, as O_DIRECT needs. Built from an
/// over-allocated `Vec`, so no unsafe code is needed.
pub struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new() -> AlignedBuffer {
        AlignedBuffer {
            storage: Vec::new(),
            start: 0,
            len: 0,
        }
    }

    /// Makes room for `len` bytes (keeping the allocation when it is big enough).
    fn resize(&mut self, len: usize) {
        if self.storage.len() < len + BLOCK_BYTES {
            self.storage = vec![0u8; len + BLOCK_BYTES];
        }
        self.start = self.storage.as_ptr().align_offset(BLOCK_BYTES);
        assert!(
            self.start < BLOCK_BYTES,
            "a byte pointer can always be aligned"
        );
        self.len = len;
    }

    /// The usable bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Reads each segment of `segments` in order and hands its bytes to `scan`, reading the next one
/// meanwhile. Stops at the first error of either side.
pub fn for_each_segment(
    segments: &[(SegmentHeader, PathBuf)],
    mut scan: impl FnMut(usize, &[u8]) -> WalResult<()>,
) -> WalResult<()> {
    std::thread::scope(|scope| {
        let (full_sender, full_receiver) =
            mpsc::sync_channel::<WalResult<AlignedBuffer>>(READ_AHEAD_SEGMENTS);
        let (free_sender, free_receiver) = mpsc::channel::<AlignedBuffer>();
        for _ in 0..=READ_AHEAD_SEGMENTS {
            free_sender
                .send(AlignedBuffer::new())
                .expect("receiver is alive");
        }
        scope.spawn(move || {
            for (header, path) in segments {
                let Ok(mut buffer) = free_receiver.recv() else {
                    return;
                };
                let read = read_segment(path, *header, &mut buffer).map(|()| buffer);
                let failed = read.is_err();
                if full_sender.send(read).is_err() || failed {
                    return;
                }
            }
        });
        for position in 0..segments.len() {
            let buffer = full_receiver
                .recv()
                .expect("the reader sends one result per segment until an error")?;
            scan(position, buffer.bytes())?;
            // The reader may have stopped after its last segment; a closed channel is fine.
            let _ = free_sender.send(buffer);
        }
        Ok(())
    })
}

fn read_segment(path: &Path, header: SegmentHeader, buffer: &mut AlignedBuffer) -> WalResult<()> {
    let file = open_direct(path)?;
    let length = file
        .metadata()
        .map_err(|e| WalError::io("stat segment", path, e))?
        .len();
    if length != header.segment_bytes {
        return Err(WalError::Corrupt {
            path: path.to_owned(),
            offset: length.min(header.segment_bytes),
            reason: format!(
                "segment file is {length} bytes but its header says {}",
                header.segment_bytes
            ),
        });
    }
    buffer.resize(length as usize);
    let bytes = buffer.bytes_mut();
    let mut filled = 0;
    while filled < bytes.len() {
        let end = (filled + READ_CHUNK_BYTES).min(bytes.len());
        match file.read_at(&mut bytes[filled..end], filled as u64) {
            Ok(0) => {
                return Err(WalError::Corrupt {
                    path: path.to_owned(),
                    offset: filled as u64,
                    reason: "segment ended while being read".into(),
                })
            }
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WalError::io("read segment", path, e)),
        }
    }
    Ok(())
}

/// Opens for O_DIRECT reads, or buffered reads where the filesystem refuses O_DIRECT.
fn open_direct(path: &Path) -> WalResult<File> {
    let direct = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    match direct {
        Ok(file) => Ok(file),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            File::open(path).map_err(|e| WalError::io("open segment", path, e))
        }
        Err(e) => Err(WalError::io("open segment", path, e)),
    }
}
