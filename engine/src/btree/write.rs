//! Copy-on-write insert and remove: the path from the root to the touched leaf becomes owned
//! page images ([`Node`]), edited in place; each committed page copied this way is recorded as
//! freed by this transaction.

use super::node::{branch_entry_bytes, leaf_entry_bytes, Child, NewVal, Node};
use super::page::{PageNode, ValRef, RUN_REF_BYTES};
use super::read::resolve;
use super::{is_inline, MERGE_BELOW_BYTES, NODE_CAPACITY};
use crate::error::Result;
use crate::pager::{PageKind, View};

/// What a write transaction's tree edits need: the committed snapshot to copy pages from, and
/// the list of pages this transaction stops referencing.
pub(crate) struct Cow<'a> {
    pub(crate) view: &'a View,
    pub(crate) freed: &'a mut Vec<u64>,
}

impl Cow<'_> {
    /// Turns a clean top-level child into an owned node (copying its page) and returns it.
    pub(crate) fn own<'n>(&mut self, child: &'n mut Child) -> Result<&'n mut Node> {
        if let Child::Clean(page) = *child {
            *child = Child::Dirty(Box::new(self.copy(page)?));
        }
        match child {
            Child::Dirty(node) => Ok(node),
            Child::Clean(_) => unreachable!("child was just made dirty"),
        }
    }

    /// Owns child `i` of `branch` (copying its page if it is still clean) and returns it.
    pub(crate) fn own_child<'n>(&mut self, branch: &'n mut Node, i: usize) -> Result<&'n mut Node> {
        if branch.children[i].is_none() {
            let page = branch.page().child_page_unchecked(i);
            branch.children[i] = Some(Box::new(self.copy(page)?));
        }
        Ok(branch.children[i].as_mut().expect("child was just owned"))
    }

    fn copy(&mut self, page: u64) -> Result<Node> {
        let node = Node::copy_of(&PageNode::open(self.view, page)?);
        self.freed.push(page);
        Ok(node)
    }

    /// Releases the value of leaf entry `i` (its run, or its fresh bytes).
    fn free_value(&mut self, leaf: &mut Node, i: usize) -> Result<()> {
        let value = leaf.page().value(self.view, i)?;
        if let ValRef::Fresh { index } = value {
            leaf.fresh[index] = Vec::new();
        } else if let Some((page, pages)) = value.run_pages() {
            self.freed.extend(page..page + pages);
        }
        Ok(())
    }

    /// Entry bytes of child `i` of `branch` without copying it.
    fn child_bytes(&self, branch: &Node, i: usize) -> Result<usize> {
        match &branch.children[i] {
            Some(node) => Ok(node.used()),
            None => {
                Ok(PageNode::open(self.view, branch.page().child_page_unchecked(i))?.used_bytes())
            }
        }
    }
}

/// Computes a value from the entry before the key (key, value), if there is one.
pub(crate) type FromPredecessor<'f> = &'f mut dyn FnMut(Option<(&[u8], &[u8])>) -> Result<Vec<u8>>;

/// What to store under a key being inserted.
pub(crate) enum NewValue<'f> {
    /// These bytes.
    Bytes(&'f [u8]),
    /// Bytes computed from the entry just before the key (the greatest smaller key, if any),
    /// found during the insert's own descent. Only for keys not yet present.
    AfterPredecessor(FromPredecessor<'f>),
}

/// Inserts or replaces `key`; returns whether a value was replaced, or `None` if a
/// predecessor-computed value could not be computed in one descent (the key would be first in
/// its leaf, so its predecessor lives in another leaf): then nothing changed and the caller looks
/// the predecessor up and inserts with plain bytes.
pub(crate) fn insert(
    cx: &mut Cow,
    root: &mut Option<Child>,
    key: &[u8],
    mut value: NewValue,
) -> Result<Option<bool>> {
    assert!(
        key.len() <= super::KEY_BYTES_MAX,
        "key over the tree's limit"
    );
    if let (None, NewValue::AfterPredecessor(make)) = (&root, &mut value) {
        // An empty tree: there is no predecessor.
        let computed = make(None)?;
        return insert(cx, root, key, NewValue::Bytes(&computed));
    }
    let child = root.get_or_insert_with(|| Child::Dirty(Box::new(Node::new(PageKind::Leaf))));
    let node = cx.own(child)?;
    let Some((replaced, split)) = insert_into(cx, node, key, value)? else {
        return Ok(None);
    };
    if let Some(right) = split {
        let Some(Child::Dirty(left)) = root.take() else {
            unreachable!("the root an insert went through is owned");
        };
        let separator = separator(&left, &right);
        let mut branch = Node::new(PageKind::Branch);
        branch.insert_branch(0, &[], 0, Some(left));
        branch.insert_branch(1, &separator, 0, Some(Box::new(right)));
        *root = Some(Child::Dirty(Box::new(branch)));
    }
    Ok(Some(replaced))
}

/// The key a parent stores for `right`, the new right half of a split whose left half is
/// `left`. Between leaves: the shortest prefix of right's first key that still sorts above
/// left's last key (suffix truncation). Every key of left is below it and every key of right at
/// or above it, which is all a separator must say, and short separators keep branches wide:
/// the change log's keys carry a user key after 16 revision bytes, but its separators need at
/// most those 16. A branch's first key is itself a separator (its subtree may hold keys below
/// it, above left's last one), so between branches it is used whole.
fn separator(left: &Node, right: &Node) -> Vec<u8> {
    let first = right.key(0);
    if right.kind != PageKind::Leaf || left.is_empty() {
        return first.to_vec();
    }
    let last = left.key(left.count() - 1);
    assert!(last < first, "the halves of a split are in key order");
    // `last < first`: they differ at `common`, or `last` is a proper prefix of `first`.
    let common = last.iter().zip(first).take_while(|(a, b)| a == b).count();
    first[..common + 1].to_vec()
}

/// Index of the first key ≥ `key` in an owned node, trying the end first: appends (the change
/// log always, the key index for keys created in order) then cost one comparison a level.
fn lower_bound(view: &View, node: &Node, key: &[u8]) -> Result<usize> {
    let page = node.page();
    if page.count > 0 && page.key(view, page.count - 1)? < key {
        return Ok(page.count);
    }
    page.lower_bound(view, key)
}

/// Index of the child of an owned branch whose range holds `key`, trying the last one first.
fn child_index(view: &View, node: &Node, key: &[u8]) -> Result<usize> {
    let page = node.page();
    let last = page.count - 1;
    if last > 0 && page.key(view, last)? <= key {
        return Ok(last);
    }
    page.child_index(view, key)
}

fn insert_into(
    cx: &mut Cow,
    node: &mut Node,
    key: &[u8],
    value: NewValue,
) -> Result<Option<(bool, Option<Node>)>> {
    if node.kind == PageKind::Branch {
        let i = child_index(cx.view, node, key)?;
        let child = cx.own_child(node, i)?;
        let Some((replaced, split)) = insert_into(cx, child, key, value)? else {
            return Ok(None);
        };
        let Some(right) = split else {
            return Ok(Some((replaced, None)));
        };
        let left = node.children[i]
            .as_ref()
            .expect("the child just split is owned");
        let separator = separator(left, &right);
        let split = insert_entry(node, i + 1, branch_entry_bytes(separator.len()), |n, at| {
            n.insert_branch(at, &separator, 0, Some(Box::new(right)))
        });
        return Ok(Some((replaced, split)));
    }

    let i = lower_bound(cx.view, node, key)?;
    let present = i < node.count() && node.page().key(cx.view, i)? == key;
    let bytes: Vec<u8>;
    let value: &[u8] = match value {
        NewValue::Bytes(bytes) => bytes,
        NewValue::AfterPredecessor(make) => {
            assert!(!present, "insert after predecessor of a key that exists");
            if i == 0 {
                return Ok(None);
            }
            let page = node.page();
            let predecessor = match page.value(cx.view, i - 1)? {
                ValRef::Fresh { index } => node.fresh[index].as_slice(),
                other => resolve(cx.view, other)?,
            };
            bytes = make(Some((page.key(cx.view, i - 1)?, predecessor)))?;
            &bytes
        }
    };
    if present {
        cx.free_value(node, i)?;
        node.remove(i);
    }
    // A large value goes to the fresh list of whichever half of a split gets its entry.
    let len = value.len() as u32;
    let (fresh, entry_bytes) = if is_inline(key.len(), value.len()) {
        (None, leaf_entry_bytes(key.len(), value.len()))
    } else {
        (
            Some(value.to_vec()),
            leaf_entry_bytes(key.len(), RUN_REF_BYTES),
        )
    };
    let split = insert_entry(node, i, entry_bytes, |n, at| {
        let new_val = match fresh {
            None => NewVal::Inline(value),
            Some(bytes) => {
                n.fresh.push(bytes);
                NewVal::Fresh {
                    index: n.fresh.len() as u64 - 1,
                    len,
                }
            }
        };
        n.insert_leaf(at, key, new_val)
    });
    Ok(Some((present, split)))
}

/// Inserts an entry of `entry_bytes` at index `i` with `put(node, index)`, splitting the node
/// first if it would not fit; returns the new right half of a split.
fn insert_entry(
    node: &mut Node,
    i: usize,
    entry_bytes: usize,
    put: impl FnOnce(&mut Node, usize),
) -> Option<Node> {
    if node.fits(entry_bytes) {
        put(node, i);
        return None;
    }
    let count = node.count();
    let mut sizes: Vec<usize> = (0..count).map(|j| node.entry_range(j).len() + 2).collect();
    sizes.insert(i, entry_bytes);
    let at = split_point(&sizes, i == count);
    // `at` counts the new entry: entries before it in the combined order go left.
    let mut right = if i < at {
        node.split_off(at - 1)
    } else {
        node.split_off(at)
    };
    if i < at {
        put(node, i);
    } else {
        put(&mut right, i - at);
    }
    assert!(node.used() <= NODE_CAPACITY && right.used() <= NODE_CAPACITY);
    if cfg!(debug_assertions) {
        node.check();
        right.check();
    }
    Some(right)
}

/// Where to split entries of the given sizes (`[0, at)` stay, `[at, n)` move right) so that
/// both halves fit: when appending in key order, as full a left node as fits (sequential
/// inserts leave pages full rather than half empty), else the fitting split closest to
/// balanced. One always exists while every entry is at most half a page and the total at most
/// one and a half: the longest prefix that fits holds more than half a page (the next entry
/// did not fit), so the rest holds less than a page.
fn split_point(sizes: &[usize], appending: bool) -> usize {
    let total: usize = sizes.iter().sum();
    assert!(sizes.len() >= 2, "a split needs two entries");
    let mut best: Option<(usize, usize)> = None;
    let mut left = 0;
    for at in 1..sizes.len() {
        left += sizes[at - 1];
        if left > NODE_CAPACITY {
            break;
        }
        if total - left > NODE_CAPACITY {
            continue;
        }
        let imbalance = left.abs_diff(total / 2);
        if appending || best.is_none_or(|(_, b)| imbalance < b) {
            best = Some((at, imbalance));
        }
    }
    best.expect("a split where both halves fit").0
}

/// Removes `key`; returns whether it was present.
pub(crate) fn remove(cx: &mut Cow, root: &mut Option<Child>, key: &[u8]) -> Result<bool> {
    let Some(child) = root.as_mut() else {
        return Ok(false);
    };
    // Only copy the path if the key exists: a miss must not dirty (and rewrite) pages.
    if let Child::Clean(page) = child {
        if super::read::get(cx.view, Some(super::read::NodeRef::Page(*page)), key)?.is_none() {
            return Ok(false);
        }
    }
    let node = cx.own(child)?;
    let removed = remove_from(cx, node, key)?;
    // Shrink the root: an empty tree has no root, a branch with one child is replaced by it.
    while let Some(Child::Dirty(node)) = root.as_mut() {
        if node.is_empty() {
            *root = None;
        } else if node.kind == PageKind::Branch && node.count() == 1 {
            let page = node.page().child_page_unchecked(0);
            *root = Some(match node.remove(0) {
                Some(owned) => Child::Dirty(owned),
                None => Child::Clean(page),
            });
        } else {
            break;
        }
    }
    Ok(removed)
}

fn remove_from(cx: &mut Cow, node: &mut Node, key: &[u8]) -> Result<bool> {
    if node.kind == PageKind::Leaf {
        let page = node.page();
        let i = page.lower_bound(cx.view, key)?;
        if i == page.count || page.key(cx.view, i)? != key {
            return Ok(false);
        }
        cx.free_value(node, i)?;
        node.remove(i);
        return Ok(true);
    }
    let i = node.page().child_index(cx.view, key)?;
    let child = cx.own_child(node, i)?;
    if !remove_from(cx, child, key)? {
        return Ok(false);
    }
    rebalance(cx, node, i)?;
    Ok(true)
}

/// After a removal under child `i` of `branch`: drops the child if empty, or merges it with a
/// sibling when both fit in one page.
fn rebalance(cx: &mut Cow, branch: &mut Node, i: usize) -> Result<()> {
    let child = branch.children[i]
        .as_ref()
        .expect("the child a removal went through is owned");
    if child.is_empty() {
        branch.remove(i);
        return Ok(());
    }
    if child.used() >= MERGE_BELOW_BYTES || branch.count() < 2 {
        return Ok(());
    }
    let (left, right) = if i > 0 { (i - 1, i) } else { (i, i + 1) };
    let left_bytes = cx.child_bytes(branch, left)?;
    let right_bytes = cx.child_bytes(branch, right)?;
    let separator = branch.page().key(cx.view, right)?.to_vec();
    // The separator may replace the right node's first key when branches merge: budget for it.
    if left_bytes + right_bytes + branch_entry_bytes(separator.len()) > NODE_CAPACITY {
        return Ok(());
    }
    cx.own_child(branch, right)?;
    let right_node = *branch.remove(right).expect("right sibling was just owned");
    let left_node = cx.own_child(branch, left)?;
    if left_node.kind != right_node.kind {
        return Err(cx.view.corrupt(0, "siblings at different tree levels"));
    }
    // The right node's first key was −∞ relative to it; in a merged branch it needs the real
    // separator.
    let first = (right_node.kind == PageKind::Branch).then_some(separator.as_slice());
    left_node.append(right_node, first);
    if cfg!(debug_assertions) {
        left_node.check();
    }
    assert!(branch.count() > 0);
    Ok(())
}
