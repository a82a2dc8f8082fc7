//! Commit-time encoding: every owned node (children first) gets a fresh page, every fresh large
//! value its overflow run.

use super::node::{Child, Node, Val};
use super::page::{encode_branch, encode_leaf};
use crate::pager::{build_run, run_pages, PageKind};

/// Encoded pages to write, as (first page id, bytes of one page or a whole run).
pub(crate) type PageWrites = Vec<(u64, Vec<u8>)>;

/// Encodes the subtree under `child`, allocating pages with `alloc(n)` (n contiguous pages);
/// returns the page id of its root.
pub(crate) fn flush(child: Child, alloc: &mut dyn FnMut(u64) -> u64, out: &mut PageWrites) -> u64 {
    let node = match child {
        Child::Clean(page) => return page,
        Child::Dirty(node) => node,
    };
    match *node {
        Node::Leaf(mut leaf) => {
            for val in &mut leaf.vals {
                if let Val::Fresh(bytes) = val {
                    let page = alloc(run_pages(bytes.len()));
                    out.push((page, build_run(page, PageKind::Overflow, bytes)));
                    *val = Val::Overflow {
                        page,
                        len: bytes.len() as u32,
                    };
                }
            }
            let page = alloc(1);
            out.push((page, encode_leaf(page, &leaf)));
            page
        }
        Node::Branch(branch) => {
            let children: Vec<u64> = branch
                .children
                .into_iter()
                .map(|child| flush(child, alloc, out))
                .collect();
            let page = alloc(1);
            out.push((
                page,
                encode_branch(page, &branch.keys, &children, branch.bytes),
            ));
            page
        }
    }
}
