//! Lookups and ordered scans over a tree whose nodes are committed pages, owned in-memory
//! nodes, or a mix of both (a write transaction reading its own writes).

use std::ops::Bound;

use super::node::{Child, Node, Val};
use super::page::{PageNode, ValRef};
use crate::error::Result;
use crate::pager::{PageKind, View};

/// A node to read: a committed page or an in-memory node.
#[derive(Clone, Copy)]
pub(crate) enum NodeRef<'a> {
    Page(u64),
    Mem(&'a Node),
}

impl<'a> NodeRef<'a> {
    /// The node a branch child points to.
    pub(crate) fn of(child: &'a Child) -> NodeRef<'a> {
        match child {
            Child::Clean(page) => NodeRef::Page(*page),
            Child::Dirty(node) => NodeRef::Mem(node),
        }
    }
}

/// Called for every entry of a scan, in order; returns `false` to stop.
pub(crate) type Visit<'a, 'f> = &'f mut dyn FnMut(&'a [u8], &'a [u8]) -> Result<bool>;

/// Resolves a leaf value found in a page to its bytes (reading the overflow run if needed).
pub(crate) fn resolve<'a>(view: &'a View, val: ValRef<'a>) -> Result<&'a [u8]> {
    match val {
        ValRef::Inline(bytes) => Ok(bytes),
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
    }
}

fn resolve_mem<'a>(view: &'a View, val: &'a Val) -> Result<&'a [u8]> {
    match val {
        Val::Inline(bytes) | Val::Fresh(bytes) => Ok(bytes),
        Val::Overflow { page, len } => resolve(
            view,
            ValRef::Overflow {
                page: *page,
                len: *len,
            },
        ),
    }
}

/// The value stored under `key`, if any.
pub(crate) fn get<'a>(
    view: &'a View,
    root: Option<NodeRef<'a>>,
    key: &[u8],
) -> Result<Option<&'a [u8]>> {
    let mut node = match root {
        Some(node) => node,
        None => return Ok(None),
    };
    let mut depth = 0;
    loop {
        depth += 1;
        if depth > 64 {
            return Err(view.corrupt(0, "tree deeper than 64 levels (cycle?)"));
        }
        match node {
            NodeRef::Page(page) => {
                let p = PageNode::open(view, page)?;
                if p.kind == PageKind::Branch {
                    node = NodeRef::Page(p.child(view, p.child_index(view, key)?)?);
                    continue;
                }
                let i = p.lower_bound(view, key)?;
                if i < p.count && p.key(view, i)? == key {
                    return Ok(Some(resolve(view, p.value(view, i)?)?));
                }
                return Ok(None);
            }
            NodeRef::Mem(Node::Branch(b)) => {
                node = NodeRef::of(&b.children[b.child_index(key)]);
            }
            NodeRef::Mem(Node::Leaf(l)) => {
                return match l.keys.binary_search_by(|k| k.as_slice().cmp(key)) {
                    Ok(i) => Ok(Some(resolve_mem(view, &l.vals[i])?)),
                    Err(_) => Ok(None),
                };
            }
        }
    }
}

/// The entry with the greatest key ≤ `key`, if any: one descent, no callbacks (the MVCC point
/// read "newest revision of k at or below R" is exactly this).
pub(crate) fn seek_le<'a>(
    view: &'a View,
    root: Option<NodeRef<'a>>,
    key: &[u8],
) -> Result<Option<(&'a [u8], &'a [u8])>> {
    let Some(mut node) = root else {
        return Ok(None);
    };
    for _ in 0..64 {
        match node {
            NodeRef::Page(page) => {
                let p = PageNode::open(view, page)?;
                if p.kind == PageKind::Branch {
                    node = NodeRef::Page(p.child(view, p.child_index(view, key)?)?);
                    continue;
                }
                let i = p.upper_bound(view, key)?;
                if i == 0 {
                    break; // the answer may sit in the previous leaf: take the slow path
                }
                return Ok(Some((
                    p.key(view, i - 1)?,
                    resolve(view, p.value(view, i - 1)?)?,
                )));
            }
            NodeRef::Mem(Node::Branch(b)) => node = NodeRef::of(&b.children[b.child_index(key)]),
            NodeRef::Mem(Node::Leaf(l)) => {
                let i = l.keys.partition_point(|k| k.as_slice() <= key);
                if i == 0 {
                    break;
                }
                return Ok(Some((&l.keys[i - 1], resolve_mem(view, &l.vals[i - 1])?)));
            }
        }
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
    match node {
        NodeRef::Page(page) => {
            let p = PageNode::open(view, page)?;
            if p.kind == PageKind::Branch {
                let first = match lower {
                    Bound::Unbounded => 0,
                    Bound::Included(k) | Bound::Excluded(k) => p.child_index(view, k)?,
                };
                let last = match upper {
                    Bound::Unbounded => p.count - 1,
                    Bound::Included(k) | Bound::Excluded(k) => p.child_index(view, k)?,
                };
                for i in ordered(first, last + 1, reverse) {
                    let child = NodeRef::Page(p.child(view, i)?);
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
                let value = resolve(view, p.value(view, i)?)?;
                if !visit(p.key(view, i)?, value)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        NodeRef::Mem(Node::Branch(b)) => {
            let first = match lower {
                Bound::Unbounded => 0,
                Bound::Included(k) | Bound::Excluded(k) => b.child_index(k),
            };
            let last = match upper {
                Bound::Unbounded => b.children.len() - 1,
                Bound::Included(k) | Bound::Excluded(k) => b.child_index(k),
            };
            for i in ordered(first, last + 1, reverse) {
                let child = NodeRef::of(&b.children[i]);
                if !scan_node(view, child, lower, upper, reverse, visit, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        NodeRef::Mem(Node::Leaf(l)) => {
            let position = |k: &[u8], after_equal: bool| {
                l.keys.partition_point(|x| {
                    if after_equal {
                        x.as_slice() <= k
                    } else {
                        x.as_slice() < k
                    }
                })
            };
            let start = match lower {
                Bound::Unbounded => 0,
                Bound::Included(k) => position(k, false),
                Bound::Excluded(k) => position(k, true),
            };
            let end = match upper {
                Bound::Unbounded => l.keys.len(),
                Bound::Included(k) => position(k, true),
                Bound::Excluded(k) => position(k, false),
            };
            for i in ordered(start, end.max(start), reverse) {
                if !visit(&l.keys[i], resolve_mem(view, &l.vals[i])?)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
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
