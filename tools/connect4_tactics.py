#!/usr/bin/env python3
"""Independent count of the one-ply tactics (`selfplay_games::Tactic`) of a labelled Connect Four file.

For every position of a file of `<moves> s1 ... s7` lines (`#` comments and blank lines skipped), it replays the
moves on the plain board of `connect4_reference.py` (which shares nothing with the Rust code), tries every legal
column for each side with that board's win test, and classes the position: `win, threatened` (the player to move
can win at once and the opponent could too), `win`, `block` (only the opponent could) or `quiet`. It prints the
four counts, in that order, which `crates/games/tests/benchmark_set.rs` checks the Rust classification against.

Usage: python3 tools/connect4_tactics.py crates/games/data/connect4_benchmark_1200.txt
"""

import sys

from connect4_reference import COLS, Board


def tactic(moves):
    board = Board()
    for ch in moves:
        board.play(int(ch) - 1)
    legal = [c for c in range(COLS) if board.can_play(c)]
    can_win = any(board.wins_at(c) for c in legal)
    # The opponent's view: the same board with the other player to move.
    board.moves += 1
    threatened = any(board.wins_at(c) for c in legal)
    board.moves -= 1
    if can_win:
        return "win, threatened" if threatened else "win"
    return "block" if threatened else "quiet"


def main():
    counts = {"win, threatened": 0, "win": 0, "block": 0, "quiet": 0}
    with open(sys.argv[1]) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            moves = fields[0] if len(fields) == 8 else ""
            counts[tactic(moves)] += 1
    print(" ".join(f"{name}={n}" for name, n in counts.items()))


if __name__ == "__main__":
    main()
