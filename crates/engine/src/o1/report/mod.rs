//! The report of a finished run: `report.json`, `report.md` and the train-time and test-time plots.

mod fit;

pub use fit::{LogLinearFit, fit_rl_curve};

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compute_optimal::ComputeOptimalPoint;
use super::record::{SftPoint, TrainPoint};
use super::rl::ProposalStats;
use super::sft::TraceStats;
use super::thinking::ThinkingPoint;
use super::value_model::ValueModelReport;
use crate::plot::{Chart, PlotError, Series, write_chart};
use crate::rollout::TestTimePoint;

/// The report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The report did not serialise.
    #[error("report.json: {0}")]
    Json(#[from] serde_json::Error),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// `map_err` for an I/O error on `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io { path: path.to_path_buf(), source }
}

/// The run's summary, as `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub task: String,
    pub eval_problems: usize,
    pub wall_seconds: f64,
    /// Greedy accuracy after policy initialisation (SFT), on the held-out problems.
    pub sft_accuracy: f64,
    /// Greedy accuracy after RL, on the same held-out problems.
    pub rl_accuracy: f64,
    /// Greedy accuracy along policy initialisation (`[sft] eval_every`), ending at `sft_accuracy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sft_curve: Vec<SftPoint>,
    pub train_curve: Vec<TrainPoint>,
    /// Accuracy against log10 of RL FLOPs, fitted over the train curve's RL points (none with fewer than two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl_fit: Option<LogLinearFit>,
    /// The value model's data and fit, when one was trained (`[value_model] enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_model: Option<ValueModelReport>,
    pub test_time: Vec<TestTimePoint>,
    /// The compute-optimal policy's curves over the test-time points (method and budget per problem by the
    /// policy's own difficulty estimate, cross-fitted), with the verifier and without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute_optimal: Vec<ComputeOptimalPoint>,
    /// The traces policy initialisation imitated, by kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sft_traces: Vec<TraceStats>,
    /// Greedy accuracy of the trained policy against the most tokens a completion may take.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<ThinkingPoint>,
}

/// Writes `report.json`, `report.md` and the plots into `dir`; returns the files written.
pub fn write_report(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, ReportError> {
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let json = dir.join("report.json");
    fs::write(&json, serde_json::to_string_pretty(report)? + "\n").map_err(io_at(&json))?;
    let mut written = vec![json];

    let train = [Series {
        name: "greedy accuracy".into(),
        points: report.train_curve.iter().map(|p| (p.step as f64, p.accuracy)).collect(),
    }];
    let rl_flops = Series {
        name: "greedy accuracy".into(),
        points: report
            .train_curve
            .iter()
            .filter(|p| p.train_flops > 0.0)
            .map(|p| (p.train_flops, p.accuracy))
            .collect(),
    };
    // With a policy-initialisation curve, the FLOPs axis shows both phases of the train-time law.
    let train_flops = if report.sft_curve.len() > 1 {
        let sft = report.sft_curve.iter().map(|p| (p.train_flops, p.accuracy)).collect();
        vec![
            Series { name: "policy initialisation (SFT)".into(), points: sft },
            Series { name: "RL".into(), ..rl_flops },
        ]
    } else {
        vec![rl_flops]
    };
    let thinking = [Series {
        name: "greedy".into(),
        points: report.thinking.iter().map(|p| (p.max_tokens as f64, p.accuracy)).collect(),
    }];
    let by_budget = series_by_method(&report.test_time, |p| p.budget as f64);
    let mut by_flops = series_by_method(&report.test_time, |p| p.flops);
    for verifier in [true, false] {
        let frontier = frontier(&report.compute_optimal, verifier);
        if !frontier.is_empty() {
            let name = format!("compute-optimal, {}", if verifier { "verifier" } else { "no verifier" });
            by_flops.push(Series { name, points: frontier.iter().map(|p| (p.flops, p.accuracy)).collect() });
        }
    }
    let charts = [
        (
            "train_curve",
            Chart {
                title: "Train-time compute: accuracy vs RL steps",
                x_label: "RL step",
                y_label: "held-out accuracy",
                log_x: false,
                series: &train,
            },
        ),
        (
            "train_flops",
            Chart {
                title: "Train-time compute: accuracy vs training FLOPs",
                x_label: "training FLOPs",
                y_label: "held-out accuracy",
                log_x: true,
                series: &train_flops,
            },
        ),
        (
            "test_time_budget",
            Chart {
                title: "Test-time compute: accuracy vs budget",
                x_label: "budget (samples or simulations)",
                y_label: "held-out accuracy",
                log_x: true,
                series: &by_budget,
            },
        ),
        (
            "test_time_flops",
            Chart {
                title: "Test-time compute: accuracy vs FLOPs per problem",
                x_label: "FLOPs per problem",
                y_label: "held-out accuracy",
                log_x: true,
                series: &by_flops,
            },
        ),
        (
            "thinking_length",
            Chart {
                title: "Thinking length: accuracy vs completion budget",
                x_label: "most tokens a completion may take",
                y_label: "held-out accuracy",
                log_x: true,
                series: &thinking,
            },
        ),
    ];
    let proposed: Vec<(f64, &ProposalStats)> =
        report.train_curve.iter().filter_map(|p| Some((p.step as f64, p.proposals.as_ref()?))).collect();
    let proposals = [
        Series {
            name: "certified share".into(),
            points: proposed.iter().map(|(x, q)| (*x, q.certified_share())).collect(),
        },
        Series {
            name: "solve rate of proposed problems".into(),
            points: proposed.iter().filter_map(|(x, q)| Some((*x, f64::from(q.solve_rate?)))).collect(),
        },
        Series {
            name: "proposer reward".into(),
            points: proposed.iter().map(|(x, q)| (*x, f64::from(q.reward_mean))).collect(),
        },
    ];
    let proposals_chart = Chart {
        title: "Self-play proposing: what the policy proposed",
        x_label: "RL step",
        y_label: "share",
        log_x: false,
        series: &proposals,
    };
    let charts = charts.into_iter().chain((!proposed.is_empty()).then_some(("proposals", proposals_chart)));
    for (stem, chart) in charts {
        write_chart(&dir.join(stem), &chart)?;
        written.push(dir.join(format!("{stem}.svg")));
        written.push(dir.join(format!("{stem}.png")));
    }

    let md = dir.join("report.md");
    fs::write(&md, markdown(report)).map_err(io_at(&md))?;
    written.push(md);
    Ok(written)
}

/// One series per method, in first-appearance order, points sorted by x.
/// The points of one compute-optimal curve that beat every cheaper point's accuracy, ascending in FLOPs.
fn frontier(points: &[ComputeOptimalPoint], verifier: bool) -> Vec<&ComputeOptimalPoint> {
    let mut out: Vec<&ComputeOptimalPoint> = Vec::new();
    for p in points.iter().filter(|p| p.verifier == verifier) {
        if out.last().is_none_or(|last| p.accuracy > last.accuracy) {
            out.push(p);
        }
    }
    out
}

fn series_by_method(points: &[TestTimePoint], x: impl Fn(&TestTimePoint) -> f64) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for p in points {
        let point = (x(p), p.accuracy);
        match out.iter_mut().find(|s| s.name == p.method) {
            Some(series) => series.points.push(point),
            None => out.push(Series { name: p.method.clone(), points: vec![point] }),
        }
    }
    for series in &mut out {
        series.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn markdown(report: &Report) -> String {
    let mut md = format!(
        "# selfplay run report\n\nTask: **{}**, {} held-out problems, {:.0} s wall clock.\n\n\
         | stage | greedy accuracy |\n| --- | --- |\n| after policy initialisation (SFT) | {:.3} |\n| after RL | {:.3} |\n\n",
        report.task, report.eval_problems, report.wall_seconds, report.sft_accuracy, report.rl_accuracy
    );
    if !report.sft_traces.is_empty() {
        md.push_str("## Policy initialisation traces\n\n");
        md.push_str("| kind | problems | traces | missed by the search | too long | tokens / trace |\n");
        md.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for t in &report.sft_traces {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.1} |\n",
                t.kind, t.problems, t.traces, t.missed, t.too_long, t.mean_tokens
            ));
        }
        md.push('\n');
    }
    md.push_str("## Train-time compute\n\n![accuracy vs RL steps](train_curve.svg)\n![accuracy vs training FLOPs](train_flops.svg)\n\n");
    if report.sft_curve.len() > 1 {
        md.push_str("Policy initialisation:\n\n| SFT step | train FLOPs | accuracy |\n| --- | --- | --- |\n");
        for p in &report.sft_curve {
            md.push_str(&format!("| {} | {:.3e} | {:.3} |\n", p.step, p.train_flops, p.accuracy));
        }
        md.push_str("\nRL:\n\n");
    }
    if report.train_curve.iter().any(|p| p.proposals.is_some()) {
        md.push_str(
            "![what the policy proposed](proposals.svg)\n\nSelf-play proposing: each row's proposals are those of \
             the RL steps since the previous row.\n\n| step | train FLOPs | accuracy | proposals | certified | \
             distinct | solve rate | proposer reward |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for p in &report.train_curve {
            let q = p.proposals.clone().unwrap_or_default();
            let rate = q.solve_rate.map_or("-".to_string(), |r| format!("{r:.3}"));
            md.push_str(&format!(
                "| {} | {:.3e} | {:.3} | {} | {:.3} | {} | {rate} | {:.3} |\n",
                p.step,
                p.train_flops,
                p.accuracy,
                q.proposed,
                q.certified_share(),
                q.distinct,
                q.reward_mean
            ));
        }
    } else {
        md.push_str("| step | train FLOPs | accuracy |\n| --- | --- | --- |\n");
        for p in &report.train_curve {
            md.push_str(&format!("| {} | {:.3e} | {:.3} |\n", p.step, p.train_flops, p.accuracy));
        }
    }
    if let Some(f) = &report.rl_fit {
        md.push_str(&format!(
            "\nFit over {} RL points spanning {:.2} decades of RL FLOPs: accuracy = {:.4} + {:.4} log10(RL FLOPs), \
             **{:+.3} a decade**, R² {:.3}.\n",
            f.points, f.decades, f.intercept, f.slope_per_decade, f.slope_per_decade, f.r_squared
        ));
    }
    if let Some(v) = &report.value_model {
        let mse = v.final_loss.map_or("-".to_string(), |l| format!("{l:.3}"));
        md.push_str(&format!(
            "\nValue model: {} labelled samples ({:.1}% correct), mean squared error {mse} on them.\n",
            v.samples,
            100.0 * v.positive_rate
        ));
        if v.labelled_steps > 0 {
            md.push_str(&format!(
                "Process labels (Math-Shepherd): {} steps labelled by Monte-Carlo continuation, mean label {:.3}, \
                 {} tokens of continuations.\n",
                v.labelled_steps, v.mean_step_label, v.rollout_tokens
            ));
        }
    }
    md.push_str("\n## Test-time compute\n\n![accuracy vs budget](test_time_budget.svg)\n![accuracy vs FLOPs](test_time_flops.svg)\n\n");
    md.push_str(
        "Positions run through the model count prefills (less what the KV cache held) and decodes; the share is \
         of what every sample or proposal prefilling its own prompt or prefix would run.\n\n\
         | method | budget | tokens / problem | positions run / problem | share of recomputing | FLOPs / problem | \
         accuracy |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in &report.test_time {
        let share = if p.recompute_tokens > 0.0 { p.forward_tokens / p.recompute_tokens } else { f64::NAN };
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.2} | {:.3e} | {:.3} |\n",
            p.method, p.budget, p.tokens, p.forward_tokens, share, p.flops, p.accuracy
        ));
    }
    if !report.compute_optimal.is_empty() {
        md.push_str(
            "\n## Compute-optimal allocation\n\nA method and budget per problem, chosen by the policy's own estimate of \
             its chance (the value head on the prompt, in quantile bins) to maximise accuracy less a price per FLOP; \
             fitted on one half of the problems and judged on the other, both ways. Beside each point, the best single \
             method and budget at no more FLOPs per problem.\n\n\
             | verifier | FLOPs / problem | accuracy | best single at no more FLOPs | its accuracy | choices, \
             hardest-looking bin first |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        for verifier in [true, false] {
            for p in frontier(&report.compute_optimal, verifier) {
                let single = p.best_single.as_deref().unwrap_or("-");
                let single_accuracy = p.best_single_accuracy.map_or("-".to_string(), |a| format!("{a:.3}"));
                md.push_str(&format!(
                    "| {} | {:.3e} | {:.3} | {single} | {single_accuracy} | {} |\n",
                    if verifier { "yes" } else { "no" },
                    p.flops,
                    p.accuracy,
                    p.choices.join(", ")
                ));
            }
        }
    }
    if !report.thinking.is_empty() {
        md.push_str("\n## Thinking length\n\n![accuracy vs completion budget](thinking_length.svg)\n\n");
        md.push_str("| most tokens | tokens / problem | greedy accuracy |\n| --- | --- | --- |\n");
        for p in &report.thinking {
            md.push_str(&format!("| {} | {:.1} | {:.3} |\n", p.max_tokens, p.tokens, p.accuracy));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test-time point that ran exactly its generated tokens (no prefill to share).
    fn point(method: &str, budget: u32, tokens: f64, flops: f64, accuracy: f64) -> TestTimePoint {
        let (forward_tokens, recompute_tokens) = (tokens, tokens);
        TestTimePoint { method: method.into(), budget, tokens, forward_tokens, recompute_tokens, flops, accuracy }
    }

    /// A compute-optimal point with the verifier, two bins.
    fn allocation(flops: f64, accuracy: f64, single: Option<(&str, f64)>) -> ComputeOptimalPoint {
        ComputeOptimalPoint {
            verifier: true,
            lambda: 1e-7,
            flops,
            accuracy,
            choices: vec!["majority@4".into(), "greedy@1".into()],
            best_single: single.map(|(name, _)| name.into()),
            best_single_accuracy: single.map(|(_, accuracy)| accuracy),
        }
    }

    fn sample() -> Report {
        Report {
            task: "countdown".into(),
            eval_problems: 2,
            wall_seconds: 1.5,
            sft_accuracy: 0.25,
            rl_accuracy: 0.5,
            sft_curve: Vec::new(),
            train_curve: vec![
                TrainPoint { step: 0, train_flops: 0.0, accuracy: 0.25, proposals: None },
                TrainPoint { step: 10, train_flops: 1e9, accuracy: 0.5, proposals: None },
            ],
            rl_fit: None,
            value_model: None,
            test_time: vec![
                point("majority", 4, 80.0, 4e6, 0.5),
                point("majority", 1, 20.0, 1e6, 0.25),
                point("greedy", 1, 20.0, 1e6, 0.25),
            ],
            compute_optimal: vec![
                allocation(1e6, 0.25, Some(("greedy@1", 0.25))),
                allocation(2e6, 0.25, Some(("greedy@1", 0.25))),
                allocation(2.5e6, 0.5, Some(("greedy@1", 0.25))),
            ],
            sft_traces: vec![TraceStats {
                kind: "dfs-target".into(),
                problems: 10,
                traces: 8,
                missed: 1,
                too_long: 1,
                mean_tokens: 61.5,
            }],
            thinking: vec![
                ThinkingPoint { max_tokens: 8, tokens: 8.0, accuracy: 0.0 },
                ThinkingPoint { max_tokens: 16, tokens: 12.5, accuracy: 0.5 },
            ],
        }
    }

    #[test]
    fn report_round_trips_and_renders() {
        let dir = std::env::temp_dir().join(format!("selfplay-report-{}", std::process::id()));
        let report = sample();
        let files = write_report(&dir, &report).unwrap();
        assert!(files.iter().all(|f| f.exists()));
        let back: Report = serde_json::from_str(&fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(back, report);
        let md = fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(md.contains("| majority | 4 | 80.0 |"));
        assert!(md.contains("| dfs-target | 10 | 8 | 1 | 1 | 61.5 |"));
        assert!(md.contains("| 16 | 12.5 | 0.500 |"));
        // The frontier only: the point that costs more for the same accuracy is left out.
        assert!(md.contains("| yes | 1.000e6 | 0.250 | greedy@1 | 0.250 | majority@4, greedy@1 |"), "{md}");
        assert!(md.contains("| yes | 2.500e6 | 0.500 | greedy@1 | 0.250 |"));
        assert!(!md.contains("| yes | 2.000e6"));
        assert!(!dir.join("proposals.svg").exists(), "no proposing, no proposals plot");
        assert!(!md.contains("SFT step"), "no policy-initialisation curve, no table");
        assert!(!md.contains("decades of RL FLOPs"), "no fit, no line");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policy_initialisation_curve_gets_its_table() {
        let dir = std::env::temp_dir().join(format!("selfplay-report-sft-{}", std::process::id()));
        let mut report = sample();
        report.sft_curve = vec![
            SftPoint { step: 100, train_flops: 2e8, accuracy: 0.125 },
            SftPoint { step: 200, train_flops: 4e8, accuracy: 0.25 },
        ];
        report.rl_fit =
            Some(LogLinearFit { slope_per_decade: 0.05, intercept: -0.2, r_squared: 0.9, decades: 1.5, points: 30 });
        write_report(&dir, &report).unwrap();
        let back: Report = serde_json::from_str(&fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(back, report);
        let md = fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(md.contains("| 100 | 2.000e8 | 0.125 |\n| 200 | 4.000e8 | 0.250 |"), "{md}");
        assert!(md.contains("**+0.050 a decade**, R² 0.900"), "{md}");
        let svg = fs::read_to_string(dir.join("train_flops.svg")).unwrap();
        assert!(svg.contains("policy initialisation (SFT)"), "both phases on the FLOPs chart");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn proposals_get_their_columns_and_plot() {
        let dir = std::env::temp_dir().join(format!("selfplay-report-proposals-{}", std::process::id()));
        let mut report = sample();
        report.train_curve[1].proposals = Some(ProposalStats {
            proposed: 160,
            certified: 120,
            distinct: 100,
            solve_rate: Some(0.625),
            reward_mean: 0.25,
            ..ProposalStats::default()
        });
        let files = write_report(&dir, &report).unwrap();
        assert!(files.contains(&dir.join("proposals.svg")) && dir.join("proposals.png").exists());
        let md = fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(md.contains("| 10 | 1.000e9 | 0.500 | 160 | 0.750 | 100 | 0.625 | 0.250 |"), "{md}");
        assert!(md.contains("| 0 | 0.000e0 | 0.250 | 0 | 0.000 | 0 | - | 0.000 |"), "{md}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn series_group_by_method_and_sort() {
        let series = series_by_method(&sample().test_time, |p| p.budget as f64);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].points, vec![(1.0, 0.25), (4.0, 0.5)]);
    }
}
