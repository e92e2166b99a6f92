//! The report of a finished AlphaZero run, from its record alone: `report.json` (the record), `report.md` and the
//! plots, each as SVG and PNG ([`crate::plot`], the drawing path of the o1 report).
//!
//! * `elo_flops`: Elo against self-play compute (training FLOPs included), log x — the train-time law.
//! * `elo_games`: Elo against self-play games; the markdown table adds wall-clock hours.
//! * `mistakes`: mistakes on the labelled positions against iterations, with the arena's search and the network
//!   alone (games with a benchmark).
//! * `test_time`: mistakes against simulations for the final network, log x, one line per group of positions
//!   beside the total — the test-time law.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::arena::ArenaPoint;
use super::error::AlphaZeroError;
use super::stage::AlphaZeroRecord;
use crate::engine::EngineError;
use crate::plot::{Chart, Series, write_chart};

/// Writes `report.json`, `report.md` and the plots of `record` into `dir`; returns the files written.
pub fn write_report(dir: &Path, record: &AlphaZeroRecord) -> Result<Vec<PathBuf>, AlphaZeroError> {
    std::fs::create_dir_all(dir).map_err(EngineError::io(dir))?;
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(record)? + "\n").map_err(EngineError::io(&json))?;
    let mut written = vec![json];

    let elo_flops = elo_series(record, |p| p.flops);
    let elo_games = elo_series(record, |p| p.games as f64);
    let mistakes = mistake_series(&record.curve);
    let test_time = test_time_series(record);
    let charts = [
        ("elo_flops", "Train-time compute: Elo vs self-play FLOPs", "self-play and training FLOPs", true, &elo_flops),
        ("elo_games", "Train-time compute: Elo vs self-play games", "self-play games", false, &elo_games),
        ("mistakes", "Mistakes on the labelled positions vs iteration", "iteration", false, &mistakes),
        (
            "test_time",
            "Test-time compute: mistakes vs simulations",
            "simulations per move (0 drawn at 1)",
            true,
            &test_time,
        ),
    ];
    for (stem, title, x_label, log_x, series) in charts {
        if series.is_empty() {
            continue;
        }
        let y_label = if stem.starts_with("elo") { "Elo (random = 0)" } else { "mistake rate" };
        write_chart(&dir.join(stem), &Chart { title, x_label, y_label, log_x, series })?;
        written.push(dir.join(format!("{stem}.svg")));
        written.push(dir.join(format!("{stem}.png")));
    }

    let md = dir.join("report.md");
    std::fs::write(&md, markdown(record)).map_err(EngineError::io(&md))?;
    written.push(md);
    Ok(written)
}

/// The network's Elo against `x`, and each fixed opponent's rating as a flat line across the same range.
fn elo_series(record: &AlphaZeroRecord, x: impl Fn(&ArenaPoint) -> f64) -> Vec<Series> {
    if record.curve.is_empty() {
        return Vec::new();
    }
    let network = Series { name: "network".into(), points: record.curve.iter().map(|p| (x(p), p.elo)).collect() };
    let (lo, hi) =
        network.points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let league_points: Vec<(f64, f64)> = record.curve.iter().filter_map(|p| p.league_elo.map(|e| (x(p), e))).collect();
    let league = (!league_points.is_empty())
        .then(|| Series { name: "network (league: all games)".into(), points: league_points });
    let opponents = record.opponents.iter().flat_map(|r| &r.opponents);
    let flat = opponents.map(|o| Series { name: o.name.clone(), points: vec![(lo, o.elo), (hi, o.elo)] });
    std::iter::once(network).chain(league).chain(flat).collect()
}

fn mistake_series(curve: &[ArenaPoint]) -> Vec<Series> {
    let line = |name: &str, rate: fn(&ArenaPoint) -> Option<f64>| Series {
        name: name.into(),
        points: curve.iter().filter_map(|p| rate(p).map(|m| (p.iteration as f64, m))).collect(),
    };
    let lines = [
        line("with the arena's search", |p| p.mistakes.map(|m| m.all)),
        line("network alone", |p| p.network_mistakes.map(|m| m.all)),
    ];
    lines.into_iter().filter(|s| !s.points.is_empty()).collect()
}

/// The total and each group's mistakes against simulations (0, the network alone, drawn at 1 on the log axis).
fn test_time_series(record: &AlphaZeroRecord) -> Vec<Series> {
    let x = |simulations: usize| simulations.max(1) as f64;
    let mut out = Vec::new();
    if !record.test_time.is_empty() {
        let points = record.test_time.iter().map(|t| (x(t.simulations), t.mistakes.all)).collect();
        out.push(Series { name: "all positions".into(), points });
    }
    for t in &record.test_time {
        for g in &t.groups {
            let point = (x(t.simulations), g.rates.all);
            match out.iter_mut().find(|s| s.name == g.group) {
                Some(series) => series.points.push(point),
                None => out.push(Series { name: g.group.clone(), points: vec![point] }),
            }
        }
    }
    out
}

/// A score as `0.85 (17-0-3)`: wins plus half the draws over the games, then wins, draws, losses.
fn score(r: &super::play::MatchResult) -> String {
    format!("{:.2} ({}-{}-{})", r.score(), r.wins, r.draws, r.losses)
}

fn rate(m: Option<super::benchmark::MistakeRates>) -> String {
    m.map_or_else(|| "-".into(), |m| format!("{:.3}", m.all))
}

fn markdown(record: &AlphaZeroRecord) -> String {
    let mut md = String::from("# AlphaZero run report\n\n");
    let total_flops = record.selfplay_flops + record.train_flops;
    let _ = write!(md, "{} self-play games, {} moves, {total_flops:.3e} FLOPs", record.games, record.plies);
    match record.curve.last() {
        Some(last) => {
            let _ = write!(
                md,
                " in {:.2} h; final Elo **{:.0}** (random = 0), {} against random, \
                 mistakes {} with search and {} alone.\n\n",
                last.hours,
                last.elo,
                score(&last.vs_random),
                rate(last.mistakes),
                rate(last.network_mistakes)
            );
        }
        None => md.push_str("; no arena point.\n\n"),
    }

    if let Some(ratings) = &record.opponents {
        md.push_str(
            "## Fixed opponents\n\nRated by a round robin among themselves: Bradley–Terry maximum likelihood, \
             draws half a win, one virtual draw per pair met, random anchored at 0. A player who lost every game \
             (random, usually) is as far below the others as that prior allows, so gaps between the others and the \
             network are the measured part.\n\n| opponent | Elo |\n| --- | --- |\n",
        );
        for o in &ratings.opponents {
            let _ = writeln!(md, "| {} | {:.0} |", o.name, o.elo);
        }
        if !ratings.round_robin.is_empty() {
            md.push_str("\n| first | second | score of first |\n| --- | --- | --- |\n");
            for e in &ratings.round_robin {
                let _ = writeln!(md, "| {} | {} | {} |", e.first, e.second, score(&e.result));
            }
        }
        md.push('\n');
    }

    md.push_str("## Train-time compute\n\n![Elo vs FLOPs](elo_flops.svg)\n![Elo vs games](elo_games.svg)\n");
    if record.curve.iter().any(|p| p.mistakes.is_some()) {
        md.push_str("![mistakes vs iteration](mistakes.svg)\n");
    }
    let opponents: Vec<&str> =
        record.curve.first().map(|p| p.matches.iter().map(|m| m.second.as_str()).collect()).unwrap_or_default();
    let league = record.curve.iter().any(|p| p.league_elo.is_some() || !p.league.is_empty());
    if league {
        md.push_str(
            "\n*Elo* rates each point from its games against the fixed opponents alone; *league Elo* from all the \
             run's games at once, each point's network also having played the networks of the arena points before \
             it (*vs earlier networks*), the fixed opponents' ratings held.\n",
        );
    }
    md.push_str("\n| iteration | games | FLOPs | hours | Elo |");
    if league {
        md.push_str(" league Elo |");
    }
    md.push_str(" vs random |");
    for o in &opponents {
        let _ = write!(md, " vs {o} |");
    }
    md.push_str(" mistakes (search) | mistakes (network) |");
    if league {
        md.push_str(" vs earlier networks |");
    }
    md.push_str("\n|");
    md.push_str(&" --- |".repeat(8 + opponents.len() + 2 * usize::from(league)));
    md.push('\n');
    for p in &record.curve {
        let _ = write!(md, "| {} | {} | {:.3e} | {:.3} | {:.0} |", p.iteration, p.games, p.flops, p.hours, p.elo);
        if league {
            let _ = write!(md, " {} |", p.league_elo.map_or_else(|| "-".into(), |e| format!("{e:.0}")));
        }
        let _ = write!(md, " {} |", score(&p.vs_random));
        for m in &p.matches {
            let _ = write!(md, " {} |", score(&m.result));
        }
        let _ = write!(md, " {} | {} |", rate(p.mistakes), rate(p.network_mistakes));
        if league {
            let earlier: Vec<String> = p.league.iter().map(|e| format!("{} {}", e.second, score(&e.result))).collect();
            let _ = write!(md, " {} |", if earlier.is_empty() { "-".into() } else { earlier.join(", ") });
        }
        md.push('\n');
    }

    if !record.test_time.is_empty() {
        md.push_str("\n## Test-time compute\n\n![mistakes vs simulations](test_time.svg)\n\n");
        let groups: Vec<&str> = record.test_time[0].groups.iter().map(|g| g.group.as_str()).collect();
        md.push_str("| simulations | all | decisive |");
        for g in &groups {
            let _ = write!(md, " {g} |");
        }
        md.push_str("\n|");
        md.push_str(&" --- |".repeat(3 + groups.len()));
        md.push('\n');
        for t in &record.test_time {
            let _ = write!(md, "| {} | {:.3} | {:.3} |", t.simulations, t.mistakes.all, t.mistakes.decisive);
            for g in &t.groups {
                let _ = write!(md, " {:.3} |", g.rates.all);
            }
            md.push('\n');
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphazero::arena::{Encounter, OpponentRatings, RatedOpponent};
    use crate::alphazero::benchmark::{GroupRates, MistakeRates};
    use crate::alphazero::play::MatchResult;
    use crate::alphazero::stage::TestTimePoint;

    fn rates(all: f64) -> MistakeRates {
        MistakeRates { all, decisive: all * 1.5 }
    }

    fn groups(all: f64) -> Vec<GroupRates> {
        ["begin easy", "end easy"].iter().map(|g| GroupRates { group: (*g).into(), rates: rates(all) }).collect()
    }

    fn point(iteration: u64, elo: f64) -> ArenaPoint {
        let won = MatchResult { wins: 18, draws: 1, losses: 1 };
        ArenaPoint {
            iteration,
            games: iteration * 128,
            flops: iteration as f64 * 1e12,
            hours: iteration as f64 * 0.1,
            vs_random: won,
            matches: vec![Encounter { first: "network".into(), second: "alphabeta-1".into(), result: won }],
            elo,
            league: Vec::new(),
            league_elo: None,
            mistakes: Some(rates(0.3)),
            network_mistakes: Some(rates(0.4)),
            mistake_groups: groups(0.3),
            network_mistake_groups: groups(0.4),
        }
    }

    fn synthetic() -> AlphaZeroRecord {
        let opponents = vec![
            RatedOpponent { name: "random".into(), elo: 0.0 },
            RatedOpponent { name: "alphabeta-1".into(), elo: 420.0 },
        ];
        let round_robin = vec![Encounter {
            first: "random".into(),
            second: "alphabeta-1".into(),
            result: MatchResult { wins: 1, draws: 0, losses: 19 },
        }];
        let mut curve = vec![point(5, 210.0), point(10, 455.5)];
        curve[1].league = vec![Encounter {
            first: "network".into(),
            second: "iteration-5".into(),
            result: MatchResult { wins: 12, draws: 2, losses: 6 },
        }];
        curve[0].league_elo = Some(205.0);
        curve[1].league_elo = Some(470.2);
        AlphaZeroRecord {
            games: 1280,
            plies: 30_000,
            evaluations: 400_000,
            selfplay_flops: 8e12,
            train_flops: 2e12,
            curve,
            opponents: Some(OpponentRatings { opponents, round_robin }),
            test_time: [0, 8, 64]
                .iter()
                .map(|&s| TestTimePoint { simulations: s, mistakes: rates(0.3), groups: groups(0.3) })
                .collect(),
        }
    }

    #[test]
    fn writes_the_tables_and_every_plot() {
        let dir = std::env::temp_dir().join(format!("selfplay-az-report-{}", std::process::id()));
        let record = synthetic();
        let files = write_report(&dir, &record).unwrap();
        for stem in ["elo_flops", "elo_games", "mistakes", "test_time"] {
            for ext in ["svg", "png"] {
                assert!(dir.join(format!("{stem}.{ext}")).is_file(), "{stem}.{ext}");
            }
        }
        assert_eq!(files.len(), 2 + 8);
        assert!(files.iter().all(|f| f.is_file()));
        let back: AlphaZeroRecord =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(back, record);
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        let header = "| iteration | games | FLOPs | hours | Elo | league Elo | vs random | vs alphabeta-1 | mistakes (search) \
                      | mistakes (network) | vs earlier networks |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- \
                      | --- | --- |\n";
        assert!(md.contains(header), "{md}");
        let row = "| 10 | 1280 | 1.000e13 | 1.000 | 456 | 470 | 0.93 (18-1-1) | 0.93 (18-1-1) | 0.300 | 0.400 \
                   | iteration-5 0.65 (12-2-6) |\n";
        assert!(md.contains(row), "{md}");
        assert!(md.contains(
            "| 5 | 640 | 5.000e12 | 0.500 | 210 | 205 | 0.93 (18-1-1) | 0.93 (18-1-1) | 0.300 | 0.400 | - |"
        ));
        assert!(md.contains("| simulations | all | decisive | begin easy | end easy |"), "{md}");
        assert!(md.contains("| 64 | 0.300 | 0.450 | 0.300 | 0.300 |"), "{md}");
        assert!(md.contains("final Elo **456**"), "{md}");
        assert!(md.contains("| alphabeta-1 | 420 |"), "{md}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_without_a_benchmark_skips_the_mistake_plots() {
        let mut record = synthetic();
        record.test_time.clear();
        for p in &mut record.curve {
            (p.mistakes, p.network_mistakes) = (None, None);
        }
        assert!(mistake_series(&record.curve).is_empty());
        assert!(test_time_series(&record).is_empty());
        let series = elo_series(&record, |p| p.flops);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["network", "network (league: all games)", "random", "alphabeta-1"]);
        assert_eq!(series[1].points, [(5e12, 205.0), (1e13, 470.2)]);
        assert_eq!(series[3].points, [(5e12, 420.0), (1e13, 420.0)]);
        let md = markdown(&record);
        assert!(!md.contains("Test-time") && !md.contains("mistakes.svg"));
        // A run without a league has neither the line nor the columns.
        for p in &mut record.curve {
            (p.league, p.league_elo) = (Vec::new(), None);
        }
        assert_eq!(elo_series(&record, |p| p.flops).len(), 3);
        assert!(!markdown(&record).contains("league"));
    }
}
