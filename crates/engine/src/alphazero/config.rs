//! An AlphaZero run's settings, as one TOML file (every field has a default; a file overrides any subset).

use std::path::Path;

use selfplay_model::{Architecture, ModelConfig};
use selfplay_search::config::{Algorithm, GumbelConfig, MuZeroConfig};
use selfplay_search::{Game, SearchConfig};
use serde::{Deserialize, Serialize};

use super::net::TokenLayout;
use crate::config_file::{TomlFileError, read_toml};

/// A setting outside its valid range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AlphaZero setting `{name}`: {reason}")]
pub struct AlphaZeroConfigError {
    /// The setting.
    pub name: &'static str,
    /// Why it is refused.
    pub reason: &'static str,
}

/// A config file that cannot be read or cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] TomlFileError),
    /// A setting is out of range.
    #[error(transparent)]
    Invalid(#[from] AlphaZeroConfigError),
}

/// Which tree search plays and makes the policy targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// Gumbel MuZero: Sequential Halving over Gumbel-sampled root actions; targets are the improved policy
    /// `softmax(logits + σ(completed Q))`, good at small budgets.
    Gumbel,
    /// AlphaZero's PUCT with Dirichlet noise at the root; targets are the visit frequencies.
    Puct,
}

/// The policy-value network: the transformer reading the board as tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetShape {
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate_size: usize,
    /// One token per (cell, state) pair instead of one per state, so each cell's embedding carries its place
    /// ([`TokenLayout`]); networks learn board patterns far faster this way.
    pub placed_tokens: bool,
    /// One query token per action after the board, each action's logit read at its own query instead of all
    /// of them at the board's last cell ([`TokenLayout`]).
    pub action_queries: bool,
}

impl NetShape {
    /// How the network reads an observation.
    pub fn token_layout(&self) -> TokenLayout {
        TokenLayout { placed: self.placed_tokens, action_queries: self.action_queries }
    }
}

impl Default for NetShape {
    fn default() -> Self {
        NetShape {
            hidden_size: 64,
            layers: 2,
            heads: 4,
            intermediate_size: 128,
            placed_tokens: true,
            action_queries: false,
        }
    }
}

/// How games are played against oneself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfPlaySettings {
    /// Games played at once per iteration, each with its own tree; every leaf of every tree is evaluated in
    /// one batched forward pass.
    pub games: usize,
    pub search: SearchKind,
    /// Simulations of a full search (its root policy becomes a training target).
    pub simulations: usize,
    /// Simulations of a fast search (playout-cap randomisation, KataGo: fast searches only choose the move and
    /// give no policy target); equal to `simulations` to switch it off.
    pub fast_simulations: usize,
    /// Probability that a move gets a full search.
    pub full_search_probability: f64,
    /// Gumbel: root actions considered (sampled without replacement, then halved).
    pub considered_actions: usize,
    /// Moves chosen by the search's own stochastic choice (Gumbel's noisy Sequential Halving winner, PUCT's
    /// visit-proportional sample); later moves take the improved policy's most likely action.
    pub sampled_plies: usize,
    /// Uniformly random moves opening every game (diversity; they give no training target): a number (`2`), or
    /// a range drawn anew for each game (`[0, 14]`), so that self-play also starts from the odd positions random
    /// play reaches.
    pub random_opening_plies: OpeningPlies,
    /// Keep the chosen child's subtree for the next move (PUCT only: Gumbel's Sequential Halving schedules a
    /// fresh budget from an unvisited root).
    pub reuse_tree: bool,
    /// Score positions where the player to move wins at once as won, with the prior on the winning moves
    /// (`selfplay_search::decisive`), in every search of the run and of its agent: the search then blocks
    /// immediate threats and takes immediate wins whatever the network's prior says. The network alone
    /// (0 simulations) is never helped.
    pub decisive_moves: bool,
}

impl Default for SelfPlaySettings {
    fn default() -> Self {
        SelfPlaySettings {
            games: 128,
            search: SearchKind::Gumbel,
            simulations: 32,
            fast_simulations: 8,
            full_search_probability: 0.25,
            considered_actions: 16,
            sampled_plies: 8,
            random_opening_plies: OpeningPlies::Exactly(2),
            reuse_tree: true,
            decisive_moves: true,
        }
    }
}

/// How many uniformly random plies open a self-play game: written as a number or as `[fewest, most]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OpeningPlies {
    /// Every game opens with this many.
    Exactly(usize),
    /// Each game opens with a number drawn uniformly from `[fewest, most]` (inclusive) by its own generator.
    Between([usize; 2]),
}

impl OpeningPlies {
    /// The fewest plies a game may open with.
    pub fn fewest(self) -> usize {
        match self {
            OpeningPlies::Exactly(n) => n,
            OpeningPlies::Between([fewest, _]) => fewest,
        }
    }

    /// The plies one game opens with; a range takes one draw of `rng`, a number none (so a fixed opening
    /// leaves the game's random stream as it was).
    pub fn draw(self, rng: &mut impl rand_core::Rng) -> usize {
        match self {
            OpeningPlies::Exactly(n) => n,
            OpeningPlies::Between([fewest, most]) => {
                let span = most.saturating_sub(fewest) as u64 + 1;
                fewest + (rng.next_u64() % span) as usize
            }
        }
    }
}

/// How the network learns from the replay window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnSettings {
    /// Optimizer updates after each iteration's games.
    pub updates_per_iteration: usize,
    pub batch_size: usize,
    /// Peak learning rate (warm-up over the first 5% of updates, cosine decay after).
    pub lr: f32,
    pub weight_decay: f32,
    /// Positions kept: the newest this many.
    pub replay_window: usize,
    /// Weight of the value regression beside the policy cross-entropy.
    pub value_coef: f32,
    /// Train on each drawn position or, with probability ½, its mirror image (for games with a mirror).
    pub mirror: bool,
    /// Weight `w` of the search's root value in the value target `(1 − w)·z + w·q`, beside the game's result
    /// `z`. Early in training most results are decided by blunders long after the position, so `z` alone is
    /// mostly noise; the search's value `q` is a lower-variance, biased estimate (averaging the two helped on
    /// Connect Four in Oracle's "Lessons from AlphaZero").
    pub search_value_weight: f32,
}

impl Default for LearnSettings {
    fn default() -> Self {
        LearnSettings {
            updates_per_iteration: 64,
            batch_size: 256,
            lr: 2e-3,
            weight_decay: 1e-4,
            replay_window: 50_000,
            value_coef: 1.0,
            mirror: true,
            search_value_weight: 0.0,
        }
    }
}

/// Matches against fixed opponents along the way (the train-time curve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArenaSettings {
    /// A match every this many iterations (and after the last).
    pub every: u64,
    /// Games per match against each fixed opponent (and per pair of the opponents' round robin), half with each
    /// colour. The default, 20 games against each of 6 opponents every 5 iterations, costs about 15% of the
    /// default run's time (measured: the 120 games take about as long as one iteration's self-play).
    pub games: usize,
    /// Simulations of the agent's search in a match (0: the network alone, its most likely legal move).
    pub simulations: usize,
    /// Search budgets of the final test-time curve on the game's labelled positions (0: the network alone).
    pub test_time_simulations: Vec<usize>,
    /// Depths of the alpha-beta opponents (Connect Four), besides the random player; rated once per run by a
    /// round robin of `games` games a pair.
    pub alphabeta_depths: Vec<u32>,
    /// Uniformly random plies opening every match game (each opening played once from each side), so that
    /// deterministic opponents give varied games.
    pub opening_plies: usize,
    /// The league: each arena point's network is kept in the run's `arena/` folder and plays `games` games
    /// against each of the networks of this many arena points before it, so that the report can rate every
    /// point from its games against the others as well as the fixed opponents (0: no league).
    pub league: usize,
}

impl Default for ArenaSettings {
    fn default() -> Self {
        ArenaSettings {
            every: 5,
            games: 20,
            simulations: 32,
            test_time_simulations: vec![0, 2, 8, 32, 128, 600],
            alphabeta_depths: vec![1, 2, 3, 5, 7],
            opening_plies: 2,
            league: 2,
        }
    }
}

/// Checkpoint cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSettings {
    pub every: u64,
    pub keep: usize,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings { every: 5, keep: 2 }
    }
}

/// Everything an AlphaZero run needs besides the game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlphaZeroConfig {
    /// Seeds the network's initialisation, every game and every batch.
    pub seed: u64,
    /// Self-play then learning, this many times.
    pub iterations: u64,
    pub net: NetShape,
    pub selfplay: SelfPlaySettings,
    pub learn: LearnSettings,
    pub arena: ArenaSettings,
    pub checkpoint: CheckpointSettings,
}

impl Default for AlphaZeroConfig {
    fn default() -> Self {
        AlphaZeroConfig {
            seed: 1,
            iterations: 100,
            net: NetShape::default(),
            selfplay: SelfPlaySettings::default(),
            learn: LearnSettings::default(),
            arena: ArenaSettings::default(),
            checkpoint: CheckpointSettings::default(),
        }
    }
}

fn check(ok: bool, name: &'static str, reason: &'static str) -> Result<(), AlphaZeroConfigError> {
    if ok { Ok(()) } else { Err(AlphaZeroConfigError { name, reason }) }
}

impl AlphaZeroConfig {
    /// The Connect Four demo (`selfplay demo --game connect4`): the defaults cut to 40 iterations (5 120 games),
    /// about 10 minutes on 2 quiet cores (README), within the 15 the demo may take.
    pub fn connect4_demo() -> Self {
        AlphaZeroConfig { iterations: 40, ..AlphaZeroConfig::default() }
    }

    /// The long Connect Four run (`selfplay demo --game connect4 --full`, the run behind `models/connect4`): the
    /// defaults for 400 iterations (51 200 games, about 85 minutes on 2 quiet cores), matched against the fixed
    /// opponents every 10 iterations instead of 5 so the arena stays a small share of the run.
    pub fn connect4_full() -> Self {
        let defaults = AlphaZeroConfig::default();
        AlphaZeroConfig { iterations: 400, arena: ArenaSettings { every: 10, ..defaults.arena }, ..defaults }
    }

    /// Refuses settings that cannot run.
    pub fn validate(&self) -> Result<(), AlphaZeroConfigError> {
        let (n, s, l, a) = (&self.net, &self.selfplay, &self.learn, &self.arena);
        check(n.layers >= 1 && n.hidden_size >= 1 && n.intermediate_size >= 1, "net", "sizes must be at least 1")?;
        check(n.heads >= 1 && n.hidden_size.is_multiple_of(n.heads), "net.heads", "must divide hidden_size")?;
        check(s.games >= 1, "selfplay.games", "must be at least 1")?;
        check(s.simulations >= 1 && s.fast_simulations >= 1, "selfplay.simulations", "must be at least 1")?;
        check(s.fast_simulations <= s.simulations, "selfplay.fast_simulations", "must not exceed simulations")?;
        check(
            (0.0..=1.0).contains(&s.full_search_probability),
            "selfplay.full_search_probability",
            "must be in [0, 1]",
        )?;
        check(s.considered_actions >= 1, "selfplay.considered_actions", "must be at least 1")?;
        check(
            !matches!(s.random_opening_plies, OpeningPlies::Between([fewest, most]) if fewest > most),
            "selfplay.random_opening_plies",
            "a range [fewest, most] must not end below its start",
        )?;
        check(l.batch_size >= 1 && l.replay_window >= 1, "learn", "batch_size and replay_window must be at least 1")?;
        check(l.lr.is_finite() && l.lr > 0.0, "learn.lr", "must be positive")?;
        check(l.weight_decay.is_finite() && l.weight_decay >= 0.0, "learn.weight_decay", "must be non-negative")?;
        check(l.value_coef.is_finite() && l.value_coef >= 0.0, "learn.value_coef", "must be non-negative")?;
        check((0.0..=1.0).contains(&l.search_value_weight), "learn.search_value_weight", "must be in [0, 1]")?;
        check(a.every >= 1 && a.games >= 1, "arena", "every and games must be at least 1")?;
        let depths = 1..=selfplay_games::AlphaBetaAgent::MAX_DEPTH;
        check(a.alphabeta_depths.iter().all(|d| depths.contains(d)), "arena.alphabeta_depths", "must be 1 to 10")?;
        check(
            self.checkpoint.every >= 1 && self.checkpoint.keep >= 1,
            "checkpoint",
            "every and keep must be at least 1",
        )
    }

    /// The transformer for game `G`: its vocabulary is the observation tokens in the net's [`TokenLayout`]
    /// followed by one token per action, whose logits at the last position are the policy.
    pub fn model_config<G: Game>(&self) -> ModelConfig {
        let n = &self.net;
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: n.token_layout().vocab::<G>(),
            hidden_size: n.hidden_size,
            intermediate_size: n.intermediate_size,
            num_hidden_layers: n.layers,
            num_attention_heads: n.heads,
            num_key_value_heads: n.heads,
            head_dim: n.hidden_size / n.heads.max(1),
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: n.token_layout().sequence_len::<G>(),
            tie_word_embeddings: false,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    /// The search of self-play with `simulations` simulations, its randomness from `seed`.
    pub fn selfplay_search(&self, simulations: usize, seed: u64) -> SearchConfig {
        let algorithm = match self.selfplay.search {
            SearchKind::Gumbel => Algorithm::GumbelMuZero(GumbelConfig {
                max_num_considered_actions: self.selfplay.considered_actions,
                ..GumbelConfig::default()
            }),
            SearchKind::Puct => Algorithm::MuZero(MuZeroConfig::default()),
        };
        SearchConfig { seed, algorithm, ..SearchConfig::muzero(simulations) }
    }

    /// The search of arena matches: the same algorithm without noise, playing its best move.
    pub fn arena_search(&self, seed: u64) -> SearchConfig {
        let algorithm = match self.selfplay.search {
            SearchKind::Gumbel => Algorithm::GumbelMuZero(GumbelConfig {
                max_num_considered_actions: self.selfplay.considered_actions,
                gumbel_scale: 0.0,
                ..GumbelConfig::default()
            }),
            SearchKind::Puct => {
                Algorithm::MuZero(MuZeroConfig { dirichlet_fraction: 0.0, temperature: 0.0, ..MuZeroConfig::default() })
            }
        };
        SearchConfig { seed, algorithm, ..SearchConfig::muzero(self.arena.simulations.max(1)) }
    }

    /// Whether self-play keeps the chosen child's subtree.
    pub fn reuses_trees(&self) -> bool {
        self.selfplay.reuse_tree && self.selfplay.search == SearchKind::Puct
    }

    /// Reads and validates a TOML file (any subset of the settings; the rest keep their defaults).
    pub fn from_file(path: &Path) -> Result<Self, ConfigFileError> {
        let config: AlphaZeroConfig = read_toml(path)?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
