//! Radix prefix cache over full blocks, keyed by token ids.
//!
//! Each edge of the tree is exactly one block of tokens, so a path from the root spells a prompt prefix
//! whose length is a multiple of the block size, and each node names the block holding that chunk's
//! keys and values. Only full blocks are shared: a partial block is still being written. This is the
//! block-granular form of SGLang's radix cache (vLLM reaches the same sharing with hash chains).
//!
//! Eviction removes leaves nobody builds on, least recently used first. "Recently" is a logical clock
//! bumped on every lookup and insert, so eviction order depends only on the sequence of calls.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::BlockId;

/// Index of a node in the tree's arena. The root is node 0 and holds no block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeId(u32);

impl NodeId {
    pub(crate) const ROOT: NodeId = NodeId(0);
}

#[derive(Debug, Clone)]
struct Node {
    block: Option<BlockId>,
    parent: NodeId,
    key: Box<[u32]>,
    children: BTreeMap<Box<[u32]>, NodeId>,
    /// Live sequences whose cached path ends here; a locked node is never evicted, so a sequence can
    /// keep extending its path.
    locks: u32,
    last_access: u64,
}

/// The tree. It owns one pool reference per node's block; the caller does the pool bookkeeping with
/// the blocks this type hands back.
#[derive(Debug, Clone)]
pub(crate) struct PrefixTree {
    nodes: Vec<Option<Node>>,
    vacant: Vec<NodeId>,
    /// Every non-root node by (last access, id): eviction scans it oldest first.
    by_age: BTreeSet<(u64, NodeId)>,
    clock: u64,
}

impl PrefixTree {
    pub(crate) fn new() -> Self {
        let root = Node {
            block: None,
            parent: NodeId::ROOT,
            key: Box::default(),
            children: BTreeMap::new(),
            locks: 0,
            last_access: 0,
        };
        Self { nodes: alloc::vec![Some(root)], vacant: Vec::new(), by_age: BTreeSet::new(), clock: 0 }
    }

    /// Number of cached blocks.
    pub(crate) fn len(&self) -> usize {
        self.by_age.len()
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    pub(crate) fn block(&self, id: NodeId) -> Option<BlockId> {
        self.node(id).and_then(|n| n.block)
    }

    pub(crate) fn child(&self, parent: NodeId, key: &[u32]) -> Option<NodeId> {
        self.node(parent).and_then(|n| n.children.get(key).copied())
    }

    /// Marks `id` as used now.
    pub(crate) fn touch(&mut self, id: NodeId) {
        if id == NodeId::ROOT {
            return;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(node) = self.node_mut(id) {
            let before = node.last_access;
            node.last_access = now;
            self.by_age.remove(&(before, id));
            self.by_age.insert((now, id));
        }
    }

    /// Adds `block` under `parent` for the chunk `key`; the caller has already retained the block for
    /// the tree. Returns `None` only when `parent` is not a node.
    pub(crate) fn insert(&mut self, parent: NodeId, key: &[u32], block: BlockId) -> Option<NodeId> {
        self.node(parent)?;
        let node =
            Node { block: Some(block), parent, key: key.into(), children: BTreeMap::new(), locks: 0, last_access: 0 };
        let id = match self.vacant.pop() {
            Some(id) => {
                *self.nodes.get_mut(id.0 as usize)? = Some(node);
                id
            }
            None => {
                let id = NodeId(u32::try_from(self.nodes.len()).ok()?);
                self.nodes.push(Some(node));
                id
            }
        };
        self.by_age.insert((0, id));
        if let Some(p) = self.node_mut(parent) {
            p.children.insert(key.into(), id);
        }
        self.touch(id);
        Some(id)
    }

    pub(crate) fn lock(&mut self, id: NodeId) {
        if let Some(node) = self.node_mut(id) {
            node.locks += 1;
        }
    }

    pub(crate) fn unlock(&mut self, id: NodeId) {
        if let Some(node) = self.node_mut(id) {
            debug_assert!(node.locks > 0 || id == NodeId::ROOT, "unlock of an unlocked node");
            node.locks = node.locks.saturating_sub(1);
        }
    }

    /// Removes the least recently used leaf that no sequence has locked and returns its block, whose
    /// tree reference the caller must now release. `None` when nothing can be evicted.
    pub(crate) fn evict_lru(&mut self) -> Option<BlockId> {
        let victim =
            self.by_age.iter().map(|&(_, id)| id).find(|&id| {
                self.node(id).is_some_and(|n| n.children.is_empty() && n.locks == 0 && id != NodeId::ROOT)
            })?;
        let node = self.nodes.get_mut(victim.0 as usize)?.take()?;
        self.by_age.remove(&(node.last_access, victim));
        if let Some(parent) = self.node_mut(node.parent) {
            parent.children.remove(&node.key);
        }
        self.vacant.push(victim);
        node.block
    }
}
