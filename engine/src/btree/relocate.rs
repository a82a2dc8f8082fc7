//! Relocation for online defragmentation: find keys whose root-to-leaf path touches a page at
//! or past a threshold (read-only, on a snapshot), then copy those paths in a write
//! transaction. Copy-on-write does the moving: every copied node, and every large value put
//! again, gets a new page at commit, and the allocator hands out the lowest free pages. A value
//! put again is written as a headerless value run, so defragmentation also rewrites legacy
//! (format 2) overflow runs it moves into the current layout.

use super::node::Child;
use super::page::PageNode;
use super::read::resolve;
use super::write::{insert, Cow, NewValue};
use crate::error::Result;
use crate::pager::{PageKind, View};

/// Appends to `out` (up to `limit` keys in all) one key per leaf whose path from `root`
/// touches a page ≥ `threshold` (node or overflow run); returns whether this subtree had one.
pub(crate) fn keys_above(
    view: &View,
    root: u64,
    threshold: u64,
    limit: usize,
    out: &mut Vec<Vec<u8>>,
) -> Result<bool> {
    if out.len() >= limit {
        return Ok(false);
    }
    let node = PageNode::open(view, root)?;
    if node.count == 0 {
        return Ok(false);
    }
    if node.kind == PageKind::Leaf {
        let mut high = root >= threshold;
        for i in 0..node.count {
            if let Some((page, pages)) = node.value(view, i)?.run_pages() {
                high |= page + pages > threshold;
            }
        }
        if high {
            out.push(node.key(view, 0)?.to_vec());
        }
        return Ok(high);
    }
    let mut found = false;
    for i in 0..node.count {
        found |= keys_above(view, node.child(view, i)?, threshold, limit, out)?;
    }
    if root >= threshold && !found && out.len() < limit {
        // Only this branch is high: any key under it moves it.
        out.push(leftmost_key(view, node.child(view, 0)?)?);
        found = true;
    }
    Ok(found)
}

fn leftmost_key(view: &View, mut page: u64) -> Result<Vec<u8>> {
    for _ in 0..64 {
        let node = PageNode::open(view, page)?;
        if node.kind == PageKind::Leaf {
            return Ok(node.key(view, 0)?.to_vec());
        }
        page = node.child(view, 0)?;
    }
    Err(view.corrupt(page, "tree deeper than 64 levels"))
}

/// Copies every node on the path to `key` (they get new pages at commit) and puts again each
/// large value of the leaf whose run reaches `threshold` (rewritten at commit; the old run is
/// freed by the put). A put rather than an in-place edit: a legacy overflow reference is
/// smaller than the value run reference that replaces it, so the leaf may have to split.
pub(crate) fn relocate_path(
    cx: &mut Cow,
    root: &mut Option<Child>,
    key: &[u8],
    threshold: u64,
) -> Result<()> {
    let Some(child) = root.as_mut() else {
        return Ok(());
    };
    let mut node = cx.own(child)?;
    while node.kind == PageKind::Branch {
        let i = node.page().child_index(cx.view, key)?;
        node = cx.own_child(node, i)?;
    }
    let mut high = Vec::new();
    for i in 0..node.count() {
        let value = node.page().value(cx.view, i)?;
        if let Some((page, pages)) = value.run_pages() {
            if page + pages > threshold {
                let view: &View = cx.view;
                let key = node.page().key(view, i)?.to_vec();
                high.push((key, resolve(view, value)?.to_vec()));
            }
        }
    }
    for (key, value) in high {
        let replaced = insert(cx, root, &key, NewValue::Bytes(&value))?;
        assert_eq!(replaced, Some(true), "a relocated value replaces itself");
    }
    Ok(())
}
