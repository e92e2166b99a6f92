//! `selfplay game play`: a person against the network in the terminal. The loop ([`play`]) reads and writes any
//! `BufRead`/`Write` and takes any [`Agent`], so it is tested with scripted input and a scripted opponent.

use std::io::{BufRead, Write};

use clap::{Args, ValueEnum};
use selfplay_engine::alphazero::{NetAgent, load_agent};
use selfplay_games::{Agent, Connect4};
use selfplay_search::{Game, Player};

use super::agent_args::{AgentArgs, PlayedGame};
use crate::CliError;
use crate::limits::{MAX_SIMULATIONS, bounded};

/// Who moves first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum First {
    Human,
    Agent,
}

/// `selfplay game play` options.
#[derive(Debug, Args)]
pub struct PlayArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Who plays X, the first stone.
    #[arg(long, value_enum, default_value = "human")]
    first: First,
    /// Simulations of the network's search per move, 0 to 100000 (0: the network alone). 600 is the largest
    /// budget of the test-time curve, still well under a second a move for the default network.
    #[arg(long, default_value_t = 600, allow_hyphen_values = true,
          value_parser = |s: &str| bounded(s, 0..=MAX_SIMULATIONS))]
    simulations: usize,
}

/// Plays one game in the terminal.
pub fn run(args: PlayArgs) -> Result<(), CliError> {
    let PlayedGame::Connect4 = args.agent.game;
    let (model, config) = load_agent::<Connect4>(&args.agent.model)?;
    let mut agent = NetAgent::new(&model, &config, args.simulations, args.agent.seed);
    play(std::io::stdin().lock(), crate::stdio::stdout(), &mut agent, args.first)?;
    Ok(())
}

/// How a game in the terminal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    HumanWon,
    AgentWon,
    Draw,
    /// The input ended before the game did.
    Abandoned,
}

/// Plays one game of Connect Four between the person typing columns on `input` and `agent`, `first` moving
/// first, drawing the board on `output` at the start and after every move. A line that is not a legal column
/// is answered with the reason and asked again.
pub fn play<R: BufRead, W: Write>(
    mut input: R,
    mut output: W,
    agent: &mut dyn Agent<Connect4>,
    first: First,
) -> Result<Ending, CliError> {
    let human = if first == First::Human { Player::First } else { Player::Second };
    let stone = |player: Player| if player == Player::First { 'X' } else { 'O' };
    writeln!(output, "You are {}; {} moves first. Type a column, 1-7.\n", stone(human), stone(Player::First))?;
    let mut position = Connect4::new();
    writeln!(output, "{position}\n")?;
    while !position.is_terminal() {
        let column = if position.to_move() == human {
            match ask_column(&mut input, &mut output, &position)? {
                Some(column) => column,
                None => {
                    writeln!(output, "\nInput ended; the game is abandoned.")?;
                    return Ok(Ending::Abandoned);
                }
            }
        } else {
            let column = agent.choose_move(&position)?;
            writeln!(output, "The agent plays {}.", column + 1)?;
            column
        };
        position.play(column)?;
        writeln!(output, "{position}\n")?;
    }
    let (ending, verdict) = match position.winner() {
        None => (Ending::Draw, "A draw: the board is full."),
        Some(winner) if winner == human => (Ending::HumanWon, "You win!"),
        Some(_) => (Ending::AgentWon, "The agent wins."),
    };
    writeln!(output, "{verdict}")?;
    output.flush()?;
    Ok(ending)
}

/// Prompts until the person types a legal column of `position` (returned 0-based), or `None` when the input ends.
fn ask_column<R: BufRead, W: Write>(
    input: &mut R,
    output: &mut W,
    position: &Connect4,
) -> Result<Option<usize>, CliError> {
    let mut line = String::new();
    loop {
        write!(output, "Your move (1-7): ")?;
        output.flush()?;
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        match line.trim().parse::<usize>() {
            Ok(column @ 1..=7) if position.is_legal(column - 1) => return Ok(Some(column - 1)),
            Ok(column @ 1..=7) => writeln!(output, "Column {column} is full; choose another.")?,
            _ => writeln!(output, "{:?} is not a column: type a number from 1 to 7.", line.trim())?,
        }
    }
}

#[cfg(test)]
mod tests {
    use selfplay_games::AgentError;

    use super::*;

    /// Plays the columns it was given, in order.
    struct Scripted(Vec<usize>);

    impl Agent<Connect4> for Scripted {
        fn name(&self) -> String {
            String::from("scripted")
        }

        fn choose_move(&mut self, _: &Connect4) -> Result<usize, AgentError> {
            if self.0.is_empty() { Err(AgentError::GameOver) } else { Ok(self.0.remove(0)) }
        }
    }

    fn game(input: &str, agent: Vec<usize>, first: First) -> (Ending, String) {
        let mut output = Vec::new();
        let ending = play(input.as_bytes(), &mut output, &mut Scripted(agent), first).unwrap();
        (ending, String::from_utf8(output).unwrap())
    }

    /// The person stacks four in column 1 while the agent plays column 2; garbage, an out-of-range number and
    /// (later) a full column are refused with a reason and asked again.
    #[test]
    fn a_scripted_human_wins_through_garbage() {
        let (ending, out) = game("1\nhello\n\n9\n1\n1\n0\n1\n", vec![1, 1, 1], First::Human);
        assert_eq!(ending, Ending::HumanWon);
        assert!(out.contains("\"hello\" is not a column"), "{out}");
        assert!(out.contains("\"9\" is not a column") && out.contains("\"0\" is not a column"), "{out}");
        assert!(out.trim_end().ends_with("You win!"), "{out}");
        assert_eq!(out.matches("Your move").count(), 8, "one prompt per line read:\n{out}");
        assert_eq!(out.matches("1 2 3 4 5 6 7").count(), 8, "the empty board and 7 moves:\n{out}");
        assert!(out.contains("X O . . . . .\nX O . . . . .\nX O . . . . .\n1 2 3 4 5 6 7"), "{out}");
        assert_eq!(out.matches("The agent plays 2.").count(), 3);
    }

    /// The agent moving first wins; a full column is refused; the input ending mid-game abandons it.
    #[test]
    fn the_agent_wins_full_columns_are_refused_and_eof_abandons() {
        let (ending, out) = game("2\n3\n2\n", vec![0, 0, 0, 0], First::Agent);
        assert_eq!(ending, Ending::AgentWon);
        assert!(out.starts_with("You are O; X moves first."), "{out}");
        assert!(out.trim_end().ends_with("The agent wins."), "{out}");

        let (ending, out) = game("1\n1\n1\n1\n2\n", vec![0, 0, 0, 6], First::Human);
        assert!(out.contains("Column 1 is full; choose another."), "{out}");
        assert_eq!(ending, Ending::Abandoned);
        assert!(out.trim_end().ends_with("the game is abandoned."), "{out}");
    }
}
