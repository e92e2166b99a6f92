//! Turning many scores into one decision: step scores into a solution score (process rewards), and N
//! candidate solutions into one chosen candidate (best-of-N and voting).
//!
//! Every selector returns the *index* of a chosen candidate, so callers keep their own candidate type.
//! Ties are always broken the same way: the candidate that appears first wins. For votes, a group of equal
//! answers is represented by its first member, and groups tie-break by that first member's position.
//! Candidates whose answer is `None` (no answer could be extracted) never win a vote; they can still win a
//! plain max over scores, since the score itself already judged them.

use alloc::collections::BTreeMap;

/// How per-step process-reward scores become one score for the whole solution.
///
/// `Min` is the usual PRM choice (a solution is as good as its weakest step), `Prod` treats steps as
/// independent probabilities of being correct, `Last` trusts the final step's judgement of the whole
/// prefix, and `Mean` is the lenient average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum StepAggregation {
    /// Smallest step score.
    Min,
    /// Product of the step scores.
    Prod,
    /// Score of the final step.
    Last,
    /// Arithmetic mean of the step scores.
    Mean,
}

impl StepAggregation {
    /// Every aggregation.
    pub const ALL: [StepAggregation; 4] =
        [StepAggregation::Min, StepAggregation::Prod, StepAggregation::Last, StepAggregation::Mean];

    /// Its name in configs and on the command line (`min`, `prod`, `last`, `mean`).
    pub fn name(self) -> &'static str {
        match self {
            StepAggregation::Min => "min",
            StepAggregation::Prod => "prod",
            StepAggregation::Last => "last",
            StepAggregation::Mean => "mean",
        }
    }
}

impl core::fmt::Display for StepAggregation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`StepAggregation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown step aggregation (expected min, prod, last or mean)")]
pub struct UnknownAggregation;

impl core::str::FromStr for StepAggregation {
    type Err = UnknownAggregation;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        StepAggregation::ALL.into_iter().find(|a| a.name() == name).ok_or(UnknownAggregation)
    }
}

/// Aggregates per-step scores into one solution score; `None` for a solution with no steps.
///
/// NaN propagates (a NaN step makes `Min`, `Prod` and `Mean` NaN) so that a broken scorer cannot be
/// mistaken for a confident one; [`best_score`] and the votes then ignore that candidate.
pub fn aggregate_steps(step_scores: &[f32], how: StepAggregation) -> Option<f32> {
    let last = *step_scores.last()?;
    Some(match how {
        StepAggregation::Min => step_scores
            .iter()
            .fold(f32::INFINITY, |acc, &s| if s.is_nan() || acc.is_nan() { f32::NAN } else { acc.min(s) }),
        StepAggregation::Prod => step_scores.iter().product(),
        StepAggregation::Last => last,
        // Sum in f64: a long trace of f32 scores loses precision otherwise.
        StepAggregation::Mean => {
            (step_scores.iter().map(|&s| f64::from(s)).sum::<f64>() / step_scores.len() as f64) as f32
        }
    })
}

/// Index of the highest score; NaN never wins, ties go to the first; `None` if empty or all NaN.
pub fn best_score(scores: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// Self-consistency (majority) vote: the most frequent answer wins; returns its first candidate.
///
/// `None` answers are not counted. Ties between answers go to the answer whose first candidate comes
/// first. Returns `None` when no candidate has an answer.
pub fn majority_vote<K: Ord>(answers: &[Option<K>]) -> Option<usize> {
    vote(answers, |_| Some(1.0))
}

/// Weighted vote (e.g. ORM-weighted): each answer collects the sum of its candidates' weights; the
/// answer with the largest total wins and is represented by its first candidate.
///
/// Non-finite weights (NaN, ±inf) contribute nothing, so one broken score cannot decide the vote.
/// Negative weights count as given. Ties go to the answer whose first candidate comes first. Returns
/// `None` when no candidate has an answer or when `weights.len() != answers.len()`.
pub fn weighted_vote<K: Ord>(answers: &[Option<K>], weights: &[f32]) -> Option<usize> {
    if weights.len() != answers.len() {
        return None;
    }
    vote(answers, |i| weights.get(i).copied())
}

/// Shared vote: groups candidates by answer, sums `weight(i)` (in f64) per group, picks the best group.
fn vote<K: Ord>(answers: &[Option<K>], weight: impl Fn(usize) -> Option<f32>) -> Option<usize> {
    // answer -> (first candidate index, total weight)
    let mut groups: BTreeMap<&K, (usize, f64)> = BTreeMap::new();
    for (i, answer) in answers.iter().enumerate() {
        let Some(key) = answer else { continue };
        let w = weight(i).filter(|w| w.is_finite()).map_or(0.0, f64::from);
        groups.entry(key).and_modify(|(_, total)| *total += w).or_insert((i, w));
    }
    let mut best: Option<(usize, f64)> = None;
    for &(first, total) in groups.values() {
        let better = match best {
            None => true,
            Some((best_first, best_total)) => total > best_total || (total == best_total && first < best_first),
        };
        if better {
            best = Some((first, total));
        }
    }
    best.map(|(first, _)| first)
}

/// The answer-selection rules used by best-of-N and voting, by name.
///
/// "ORM" uses one outcome-reward-model score per candidate; "PRM-min"/"PRM-last" aggregate per-step
/// process-reward scores with [`StepAggregation::Min`]/[`StepAggregation::Last`]. "max" takes the single
/// best-scored candidate; "vote" sums scores per distinct answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerSelection {
    /// Unweighted self-consistency vote over answers.
    MajorityVote,
    /// Candidate with the highest ORM score.
    OrmMax,
    /// Vote weighted by ORM score.
    OrmVote,
    /// Candidate with the highest minimum step score.
    PrmMinMax,
    /// Vote weighted by minimum step score.
    PrmMinVote,
    /// Candidate with the highest last-step score.
    PrmLastMax,
    /// Vote weighted by last-step score.
    PrmLastVote,
}

/// The scores a selection rule may look at, one entry per candidate.
#[derive(Debug)]
pub enum CandidateScores<'a, S> {
    /// No scores (only [`AnswerSelection::MajorityVote`] can use this).
    None,
    /// One outcome score per candidate.
    Outcome(&'a [f32]),
    /// Per-step process scores per candidate.
    Steps(&'a [S]),
}

// Manual impls: a derive would demand `S: Copy`, but only the slice reference is copied.
impl<S> Clone for CandidateScores<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for CandidateScores<'_, S> {}

impl AnswerSelection {
    /// Every rule, for sweeps in evaluations.
    pub const ALL: [AnswerSelection; 7] = [
        Self::MajorityVote,
        Self::OrmMax,
        Self::OrmVote,
        Self::PrmMinMax,
        Self::PrmMinVote,
        Self::PrmLastMax,
        Self::PrmLastVote,
    ];

    /// Picks a candidate index. Returns `None` when nothing can be chosen, including when the scores are
    /// of the wrong kind for this rule (ORM rules need `Outcome`, PRM rules need `Steps`) or their count
    /// differs from `answers.len()`. A candidate with no steps gets no PRM score (it cannot win a max and
    /// adds nothing to a vote).
    pub fn select<K: Ord, S: AsRef<[f32]>>(
        self,
        answers: &[Option<K>],
        scores: CandidateScores<'_, S>,
    ) -> Option<usize> {
        let prm = |how: StepAggregation| -> Option<alloc::vec::Vec<f32>> {
            match scores {
                CandidateScores::Steps(steps) if steps.len() == answers.len() => {
                    Some(steps.iter().map(|s| aggregate_steps(s.as_ref(), how).unwrap_or(f32::NAN)).collect())
                }
                _ => None,
            }
        };
        let orm = || match scores {
            CandidateScores::Outcome(s) if s.len() == answers.len() => Some(s),
            _ => None,
        };
        match self {
            Self::MajorityVote => majority_vote(answers),
            Self::OrmMax => best_score(orm()?),
            Self::OrmVote => weighted_vote(answers, orm()?),
            Self::PrmMinMax => best_score(&prm(StepAggregation::Min)?),
            Self::PrmMinVote => weighted_vote(answers, &prm(StepAggregation::Min)?),
            Self::PrmLastMax => best_score(&prm(StepAggregation::Last)?),
            Self::PrmLastVote => weighted_vote(answers, &prm(StepAggregation::Last)?),
        }
    }

    /// The rule's name as written in configs and reports (`"prm_min_vote"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::MajorityVote => "majority_vote",
            Self::OrmMax => "orm_max",
            Self::OrmVote => "orm_vote",
            Self::PrmMinMax => "prm_min_max",
            Self::PrmMinVote => "prm_min_vote",
            Self::PrmLastMax => "prm_last_max",
            Self::PrmLastVote => "prm_last_vote",
        }
    }

    /// Inverse of [`AnswerSelection::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn step_aggregations_exact() {
        let s = [0.5, 0.25, 1.0, 0.75];
        assert_eq!(aggregate_steps(&s, StepAggregation::Min), Some(0.25));
        assert_eq!(aggregate_steps(&s, StepAggregation::Prod), Some(0.5 * 0.25 * 0.75));
        assert_eq!(aggregate_steps(&s, StepAggregation::Last), Some(0.75));
        assert_eq!(aggregate_steps(&s, StepAggregation::Mean), Some(0.625));
        for how in StepAggregation::ALL {
            assert_eq!(aggregate_steps(&[], how), None);
            assert_eq!(how.name().parse::<StepAggregation>(), Ok(how));
        }
        assert_eq!("maximum".parse::<StepAggregation>(), Err(UnknownAggregation));
    }

    #[test]
    fn nan_step_poisons_min_prod_mean() {
        let s = [0.5, f32::NAN, 0.9];
        assert!(aggregate_steps(&s, StepAggregation::Min).is_some_and(f32::is_nan));
        assert!(aggregate_steps(&s, StepAggregation::Prod).is_some_and(f32::is_nan));
        assert!(aggregate_steps(&s, StepAggregation::Mean).is_some_and(f32::is_nan));
        assert_eq!(aggregate_steps(&s, StepAggregation::Last), Some(0.9));
        // NaN first must not be skipped by f32::min either.
        assert!(aggregate_steps(&[f32::NAN, 0.1], StepAggregation::Min).is_some_and(f32::is_nan));
    }

    #[test]
    fn best_score_ignores_nan_and_prefers_first() {
        assert_eq!(best_score(&[]), None);
        assert_eq!(best_score(&[f32::NAN, f32::NAN]), None);
        assert_eq!(best_score(&[f32::NAN, 0.2, 0.9, 0.9, f32::NAN]), Some(2));
        assert_eq!(best_score(&[f32::NEG_INFINITY]), Some(0));
    }

    #[test]
    fn majority_vote_counts_and_breaks_ties_by_first_candidate() {
        assert_eq!(majority_vote::<u8>(&[]), None);
        assert_eq!(majority_vote::<u8>(&[None, None]), None);
        // 7 appears twice, 3 three times -> first 3 is at index 1.
        assert_eq!(majority_vote(&[Some(7), Some(3), Some(7), Some(3), None, Some(3)]), Some(1));
        // Tie 2-2: answer 9 (first at index 0) beats answer 1 (first at index 1).
        assert_eq!(majority_vote(&[Some(9), Some(1), Some(1), Some(9)]), Some(0));
        // Many `None`s never beat a single real answer.
        assert_eq!(majority_vote(&[None, None, None, Some(4)]), Some(3));
    }

    #[test]
    fn weighted_vote_sums_weights_and_skips_non_finite() {
        let answers = [Some("a"), Some("b"), Some("b"), Some("c"), None];
        // a: 0.9, b: 0.5 + 0.5 = 1.0, c: NaN -> 0, None ignored despite weight 5.
        assert_eq!(weighted_vote(&answers, &[0.9, 0.5, 0.5, f32::NAN, 5.0]), Some(1));
        assert_eq!(weighted_vote(&answers, &[0.9, 0.4, 0.4, f32::INFINITY, 5.0]), Some(0));
        assert_eq!(weighted_vote(&answers, &[1.0, 2.0]), None, "length mismatch");
        // Tie on total -> earliest first candidate.
        assert_eq!(weighted_vote(&[Some(2), Some(1)], &[0.5, 0.5]), Some(0));
    }

    #[test]
    fn named_selections_combine_the_primitives() {
        let answers = [Some(10), Some(20), Some(20), Some(30)];
        let orm = [0.9f32, 0.5, 0.6, 0.2];
        let steps: Vec<Vec<f32>> = vec![vec![0.9, 0.1], vec![0.6, 0.7], vec![0.5, 0.95], vec![]];
        let none = CandidateScores::<Vec<f32>>::None;
        assert_eq!(AnswerSelection::MajorityVote.select(&answers, none), Some(1));
        assert_eq!(AnswerSelection::OrmMax.select(&answers, CandidateScores::<Vec<f32>>::Outcome(&orm)), Some(0));
        assert_eq!(AnswerSelection::OrmVote.select(&answers, CandidateScores::<Vec<f32>>::Outcome(&orm)), Some(1));
        // PRM-min: [0.1, 0.6, 0.5, none] -> max at 1; vote: 20 gets 1.1.
        assert_eq!(AnswerSelection::PrmMinMax.select(&answers, CandidateScores::Steps(&steps)), Some(1));
        assert_eq!(AnswerSelection::PrmMinVote.select(&answers, CandidateScores::Steps(&steps)), Some(1));
        // PRM-last: [0.1, 0.7, 0.95, none] -> max at 2; vote: 20 gets 1.65 (first candidate 1).
        assert_eq!(AnswerSelection::PrmLastMax.select(&answers, CandidateScores::Steps(&steps)), Some(2));
        assert_eq!(AnswerSelection::PrmLastVote.select(&answers, CandidateScores::Steps(&steps)), Some(1));
        // Wrong kind or count of scores -> None.
        assert_eq!(AnswerSelection::OrmMax.select(&answers, CandidateScores::Steps(&steps)), None);
        assert_eq!(AnswerSelection::PrmMinMax.select(&answers, none), None);
        assert_eq!(AnswerSelection::OrmVote.select(&answers, CandidateScores::<Vec<f32>>::Outcome(&orm[..2])), None);
    }

    #[test]
    fn names_round_trip() {
        for s in AnswerSelection::ALL {
            assert_eq!(AnswerSelection::from_name(s.name()), Some(s));
        }
        assert_eq!(AnswerSelection::from_name("nope"), None);
    }
}
