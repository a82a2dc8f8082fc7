//! The page allocator: pages free now, and pages freed by recent commits that a reader — or
//! the durable meta — may still see.
//!
//! A page freed by commit `t` was part of snapshot `t - 1`; it becomes reusable once no reader
//! holds a snapshot older than `t`. Commits may also be published without fsync (unsynced); the
//! meta on disk then still names an older commit `D`, and a crash returns to `D`. So a page `D`
//! can reach must never be rewritten until a newer meta is durable: pages freed after `D` that
//! were born at or before `D` are *held* until a sync, then gated by readers like any other.
//! Pages born after `D` (*fresh*) are invisible to every meta on disk, so only readers gate them.
//!
//! The whole set (free + pending + held) is written with every durable commit as a run-length
//! list in its own page run, referenced from the meta page, together with the (page, checksum)
//! of every fresh page still in use. After a restart no reader exists, so every pending page is
//! free: nothing leaks across a crash.
//!
//! Cost: the list is rewritten at each commit, so its size (number of free runs × 12 bytes) is
//! paid per commit. Allocation prefers the lowest free page, which keeps runs few and the file
//! dense; a free-list B+tree is the known next step if this shows up in profiles.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Free and pending-free pages, owned by the single writer.
#[derive(Default, Debug)]
pub(crate) struct FreeList {
    /// Pages no snapshot and no durable meta can see: reusable now.
    free: BTreeSet<u64>,
    /// Pages freed by commit `t` (key), reusable once every reader's snapshot is ≥ `t`.
    pending: BTreeMap<u64, Vec<u64>>,
    /// Pages the durable meta reaches, freed by unsynced commit `t` (key): they move to
    /// `pending` when a sync makes a meta ≥ `t` durable.
    held: BTreeMap<u64, Vec<u64>>,
    /// Every page allocated since the durable meta (all pages of a run).
    fresh: HashSet<u64>,
    /// First page → (checksum, value run pages or 0) of every page or run written since the
    /// durable meta and still in use: what the next durable commit record lists for open to
    /// verify.
    written: BTreeMap<u64, (u32, u32)>,
}

impl FreeList {
    /// A free list where every page of `pages` is free.
    pub(crate) fn from_free(pages: impl IntoIterator<Item = u64>) -> FreeList {
        FreeList {
            free: pages.into_iter().collect(),
            ..FreeList::default()
        }
    }

    /// Makes reusable the pages freed by every commit `t <= oldest_snapshot`: they were last
    /// visible in snapshot `t - 1`, and no live reader holds a snapshot that old.
    pub(crate) fn release(&mut self, oldest_snapshot: u64) {
        let keep = self.pending.split_off(&(oldest_snapshot + 1));
        for pages in std::mem::replace(&mut self.pending, keep).into_values() {
            for page in pages {
                let fresh = self.free.insert(page);
                assert!(fresh, "page {page} freed twice");
            }
        }
    }

    /// Records a page or run (`pages` long, checksum `crc`) written by the commit being built;
    /// `value_run`: a headerless value run, whose length the commit record must carry.
    pub(crate) fn add_written(&mut self, page: u64, pages: u64, crc: u32, value_run: bool) {
        for p in page..page + pages {
            let fresh = self.fresh.insert(p);
            assert!(fresh, "page {p} written twice since the last sync");
        }
        let run_pages = if value_run {
            u32::try_from(pages).expect("a value run is at most RUN_BYTES_MAX")
        } else {
            0
        };
        self.written.insert(page, (crc, run_pages));
    }

    /// Records pages freed by commit `txn_id`: fresh ones wait only for readers, the others
    /// also for a sync (the durable meta may reach them).
    pub(crate) fn add_freed(&mut self, txn_id: u64, pages: Vec<u64>) {
        for page in pages {
            if self.fresh.remove(&page) {
                // A no-op for the inner pages of a run; the first page carries the entry.
                self.written.remove(&page);
                self.pending.entry(txn_id).or_default().push(page);
            } else {
                self.held.entry(txn_id).or_default().push(page);
            }
        }
    }

    /// The newest commit just became durable: nothing is fresh any more, and every held page
    /// is unreachable from the durable meta (only readers may still see it).
    pub(crate) fn made_durable(&mut self) {
        self.fresh.clear();
        self.written.clear();
        for (txn_id, pages) in std::mem::take(&mut self.held) {
            self.pending.entry(txn_id).or_default().extend(pages);
        }
    }

    /// Every page or run written since the durable meta and in use.
    pub(crate) fn written_since_durable(&self) -> Vec<Written> {
        self.written
            .iter()
            .map(|(&page, &(crc, value_run_pages))| Written {
                page,
                crc,
                value_run_pages,
            })
            .collect()
    }

    /// Takes the lowest free page, if any.
    pub(crate) fn take_one(&mut self) -> Option<u64> {
        self.free.pop_first()
    }

    /// Takes `n` contiguous free pages (lowest first), if such a run exists.
    pub(crate) fn take_run(&mut self, n: u64) -> Option<u64> {
        if n == 1 {
            return self.take_one();
        }
        let mut run_start = None;
        let mut run_len = 0u64;
        let mut prev = None;
        for &page in &self.free {
            if prev.map(|p: u64| p + 1) == Some(page) {
                run_len += 1;
            } else {
                run_start = Some(page);
                run_len = 1;
            }
            prev = Some(page);
            if run_len == n {
                break;
            }
        }
        if run_len < n {
            return None;
        }
        let start = run_start.expect("run has a start");
        for page in start..start + n {
            self.free.remove(&page);
        }
        Some(start)
    }

    /// Gives back pages that were taken but not used after all (an aborted commit).
    pub(crate) fn give_back(&mut self, pages: impl IntoIterator<Item = u64>) {
        self.free.extend(pages);
    }

    /// Drops free pages at the end of the file: returns the new page count.
    pub(crate) fn trim_tail(&mut self, mut page_count: u64) -> u64 {
        while page_count > 2 && self.free.last() == Some(&(page_count - 1)) {
            self.free.pop_last();
            page_count -= 1;
        }
        page_count
    }

    /// Every page not reachable from the newest snapshot, as sorted (start, len) runs: what a
    /// restarted process may reuse once this snapshot's meta is the durable one.
    pub(crate) fn durable_runs(&self) -> Vec<(u64, u32)> {
        let mut all: Vec<u64> = self.free.iter().copied().collect();
        all.extend(self.pending.values().flatten().copied());
        all.extend(self.held.values().flatten().copied());
        all.sort_unstable();
        let mut runs: Vec<(u64, u32)> = Vec::new();
        for page in all {
            match runs.last_mut() {
                Some((start, len)) if *start + *len as u64 == page && *len < u32::MAX => *len += 1,
                Some((start, len)) => {
                    assert!(
                        *start + *len as u64 <= page,
                        "page {page} listed free twice"
                    );
                    runs.push((page, 1));
                }
                None => runs.push((page, 1)),
            }
        }
        runs
    }

    /// Every free, pending and held page (for the consistency check).
    pub(crate) fn pages(&self) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        let free = self.free.iter().copied().collect();
        let pending = self.pending.values().flatten().copied().collect();
        let held = self.held.values().flatten().copied().collect();
        (free, pending, held)
    }

    /// Number of pages free now (for tests and stats).
    pub(crate) fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Number of pages waiting for readers to finish or for a sync.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.values().map(Vec::len).sum::<usize>()
            + self.held.values().map(Vec::len).sum::<usize>()
    }
}

/// One page (or run) written by a commit, with the checksum it must have on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) page: u64,
    pub(crate) crc: u32,
    /// Pages of a headerless value run (nothing on disk says how long it is); 0 for a page or
    /// a headed run, which describe themselves.
    pub(crate) value_run_pages: u32,
}

/// Serialises a commit record: the free runs, the pages this commit wrote, then the lengths of
/// those that are headerless value runs:
/// `runs u64, (start u64, len u32)*, written u64, (page u64, crc u32)*,
///  value_runs u64, (page u64, pages u32)*`.
/// The last section is new in format 3. A format 2 record ends after the written pages, and the
/// run holding it is zero-padded, so reading it finds no value runs (count 0, or no bytes).
pub(crate) fn encode_commit_record(runs: &[(u64, u32)], written: &[Written]) -> Vec<u8> {
    let value_runs: Vec<&Written> = written.iter().filter(|w| w.value_run_pages > 0).collect();
    let mut out = Vec::with_capacity(24 + (runs.len() + written.len() + value_runs.len()) * 12);
    out.extend_from_slice(&(runs.len() as u64).to_le_bytes());
    for (start, len) in runs {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&(written.len() as u64).to_le_bytes());
    for w in written {
        out.extend_from_slice(&w.page.to_le_bytes());
        out.extend_from_slice(&w.crc.to_le_bytes());
    }
    out.extend_from_slice(&(value_runs.len() as u64).to_le_bytes());
    for w in value_runs {
        out.extend_from_slice(&w.page.to_le_bytes());
        out.extend_from_slice(&w.value_run_pages.to_le_bytes());
    }
    out
}

/// Parses what `encode_commit_record` wrote into (free pages, written pages).
pub(crate) fn decode_commit_record(
    bytes: &[u8],
    page_count: u64,
) -> Result<(Vec<u64>, Vec<Written>), String> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let slice = bytes.get(at..at + n).ok_or_else(|| {
            format!(
                "commit record ends at byte {} (needs {})",
                bytes.len(),
                at + n
            )
        })?;
        at += n;
        Ok(slice)
    };
    let u64_of = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    let u32_of = |b: &[u8]| u32::from_le_bytes(b[8..12].try_into().unwrap());
    let runs = u64_of(take(8)?);
    let mut free = Vec::new();
    for _ in 0..runs {
        let entry = take(12)?;
        let (start, len) = (u64_of(entry), u32_of(entry) as u64);
        if start < 2 || start.saturating_add(len) > page_count {
            return Err(format!("free run {start}+{len} outside 2..{page_count}"));
        }
        free.extend(start..start + len);
    }
    let count = u64_of(take(8)?);
    let mut written = Vec::new();
    for _ in 0..count {
        let entry = take(12)?;
        let page = u64_of(entry);
        if page < 2 || page >= page_count {
            return Err(format!("written page {page} outside 2..{page_count}"));
        }
        written.push(Written {
            page,
            crc: u32_of(entry),
            value_run_pages: 0,
        });
    }
    // A format 2 record may fill its run exactly: no bytes left means no value runs.
    let value_runs = take(8).map_or(0, u64_of);
    for _ in 0..value_runs {
        let entry = take(12)?;
        let (page, pages) = (u64_of(entry), u32_of(entry));
        let listed = written
            .binary_search_by_key(&page, |w| w.page)
            .map_err(|_| format!("value run {page} is not among the written pages"))?;
        if pages == 0 || page.saturating_add(u64::from(pages)) > page_count {
            return Err(format!("value run {page}+{pages} outside 2..{page_count}"));
        }
        written[listed].value_run_pages = pages;
    }
    Ok((free, written))
}
