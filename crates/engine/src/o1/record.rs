//! What the o1 recipe measures as it goes, kept in every checkpoint: the train-time curve and its FLOPs.

use serde::{Deserialize, Serialize};

use super::rl::ProposalStats;
use super::sft::TraceStats;
use super::value_model::ValueModelReport;

/// One point of the train-time scaling curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPoint {
    /// RL steps taken (0: right after policy initialisation).
    pub step: u64,
    /// Training FLOPs spent up to it (SFT and RL).
    pub train_flops: f64,
    /// Greedy held-out accuracy.
    pub accuracy: f64,
    /// What the policy proposed over the RL steps since the previous point, with `[rl.propose]` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposals: Option<ProposalStats>,
}

/// One point of the policy-initialisation curve (`[sft] eval_every`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SftPoint {
    /// SFT steps taken.
    pub step: u64,
    /// Training FLOPs spent up to it.
    pub train_flops: f64,
    /// Greedy held-out accuracy.
    pub accuracy: f64,
}

/// The recipe's record: what its stages hand each other besides the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct O1Record {
    /// FLOPs spent on policy initialisation.
    pub sft_flops: f64,
    /// The traces policy initialisation imitated, by kind (empty for a run started from `init_from`).
    #[serde(default)]
    pub sft_traces: Vec<TraceStats>,
    /// Greedy held-out accuracy after policy initialisation, once measured.
    pub sft_accuracy: Option<f64>,
    /// Greedy held-out accuracy along policy initialisation: every `[sft] eval_every` steps and at its end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sft_curve: Vec<SftPoint>,
    /// FLOPs spent on training so far (SFT and RL).
    pub train_flops: f64,
    /// The train-time curve so far.
    pub train_curve: Vec<TrainPoint>,
    /// The value model's data and training, once its stage has started (`[value_model] enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_model: Option<ValueModelReport>,
    /// What the policy proposed since the train curve's last point (`[rl.propose]`), until the next takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_window: Option<ProposalStats>,
}
