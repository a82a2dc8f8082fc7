//! The log's tunables, with defaults sized for an SSD host.

use std::rc::Rc;

use crate::error::{WalError, WalResult};
use crate::fault::FaultInjector;
use crate::layout::{record_bytes, BLOCK_BYTES, FIRST_RECORD_OFFSET};

/// How a log is opened.
#[derive(Clone)]
pub struct WalOptions {
    /// Length of every segment file. Larger segments roll less often; each one is pre-written in
    /// full before use.
    pub segment_bytes: u64,
    /// Largest payload of one entry.
    pub record_bytes_limit: usize,
    /// Largest caller metadata (raft's hard state is a few dozen bytes).
    pub metadata_bytes_limit: usize,
    /// Bytes of encoded records that may wait for the next write; appenders beyond it wait.
    pub pending_bytes_limit: usize,
    /// Pre-written spare segments kept ready, so a roll never waits for zero-filling.
    pub spare_segments: usize,
    /// Storage fault injection for tests; `None` in production.
    pub fault_injector: Option<Rc<dyn FaultInjector>>,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes: 64 << 20,
            record_bytes_limit: 16 << 20,
            metadata_bytes_limit: 64 << 10,
            pending_bytes_limit: 32 << 20,
            spare_segments: 2,
            fault_injector: None,
        }
    }
}

impl WalOptions {
    /// Checks that the limits fit together: a largest record, preceded by the segment's opening
    /// metadata record, must fit in an empty segment and in the pending queue.
    pub fn validate(&self) -> WalResult<()> {
        let invalid = |why: String| Err(WalError::InvalidOptions(why));
        if !self.segment_bytes.is_multiple_of(BLOCK_BYTES as u64)
            || self.segment_bytes < 4 * BLOCK_BYTES as u64
        {
            return invalid(format!(
                "segment_bytes {} must be a multiple of {BLOCK_BYTES} and at least {}",
                self.segment_bytes,
                4 * BLOCK_BYTES
            ));
        }
        if self.segment_bytes > u32::MAX as u64 {
            return invalid(format!(
                "segment_bytes {} must be below 4 GiB",
                self.segment_bytes
            ));
        }
        let largest = record_bytes(self.record_bytes_limit) as u64;
        let opening_metadata = record_bytes(8 + self.metadata_bytes_limit) as u64;
        if FIRST_RECORD_OFFSET + opening_metadata + largest > self.segment_bytes {
            return invalid(format!(
                "record_bytes_limit {} and metadata_bytes_limit {} do not fit in a segment of {} bytes",
                self.record_bytes_limit, self.metadata_bytes_limit, self.segment_bytes
            ));
        }
        if (self.pending_bytes_limit as u64) < largest.max(opening_metadata) {
            return invalid(format!(
                "pending_bytes_limit {} is smaller than one largest record",
                self.pending_bytes_limit
            ));
        }
        if self.spare_segments == 0 {
            return invalid("spare_segments must be at least 1".into());
        }
        Ok(())
    }
}
