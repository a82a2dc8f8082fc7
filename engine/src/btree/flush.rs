//! Commit-time flush: every owned node (children first) gets a fresh page, every fresh large
//! value its headerless value run. Owned nodes already are page images; flushing fills in child
//! page ids and value run references (page and checksum), seals the checksum and hands the
//! image over without copying it.

use super::node::{Child, Node};
use super::page::ValRef;
use crate::pager::{build_value_run, seal, value_run_pages, PageKind, View, PAGE_SIZE};

/// One page or run to write.
pub(crate) struct PageWrite {
    /// First page id.
    pub(crate) page: u64,
    /// Bytes of one page or a whole run (a multiple of the page size).
    pub(crate) bytes: Vec<u8>,
    /// Its checksum (in its header, or for a value run, in the leaf pointing at it).
    pub(crate) crc: u32,
    /// A headerless value run: nothing in its bytes says what it is or how long it is.
    pub(crate) value_run: bool,
}

impl PageWrite {
    /// A sealed page or headed run: its checksum is in its header.
    pub(crate) fn sealed(page: u64, bytes: Vec<u8>) -> PageWrite {
        let crc = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
        PageWrite {
            page,
            bytes,
            crc,
            value_run: false,
        }
    }

    /// Pages it covers.
    pub(crate) fn pages(&self) -> u64 {
        debug_assert!(self.bytes.len().is_multiple_of(PAGE_SIZE));
        (self.bytes.len() / PAGE_SIZE) as u64
    }
}

/// Encoded pages to write.
pub(crate) type PageWrites = Vec<PageWrite>;

/// At least as many pages as `flush` would allocate for the subtree under `child`: one per
/// owned node and a run per fresh large value (a value replaced again in the same transaction
/// is counted though never written).
pub(crate) fn pages_to_flush(child: &Child) -> u64 {
    match child {
        Child::Clean(_) => 0,
        Child::Dirty(node) => node_pages_to_flush(node),
    }
}

fn node_pages_to_flush(node: &Node) -> u64 {
    let values: u64 = node
        .fresh
        .iter()
        .map(|value| value_run_pages(value.len()))
        .sum();
    let children: u64 = node
        .children
        .iter()
        .flatten()
        .map(|child| node_pages_to_flush(child))
        .sum();
    1 + values + children
}

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
                    let value = std::mem::take(&mut node.fresh[index]);
                    let page = alloc(value_run_pages(value.len()));
                    let (bytes, crc) = build_value_run(page, &value);
                    out.push(PageWrite {
                        page,
                        bytes,
                        crc,
                        value_run: true,
                    });
                    node.set_value_run(i, page, crc);
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
    out.push(PageWrite::sealed(page, image));
    page
}
