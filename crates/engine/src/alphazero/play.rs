//! Playing many games at once: every game has its own tree, and the leaves of all trees searched together go
//! through one batched forward pass. Self-play ([`self_play`]) and matches against fixed opponents
//! ([`play_match`]) both drive their games through one function that roots and searches a group of them.

use std::ops::Range;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_collective::{Collective, gather_concat, shard};
use selfplay_model::{HostAccess, Model};
use selfplay_search::{DecisiveMoves, Game, GameEvaluator, PolicyOutput, PolicyValue, RootOutput, Search, Tree};
use serde::{Deserialize, Serialize};

use super::config::{AlphaZeroConfig, OpeningPlies};
use super::error::AlphaZeroError;
use super::net::NetPolicy;
use super::replay::Sample;
use crate::rollout::row_seed;

/// A uniform draw in `[0, 1)` from 53 random bits.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniformly random legal action of `position` (which must not be finished).
pub fn random_action<G: Game>(position: &G, rng: &mut ChaCha8Rng) -> Option<usize> {
    let legal = position.legal_actions().count();
    if legal == 0 {
        return None;
    }
    position.legal_actions().nth((rng.next_u64() % legal as u64) as usize)
}

/// The index of the largest weight (the first on ties).
fn argmax(weights: &[f32]) -> usize {
    weights.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &w)| if w > best.1 { (i, w) } else { best }).0
}

/// The network as the searches consult it: positions with a decisive move scored as won when the settings ask
/// for it (`[selfplay] decisive_moves`).
type NetEvaluator<'m, G, B> = GameEvaluator<G, DecisiveMoves<NetPolicy<'m, G, B>>>;

fn net_evaluator<'m, G: Game, B: HostAccess>(
    model: &'m Model<B>,
    config: &AlphaZeroConfig,
) -> Result<NetEvaluator<'m, G, B>, AlphaZeroError> {
    Ok(GameEvaluator::new(DecisiveMoves::new(NetPolicy::new(model)?, config.selfplay.decisive_moves)))
}

/// One game in progress.
struct Slot<G> {
    position: G,
    tree: Tree<G>,
    /// Whether `tree` is rooted at `position` (after subtree reuse); otherwise the next search resets it.
    rooted: bool,
    rng: ChaCha8Rng,
    /// The search's random stream for this game: its index among all the round's games, so its searches do not
    /// depend on which games share a batch with it (the games still running, the share of one rank).
    stream: u64,
    ply: usize,
    /// The uniformly random plies this game opens with.
    opening: usize,
    /// Searched positions awaiting the game's result.
    pending: Vec<Pending>,
}

/// A searched position whose value target waits for the game's end.
struct Pending {
    sample: Sample,
    mover: selfplay_search::Player,
    /// The search's value of the position, for the player to move, clamped to the results' range (the value
    /// head is linear, so an untrained network's values may stray past ±1).
    searched_value: f32,
}

impl<G: Game> Slot<G> {
    /// Game `stream` of a round (its search stream), its own moves drawn from `seed`; no random opening.
    fn new(position: G, seed: u64, stream: u64) -> Self {
        Slot {
            position,
            tree: Tree::new(G::NUM_ACTIONS),
            rooted: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stream,
            ply: 0,
            opening: 0,
            pending: Vec::new(),
        }
    }

    /// The game opening with `opening`'s random plies (a range draws the count from the game's generator).
    fn with_opening(mut self, opening: OpeningPlies) -> Self {
        self.opening = opening.draw(&mut self.rng);
        self
    }
}

/// Searches the positions of `slots[i]` for every `i` in `group` with `search` (its trees gathered into one
/// batch), rooting trees that are not rooted with one batched evaluation first; returns each one's policy.
fn search_group<G: Game, B: HostAccess>(
    evaluator: &mut NetEvaluator<'_, G, B>,
    search: &mut Search<G>,
    slots: &mut [Slot<G>],
    group: &[usize],
) -> Result<Vec<PolicyOutput>, AlphaZeroError> {
    let a = G::NUM_ACTIONS;
    let unrooted: Vec<usize> = group.iter().copied().filter(|&i| !slots[i].rooted).collect();
    if !unrooted.is_empty() {
        let positions: Vec<G> = unrooted.iter().map(|&i| slots[i].position.clone()).collect();
        let (mut logits, mut values) = (vec![0.0; positions.len() * a], vec![0.0; positions.len()]);
        evaluator.model_mut().evaluate(&positions, &mut logits, &mut values).map_err(AlphaZeroError::Model)?;
        let mut invalid = vec![false; a];
        for (k, &i) in unrooted.iter().enumerate() {
            slots[i].position.invalid_mask_into(&mut invalid);
            let root = RootOutput {
                state: slots[i].position.clone(),
                prior_logits: &logits[k * a..(k + 1) * a],
                value: values[k],
                invalid_actions: Some(&invalid),
            };
            slots[i].tree.reset(root)?;
            slots[i].rooted = true;
        }
    }
    let mut trees: Vec<Tree<G>> = group.iter().map(|&i| std::mem::replace(&mut slots[i].tree, Tree::new(a))).collect();
    let streams: Vec<u64> = group.iter().map(|&i| slots[i].stream).collect();
    let searched = search.run_streams(&mut trees, evaluator, &streams);
    let policies = searched.map_err(AlphaZeroError::from).and_then(|()| {
        trees.iter_mut().map(|t| search.policy(t).map_err(AlphaZeroError::from)).collect::<Result<Vec<_>, _>>()
    });
    for (&i, tree) in group.iter().zip(trees) {
        slots[i].tree = tree;
    }
    if policies.is_err() {
        group.iter().for_each(|&i| slots[i].rooted = false);
    }
    policies
}

/// What one round of self-play produced (serialisable: the ranks of a data-parallel run exchange theirs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SelfPlayOutcome {
    /// Every searched position with its targets (full searches carry a policy target).
    pub samples: Vec<Sample>,
    /// Games played, moves made, and the results from the first player's view.
    pub games: usize,
    pub plies: usize,
    pub first_player_wins: usize,
    pub draws: usize,
    /// Positions the network evaluated (roots and leaves).
    pub evaluated: usize,
}

/// Plays `config.selfplay.games` games from `start` against itself with `model`, all at once. Round `round` of
/// a run (its games and searches are seeded from `(config.seed, round)` and the game's index alone, so a resumed
/// run replays them). Over several ranks, each plays its [`shard`] of the games and every rank gets all of
/// them back, in game order: the outcome is the one process's.
pub fn self_play<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    round: u64,
    collective: &dyn Collective,
) -> Result<SelfPlayOutcome, AlphaZeroError> {
    let s = &config.selfplay;
    let mine = shard(s.games, collective.rank(), collective.world_size());
    let local = play_games(model, config, start, round, mine)?;
    if collective.world_size() == 1 {
        return Ok(local);
    }
    let mut all = SelfPlayOutcome::default();
    for part in gather_concat(collective, vec![local])? {
        all.samples.extend(part.samples);
        all.games += part.games;
        all.plies += part.plies;
        all.first_player_wins += part.first_player_wins;
        all.draws += part.draws;
        all.evaluated += part.evaluated;
    }
    Ok(all)
}

/// [`self_play`]'s games `games` (a range of the round's), on this process.
fn play_games<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    round: u64,
    games: Range<usize>,
) -> Result<SelfPlayOutcome, AlphaZeroError> {
    let s = &config.selfplay;
    let mut slots: Vec<Slot<G>> = games
        .clone()
        .map(|g| {
            Slot::new(start.clone(), row_seed(config.seed, round, g as u64), g as u64)
                .with_opening(s.random_opening_plies)
        })
        .collect();
    let mut full = Search::new(config.selfplay_search(s.simulations, 0), G::NUM_ACTIONS)?;
    let mut fast = Search::new(config.selfplay_search(s.fast_simulations, 0), G::NUM_ACTIONS)?;
    let mut evaluator = net_evaluator(model, config)?;
    let mut outcome = SelfPlayOutcome { games: games.len(), ..SelfPlayOutcome::default() };
    for move_index in 0u64.. {
        let active: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].position.is_terminal()).collect();
        if active.is_empty() {
            break;
        }
        let (mut full_group, mut fast_group) = (Vec::new(), Vec::new());
        for &i in &active {
            let slot = &mut slots[i];
            if slot.ply < slot.opening {
                let action = random_action(&slot.position, &mut slot.rng).ok_or(AlphaZeroError::NoLegalMove)?;
                slot.position.play(action)?;
                (slot.ply, slot.rooted) = (slot.ply + 1, false);
                outcome.plies += 1;
            } else if s.fast_simulations == s.simulations || unit(&mut slot.rng) < s.full_search_probability {
                full_group.push(i);
            } else {
                fast_group.push(i);
            }
        }
        for (group, search, is_full) in [(&mut full_group, &mut full, true), (&mut fast_group, &mut fast, false)] {
            if group.is_empty() {
                continue;
            }
            let seed = row_seed(config.seed, round, u64::MAX - move_index - u64::from(is_full));
            let mut searched = *search.config();
            searched.seed = seed;
            search.set_config(searched)?;
            let policies = search_group(&mut evaluator, search, &mut slots, group)?;
            for (&i, policy) in group.iter().zip(policies) {
                play_searched(&mut slots[i], policy, is_full, config)?;
                outcome.plies += 1;
            }
        }
    }
    for slot in slots {
        let Some(result) = slot.position.terminal_value() else { return Err(AlphaZeroError::NoLegalMove) };
        let last_mover = slot.position.to_move();
        match result {
            0.0 => outcome.draws += 1,
            // `result` is for the player to move at the end; the first player wins when that is not them.
            r if (r > 0.0) == (last_mover == selfplay_search::Player::First) => outcome.first_player_wins += 1,
            _ => {}
        }
        let weight = config.learn.search_value_weight;
        for Pending { mut sample, mover, searched_value } in slot.pending {
            let outcome_value = if mover == last_mover { result } else { 0.0 - result };
            sample.value = (1.0 - weight) * outcome_value + weight * searched_value;
            outcome.samples.push(sample);
        }
    }
    outcome.evaluated = evaluator.model().model.evaluated;
    Ok(outcome)
}

/// Records the searched position (with its policy target after a full search), plays the chosen move and keeps
/// the chosen subtree when the config reuses trees.
fn play_searched<G: Game>(
    slot: &mut Slot<G>,
    policy: PolicyOutput,
    is_full: bool,
    config: &AlphaZeroConfig,
) -> Result<(), AlphaZeroError> {
    let action = if slot.ply < slot.opening + config.selfplay.sampled_plies {
        policy.action
    } else {
        argmax(&policy.action_weights)
    };
    let legal: Vec<bool> = (0..G::NUM_ACTIONS).map(|a| slot.position.is_legal(a)).collect();
    let target = is_full.then_some(policy.action_weights);
    let sample = Sample { tokens: slot.position.observation(), policy: target, legal, value: 0.0 };
    slot.pending.push(Pending {
        sample,
        mover: slot.position.to_move(),
        searched_value: policy.value.clamp(-1.0, 1.0),
    });
    slot.position.play(action)?;
    slot.ply += 1;
    slot.rooted = config.reuses_trees() && !slot.position.is_terminal() && slot.tree.advance(action).is_ok();
    Ok(())
}

/// The move the network chooses at each of `positions` (none finished): with a noise-free search of
/// `simulations` simulations (the arena's algorithm), or, with 0, its most likely legal move. All positions are
/// searched at once; returns the moves and the network evaluations spent.
pub fn choose_moves<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    positions: &[G],
    simulations: usize,
    seed: u64,
) -> Result<(Vec<usize>, usize), AlphaZeroError> {
    let mut evaluator = net_evaluator(model, config)?;
    let moves = if simulations == 0 {
        network_moves(&mut evaluator, positions)?
    } else {
        let mut search_config = config.arena_search(seed);
        search_config.num_simulations = simulations;
        let mut search = Search::new(search_config, G::NUM_ACTIONS)?;
        let mut slots: Vec<Slot<G>> =
            positions.iter().enumerate().map(|(i, p)| Slot::new(p.clone(), 0, i as u64)).collect();
        let group: Vec<usize> = (0..slots.len()).collect();
        search_group(&mut evaluator, &mut search, &mut slots, &group)?.into_iter().map(|p| p.action).collect()
    };
    Ok((moves, evaluator.model().model.evaluated))
}

/// The network's most likely legal move at each position (the lowest action on ties), from one batched pass.
fn network_moves<G: Game, B: HostAccess>(
    evaluator: &mut NetEvaluator<'_, G, B>,
    positions: &[G],
) -> Result<Vec<usize>, AlphaZeroError> {
    let a = G::NUM_ACTIONS;
    let (mut logits, mut values) = (vec![0.0; positions.len() * a], vec![0.0; positions.len()]);
    // The network alone: its own prior, without the decisive-move check.
    evaluator.model_mut().model.evaluate(positions, &mut logits, &mut values).map_err(AlphaZeroError::Model)?;
    positions
        .iter()
        .zip(logits.chunks_exact(a))
        .map(|(position, row)| {
            let legal = (0..a).filter(|&m| position.is_legal(m));
            legal.max_by(|&x, &y| row[x].total_cmp(&row[y]).then(y.cmp(&x))).ok_or(AlphaZeroError::NoLegalMove)
        })
        .collect()
}

/// A match's result from the agent's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MatchResult {
    pub wins: usize,
    pub draws: usize,
    pub losses: usize,
}

impl MatchResult {
    /// Wins plus half the draws, over the games.
    pub fn score(&self) -> f64 {
        let games = (self.wins + self.draws + self.losses).max(1);
        (self.wins as f64 + 0.5 * self.draws as f64) / games as f64
    }
}

/// Plays `games` games from `start` between the network (with the arena's search, or alone with 0 simulations)
/// and `opponent`, the network moving first in the even games; seeded by `seed`.
pub fn play_match<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    games: usize,
    opponent: &mut dyn FnMut(&G, &mut ChaCha8Rng) -> Option<usize>,
    seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    play_match_from(model, config, &vec![start.clone(); games], opponent, seed)
}

/// [`play_match`] with game `g` starting from `starts[g]` (random openings, so that deterministic opponents give
/// varied games): the network plays the side to move there in the even games, the other side in the odd ones.
pub fn play_match_from<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    starts: &[G],
    opponent: &mut dyn FnMut(&G, &mut ChaCha8Rng) -> Option<usize>,
    seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    play_sides::<G, B, B>(model, config, starts, Opponent::Moves(opponent), seed)
}

/// [`play_match_from`] against another network, `other`, which searches as the arena does with its searches
/// seeded by `other_seed`: both sides search all the games where they are to move at once, each through its own
/// batched forward passes.
pub fn play_networks<G: Game, B: HostAccess, O: HostAccess>(
    model: &Model<B>,
    other: &Model<O>,
    config: &AlphaZeroConfig,
    starts: &[G],
    seed: u64,
    other_seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    let other = Box::new(ArenaSearcher::new(other, config, other_seed)?);
    play_sides(model, config, starts, Opponent::Network(other), seed)
}

/// The other side of a match.
enum Opponent<'a, G: Game, O: HostAccess> {
    /// A player asked one position at a time, with the game's random stream.
    Moves(&'a mut dyn FnMut(&G, &mut ChaCha8Rng) -> Option<usize>),
    /// A network with the arena's search (boxed: its search state is large, and lives once per match).
    Network(Box<ArenaSearcher<'a, G, O>>),
}

/// A network searching as the arena does: its evaluator and search, kept across the moves of a match.
struct ArenaSearcher<'m, G: Game, B: HostAccess> {
    evaluator: NetEvaluator<'m, G, B>,
    search: Search<G>,
}

impl<'m, G: Game, B: HostAccess> ArenaSearcher<'m, G, B> {
    fn new(model: &'m Model<B>, config: &AlphaZeroConfig, seed: u64) -> Result<Self, AlphaZeroError> {
        let search = Search::new(config.arena_search(seed), G::NUM_ACTIONS)?;
        Ok(ArenaSearcher { evaluator: net_evaluator(model, config)?, search })
    }

    /// The moves at the positions of `slots[i]`, `i` in `group`: with the arena's search from fresh trees, or
    /// the network alone when the arena searches with 0 simulations.
    fn moves(
        &mut self,
        config: &AlphaZeroConfig,
        slots: &mut [Slot<G>],
        group: &[usize],
    ) -> Result<Vec<usize>, AlphaZeroError> {
        if config.arena.simulations == 0 {
            let positions: Vec<G> = group.iter().map(|&i| slots[i].position.clone()).collect();
            return network_moves(&mut self.evaluator, &positions);
        }
        group.iter().for_each(|&i| slots[i].rooted = false);
        // The search's own choice: without noise, Gumbel's Sequential Halving winner, PUCT's most visited.
        let policies = search_group(&mut self.evaluator, &mut self.search, slots, group)?;
        Ok(policies.into_iter().map(|p| p.action).collect())
    }
}

/// Plays `starts` between the network (with the arena's search, seeded by `seed`) and `opponent`, colours as
/// [`play_match_from`] says; the result from the network's side.
fn play_sides<G: Game, B: HostAccess, O: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    starts: &[G],
    mut opponent: Opponent<'_, G, O>,
    seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    let games = starts.len();
    let mut slots: Vec<Slot<G>> =
        starts.iter().enumerate().map(|(g, s)| Slot::new(s.clone(), row_seed(seed, 0, g as u64), g as u64)).collect();
    let agent_first: Vec<selfplay_search::Player> =
        starts.iter().enumerate().map(|(g, s)| if g % 2 == 0 { s.to_move() } else { s.to_move().other() }).collect();
    let mut agent = ArenaSearcher::new(model, config, seed)?;
    loop {
        let active: Vec<usize> = (0..games).filter(|&i| !slots[i].position.is_terminal()).collect();
        if active.is_empty() {
            break;
        }
        let (ours, theirs): (Vec<usize>, Vec<usize>) =
            active.into_iter().partition(|&i| slots[i].position.to_move() == agent_first[i]);
        let their_moves = match &mut opponent {
            Opponent::Network(searcher) => searcher.moves(config, &mut slots, &theirs)?,
            Opponent::Moves(choose) => theirs
                .iter()
                .map(|&i| {
                    let slot = &mut slots[i];
                    choose(&slot.position, &mut slot.rng).ok_or(AlphaZeroError::NoLegalMove)
                })
                .collect::<Result<_, _>>()?,
        };
        for (&i, action) in theirs.iter().zip(their_moves) {
            slots[i].position.play(action)?;
        }
        if ours.is_empty() {
            continue;
        }
        let moves = agent.moves(config, &mut slots, &ours)?;
        for (&i, action) in ours.iter().zip(moves) {
            slots[i].position.play(action)?;
        }
    }
    let mut result = MatchResult::default();
    for (slot, agent_player) in slots.iter().zip(agent_first) {
        match slot.position.terminal_value() {
            Some(0.0) => result.draws += 1,
            Some(v) if (v > 0.0) == (slot.position.to_move() == agent_player) => result.wins += 1,
            _ => result.losses += 1,
        }
    }
    Ok(result)
}
