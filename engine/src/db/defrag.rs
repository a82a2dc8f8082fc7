//! Online defragmentation: shrink the file to about the pages the tree needs, while readers and
//! the writer carry on.
//!
//! The allocator always hands out the lowest free page, so moving the tail is only a matter of
//! copying what lives there. Each step: walk a read snapshot (no lock held) for keys whose
//! path touches a page past the live-page count; then, in one short write transaction, copy
//! those paths (copy-on-write puts them in the lowest free pages) and commit; then sync, so the
//! pages they left become reusable once readers move on. When nothing lives past the threshold
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

/// Steps without fewer paths to move before giving up (the free space below the threshold is
/// then too fragmented for the copies; the file still shrank as far as it could).
const STALLED_STEPS_MAX: u32 = 3;

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
            let read = self.begin_read();
            let mut moves: Vec<(Table, Vec<u8>)> = Vec::new();
            let mut found = 0;
            for table in Table::ALL {
                if let Some(root) = read.root_page(table) {
                    let mut keys = Vec::new();
                    keys_above(read.view(), root, threshold, keys_per_step, &mut keys)?;
                    found += keys.len();
                    moves.extend(keys.into_iter().map(|k| (table, k)));
                }
            }
            drop(read);
            if moves.is_empty() {
                break;
            }
            stalled = if found < previous { 0 } else { stalled + 1 };
            previous = found;
            if stalled >= STALLED_STEPS_MAX {
                break;
            }
            let mut txn = self.begin_write()?;
            for (table, key) in moves.iter().take(keys_per_step) {
                txn.relocate(*table, key, threshold)?;
            }
            txn.commit(Durability::Unsynced)?;
            self.sync()?;
            steps += 2;
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
        let txn = self.begin_write()?;
        if !txn.is_durable() {
            txn.commit(Durability::PagesFirst)?;
        }
        Ok(())
    }

    /// Cuts the file to the larger of the published and the durable page counts: every page
    /// past both is free, so neither a reader nor a crash can reach it.
    fn shrink_file(&self) -> Result<()> {
        let mut writer = self.shared.writer.lock().expect("writer lock");
        let published = self
            .shared
            .published
            .lock()
            .expect("published state lock")
            .meta;
        let used = published.page_count.max(writer.durable.page_count) * PAGE_SIZE as u64;
        if writer.file_len > used {
            self.shared.file.set_len(used)?;
            writer.file_len = used;
        }
        Ok(())
    }
}
