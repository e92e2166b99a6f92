//! The arena search tree: every statistic lives in a flat array indexed by node id (or node id × action), as in
//! mctx's `tree.py`. No `Rc<RefCell>`: a node is a `usize`, its edges are the `num_actions` consecutive slots
//! starting at `node * num_actions`, and the root is always node 0.
//!
//! Nodes are numbered in the order they are created, so a search with one leaf per evaluator call numbers its
//! nodes exactly like mctx (node `i` is the one expanded by simulation `i`).

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SearchError};

/// Sentinel for "no node" in the parent and children arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// What the caller knows about the root state before the search starts.
#[derive(Debug, Clone)]
pub struct RootOutput<'a, S> {
    /// The caller's state at the root; handed back to the evaluator when expanding the root's children.
    pub state: S,
    /// Prior logits over the `num_actions` actions.
    pub prior_logits: &'a [f32],
    /// The value estimate of the root state, from the point of view of the player to move.
    pub value: f32,
    /// `true` marks an action that must never be chosen at the root (mctx's `invalid_actions`).
    pub invalid_actions: Option<&'a [bool]>,
}

/// Per-node statistics, kept together so that one cache line serves a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    pub visits: u32,
    pub raw_value: f32,
    pub value: f32,
    pub parent: u32,
    pub action: u32,
    /// In-flight simulations passing through the node (virtual loss).
    pub in_flight: u32,
    /// A terminal node (or one without any valid action) is never expanded further.
    pub terminal: bool,
    /// Created by a selection whose evaluation is still outstanding (batched evaluation).
    pub pending: bool,
}

/// Per-(node, action) statistics. One node's edges are contiguous, so selecting at a node reads a few
/// consecutive cache lines instead of one line per statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edge {
    pub child: u32,
    pub visits: u32,
    /// Value of the child node (mctx `children_values`), from the child's mover's point of view.
    pub value: f32,
    pub reward: f32,
    pub discount: f32,
    pub prior: f32,
    pub logit: f32,
    /// In-flight simulations through this edge (virtual loss).
    pub in_flight: u32,
    pub valid: bool,
}

impl Edge {
    const EMPTY: Self = Self {
        child: NONE,
        visits: 0,
        value: 0.0,
        reward: 0.0,
        discount: 0.0,
        prior: 0.0,
        logit: 0.0,
        in_flight: 0,
        valid: true,
    };

    /// `Q = reward + discount * value(child)`, mctx's `Tree.qvalues`.
    pub fn qvalue(&self) -> f32 {
        self.reward + self.discount * self.value
    }
}

/// A search tree over states `S` with a fixed number of action slots per node.
#[derive(Debug, Clone)]
pub struct Tree<S> {
    pub(crate) num_actions: usize,
    pub(crate) nodes: Vec<Node>,
    pub(crate) states: Vec<Option<S>>,
    /// `nodes.len() * num_actions` edges; node `n` owns `edges[n * num_actions..(n + 1) * num_actions]`.
    pub(crate) edges: Vec<Edge>,
    /// The root's logits as evaluated, before any exploration noise: noise is re-drawn from these on every run.
    pub(crate) root_clean_logits: Vec<f32>,
    /// Per-action Gumbel noise at the root (zeros unless a Gumbel search drew it).
    pub(crate) root_gumbel: Vec<f32>,
    /// This tree's random stream, re-seeded at the start of every search from `(seed, stream)`.
    pub(crate) rng: ChaCha8Rng,
}

impl<S> Tree<S> {
    /// An empty tree for `num_actions` actions per node; call [`Tree::reset`] to give it a root.
    pub fn new(num_actions: usize) -> Self {
        Self {
            num_actions,
            nodes: Vec::new(),
            states: Vec::new(),
            edges: Vec::new(),
            root_clean_logits: Vec::new(),
            root_gumbel: Vec::new(),
            rng: crate::rng::stream_rng(0, 0),
        }
    }

    /// Number of action slots per node.
    pub fn num_actions(&self) -> usize {
        self.num_actions
    }

    /// Number of nodes, the root included.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has a root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Clears the tree (keeping its allocations) and installs a new root.
    pub fn reset(&mut self, root: RootOutput<'_, S>) -> Result<()> {
        let a = self.num_actions;
        if root.prior_logits.len() != a {
            return Err(SearchError::Shape { what: "root prior_logits", expected: a, got: root.prior_logits.len() });
        }
        if let Some(mask) = root.invalid_actions
            && mask.len() != a
        {
            return Err(SearchError::Shape { what: "root invalid_actions", expected: a, got: mask.len() });
        }
        if !root.value.is_finite() {
            return Err(SearchError::NonFinite("root value"));
        }
        let is_valid = |i: usize| !root.invalid_actions.is_some_and(|m| m[i]);
        if a == 0 || !(0..a).any(is_valid) {
            return Err(SearchError::NoValidAction);
        }
        if (0..a).any(|i| is_valid(i) && !root.prior_logits[i].is_finite()) {
            return Err(SearchError::NonFinite("root prior_logits"));
        }
        self.nodes.clear();
        self.states.clear();
        self.edges.clear();
        self.push_node(NONE, NONE);
        self.set_evaluation(0, root.prior_logits, root.invalid_actions, root.value, false);
        self.states[0] = Some(root.state);
        self.capture_root_logits();
        Ok(())
    }

    /// Makes room for `additional` more nodes so that a search does not reallocate mid-way; node ids are `u32`.
    pub(crate) fn reserve(&mut self, additional: usize) -> Result<()> {
        let total = self.nodes.len().saturating_add(additional);
        if total >= NONE as usize {
            return Err(SearchError::InvalidConfig("the tree would exceed u32::MAX - 1 nodes"));
        }
        let edges = additional.checked_mul(self.num_actions).ok_or(SearchError::Allocation("tree edges"))?;
        self.nodes.try_reserve(additional).map_err(|_| SearchError::Allocation("tree nodes"))?;
        self.states.try_reserve(additional).map_err(|_| SearchError::Allocation("tree states"))?;
        self.edges.try_reserve(edges).map_err(|_| SearchError::Allocation("tree edges"))
    }

    /// Appends an unevaluated node below `parent` via `action` and returns its id.
    pub(crate) fn push_node(&mut self, parent: u32, action: u32) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            visits: 0,
            raw_value: 0.0,
            value: 0.0,
            parent,
            action,
            in_flight: 0,
            terminal: false,
            pending: true,
        });
        self.states.push(None);
        self.edges.resize(self.edges.len() + self.num_actions, Edge::EMPTY);
        if parent != NONE {
            self.edges[parent as usize * self.num_actions + action as usize].child = id;
        }
        id
    }

    /// The edges of `node`.
    pub(crate) fn edges_of(&self, node: usize) -> &[Edge] {
        &self.edges[node * self.num_actions..(node + 1) * self.num_actions]
    }

    /// Stores a node's evaluation: masked logits, their softmax, its value; the node counts as visited once.
    /// The caller has checked that every valid action's logit is finite.
    pub(crate) fn set_evaluation(
        &mut self,
        node: usize,
        logits: &[f32],
        invalid: Option<&[bool]>,
        value: f32,
        terminal: bool,
    ) {
        let a = self.num_actions;
        let edges = &mut self.edges[node * a..(node + 1) * a];
        let mut any_valid = false;
        for (i, (e, &l)) in edges.iter_mut().zip(logits).enumerate() {
            e.valid = !invalid.is_some_and(|m| m[i]);
            any_valid |= e.valid;
            // As mctx's `_mask_invalid_actions`: invalid actions get the most negative finite logit.
            e.logit = if e.valid { l } else { f32::MIN };
        }
        softmax_edges(edges);
        let n = &mut self.nodes[node];
        n.raw_value = value;
        n.value = value;
        n.visits = 1;
        n.terminal = terminal || !any_valid;
        n.pending = false;
    }

    /// Remembers the root's logits as evaluated so that noise can be re-drawn from them.
    pub(crate) fn capture_root_logits(&mut self) {
        self.root_clean_logits.clear();
        self.root_clean_logits.extend(self.edges[..self.num_actions].iter().map(|e| e.logit));
        self.root_gumbel.clear();
        self.root_gumbel.resize(self.num_actions, 0.0);
    }

    /// Visit count of `node` (1 after its evaluation, +1 per simulation through it).
    pub fn visit_count(&self, node: usize) -> Option<u32> {
        self.nodes.get(node).map(|n| n.visits)
    }

    /// Mean value of `node` over its visits, from the point of view of the player to move there.
    pub fn value(&self, node: usize) -> Option<f32> {
        self.nodes.get(node).map(|n| n.value)
    }

    /// The value the evaluator returned for `node`.
    pub fn raw_value(&self, node: usize) -> Option<f32> {
        self.nodes.get(node).map(|n| n.raw_value)
    }

    /// Parent of `node` (`None` for the root).
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.nodes.get(node).filter(|n| n.parent != NONE).map(|n| n.parent as usize)
    }

    /// The action leading from the parent to `node`.
    pub fn action_from_parent(&self, node: usize) -> Option<usize> {
        self.nodes.get(node).filter(|n| n.action != NONE).map(|n| n.action as usize)
    }

    /// Whether `node` is terminal (or has no valid action).
    pub fn is_terminal(&self, node: usize) -> bool {
        self.nodes.get(node).is_some_and(|n| n.terminal)
    }

    /// The caller's state stored at `node`.
    pub fn state(&self, node: usize) -> Option<&S> {
        self.states.get(node).and_then(Option::as_ref)
    }

    /// The child reached from `node` by `action`, if it has been expanded.
    pub fn child(&self, node: usize, action: usize) -> Option<usize> {
        self.edge(node, action).filter(|e| e.child != NONE).map(|e| e.child as usize)
    }

    /// Prior probability of `action` at `node` (after masking, and at the root after noise).
    pub fn prior(&self, node: usize, action: usize) -> Option<f32> {
        self.edge(node, action).map(|e| e.prior)
    }

    /// Reward received on the edge `(node, action)`.
    pub fn reward(&self, node: usize, action: usize) -> Option<f32> {
        self.edge(node, action).map(|e| e.reward)
    }

    /// Whether `action` is valid at `node`.
    pub fn is_valid(&self, node: usize, action: usize) -> bool {
        self.edge(node, action).is_some_and(|e| e.valid)
    }

    /// Visits of the edge `(node, action)`.
    pub fn child_visit_count(&self, node: usize, action: usize) -> Option<u32> {
        self.edge(node, action).map(|e| e.visits)
    }

    /// `Q(node, action) = reward + discount * value(child)`, as mctx's `Tree.qvalues`.
    pub fn qvalue(&self, node: usize, action: usize) -> Option<f32> {
        self.edge(node, action).map(Edge::qvalue)
    }

    /// Visit counts of the root's children (the search's policy target before normalisation).
    pub fn root_visit_counts(&self) -> Vec<u32> {
        self.edges.iter().take(self.num_actions).map(|e| e.visits).collect()
    }

    fn edge(&self, node: usize, action: usize) -> Option<&Edge> {
        if action < self.num_actions { self.edges.get(node.checked_mul(self.num_actions)? + action) } else { None }
    }

    /// Subtree reuse: makes the child reached by `action` the new root, keeping its whole subtree with its
    /// statistics and discarding the rest. Node ids are compacted in place (a child always has a larger id than
    /// its parent, so every kept node moves to a smaller or equal id).
    pub fn advance(&mut self, action: usize) -> Result<()> {
        if self.is_empty() {
            return Err(SearchError::EmptyTree);
        }
        let new_root = match self.child(0, action) {
            Some(c) if !self.nodes[c].pending => c,
            _ => return Err(SearchError::InvalidAction { action, num_actions: self.num_actions }),
        };
        let a = self.num_actions;
        let n = self.num_nodes();
        // remap[old] = new id, or NONE for a dropped node. Allocated per move, not per simulation.
        let mut remap = alloc::vec![NONE; n];
        let mut next = 0u32;
        for old in new_root..n {
            let p = self.nodes[old].parent;
            if old == new_root || (p != NONE && remap[p as usize] != NONE) {
                remap[old] = next;
                next += 1;
            }
        }
        for old in new_root..n {
            let new = remap[old];
            if new == NONE {
                continue;
            }
            let new = new as usize;
            let mut node = self.nodes[old];
            if old == new_root {
                node.parent = NONE;
                node.action = NONE;
            } else {
                node.parent = remap[node.parent as usize];
            }
            node.in_flight = 0;
            self.nodes[new] = node;
            self.states[new] = self.states[old].take();
            for i in 0..a {
                let mut edge = self.edges[old * a + i];
                if edge.child != NONE {
                    edge.child = remap[edge.child as usize];
                }
                edge.in_flight = 0;
                self.edges[new * a + i] = edge;
            }
        }
        let kept = next as usize;
        self.nodes.truncate(kept);
        self.states.truncate(kept);
        self.edges.truncate(kept * a);
        self.capture_root_logits();
        Ok(())
    }
}

/// Softmax of the edges' logits into their priors.
pub(crate) fn softmax_edges(edges: &mut [Edge]) {
    let max = edges.iter().map(|e| e.logit).fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for e in edges.iter_mut() {
        e.prior = libm::expf(e.logit - max);
        sum += e.prior;
    }
    let inv = 1.0 / sum;
    edges.iter_mut().for_each(|e| e.prior *= inv);
}

/// Numerically stable softmax of `logits` into `out` (same length).
pub(crate) fn softmax_into(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = libm::expf(l - max);
        sum += *o;
    }
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|o| *o *= inv);
}
