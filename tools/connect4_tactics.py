#!/usr/bin/env python3
"""Independent count of the one-ply tactics (`selfplay_games::Tactic`) of a labelled Connect Four file.

For every position of a file of `<moves> s1 ... s7` lines (`#` comments and blank lines skipped), it replays the
moves on a plain 7x6 list of columns, tries every legal column for each side with a win test that walks the four
directions from the new stone, and classes the position: `win, threatened` (the player to move can win at once
and the opponent could too), `win`, `block` (only the opponent could) or `quiet`. It prints the four counts, in
that order, which `crates/games/tests/benchmark_set.rs` checks the Rust classification against.

Usage: python3 tools/connect4_tactics.py crates/games/data/connect4_benchmark_1200.txt
"""

import sys


def replay(moves):
    """The columns (bottom first) after `moves`, and the player to move (1 or 2)."""
    columns = [[] for _ in range(7)]
    player = 1
    for ch in moves:
        columns[int(ch) - 1].append(player)
        player = 3 - player
    return columns, player


def stone(columns, col, row):
    return columns[col][row] if 0 <= col < 7 and 0 <= row < len(columns[col]) else 0


def wins_with(columns, col, player):
    """Whether `player` dropping a stone in `col` (not full) makes four."""
    row = len(columns[col])
    for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
        run = 1
        for sign in (1, -1):
            c, r = col + sign * dc, row + sign * dr
            while stone(columns, c, r) == player:
                run += 1
                c, r = c + sign * dc, r + sign * dr
        if run >= 4:
            return True
    return False


def tactic(moves):
    columns, player = replay(moves)
    legal = [c for c in range(7) if len(columns[c]) < 6]
    can_win = any(wins_with(columns, c, player) for c in legal)
    threatened = any(wins_with(columns, c, 3 - player) for c in legal)
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
