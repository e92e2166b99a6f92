#!/usr/bin/env python3
"""Times DeepMind mctx on the setting of `benches/search.rs`: 7 actions, 800 simulations, batch 1 and 64,
muzero_policy and gumbel_muzero_policy, JAX on CPU, jit-compiled (compilation excluded), with a trivial
recurrent_fn (zero prior logits, value 0, reward 0, discount 1). Prints simulations per second.

Usage: python3 benches/peers/mctx_bench.py [--repeats N]
"""
import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mctx  # noqa: E402

ACTIONS = 7
SIMULATIONS = 800


def recurrent_fn(params, rng_key, action, embedding):
    del params, rng_key
    batch = action.shape[0]
    out = mctx.RecurrentFnOutput(
        reward=jnp.zeros([batch]),
        discount=jnp.ones([batch]),
        prior_logits=jnp.zeros([batch, ACTIONS]),
        value=jnp.zeros([batch]),
    )
    return out, embedding


def make(policy, batch):
    root = mctx.RootFnOutput(
        prior_logits=jnp.zeros([batch, ACTIONS]), value=jnp.zeros([batch]), embedding=jnp.zeros([batch])
    )

    @jax.jit
    def run(key):
        out = policy(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn, num_simulations=SIMULATIONS)
        return out.action_weights

    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, mctx {getattr(mctx, '__version__', '?')}, devices {jax.devices()}")
    for name, policy in [("muzero", mctx.muzero_policy), ("gumbel_muzero", mctx.gumbel_muzero_policy)]:
        for batch in [1, 64]:
            run = make(policy, batch)
            key = jax.random.PRNGKey(0)
            run(key).block_until_ready()  # compile
            times = []
            for i in range(args.repeats):
                k = jax.random.fold_in(key, i)
                t0 = time.perf_counter()
                run(k).block_until_ready()
                times.append(time.perf_counter() - t0)
            best = min(times)
            median = sorted(times)[len(times) // 2]
            print(
                f"mctx {name} batch {batch}: median {median * 1e3:.2f} ms, best {best * 1e3:.2f} ms, "
                f"{batch * SIMULATIONS / median:,.0f} simulations/s (median)"
            )


if __name__ == "__main__":
    main()
