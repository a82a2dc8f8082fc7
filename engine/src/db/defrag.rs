//! Online defragmentation: shrink the file to about the pages the tree needs, while readers and
//! the writer carry on.
//!
//! The allocator always hands out the lowest free page, so moving the tail is only a matter of
//! copying what lives there. Each pass walks a read snapshot (no lock held) for one key per leaf
//! whose path touches a page past the live-page count; then, step by step, one short write
//! transaction copies a bounded number of those paths (copy-on-write puts them in the lowest
//! free pages) and commits, and a sync makes the pages they left reusable once readers move on. When nothing lives past the threshold
//! any more, an empty commit trims the free tail off the page count, a sync makes that durable,
//! and the file is cut to it. Readers never wait; the writer waits for one step at a time.

use super::{Db, Durability, Table, Tables};
use crate::btree::relocate::keys_above;
use crate::error::Result;
use crate::pager::PAGE_SIZE;

/// What a defragmentation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragReport {
    /// File length before, in bytes.
    pub bytes_before: u64,
    /// File length after, in bytes.
    pub bytes_after: u64,
    /// Write transactions it committed.
    pub steps: u64,
}

/// Passes without fewer paths to move before giving up.
const STALLED_PASSES_MAX: u32 = 3;

impl Db {
    /// Moves the tree's pages toward the start of the file and cuts the file, copying up to
    /// `keys_per_step` paths per write transaction.
    pub(crate) fn defragment(&self, keys_per_step: usize) -> Result<DefragReport> {
        let bytes_before = self.shared.file.len()?;
        let mut steps = 0;
        let mut stalled = 0;
        let mut previous = usize::MAX;
        loop {
            let threshold = {
                let txn = self.begin_write()?;
                let (free, pending) = txn.free_pages();
                let live = txn.page_count() - (free + pending) as u64;
                // Slack for the copies in flight and the commit record.
                live + (live / 64).max(16)
            };
            // One key per leaf to move (bounded by the number of leaves), from a snapshot.
            let read = self.begin_read();
            let mut moves: Vec<(Table, Vec<u8>)> = Vec::new();
            for table in Table::ALL {
                if let Some(root) = read.root_page(table) {
                    let mut keys = Vec::new();
                    keys_above(read.view(), root, threshold, usize::MAX, &mut keys)?;
                    moves.extend(keys.into_iter().map(|k| (table, k)));
                }
            }
            drop(read);
            if moves.is_empty() {
                break;
            }
            // Each pass must leave fewer paths to move; if the free space below the threshold
            // is too fragmented for that, stop (the file still shrinks as far as it got).
            stalled = if moves.len() < previous {
                0
            } else {
                stalled + 1
            };
            previous = moves.len();
            if stalled >= STALLED_PASSES_MAX {
                break;
            }
            for step in moves.chunks(keys_per_step) {
                let mut txn = self.begin_write()?;
                for (table, key) in step {
                    txn.relocate(*table, key, threshold)?;
                }
                txn.commit(Durability::Unsynced)?;
                // The pages this step left become reusable for the next one (after readers).
                self.sync()?;
                steps += 2;
            }
        }
        // Pages left behind became free at the sync; an empty commit drops the free tail from
        // the page count, the sync makes that count durable, and then the file can be cut.
        self.begin_write()?.commit(Durability::Unsynced)?;
        self.sync()?;
        steps += 2;
        self.shrink_file()?;
        Ok(DefragReport {
            bytes_before,
            bytes_after: self.shared.file.len()?,
            steps,
        })
    }

    /// Makes every published commit durable (pages first, then meta); nothing if it is.
    pub(crate) fn sync(&self) -> Result<()> {
        self.settle()?;
        self.flush_unlocked()?;
        let txn = self.begin_write()?;
        if !txn.is_durable() {
            txn.commit(Durability::PagesFirst)?;
        }
        Ok(())
    }

    /// Cuts the file to the larger of the published and the durable page counts: every page
    /// past both is free, so neither a reader nor a crash can reach it.
    fn shrink_file(&self) -> Result<()> {
        let writer = self.shared.writer.lock().expect("writer lock");
        let durable = writer.durable.page_count;
        let published = self
            .shared
            .published
            .lock()
            .expect("published state lock")
            .meta;
        let used = published.page_count.max(durable) * PAGE_SIZE as u64;
        // Holding the writer: no commit can claim pages past `used` meanwhile.
        let result = self.shared.grower.tail().cut(&self.shared.file, used);
        drop(writer);
        result
    }
}
