//! [`Method`], the one name for every way of attempting a problem, and [`TestTimePoint`], what one costs.

use serde::{Deserialize, Serialize};

/// Every way the policy can attempt a problem: decoding, sampling with a choice among samples, or a
/// step-level search. Training uses the ones that produce attempts to learn from ([`Method::is_rollout`]);
/// evaluation reports any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// One greedy completion.
    Greedy,
    /// Independent samples at the sampling temperature; as a test-time method, the mean accuracy of one sample
    /// (pass@1, averaged over `budget` draws).
    #[default]
    Sample,
    /// The most common answer among `budget` samples.
    Majority,
    /// The most common answer among the samples whose every step the task's step checker accepts (the
    /// environment's exact process reward, min-aggregated: one invalid step and the sample has no vote); all
    /// samples vote when none passes. No verifier is consulted.
    MajorityChecked,
    /// A sample the verifier accepts, if any of `budget` is.
    BestOfN,
    /// Of the samples with a well-formed answer, the one the value head (or value model) rates highest: its step
    /// scores aggregated by `[eval] step_aggregation` (`last`, the finished completion's value, by default).
    BestOfNValue,
    /// A vote in which every sample with a well-formed answer counts its value-head (or value-model) score,
    /// aggregated as for `best_of_n_value` and clamped to [0, 1]: the judge-weighted vote of Math-Shepherd and
    /// Uesato et al. 2022. No verifier is consulted.
    WeightedVote,
    /// Step beam search: the budget is the beam width.
    Beam,
    /// MCTS with PUCT selection (MuZero) over steps: the budget is the number of simulations.
    Mcts,
    /// Gumbel MuZero (Sequential Halving at the root) over steps: the budget is the number of simulations.
    Gumbel,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 10] = [
        Method::Greedy,
        Method::Sample,
        Method::Majority,
        Method::MajorityChecked,
        Method::BestOfN,
        Method::BestOfNValue,
        Method::WeightedVote,
        Method::Beam,
        Method::Mcts,
        Method::Gumbel,
    ];

    /// The step searches, in report order.
    pub const SEARCHES: [Method; 3] = [Method::Beam, Method::Mcts, Method::Gumbel];

    /// The method's name in configs, reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Greedy => "greedy",
            Method::Sample => "sample",
            Method::Majority => "majority",
            Method::MajorityChecked => "majority_checked",
            Method::BestOfN => "best_of_n",
            Method::BestOfNValue => "best_of_n_value",
            Method::WeightedVote => "weighted_vote",
            Method::Beam => "beam",
            Method::Mcts => "mcts",
            Method::Gumbel => "gumbel",
        }
    }

    /// Whether it is a step-level search (beam, MCTS, Gumbel).
    pub fn is_search(self) -> bool {
        Method::SEARCHES.contains(&self)
    }

    /// Whether RL can take its attempts from it: samples, or a search's solutions.
    pub fn is_rollout(self) -> bool {
        self == Method::Sample || self.is_search()
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Method`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown method `{0}` (expected one of {names})", names = Method::ALL.map(Method::name).join(", "))]
pub struct UnknownMethod(pub String);

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| UnknownMethod(name.to_string()))
    }
}

/// One point of a test-time scaling curve: a method at a budget, with what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestTimePoint {
    /// [`Method::name`].
    pub method: String,
    /// Samples (sampling methods), beam width or simulations (step searches) per problem.
    pub budget: u32,
    /// Mean tokens generated per problem.
    pub tokens: f64,
    /// Mean positions run through the model per problem: prefills (each prompt or prefix once per generation
    /// call, less what a KV cache held) and decodes.
    #[serde(default)]
    pub forward_tokens: f64,
    /// Mean positions per problem had every sample or proposal prefilled its own prompt or prefix (no prefix
    /// sharing, no KV reuse): the baseline `forward_tokens` is measured against.
    #[serde(default)]
    pub recompute_tokens: f64,
    /// Mean forward FLOPs spent per problem: those of `forward_tokens`.
    pub flops: f64,
    /// Fraction of the problems solved.
    pub accuracy: f64,
}

/// One method at one budget, problem by problem: whether it solved each problem and what it cost there (what a
/// compute-optimal policy chooses among, per problem).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes {
    /// [`Method::name`].
    pub method: String,
    pub budget: u32,
    /// Whether it consults the task's verifier (best-of-N, a step search scoring finished solutions by it).
    pub uses_verifier: bool,
    /// Per problem.
    pub correct: Vec<bool>,
    /// Forward FLOPs per problem; their mean is the method's [`TestTimePoint::flops`] at this budget.
    pub flops: Vec<f64>,
}

impl Outcomes {
    /// `method@budget`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.method, self.budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for method in Method::ALL {
            assert_eq!(serde_json::to_string(&method).unwrap(), format!("\"{}\"", method.name()));
            assert_eq!(method.name().parse::<Method>(), Ok(method));
        }
        let unknown = "best-of-n".parse::<Method>().unwrap_err().to_string();
        assert!(Method::ALL.iter().all(|m| unknown.contains(m.name())), "{unknown}");
    }

    #[test]
    fn rollouts_are_samples_or_searches() {
        let rollouts: Vec<Method> = Method::ALL.into_iter().filter(|m| m.is_rollout()).collect();
        assert_eq!(rollouts, [Method::Sample, Method::Beam, Method::Mcts, Method::Gumbel]);
    }
}
