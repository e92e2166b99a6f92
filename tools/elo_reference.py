#!/usr/bin/env python3
"""Independent reference for `selfplay_games::elo::fit_ratings`: Bradley-Terry maximum-likelihood Elo.

Writes `crates/games/tests/fixtures/elo_reference.json`: a few fixed sets of match results, each with its
anchors, prior and the ratings this script finds. `crates/games/tests/elo_reference.rs` checks the Rust fit
against them to 1e-6 Elo.

The model (the same as the Rust module documents): player i beats j with probability
sigma(t_i - t_j); a draw counts half a win for each side; every pair that played gets `prior_draws` extra
virtual drawn games; anchored players keep their given rating; Elo = 400 * t / ln(10).

The method is deliberately different from the Rust one (Newton's method on all free players at once): at the
maximum every free player's score equation holds,

    sum_j n_ij * sigma(t_i - t_j) = s_i      (expected score = actual score, prior included),

and its left side increases with t_i. So this script sweeps over the free players, solving each one's
equation for t_i by bisection with the others held (coordinate ascent on a concave likelihood), until no
rating moves. Plain Python, no packages.

Usage: python3 tools/elo_reference.py [--out PATH]   (well under a second)
"""

import argparse
import json
import math

ELO_PER_NAT = 400.0 / math.log(10.0)


def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def fit(players, anchors, pairings, prior_draws):
    """Ratings in Elo. `pairings` are [a, b, wins, draws, losses] from a's side."""
    # score[i][j]: i's score against j, prior included; games[i][j] = score[i][j] + score[j][i].
    score = [[0.0] * players for _ in range(players)]
    met = set()
    for a, b, w, d, l in pairings:
        if w + d + l == 0:
            continue
        score[a][b] += w + 0.5 * d
        score[b][a] += l + 0.5 * d
        met.add((min(a, b), max(a, b)))
    for a, b in met:
        score[a][b] += 0.5 * prior_draws
        score[b][a] += 0.5 * prior_draws
    theta = [0.0] * players
    fixed = [False] * players
    for player, elo in anchors:
        theta[player] = elo / ELO_PER_NAT
        fixed[player] = True

    def excess(i, t):
        """Expected minus actual score of player i at strength t."""
        total = 0.0
        for j in range(players):
            n = score[i][j] + score[j][i]
            if j != i and n > 0:
                total += n * sigmoid(t - theta[j]) - score[i][j]
        return total

    for sweep in range(100000):
        moved = 0.0
        for i in range(players):
            if fixed[i]:
                continue
            lo, hi = -60.0, 60.0
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if excess(i, mid) > 0:
                    hi = mid
                else:
                    lo = mid
                if hi - lo < 1e-15:
                    break
            t = 0.5 * (lo + hi)
            moved = max(moved, abs(t - theta[i]))
            theta[i] = t
        if moved < 1e-13:
            return [t * ELO_PER_NAT for t in theta], sweep + 1
    raise RuntimeError("no convergence")


CASES = [
    {
        # The fixed opponents' round robin: a random player (the anchor) and alpha-beta players, strongest last,
        # the top one winning every game against the bottom one (finite only through the prior).
        "name": "round robin, one anchor",
        "players": 5,
        "anchors": [[0, 0.0]],
        "prior_draws": 1.0,
        "pairings": [
            [0, 1, 3, 1, 16],
            [0, 2, 1, 0, 19],
            [0, 3, 0, 0, 20],
            [0, 4, 0, 0, 20],
            [1, 2, 6, 2, 12],
            [1, 3, 3, 3, 14],
            [1, 4, 1, 0, 19],
            [2, 3, 7, 4, 9],
            [2, 4, 4, 2, 14],
            [3, 4, 8, 1, 11],
        ],
    },
    {
        # A network rated against fixed opponents whose ratings are held (several anchors); a perfect score
        # against the weakest and a reversed, split pairing that must add up.
        "name": "network against anchored opponents",
        "players": 5,
        "anchors": [[0, 0.0], [1, 412.5], [2, 790.25], [3, 1104.0]],
        "prior_draws": 1.0,
        "pairings": [
            [4, 0, 30, 0, 0],
            [4, 1, 22, 3, 5],
            [4, 2, 9, 6, 15],
            [3, 4, 12, 4, 4],
            [4, 3, 2, 0, 6],
        ],
    },
    {
        # No prior, no perfect score: the plain maximum-likelihood fit, two free players.
        "name": "no prior",
        "players": 4,
        "anchors": [[0, 0.0], [1, 250.0]],
        "prior_draws": 0.0,
        "pairings": [
            [2, 0, 14, 3, 3],
            [2, 1, 9, 5, 6],
            [3, 2, 11, 2, 7],
            [3, 1, 15, 1, 4],
        ],
    },
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="crates/games/tests/fixtures/elo_reference.json")
    args = parser.parse_args()
    out = []
    for case in CASES:
        elo, sweeps = fit(case["players"], case["anchors"], case["pairings"], case["prior_draws"])
        out.append(dict(case, elo=elo))
        print(f"{case['name']}: {sweeps} sweeps, Elo {[round(e, 3) for e in elo]}")
    with open(args.out, "w") as f:
        cases = ",\n".join("  " + json.dumps(c) for c in out)
        f.write('{"generator": "tools/elo_reference.py", "cases": [\n' + cases + "\n]}\n")


if __name__ == "__main__":
    main()
