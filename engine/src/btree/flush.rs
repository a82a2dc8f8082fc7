//! Commit-time flush: every owned node (children first) gets a fresh page, every fresh large
//! value its overflow run. Owned nodes already are page images; flushing fills in child page
//! ids and overflow pages, seals the checksum and hands the image over without copying it.

use super::node::{Child, Node};
use super::page::ValRef;
use crate::pager::{build_run, run_pages, seal, PageKind, View};

/// Encoded pages to write, as (first page id, bytes of one page or a whole run).
pub(crate) type PageWrites = Vec<(u64, Vec<u8>)>;

/// Encodes the subtree under `child`, allocating pages with `alloc(n)` (n contiguous pages);
/// returns the page id of its root.
pub(crate) fn flush(
    view: &View,
    child: Child,
    alloc: &mut dyn FnMut(u64) -> u64,
    out: &mut PageWrites,
) -> u64 {
    match child {
        Child::Clean(page) => page,
        Child::Dirty(node) => flush_node(view, *node, alloc, out),
    }
}

fn flush_node(
    view: &View,
    mut node: Node,
    alloc: &mut dyn FnMut(u64) -> u64,
    out: &mut PageWrites,
) -> u64 {
    match node.kind {
        PageKind::Leaf if !node.fresh.is_empty() => {
            for i in 0..node.count() {
                let value = node
                    .page()
                    .value(view, i)
                    .expect("owned images are well formed");
                if let ValRef::Fresh { index } = value {
                    let bytes = std::mem::take(&mut node.fresh[index]);
                    let page = alloc(run_pages(bytes.len()));
                    out.push((page, build_run(page, PageKind::Overflow, &bytes)));
                    node.set_overflow_page(i, page);
                }
            }
        }
        PageKind::Branch => {
            let children = std::mem::take(&mut node.children);
            for (i, child) in children.into_iter().enumerate() {
                if let Some(child) = child {
                    let page = flush_node(view, *child, alloc, out);
                    node.set_child_page(i, page);
                }
            }
        }
        _ => {}
    }
    let page = alloc(1);
    let mut image = node.image.into_vec();
    seal(page, &mut image);
    out.push((page, image));
    page
}
