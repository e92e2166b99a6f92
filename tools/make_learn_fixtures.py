#!/usr/bin/env python3
"""Reference numbers for `selfplay-learn`, written as small JSON fixtures under crates/learn/tests/fixtures/.

What produces each number (nothing here is re-derived by hand unless said so):
  advantages.json  verl 0.9.1 `verl/trainer/ppo/core_algos.py`: compute_gae_advantage_return,
                   compute_grpo_outcome_advantage (norm_adv_by_std_in_grpo True/False), compute_rloo_outcome_advantage,
                   compute_remax_outcome_advantage, compute_reinforce_plus_plus_baseline_outcome_advantage,
                   AdaptiveKLController. GRPO with *batch* std scaling is TRL's GRPOTrainer formula
                   (`scale_rewards="batch"`), which TRL only has inline in its trainer: reproduced here in torch.
  policy.json      verl compute_policy_loss_vanilla / compute_policy_loss_gspo (+ agg_loss modes), gradients by torch
                   autograd; entropy bonus as verl's actor combines it: pg_loss - entropy_coeff * agg_loss(entropy).
  value_kl.json    verl compute_value_loss, kl_penalty ("kl", "abs", "mse", "low_var_kl", "k3+") + agg_loss, autograd.
  supervised.json  torch.nn.functional.cross_entropy on random logits (unweighted) and verl agg_loss of -w*logp.
  preference.json  TRL 1.16 DPOTrainer._compute_loss ("sigmoid", "ipo", "robust") driven with precomputed
                   log-probabilities through a stand-in model object (no network, no weights). TRL 1.16 has no
                   label smoothing on "sigmoid"; the cDPO form -(1-e)logsig(bz)-e logsig(-bz) is written out in torch.
  optim.json       torch.optim.AdamW (foreach=False), torch.nn.utils.clip_grad_norm_, transformers
                   get_cosine_schedule_with_warmup / get_cosine_with_min_lr_schedule_with_warmup.
  distill.json     torch.nn.functional.cross_entropy(logits, target_probs) (soft targets: visit frequencies,
                   softmax targets), per-row weights as (cross_entropy(..., reduction="none") * w).mean(), and a
                   legal-action mask as illegal logits filled with -1e30 (exp underflows to exactly 0 in float64);
                   gradients by autograd. Its own generator, so adding it changed no other fixture.

verl is installed with `pip install verl --no-deps` (plus `pip install omegaconf`); its package __init__ pulls in ray,
so this script registers `verl` as a bare namespace (its __init__.py is not run) and stubs the three optional
modules core_algos' import chain touches but the functions used here never call: tensordict, codetiming, ray.

Run: python3 tools/make_learn_fixtures.py [SECTION ...]   (CPU, float64, a few seconds)
SECTION is a fixture name without .json (advantages, policy, value_kl, supervised, preference, optim, distill);
none means all. Each section draws from the one shared generator in the order above, so a subset rewrites its
files only when it is a prefix of that order; distill has its own generator and needs only torch.
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import types

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "learn", "tests", "fixtures")
torch.set_default_dtype(torch.float64)


def import_verl_core_algos():
    root = os.path.dirname(importlib.util.find_spec("verl").origin)
    pkg = types.ModuleType("verl")
    pkg.__path__ = [root]
    sys.modules["verl"] = pkg
    stubbed = {"tensordict", "codetiming", "ray"}

    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in stubbed:
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            m = Stub(spec.name)
            m.__path__ = []
            return m

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())
    ca = importlib.import_module("verl.trainer.ppo.core_algos")
    actor = importlib.import_module("verl.workers.config.actor")
    return ca, actor


ca, actor_cfg = None, None  # verl's core_algos and actor config, imported by main() for the sections using them


def lst(t):
    return t.detach().reshape(-1).tolist()


def write(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def masks(gen, b, l, interior=False, empty_row=False):
    lens = torch.randint(1, l + 1, (b,), generator=gen)
    m = (torch.arange(l)[None, :] < lens[:, None]).double()
    if interior:  # observation tokens inside a response (multi-turn): masked slots before EOS
        m[0, 1] = 0.0
        if l > 3:
            m[1, 2] = 0.0
    if empty_row:
        m[-1, :] = 0.0
    return m


AGG = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]


def advantages(gen):
    cases = {"gae": [], "grpo": [], "rloo": [], "remax": []}
    for b, l, gamma, lam in [(3, 6, 1.0, 1.0), (4, 7, 0.99, 0.95), (2, 5, 0.9, 0.0)]:
        rewards = torch.randn(b, l, generator=gen)
        values = torch.randn(b, l, generator=gen)
        m = masks(gen, b, l, interior=True)
        adv, ret = ca.compute_gae_advantage_return(rewards, values, m, gamma, lam)
        cases["gae"].append(dict(batch=b, len=l, gamma=gamma, lam=lam, rewards=lst(rewards), values=lst(values),
                                 mask=lst(m), advantages=lst(adv), returns=lst(ret)))
    score_sets = [
        ([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.5, 2.0], [0, 0, 0, 0, 1, 1, 1, 1]),
        ([1.0, 1.0, 1.0, 0.3, -0.2, 0.7, 5.0], [7, 7, 7, 3, 3, 3, 9]),  # all-equal group, a group of one
        ([0.2, 0.9, 0.4, 0.1, 0.8], [4, 2, 4, 2, 4]),  # interleaved groups
    ]
    for scores, ids in score_sets:
        b, l = len(scores), 3
        m = torch.ones(b, l)
        tlr = torch.zeros(b, l)
        tlr[:, -1] = torch.tensor(scores)
        index = np.array(ids)
        for norm in [True, False]:
            adv, _ = ca.compute_grpo_outcome_advantage(tlr, m, index, epsilon=1e-6, norm_adv_by_std_in_grpo=norm)
            cases["grpo"].append(dict(scores=scores, ids=ids, scale="group" if norm else "none", eps=1e-6,
                                      advantages=adv[:, 0].tolist()))
        # TRL GRPOTrainer scale_rewards="batch": (r - group mean) / (batch std + eps); verl's group-of-one mean 0.
        r = torch.tensor(scores)
        means = []
        for i in ids:
            g = [s for s, j in zip(scores, ids) if j == i]
            means.append(sum(g) / len(g) if len(g) > 1 else 0.0)
        adv = (r - torch.tensor(means)) / (r.std() + 1e-4)
        cases["grpo"].append(dict(scores=scores, ids=ids, scale="batch", eps=1e-4, advantages=adv.tolist()))
        adv, _ = ca.compute_rloo_outcome_advantage(tlr, m, index)
        cases["rloo"].append(dict(scores=scores, ids=ids, advantages=adv[:, 0].tolist()))
    for b, l in [(3, 5), (4, 6)]:
        rewards = torch.randn(b, l, generator=gen)
        m = masks(gen, b, l)
        base = torch.randn(b, generator=gen)
        adv, ret = ca.compute_remax_outcome_advantage(rewards, base, m)
        cases["remax"].append(dict(batch=b, len=l, rewards=lst(rewards), mask=lst(m), baselines=base.tolist(),
                                   advantages=lst(adv), returns=lst(ret)))
    cases["rfpp_baseline"] = []
    for scores, ids in score_sets[:2]:
        b, l = len(scores), 4
        m = masks(gen, b, l)
        tlr = torch.zeros(b, l)
        tlr[:, -1] = torch.tensor(scores)
        adv, _ = ca.compute_reinforce_plus_plus_baseline_outcome_advantage(tlr, m, np.array(ids))
        cases["rfpp_baseline"].append(dict(batch=b, len=l, scores=scores, ids=ids, mask=lst(m), advantages=lst(adv)))
    ctl = ca.AdaptiveKLController(init_kl_coef=0.05, target_kl=0.1, horizon=1000)
    kl_ctl = dict(init=0.05, target=0.1, horizon=1000, updates=[])
    for kl, n in [(0.3, 256), (0.05, 256), (0.11, 128), (0.0, 512)]:
        ctl.update(kl, n)
        kl_ctl["updates"].append(dict(kl=kl, n_steps=n, value=float(ctl.value)))
    cases["adaptive_kl"] = kl_ctl
    write("advantages.json", cases)


def actor_config(clip_low, clip_high, clip_c):
    return actor_cfg.ActorConfig(strategy="fsdp", clip_ratio=0.2, clip_ratio_low=clip_low, clip_ratio_high=clip_high,
                                 clip_ratio_c=clip_c, ppo_micro_batch_size_per_gpu=1, rollout_n=1)


def policy(gen):
    cases = []
    configs = [
        ("vanilla", 0.2, 0.2, 3.0, "token-mean", 0.0),
        ("vanilla", 0.2, 0.28, 3.0, "seq-mean-token-mean", 0.0),
        ("vanilla", 0.1, 0.3, 1.5, "seq-mean-token-sum", 0.01),
        ("vanilla", 0.2, 0.28, 1e9, "seq-mean-token-sum-norm", 0.0),
        ("gspo", 3e-4, 4e-4, None, "seq-mean-token-mean", 0.0),
        ("gspo", 0.05, 0.08, None, "token-mean", 0.0),
        ("gspo", 0.05, 0.08, None, "seq-mean-token-sum", 0.0),
    ]
    for mode, lo, hi, c, agg, ent_coef in configs:
        b, l = 5, 6
        old = -torch.rand(b, l, generator=gen) * 3.0
        spread = 0.02 if mode == "gspo" and lo < 1e-3 else 0.4
        lp = (old + torch.randn(b, l, generator=gen) * spread).requires_grad_(True)
        if mode == "gspo":  # GSPO: one advantage per sequence
            adv = torch.randn(b, 1, generator=gen).expand(b, l).clone()
        else:
            adv = torch.randn(b, l, generator=gen)
        m = masks(gen, b, l, empty_row=(agg != "token-mean"))
        ent = (torch.rand(b, l, generator=gen) * 2.0).requires_grad_(True)
        cfg = actor_config(lo, hi, 3.0 if c is None else c)
        fn = ca.compute_policy_loss_vanilla if mode == "vanilla" else ca.compute_policy_loss_gspo
        pg_loss, metrics = fn(old, lp, adv, m, loss_agg_mode=agg, config=cfg)
        loss = pg_loss - ent_coef * ca.agg_loss(ent, m, agg)
        loss.backward()
        cases.append(dict(mode=mode, clip_low=lo, clip_high=hi, dual_clip=c, agg=agg, entropy_coef=ent_coef,
                          batch=b, len=l, old_logprobs=lst(old), logprobs=lst(lp), advantages=lst(adv), mask=lst(m),
                          entropy=lst(ent), loss=loss.item(), pg_loss=pg_loss.item(), grad_logprobs=lst(lp.grad),
                          grad_entropy=lst(ent.grad), clip_frac=metrics["actor/pg_clipfrac"],
                          clip_frac_lower=metrics["actor/pg_clipfrac_lower"], approx_kl=metrics["actor/ppo_kl"]))
    write("policy.json", cases)


def value_kl(gen):
    value_cases, kl_cases = [], []
    for clip, agg in [(0.2, "token-mean"), (0.5, "seq-mean-token-mean"), (0.1, "seq-mean-token-sum-norm")]:
        b, l = 4, 5
        old = torch.randn(b, l, generator=gen)
        v = (old + torch.randn(b, l, generator=gen) * 0.3).requires_grad_(True)
        ret = torch.randn(b, l, generator=gen)
        m = masks(gen, b, l)
        loss, clipfrac = ca.compute_value_loss(v, ret, old, m, cliprange_value=clip, loss_agg_mode=agg)
        loss.backward()
        value_cases.append(dict(clip=clip, agg=agg, batch=b, len=l, values=lst(v), old_values=lst(old), returns=lst(ret),
                                mask=lst(m), loss=loss.item(), grad_values=lst(v.grad), clip_frac=clipfrac.item()))
    for kind in ["kl", "abs", "mse", "low_var_kl", "k3+"]:
        for agg in ["token-mean", "seq-mean-token-mean"]:
            b, l = 3, 6
            ref = -torch.rand(b, l, generator=gen) * 4.0
            lp = (ref + torch.randn(b, l, generator=gen) * 1.5).requires_grad_(True)
            if kind == "low_var_kl":
                with torch.no_grad():  # exercise verl's clamps: ref - lp beyond 20, k3 beyond 10
                    lp[0, 0] = ref[0, 0] - 25.0
                    lp[0, 1] = ref[0, 1] - 12.0
            m = masks(gen, b, l)
            kld = ca.kl_penalty(lp, ref, kind)
            loss = ca.agg_loss(kld, m, agg)
            loss.backward()
            kl_cases.append(dict(kind=kind, agg=agg, batch=b, len=l, logprobs=lst(lp), ref_logprobs=lst(ref), mask=lst(m),
                                 kl=lst(kld), loss=loss.item(), grad_logprobs=lst(lp.grad)))
    write("value_kl.json", dict(value=value_cases, kl=kl_cases))


def supervised(gen):
    cases = []
    for weighted, agg in [(False, "token-mean"), (True, "token-mean"), (True, "seq-mean-token-mean")]:
        b, l, vocab = 3, 5, 11
        logits = torch.randn(b, l, vocab, generator=gen)
        labels = torch.randint(0, vocab, (b, l), generator=gen)
        m = masks(gen, b, l)
        lp = torch.log_softmax(logits, -1).gather(-1, labels[..., None])[..., 0].detach().requires_grad_(True)
        w = torch.rand(b, l, generator=gen) * 2.0 if weighted else torch.ones(b, l)
        loss = ca.agg_loss(-w * lp, m, agg)
        loss.backward()
        case = dict(weighted=weighted, agg=agg, batch=b, len=l, logprobs=lst(lp), mask=lst(m), weights=lst(w),
                    loss=loss.item(), grad_logprobs=lst(lp.grad))
        if not weighted:  # independent check of the unweighted token-mean: PyTorch's own cross-entropy
            masked_labels = labels.masked_fill(m == 0, -100)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), masked_labels.reshape(-1), ignore_index=-100)
            case["torch_cross_entropy"] = ce.item()
        cases.append(case)
    write("supervised.json", cases)


class _Acc:
    device = torch.device("cpu")

    def gather_for_metrics(self, x):
        return x

    def gather(self, x):
        return x


class _Out:
    pass


class _FakeModel:
    """Stands in for the policy: returns the given per-token log-probabilities (whole sequence mass on token 0)."""

    training = True

    def __init__(self, per_token):
        self.per_token = per_token

    def __call__(self, **kwargs):
        o = _Out()
        o.log_probs = self.per_token
        zeros = torch.zeros_like(self.per_token)
        o.entropy, o.mean_logits, o.log_sum_sq_probs = zeros, zeros, zeros
        o.is_top1 = torch.zeros_like(self.per_token, dtype=torch.bool)
        o.aux_loss = torch.tensor(0.0)
        return o


def trl_dpo(loss_type, beta, label_smoothing, chosen, rejected, ref_chosen, ref_rejected, lens_c, lens_r):
    from collections import defaultdict

    from trl import DPOTrainer

    n = len(chosen)
    seq = max(max(lens_c), max(lens_r)) + 1
    per_token = torch.zeros(2 * n, seq - 1)
    per_token[:n, 0] = torch.tensor(chosen)
    per_token[n:, 0] = torch.tensor(rejected)
    per_token.requires_grad_(True)
    completion_mask = torch.zeros(2 * n, seq, dtype=torch.long)
    for i, k in enumerate(list(lens_c) + list(lens_r)):
        completion_mask[i, 1:1 + k] = 1
    t = DPOTrainer.__new__(DPOTrainer)
    t.__dict__.update(model=_FakeModel(per_token), accelerator=_Acc(), aux_loss_enabled=False, ld_alpha=None,
                      precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type],
                      loss_weights=[1.0], beta=beta, label_smoothing=label_smoothing, use_weighting=False,
                      _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0,
                      _tp_size=1)
    inputs = dict(input_ids=torch.zeros(2 * n, seq, dtype=torch.long), attention_mask=torch.ones(2 * n, seq),
                  completion_mask=completion_mask, ref_chosen_logps=torch.tensor(ref_chosen),
                  ref_rejected_logps=torch.tensor(ref_rejected))
    loss = t._compute_loss(t.model, inputs, return_outputs=False)
    loss.backward()
    g = per_token.grad[:, 0]
    return loss.item(), g[:n].tolist(), g[n:].tolist()


def preference(gen):
    cases = []
    n = 6
    chosen = (-torch.rand(n, generator=gen) * 20.0).tolist()
    rejected = (-torch.rand(n, generator=gen) * 20.0).tolist()
    ref_chosen = (torch.tensor(chosen) + torch.randn(n, generator=gen) * 2.0).tolist()
    ref_rejected = (torch.tensor(rejected) + torch.randn(n, generator=gen) * 2.0).tolist()
    lens_c = torch.randint(1, 9, (n,), generator=gen).tolist()
    lens_r = torch.randint(1, 9, (n,), generator=gen).tolist()
    base = dict(chosen=chosen, rejected=rejected, ref_chosen=ref_chosen, ref_rejected=ref_rejected, lens_chosen=lens_c,
                lens_rejected=lens_r)
    for loss_type, beta, ls in [("sigmoid", 0.1, 0.0), ("sigmoid", 0.5, 0.0), ("ipo", 0.1, 0.0), ("ipo", 0.5, 0.0),
                                ("robust", 0.1, 0.2)]:
        loss, gc, gr = trl_dpo(loss_type, beta, ls, chosen, rejected, ref_chosen, ref_rejected, lens_c, lens_r)
        cases.append(dict(base, source="trl", loss_type=loss_type, beta=beta, label_smoothing=ls, loss=loss,
                          grad_chosen=gc, grad_rejected=gr))
    # cDPO (label-smoothed sigmoid), written out: TRL 1.16 has no label smoothing on "sigmoid".
    for beta, ls in [(0.1, 0.1), (0.3, 0.25)]:
        c = torch.tensor(chosen, requires_grad=True)
        r = torch.tensor(rejected, requires_grad=True)
        z = (c - torch.tensor(ref_chosen)) - (r - torch.tensor(ref_rejected))
        f = torch.nn.functional.logsigmoid
        loss = (-(1 - ls) * f(beta * z) - ls * f(-beta * z)).mean()
        loss.backward()
        cases.append(dict(base, source="torch formula", loss_type="sigmoid", beta=beta, label_smoothing=ls,
                          loss=loss.item(), grad_chosen=c.grad.tolist(), grad_rejected=r.grad.tolist()))
    write("preference.json", cases)


def optim(gen):
    from transformers import get_cosine_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

    torch.set_default_dtype(torch.float32)
    lens = [7, 13, 3]
    params = [torch.randn(n, generator=gen, dtype=torch.float64).float() for n in lens]
    init = [p.tolist() for p in params]
    tparams = [torch.nn.Parameter(p.clone()) for p in params]
    betas, eps, wd = (0.9, 0.95), 1e-8, 0.1
    opt = torch.optim.AdamW([{"params": tparams[:2], "weight_decay": wd}, {"params": tparams[2:], "weight_decay": 0.0}],
                            lr=1e-3, betas=betas, eps=eps, foreach=False)
    steps = []
    lrs = [1e-3, 3e-3, 2e-3, 5e-4, 1e-2]
    for lr in lrs:
        grads = [(torch.randn(n, generator=gen, dtype=torch.float64) * 0.5).float() for n in lens]
        for p, g in zip(tparams, grads):
            p.grad = g.clone()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        steps.append(dict(lr=lr, grads=[g.tolist() for g in grads], params=[p.detach().tolist() for p in tparams]))
    state = [opt.state[p] for p in tparams]
    adamw = dict(lens=lens, betas=list(betas), eps=eps, weight_decay=wd, decay_mask=[True, True, False], init=init,
                 steps=steps, final_m=[s["exp_avg"].tolist() for s in state],
                 final_v=[s["exp_avg_sq"].tolist() for s in state], final_step=int(state[0]["step"].item()))
    clip_cases = []
    for max_norm in [0.5, 100.0]:
        grads = [torch.randn(n, generator=gen, dtype=torch.float64).float() for n in lens]
        ps = [torch.nn.Parameter(torch.zeros(n)) for n in lens]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        clip_cases.append(dict(max_norm=max_norm, grads=[g.tolist() for g in grads], norm=norm.item(),
                               clipped=[p.grad.tolist() for p in ps]))
    sched = []
    for warmup, total, min_rate in [(10, 100, None), (0, 50, None), (5, 40, 0.1)]:
        p = torch.nn.Parameter(torch.zeros(1))
        o = torch.optim.SGD([p], lr=1.0)
        if min_rate is None:
            s = get_cosine_schedule_with_warmup(o, warmup, total)
        else:
            s = get_cosine_with_min_lr_schedule_with_warmup(o, warmup, total, min_lr_rate=min_rate)
        factors = [s.lr_lambdas[0](step) for step in range(total + 1)]
        sched.append(dict(warmup=warmup, total=total, min_lr_ratio=min_rate or 0.0, factors=factors))
    torch.set_default_dtype(torch.float64)
    write("optim.json", dict(adamw=adamw, clip=clip_cases, schedule=sched))


def distill(gen):
    """Soft-target cross-entropy over full logits (AlphaZero / Gumbel MuZero policy targets, distillation)."""
    cases = []
    f = torch.nn.functional
    for kind, rows, vocab, weighted, masked in [("softmax", 4, 7, False, False), ("visits", 5, 9, False, False),
                                                ("visits", 5, 6, True, False), ("visits", 4, 9, False, True),
                                                ("softmax", 6, 8, True, True)]:
        logits = (torch.randn(rows, vocab, generator=gen) * 2.0).requires_grad_(True)
        legal = torch.rand(rows, vocab, generator=gen) < 0.7 if masked else torch.ones(rows, vocab, dtype=torch.bool)
        legal[:, 0] = True
        if kind == "softmax":  # a teacher's distribution
            q = torch.softmax(torch.randn(rows, vocab, generator=gen) * 1.5, -1)
        else:  # visit frequencies of a 64-simulation search: counts / total, with exact zeros
            w = torch.rand(rows, vocab, generator=gen) ** 3
            counts = torch.floor(64.0 * w / w.sum(-1, keepdim=True))
            counts[:, 0] += 64.0 - counts.sum(-1)
            q = counts / 64.0
        if masked:  # no probability on illegal actions: move it to action 0 (always legal)
            q[:, 0] += (q * ~legal).sum(-1)
            q = q * legal
        weights = torch.rand(rows, generator=gen) * 2.0 if weighted else None
        x = logits.masked_fill(~legal, -1e30) if masked else logits
        if weighted:
            loss = (f.cross_entropy(x, q, reduction="none") * weights).mean()
        else:
            loss = f.cross_entropy(x, q)
        loss.backward()
        cases.append(dict(kind=kind, rows=rows, vocab=vocab, logits=lst(logits), targets=lst(q),
                          weights=None if weights is None else weights.tolist(),
                          legal=lst(legal.double()) if masked else None, loss=loss.item(), grad_logits=lst(logits.grad)))
    write("distill.json", cases)


SECTIONS = ["advantages", "policy", "value_kl", "supervised", "preference", "optim"]
VERL = {"advantages", "policy", "value_kl", "supervised"}


def main():
    global ca, actor_cfg
    os.makedirs(OUT, exist_ok=True)
    wanted = sys.argv[1:] or SECTIONS + ["distill"]
    unknown = set(wanted) - set(SECTIONS) - {"distill"}
    if unknown:
        sys.exit(f"unknown section(s): {sorted(unknown)}; choose from {SECTIONS + ['distill']}")
    if VERL & set(wanted):
        ca, actor_cfg = import_verl_core_algos()
    gen = torch.Generator().manual_seed(20260521)
    for name in SECTIONS:  # the shared generator: every earlier section's draws happen, written or not
        if name in wanted:
            globals()[name](gen)
        elif any(later in wanted for later in SECTIONS[SECTIONS.index(name) + 1:]):
            sys.exit(f"section {name} must run too: later sections draw from the generator after it")
    if "distill" in wanted:
        distill(torch.Generator().manual_seed(20260522))
    print("fixtures written to", os.path.normpath(OUT))
    for f in sorted(os.listdir(OUT)):
        print(f"  {f}: {os.path.getsize(os.path.join(OUT, f))} bytes")


if __name__ == "__main__":
    main()
