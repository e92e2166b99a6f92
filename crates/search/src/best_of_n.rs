//! Best-of-N and voting: draw N complete candidates from a generator, let a judge extract each one's answer and
//! score it (outcome/verifier score, or per-step process scores), then choose with one of `selfplay-reward`'s
//! [`AnswerSelection`] rules (majority vote, ORM max / vote, PRM-min / PRM-last max / vote).

use alloc::vec::Vec;
use core::fmt::{Debug, Display};

use selfplay_reward::{AnswerSelection, CandidateScores};

use crate::error::{Result, SearchError};

/// Produces complete candidate solutions.
pub trait Generator {
    /// A candidate solution.
    type Candidate;
    /// The generator's failure type.
    type Error: Debug + Display;
    /// Appends `n` candidates to `out`. Seed per candidate so that results do not depend on batching.
    fn generate(&mut self, n: usize, out: &mut Vec<Self::Candidate>) -> core::result::Result<(), Self::Error>;
}

/// Extracts answers and scores candidates.
pub trait Judge<C> {
    /// A final answer, compared for voting.
    type Answer: Ord;
    /// The judge's failure type.
    type Error: Debug + Display;
    /// The candidate's final answer, if one can be extracted.
    fn answer(&self, candidate: &C) -> Option<Self::Answer>;
    /// One outcome score per candidate (verifier / ORM). Called for the ORM rules.
    fn outcome_scores(&mut self, candidates: &[C], out: &mut Vec<f32>) -> core::result::Result<(), Self::Error>;
    /// Per-step process scores per candidate (PRM). Called for the PRM rules.
    fn step_scores(&mut self, candidates: &[C], out: &mut Vec<Vec<f32>>) -> core::result::Result<(), Self::Error>;
}

/// The candidates, their answers, and the chosen one.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<C, A> {
    /// All candidates, in generation order.
    pub candidates: Vec<C>,
    /// Each candidate's extracted answer.
    pub answers: Vec<Option<A>>,
    /// Index of the chosen candidate (`None` when the rule could not choose, e.g. no answer at all).
    pub chosen: Option<usize>,
}

/// Generates `n` candidates and chooses one with `rule`.
pub fn best_of_n<G, J, E>(
    generator: &mut G,
    judge: &mut J,
    n: usize,
    rule: AnswerSelection,
) -> Result<Selection<G::Candidate, J::Answer>, E>
where
    E: Debug + Display,
    G: Generator<Error = E>,
    J: Judge<G::Candidate, Error = E>,
{
    if n == 0 {
        return Err(SearchError::InvalidConfig("n must be at least 1"));
    }
    let mut candidates = Vec::with_capacity(n);
    generator.generate(n, &mut candidates).map_err(SearchError::Evaluator)?;
    if candidates.len() != n {
        return Err(SearchError::Shape { what: "generated candidates", expected: n, got: candidates.len() });
    }
    let chosen = select(judge, &candidates, rule)?;
    let answers = candidates.iter().map(|c| judge.answer(c)).collect();
    Ok(Selection { candidates, answers, chosen })
}

/// Chooses among existing candidates with `rule`, asking the judge only for the scores the rule needs.
pub fn select<C, J: Judge<C>>(
    judge: &mut J,
    candidates: &[C],
    rule: AnswerSelection,
) -> Result<Option<usize>, J::Error> {
    let answers: Vec<Option<J::Answer>> = candidates.iter().map(|c| judge.answer(c)).collect();
    let n = candidates.len();
    match rule {
        AnswerSelection::MajorityVote => Ok(rule.select(&answers, CandidateScores::<Vec<f32>>::None)),
        AnswerSelection::OrmMax | AnswerSelection::OrmVote => {
            let mut scores = Vec::with_capacity(n);
            judge.outcome_scores(candidates, &mut scores).map_err(SearchError::Evaluator)?;
            if scores.len() != n {
                return Err(SearchError::Shape { what: "outcome scores", expected: n, got: scores.len() });
            }
            Ok(rule.select(&answers, CandidateScores::<Vec<f32>>::Outcome(&scores)))
        }
        _ => {
            let mut steps = Vec::with_capacity(n);
            judge.step_scores(candidates, &mut steps).map_err(SearchError::Evaluator)?;
            if steps.len() != n {
                return Err(SearchError::Shape { what: "step scores", expected: n, got: steps.len() });
            }
            Ok(rule.select(&answers, CandidateScores::Steps(&steps)))
        }
    }
}
