//! A segment of the open log: its identity, its file, and where its entries lie.

use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::DmaFile;

use crate::recovery::EntryLocation;

/// A segment the open log holds (the last one is the tail that appends go to).
pub struct Segment {
    pub seq: u64,
    pub first_index: u64,
    pub segment_bytes: u64,
    pub path: PathBuf,
    pub file: Rc<DmaFile>,
    /// Entry `first_index + i` is `entries[i]`.
    pub entries: Vec<EntryLocation>,
    /// Where the next record goes.
    pub end_offset: u64,
}

impl Segment {
    /// Index the entry after this segment's last one gets.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.entries.len() as u64
    }

    /// Whether `index` is one of this segment's entries.
    pub fn holds(&self, index: u64) -> bool {
        index >= self.first_index && index < self.next_index()
    }
}

/// File name of the segment with sequence number `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:016x}{}", crate::recovery::SEGMENT_SUFFIX)
}
