//! Lookups and ordered scans over a tree whose nodes are committed pages, owned page images,
//! or a mix of both (a write transaction reading its own writes). Both kinds are read through
//! the same [`PageNode`] code; an owned node only adds its owned children and fresh values.

use std::ops::Bound;

use super::node::{Child, Node};
use super::page::{PageNode, ValRef};
use crate::error::Result;
use crate::pager::{PageKind, View};

/// A node to read: a committed page or an owned node.
#[derive(Clone, Copy)]
pub(crate) enum NodeRef<'a> {
    Page(u64),
    Mem(&'a Node),
}

impl<'a> NodeRef<'a> {
    /// The node a top-level child points to.
    pub(crate) fn of(child: &'a Child) -> NodeRef<'a> {
        match child {
            Child::Clean(page) => NodeRef::Page(*page),
            Child::Dirty(node) => NodeRef::Mem(node),
        }
    }
}

/// A node opened for reading.
struct Opened<'a> {
    page: PageNode<'a>,
    owned: Option<&'a Node>,
}

impl<'a> Opened<'a> {
    fn open(view: &'a View, node: NodeRef<'a>) -> Result<Opened<'a>> {
        Ok(match node {
            NodeRef::Page(page) => Opened {
                page: PageNode::open(view, page)?,
                owned: None,
            },
            NodeRef::Mem(node) => Opened {
                page: node.page(),
                owned: Some(node),
            },
        })
    }

    fn is_branch(&self) -> bool {
        self.page.kind == PageKind::Branch
    }

    /// Child `i` of a branch.
    fn child(&self, view: &View, i: usize) -> Result<NodeRef<'a>> {
        if let Some(Some(child)) = self.owned.map(|node| &node.children[i]) {
            return Ok(NodeRef::Mem(child));
        }
        Ok(NodeRef::Page(self.page.child(view, i)?))
    }

    /// The value bytes of leaf entry `i`.
    fn value(&self, view: &'a View, i: usize) -> Result<&'a [u8]> {
        match self.page.value(view, i)? {
            ValRef::Fresh { index } => {
                let node = self.owned.expect("fresh values exist in owned nodes only");
                Ok(&node.fresh[index])
            }
            other => resolve(view, other),
        }
    }
}

/// Called for every entry of a scan, in order; returns `false` to stop.
pub(crate) type Visit<'a, 'f> = &'f mut dyn FnMut(&'a [u8], &'a [u8]) -> Result<bool>;

/// Resolves a leaf value found in a committed page to its bytes (reading and checking its run
/// if it has one).
pub(crate) fn resolve<'a>(view: &'a View, val: ValRef<'a>) -> Result<&'a [u8]> {
    match val {
        ValRef::Inline(bytes) => Ok(bytes),
        ValRef::Run { page, len, crc } => view.value_run(page, len, crc),
        ValRef::Overflow { page, len } => {
            let bytes = view.run(page, PageKind::Overflow)?;
            if bytes.len() != len as usize {
                return Err(view.corrupt(
                    page,
                    format!("overflow run holds {} bytes, leaf says {len}", bytes.len()),
                ));
            }
            Ok(bytes)
        }
        ValRef::Fresh { .. } => Err(view.corrupt(0, "fresh value outside an owned node")),
    }
}

/// The leaf whose key range holds `key` (`None` for an empty tree).
fn leaf_for<'a>(
    view: &'a View,
    root: Option<NodeRef<'a>>,
    key: &[u8],
) -> Result<Option<Opened<'a>>> {
    let Some(mut node) = root else {
        return Ok(None);
    };
    for _ in 0..64 {
        let n = Opened::open(view, node)?;
        if !n.is_branch() {
            return Ok(Some(n));
        }
        node = n.child(view, n.page.child_index(view, key)?)?;
    }
    Err(view.corrupt(0, "tree deeper than 64 levels (cycle?)"))
}

/// The value stored under `key`, if any.
pub(crate) fn get<'a>(
    view: &'a View,
    root: Option<NodeRef<'a>>,
    key: &[u8],
) -> Result<Option<&'a [u8]>> {
    let Some(n) = leaf_for(view, root, key)? else {
        return Ok(None);
    };
    let p = n.page;
    let i = p.lower_bound(view, key)?;
    if i < p.count && p.key(view, i)? == key {
        return Ok(Some(n.value(view, i)?));
    }
    Ok(None)
}

/// The entry with the greatest key ≤ `key`, if any: one descent, no callbacks (the MVCC point
/// read "newest revision of k at or below R" is exactly this).
pub(crate) fn seek_le<'a>(
    view: &'a View,
    root: Option<NodeRef<'a>>,
    key: &[u8],
) -> Result<Option<(&'a [u8], &'a [u8])>> {
    if let Some(n) = leaf_for(view, root, key)? {
        let p = n.page;
        let i = p.upper_bound(view, key)?;
        if i > 0 {
            return Ok(Some((p.key(view, i - 1)?, n.value(view, i - 1)?)));
        }
        // The answer may sit in the previous leaf: take the slow path.
    }
    let mut found = None;
    if let Some(root) = root {
        scan(
            view,
            root,
            Bound::Unbounded,
            Bound::Included(key),
            true,
            &mut |k, v| {
                found = Some((k, v));
                Ok(false)
            },
        )?;
    }
    Ok(found)
}

/// Where the keys from `lower` to `upper` (`None`: no end) part in the tree: descends while
/// both go to the same child; returns how many children of the node where they part lie
/// between them (1 if they never part) and how many branch levels are below those children
/// (0: they are leaves). Two descents' worth of work: a cost estimate before a scan.
pub(crate) fn span(
    view: &View,
    root: Option<NodeRef<'_>>,
    lower: &[u8],
    upper: Option<&[u8]>,
) -> Result<(usize, usize)> {
    let Some(mut node) = root else {
        return Ok((0, 0));
    };
    for _ in 0..64 {
        let n = Opened::open(view, node)?;
        if !n.is_branch() {
            return Ok((1, 0));
        }
        let p = n.page;
        let first = p.child_index(view, lower)?;
        let last = match upper {
            Some(upper) => p.child_index(view, upper)?,
            None => p.count - 1,
        };
        if first >= last {
            node = n.child(view, first)?;
            continue;
        }
        // The height below: follow the first child down to a leaf.
        let mut below = 0;
        let mut probe = n.child(view, first)?;
        loop {
            let c = Opened::open(view, probe)?;
            if !c.is_branch() {
                return Ok((last - first + 1, below));
            }
            below += 1;
            if below > 64 {
                break;
            }
            probe = c.child(view, 0)?;
        }
        break;
    }
    Err(view.corrupt(0, "tree deeper than 64 levels (cycle?)"))
}

/// Visits every entry with `lower ≤ key < upper` (per the bounds) in key order, or in reverse.
/// Returns `false` if the visitor stopped the scan.
pub(crate) fn scan<'a>(
    view: &'a View,
    node: NodeRef<'a>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
    visit: Visit<'a, '_>,
) -> Result<bool> {
    scan_node(view, node, lower, upper, reverse, visit, 0)
}

fn scan_node<'a>(
    view: &'a View,
    node: NodeRef<'a>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
    visit: Visit<'a, '_>,
    depth: usize,
) -> Result<bool> {
    if depth > 64 {
        return Err(view.corrupt(0, "tree deeper than 64 levels (cycle?)"));
    }
    let n = Opened::open(view, node)?;
    let p = n.page;
    if n.is_branch() {
        let first = match lower {
            Bound::Unbounded => 0,
            Bound::Included(k) | Bound::Excluded(k) => p.child_index(view, k)?,
        };
        let last = match upper {
            Bound::Unbounded => p.count - 1,
            Bound::Included(k) | Bound::Excluded(k) => p.child_index(view, k)?,
        };
        for i in ordered(first, last + 1, reverse) {
            let child = n.child(view, i)?;
            if !scan_node(view, child, lower, upper, reverse, visit, depth + 1)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let start = match lower {
        Bound::Unbounded => 0,
        Bound::Included(k) => p.lower_bound(view, k)?,
        Bound::Excluded(k) => p.upper_bound(view, k)?,
    };
    let end = match upper {
        Bound::Unbounded => p.count,
        Bound::Included(k) => p.upper_bound(view, k)?,
        Bound::Excluded(k) => p.lower_bound(view, k)?,
    };
    for i in ordered(start, end.max(start), reverse) {
        let value = n.value(view, i)?;
        if !visit(p.key(view, i)?, value)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Indices `start..end`, forwards or backwards (no allocation: scans run per read).
fn ordered(start: usize, end: usize, reverse: bool) -> impl Iterator<Item = usize> {
    let n = end.saturating_sub(start);
    (0..n).map(move |step| {
        if reverse {
            end - 1 - step
        } else {
            start + step
        }
    })
}
