#!/usr/bin/env python3
"""Re-derives the vendored mctx reference trees (crates/search/tests/data/mctx/*.json) with the installed mctx.

The files were copied unchanged from mctx's test suite; this script checks that the installed mctx still
produces them, by calling mctx's own `tree_test` reproduction (batch of 3 roots, PRNGKey(1), the file's
configuration) and comparing every field within mctx's tolerance (atol 1e-3). With `--write DIR` it also writes
the regenerated trees there (same format), e.g. to refresh the fixtures after an mctx update.

Usage: python3 tools/search_check_mctx_trees.py [--write DIR]
"""
import argparse
import copy
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from mctx._src.tests import tree_test  # noqa: E402  (also sets jax_threefry_partitionable=False as mctx does)

DATA = os.path.join(os.path.dirname(__file__), "..", "crates", "search", "tests", "data", "mctx")


def close(expected, got, path, atol=1e-3):
    if isinstance(expected, dict):
        if set(expected) != set(got):
            return f"{path}: keys {sorted(expected)} vs {sorted(got)}"
        for k in expected:
            err = close(expected[k], got[k], f"{path}/{k}", atol)
            if err:
                return err
        return None
    if isinstance(expected, list):
        if len(expected) != len(got):
            return f"{path}: {len(expected)} entries vs {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            err = close(e, g, f"{path}[{i}]", atol)
            if err:
                return err
        return None
    if not np.isclose(float(expected), float(got), atol=atol, rtol=0):
        return f"{path}: {expected} vs {got}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", metavar="DIR")
    args = parser.parse_args()
    failures = 0
    for name in sorted(f for f in os.listdir(DATA) if f.endswith(".json")):
        with open(os.path.join(DATA, name)) as fd:
            recorded = json.load(fd)
        reproduced = tree_test.TreeTest()._reproduce_tree(copy.deepcopy(recorded))
        err = close(recorded["tree"], reproduced, "tree")
        print(f"{name}: {'matches' if err is None else 'DIFFERS: ' + err}")
        failures += err is not None
        if args.write:
            os.makedirs(args.write, exist_ok=True)
            out = dict(recorded, tree=reproduced)
            with open(os.path.join(args.write, name), "w") as fd:
                json.dump(out, fd, indent=2)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
