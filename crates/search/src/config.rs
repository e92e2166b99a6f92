//! Search configuration, with mctx's defaults.

use crate::error::{Result, SearchError};
use crate::qtransform::QTransform;

/// MuZero / AlphaZero PUCT search (mctx `muzero_policy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MuZeroConfig {
    /// `c_1` of the PUCT formula.
    pub pb_c_init: f32,
    /// `c_2` of the PUCT formula.
    pub pb_c_base: f32,
    /// How Q-values become scores in [0, 1].
    pub qtransform: QTransform,
    /// Weight of the Dirichlet noise mixed into the root prior (0 disables it).
    pub dirichlet_fraction: f32,
    /// Concentration of the Dirichlet noise.
    pub dirichlet_alpha: f32,
    /// Acting temperature: the action is sampled proportionally to `visits^(1/temperature)`; 0 is greedy.
    pub temperature: f32,
}

impl Default for MuZeroConfig {
    fn default() -> Self {
        Self {
            pb_c_init: 1.25,
            pb_c_base: 19652.0,
            qtransform: QTransform::PARENT_AND_SIBLINGS,
            dirichlet_fraction: 0.25,
            dirichlet_alpha: 0.3,
            temperature: 1.0,
        }
    }
}

/// Gumbel MuZero search (mctx `gumbel_muzero_policy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GumbelConfig {
    /// Actions sampled without replacement at the root and then halved by Sequential Halving.
    pub max_num_considered_actions: usize,
    /// Scale of the root Gumbel noise (0 for deterministic evaluation play).
    pub gumbel_scale: f32,
    /// How Q-values are completed and scaled (normally [`QTransform::CompletedByMixValue`]).
    pub qtransform: QTransform,
}

impl Default for GumbelConfig {
    fn default() -> Self {
        Self { max_num_considered_actions: 16, gumbel_scale: 1.0, qtransform: QTransform::COMPLETED_BY_MIX_VALUE }
    }
}

/// Which search runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// PUCT selection everywhere.
    MuZero(MuZeroConfig),
    /// Gumbel + Sequential Halving at the root, deterministic improved-policy matching below it.
    GumbelMuZero(GumbelConfig),
}

/// Everything a search needs besides the trees and the evaluator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Simulations (leaf evaluations or terminal revisits) per tree and run.
    pub num_simulations: usize,
    /// Maximum number of edges from the root to a leaf; a simulation reaching it backs up the node it stopped at.
    pub max_depth: Option<usize>,
    /// Leaves gathered from one tree per evaluator call, spread by virtual loss. 1 reproduces mctx exactly.
    pub leaves_per_tree: usize,
    /// Value assumed for an in-flight simulation (from the acting player's view) while its leaf is evaluated.
    pub virtual_loss: f32,
    /// Seed of every random draw (noise, acting); tree `i` of a batch uses stream `first_stream + i`.
    pub seed: u64,
    /// The algorithm and its constants.
    pub algorithm: Algorithm,
}

impl SearchConfig {
    /// A MuZero search with mctx's defaults and `num_simulations` simulations.
    pub fn muzero(num_simulations: usize) -> Self {
        Self::with_algorithm(num_simulations, Algorithm::MuZero(MuZeroConfig::default()))
    }

    /// A Gumbel MuZero search with mctx's defaults and `num_simulations` simulations.
    pub fn gumbel(num_simulations: usize) -> Self {
        Self::with_algorithm(num_simulations, Algorithm::GumbelMuZero(GumbelConfig::default()))
    }

    fn with_algorithm(num_simulations: usize, algorithm: Algorithm) -> Self {
        Self { num_simulations, max_depth: None, leaves_per_tree: 1, virtual_loss: 1.0, seed: 0, algorithm }
    }

    /// Checks every constant's domain.
    pub fn validate(&self) -> Result<()> {
        let bad = |m| Err(SearchError::InvalidConfig(m));
        if self.leaves_per_tree == 0 {
            return bad("leaves_per_tree must be at least 1");
        }
        if self.max_depth == Some(0) {
            return bad("max_depth must be at least 1");
        }
        if !self.virtual_loss.is_finite() {
            return bad("virtual_loss must be finite");
        }
        let qt = match self.algorithm {
            Algorithm::MuZero(m) => {
                if !(m.pb_c_init.is_finite() && m.pb_c_base.is_finite() && m.pb_c_base > 0.0) {
                    return bad("pb_c_init must be finite and pb_c_base positive");
                }
                if !(0.0..=1.0).contains(&m.dirichlet_fraction) {
                    return bad("dirichlet_fraction must be in [0, 1]");
                }
                if m.dirichlet_fraction > 0.0 && !(m.dirichlet_alpha > 0.0 && m.dirichlet_alpha.is_finite()) {
                    return bad("dirichlet_alpha must be positive");
                }
                if !(m.temperature >= 0.0 && m.temperature.is_finite()) {
                    return bad("temperature must be finite and non-negative");
                }
                m.qtransform
            }
            Algorithm::GumbelMuZero(g) => {
                if g.max_num_considered_actions == 0 {
                    return bad("max_num_considered_actions must be at least 1");
                }
                if !(g.gumbel_scale >= 0.0 && g.gumbel_scale.is_finite()) {
                    return bad("gumbel_scale must be finite and non-negative");
                }
                g.qtransform
            }
        };
        match qt {
            QTransform::MinMax { min_value, max_value }
                if !(min_value.is_finite() && max_value.is_finite() && min_value < max_value) =>
            {
                bad("MinMax needs finite min_value < max_value")
            }
            QTransform::ParentAndSiblings { epsilon } if epsilon.is_nan() || epsilon <= 0.0 => {
                bad("epsilon must be positive")
            }
            QTransform::CompletedByMixValue { value_scale, maxvisit_init, epsilon, .. }
                if !(epsilon > 0.0 && value_scale.is_finite() && maxvisit_init.is_finite()) =>
            {
                bad("completed-by-mix-value constants must be finite, epsilon positive")
            }
            _ => Ok(()),
        }
    }
}
