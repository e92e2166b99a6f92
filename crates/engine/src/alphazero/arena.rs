//! The arena: the network, with the arena's search, against fixed opponents, rated in Elo.
//!
//! A game's fixed opponents ([`ArenaGame::fixed_opponents`]: a random player, and for Connect Four alpha-beta
//! players of several depths) are rated once per run by a round robin among themselves, the random player
//! anchored at 0 Elo ([`rate_opponents`]). At every arena point the network plays `[arena] games` games against
//! each of them from the same seeded random openings, colours alternating, and its Elo is the Bradley–Terry
//! maximum-likelihood rating against their ratings held fixed ([`rate_network`]; the model, the draw convention
//! and the prior are in [`selfplay_games::elo`]). Holding the opponents fixed keeps every arena point on one
//! scale: the network's later games never move the ruler it is measured with.
//!
//! The league adds the networks to the ruler: each arena point's network is saved under `arena/` in the run
//! directory ([`snapshot_dir`]) and plays the `[arena] league` arena networks before it ([`play_league`]). At the
//! end of the run every point is rated at once from all its games, against the fixed opponents and against the
//! other networks, the fixed opponents' ratings held as before ([`league_ratings`]): the Elo of each checkpoint
//! from games against the others, which the fixed opponents alone cannot give once the network outgrows them.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use selfplay_games::elo::{DEFAULT_PRIOR_DRAWS, Pairing, fit_ratings};
use selfplay_games::tournament::{random_opening, round_robin};
use selfplay_games::{Agent, AgentError, AlphaBetaAgent, Connect4, RandomAgent, TieBreak};
use selfplay_model::{HostAccess, Model, ModelDir};
use selfplay_search::Game;
use selfplay_search::games::TicTacToe;
use serde::{Deserialize, Serialize};

use super::benchmark::{GroupRates, MistakeRates};
use super::config::{AlphaZeroConfig, ArenaSettings};
use super::error::AlphaZeroError;
use super::play::{MatchResult, play_match_from, play_networks};
use crate::rollout::row_seed;

/// The stream the fixed opponents' tie-breaking and random moves are seeded from.
const OPPONENT_STREAM: u64 = 0xA5;
/// The stream of the match openings (the same openings for the round robin and every arena point).
const OPENING_STREAM: u64 = 0xA6;
/// The stream of the earlier networks' searches in league matches.
const LEAGUE_STREAM: u64 = 0xA7;
/// The folder of the run directory that holds the network of every arena point.
pub const LEAGUE_DIR: &str = "arena";

/// A game whose network can be rated: its fixed opponents. The provided method gives the uniformly random
/// player alone, so any game rates with `impl ArenaGame for MyGame {}`.
pub trait ArenaGame: Game + 'static {
    /// Fresh fixed opponents under `arena`, seeded by `seed`. The first is the anchor, rated 0 Elo: the random
    /// player (the CLI and reports call the match against it "vs random").
    fn fixed_opponents(_arena: &ArenaSettings, seed: u64) -> Result<Vec<Box<dyn Agent<Self>>>, AgentError> {
        Ok(vec![Box::new(RandomAgent::new(row_seed(seed, 0, OPPONENT_STREAM)))])
    }
}

impl ArenaGame for TicTacToe {}

impl ArenaGame for Connect4 {
    /// The random player, then alpha-beta at each of `[arena] alphabeta_depths`, ties broken at random (seeded)
    /// so that even one opening gives more than one game.
    fn fixed_opponents(arena: &ArenaSettings, seed: u64) -> Result<Vec<Box<dyn Agent<Self>>>, AgentError> {
        let mut out: Vec<Box<dyn Agent<Self>>> = vec![Box::new(RandomAgent::new(row_seed(seed, 0, OPPONENT_STREAM)))];
        for (k, &depth) in arena.alphabeta_depths.iter().enumerate() {
            let tie_break = TieBreak::Seeded(row_seed(seed, k as u64 + 1, OPPONENT_STREAM));
            out.push(Box::new(AlphaBetaAgent::new(depth, tie_break)?));
        }
        Ok(out)
    }
}

/// A fixed opponent and its rating from the round robin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedOpponent {
    pub name: String,
    pub elo: f64,
}

/// Two players' results, from `first`'s side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    pub first: String,
    pub second: String,
    pub result: MatchResult,
}

/// One point of the train-time curve: strength against the fixed opponents after some compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArenaPoint {
    /// Iterations done.
    pub iteration: u64,
    /// Self-play games played up to it.
    #[serde(default)]
    pub games: u64,
    /// Self-play and training FLOPs spent up to it.
    pub flops: f64,
    /// Wall-clock hours of the run up to it (the only field a resumed run does not reproduce).
    #[serde(default)]
    pub hours: f64,
    /// The network with the arena's search against a uniformly random player (the Elo anchor).
    pub vs_random: MatchResult,
    /// Against the other fixed opponents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<Encounter>,
    /// The network's Elo against the fixed opponents' ratings ([`super::AlphaZeroRecord::opponents`]).
    #[serde(default)]
    pub elo: f64,
    /// Against the networks of the `[arena] league` arena points before it (`second`: `iteration-N`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub league: Vec<Encounter>,
    /// The Elo of this point from all the run's games at once, the league's included ([`league_ratings`]); set
    /// when the run finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub league_elo: Option<f64>,
    /// Mistake rates on the game's labelled positions, with the arena's search and with the network alone
    /// (games with a benchmark). The totals are kept `Copy`, so a point's rates read by value; the groups follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistakes: Option<MistakeRates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mistakes: Option<MistakeRates>,
    /// The same per group of positions (Connect Four: begin easy … end easy), with search and alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mistake_groups: Vec<GroupRates>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_mistake_groups: Vec<GroupRates>,
}

/// The fixed opponents' ratings and the round robin they come from (computed once per run, kept in the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpponentRatings {
    /// In the order of [`ArenaGame::fixed_opponents`], the anchor first.
    pub opponents: Vec<RatedOpponent>,
    pub round_robin: Vec<Encounter>,
}

/// The network's results at one arena point and its rating.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRating {
    /// Against the anchor (the random player).
    pub vs_anchor: MatchResult,
    /// Against every other fixed opponent, in order (`first` is `"network"`).
    pub matches: Vec<Encounter>,
    pub elo: f64,
}

/// The seed of the openings: one set per run.
fn opening_seed(config: &AlphaZeroConfig) -> u64 {
    row_seed(config.seed, 0, OPENING_STREAM)
}

fn to_match_result(p: &Pairing) -> MatchResult {
    MatchResult { wins: p.wins, draws: p.draws, losses: p.losses }
}

/// Plays the round robin of the fixed opponents (`[arena] games` games a pair) and rates them, the first at 0.
pub fn rate_opponents<G: ArenaGame>(config: &AlphaZeroConfig, start: &G) -> Result<OpponentRatings, AlphaZeroError> {
    let a = &config.arena;
    let mut agents = G::fixed_opponents(a, config.seed)?;
    let names: Vec<String> = agents.iter().map(|x| x.name()).collect();
    let mut refs: Vec<&mut dyn Agent<G>> = agents.iter_mut().map(|x| &mut **x as &mut dyn Agent<G>).collect();
    let pairings = round_robin(start, &mut refs, a.games, a.opening_plies, opening_seed(config))?;
    let elo = fit_ratings(names.len(), &[(0, 0.0)], &pairings, DEFAULT_PRIOR_DRAWS)?;
    let round_robin = pairings
        .iter()
        .map(|p| Encounter { first: names[p.a].clone(), second: names[p.b].clone(), result: to_match_result(p) })
        .collect();
    let opponents = names.into_iter().zip(elo).map(|(name, elo)| RatedOpponent { name, elo }).collect();
    Ok(OpponentRatings { opponents, round_robin })
}

/// Plays the network against `agent` from `starts` ([`play_match_from`]): the adapter that makes an [`Agent`]
/// the opponent a match takes. An agent's error ends the match with that error.
pub fn play_agent<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    starts: &[G],
    agent: &mut dyn Agent<G>,
    seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    let mut failure = None;
    let mut opponent = |position: &G, _: &mut ChaCha8Rng| match agent.choose_move(position) {
        Ok(action) => Some(action),
        Err(e) => {
            failure = Some(e);
            None
        }
    };
    let result = play_match_from(model, config, starts, &mut opponent, seed);
    match failure {
        Some(e) => Err(e.into()),
        None => result,
    }
}

/// The openings of every arena match: `[arena] games` of them, each opening played once from each side.
fn arena_starts<G: Game>(config: &AlphaZeroConfig, start: &G) -> Vec<G> {
    let a = &config.arena;
    (0..a.games).map(|g| random_opening(start, a.opening_plies, opening_seed(config), (g / 2) as u64)).collect()
}

/// The name an arena point's network goes by in league matches and reports.
pub fn league_name(iteration: u64) -> String {
    format!("iteration-{iteration}")
}

/// Where the network of the arena point after `iteration` iterations is kept in run directory `out`.
pub fn snapshot_dir(out: &Path, iteration: u64) -> PathBuf {
    out.join(LEAGUE_DIR).join(format!("iteration-{iteration:06}"))
}

/// The network against the saved networks of the arena points after each of `earlier` iterations, both searching
/// as the arena does, each over all its games at once ([`play_networks`]), from the arena's openings; `first` of
/// every encounter is `"network"`.
pub fn play_league<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    out: &Path,
    earlier: &[u64],
    seed: u64,
) -> Result<Vec<Encounter>, AlphaZeroError> {
    let starts = arena_starts(config, start);
    earlier
        .iter()
        .map(|&iteration| {
            let dir = snapshot_dir(out, iteration);
            let saved = ModelDir::load(&dir).map_err(|source| AlphaZeroError::LoadModel { dir, source })?;
            let earlier = Model::new(saved.config, saved.weights)?;
            let (ours, theirs) = (row_seed(seed, iteration, OPPONENT_STREAM), row_seed(seed, iteration, LEAGUE_STREAM));
            let result = play_networks(model, &earlier, config, &starts, ours, theirs)?;
            Ok(Encounter { first: String::from("network"), second: league_name(iteration), result })
        })
        .collect()
}

/// Every arena point's Elo from all its games at once (Bradley–Terry maximum likelihood): against the fixed
/// opponents, whose `ratings` are held fixed, and against the other points' networks (the league). In the order
/// of `curve`. A match against a name that is neither a fixed opponent nor a point of `curve` is an error.
pub fn league_ratings(ratings: &OpponentRatings, curve: &[ArenaPoint]) -> Result<Vec<f64>, AlphaZeroError> {
    let fixed = ratings.opponents.len();
    let index = |name: &str| -> Result<usize, AlphaZeroError> {
        let opponent = ratings.opponents.iter().position(|o| o.name == name);
        let point = || curve.iter().position(|p| league_name(p.iteration) == name).map(|k| fixed + k);
        opponent.or_else(point).ok_or_else(|| AlphaZeroError::UnknownPlayer(name.to_string()))
    };
    let pairing =
        |a: usize, b: usize, r: &MatchResult| Pairing { a, b, wins: r.wins, draws: r.draws, losses: r.losses };
    let mut pairings = Vec::new();
    for (k, point) in curve.iter().enumerate() {
        pairings.push(pairing(fixed + k, 0, &point.vs_random));
        for encounter in point.matches.iter().chain(&point.league) {
            pairings.push(pairing(fixed + k, index(&encounter.second)?, &encounter.result));
        }
    }
    let anchors: Vec<(usize, f64)> = ratings.opponents.iter().enumerate().map(|(k, o)| (k, o.elo)).collect();
    Ok(fit_ratings(fixed + curve.len(), &anchors, &pairings, DEFAULT_PRIOR_DRAWS)?.split_off(fixed))
}

/// The network's matches against every fixed opponent (fresh ones, seeded by `seed`) and its Elo against their
/// `ratings` held fixed.
pub fn rate_network<G: ArenaGame, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    ratings: &OpponentRatings,
    seed: u64,
) -> Result<NetworkRating, AlphaZeroError> {
    let starts = arena_starts(config, start);
    let mut agents = G::fixed_opponents(&config.arena, seed)?;
    let network = agents.len();
    let (mut results, mut pairings) = (Vec::new(), Vec::new());
    for (k, agent) in agents.iter_mut().enumerate() {
        let result = play_agent(model, config, &starts, &mut **agent, row_seed(seed, k as u64, OPPONENT_STREAM))?;
        pairings.push(Pairing { a: network, b: k, wins: result.wins, draws: result.draws, losses: result.losses });
        results.push((agent.name(), result));
    }
    let anchors: Vec<(usize, f64)> = ratings.opponents.iter().enumerate().map(|(k, o)| (k, o.elo)).collect();
    let elo = fit_ratings(network + 1, &anchors, &pairings, DEFAULT_PRIOR_DRAWS)?[network];
    let mut results = results.into_iter();
    let vs_anchor = results.next().map(|(_, r)| r).ok_or(AlphaZeroError::NoOpponent)?;
    let matches =
        results.map(|(second, result)| Encounter { first: String::from("network"), second, result }).collect();
    Ok(NetworkRating { vs_anchor, matches, elo })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect4_opponents_are_random_then_alphabeta_by_depth() {
        let arena = ArenaSettings { alphabeta_depths: vec![1, 3], ..ArenaSettings::default() };
        let names: Vec<String> = Connect4::fixed_opponents(&arena, 1).unwrap().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["random", "alphabeta-1", "alphabeta-3"]);
        let names: Vec<String> = TicTacToe::fixed_opponents(&arena, 1).unwrap().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["random"]);
    }

    fn result(wins: usize, draws: usize, losses: usize) -> MatchResult {
        MatchResult { wins, draws, losses }
    }

    fn point(iteration: u64, vs_random: MatchResult, vs_strong: MatchResult, league: Vec<Encounter>) -> ArenaPoint {
        let encounter = |second: &str, result| Encounter { first: "network".into(), second: second.into(), result };
        ArenaPoint {
            iteration,
            games: 0,
            flops: 0.0,
            hours: 0.0,
            vs_random,
            matches: vec![encounter("strong", vs_strong)],
            elo: 0.0,
            league,
            league_elo: None,
            mistakes: None,
            network_mistakes: None,
            mistake_groups: Vec::new(),
            network_mistake_groups: Vec::new(),
        }
    }

    /// Without league games the joint fit is each point's own fit against the held opponents; a point that beats
    /// the one before it in the league gains on it; a match against a name the record does not know is refused.
    #[test]
    fn league_ratings_rate_every_point_from_all_its_games() {
        let ratings = OpponentRatings {
            opponents: vec![
                RatedOpponent { name: "random".into(), elo: 0.0 },
                RatedOpponent { name: "strong".into(), elo: 600.0 },
            ],
            round_robin: Vec::new(),
        };
        let early = point(5, result(15, 0, 5), result(2, 2, 16), Vec::new());
        let late = point(10, result(18, 0, 2), result(5, 4, 11), Vec::new());
        let alone = league_ratings(&ratings, &[early.clone(), late.clone()]).unwrap();
        for (p, elo) in [&early, &late].into_iter().zip(&alone) {
            let own = vec![
                Pairing { a: 2, b: 0, wins: p.vs_random.wins, draws: p.vs_random.draws, losses: p.vs_random.losses },
                Pairing {
                    a: 2,
                    b: 1,
                    wins: p.matches[0].result.wins,
                    draws: p.matches[0].result.draws,
                    losses: p.matches[0].result.losses,
                },
            ];
            let expected = fit_ratings(3, &[(0, 0.0), (1, 600.0)], &own, DEFAULT_PRIOR_DRAWS).unwrap()[2];
            assert!((elo - expected).abs() < 1e-6, "{elo} vs {expected}");
        }
        let beat = |wins, losses| Encounter {
            first: "network".into(),
            second: league_name(5),
            result: result(wins, 0, losses),
        };
        let mut stronger = late.clone();
        stronger.league = vec![beat(18, 2)];
        let with_league = league_ratings(&ratings, &[early.clone(), stronger]).unwrap();
        assert!(with_league[1] - with_league[0] > alone[1] - alone[0], "{with_league:?} vs {alone:?}");
        let mut weaker = late.clone();
        weaker.league = vec![beat(2, 18)];
        let with_league = league_ratings(&ratings, &[early.clone(), weaker]).unwrap();
        assert!(with_league[1] - with_league[0] < alone[1] - alone[0], "{with_league:?} vs {alone:?}");

        let mut unknown = late;
        unknown.league = vec![Encounter { second: league_name(7), ..beat(1, 1) }];
        let err = league_ratings(&ratings, &[early, unknown]).unwrap_err();
        assert!(matches!(&err, AlphaZeroError::UnknownPlayer(name) if name == "iteration-7"), "{err}");
    }

    #[test]
    fn the_round_robin_rates_deeper_search_higher() {
        let mut config = AlphaZeroConfig::tiny();
        config.arena.alphabeta_depths = vec![1, 3];
        config.arena.games = 12;
        let ratings = rate_opponents(&config, &Connect4::new()).unwrap();
        assert_eq!(ratings, rate_opponents(&config, &Connect4::new()).unwrap(), "deterministic");
        let elo: Vec<f64> = ratings.opponents.iter().map(|o| o.elo).collect();
        assert_eq!(elo[0], 0.0);
        assert!(elo[0] < elo[1] && elo[1] < elo[2], "{ratings:?}");
        assert_eq!(ratings.round_robin.len(), 3);
    }
}
