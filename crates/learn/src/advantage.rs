//! Advantage estimators: GAE with returns, group-relative (GRPO, Dr. GRPO, batch-std), RLOO leave-one-out
//! and REINFORCE with a baseline. Each matches the verl function named in its doc (checked by fixture).
//!
//! Statistics are computed in f64 whatever `T` is: they involve sums over a batch and no gradient flows
//! through them.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{LearnError, Result};
use crate::shape::{SeqShape, check_param, check_seq};
use selfplay_tensor::Float;

/// Token-level advantages and the returns a value head regresses to; zero at masked slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages<T> {
    /// Advantage per token slot.
    pub advantages: Vec<T>,
    /// Return per token slot.
    pub returns: Vec<T>,
}

/// Generalised advantage estimation (Schulman et al. 2016), as verl's `compute_gae_advantage_return`.
///
/// Runs backwards over each sequence: `δ_t = r_t + γ V_{t+1} − V_t`, `A_t = δ_t + γλ A_{t+1}`, where masked
/// slots inside a sequence (e.g. tool output) are skipped: they neither bootstrap a value nor reset the
/// running advantage. `returns = A + V` (before whitening). With `whiten`, advantages are shifted and scaled
/// to zero mean and unit variance over all unmasked tokens (unbiased variance, `+1e-8` under the root, as
/// verl's `masked_whiten`); a single unmasked token whitens to 0.
pub fn gae<T: Float>(
    shape: SeqShape,
    rewards: &[T],
    values: &[T],
    mask: &[bool],
    gamma: f64,
    lambda: f64,
    whiten: bool,
) -> Result<Advantages<T>> {
    shape.check("rewards", rewards)?;
    shape.check("values", values)?;
    shape.check_len("mask", mask)?;
    check_param("gamma", gamma, 0.0)?;
    check_param("lambda", lambda, 0.0)?;
    if !mask.iter().any(|&m| m) {
        return Err(LearnError::Empty { name: "mask (no unmasked token)" });
    }
    let mut adv = vec![0.0f64; mask.len()];
    let mut ret = vec![0.0f64; mask.len()];
    let rows = rewards.chunks_exact(shape.len).zip(values.chunks_exact(shape.len)).zip(mask.chunks_exact(shape.len));
    for ((adv_row, ret_row), ((r_row, v_row), m_row)) in
        adv.chunks_exact_mut(shape.len).zip(ret.chunks_exact_mut(shape.len)).zip(rows)
    {
        let (mut next_value, mut last_gae) = (0.0f64, 0.0f64);
        let slots = adv_row.iter_mut().zip(ret_row.iter_mut()).zip(r_row.iter().zip(v_row).zip(m_row));
        for ((a, ret), ((r, v), &m)) in slots.rev() {
            if !m {
                continue;
            }
            let v = v.to_f64();
            let delta = r.to_f64() + gamma * next_value - v;
            last_gae = delta + gamma * lambda * last_gae;
            next_value = v;
            *a = last_gae;
            *ret = last_gae + v;
        }
    }
    if whiten {
        whiten_masked(&mut adv, mask);
    }
    Ok(Advantages { advantages: to_float(&adv), returns: to_float(&ret) })
}

/// Token advantages shifted and scaled to zero mean and unit (unbiased) variance over the unmasked slots,
/// masked slots 0 (verl's `masked_whiten`). Composes REINFORCE++-baseline, verl's
/// `compute_reinforce_plus_plus_baseline_outcome_advantage`:
/// `whiten_tokens(broadcast_to_tokens(grpo_advantages(.., GroupScale::None, ..)))`.
pub fn whiten_tokens<T: Float>(xs: &[T], mask: &[bool]) -> Result<Vec<T>> {
    if mask.len() != xs.len() {
        return Err(LearnError::LengthMismatch { name: "mask", expected: xs.len(), got: mask.len() });
    }
    check_seq("xs", xs, xs.len())?;
    if !mask.iter().any(|&m| m) {
        return Err(LearnError::Empty { name: "mask (no unmasked token)" });
    }
    let mut wide: Vec<f64> = xs.iter().map(|x| x.to_f64()).collect();
    whiten_masked(&mut wide, mask);
    Ok(to_float(&wide))
}

/// Zero mean, unit (unbiased) variance over the unmasked slots; masked slots stay 0.
fn whiten_masked(xs: &mut [f64], mask: &[bool]) {
    let n = mask.iter().filter(|&&m| m).count() as f64;
    let mean = xs.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| x).sum::<f64>() / n;
    let var = if n > 1.0 {
        xs.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let inv_std = 1.0 / libm::sqrt(var + 1e-8);
    for (x, &m) in xs.iter_mut().zip(mask) {
        *x = if m { (*x - mean) * inv_std } else { 0.0 };
    }
}

/// How group-relative advantages are scaled after subtracting the group mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum GroupScale {
    /// Divide by the group's standard deviation (GRPO; verl `norm_adv_by_std_in_grpo=True`).
    GroupStd,
    /// Divide by the standard deviation of all scores in the batch (TRL `scale_rewards="batch"`).
    BatchStd,
    /// No scaling (Dr. GRPO; verl `norm_adv_by_std_in_grpo=False`).
    None,
}

/// Group-relative advantages per sequence: `(score − mean_group) / (std + eps)`, as verl's
/// `compute_grpo_outcome_advantage`.
///
/// `group_ids[i]` names the prompt sequence `i` was sampled for (groups need not be contiguous). Standard
/// deviations are unbiased (`torch.std`). Conventions, all verl's: a group of one has mean 0 and std 1, so
/// its advantage is its score over `1 + eps`; a group whose scores are all equal has std 0 and advantage
/// `0 / eps = 0`. verl uses `eps = 1e-6`, TRL `1e-4`. With [`GroupScale::BatchStd`] a batch of one sequence
/// has std 1, by the same convention.
pub fn grpo_advantages<T: Float>(scores: &[T], group_ids: &[u64], scale: GroupScale, eps: f64) -> Result<Vec<T>> {
    let groups = Groups::new(scores, group_ids)?;
    check_param("eps", eps, 0.0)?;
    let batch_std = match scale {
        GroupScale::BatchStd => std_or_one(&groups.scores),
        _ => 1.0,
    };
    let out = groups
        .scores
        .iter()
        .zip(&groups.member_of)
        .map(|(&s, &g)| {
            let (mean, std) = groups.stats[g];
            let centred = s - mean;
            T::from_f64(match scale {
                GroupScale::GroupStd => centred / (std + eps),
                GroupScale::BatchStd => centred / (batch_std + eps),
                GroupScale::None => centred,
            })
        })
        .collect();
    Ok(out)
}

/// RLOO advantages per sequence (Ahmadian et al. 2024): score minus the mean of the *other* scores of its
/// group, `n/(n−1) · (score − mean_group)`, as verl's `compute_rloo_outcome_advantage`. A group of one keeps
/// its raw score (verl's convention: no baseline is available).
pub fn rloo_advantages<T: Float>(scores: &[T], group_ids: &[u64]) -> Result<Vec<T>> {
    let groups = Groups::new(scores, group_ids)?;
    let out = groups
        .scores
        .iter()
        .zip(&groups.member_of)
        .map(|(&s, &g)| {
            let n = groups.sizes[g] as f64;
            let (mean, _) = groups.stats[g];
            T::from_f64(if n > 1.0 { s * n / (n - 1.0) - mean * n / (n - 1.0) } else { s })
        })
        .collect();
    Ok(out)
}

/// REINFORCE with a per-sequence baseline, token level: the discounted reward-to-go of each unmasked token
/// minus its sequence's baseline (e.g. the greedy completion's reward, ReMax). With `gamma = 1` this is verl's
/// `compute_remax_outcome_advantage`. Returns are the rewards-to-go.
pub fn reinforce_advantages<T: Float>(
    shape: SeqShape,
    rewards: &[T],
    mask: &[bool],
    baselines: &[T],
    gamma: f64,
) -> Result<Advantages<T>> {
    shape.check("rewards", rewards)?;
    shape.check_len("mask", mask)?;
    check_seq("baselines", baselines, shape.batch)?;
    check_param("gamma", gamma, 0.0)?;
    let mut adv = vec![T::ZERO; mask.len()];
    let mut ret = vec![T::ZERO; mask.len()];
    let rows = rewards.chunks_exact(shape.len).zip(mask.chunks_exact(shape.len)).zip(baselines);
    for ((adv_row, ret_row), ((r_row, m_row), &b)) in
        adv.chunks_exact_mut(shape.len).zip(ret.chunks_exact_mut(shape.len)).zip(rows)
    {
        let mut to_go = 0.0f64;
        for ((a, ret), (r, &m)) in adv_row.iter_mut().zip(ret_row.iter_mut()).zip(r_row.iter().zip(m_row)).rev() {
            if m {
                to_go = r.to_f64() + gamma * to_go;
                *ret = T::from_f64(to_go);
                *a = T::from_f64(to_go - b.to_f64());
            } else {
                to_go *= gamma;
            }
        }
    }
    Ok(Advantages { advantages: adv, returns: ret })
}

/// Spreads one value per sequence over its unmasked tokens (masked slots 0): the token-level advantages
/// the policy losses take, from per-sequence GRPO/RLOO advantages.
pub fn broadcast_to_tokens<T: Float>(shape: SeqShape, per_seq: &[T], mask: &[bool]) -> Result<Vec<T>> {
    shape.check_len("mask", mask)?;
    check_seq("per_seq", per_seq, shape.batch)?;
    let mut out = vec![T::ZERO; mask.len()];
    for ((row, m_row), &x) in out.chunks_exact_mut(shape.len).zip(mask.chunks_exact(shape.len)).zip(per_seq) {
        for (o, &m) in row.iter_mut().zip(m_row) {
            if m {
                *o = x;
            }
        }
    }
    Ok(out)
}

/// Scores grouped by prompt: group index per sequence, and each group's size, mean and std.
struct Groups {
    scores: Vec<f64>,
    member_of: Vec<usize>,
    sizes: Vec<usize>,
    /// (mean, unbiased std) per group, with verl's (0, 1) for groups of one.
    stats: Vec<(f64, f64)>,
}

impl Groups {
    fn new<T: Float>(scores: &[T], group_ids: &[u64]) -> Result<Self> {
        if scores.is_empty() {
            return Err(LearnError::Empty { name: "scores" });
        }
        check_seq("scores", scores, scores.len())?;
        if group_ids.len() != scores.len() {
            return Err(LearnError::LengthMismatch { name: "group_ids", expected: scores.len(), got: group_ids.len() });
        }
        let mut index = BTreeMap::new();
        let member_of: Vec<usize> = group_ids
            .iter()
            .map(|id| {
                let next = index.len();
                *index.entry(*id).or_insert(next)
            })
            .collect();
        let scores: Vec<f64> = scores.iter().map(|s| s.to_f64()).collect();
        let mut members: Vec<Vec<f64>> = vec![Vec::new(); index.len()];
        for (&s, &g) in scores.iter().zip(&member_of) {
            members[g].push(s);
        }
        let sizes = members.iter().map(Vec::len).collect();
        let stats = members.iter().map(|m| if m.len() == 1 { (0.0, 1.0) } else { (mean(m), std_or_one(m)) }).collect();
        Ok(Self { scores, member_of, sizes, stats })
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Unbiased standard deviation; 1 for a single value (verl's convention for groups of one).
fn std_or_one(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 1.0;
    }
    let m = mean(xs);
    libm::sqrt(xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64)
}

fn to_float<T: Float>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::from_f64(x)).collect()
}
