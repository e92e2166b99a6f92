//! The command line's outputs through the real binary: `--out` paths that must be written through rather than
//! replaced (a symlink, a FIFO, a device, stdout), write errors and closed pipes (never a panic), size limits
//! refused while parsing, and random numeric arguments that must never crash it.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use proptest::prelude::*;

mod common;
use common::char_model;

const BIN: &str = env!("CARGO_BIN_EXE_selfplay");

/// A model directory that does not exist: any command that gets past its arguments fails at once on it.
const MISSING: &str = "/nonexistent/selfplay-model";

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-io-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Hugging Face fixture of the model crate (no tokenizer), for `logits`.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_gqa")
}

fn selfplay(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("spawn selfplay")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn selfplay")
}

/// `selfplay logits` on the fixture, writing to `out`.
fn logits_to(out: &Path) -> Output {
    let model = fixture();
    selfplay(&["logits", "--model", model.to_str().unwrap(), "--tokens", "3,1,4", "--out", out.to_str().unwrap()])
}

/// The tensor names and the logits' shape of a safetensors file's bytes.
fn logits_shape(bytes: &[u8]) -> Vec<usize> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    assert_eq!(file.names(), ["logits"]);
    file.tensor("logits").unwrap().shape().to_vec()
}

/// Asserts exit status `code` and exactly one stderr line, `error: ` + `message`; stdout empty.
fn one_line_error(out: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().collect::<Vec<_>>(), [format!("error: {message}")]);
    assert!(out.stdout.is_empty());
}

/// Asserts a usage error (exit 2) whose first line is `error: ` + `first_line`, followed only by clap's hint.
fn usage_error(args: &[&str], first_line: &str) {
    let out = selfplay(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines, [format!("error: {first_line}").as_str(), "For more information, try '--help'."], "{args:?}");
}

#[test]
fn logits_follow_a_symlink_and_keep_it() {
    let dir = scratch("symlink");
    let (target, link) = (dir.join("target.safetensors"), dir.join("link.safetensors"));
    std::fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = logits_to(&link);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(logits_shape(&std::fs::read(&target).unwrap()), [3, 48], "the target is written");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "nothing else in the folder: {names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn logits_write_into_a_fifo() {
    let dir = scratch("fifo");
    let fifo = dir.join("logits.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = logits_to(&fifo);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(logits_shape(&reader.join().unwrap()), [3, 48]);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn logits_to_stdout_and_to_a_full_device() {
    let out = logits_to(Path::new("-"));
    assert!(out.status.success());
    assert_eq!(logits_shape(&out.stdout), [3, 48], "stdout holds the file alone");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("wrote logits [3, 48] to -"));

    let out = logits_to(Path::new("/dev/full"));
    one_line_error(&out, 1, "cannot write /dev/full: No space left on device (os error 28)");
    assert!(Path::new("/dev/full").metadata().unwrap().file_type().is_char_device(), "not replaced (as root)");
}

#[test]
fn a_full_stdout_is_one_line_and_exit_1() {
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let run = |args: &[&str]| Command::new(BIN).args(args).stdout(full()).output().unwrap();
    let message = "cannot write to stdout: No space left on device (os error 28)";
    one_line_error(&run(&["tasks", "generate", "--task", "countdown", "--n", "3"]), 1, message);
    one_line_error(&run(&["--help"]), 1, message);
    one_line_error(&run(&["eval", "--help"]), 1, message);
}

/// `--print-config` of `train`, `demo` and `game train` into a full device: one line, exit 1; a negative `--seed`
/// or `--iterations` is refused for its value, not taken for an unknown flag.
#[test]
fn print_config_into_a_full_device_is_one_line() {
    for args in [
        &["train", "--print-config"][..],
        &["demo", "--game", "connect4", "--print-config"],
        &["game", "train", "--game", "connect4", "--out", MISSING, "--print-config"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(BIN).args(args).stdout(full).output().unwrap();
        one_line_error(&out, 1, "cannot write to stdout: No space left on device (os error 28)");
    }
    usage_error(&["train", "--seed", "-7"], "invalid value '-7' for '--seed <SEED>': invalid digit found in string");
    usage_error(
        &["game", "train", "--game", "connect4", "--out", MISSING, "--iterations", "-1"],
        "invalid value '-1' for '--iterations <ITERATIONS>': invalid digit found in string",
    );
}

/// Reads one line of a running command's stdout, then closes the pipe; the command must end quietly.
fn read_one_line_then_close(args: &[&str]) -> String {
    let mut child = spawn(args);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    line
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let line = read_one_line_then_close(&["tasks", "generate", "--task", "arithmetic", "--n", "1000000000"]);
    assert!(line.starts_with("{\"question\":"), "{line}");

    // `eval` writes its one line after the reader is gone.
    let dir = scratch("pipe");
    let model = char_model(&dir);
    let m = model.to_str().unwrap();
    let mut child = spawn(&["eval", "--model", m, "--problems", "2", "--max-new-tokens", "8"]);
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tasks_generate_streams_its_first_line() {
    let mut child = spawn(&["tasks", "generate", "--task", "countdown", "--n", "1000000000", "--traces"]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"nums\":") && line.contains("\"completion\":"), "{line}");
    assert!(child.try_wait().unwrap().is_none(), "still drawing the other 999999999");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
}

#[test]
fn sizes_beyond_their_limit_are_usage_errors_naming_the_flag() {
    let must = |lo: &str, hi: &str| format!("must be a whole number from {lo} to {hi}");
    let eval = |flag: &str, value: &str| ["eval", "--model", MISSING, flag, value].map(str::to_owned);
    let cases: Vec<([String; 5], String)> = vec![
        (eval("--problems", "0"), format!("invalid value '0' for '--problems <PROBLEMS>': {}", must("1", "100000"))),
        (
            eval("--problems", "1000000000000"),
            format!("invalid value '1000000000000' for '--problems <PROBLEMS>': {}", must("1", "100000")),
        ),
        (eval("--budget", "100000"), format!("invalid value '100000' for '--budget <BUDGET>': {}", must("1", "4096"))),
        (
            eval("--candidates", "100000"),
            format!("invalid value '100000' for '--candidates <CANDIDATES>': {}", must("1", "256")),
        ),
        (
            eval("--max-new-tokens", "1000000000000"),
            format!("invalid value '1000000000000' for '--max-new-tokens <MAX_NEW_TOKENS>': {}", must("1", "65536")),
        ),
        (eval("--numbers", "9"), format!("invalid value '9' for '--numbers <NUMBERS>': {}", must("1", "6"))),
        (
            eval("--temperature", "-1"),
            "invalid value '-1' for '--temperature <TEMPERATURE>': must be a finite number ≥ 0".into(),
        ),
        (
            eval("--temperature", "NaN"),
            "invalid value 'NaN' for '--temperature <TEMPERATURE>': must be a finite number ≥ 0".into(),
        ),
    ];
    for (args, first_line) in &cases {
        usage_error(&args.each_ref().map(String::as_str), first_line);
    }
    usage_error(
        &["tasks", "generate", "--task", "countdown", "--n", "1000000001"],
        &format!("invalid value '1000000001' for '--n <N>': {}", must("0", "1000000000")),
    );
    fn generate<'a>(flag: &'a str, value: &'a str) -> [&'a str; 7] {
        ["generate", "--model", MISSING, "--tokens", "1", flag, value]
    }
    usage_error(
        &generate("--max-new-tokens", "1000000000000"),
        &format!("invalid value '1000000000000' for '--max-new-tokens <MAX_NEW_TOKENS>': {}", must("0", "65536")),
    );
    usage_error(
        &generate("--top-p", "0"),
        "invalid value '0' for '--top-p <TOP_P>': must be a finite number in (0, 1]",
    );
    usage_error(
        &generate("--top-p", "inf"),
        "invalid value 'inf' for '--top-p <TOP_P>': must be a finite number in (0, 1]",
    );
    usage_error(
        &generate("--min-p", "-0.5"),
        "invalid value '-0.5' for '--min-p <MIN_P>': must be a finite number in [0, 1]",
    );
    let out = selfplay(&["logits", "--model", MISSING, "--tokens", "-1", "--out", "/nonexistent/x"]);
    one_line_error(&out, 1, r#"--tokens: "-1" is not a token id (invalid digit found in string)"#);
    usage_error(
        &generate("--temperature", "-1"),
        "invalid value '-1' for '--temperature <TEMPERATURE>': must be a finite number ≥ 0",
    );
    usage_error(
        &["game", "move", "--game", "connect4", "--model", MISSING, "--simulations", "100001"],
        &format!("invalid value '100001' for '--simulations <SIMULATIONS>': {}", must("0", "100000")),
    );
    usage_error(
        &["game", "eval", "--game", "connect4", "--model", MISSING, "--simulations", "0,8,1000000"],
        &format!("invalid value '1000000' for '--simulations <SIMULATIONS>': {}", must("0", "100000")),
    );
}

/// Values for numeric flags: numbers of every kind and size, with signs, exponents, NaN, infinities and junk.
fn numeric_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        any::<f32>().prop_map(|x| format!("{x:e}")),
        "[-+]?[0-9]{15,40}",
        "[-+]?[0-9.eE]{1,8}",
        prop::sample::select(vec!["NaN", "-nan", "inf", "-inf", "1e400", "-0", "", " ", "--", "-h", "0x10", "1_000"])
            .prop_map(str::to_owned),
    ]
}

/// Commands that fail fast once their arguments are read (the model is missing, the config invalid), each
/// followed by a numeric flag to fill.
fn command_with_flag() -> impl Strategy<Value = Vec<String>> {
    let templates: Vec<(&[&str], &[&str])> = vec![
        (
            &["eval", "--model", MISSING],
            &["--problems", "--budget", "--numbers", "--seed", "--max-new-tokens", "--temperature", "--candidates"],
        ),
        (
            &["generate", "--model", MISSING, "--tokens", "1"],
            &["--max-new-tokens", "--temperature", "--top-p", "--top-k", "--min-p", "--seed"],
        ),
        (
            &["tasks", "generate", "--task", "countdown", "--min-count", "9"],
            &["--n", "--seed", "--max-count", "--min-num", "--max-num", "--min-target", "--max-target"],
        ),
        (&["game", "move", "--game", "connect4", "--model", MISSING], &["--simulations", "--seed"]),
        (&["logits", "--model", MISSING, "--out", "/nonexistent/out.safetensors"], &["--tokens"]),
    ];
    prop::sample::select(templates).prop_flat_map(|(base, flags)| {
        (prop::sample::select(flags.to_vec()), numeric_text()).prop_map(move |(flag, value)| {
            base.iter().map(|s| s.to_string()).chain([flag.to_string(), value]).collect::<Vec<_>>()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the numbers, the binary answers with an error or a result, never a panic or an abort.
    #[test]
    fn numeric_arguments_never_crash_the_binary(args in command_with_flag()) {
        let out = Command::new(BIN).args(&args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(matches!(out.status.code(), Some(0..=2)), "{args:?}: {:?} {stderr}", out.status);
        prop_assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
