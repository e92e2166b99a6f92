//! Self-play and learning as one stage: each step is an iteration (a round of games against itself, then
//! updates on the replay window), with matches against the fixed opponents (rated in Elo, [`super::arena`])
//! every `[arena] every` iterations.

use std::path::Path;
use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use selfplay_model::{CpuBackend, HostAccess, Model, save_model_dir_with};
use selfplay_search::Game;
use selfplay_tensor::DType;
use serde::{Deserialize, Serialize};

use super::agent::SETTINGS_FILE;
use super::arena::{
    ArenaGame, ArenaPoint, Encounter, OpponentRatings, league_ratings, play_league, rate_network, rate_opponents,
    snapshot_dir,
};
use super::benchmark::{GroupRates, MistakeRates, MoveBenchmark, measure_by_group};
use super::config::AlphaZeroConfig;
use super::error::AlphaZeroError;
use super::learner::{AlphaZeroLoss, loss};
use super::play::self_play;
use super::replay::{ReplayBuffer, Sample};
use crate::engine::{Context, Restored, Stage, StepRecord};
use crate::flops::{forward_flops_per_token, train_flops_per_token};
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::train::{Trainer, draw_with_replacement};

/// The stream of the generator that draws training batches.
const BATCH_STREAM: u64 = 0xA2;
/// The seed stream of arena matches.
const ARENA_STREAM: u64 = 0xA3;
/// The stream of the generator that picks the positions trained as mirror images.
const MIRROR_STREAM: u64 = 0xA4;

/// For each drawn sample, its mirror image with probability ½ (`None`: the sample as drawn), by a generator
/// seeded from `(seed, draw)`; empty for a game without a mirror.
fn mirror_some<G: Game>(drawn: &[&Sample], seed: u64, draw: u64) -> Vec<Option<Sample>> {
    if G::mirror_action(0).is_none() {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(crate::rollout::row_seed(seed, draw, MIRROR_STREAM));
    drawn.iter().map(|s| if rng.next_u64() & 1 == 1 { s.mirrored::<G>() } else { None }).collect()
}

/// One point of the test-time curve: mistakes against search budget, for the final network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestTimePoint {
    /// Simulations per move (0: the network alone).
    pub simulations: usize,
    pub mistakes: MistakeRates,
    /// Per group of the benchmark's positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupRates>,
}

/// The recipe's record: counters and the train-time curve (checkpointed with it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlphaZeroRecord {
    pub games: u64,
    pub plies: u64,
    /// Network evaluations in self-play (roots and leaves).
    pub evaluations: u64,
    pub selfplay_flops: f64,
    pub train_flops: f64,
    pub curve: Vec<ArenaPoint>,
    /// The fixed opponents' ratings from their round robin, played at the first arena point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opponents: Option<OpponentRatings>,
    /// Mistakes against simulations on the labelled positions, measured after the last iteration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_time: Vec<TestTimePoint>,
}

/// One iteration: a line of `metrics.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct IterationMetrics {
    step: u64,
    games: usize,
    /// Mean moves per game.
    game_length: f64,
    first_player_win_rate: f64,
    draw_rate: f64,
    /// Positions added to the replay window, and its size after.
    samples: usize,
    replay: usize,
    #[serde(flatten)]
    loss: AlphaZeroLoss,
    grad_norm: f32,
    lr: f32,
    /// Score against the random player (wins + draws / 2) and Elo, on the iterations with a match.
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_random: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elo: Option<f64>,
    seconds: f64,
}

/// Self-play plus learning on game `G` from position `start`.
pub struct AlphaZeroStage<'a, G, B: HostAccess = CpuBackend> {
    config: &'a AlphaZeroConfig,
    start: G,
    benchmark: Option<&'a dyn MoveBenchmark<G>>,
    replay: ReplayBuffer,
    optimizer: Option<ModelOptimizer>,
    trainer: Trainer,
    _backend: std::marker::PhantomData<B>,
}

impl<G, B: HostAccess> std::fmt::Debug for AlphaZeroStage<'_, G, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlphaZeroStage").field("replay", &self.replay.len()).finish_non_exhaustive()
    }
}

impl<'a, G: Game, B: HostAccess> AlphaZeroStage<'a, G, B> {
    /// The stage under `config`, every game starting from `start`; mistakes are measured on `benchmark` at every
    /// match and, at the end, at every budget of `[arena] test_time_simulations`.
    pub fn new(config: &'a AlphaZeroConfig, start: G, benchmark: Option<&'a dyn MoveBenchmark<G>>) -> Self {
        AlphaZeroStage {
            config,
            start,
            benchmark,
            replay: ReplayBuffer::new(config.learn.replay_window),
            optimizer: None,
            trainer: Trainer::keeping_tail(config.net.token_layout().read_positions::<G>()),
            _backend: std::marker::PhantomData,
        }
    }
}

impl<G: ArenaGame, B: HostAccess> AlphaZeroStage<'_, G, B> {
    /// The league at the arena point after `iteration`: the network against the networks of the `[arena]
    /// league` arena points before it, then saved (with the run's settings, so `load_agent` plays it as the
    /// run did) for the points after it. A resumed run that repeats an iteration saves the same network again.
    fn play_league(
        &self,
        model: &Model<B>,
        out: &Path,
        curve: &[ArenaPoint],
        iteration: u64,
        seed: u64,
    ) -> Result<Vec<Encounter>, AlphaZeroError> {
        let league = self.config.arena.league;
        if league == 0 {
            return Ok(Vec::new());
        }
        let earlier: Vec<u64> = curve[curve.len().saturating_sub(league)..].iter().map(|p| p.iteration).collect();
        let encounters = play_league(model, self.config, &self.start, out, &earlier, seed)?;
        let settings = self.config.to_toml()?;
        let dir = snapshot_dir(out, iteration);
        save_model_dir_with(
            &dir,
            model.config(),
            model.weights(),
            None,
            DType::F32,
            &[(SETTINGS_FILE, settings.as_bytes())],
        )?;
        Ok(encounters)
    }
}

impl<G: ArenaGame, B: HostAccess> Stage<AlphaZeroRecord, B> for AlphaZeroStage<'_, G, B> {
    type Error = AlphaZeroError;

    fn name(&self) -> &'static str {
        "alphazero"
    }

    fn label(&self) -> String {
        "self-play".into()
    }

    fn steps(&self) -> u64 {
        self.config.iterations
    }

    fn start(
        &mut self,
        cx: &mut Context<'_, AlphaZeroRecord, B>,
        _done: u64,
        restored: Restored,
    ) -> Result<(), AlphaZeroError> {
        let l = &self.config.learn;
        let updates = self.config.iterations * l.updates_per_iteration as u64;
        let mut optimizer =
            ModelOptimizer::new(cx.model.weights(), OptimConfig::warmup_cosine(l.lr, l.weight_decay, updates))?;
        if let Some(moments) = restored.optimizer {
            optimizer.restore(moments)?;
        }
        self.optimizer = Some(optimizer);
        self.replay = match restored.stage_state {
            Some(bytes) => serde_json::from_slice(&bytes)?,
            None => ReplayBuffer::new(l.replay_window),
        };
        Ok(())
    }

    fn step(&mut self, cx: &mut Context<'_, AlphaZeroRecord, B>, iteration: u64) -> Result<StepRecord, AlphaZeroError> {
        let started = Instant::now();
        let config = self.config;
        let optimizer = self.optimizer.as_mut().ok_or(AlphaZeroError::NotStarted("alphazero"))?;
        let played = self_play(&cx.model, config, &self.start, iteration, cx.collective)?;
        let samples = played.samples.len();
        self.replay.extend(played.samples);

        let model_config = cx.model.config().clone();
        let layout = config.net.token_layout();
        let (len, vocab) = (layout.sequence_len::<G>(), model_config.vocab_size);
        let (mut sum, mut grad_norm, mut lr) = (AlphaZeroLoss::default(), 0.0, 0.0);
        let updates = config.learn.updates_per_iteration;
        let window = self.replay.as_slice();
        for u in 0..updates {
            let draw = (iteration - 1) * updates as u64 + u as u64;
            let drawn = draw_with_replacement(window, config.learn.batch_size, config.seed, draw, BATCH_STREAM);
            let mirrored = if config.learn.mirror { mirror_some::<G>(&drawn, config.seed, draw) } else { Vec::new() };
            let batch: Vec<&Sample> =
                drawn.iter().enumerate().map(|(k, s)| mirrored.get(k).and_then(Option::as_ref).unwrap_or(s)).collect();
            let encoded: Vec<Vec<u32>> = batch.iter().map(|s| layout.encode::<G>(&s.tokens)).collect();
            let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
            let coef = config.learn.value_coef;
            let (terms, update) = self.trainer.update(&mut cx.model, optimizer, cx.collective, &sequences, |pass| {
                loss::<G, B>(&batch, pass, layout, vocab, coef)
            })?;
            sum.policy_loss += terms.policy_loss / updates as f32;
            sum.value_loss += terms.value_loss / updates as f32;
            sum.policy_targets += terms.policy_targets;
            grad_norm += update.grad_norm / updates as f32;
            lr = update.lr;
        }

        let r = &mut cx.record;
        r.games += played.games as u64;
        r.plies += played.plies as u64;
        r.evaluations += played.evaluated as u64;
        r.selfplay_flops += (played.evaluated * len) as f64 * forward_flops_per_token(&model_config, len / 2);
        let trained_tokens = updates * config.learn.batch_size * len;
        r.train_flops += trained_tokens as f64 * train_flops_per_token(&model_config, len / 2);
        // Rank 0 alone measures: the others go on to the next iteration's games and wait for it there.
        let due = iteration.is_multiple_of(config.arena.every) || iteration == config.iterations;
        let arena = if due && cx.collective.is_root() {
            let seed = crate::rollout::row_seed(config.seed, iteration, ARENA_STREAM);
            let ratings = match r.opponents.take() {
                Some(ratings) => ratings,
                None => rate_opponents(config, &self.start)?,
            };
            let rated = rate_network(&cx.model, config, &self.start, &ratings, seed);
            r.opponents = Some(ratings);
            let rated = rated?;
            let league = self.play_league(&cx.model, cx.out, &r.curve, iteration, seed)?;
            let (searched, alone) = match self.benchmark {
                Some(b) => (
                    Some(measure_by_group(&cx.model, config, b, config.arena.simulations, seed)?),
                    Some(measure_by_group(&cx.model, config, b, 0, seed)?),
                ),
                None => (None, None),
            };
            let (mistakes, mistake_groups) = searched.map_or((None, Vec::new()), |m| (Some(m.total), m.groups));
            let (network_mistakes, network_mistake_groups) =
                alone.map_or((None, Vec::new()), |m| (Some(m.total), m.groups));
            r.curve.push(ArenaPoint {
                iteration,
                games: r.games,
                flops: r.selfplay_flops + r.train_flops,
                hours: cx.clock.elapsed() / 3600.0,
                vs_random: rated.vs_anchor,
                matches: rated.matches,
                elo: rated.elo,
                league,
                league_elo: None,
                mistakes,
                network_mistakes,
                mistake_groups,
                network_mistake_groups,
            });
            Some((rated.vs_anchor.score(), rated.elo))
        } else {
            None
        };
        let (vs_random, elo) = (arena.map(|a| a.0), arena.map(|a| a.1));
        let games = played.games.max(1) as f64;
        let metrics = IterationMetrics {
            step: iteration,
            games: played.games,
            game_length: played.plies as f64 / games,
            first_player_win_rate: played.first_player_wins as f64 / games,
            draw_rate: played.draws as f64 / games,
            samples,
            replay: self.replay.len(),
            loss: sum,
            grad_norm,
            lr,
            vs_random,
            elo,
            seconds: started.elapsed().as_secs_f64(),
        };
        let shown = arena.map_or(String::new(), |(s, elo)| format!(" vs random {s:.2} Elo {elo:.0}"));
        let message = format!("policy {:.3} value {:.3}{shown}", sum.policy_loss, sum.value_loss);
        Ok(StepRecord::new(&metrics, message)?)
    }

    fn optimizer(&self) -> Option<&ModelOptimizer> {
        self.optimizer.as_ref()
    }

    fn stage_state(&self) -> Result<Option<Vec<u8>>, AlphaZeroError> {
        Ok(Some(serde_json::to_vec(&self.replay)?))
    }

    fn finish(&mut self, cx: &mut Context<'_, AlphaZeroRecord, B>) -> Result<(), AlphaZeroError> {
        self.optimizer = None;
        self.trainer = Trainer::keeping_tail(self.config.net.token_layout().read_positions::<G>());
        if !cx.collective.is_root() {
            return Ok(());
        }
        if let Some(ratings) = cx.record.opponents.as_ref().filter(|_| self.config.arena.league > 0) {
            let elo = league_ratings(ratings, &cx.record.curve)?;
            for (point, elo) in cx.record.curve.iter_mut().zip(elo) {
                point.league_elo = Some(elo);
            }
        }
        if let Some(benchmark) = self.benchmark {
            let seed = crate::rollout::row_seed(self.config.seed, u64::MAX, ARENA_STREAM);
            cx.record.test_time = self
                .config
                .arena
                .test_time_simulations
                .iter()
                .map(|&simulations| {
                    let measured = measure_by_group(&cx.model, self.config, benchmark, simulations, seed)?;
                    let mistakes = measured.total;
                    eprintln!(
                        "{simulations:>4} simulations: mistakes {:.3} ({:.3} on decisive positions)",
                        mistakes.all, mistakes.decisive
                    );
                    Ok(TestTimePoint { simulations, mistakes, groups: measured.groups })
                })
                .collect::<Result<_, AlphaZeroError>>()?;
        }
        Ok(())
    }
}
