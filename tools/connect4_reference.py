#!/usr/bin/env python3
"""Independent Connect Four reference: exact move scores for seeded random positions.

Writes the fixture `crates/games/tests/fixtures/connect4_scores.txt`, one position a line:

    <moves> s1 s2 s3 s4 s5 s6 s7

where <moves> is the position in the usual notation (the columns 1-7 played from the empty board) and sK is
the exact score of playing column K (`-` when column K is full). Scores follow Pascal Pons's convention, from
the point of view of the player who makes the move: a win with the winner's k-th stone scores 22 - k, a loss
to the opponent's k-th stone scores k - 22, a draw 0.

This file shares no code or idea of representation with the Rust solver on purpose: a plain 6x7 list of
lists, a win test that walks the four directions from the last stone, and negamax with alpha-beta over a
memo of bounds keyed by the board. It is slow and meant to be obviously right.

Usage: python3 tools/connect4_reference.py [--count 100] [--seed 2026] [--out PATH]
(about 10 seconds on one core for the default 100 positions).
"""

import argparse
import sys

ROWS, COLS = 6, 7
CELLS = ROWS * COLS
# Columns searched from the centre outwards: only the search's speed depends on it, never its result.
ORDER = [3, 2, 4, 1, 5, 0, 6]


class Board:
    """A 6x7 grid, grid[row][col] with row 0 at the bottom; 0 empty, 1 first player, 2 second player."""

    def __init__(self):
        self.grid = [[0] * COLS for _ in range(ROWS)]
        self.heights = [0] * COLS
        self.moves = 0

    def mover(self):
        return 1 if self.moves % 2 == 0 else 2

    def can_play(self, col):
        return self.heights[col] < ROWS

    def play(self, col):
        self.grid[self.heights[col]][col] = self.mover()
        self.heights[col] += 1
        self.moves += 1

    def undo(self, col):
        self.heights[col] -= 1
        self.grid[self.heights[col]][col] = 0
        self.moves -= 1

    def wins_at(self, col):
        """Whether the player to move completes four in a row by playing `col` (which must be playable)."""
        row = self.heights[col]
        who = self.mover()
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            run = 1
            for sign in (1, -1):
                r, c = row + sign * dr, col + sign * dc
                while 0 <= r < ROWS and 0 <= c < COLS and self.grid[r][c] == who:
                    run += 1
                    r, c = r + sign * dr, c + sign * dc
            if run >= 4:
                return True
        return False

    def key(self):
        return tuple(tuple(r) for r in self.grid)


def win_score(moves_before):
    """The score, for the mover, of winning with the move that follows `moves_before` moves.

    The winner's stone count k is moves_before // 2 + 1 for either player, so the score is 22 - k."""
    return 22 - (moves_before // 2 + 1)


def negamax(board, alpha, beta, memo):
    """Exact score of `board` (nobody has won yet) for the player to move when it lies in (alpha, beta);
    otherwise a bound on the correct side of the window (fail-soft)."""
    if board.moves == CELLS:
        return 0
    for col in ORDER:
        if board.can_play(col) and board.wins_at(col):
            return win_score(board.moves)
    key = board.key()
    lo, hi = memo.get(key, (-CELLS, CELLS))
    if lo >= beta:
        return lo
    if hi <= alpha:
        return hi
    a, b = max(alpha, lo), min(beta, hi)
    if a >= b:
        # lo == hi: the exact score is known.
        return a
    best = -CELLS
    for col in ORDER:
        if not board.can_play(col):
            continue
        board.play(col)
        value = -negamax(board, -b, -a, memo)
        board.undo(col)
        if value > best:
            best = value
        if best > a:
            a = best
        if a >= b:
            break
    if best <= max(alpha, lo):
        hi = min(hi, best)
    elif best >= min(beta, hi):
        lo = max(lo, best)
    else:
        lo = hi = best
    memo[key] = (lo, hi)
    return best


def analyze(board):
    """The exact score of every column (None when full), from the point of view of the player to move."""
    memo = {}
    scores = []
    for col in range(COLS):
        if not board.can_play(col):
            scores.append(None)
        elif board.wins_at(col):
            scores.append(win_score(board.moves))
        else:
            board.play(col)
            scores.append(-negamax(board, -CELLS, CELLS, memo))
            board.undo(col)
    return scores


class Xorshift:
    """A tiny fixed generator so the positions never depend on Python's `random` module version."""

    def __init__(self, seed):
        self.state = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF

    def next(self):
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        self.state = x
        return x

    def below(self, n):
        return self.next() % n


def random_position(rng, plies):
    """Random legal play to `plies` moves, never making a winning move; None if that got stuck."""
    board = Board()
    moves = []
    while board.moves < plies:
        options = [c for c in range(COLS) if board.can_play(c) and not board.wins_at(c)]
        if not options:
            return None, None
        col = options[rng.below(len(options))]
        board.play(col)
        moves.append(col)
    return board, "".join(str(c + 1) for c in moves)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default="crates/games/tests/fixtures/connect4_scores.txt")
    args = parser.parse_args()
    rng = Xorshift(args.seed)
    lines = []
    seen = set()
    while len(lines) < args.count:
        # Mostly 24-36 plies played (quick in Python); one position in four at 16-23.
        plies = 16 + rng.below(8) if rng.below(4) == 0 else 24 + rng.below(13)
        board, moves = random_position(rng, plies)
        if board is None or moves in seen:
            continue
        seen.add(moves)
        scores = analyze(board)
        line = moves + " " + " ".join("-" if s is None else str(s) for s in scores)
        print(line, file=sys.stderr, flush=True)
        lines.append(line)
    with open(args.out, "w") as f:
        f.write("# Made by tools/connect4_reference.py --count %d --seed %d\n" % (args.count, args.seed))
        f.write("# <moves> then the exact score of columns 1-7 ('-' = full), Pons's convention\n")
        for line in lines:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
