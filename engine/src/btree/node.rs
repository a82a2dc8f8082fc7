//! In-memory B+tree nodes: what a write transaction owns after copying a page.

/// A value in an in-memory leaf.
#[derive(Debug)]
pub(crate) enum Val {
    /// Stored inside the leaf page.
    Inline(Vec<u8>),
    /// Too large for the leaf; its overflow run is written at commit.
    Fresh(Vec<u8>),
    /// Already stored in the overflow run starting at `page`.
    Overflow { page: u64, len: u32 },
}

impl Val {
    /// Bytes this value takes inside the leaf entry.
    pub(crate) fn stored_len(&self) -> usize {
        match self {
            Val::Inline(bytes) => bytes.len(),
            Val::Fresh(_) | Val::Overflow { .. } => 8,
        }
    }
}

/// A leaf: sorted keys and their values.
#[derive(Debug, Default)]
pub(crate) struct Leaf {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) vals: Vec<Val>,
    /// Entry bytes the encoded page would use (slots included).
    pub(crate) bytes: usize,
}

/// A branch: `children[i]` holds keys ≥ `keys[i]` (`keys[0]` is treated as −∞).
#[derive(Debug, Default)]
pub(crate) struct Branch {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) children: Vec<Child>,
    /// Entry bytes the encoded page would use (slots included).
    pub(crate) bytes: usize,
}

/// A branch's pointer to a child: a committed page, or a node this transaction owns.
#[derive(Debug)]
pub(crate) enum Child {
    Clean(u64),
    Dirty(Box<Node>),
}

/// A B+tree node owned by a write transaction.
#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Leaf),
    Branch(Branch),
}

/// Entry bytes of one leaf entry.
pub(crate) fn leaf_entry_bytes(key: &[u8], val: &Val) -> usize {
    super::LEAF_ENTRY_OVERHEAD + key.len() + val.stored_len()
}

/// Entry bytes of one branch entry.
pub(crate) fn branch_entry_bytes(key: &[u8]) -> usize {
    super::BRANCH_ENTRY_OVERHEAD + key.len()
}

impl Node {
    /// Entry bytes of the node.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.bytes,
            Node::Branch(branch) => branch.bytes,
        }
    }

    /// Whether the node holds no entry at all.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Node::Leaf(leaf) => leaf.keys.is_empty(),
            Node::Branch(branch) => branch.children.is_empty(),
        }
    }
}

impl Branch {
    /// Index of the child whose key range holds `key`.
    pub(crate) fn child_index(&self, key: &[u8]) -> usize {
        match self.keys[1..].binary_search_by(|k| k.as_slice().cmp(key)) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
