//! End-to-end tests of `selfplay score` and `selfplay tasks generate` through the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Runs the binary with `args`, feeding `stdin`; returns stdout (asserting success).
fn selfplay(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn selfplay");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).expect("each output line is JSON")).collect()
}

#[test]
fn score_countdown_keeps_order_and_reports_bad_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"nums":[3,8,12,2],"target":24,"completion":"<answer>(8-2)*(12/3)</answer>"}"#);
    input.extend_from_slice(b"\nnot json\n\n");
    input.extend_from_slice(b"{\"nums\":[1],\"target\":1,\"completion\":\"\xff\"}\n"); // invalid UTF-8
    input.extend_from_slice(br#"{"nums":[3,8,12,2],"target":24,"completion":"<answer>8*3</answer>","id":7}"#);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"nums":[3,8],"completion":"<answer>8*3</answer>"}"#);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(br#"{"nums":[3,8],"target":24,"completion":"no answer here"}"#); // no final newline
    let out = json_lines(&selfplay(&["score", "--task", "countdown"], &input));
    assert_eq!(out.len(), 7, "one output line per input line");
    assert_eq!(out[0]["reward"], 1.0);
    assert_eq!(out[0]["correct"], true);
    assert_eq!(out[0]["reason"], "correct");
    assert_eq!(out[0]["answer_key"], "24");
    for (i, line) in [(1, 2), (2, 3), (3, 4), (5, 6)] {
        assert_eq!(out[i]["line"], line);
        assert!(out[i]["error"].is_string(), "line {line}: {}", out[i]);
        assert!(out[i].get("reward").is_none());
    }
    assert_eq!(out[4]["reward"], 0.1);
    assert_eq!(out[4]["reason"], "wrong_numbers");
    assert_eq!(out[4]["correct"], false);
    assert_eq!(out[6]["reward"], 0.0);
    assert_eq!(out[6]["reason"], "no_answer", "the last line needs no trailing newline");
}

#[test]
fn score_arithmetic_uses_numeric_equivalence() {
    let input = concat!(
        r#"{"question":"3/4?","answer":"0.75","completion":"<answer>3/4</answer>"}"#,
        "\n",
        r#"{"question":"1+2","answer":"3","completion":"<answer>4</answer>"}"#,
        "\n",
        r#"{"question":"1+2","completion":"<answer>3</answer>"}"#,
        "\n"
    );
    let out = json_lines(&selfplay(&["score", "--task", "arithmetic"], input.as_bytes()));
    assert_eq!(out.len(), 3);
    assert_eq!((out[0]["reward"].as_f64(), out[0]["correct"].as_bool()), (Some(1.0), Some(true)));
    assert_eq!(out[1]["reason"], "wrong_value");
    assert!(out[2]["error"].is_string());
}

#[test]
fn generate_is_deterministic_and_its_traces_score_correct() {
    for task in ["countdown", "arithmetic"] {
        let args = ["tasks", "generate", "--task", task, "--split", "train", "--n", "200", "--seed", "1", "--traces"];
        let a = selfplay(&args, b"");
        assert_eq!(a, selfplay(&args, b""), "same seed, same output");
        let mut other = args;
        other[9] = "2";
        assert_ne!(a, selfplay(&other, b""));
        assert_eq!(a.lines().count(), 200);
        // Each line carries the problem and a trace as `completion`: exactly what `score` reads.
        let scored = json_lines(&selfplay(&["score", "--task", task], a.as_bytes()));
        assert_eq!(scored.len(), 200);
        assert!(scored.iter().all(|s| s["correct"] == true), "{task}: a generated trace failed");
    }
}

/// Search streams (`--trace`) score correct too, carry `back` lines, and a name that is no style is refused.
#[test]
fn generated_search_streams_score_correct() {
    for trace in ["dfs-factors", "bfs3-target"] {
        let args = ["tasks", "generate", "--task", "countdown", "--n", "100", "--traces", "--trace", trace];
        let out = selfplay(&args, b"");
        let lines = json_lines(&out);
        let with_trace: Vec<_> = lines.iter().filter(|l| l["completion"].is_string()).collect();
        assert!(with_trace.len() > 30, "{trace}: many problems get a stream ({} of 100)", with_trace.len());
        assert!(out.contains("back\\n"), "{trace}: some stream backtracks");
        let scored = json_lines(&selfplay(&["score", "--task", "countdown"], out.as_bytes()));
        let correct = scored.iter().filter(|s| s["correct"] == true).count();
        assert_eq!(correct, with_trace.len(), "{trace}: every stream scores correct");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["tasks", "generate", "--task", "countdown", "--n", "1", "--trace", "bfs0-target"])
        .output()
        .expect("run selfplay");
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown trace style"), "{stderr}");
}

#[test]
fn val_target_holds_out_fixed_targets() {
    let held_out = [18, 21, 56, 63, 82, 87, 88, 92, 95, 99];
    let targets = |split: &str, seed: &str| -> Vec<u64> {
        let out = selfplay(
            &["tasks", "generate", "--task", "countdown", "--split", split, "--n", "300", "--seed", seed],
            b"",
        );
        json_lines(&out).iter().map(|p| p["target"].as_u64().expect("target")).collect()
    };
    for seed in ["1", "9"] {
        assert!(targets("val_target", seed).iter().all(|t| held_out.contains(t)));
        assert!(targets("train", seed).iter().all(|t| !held_out.contains(t)));
        assert!(targets("val", seed).iter().all(|t| !held_out.contains(t)));
    }
}
