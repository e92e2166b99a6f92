//! Next-token sampling: greedy, temperature, top-k, top-p (nucleus) and min-p, applied in that
//! order (the Hugging Face `generate` order), one seeded ChaCha stream per row so a row's tokens
//! never depend on which other rows share its batch.
//!
//! Each draw reports two log-probabilities of the chosen token:
//! * `logprob`: under the distribution actually sampled from: temperature-scaled, truncated by
//!   top-k/top-p/min-p and renormalised (0 for greedy, which samples from a point mass);
//! * `model_logprob`: under the model's own distribution, `log_softmax(logits)` at temperature 1:
//!   the quantity policy-gradient losses and KL penalties are written in.
//!
//! # Ties
//! Every filter is a threshold on the logit, so tokens with equal logits are kept or dropped
//! together: top-k keeps all tokens tied with the `k`-th largest (possibly more than `k`), top-p
//! all tokens tied with the one at which the cumulative mass first reaches `top_p`, min-p is a
//! threshold already. Why this rule rather than "exactly `k`, lowest ids first":
//! * tied tokens are indistinguishable to the model; breaking the tie by id would favour whatever
//!   the tokenizer happened to number first;
//! * it is Hugging Face's top-k rule (`TopKLogitsWarper` drops only `scores < kth_largest`);
//! * a threshold is what the GPU kernel (`selfplay-kernels`, `sampling.cu`) finds without sorting, by
//!   bisection over the logits; an id tie-break would cost it another pass. Both rank by the raw logit
//!   (not the temperature-scaled one), so a tie is the same tie on both.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::error::ModelError;
use crate::rng::unit_open;

/// How to turn a row of logits into a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// `0` means greedy (argmax, lowest id on ties); otherwise logits are divided by it.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches `top_p`; `1` disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; `0` disables.
    pub min_p: f32,
}

impl Default for SamplingParams {
    /// Plain sampling at temperature 1.
    fn default() -> Self {
        SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0 }
    }
}

impl SamplingParams {
    /// Argmax decoding.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Self::default() }
    }

    /// Rejects NaN or out-of-range settings.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::value("temperature", "must be in [0, inf)"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::value("top_p", "must be in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(ModelError::value("min_p", "must be in [0, 1]"));
        }
        Ok(())
    }
}

/// A sampled token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    pub token: u32,
    /// Log-probability under the (processed) distribution sampled from.
    pub logprob: f32,
    /// Log-probability under the model at temperature 1.
    pub model_logprob: f32,
}

/// A row's random stream: ChaCha8 seeded by the row's own seed.
pub fn row_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn check_logits(logits: &[f32]) -> Result<(), ModelError> {
    if logits.is_empty() {
        return Err(ModelError::EmptyInput("no logits to sample from"));
    }
    if logits.iter().any(|x| x.is_nan() || *x == f32::INFINITY) {
        return Err(ModelError::value("logits", "hold NaN or +infinity"));
    }
    if logits.iter().all(|&x| x == f32::NEG_INFINITY) {
        return Err(ModelError::value("logits", "every token is masked (-infinity)"));
    }
    Ok(())
}

fn log_softmax_at(logits: &[f32], token: usize) -> f32 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let sum: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
    (f64::from(logits[token] - max) - sum.ln()) as f32
}

/// The distribution sampling draws from, as `(token, probability)` in decreasing probability
/// (ties by increasing id), probabilities renormalised over the kept tokens. Not for greedy.
///
/// Filters keep or drop tokens with equal logits together (see the module docs): top-k keeps every
/// token whose logit is at least the `top_k`-th largest, top-p every token whose logit is at least
/// that of the token at which the cumulative mass first reaches `top_p`.
pub fn sampling_distribution(logits: &[f32], params: &SamplingParams) -> Result<Vec<(u32, f64)>, ModelError> {
    params.validate()?;
    check_logits(logits)?;
    if params.temperature == 0.0 {
        return Err(ModelError::value("temperature", "greedy decoding has no sampling distribution"));
    }
    let t = f64::from(params.temperature);
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    // (token, logit, unnormalised probability), by decreasing logit then increasing id.
    let mut ranked: Vec<(u32, f32, f64)> =
        logits.iter().enumerate().map(|(i, &x)| (i as u32, x, (f64::from(x - max) / t).exp())).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.retain(|&(_, _, p)| p > 0.0);
    if params.top_k > 0 && params.top_k < ranked.len() {
        let floor = ranked[params.top_k - 1].1;
        keep_at_least(&mut ranked, floor);
    }
    if params.top_p < 1.0 {
        let total: f64 = ranked.iter().map(|r| r.2).sum();
        let need = f64::from(params.top_p) * total;
        let mut mass = 0.0;
        if let Some(&(_, floor, _)) = ranked.iter().find(|r| {
            mass += r.2;
            mass >= need
        }) {
            keep_at_least(&mut ranked, floor);
        }
    }
    if params.min_p > 0.0
        && let Some(&(_, _, top)) = ranked.first()
    {
        let floor = f64::from(params.min_p) * top;
        ranked.retain(|&(_, _, p)| p >= floor);
    }
    let total: f64 = ranked.iter().map(|r| r.2).sum();
    Ok(ranked.into_iter().map(|(token, _, p)| (token, p / total)).collect())
}

/// Truncates a list ranked by decreasing logit to the tokens whose logit is at least `floor`.
fn keep_at_least(ranked: &mut Vec<(u32, f32, f64)>, floor: f32) {
    let keep = ranked.partition_point(|r| r.1 >= floor);
    ranked.truncate(keep);
}

/// Draws one token from a row of logits with the row's own random stream.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut ChaCha8Rng) -> Result<Sampled, ModelError> {
    params.validate()?;
    check_logits(logits)?;
    if params.temperature == 0.0 {
        let (token, _) = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best });
        return Ok(Sampled { token: token as u32, logprob: 0.0, model_logprob: log_softmax_at(logits, token) });
    }
    let dist = sampling_distribution(logits, params)?;
    let u = 1.0 - unit_open(rng); // in [0, 1)
    let mut cumulative = 0.0;
    let mut chosen = dist[dist.len() - 1];
    for &(token, p) in &dist {
        cumulative += p;
        if u < cumulative {
            chosen = (token, p);
            break;
        }
    }
    Ok(Sampled {
        token: chosen.0,
        logprob: chosen.1.ln() as f32,
        model_logprob: log_softmax_at(logits, chosen.0 as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits_of(probs: &[f64]) -> Vec<f32> {
        probs.iter().map(|p| p.ln() as f32).collect()
    }

    fn kept(logits: &[f32], params: SamplingParams) -> Vec<(u32, f64)> {
        sampling_distribution(logits, &params).unwrap()
    }

    fn close(got: &[(u32, f64)], want: &[(u32, f64)]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!((g.1 - w.1).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    const P: [f64; 5] = [0.1, 0.4, 0.05, 0.3, 0.15];

    #[test]
    fn masks_are_exact_on_a_hand_made_distribution() {
        let l = logits_of(&P);
        let base = SamplingParams::default();
        close(&kept(&l, base), &[(1, 0.4), (3, 0.3), (4, 0.15), (0, 0.1), (2, 0.05)]);
        close(&kept(&l, SamplingParams { top_k: 2, ..base }), &[(1, 0.4 / 0.7), (3, 0.3 / 0.7)]);
        // top-p 0.7: 0.4 + 0.3 reaches it exactly; 0.71 needs the third token.
        close(&kept(&l, SamplingParams { top_p: 0.7, ..base }), &[(1, 0.4 / 0.7), (3, 0.3 / 0.7)]);
        close(&kept(&l, SamplingParams { top_p: 0.71, ..base }), &[(1, 0.4 / 0.85), (3, 0.3 / 0.85), (4, 0.15 / 0.85)]);
        // min-p 0.3: floor 0.12 keeps 0.4, 0.3, 0.15.
        close(&kept(&l, SamplingParams { min_p: 0.3, ..base }), &[(1, 0.4 / 0.85), (3, 0.3 / 0.85), (4, 0.15 / 0.85)]);
        // top-p applies to the renormalised top-k mass: top-3 = {0.4, 0.3, 0.15}/0.85, whose first two
        // hold 0.824: enough for top-p 0.8, not for 0.85.
        close(&kept(&l, SamplingParams { top_k: 3, top_p: 0.8, ..base }), &[(1, 0.4 / 0.7), (3, 0.3 / 0.7)]);
        close(
            &kept(&l, SamplingParams { top_k: 3, top_p: 0.85, ..base }),
            &[(1, 0.4 / 0.85), (3, 0.3 / 0.85), (4, 0.15 / 0.85)],
        );
        // Temperature 0.5 squares then renormalises the probabilities.
        let sq: f64 = P.iter().map(|p| p * p).sum();
        close(&kept(&l, SamplingParams { temperature: 0.5, top_k: 1, ..base }), &[(1, 1.0)]);
        let t = kept(&l, SamplingParams { temperature: 0.5, ..base });
        assert!((t[0].1 - 0.16 / sq).abs() < 1e-6);
    }

    /// Ties at a threshold are kept together, including when the top-p boundary falls inside a tie.
    #[test]
    fn tied_tokens_are_kept_together() {
        let support = |l: &[f32], params| {
            let mut t: Vec<u32> = kept(l, params).iter().map(|d| d.0).collect();
            t.sort_unstable();
            t
        };
        let base = SamplingParams::default();
        assert_eq!(support(&[2.0, 2.0, 2.0, 1.0], SamplingParams { top_k: 2, ..base }), [0, 1, 2]);
        assert_eq!(support(&[1.0, 3.0, 3.0, 0.0], SamplingParams { top_k: 1, ..base }), [1, 2]);
        assert_eq!(support(&[1.0, 3.0, 2.0, 2.0, 0.0], SamplingParams { top_k: 2, ..base }), [1, 2, 3]);
        // Mass 0.3 each: top-p 0.5 is reached at the second tied token, so all three stay.
        let l = logits_of(&[0.3, 0.1, 0.3, 0.3]);
        close(&kept(&l, SamplingParams { top_p: 0.5, ..base }), &[(0, 1.0 / 3.0), (2, 1.0 / 3.0), (3, 1.0 / 3.0)]);
    }

    /// The tie rule written token by token, with no sorting: a token survives top-k when fewer than
    /// `k` tokens have a strictly larger logit, top-p when the kept mass strictly above its logit is
    /// below `top_p` of the kept mass, min-p when its probability is at least `min_p` times the largest.
    fn reference_distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let p: Vec<f64> = logits.iter().map(|&x| (f64::from(x - max) / f64::from(params.temperature)).exp()).collect();
        let mut keep: Vec<bool> = p.iter().map(|&p| p > 0.0).collect();
        if params.top_k > 0 {
            let above = |i: usize| logits.iter().filter(|&&y| y > logits[i]).count();
            keep = (0..p.len()).map(|i| keep[i] && above(i) < params.top_k).collect();
        }
        let mass_where = |keep: &[bool], f: &dyn Fn(usize) -> bool| -> f64 {
            (0..p.len()).filter(|&j| keep[j] && f(j)).map(|j| p[j]).sum()
        };
        if params.top_p < 1.0 {
            let need = f64::from(params.top_p) * mass_where(&keep, &|_| true);
            let above = |i: usize| mass_where(&keep, &|j| logits[j] > logits[i]);
            keep = (0..p.len()).map(|i| keep[i] && above(i) < need).collect();
        }
        let top = (0..p.len()).filter(|&i| keep[i]).map(|i| p[i]).fold(0.0, f64::max);
        keep = (0..p.len()).map(|i| keep[i] && p[i] >= f64::from(params.min_p) * top).collect();
        let total = mass_where(&keep, &|_| true);
        (0..p.len()).filter(|&i| keep[i]).map(|i| (i as u32, p[i] / total)).collect()
    }

    /// On logits drawn from a handful of values (ties everywhere, some tokens masked), the sampler's
    /// distribution equals the token-by-token reference for random settings of every filter.
    #[test]
    fn tie_heavy_inputs_match_the_reference_rule() {
        use rand_core::Rng;
        let mut rng = row_rng(2024);
        let mut unit = || f64::from(rng.next_u32()) / f64::from(u32::MAX);
        const LEVELS: [f32; 6] = [3.0, 0.0, -0.5, -1.0, -2.0, f32::NEG_INFINITY];
        for case in 0..3000 {
            let vocab = 1 + (unit() * 40.0) as usize;
            let mut logits: Vec<f32> = (0..vocab).map(|_| LEVELS[(unit() * 6.0) as usize % 6]).collect();
            logits[(unit() * vocab as f64) as usize % vocab] = 0.0; // at least one finite logit
            let params = SamplingParams {
                temperature: [0.5, 1.0, 1.7][case % 3],
                top_k: if case % 4 == 0 { 0 } else { (unit() * (vocab + 2) as f64) as usize },
                top_p: if case % 5 == 0 { 1.0 } else { (0.05 + 0.95 * unit()) as f32 },
                min_p: if case % 2 == 0 { 0.0 } else { (0.5 * unit()) as f32 },
            };
            let mut got = kept(&logits, params);
            got.sort_by_key(|d| d.0);
            let want = reference_distribution(&logits, &params);
            assert_eq!(got.len(), want.len(), "case {case} {logits:?} {params:?}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.0, w.0, "case {case} {logits:?} {params:?}: {got:?} vs {want:?}");
                assert!((g.1 - w.1).abs() < 1e-12, "case {case}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn greedy_picks_argmax_with_lowest_id_on_ties() {
        let mut rng = row_rng(0);
        let s = sample(&[0.0, 2.0, 2.0, -1.0], &SamplingParams::greedy(), &mut rng).unwrap();
        assert_eq!(s.token, 1);
        assert_eq!(s.logprob, 0.0);
        let lse = (1.0f32 + 2.0 * 2f32.exp() + (-1f32).exp()).ln();
        assert!((s.model_logprob - (2.0 - lse)).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_tokens() {
        let l = logits_of(&P);
        let draw = |seed| {
            let mut rng = row_rng(seed);
            (0..50).map(|_| sample(&l, &SamplingParams::default(), &mut rng).unwrap().token).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    /// Empirical frequencies over many draws match the sampling distribution (within 4.5 standard
    /// errors per token), and reported log-probabilities are those of the distribution sampled from.
    #[test]
    fn frequencies_match_probabilities() {
        let l = logits_of(&P);
        for params in [
            SamplingParams::default(),
            SamplingParams { temperature: 0.7, top_k: 4, ..Default::default() },
            SamplingParams { top_p: 0.9, min_p: 0.2, ..Default::default() },
        ] {
            let dist = sampling_distribution(&l, &params).unwrap();
            let n = 40_000;
            let mut counts = [0usize; 5];
            let mut rng = row_rng(42);
            for _ in 0..n {
                let s = sample(&l, &params, &mut rng).unwrap();
                counts[s.token as usize] += 1;
                let p = dist.iter().find(|d| d.0 == s.token).unwrap().1;
                assert!((f64::from(s.logprob) - p.ln()).abs() < 1e-5);
                assert!((f64::from(s.model_logprob) - P[s.token as usize].ln()).abs() < 1e-5);
            }
            for (token, &count) in counts.iter().enumerate() {
                let p = dist.iter().find(|d| d.0 == token as u32).map_or(0.0, |d| d.1);
                let freq = count as f64 / n as f64;
                let se = (p * (1.0 - p) / n as f64).sqrt();
                assert!((freq - p).abs() <= 4.5 * se + 1e-12, "{params:?} token {token}: {freq} vs {p}");
            }
        }
    }

    #[test]
    fn bad_settings_and_logits_are_errors() {
        let mut rng = row_rng(0);
        let ok = [0.0f32, 1.0];
        for params in [
            SamplingParams { temperature: f32::NAN, ..Default::default() },
            SamplingParams { temperature: -1.0, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { min_p: 1.5, ..Default::default() },
        ] {
            assert!(sample(&ok, &params, &mut rng).is_err());
        }
        let d = SamplingParams::default();
        assert!(sample(&[], &d, &mut rng).is_err());
        assert!(sample(&[0.0, f32::NAN], &d, &mut rng).is_err());
        assert!(sample(&[f32::NEG_INFINITY; 3], &d, &mut rng).is_err());
        // A masked token is never drawn.
        for _ in 0..100 {
            assert_eq!(sample(&[f32::NEG_INFINITY, 0.0], &d, &mut rng).unwrap().token, 1);
        }
    }
}
