//! The search engine: MuZero PUCT and Gumbel MuZero over arena trees, with batched leaf evaluation.
//!
//! One simulation walks from the root choosing actions until it reaches an unexpanded edge (a leaf to evaluate),
//! a terminal node, or `max_depth`; the leaf's value is then backed up to the root as in mctx's `search.py`:
//! `G = reward + discount * G`, each node's value is the running mean of the `G` it has seen.
//!
//! Throughput: up to `leaves_per_tree` leaves are gathered from every tree before one evaluator call. While a
//! leaf waits, every edge on its path carries a virtual visit valued `-virtual_loss`, which steers the next
//! selections elsewhere. With `leaves_per_tree == 1` no virtual loss is ever active and the search is exactly
//! mctx's sequential one. Each tree's selections depend only on that tree, so a tree's result is the same whatever
//! other trees share its batch. All buffers are allocated once and reused: the simulation loop does not allocate.

use alloc::vec::Vec;
use core::fmt::{Debug, Display};

use crate::config::{Algorithm, SearchConfig};
use crate::error::{Result, SearchError};
use crate::evaluator::{Evaluator, LeafBatch, LeafOutputs, LeafRequest};
use crate::qtransform::{EdgeStats, QTransform};
use crate::rng;
use crate::seq_halving::HalvingTable;
use crate::tree::{NONE, Node, Tree, softmax_edges, softmax_into};

/// Where a simulation ended.
enum Descent {
    /// An unexpanded edge: evaluate the child of `parent` by `action`.
    Expand { parent: u32, action: u32 },
    /// A terminal node or the depth limit: back up the node's value once more.
    Revisit(usize),
    /// The path ran into a leaf already waiting for evaluation in this batch.
    Collision,
}

/// The result of a search at one root: the action to play and the policy target.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutput {
    /// The action chosen (sampled with the temperature for MuZero; the Sequential Halving winner for Gumbel).
    pub action: usize,
    /// The policy-improvement target: visit frequencies (MuZero) or `softmax(logits + completed Q)` (Gumbel).
    pub action_weights: Vec<f32>,
    /// The root's value after the search.
    pub value: f32,
}

/// Reusable search engine: holds the configuration and every scratch buffer.
#[derive(Debug)]
pub struct Search<S> {
    config: SearchConfig,
    num_actions: usize,
    /// Sequential Halving schedule for the current budget (Gumbel only; its shape depends on the budget).
    table: HalvingTable,
    requests: Vec<LeafRequest>,
    outputs: LeafOutputs<S>,
    remaining: Vec<usize>,
    // Scratch copies of the edges of the node being selected at: contiguous f32 lanes for the arithmetic.
    qvalues: Vec<f32>,
    visits: Vec<f32>,
    priors: Vec<f32>,
    logits: Vec<f32>,
    valid: Vec<bool>,
    scores: Vec<f32>,
    probs: Vec<f32>,
}

impl<S> Search<S> {
    /// A search for trees of `num_actions` actions.
    pub fn new(config: SearchConfig, num_actions: usize) -> Result<Self> {
        config.validate()?;
        if num_actions == 0 {
            return Err(SearchError::InvalidConfig("num_actions must be at least 1"));
        }
        Ok(Self {
            config,
            num_actions,
            table: HalvingTable::default(),
            requests: Vec::new(),
            outputs: LeafOutputs::new(num_actions),
            remaining: Vec::new(),
            qvalues: alloc::vec![0.0; num_actions],
            visits: alloc::vec![0.0; num_actions],
            priors: alloc::vec![0.0; num_actions],
            logits: alloc::vec![0.0; num_actions],
            valid: alloc::vec![true; num_actions],
            scores: alloc::vec![0.0; num_actions],
            probs: alloc::vec![0.0; num_actions],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Replaces the configuration (for example a different budget for the next move), keeping the buffers.
    pub fn set_config(&mut self, config: SearchConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Runs `num_simulations` simulations on every tree (each must have a root), evaluating leaves of all
    /// trees together. Tree `i` draws its randomness from stream `first_stream + i` of the configured seed, so
    /// running it alone with `first_stream + i` gives the same tree. After an error the trees must be reset.
    pub fn run<E>(&mut self, trees: &mut [Tree<S>], evaluator: &mut E, first_stream: u64) -> Result<(), E::Error>
    where
        E: Evaluator<State = S>,
        E::Error: Debug + Display,
    {
        let streams: Vec<u64> = (0..trees.len() as u64).map(|i| first_stream.wrapping_add(i)).collect();
        self.run_streams(trees, evaluator, &streams)
    }

    /// [`Search::run`] with tree `i` drawing from stream `streams[i]`: a caller that searches a changing subset
    /// of its problems (the games still running, the share of one rank) names each tree's stream by its problem,
    /// so a tree's search never depends on which others it was batched with.
    pub fn run_streams<E>(&mut self, trees: &mut [Tree<S>], evaluator: &mut E, streams: &[u64]) -> Result<(), E::Error>
    where
        E: Evaluator<State = S>,
        E::Error: Debug + Display,
    {
        if streams.len() != trees.len() {
            return Err(SearchError::Shape { what: "streams", expected: trees.len(), got: streams.len() });
        }
        let sims = self.config.num_simulations;
        self.remaining.clear();
        let mut most_root_visits = 0usize;
        for (i, tree) in trees.iter_mut().enumerate() {
            if tree.num_actions != self.num_actions {
                return Err(SearchError::Shape {
                    what: "tree num_actions",
                    expected: self.num_actions,
                    got: tree.num_actions,
                });
            }
            if tree.is_empty() {
                return Err(SearchError::EmptyTree);
            }
            tree.rng = rng::stream_rng(self.config.seed, streams[i]);
            tree.reserve(sims).map_err(SearchError::widen)?;
            self.prepare_root(tree);
            self.remaining.push(sims);
            most_root_visits = most_root_visits.max(tree.edges_of(0).iter().map(|e| e.visits as usize).sum());
        }
        if let Algorithm::GumbelMuZero(g) = self.config.algorithm {
            // A fresh root gets mctx's schedule for `sims`; a reused root (subtree reuse) continues a schedule
            // stretched over the visits it already has.
            let budget = most_root_visits + sims;
            if self.table.num_simulations() != budget {
                self.table = HalvingTable::new(g.max_num_considered_actions, budget).map_err(SearchError::widen)?;
            }
        }
        loop {
            self.requests.clear();
            let mut progressed = false;
            for (ti, tree) in trees.iter_mut().enumerate() {
                let budget = self.config.leaves_per_tree.min(self.remaining[ti]);
                for _ in 0..budget {
                    match self.descend(tree) {
                        Descent::Expand { parent, action } => {
                            let node = tree.push_node(parent, action);
                            if self.config.leaves_per_tree > 1 {
                                add_virtual(tree, node as usize, 1);
                            }
                            self.requests.push(LeafRequest { tree: ti as u32, parent, action, node });
                        }
                        Descent::Revisit(node) => {
                            tree.nodes[node].visits += 1;
                            backward(tree, node);
                        }
                        Descent::Collision => break,
                    }
                    self.remaining[ti] -= 1;
                    progressed = true;
                }
            }
            if !self.requests.is_empty() {
                self.evaluate_and_apply(trees, evaluator)?;
            } else if !progressed {
                return Ok(());
            }
        }
    }

    fn evaluate_and_apply<E>(&mut self, trees: &mut [Tree<S>], evaluator: &mut E) -> Result<(), E::Error>
    where
        E: Evaluator<State = S>,
        E::Error: Debug + Display,
    {
        let a = self.num_actions;
        self.outputs.prepare(self.requests.len());
        let batch = LeafBatch { trees: &*trees, requests: &self.requests };
        evaluator.evaluate(&batch, &mut self.outputs).map_err(SearchError::Evaluator)?;
        // Validate everything before touching any tree, so a bad batch leaves no half-applied statistics.
        for (i, eval) in self.outputs.evals.iter().enumerate() {
            let eval = eval.as_ref().ok_or(SearchError::MissingEvaluation(i))?;
            if !eval.value.is_finite() {
                return Err(SearchError::NonFinite("value"));
            }
            if !(eval.reward.is_finite() && eval.discount.is_finite()) {
                return Err(SearchError::NonFinite("reward or discount"));
            }
            let logits = &self.outputs.logits[i * a..(i + 1) * a];
            let invalid = &self.outputs.invalid[i * a..(i + 1) * a];
            if logits.iter().zip(invalid).any(|(l, &bad)| !bad && !l.is_finite()) {
                return Err(SearchError::NonFinite("prior logits"));
            }
        }
        for (i, req) in self.requests.iter().enumerate() {
            let Some(eval) = self.outputs.evals[i].take() else { continue };
            let tree = &mut trees[req.tree as usize];
            let node = req.node as usize;
            let mask = self.outputs.has_invalid[i].then(|| &self.outputs.invalid[i * a..(i + 1) * a]);
            tree.set_evaluation(node, &self.outputs.logits[i * a..(i + 1) * a], mask, eval.value, eval.terminal);
            tree.states[node] = Some(eval.state);
            let edge = &mut tree.edges[req.parent as usize * a + req.action as usize];
            edge.reward = eval.reward;
            edge.discount = eval.discount;
            if self.config.leaves_per_tree > 1 {
                add_virtual(tree, node, -1);
            }
            backward(tree, node);
        }
        Ok(())
    }

    /// Re-draws the root's exploration noise from its clean logits.
    fn prepare_root(&mut self, tree: &mut Tree<S>) {
        let a = self.num_actions;
        for (e, &l) in tree.edges[..a].iter_mut().zip(&tree.root_clean_logits) {
            e.logit = l;
        }
        match self.config.algorithm {
            Algorithm::MuZero(m) => {
                if m.dirichlet_fraction > 0.0 {
                    softmax_into(&tree.root_clean_logits, &mut self.probs);
                    rng::dirichlet(&mut tree.rng, m.dirichlet_alpha, &mut self.scores);
                    let f = m.dirichlet_fraction;
                    for (i, e) in tree.edges[..a].iter_mut().enumerate() {
                        let p = (1.0 - f) * self.probs[i] + f * self.scores[i];
                        e.logit = if e.valid { libm::logf(p.max(f32::MIN_POSITIVE)) } else { f32::MIN };
                    }
                }
                tree.root_gumbel.iter_mut().for_each(|g| *g = 0.0);
            }
            Algorithm::GumbelMuZero(g) => {
                for x in tree.root_gumbel.iter_mut() {
                    *x = g.gumbel_scale * rng::gumbel(&mut tree.rng);
                }
            }
        }
        softmax_edges(&mut tree.edges[..a]);
    }

    fn descend(&mut self, tree: &Tree<S>) -> Descent {
        let max_depth = self.config.max_depth.unwrap_or(usize::MAX);
        let mut node = 0usize;
        let mut depth = 0usize;
        loop {
            if tree.nodes[node].terminal {
                return Descent::Revisit(node);
            }
            let action = self.select(tree, node, depth);
            let child = tree.edges_of(node)[action].child;
            depth += 1;
            if child == NONE {
                return Descent::Expand { parent: node as u32, action: action as u32 };
            }
            let child = child as usize;
            if tree.nodes[child].pending {
                return Descent::Collision;
            }
            if depth >= max_depth {
                return Descent::Revisit(child);
            }
            node = child;
        }
    }

    /// Copies the node's edge statistics into the scratch lanes, virtual visits included, and returns the node's
    /// (virtual-inclusive) visit count.
    fn gather(&mut self, tree: &Tree<S>, node: usize) -> f32 {
        let n = &tree.nodes[node];
        let in_flight = n.in_flight;
        for (i, e) in tree.edges_of(node).iter().enumerate() {
            let mut q = e.qvalue();
            let mut visits = e.visits as f32;
            if in_flight > 0 && e.in_flight > 0 {
                let v = e.in_flight as f32;
                q = (q * visits - self.config.virtual_loss * v) / (visits + v);
                visits += v;
            }
            self.qvalues[i] = q;
            self.visits[i] = visits;
            self.priors[i] = e.prior;
            self.logits[i] = e.logit;
            self.valid[i] = e.valid;
        }
        (n.visits + in_flight) as f32
    }

    fn transform(&mut self, node: &Node, qt: QTransform) {
        let stats = EdgeStats {
            qvalues: &self.qvalues,
            visits: &self.visits,
            priors: &self.priors,
            node_value: node.value,
            raw_value: node.raw_value,
        };
        qt.apply(&stats, &mut self.scores);
    }

    fn select(&mut self, tree: &Tree<S>, node: usize, depth: usize) -> usize {
        let node_visits = self.gather(tree, node);
        let stats = &tree.nodes[node];
        match self.config.algorithm {
            Algorithm::MuZero(m) => {
                self.transform(stats, m.qtransform);
                let pb_c = m.pb_c_init + libm::logf((node_visits + m.pb_c_base + 1.0) / m.pb_c_base);
                let c = libm::sqrtf(node_visits) * pb_c;
                for ((s, &p), &n) in self.scores.iter_mut().zip(&self.priors).zip(&self.visits) {
                    *s += c * p / (n + 1.0);
                }
            }
            Algorithm::GumbelMuZero(g) if depth == 0 => {
                self.transform(stats, g.qtransform);
                let num_valid = self.valid.iter().filter(|&&v| v).count();
                let considered = g.max_num_considered_actions.min(num_valid);
                let simulation: f32 = self.visits.iter().sum();
                let considered_visit = self.table.get(considered, simulation as usize) as f32;
                score_considered(considered_visit, &tree.root_gumbel, &self.logits, &self.visits, &mut self.scores);
            }
            Algorithm::GumbelMuZero(g) => {
                self.transform(stats, g.qtransform);
                // The deterministic selection of "Policy improvement by planning with Gumbel", section 5:
                // argmax(pi'(a) - N(a) / (1 + sum N)) makes visit frequencies track the improved policy pi'.
                for ((p, &l), &q) in self.probs.iter_mut().zip(&self.logits).zip(&self.scores) {
                    *p = l + q;
                }
                softmax_into(&self.probs, &mut self.scores);
                let total: f32 = self.visits.iter().sum();
                for (s, &n) in self.scores.iter_mut().zip(&self.visits) {
                    *s -= n / (1.0 + total);
                }
            }
        }
        masked_argmax(&self.scores, &self.valid)
    }

    /// The action to play and the policy target at the root of a searched tree.
    pub fn policy(&mut self, tree: &mut Tree<S>) -> Result<PolicyOutput> {
        if tree.is_empty() {
            return Err(SearchError::EmptyTree);
        }
        let a = self.num_actions;
        if tree.num_actions != a {
            return Err(SearchError::Shape { what: "tree num_actions", expected: a, got: tree.num_actions });
        }
        self.gather(tree, 0);
        let root = tree.nodes[0];
        let mut weights = alloc::vec![0.0f32; a];
        let action = match self.config.algorithm {
            Algorithm::MuZero(m) => {
                let total: f32 = self.visits.iter().sum();
                for (w, &n) in weights.iter_mut().zip(&self.visits) {
                    *w = if total > 0.0 { n / total } else { 1.0 / a as f32 };
                }
                self.act_with_temperature(tree, &weights, m.temperature)
            }
            Algorithm::GumbelMuZero(g) => {
                self.transform(&root, g.qtransform);
                // Improved policy target: softmax over valid actions of logits + completed Q.
                for i in 0..a {
                    self.probs[i] = if self.valid[i] { self.logits[i] + self.scores[i] } else { f32::MIN };
                }
                softmax_into(&self.probs, &mut weights);
                let considered_visit = self.visits.iter().copied().fold(0.0, f32::max);
                score_considered(considered_visit, &tree.root_gumbel, &self.logits, &self.visits, &mut self.scores);
                masked_argmax(&self.scores, &self.valid)
            }
        };
        Ok(PolicyOutput { action, action_weights: weights, value: root.value })
    }

    /// Samples proportionally to `weights^(1 / temperature)` over valid actions; greedy at temperature 0.
    fn act_with_temperature(&mut self, tree: &mut Tree<S>, weights: &[f32], temperature: f32) -> usize {
        if temperature <= f32::MIN_POSITIVE {
            return masked_argmax(weights, &self.valid);
        }
        let max = weights.iter().copied().fold(0.0f32, f32::max);
        for ((p, &w), &ok) in self.probs.iter_mut().zip(weights).zip(&self.valid) {
            *p = if ok && w > 0.0 { libm::powf(w / max, 1.0 / temperature) } else { 0.0 };
        }
        rng::categorical(&mut tree.rng, &self.probs).unwrap_or_else(|| masked_argmax(weights, &self.valid))
    }
}

/// mctx `score_considered`: `max(-1e9, gumbel + logits - max(logits) + q)` where the action's visit count equals
/// the considered visit count, `-inf` elsewhere. `scores` holds the completed Q on entry.
fn score_considered(considered_visit: f32, gumbel: &[f32], logits: &[f32], visits: &[f32], scores: &mut [f32]) {
    let max_logit = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for i in 0..scores.len() {
        scores[i] = if visits[i] == considered_visit {
            (gumbel[i] + (logits[i] - max_logit) + scores[i]).max(-1e9)
        } else {
            f32::NEG_INFINITY
        };
    }
}

/// The first valid index with the largest score; the first valid index when every valid score is `-inf`.
///
/// mctx's PUCT adds `1e-7 * uniform` noise to break ties at random; we break ties by the lowest index, so a
/// search is a pure function of its inputs and seed. The recorded mctx trees contain no decision within 1e-7
/// of a tie: they replay exactly.
fn masked_argmax(scores: &[f32], valid: &[bool]) -> usize {
    let mut best = usize::MAX;
    let mut best_score = f32::NEG_INFINITY;
    for (i, (&s, &ok)) in scores.iter().zip(valid).enumerate() {
        if ok && (s > best_score || best == usize::MAX) {
            best = i;
            best_score = s;
        }
    }
    if best == usize::MAX { 0 } else { best }
}

/// Adds (`delta = 1`) or removes (`-1`) one virtual visit on every edge from the root down to `node`.
fn add_virtual<S>(tree: &mut Tree<S>, node: usize, delta: i32) {
    let a = tree.num_actions;
    let mut idx = node;
    loop {
        let Node { parent, action, .. } = tree.nodes[idx];
        if parent == NONE {
            break;
        }
        let p = parent as usize;
        let e = &mut tree.edges[p * a + action as usize];
        e.in_flight = e.in_flight.wrapping_add_signed(delta);
        let n = &mut tree.nodes[p];
        n.in_flight = n.in_flight.wrapping_add_signed(delta);
        idx = p;
    }
}

/// mctx `backward`: propagates `G = reward + discount * G` from `leaf` to the root, updating running means.
fn backward<S>(tree: &mut Tree<S>, leaf: usize) {
    let a = tree.num_actions;
    let mut g = tree.nodes[leaf].value;
    let mut child_value = g;
    let mut idx = leaf;
    loop {
        let Node { parent, action, .. } = tree.nodes[idx];
        if parent == NONE {
            break;
        }
        let p = parent as usize;
        let e = &mut tree.edges[p * a + action as usize];
        g = e.reward + e.discount * g;
        e.value = child_value;
        e.visits += 1;
        let n = &mut tree.nodes[p];
        let count = n.visits as f32;
        n.value = (n.value * count + g) / (count + 1.0);
        n.visits += 1;
        child_value = n.value;
        idx = p;
    }
}
