//! Whole-file consistency check: every page is reachable exactly once, or free, or pending —
//! nothing leaked, nothing shared — and no page the allocator may hand out is reachable from
//! the durable meta (what a crash would return to). What `etcdutl check`-style tools and the
//! tests call.

use super::Shared;
use crate::btree::page::PageNode;
use crate::btree::read::resolve;
use crate::error::{Error, Result};
use crate::pager::meta::Meta;
use crate::pager::{run_pages, PageKind, View};

/// Page accounting of the newest commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Pages in the file's used area (meta pages included).
    pub pages_total: u64,
    /// Pages reachable from the meta (tree nodes, value runs, the free-list run).
    pub pages_reachable: u64,
    /// Pages free for reuse now.
    pub pages_free: u64,
    /// Pages freed by recent commits, waiting for readers or for a sync.
    pub pages_pending: u64,
    /// Key-value entries in all tables.
    pub entries: u64,
}

struct Walk<'a> {
    view: &'a View,
    owner: Vec<u8>,
    report: CheckReport,
}

impl<'a> Walk<'a> {
    fn claim(&mut self, page: u64, pages: u64, what: &str) -> Result<()> {
        for p in page..page + pages {
            let slot = self
                .owner
                .get_mut(p as usize)
                .ok_or_else(|| self.view.corrupt(p, format!("{what} page past the end")))?;
            if *slot != 0 {
                return Err(self
                    .view
                    .corrupt(p, format!("{what} page is also used elsewhere")));
            }
            *slot = 1;
        }
        Ok(())
    }

    /// Walks the subtree at `page`, whose keys must lie in `[lower, upper)` (the separators
    /// its parents route by; `None`: unbounded). A key outside is one a search cannot find.
    fn node(
        &mut self,
        page: u64,
        depth: usize,
        lower: Option<&'a [u8]>,
        upper: Option<&'a [u8]>,
    ) -> Result<()> {
        if depth > 64 {
            return Err(self.view.corrupt(page, "tree deeper than 64 levels"));
        }
        self.claim(page, 1, "node")?;
        self.report.pages_reachable += 1;
        let node = PageNode::open(self.view, page)?;
        let mut previous: Option<&[u8]> = None;
        let mut used = 0;
        for i in 0..node.count {
            used += node.entry_bytes(self.view, i)?;
            let key = node.key(self.view, i)?;
            if previous.is_some_and(|p| p >= key) {
                return Err(self
                    .view
                    .corrupt(page, format!("keys out of order at entry {i}")));
            }
            previous = Some(key);
            // A branch's first key counts as −∞: its child starts at the parent's bound.
            let routed = node.kind == PageKind::Leaf || i > 0;
            if routed && (lower.is_some_and(|l| key < l) || upper.is_some_and(|u| key >= u)) {
                return Err(self.view.corrupt(
                    page,
                    format!("entry {i} lies outside the key range its parent routes here"),
                ));
            }
            if node.kind == PageKind::Branch {
                let child_lower = if i == 0 { lower } else { Some(key) };
                let child_upper = if i + 1 < node.count {
                    Some(node.key(self.view, i + 1)?)
                } else {
                    upper
                };
                self.node(
                    node.child(self.view, i)?,
                    depth + 1,
                    child_lower,
                    child_upper,
                )?;
            } else {
                self.report.entries += 1;
                let value = node.value(self.view, i)?;
                if let Some((run, pages)) = value.run_pages() {
                    // Reads the run: checks its checksum and (legacy runs) its length.
                    resolve(self.view, value)?;
                    self.claim(run, pages, "value run")?;
                    self.report.pages_reachable += pages;
                }
            }
        }
        if used != node.used_bytes() {
            let header = node.used_bytes();
            return Err(self.view.corrupt(
                page,
                format!("entries use {used} bytes, the header says {header}"),
            ));
        }
        Ok(())
    }
}

/// Walks the tree and record run of `meta`, claiming every page in `walk`.
fn walk_commit(walk: &mut Walk, meta: &Meta) -> Result<()> {
    walk.owner[0] = 1;
    walk.owner[1] = 1;
    for &root in &meta.roots {
        if root != 0 {
            walk.node(root, 0, None, None)?;
        }
    }
    if meta.freelist_page != 0 {
        let len = walk.view.run(meta.freelist_page, PageKind::FreeList)?.len();
        walk.claim(meta.freelist_page, run_pages(len), "free-list")?;
        walk.report.pages_reachable += run_pages(len);
    }
    Ok(())
}

/// Walks the newest commit and the allocator; errors on any shared or leaked page, or on a
/// reusable page the durable meta can reach.
pub(crate) fn check(shared: &Shared) -> Result<CheckReport> {
    let writer = shared.writer.lock().expect("writer lock");
    // A deferred transaction is part of the newest commit: check it published.
    let writer = super::WriteTxn::publish_deferred(shared, writer)?;
    let (meta, mapping) = {
        let published = shared.published.lock().expect("published state lock");
        (published.meta, published.mapping.clone())
    };
    let view = View {
        mapping,
        page_count: meta.page_count,
        path: shared.file.path.clone(),
    };
    let mut walk = Walk {
        view: &view,
        owner: vec![0; meta.page_count as usize],
        report: CheckReport {
            pages_total: meta.page_count,
            ..CheckReport::default()
        },
    };
    walk_commit(&mut walk, &meta)?;
    let (free, pending, held) = writer.freelist.pages();
    for &page in &free {
        walk.claim(page, 1, "free")?;
        walk.report.pages_free += 1;
    }
    for &page in pending.iter().chain(&held) {
        // A pending or held page is still reachable from an older snapshot or from the
        // durable meta, never from this one.
        walk.claim(page, 1, "pending")?;
        walk.report.pages_pending += 1;
    }
    if let Some(leaked) = walk.owner.iter().position(|&o| o == 0) {
        return Err(Error::Corrupt {
            path: view.path.to_path_buf(),
            page: leaked as u64,
            reason: "page is neither reachable nor free (leaked)".into(),
        });
    }
    let report = walk.report;
    if writer.durable.txn_id != meta.txn_id {
        // The crash-safety invariant: whatever the allocator may hand out (free now, or after
        // readers finish) must not be part of the state a crash returns to.
        let durable = writer.durable;
        let view = View {
            page_count: durable.page_count,
            ..view
        };
        let mut walk = Walk {
            view: &view,
            owner: vec![0; durable.page_count as usize],
            report: CheckReport::default(),
        };
        walk_commit(&mut walk, &durable)?;
        for page in free.into_iter().chain(pending) {
            if walk.owner.get(page as usize) == Some(&1) {
                return Err(view.corrupt(
                    page,
                    "page is reusable but the durable meta still reaches it",
                ));
            }
        }
    }
    Ok(report)
}
