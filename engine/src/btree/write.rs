//! Copy-on-write insert and remove: the path from the root to the touched leaf becomes owned
//! in-memory nodes; each committed page copied this way is recorded as freed by this
//! transaction.

use super::node::{branch_entry_bytes, leaf_entry_bytes, Branch, Child, Leaf, Node, Val};
use super::page::PageNode;
use super::{is_inline, MERGE_BELOW_BYTES, NODE_CAPACITY};
use crate::error::Result;
use crate::pager::{run_pages, View};

/// What a write transaction's tree edits need: the committed snapshot to copy pages from, and
/// the list of pages this transaction stops referencing.
pub(crate) struct Cow<'a> {
    pub(crate) view: &'a View,
    pub(crate) freed: &'a mut Vec<u64>,
}

impl Cow<'_> {
    /// Turns a clean child into an owned node (copying its page) and returns it.
    pub(crate) fn own<'n>(&mut self, child: &'n mut Child) -> Result<&'n mut Node> {
        if let Child::Clean(page) = *child {
            let node = PageNode::open(self.view, page)?.to_node(self.view)?;
            self.freed.push(page);
            *child = Child::Dirty(Box::new(node));
        }
        match child {
            Child::Dirty(node) => Ok(node),
            Child::Clean(_) => unreachable!("child was just made dirty"),
        }
    }

    fn free_value(&mut self, val: &Val) {
        if let Val::Overflow { page, len } = *val {
            self.freed.extend(page..page + run_pages(len as usize));
        }
    }

    /// Entry bytes of a child without copying it.
    fn child_bytes(&self, child: &Child) -> Result<usize> {
        match child {
            Child::Clean(page) => Ok(PageNode::open(self.view, *page)?.used_bytes()),
            Child::Dirty(node) => Ok(node.bytes()),
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

fn to_val(key: &[u8], bytes: Vec<u8>) -> Val {
    if is_inline(key.len(), bytes.len()) {
        Val::Inline(bytes)
    } else {
        Val::Fresh(bytes)
    }
}

/// Inserts or replaces `key`; returns whether a value was replaced, or `None` if a
/// predecessor-computed value could not be computed in one descent (the key would be first in
/// its leaf, so its predecessor lives in another leaf): then nothing changed and the caller looks
/// the predecessor up and inserts with plain bytes.
pub(crate) fn insert(
    cx: &mut Cow,
    root: &mut Option<Child>,
    key: &[u8],
    value: NewValue,
) -> Result<Option<bool>> {
    assert!(
        key.len() <= super::KEY_BYTES_MAX,
        "key over the tree's limit"
    );
    let value = match (root.is_none(), value) {
        (true, NewValue::AfterPredecessor(make)) => Pending::Ready(to_val(key, make(None)?)),
        (_, NewValue::Bytes(bytes)) => Pending::Ready(to_val(key, bytes.to_vec())),
        (false, NewValue::AfterPredecessor(make)) => Pending::FromPredecessor(make),
    };
    let child = root.get_or_insert_with(|| Child::Dirty(Box::new(Node::Leaf(Leaf::default()))));
    let node = cx.own(child)?;
    let Some((replaced, split)) = insert_into(cx, node, key.to_vec(), value)? else {
        return Ok(None);
    };
    if let Some((separator, right)) = split {
        let left = root.take().expect("root exists");
        let bytes = branch_entry_bytes(&[]) + branch_entry_bytes(&separator);
        *root = Some(Child::Dirty(Box::new(Node::Branch(Branch {
            keys: vec![Vec::new(), separator],
            children: vec![left, Child::Dirty(Box::new(right))],
            bytes,
        }))));
    }
    Ok(Some(replaced))
}

/// A value on its way down to its leaf.
enum Pending<'f> {
    Ready(Val),
    FromPredecessor(FromPredecessor<'f>),
}

type Split = Option<(Vec<u8>, Node)>;

fn insert_into(
    cx: &mut Cow,
    node: &mut Node,
    key: Vec<u8>,
    pending: Pending,
) -> Result<Option<(bool, Split)>> {
    match node {
        Node::Leaf(leaf) => {
            let val = match pending {
                Pending::Ready(val) => val,
                Pending::FromPredecessor(make) => {
                    let i = match leaf.keys.binary_search(&key) {
                        Ok(_) => panic!("insert after predecessor of a key that exists"),
                        Err(0) => return Ok(None),
                        Err(i) => i,
                    };
                    let predecessor = match &leaf.vals[i - 1] {
                        Val::Inline(bytes) | Val::Fresh(bytes) => bytes.as_slice(),
                        Val::Overflow { page, len } => super::read::resolve(
                            cx.view,
                            super::page::ValRef::Overflow {
                                page: *page,
                                len: *len,
                            },
                        )?,
                    };
                    let bytes = make(Some((&leaf.keys[i - 1], predecessor)))?;
                    to_val(&key, bytes)
                }
            };
            let replaced;
            let position = match leaf.keys.binary_search(&key) {
                Ok(i) => {
                    let old = std::mem::replace(&mut leaf.vals[i], val);
                    leaf.bytes -= leaf_entry_bytes(&key, &old);
                    leaf.bytes += leaf_entry_bytes(&key, &leaf.vals[i]);
                    cx.free_value(&old);
                    replaced = true;
                    i
                }
                Err(i) => {
                    leaf.bytes += leaf_entry_bytes(&key, &val);
                    leaf.keys.insert(i, key);
                    leaf.vals.insert(i, val);
                    replaced = false;
                    i
                }
            };
            if leaf.bytes <= NODE_CAPACITY {
                return Ok(Some((replaced, None)));
            }
            let appending = position + 1 == leaf.keys.len();
            let (separator, right) = split_leaf(leaf, appending);
            Ok(Some((replaced, Some((separator, Node::Leaf(right))))))
        }
        Node::Branch(branch) => {
            let i = branch.child_index(&key);
            let child = cx.own(&mut branch.children[i])?;
            let Some((replaced, split)) = insert_into(cx, child, key, pending)? else {
                return Ok(None);
            };
            if let Some((separator, right)) = split {
                branch.bytes += branch_entry_bytes(&separator);
                branch.keys.insert(i + 1, separator);
                branch.children.insert(i + 1, Child::Dirty(Box::new(right)));
                if branch.bytes > NODE_CAPACITY {
                    let appending = i + 2 == branch.children.len();
                    let (separator, right) = split_branch(branch, appending);
                    return Ok(Some((replaced, Some((separator, Node::Branch(right))))));
                }
            }
            Ok(Some((replaced, None)))
        }
    }
}

/// Where to split entries of the given sizes: balanced halves, or (when appending in key
/// order) a full left node so sequential inserts leave pages full rather than half empty.
fn split_point(sizes: &[usize], appending: bool) -> usize {
    let total: usize = sizes.iter().sum();
    let mut acc = 0;
    let mut at = 0;
    if appending {
        while at < sizes.len() - 1 && acc + sizes[at] <= NODE_CAPACITY {
            acc += sizes[at];
            at += 1;
        }
    } else {
        while at < sizes.len() - 1 && acc < total / 2 {
            acc += sizes[at];
            at += 1;
        }
    }
    at.clamp(1, sizes.len() - 1)
}

fn split_leaf(leaf: &mut Leaf, appending: bool) -> (Vec<u8>, Leaf) {
    let sizes: Vec<usize> = leaf
        .keys
        .iter()
        .zip(&leaf.vals)
        .map(|(k, v)| leaf_entry_bytes(k, v))
        .collect();
    let at = split_point(&sizes, appending);
    let right_bytes: usize = sizes[at..].iter().sum();
    let right = Leaf {
        keys: leaf.keys.split_off(at),
        vals: leaf.vals.split_off(at),
        bytes: right_bytes,
    };
    leaf.bytes -= right_bytes;
    assert!(leaf.bytes <= NODE_CAPACITY && right.bytes <= NODE_CAPACITY);
    (right.keys[0].clone(), right)
}

fn split_branch(branch: &mut Branch, appending: bool) -> (Vec<u8>, Branch) {
    let sizes: Vec<usize> = branch.keys.iter().map(|k| branch_entry_bytes(k)).collect();
    let at = split_point(&sizes, appending);
    let right_bytes: usize = sizes[at..].iter().sum();
    let right = Branch {
        keys: branch.keys.split_off(at),
        children: branch.children.split_off(at),
        bytes: right_bytes,
    };
    branch.bytes -= right_bytes;
    assert!(branch.bytes <= NODE_CAPACITY && right.bytes <= NODE_CAPACITY);
    (right.keys[0].clone(), right)
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
        match node.as_mut() {
            n if n.is_empty() => *root = None,
            Node::Branch(b) if b.children.len() == 1 => *root = b.children.pop(),
            _ => break,
        }
    }
    Ok(removed)
}

fn remove_from(cx: &mut Cow, node: &mut Node, key: &[u8]) -> Result<bool> {
    match node {
        Node::Leaf(leaf) => match leaf.keys.binary_search_by(|k| k.as_slice().cmp(key)) {
            Ok(i) => {
                let key = leaf.keys.remove(i);
                let val = leaf.vals.remove(i);
                leaf.bytes -= leaf_entry_bytes(&key, &val);
                cx.free_value(&val);
                Ok(true)
            }
            Err(_) => Ok(false),
        },
        Node::Branch(branch) => {
            let i = branch.child_index(key);
            let child = cx.own(&mut branch.children[i])?;
            if !remove_from(cx, child, key)? {
                return Ok(false);
            }
            rebalance(cx, branch, i)?;
            Ok(true)
        }
    }
}

/// After a removal under `branch.children[i]`: drops the child if empty, or merges it with a
/// sibling when both fit in one page.
fn rebalance(cx: &mut Cow, branch: &mut Branch, i: usize) -> Result<()> {
    let Child::Dirty(child) = &branch.children[i] else {
        unreachable!("the child a removal went through is owned");
    };
    if child.is_empty() {
        let key = branch.keys.remove(i);
        branch.bytes -= branch_entry_bytes(&key);
        branch.children.remove(i);
        return Ok(());
    }
    if child.bytes() >= MERGE_BELOW_BYTES || branch.children.len() < 2 {
        return Ok(());
    }
    let (left, right) = if i > 0 { (i - 1, i) } else { (i, i + 1) };
    let left_bytes = cx.child_bytes(&branch.children[left])?;
    let right_bytes = cx.child_bytes(&branch.children[right])?;
    // The separator may replace the right node's first key when branches merge: budget for it.
    if left_bytes + right_bytes + branch_entry_bytes(&branch.keys[right]) > NODE_CAPACITY {
        return Ok(());
    }
    let separator = branch.keys.remove(right);
    branch.bytes -= branch_entry_bytes(&separator);
    let mut right_child = branch.children.remove(right);
    let right_node = take_node(cx.own(&mut right_child)?);
    let left_node = cx.own(&mut branch.children[left])?;
    match (left_node, right_node) {
        (Node::Leaf(l), Node::Leaf(r)) => {
            l.keys.extend(r.keys);
            l.vals.extend(r.vals);
            l.bytes += r.bytes;
        }
        (Node::Branch(l), Node::Branch(mut r)) => {
            // The right node's first key was −∞ relative to it; in the merged node it needs the
            // real separator.
            r.bytes -= branch_entry_bytes(&r.keys[0]);
            r.keys[0] = separator;
            r.bytes += branch_entry_bytes(&r.keys[0]);
            l.keys.extend(r.keys);
            l.children.extend(r.children);
            l.bytes += r.bytes;
        }
        _ => return Err(cx.view.corrupt(0, "siblings at different tree levels")),
    }
    assert!(!branch.children.is_empty());
    Ok(())
}

/// Moves a node out of its place, leaving an empty leaf.
fn take_node(node: &mut Node) -> Node {
    std::mem::replace(node, Node::Leaf(Leaf::default()))
}
