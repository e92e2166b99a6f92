//! `selfplay game` through the real binary: a tiny Connect Four network trained by `game train` for one iteration,
//! then asked for moves over a pipe (good and bad lines, streaming, a reader that leaves early), played with
//! from the terminal, and measured by `game eval`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use selfplay_engine::alphazero::AlphaZeroConfig;
use selfplay_games::Connect4;
use selfplay_model::{init_weights, save_model_dir};
use selfplay_search::Game;
use selfplay_search::games::TicTacToe;
use selfplay_tensor::DType;

fn selfplay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_selfplay"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child =
        selfplay().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A command that refuses its arguments may exit before reading its input: a broken pipe here is its answer.
    if let Err(err) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    child.wait_with_output().unwrap()
}

fn success(args: &[&str], stdin: &str) -> String {
    let out = run(args, stdin);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The network of one tiny iteration of `selfplay game train` on Connect Four, trained once for every test here.
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        // Under Cargo's scratch directory for tests, which outlives the process (no test cleans up after the others).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-game-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = AlphaZeroConfig::tiny();
        config.selfplay.games = 8;
        config.arena.games = 4;
        let path = dir.join("tiny.toml");
        std::fs::write(&path, config.to_toml().unwrap()).unwrap();
        let run = dir.join("run");
        let (run_arg, config_arg) = (run.to_str().unwrap(), path.to_str().unwrap());
        let args =
            ["game", "train", "--game", "connect4", "--out", run_arg, "--config", config_arg, "--iterations", "1"];
        let summary = success(&args, "");
        assert!(summary.contains("8 self-play games"), "{summary}");
        let saved = std::fs::read_to_string(run.join("model/alphazero.toml")).unwrap();
        assert!(saved.contains("considered_actions = 8"), "the run's settings travel with the network:\n{saved}");
        run.join("model")
    })
}

fn model_arg() -> &'static str {
    model().to_str().unwrap()
}

/// Good and bad lines mixed: exactly one answer line per input line, in order; a legal column 1–7 for each
/// position, `error: ...` for each line that is not one; with search and with the network alone.
#[test]
fn move_answers_every_line() {
    let lines = ["", "4453", "48", "4444444", "1212121", "x", "44", "3333332", "12345671234567"];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    for simulations in ["0", "8"] {
        let out = success(
            &["game", "move", "--game", "connect4", "--model", model_arg(), "--simulations", simulations],
            &input,
        );
        let answers: Vec<&str> = out.lines().collect();
        assert_eq!(answers.len(), lines.len(), "{out}");
        for (line, answer) in lines.iter().zip(&answers) {
            match Connect4::from_moves(line) {
                Ok(position) if !line.is_empty() && !position.is_terminal() => {
                    let column: usize = answer.parse().unwrap_or_else(|_| panic!("{line:?} -> {answer:?}"));
                    assert!((1..=7).contains(&column) && position.is_legal(column - 1), "{line:?} -> {answer}");
                }
                _ => assert!(answer.starts_with("error: "), "{line:?} -> {answer:?}"),
            }
        }
        // Column 3 is full in `3333332`: the answer is another.
        assert_ne!(answers[7], "3");
    }
}

/// Each answer comes before the next line is written (a program can converse with it), and a reader that closes
/// the pipe early ends the run quietly with success.
#[test]
fn move_streams_and_tolerates_a_closed_pipe() {
    let mut child = selfplay()
        .args(["game", "move", "--game", "connect4", "--model", model_arg(), "--simulations", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for position in ["4", "44", "445"] {
        writeln!(stdin, "{position}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        assert!(matches!(answer.trim().parse::<usize>(), Ok(1..=7)), "{position} -> {answer:?}");
    }
    drop(stdout);
    // Its next answer meets the closed pipe; it may be gone before all of these are written.
    for _ in 0..100 {
        if writeln!(stdin, "4").and_then(|()| stdin.flush()).is_err() {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `game eval`: a row per budget under the table's header, or a JSON object per budget.
#[test]
fn eval_prints_a_row_per_budget() {
    let args = ["game", "eval", "--game", "connect4", "--model", model_arg(), "--simulations", "0,2,4"];
    let table = success(&args, "");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 3, "{table}");
    assert!(lines[0].contains("180 solver-labelled positions") && lines[1].starts_with("simulations"), "{table}");
    for (line, budget) in lines[2..].iter().zip(["0", "2", "4"]) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], budget, "{table}");
        assert!(fields[1..].iter().all(|f| f.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r))), "{table}");
    }
    let json = success(&[&args[..], &["--json"]].concat(), "");
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r["simulations"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 2, 4]);
    assert!(rows.iter().all(|r| r["all"].is_f64() && r["decisive"].is_f64()), "{json}");
    // Grouped by tactic: the same totals, four other columns.
    let by_tactic = success(&[&args[..], &["--by-tactic"]].concat(), "");
    let tactic_lines: Vec<&str> = by_tactic.lines().collect();
    assert!(tactic_lines[1].ends_with("win, threatened        win      block      quiet"), "{by_tactic}");
    for (line, grouped) in tactic_lines[2..].iter().zip(&lines[2..]) {
        let totals = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        assert_eq!(totals(line), totals(grouped), "{by_tactic}\n{table}");
    }
}

/// `game eval --positions`: the user's labelled file instead of the committed benchmark. On positions where every
/// move has the same solved score no move is a mistake, whatever the network; a bad line is named.
#[test]
fn eval_measures_a_labelled_file_of_the_users() {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-game-positions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("even.txt");
    std::fs::write(
        &file,
        "# every move alike\n51441121227 -15 -15 -15 -15 -15 -15 -15\n\n312375422464 -15 -15 -15 -15 -15 -15 -15\n",
    )
    .unwrap();
    let args = ["game", "eval", "--game", "connect4", "--model", model_arg(), "--simulations", "0,2"];
    let table = success(&[&args[..], &["--positions", file.to_str().unwrap()]].concat(), "");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("on 2 solver-labelled positions"), "{table}");
    for line in &lines[2..] {
        assert_eq!(line.split_whitespace().nth(1), Some("0.000"), "{table}");
    }
    std::fs::write(&file, "51441121227 -15 -15 -15 -15 -15 -15 -15\n4453 1 2\n").unwrap();
    let out = run(&[&args[..], &["--positions", file.to_str().unwrap()]].concat(), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("line 2: expected 7 scores"), "{stderr}");
    std::fs::write(&file, "# nothing\n").unwrap();
    let out = run(&[&args[..], &["--positions", file.to_str().unwrap()]].concat(), "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no labelled position"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `game play` in the terminal: the agent moves first and the board is drawn; input ending abandons the game.
#[test]
fn play_draws_the_board_and_stops_at_the_end_of_input() {
    let args = ["game", "play", "--game", "connect4", "--model", model_arg(), "--first", "agent", "--simulations", "0"];
    let out = success(&args, "garbage\n4\n");
    assert!(out.contains("The agent plays"), "{out}");
    assert!(out.contains("\"garbage\" is not a column"), "{out}");
    assert!(out.contains("1 2 3 4 5 6 7") && out.contains("abandoned"), "{out}");
}

/// The agent committed in `models/connect4` plays from a fresh clone, no training first: a scripted human's moves
/// are answered on the drawn board until the input ends.
#[test]
fn the_committed_agent_plays_in_the_terminal() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/connect4");
    let args = ["game", "play", "--game", "connect4", "--model", model.to_str().unwrap(), "--simulations", "8"];
    let out = success(&args, "4\n4\n3\n");
    assert!(out.matches("1 2 3 4 5 6 7").count() >= 4, "{out}");
    assert!(out.contains("The agent plays") && out.contains("abandoned"), "{out}");
}

/// A network for another game is refused in one line, naming the mismatch; the old `alphazero` command is gone.
#[test]
fn another_games_network_is_refused() {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-game-ttt-{}", std::process::id()));
    let config = AlphaZeroConfig::tiny().model_config::<TicTacToe>();
    save_model_dir(&dir, &config, &init_weights(&config, 0.02, 1).unwrap(), None, DType::F32).unwrap();
    let out =
        run(&["game", "move", "--game", "connect4", "--model", dir.to_str().unwrap(), "--simulations", "0"], "4\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("not a network for this game"), "{stderr}");
    assert!(!run(&["alphazero", "--game", "connect4"], "").status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `selfplay demo --game connect4` starts from its preset (too slow to run here): `--print-config` shows it, and
/// `--full` the long one.
#[test]
fn the_connect4_demo_uses_its_preset() {
    let printed = success(&["demo", "--game", "connect4", "--print-config"], "");
    let config: AlphaZeroConfig = toml::from_str(&printed).unwrap();
    assert_eq!(config, AlphaZeroConfig::connect4_demo());
    let printed = success(&["demo", "--game", "connect4", "--full", "--print-config"], "");
    assert_eq!(toml::from_str::<AlphaZeroConfig>(&printed).unwrap(), AlphaZeroConfig::connect4_full());
}
