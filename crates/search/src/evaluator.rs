//! The seam between a search and the caller's model: a batch of leaves to evaluate, and the outputs to fill.
//!
//! A leaf is "the state reached by taking `action` from `parent`". The evaluator returns the new state, the
//! reward of the transition, the discount (use `-1` for two-player zero-sum games, where every value is from the
//! point of view of the player to move), the value of the new state, whether it is terminal, and prior logits
//! over its actions. One call evaluates many leaves (of one tree, via virtual loss, and of many trees).

use alloc::vec::Vec;
use core::fmt::{Debug, Display};

use crate::error::{Result, SearchError};
use crate::tree::Tree;

/// The scalar outputs of evaluating one leaf, and the state it reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<S> {
    /// The state reached.
    pub state: S,
    /// Reward for the transition, from the point of view of the player who acted.
    pub reward: f32,
    /// Discount applied to the new state's value (`-1` in two-player zero-sum games; `0` after a terminal step
    /// if the terminal value should not count).
    pub discount: f32,
    /// Value of the new state from the point of view of the player to move there.
    pub value: f32,
    /// A terminal state is never expanded; later simulations reaching it back up its value again.
    pub terminal: bool,
}

/// One requested leaf (indices into the trees handed to the search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeafRequest {
    pub tree: u32,
    pub parent: u32,
    pub action: u32,
    pub node: u32,
}

/// A read-only batch of leaves to evaluate.
#[derive(Debug)]
pub struct LeafBatch<'a, S> {
    pub(crate) trees: &'a [Tree<S>],
    pub(crate) requests: &'a [LeafRequest],
}

/// One leaf of a [`LeafBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'a, S> {
    /// Which tree of the batch handed to the search the leaf belongs to.
    pub tree: usize,
    /// The state the action is taken from.
    pub parent: &'a S,
    /// The action taken.
    pub action: usize,
    /// The id the new node will have in its tree.
    pub node: usize,
}

impl<'a, S> LeafBatch<'a, S> {
    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Leaf `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<Leaf<'a, S>> {
        let r = self.requests.get(i)?;
        let tree = self.trees.get(r.tree as usize)?;
        let parent = tree.state(r.parent as usize)?;
        Some(Leaf { tree: r.tree as usize, parent, action: r.action as usize, node: r.node as usize })
    }

    /// The leaves in order; evaluation `i` of [`LeafOutputs`] belongs to the `i`-th.
    pub fn iter(&self) -> impl Iterator<Item = Leaf<'a, S>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// The outputs an evaluator fills, one slot per leaf. Buffers are reused from call to call.
#[derive(Debug)]
pub struct LeafOutputs<S> {
    num_actions: usize,
    pub(crate) logits: Vec<f32>,
    pub(crate) invalid: Vec<bool>,
    pub(crate) has_invalid: Vec<bool>,
    pub(crate) evals: Vec<Option<Evaluation<S>>>,
}

impl<S> LeafOutputs<S> {
    pub(crate) fn new(num_actions: usize) -> Self {
        Self { num_actions, logits: Vec::new(), invalid: Vec::new(), has_invalid: Vec::new(), evals: Vec::new() }
    }

    pub(crate) fn prepare(&mut self, len: usize) {
        let a = self.num_actions;
        self.logits.clear();
        self.logits.resize(len * a, 0.0);
        self.invalid.clear();
        self.invalid.resize(len * a, false);
        self.has_invalid.clear();
        self.has_invalid.resize(len, false);
        self.evals.clear();
        self.evals.resize_with(len, || None);
    }

    /// Number of action slots per leaf.
    pub fn num_actions(&self) -> usize {
        self.num_actions
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.evals.len()
    }

    /// Whether there is no leaf.
    pub fn is_empty(&self) -> bool {
        self.evals.is_empty()
    }

    /// Sets leaf `i`'s evaluation and copies its prior logits (all actions valid).
    pub fn set(&mut self, i: usize, eval: Evaluation<S>, prior_logits: &[f32]) -> Result<()> {
        self.set_with(i, eval, |logits, _| logits.copy_from_slice(prior_logits), prior_logits.len())
    }

    /// Sets leaf `i`'s evaluation and its prior logits and invalid-action mask (`true` = invalid).
    pub fn set_masked(&mut self, i: usize, eval: Evaluation<S>, prior_logits: &[f32], invalid: &[bool]) -> Result<()> {
        if invalid.len() != self.num_actions {
            return Err(SearchError::Shape { what: "invalid_actions", expected: self.num_actions, got: invalid.len() });
        }
        self.set_with(
            i,
            eval,
            |logits, mask| {
                logits.copy_from_slice(prior_logits);
                mask.copy_from_slice(invalid);
            },
            prior_logits.len(),
        )?;
        if let Some(h) = self.has_invalid.get_mut(i) {
            *h = true;
        }
        Ok(())
    }

    /// Sets leaf `i`'s evaluation and lets `fill` write its logits and invalid mask in place (no copy):
    /// `fill(logits, invalid)` receives slices of length `num_actions`, the mask pre-set to all valid.
    pub fn fill(&mut self, i: usize, eval: Evaluation<S>, fill: impl FnOnce(&mut [f32], &mut [bool])) -> Result<()> {
        self.set_with(i, eval, fill, self.num_actions)?;
        if let Some(h) = self.has_invalid.get_mut(i) {
            *h = true;
        }
        Ok(())
    }

    fn set_with(
        &mut self,
        i: usize,
        eval: Evaluation<S>,
        fill: impl FnOnce(&mut [f32], &mut [bool]),
        len: usize,
    ) -> Result<()> {
        let a = self.num_actions;
        if len != a {
            return Err(SearchError::Shape { what: "prior_logits", expected: a, got: len });
        }
        let batch = self.evals.len();
        let slot = self.evals.get_mut(i).ok_or(SearchError::Shape {
            what: "leaf index (batch length)",
            expected: batch,
            got: i,
        })?;
        *slot = Some(eval);
        let (logits, mask) = (&mut self.logits[i * a..(i + 1) * a], &mut self.invalid[i * a..(i + 1) * a]);
        fill(logits, mask);
        Ok(())
    }
}

/// The caller's model: evaluates a batch of leaves in one call.
pub trait Evaluator {
    /// The state stored at each node.
    type State;
    /// The evaluator's own failure type, passed through [`SearchError::Evaluator`].
    type Error: Debug + Display;

    /// Fills `out` (one slot per leaf, in order) for every leaf of `leaves`.
    fn evaluate(
        &mut self,
        leaves: &LeafBatch<'_, Self::State>,
        out: &mut LeafOutputs<Self::State>,
    ) -> core::result::Result<(), Self::Error>;
}
