//! `selfplay game move`: positions on stdin, one per line in the column notation (`4453`); for each, in order, the
//! network's column (1–7) on its own stdout line, or `error: <why>` for a line that is not a position with a move
//! to make. Each answer is flushed before the next line is read, so another program can converse over a pipe.

use std::io::{BufRead, Write};

use clap::Args;
use selfplay_engine::alphazero::{AlphaZeroError, choose_moves, load_agent};
use selfplay_games::Connect4;
use selfplay_search::Game;

use super::agent_args::{AgentArgs, PlayedGame};
use crate::CliError;
use crate::limits::{MAX_SIMULATIONS, bounded};

/// `selfplay game move` options.
#[derive(Debug, Args)]
pub struct MoveArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Simulations of the search per move, 0 to 100000 (0: the network alone, its most likely legal move).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 0..=MAX_SIMULATIONS))]
    simulations: usize,
}

/// Answers stdin until it ends. A reader that closes the pipe early (`| head -1`) ends it quietly (in `main`).
pub fn run(args: MoveArgs) -> Result<(), CliError> {
    let PlayedGame::Connect4 = args.agent.game;
    let (model, config) = load_agent::<Connect4>(&args.agent.model)?;
    let choose = |position: &Connect4| {
        let (moves, _) =
            choose_moves(&model, &config, std::slice::from_ref(position), args.simulations, args.agent.seed)?;
        moves.first().copied().ok_or(AlphaZeroError::NoLegalMove)
    };
    Ok(answer(std::io::stdin().lock(), crate::stdio::stdout(), choose)?)
}

/// Why answering stopped: the streams, or the network (a bad input line never stops it).
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("stdin or stdout")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Agent(#[from] AlphaZeroError),
}

/// Reads `input` line by line and writes one line to `output` for each, flushed at once: the column `choose`
/// picks (1–7), or `error: <why>` for a line that is not an unfinished position. Surrounding whitespace (a
/// `\r` from Windows) is ignored; bytes that are not UTF-8 are a bad line, not a failure.
pub fn answer<R: BufRead, W: Write>(
    mut input: R,
    mut output: W,
    mut choose: impl FnMut(&Connect4) -> Result<usize, AlphaZeroError>,
) -> Result<(), AnswerError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        match position(&String::from_utf8_lossy(&line)) {
            Ok(position) => writeln!(output, "{}", choose(&position)? + 1)?,
            Err(why) => writeln!(output, "error: {why}")?,
        }
        output.flush()?;
    }
}

/// The unfinished position `line` writes, or why it is not one.
fn position(line: &str) -> Result<Connect4, String> {
    let moves = line.trim();
    if moves.is_empty() {
        return Err(String::from("empty line: expected the columns played from the empty board, 1-7 (e.g. 4453)"));
    }
    let position = Connect4::from_moves(moves).map_err(|e| e.to_string())?;
    if position.is_won() {
        return Err(String::from("the game is over: the last move made four in a row"));
    }
    if position.is_terminal() {
        return Err(String::from("the game is over: the board is full"));
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One answer line per input line, in order, bad lines answered with their reason and the run going on.
    #[test]
    fn answers_every_line_in_order() {
        let full_board = "126613431456475467333341527215612225546777";
        assert!(Connect4::from_moves(full_board).is_ok_and(|p| p.is_terminal() && !p.is_won()));
        let input = format!("4453\n\n48\n1111111\n1212121\n{full_board}\n  44\r\n\u{ff}\n4\n");
        let mut out = Vec::new();
        // The leftmost legal column stands in for the network.
        answer(input.as_bytes(), &mut out, |p| p.legal_actions().next().ok_or(AlphaZeroError::NoLegalMove)).unwrap();
        let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
        assert_eq!(lines.len(), 9, "{lines:?}");
        assert_eq!(lines[0], "1");
        assert!(lines[1].starts_with("error: empty line"), "{}", lines[1]);
        assert!(lines[2].starts_with("error: character '8'"), "{}", lines[2]);
        assert!(lines[3].contains("full"), "{}", lines[3]);
        assert!(lines[4].contains("four in a row"), "{}", lines[4]);
        assert!(lines[5].contains("board is full"), "{}", lines[5]);
        assert_eq!(lines[6], "1");
        assert!(lines[7].starts_with("error: character"), "{}", lines[7]);
        assert_eq!(lines[8], "1");
    }

    /// A full column is never answered: the answer is a legal move.
    #[test]
    fn answers_are_legal_columns() {
        let mut out = Vec::new();
        answer("111111\n".as_bytes(), &mut out, |p| p.legal_actions().next().ok_or(AlphaZeroError::NoLegalMove))
            .unwrap();
        assert_eq!(out, b"2\n");
    }
}
