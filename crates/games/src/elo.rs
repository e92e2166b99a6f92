//! Elo ratings from match results: the Bradley–Terry maximum-likelihood fit, with some players' ratings held
//! fixed (the anchors).
//!
//! It lives in `selfplay-games`, beside the agents and the [`crate::tournament`] that plays them against each
//! other, because ratings are what a tournament of agents produces; it is plain arithmetic on counts (no_std +
//! alloc, `libm` for `exp` and `ln`), so anyone can rate players without the engine.
//!
//! # Model
//!
//! Player `i` has strength `θᵢ` (natural units); `i` beats `j` with probability `σ(θᵢ − θⱼ)`. Ratings are
//! reported in Elo, `400 · θ / ln 10`, so a 400-point gap means odds of 10 to 1.
//!
//! * **Draws** count half a win for each side (the score model: a draw adds ½ to each player's score and one game
//!   to the pair). This is Elo's own convention and keeps the estimate a function of scores alone; a separate
//!   draw parameter (Rao–Kupper, Davidson) would change the ratings only through the draw rate, which games
//!   between a network and fixed opponents do not need.
//! * **Prior**: every pair of players that met plays `prior_draws` extra virtual drawn games (BayesElo's
//!   convention). Without it a player who won every game has no finite maximum; with one virtual draw a perfect
//!   score of `n` games against an opponent rates about `ln(2n + 1)` nats (≈ 645 Elo for `n = 20`) above it. The
//!   prior pulls each rating toward its opponents' only as much as one game would, and vanishes as games grow.
//! * **Anchors**: ratings fixed before the fit (the random player at 0; the fixed opponents' ratings when a
//!   network is rated against them). Every other player must be connected to an anchor by games.
//!
//! The fit maximises the concave log-likelihood by Newton's method with step halving, to `1e-10` Elo.
//! `tools/elo_reference.py` computes the same maximum by another method (coordinate-wise bisection on the score
//! equations); `tests/fixtures/elo_reference.json` holds its output and a test compares.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::RatingError;

/// Elo points per natural unit of strength: `400 / ln 10`.
pub const ELO_PER_NAT: f64 = 400.0 / core::f64::consts::LN_10;

/// The virtual draws added to every pair that met, by default: one game's worth of pull toward equal ratings.
pub const DEFAULT_PRIOR_DRAWS: f64 = 1.0;

/// Games between players `a` and `b`, counted from `a`'s side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pairing {
    /// The first player's index.
    pub a: usize,
    /// The second player's index.
    pub b: usize,
    /// Games `a` won.
    pub wins: usize,
    /// Games drawn.
    pub draws: usize,
    /// Games `a` lost.
    pub losses: usize,
}

/// Stop when no rating moves by more than this many nats in a Newton step (about 1e-10 Elo).
const TOLERANCE: f64 = 1e-12;
/// Newton steps allowed; a well-posed fit takes a few dozen at most.
const MAX_STEPS: usize = 200;
/// A strength beyond this (about 8 700 Elo from the anchors) means the maximum is at infinity.
const DIVERGED: f64 = 50.0;

/// `ln σ(x) = −ln(1 + e^(−x))`, accurate for large `|x|`.
fn ln_sigmoid(x: f64) -> f64 {
    if x >= 0.0 { -libm::log1p(libm::exp(-x)) } else { x - libm::log1p(libm::exp(x)) }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 { 1.0 / (1.0 + libm::exp(-x)) } else { libm::exp(x) / (1.0 + libm::exp(x)) }
}

/// The scores of one unordered pair `(lo, hi)`, prior included: `lo`'s and `hi`'s.
#[derive(Debug, Clone, Copy, Default)]
struct PairScore {
    lo: f64,
    hi: f64,
}

/// The Bradley–Terry maximum-likelihood Elo ratings of `players` players from `pairings`, the players in
/// `anchors` held at their given Elo, with `prior_draws` virtual draws added to every pair that played (see
/// the module documentation). Pairings of the same two players add up, in either order. Returns every player's
/// Elo, anchors included.
pub fn fit_ratings(
    players: usize,
    anchors: &[(usize, f64)],
    pairings: &[Pairing],
    prior_draws: f64,
) -> Result<Vec<f64>, RatingError> {
    if !(prior_draws.is_finite() && prior_draws >= 0.0) {
        return Err(RatingError::Prior);
    }
    let mut theta = vec![0.0; players];
    let mut fixed = vec![false; players];
    for &(player, elo) in anchors {
        if player >= players {
            return Err(RatingError::UnknownPlayer { player, players });
        }
        if fixed[player] || !elo.is_finite() {
            return Err(RatingError::Anchor { player });
        }
        fixed[player] = true;
        theta[player] = elo / ELO_PER_NAT;
    }
    if anchors.is_empty() {
        return Err(RatingError::NoAnchor);
    }
    let pairs = pair_scores(players, pairings, prior_draws)?;
    check_connected(players, &fixed, &pairs)?;

    // Free players get consecutive indices in the Newton system.
    let free: Vec<usize> = (0..players).filter(|&p| !fixed[p]).collect();
    let mut slot = vec![usize::MAX; players];
    for (k, &p) in free.iter().enumerate() {
        slot[p] = k;
    }
    let n = free.len();
    let mut likelihood = log_likelihood(&theta, &pairs);
    for _ in 0..MAX_STEPS {
        // Gradient g and the negated Hessian h (positive definite: every free player reaches an anchor).
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n * n];
        for (&(i, j), s) in &pairs {
            let p = sigmoid(theta[i] - theta[j]);
            let (games, w) = (s.lo + s.hi, (s.lo + s.hi) * p * (1.0 - p));
            let gi = s.lo - games * p;
            if !fixed[i] {
                g[slot[i]] += gi;
                h[slot[i] * n + slot[i]] += w;
            }
            if !fixed[j] {
                g[slot[j]] -= gi;
                h[slot[j] * n + slot[j]] += w;
            }
            if !fixed[i] && !fixed[j] {
                h[slot[i] * n + slot[j]] -= w;
                h[slot[j] * n + slot[i]] -= w;
            }
        }
        let Some(step) = solve_positive_definite(&mut h, &g, n) else {
            return Err(RatingError::Unbounded);
        };
        let mut scale = 1.0;
        let next = loop {
            let mut trial = theta.clone();
            for (k, &p) in free.iter().enumerate() {
                trial[p] += scale * step[k];
            }
            let l = log_likelihood(&trial, &pairs);
            if l >= likelihood || scale < 1e-6 {
                likelihood = l;
                break trial;
            }
            scale *= 0.5;
        };
        let moved = step.iter().fold(0.0f64, |m, &d| m.max((scale * d).abs()));
        theta = next;
        if theta.iter().any(|t| t.abs() > DIVERGED) {
            return Err(RatingError::Unbounded);
        }
        if moved < TOLERANCE {
            return Ok(theta.iter().map(|t| t * ELO_PER_NAT).collect());
        }
    }
    Err(RatingError::Unbounded)
}

/// Every unordered pair that played, with its scores and `prior_draws / 2` added to each side.
fn pair_scores(
    players: usize,
    pairings: &[Pairing],
    prior_draws: f64,
) -> Result<BTreeMap<(usize, usize), PairScore>, RatingError> {
    let mut pairs: BTreeMap<(usize, usize), PairScore> = BTreeMap::new();
    for p in pairings {
        for player in [p.a, p.b] {
            if player >= players {
                return Err(RatingError::UnknownPlayer { player, players });
            }
        }
        if p.a == p.b {
            return Err(RatingError::SelfPairing { player: p.a });
        }
        if p.wins + p.draws + p.losses == 0 {
            continue;
        }
        let (a_score, b_score) = (p.wins as f64 + 0.5 * p.draws as f64, p.losses as f64 + 0.5 * p.draws as f64);
        let entry = pairs
            .entry((p.a.min(p.b), p.a.max(p.b)))
            .or_insert(PairScore { lo: 0.5 * prior_draws, hi: 0.5 * prior_draws });
        if p.a < p.b {
            entry.lo += a_score;
            entry.hi += b_score;
        } else {
            entry.lo += b_score;
            entry.hi += a_score;
        }
    }
    Ok(pairs)
}

/// Refuses a player with no chain of games to an anchor (its rating would be arbitrary).
fn check_connected(
    players: usize,
    fixed: &[bool],
    pairs: &BTreeMap<(usize, usize), PairScore>,
) -> Result<(), RatingError> {
    let mut reached = fixed.to_vec();
    let mut grew = true;
    while grew {
        grew = false;
        for &(i, j) in pairs.keys() {
            if reached[i] != reached[j] {
                (reached[i], reached[j], grew) = (true, true, true);
            }
        }
    }
    match (0..players).find(|&p| !reached[p]) {
        Some(player) => Err(RatingError::Unanchored { player }),
        None => Ok(()),
    }
}

fn log_likelihood(theta: &[f64], pairs: &BTreeMap<(usize, usize), PairScore>) -> f64 {
    pairs
        .iter()
        .map(|(&(i, j), s)| s.lo * ln_sigmoid(theta[i] - theta[j]) + s.hi * ln_sigmoid(theta[j] - theta[i]))
        .sum()
}

/// Solves `h x = g` for a symmetric positive definite `h` (`n × n`, row-major, overwritten by its Cholesky
/// factor); `None` if `h` is not positive definite in floating point.
fn solve_positive_definite(h: &mut [f64], g: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let d = h[j * n + j] - (0..j).map(|k| h[j * n + k] * h[j * n + k]).sum::<f64>();
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = libm::sqrt(d);
        h[j * n + j] = d;
        for i in j + 1..n {
            let s = h[i * n + j] - (0..j).map(|k| h[i * n + k] * h[j * n + k]).sum::<f64>();
            h[i * n + j] = s / d;
        }
    }
    // L y = g, then Lᵀ x = y.
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (g[i] - (0..i).map(|k| h[i * n + k] * y[k]).sum::<f64>()) / h[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| h[k * n + i] * x[k]).sum::<f64>()) / h[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairing(a: usize, b: usize, wins: usize, draws: usize, losses: usize) -> Pairing {
        Pairing { a, b, wins, draws, losses }
    }

    #[test]
    fn a_three_to_one_score_is_190_85_elo() {
        // p = 0.75 against an anchor at 0: θ = ln 3, Elo = 400 · log10 3.
        let elo = fit_ratings(2, &[(0, 0.0)], &[pairing(1, 0, 3, 0, 1)], 0.0).unwrap();
        assert_eq!(elo[0], 0.0);
        assert!((elo[1] - 190.848_501_887_865).abs() < 1e-9, "{}", elo[1]);
        assert!((elo[1] - 400.0 * 3f64.log10()).abs() < 1e-9);
        // Draws are half a win each side: 2 wins, 4 draws and 2 losses score 0.5, an equal rating.
        let drawn = fit_ratings(2, &[(0, 100.0)], &[pairing(0, 1, 2, 4, 2)], 0.0).unwrap();
        assert!((drawn[1] - 100.0).abs() < 1e-9, "{drawn:?}");
        // 5 wins 2 draws 1 loss = 6 of 8 = 0.75 again, from the other side and against an anchor at 50.
        let mixed = fit_ratings(2, &[(1, 50.0)], &[pairing(1, 0, 1, 2, 5)], 0.0).unwrap();
        assert!((mixed[0] - 50.0 - 400.0 * 3f64.log10()).abs() < 1e-9, "{mixed:?}");
    }

    #[test]
    fn the_prior_keeps_a_perfect_score_finite() {
        assert_eq!(fit_ratings(2, &[(0, 0.0)], &[pairing(1, 0, 20, 0, 0)], 0.0), Err(RatingError::Unbounded));
        let elo = fit_ratings(2, &[(0, 0.0)], &[pairing(1, 0, 20, 0, 0)], 1.0).unwrap();
        // 20.5 of 21 games: θ = ln(20.5 / 0.5) = ln 41.
        assert!((elo[1] - ELO_PER_NAT * 41f64.ln()).abs() < 1e-9, "{elo:?}");
        // More games, same perfect score: higher, still finite.
        let more = fit_ratings(2, &[(0, 0.0)], &[pairing(1, 0, 200, 0, 0)], 1.0).unwrap();
        assert!(more[1] > elo[1] && more[1].is_finite());
    }

    #[test]
    fn pairings_add_up_in_either_order_and_a_chain_is_transitive() {
        let split = [pairing(1, 0, 2, 0, 1), pairing(0, 1, 0, 0, 1)];
        let whole = [pairing(1, 0, 3, 0, 1)];
        let (a, b) = (fit_ratings(2, &[(0, 0.0)], &split, 0.0), fit_ratings(2, &[(0, 0.0)], &whole, 0.0));
        assert!((a.unwrap()[1] - b.unwrap()[1]).abs() < 1e-9);
        // 0 < 1 < 2 each at 3:1, no direct games between 0 and 2: the gaps add.
        let chain = [pairing(1, 0, 3, 0, 1), pairing(2, 1, 3, 0, 1)];
        let elo = fit_ratings(3, &[(0, 0.0)], &chain, 0.0).unwrap();
        assert!((elo[2] - 2.0 * 400.0 * 3f64.log10()).abs() < 1e-8, "{elo:?}");
    }

    #[test]
    fn a_player_rated_against_several_anchors_solves_its_score_equation() {
        // Expected score summed over the opponents equals the actual score (prior included) at the maximum.
        let anchors = [(0, 0.0), (1, 300.0), (2, 700.0)];
        let games = [pairing(3, 0, 10, 0, 0), pairing(3, 1, 6, 2, 2), pairing(3, 2, 1, 1, 8)];
        let elo = fit_ratings(4, &anchors, &games, DEFAULT_PRIOR_DRAWS).unwrap();
        let expected: f64 = anchors.iter().map(|&(_, r)| 11.0 * sigmoid((elo[3] - r) / ELO_PER_NAT)).sum();
        let actual = 10.5 + 7.5 + 2.0;
        assert!((expected - actual).abs() < 1e-9, "{expected} vs {actual}");
        assert!(elo[3] > 300.0 && elo[3] < 700.0, "{elo:?}");
    }

    #[test]
    fn refuses_ill_posed_fits() {
        let one = [pairing(1, 0, 1, 0, 1)];
        assert_eq!(fit_ratings(2, &[], &one, 1.0), Err(RatingError::NoAnchor));
        assert_eq!(fit_ratings(3, &[(0, 0.0)], &one, 1.0), Err(RatingError::Unanchored { player: 2 }));
        assert_eq!(
            fit_ratings(2, &[(0, 0.0)], &[pairing(1, 1, 1, 0, 0)], 1.0),
            Err(RatingError::SelfPairing { player: 1 })
        );
        assert_eq!(
            fit_ratings(2, &[(0, 0.0)], &[pairing(1, 5, 1, 0, 0)], 1.0),
            Err(RatingError::UnknownPlayer { player: 5, players: 2 })
        );
        assert_eq!(fit_ratings(2, &[(0, 0.0), (0, 1.0)], &one, 1.0), Err(RatingError::Anchor { player: 0 }));
        assert_eq!(fit_ratings(2, &[(0, f64::NAN)], &one, 1.0), Err(RatingError::Anchor { player: 0 }));
        assert_eq!(fit_ratings(2, &[(0, 0.0)], &one, -1.0), Err(RatingError::Prior));
        // A pairing without games connects nobody.
        assert_eq!(
            fit_ratings(2, &[(0, 0.0)], &[pairing(1, 0, 0, 0, 0)], 1.0),
            Err(RatingError::Unanchored { player: 1 })
        );
    }
}
