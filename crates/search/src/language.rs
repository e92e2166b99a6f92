//! Search over reasoning steps, where actions are not enumerable: expanding a node samples up to K candidate
//! next steps from the policy (the RL loop's transformer: a step is text up to a newline), identical candidates
//! merge with their prior mass added, and a terminal step's solution is scored by a verifier when one is
//! available, else by the value model. [`StepSearch`] turns a [`StepModel`] into an [`Evaluator`], so the same
//! MCTS / Gumbel MuZero engine that plays board games searches over reasoning steps (K action slots per node).

use alloc::vec::Vec;
use core::fmt::{Debug, Display};

use crate::error::{Result, SearchError};
use crate::evaluator::{Evaluation, Evaluator, LeafBatch, LeafOutputs};
use crate::tree::{RootOutput, Tree};

/// One sampled next step.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<T> {
    /// The step (text, tokens, ...).
    pub step: T,
    /// Prior mass of the sample: 1 per sample gives visit-frequency priors, `exp(logprob)` sequence probabilities.
    /// Identical candidates of one node merge and their weights add.
    pub weight: f32,
    /// Whether the step ends the solution (it states the final answer, or hit a length limit).
    pub terminal: bool,
}

/// The caller's policy, value model and (optional) verifier over step sequences `&[T]`.
///
/// Sampling randomness belongs to the implementation: seed it per prefix (for example from a hash of the prefix
/// and a run seed) so that results do not depend on how prefixes are batched.
pub trait StepModel {
    /// One reasoning step (a line of text, a token sequence, ...).
    type Step: Clone + PartialEq;
    /// The model's failure type.
    type Error: Debug + Display;

    /// For each prefix, writes up to `k` sampled candidate next steps into `out[i]` (empty beforehand).
    fn propose(
        &mut self,
        prefixes: &[&[Self::Step]],
        k: usize,
        out: &mut [Vec<Candidate<Self::Step>>],
    ) -> core::result::Result<(), Self::Error>;

    /// For each prefix, writes a value / process-reward score into `out[i]`.
    fn value(&mut self, prefixes: &[&[Self::Step]], out: &mut [f32]) -> core::result::Result<(), Self::Error>;

    /// Scores a complete solution with a verifier, or `None` when no verifier is available (the value model
    /// then scores it). The default has no verifier.
    fn verify(&mut self, _solution: &[Self::Step]) -> Option<f32> {
        None
    }
}

/// Merges identical steps (their weights add), keeping first-appearance order, at most `k` distinct steps.
pub fn merge_candidates<T: PartialEq>(candidates: &mut Vec<Candidate<T>>, k: usize) {
    let mut merged: Vec<Candidate<T>> = Vec::with_capacity(candidates.len());
    for c in candidates.drain(..) {
        match merged.iter_mut().find(|m| m.step == c.step) {
            Some(m) => {
                m.weight += c.weight;
                m.terminal |= c.terminal;
            }
            None => merged.push(c),
        }
    }
    merged.truncate(k);
    *candidates = merged;
}

/// A node's state in a step search: the steps so far and the candidate next steps (one per action slot).
#[derive(Debug, Clone, PartialEq)]
pub struct StepState<T> {
    /// The solution so far.
    pub steps: Vec<T>,
    /// Action `a` appends `candidates[a]`; slots past the end are invalid.
    pub candidates: Vec<Candidate<T>>,
}

/// Adapts a [`StepModel`] into an [`Evaluator`] with `k` action slots per node (single agent: discount 1,
/// reward 0, a terminal solution's value is its verifier score, else its value-model score). The root may sample
/// more candidates than the inner nodes ([`StepSearch::with_root_candidates`]): the tree then has that many
/// slots, of which inner nodes use the first `k`.
#[derive(Debug)]
pub struct StepSearch<M> {
    model: M,
    k: usize,
    root_k: usize,
}

impl<M> StepSearch<M> {
    /// Wraps `model`, sampling `k` candidates per expanded node.
    pub fn new(model: M, k: usize) -> Result<Self> {
        Self::with_root_candidates(model, k, k)
    }

    /// Wraps `model`, sampling `root_k` candidates at the root and `k` at every other node: a root that widens
    /// with the budget keeps a search finding new first steps once the narrow subtrees are full (Gumbel's
    /// considered set at the root, as in Danihelka et al. 2022).
    pub fn with_root_candidates(model: M, k: usize, root_k: usize) -> Result<Self> {
        if k == 0 || root_k == 0 {
            return Err(SearchError::InvalidConfig("k (candidates per node) must be at least 1"));
        }
        Ok(Self { model, k, root_k })
    }

    /// Number of action slots per node (the larger of the root's and the other nodes' candidates); trees and
    /// [`crate::Search`] must be built with it.
    pub fn num_actions(&self) -> usize {
        self.k.max(self.root_k)
    }

    /// The wrapped model.
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Evaluates `prefix` as the root (proposals + value) and resets `tree` to it.
    pub fn reset_root(&mut self, tree: &mut Tree<StepState<M::Step>>, prefix: Vec<M::Step>) -> Result<(), M::Error>
    where
        M: StepModel,
    {
        let slots = self.num_actions();
        if tree.num_actions() != slots {
            return Err(SearchError::Shape { what: "tree num_actions", expected: slots, got: tree.num_actions() });
        }
        let mut proposals = alloc::vec![Vec::new()];
        let mut value = [0.0f32];
        self.model.propose(&[&prefix], self.root_k, &mut proposals).map_err(SearchError::Evaluator)?;
        self.model.value(&[&prefix], &mut value).map_err(SearchError::Evaluator)?;
        let mut candidates = proposals.pop().unwrap_or_default();
        merge_candidates(&mut candidates, self.root_k);
        let mut logits = alloc::vec![0.0f32; slots];
        let mut invalid = alloc::vec![true; slots];
        fill_priors(&candidates, &mut logits, &mut invalid);
        let state = StepState { steps: prefix, candidates };
        let root = RootOutput { state, prior_logits: &logits, value: value[0], invalid_actions: Some(&invalid) };
        tree.reset(root).map_err(SearchError::widen)
    }
}

/// Prior logits `ln(weight)` for the candidates, invalid for empty slots and non-positive weights.
fn fill_priors<T>(candidates: &[Candidate<T>], logits: &mut [f32], invalid: &mut [bool]) {
    for (slot, (l, bad)) in logits.iter_mut().zip(invalid.iter_mut()).enumerate() {
        match candidates.get(slot) {
            Some(c) if c.weight > 0.0 && c.weight.is_finite() => {
                *l = libm::logf(c.weight);
                *bad = false;
            }
            _ => {
                *l = 0.0;
                *bad = true;
            }
        }
    }
}

impl<M: StepModel> Evaluator for StepSearch<M> {
    type State = StepState<M::Step>;
    type Error = SearchError<M::Error>;

    fn evaluate(
        &mut self,
        leaves: &LeafBatch<'_, Self::State>,
        out: &mut LeafOutputs<Self::State>,
    ) -> core::result::Result<(), Self::Error> {
        // Build each leaf's solution so far; terminal steps are scored now, the others batched below.
        let mut prefixes: Vec<Vec<M::Step>> = Vec::with_capacity(leaves.len());
        let mut terminal: Vec<bool> = Vec::with_capacity(leaves.len());
        for leaf in leaves.iter() {
            let c = leaf
                .parent
                .candidates
                .get(leaf.action)
                .ok_or(SearchError::InvalidAction { action: leaf.action, num_actions: leaf.parent.candidates.len() })?;
            let mut steps = leaf.parent.steps.clone();
            steps.push(c.step.clone());
            prefixes.push(steps);
            terminal.push(c.terminal);
        }
        let open: Vec<&[M::Step]> =
            prefixes.iter().zip(&terminal).filter(|(_, t)| !**t).map(|(p, _)| p.as_slice()).collect();
        let mut proposals: Vec<Vec<Candidate<M::Step>>> = (0..open.len()).map(|_| Vec::new()).collect();
        if !open.is_empty() {
            self.model.propose(&open, self.k, &mut proposals).map_err(SearchError::Evaluator)?;
        }
        // Terminal solutions without a verifier score fall back to the value model, batched with the rest.
        let mut verified: Vec<Option<f32>> = Vec::with_capacity(prefixes.len());
        for (p, &t) in prefixes.iter().zip(&terminal) {
            verified.push(if t { self.model.verify(p) } else { None });
        }
        let need_value: Vec<&[M::Step]> =
            prefixes.iter().zip(&verified).filter(|(_, v)| v.is_none()).map(|(p, _)| p.as_slice()).collect();
        let mut values = alloc::vec![0.0f32; need_value.len()];
        if !need_value.is_empty() {
            self.model.value(&need_value, &mut values).map_err(SearchError::Evaluator)?;
        }
        let (mut next_open, mut next_value) = (proposals.into_iter(), values.into_iter());
        let mut logits = alloc::vec![0.0f32; self.num_actions()];
        let mut invalid = alloc::vec![true; self.num_actions()];
        for (i, ((steps, is_terminal), verified)) in prefixes.into_iter().zip(terminal).zip(verified).enumerate() {
            let value = match verified {
                Some(v) => v,
                None => next_value.next().unwrap_or(0.0),
            };
            let mut candidates = if is_terminal { Vec::new() } else { next_open.next().unwrap_or_default() };
            merge_candidates(&mut candidates, self.k);
            fill_priors(&candidates, &mut logits, &mut invalid);
            // A non-terminal step whose policy proposed nothing cannot be continued: treat it as terminal.
            let terminal = is_terminal || candidates.is_empty();
            let eval =
                Evaluation { state: StepState { steps, candidates }, reward: 0.0, discount: 1.0, value, terminal };
            out.set_masked(i, eval, &logits, &invalid).map_err(SearchError::widen)?;
        }
        Ok(())
    }
}

/// The solution the search recommends: from the root, repeatedly the most visited child, down to the deepest
/// expanded node on that path. Returns its steps and whether it is terminal.
pub fn most_visited_path<T: Clone>(tree: &Tree<StepState<T>>) -> Option<(Vec<T>, bool)> {
    let mut node = 0usize;
    loop {
        let best = (0..tree.num_actions())
            .filter_map(|a| tree.child(node, a).map(|c| (c, tree.visit_count(c).unwrap_or(0))))
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)));
        match best {
            Some((child, _)) => node = child,
            None => break,
        }
    }
    tree.state(node).map(|s| (s.steps.clone(), tree.is_terminal(node)))
}
