//! Every loss, estimator and optimizer against numbers produced by the reference implementations (verl,
//! TRL, PyTorch, transformers) in `tools/make_learn_fixtures.py`. f64 runs match to ~1e-9; f32 runs to the
//! precision of f32.

mod common;

use common::*;
use selfplay_learn::advantage::{
    GroupScale, broadcast_to_tokens, gae, grpo_advantages, reinforce_advantages, rloo_advantages, whiten_tokens,
};
use selfplay_learn::distill::{SoftTargets, soft_cross_entropy};
use selfplay_learn::kl::{AdaptiveKl, KlEstimator, KlLoss};
use selfplay_learn::optim::{AdamW, AdamWConfig, clip_grad_norm};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, RatioLevel, policy_loss};
use selfplay_learn::preference::{PreferenceBatch, PreferenceLoss};
use selfplay_learn::schedule::WarmupCosine;
use selfplay_learn::supervised::bc_loss;
use selfplay_learn::value::value_loss;
use serde_json::Value;

/// f64 tolerance against the references. Not tighter because verl divides each sequence's token sum by
/// `count + 1e-8` in `seq-mean-token-mean` (a relative 1e-8 that we do not copy), which cancellation in
/// losses near zero can amplify.
const ATOL: f64 = 1e-8;
const RTOL: f64 = 1e-7;

fn cases<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap()
}

fn ids(case: &Value) -> Vec<u64> {
    case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn gae_matches_verl() {
    let fx = fixture("advantages.json");
    for case in cases(&fx, "gae") {
        let (shape, m) = (shape(case), mask(case));
        let (rewards, values) = (f64s(case, "rewards"), f64s(case, "values"));
        let (gamma, lam) = (num(case, "gamma"), num(case, "lam"));
        let out = gae(shape, &rewards, &values, &m, gamma, lam, true).unwrap();
        let want_adv = unmasked(&f64s(case, "advantages"), &m);
        assert_close("gae advantages", &unmasked(&out.advantages, &m), &want_adv, ATOL, RTOL);
        assert_close("gae returns", &unmasked(&out.returns, &m), &unmasked(&f64s(case, "returns"), &m), ATOL, RTOL);
        // Without whitening, the advantages are verl's returns minus values.
        let raw = gae(shape, &rewards, &values, &m, gamma, lam, false).unwrap();
        let want_raw: Vec<f64> = f64s(case, "returns").iter().zip(&values).map(|(r, v)| r - v).collect();
        assert_close("gae raw", &unmasked(&raw.advantages, &m), &unmasked(&want_raw, &m), ATOL, RTOL);
        let f32_out = gae::<f32>(shape, &f32s(case, "rewards"), &f32s(case, "values"), &m, gamma, lam, true).unwrap();
        let f32_adv: Vec<f64> = f32_out.advantages.iter().map(|&x| f64::from(x)).collect();
        assert_close("gae f32", &unmasked(&f32_adv, &m), &want_adv, 1e-5, 1e-5);
        assert!(out.advantages.iter().zip(&m).all(|(a, m)| *m || *a == 0.0), "masked slots are zero");
    }
}

#[test]
fn group_advantages_match_verl_and_trl() {
    let fx = fixture("advantages.json");
    for case in cases(&fx, "grpo") {
        let scale = match case["scale"].as_str().unwrap() {
            "group" => GroupScale::GroupStd,
            "batch" => GroupScale::BatchStd,
            _ => GroupScale::None,
        };
        let got = grpo_advantages(&f64s(case, "scores"), &ids(case), scale, num(case, "eps")).unwrap();
        assert_close("grpo", &got, &f64s(case, "advantages"), ATOL, RTOL);
    }
    for case in cases(&fx, "rloo") {
        let got = rloo_advantages(&f64s(case, "scores"), &ids(case)).unwrap();
        assert_close("rloo", &got, &f64s(case, "advantages"), ATOL, RTOL);
    }
    for case in cases(&fx, "remax") {
        let m = mask(case);
        let out = reinforce_advantages(shape(case), &f64s(case, "rewards"), &m, &f64s(case, "baselines"), 1.0).unwrap();
        assert_close("remax adv", &unmasked(&out.advantages, &m), &unmasked(&f64s(case, "advantages"), &m), ATOL, RTOL);
        assert_close("remax ret", &unmasked(&out.returns, &m), &unmasked(&f64s(case, "returns"), &m), ATOL, RTOL);
    }
}

#[test]
fn reinforce_pp_baseline_and_adaptive_kl_match_verl() {
    let fx = fixture("advantages.json");
    for case in cases(&fx, "rfpp_baseline") {
        let m = mask(case);
        let per_seq = grpo_advantages(&f64s(case, "scores"), &ids(case), GroupScale::None, 0.0).unwrap();
        let got = whiten_tokens(&broadcast_to_tokens(shape(case), &per_seq, &m).unwrap(), &m).unwrap();
        assert_close("rf++ baseline", &got, &f64s(case, "advantages"), ATOL, RTOL);
    }
    let kl = &fx["adaptive_kl"];
    let mut ctl = AdaptiveKl::new(num(kl, "init"), num(kl, "target"), num(kl, "horizon")).unwrap();
    for u in kl["updates"].as_array().unwrap() {
        let got = ctl.update(num(u, "kl"), u["n_steps"].as_u64().unwrap()).unwrap();
        assert_close("adaptive kl", &[got], &[num(u, "value")], 1e-15, 1e-12);
    }
    assert!(ctl.update(f64::NAN, 1).is_err());
}

fn ppo_config(case: &Value) -> PpoConfig {
    let gspo = case["mode"].as_str().unwrap() == "gspo";
    PpoConfig {
        clip_low: num(case, "clip_low"),
        clip_high: num(case, "clip_high"),
        dual_clip: case["dual_clip"].as_f64(),
        ratio: if gspo { RatioLevel::Sequence } else { RatioLevel::Token },
        agg: agg(case),
        entropy_coef: num(case, "entropy_coef"),
    }
}

#[test]
fn policy_loss_matches_verl() {
    let fx = fixture("policy.json");
    for case in fx.as_array().unwrap() {
        let what = format!("{} {}", case["mode"], case["agg"]);
        let config = ppo_config(case);
        let m = mask(case);
        let (lp, old, adv, ent) =
            (f64s(case, "logprobs"), f64s(case, "old_logprobs"), f64s(case, "advantages"), f64s(case, "entropy"));
        let batch = PolicyBatch {
            shape: shape(case),
            logprobs: &lp,
            old_logprobs: &old,
            advantages: &adv,
            mask: &m,
            entropy: Some(&ent),
        };
        let out = policy_loss(&config, &batch).unwrap();
        assert_close(&format!("{what} loss"), &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close(&format!("{what} pg_loss"), &[out.pg_loss], &[num(case, "pg_loss")], ATOL, RTOL);
        assert_close(&format!("{what} grad"), &out.grad_logprobs, &f64s(case, "grad_logprobs"), ATOL, RTOL);
        assert_close(&format!("{what} grad entropy"), &out.grad_entropy, &f64s(case, "grad_entropy"), ATOL, RTOL);
        // verl's masked_mean divides by (count + 1e-8).
        assert_close(&format!("{what} clip_frac"), &[out.clip_frac], &[num(case, "clip_frac")], 1e-7, 1e-7);
        assert_close(
            &format!("{what} clip_frac_lower"),
            &[out.clip_frac_lower],
            &[num(case, "clip_frac_lower")],
            1e-7,
            1e-7,
        );
        assert_close(&format!("{what} approx_kl"), &[out.approx_kl], &[num(case, "approx_kl")], 1e-7, 1e-7);

        let (lp32, old32, adv32, ent32) =
            (f32s(case, "logprobs"), f32s(case, "old_logprobs"), f32s(case, "advantages"), f32s(case, "entropy"));
        let batch32 = PolicyBatch {
            shape: shape(case),
            logprobs: &lp32,
            old_logprobs: &old32,
            advantages: &adv32,
            mask: &m,
            entropy: Some(&ent32),
        };
        let out32 = policy_loss(&config, &batch32).unwrap();
        assert_close(&format!("{what} f32 loss"), &[f64::from(out32.loss)], &[num(case, "loss")], 1e-5, 1e-4);
        let g32: Vec<f64> = out32.grad_logprobs.iter().map(|&g| f64::from(g)).collect();
        assert_close(&format!("{what} f32 grad"), &g32, &f64s(case, "grad_logprobs"), 1e-6, 1e-4);
    }
}

#[test]
fn value_loss_matches_verl() {
    let fx = fixture("value_kl.json");
    for case in cases(&fx, "value") {
        let m = mask(case);
        let out = value_loss(
            shape(case),
            &f64s(case, "values"),
            &f64s(case, "old_values"),
            &f64s(case, "returns"),
            &m,
            Some(num(case, "clip")),
            agg(case),
        )
        .unwrap();
        assert_close("value loss", &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close("value grad", &out.grad_values, &f64s(case, "grad_values"), ATOL, RTOL);
        assert_close("value clip_frac", &[out.clip_frac], &[num(case, "clip_frac")], 1e-7, 1e-7);
    }
}

#[test]
fn kl_estimators_match_verl() {
    let fx = fixture("value_kl.json");
    for case in cases(&fx, "kl") {
        let kind = case["kind"].as_str().unwrap();
        let (estimator, k2_gradient) = match kind.strip_suffix('+') {
            Some(base) => (base.parse::<KlEstimator>().unwrap(), true),
            None => (kind.parse().unwrap(), false),
        };
        let m = mask(case);
        let (lp, r) = (f64s(case, "logprobs"), f64s(case, "ref_logprobs"));
        let per_token = selfplay_learn::kl::kl_per_token(shape(case), estimator, &lp, &r, &m).unwrap();
        assert_close(
            &format!("{kind} values"),
            &unmasked(&per_token, &m),
            &unmasked(&f64s(case, "kl"), &m),
            ATOL,
            RTOL,
        );
        let out = KlLoss { estimator, k2_gradient, agg: agg(case) }.compute(shape(case), &lp, &r, &m).unwrap();
        assert_close(&format!("{kind} loss"), &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close(&format!("{kind} grad"), &out.grad, &f64s(case, "grad_logprobs"), ATOL, RTOL);
    }
}

#[test]
fn supervised_loss_matches_torch_and_verl() {
    let fx = fixture("supervised.json");
    for case in fx.as_array().unwrap() {
        let m = mask(case);
        let w = f64s(case, "weights");
        let weights = if case["weighted"].as_bool().unwrap() { Some(w.as_slice()) } else { None };
        let out = bc_loss(shape(case), &f64s(case, "logprobs"), &m, weights, agg(case)).unwrap();
        assert_close("bc loss", &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close("bc grad", &out.grad, &f64s(case, "grad_logprobs"), ATOL, RTOL);
        if let Some(ce) = case["torch_cross_entropy"].as_f64() {
            assert_close("bc vs torch cross_entropy", &[out.loss], &[ce], ATOL, RTOL);
        }
    }
}

#[test]
fn preference_losses_match_trl() {
    let fx = fixture("preference.json");
    for case in fx.as_array().unwrap() {
        let (beta, ls) = (num(case, "beta"), num(case, "label_smoothing"));
        let kind = case["loss_type"].as_str().unwrap();
        let (mut chosen, mut rejected) = (f64s(case, "chosen"), f64s(case, "rejected"));
        let (mut ref_chosen, mut ref_rejected) = (f64s(case, "ref_chosen"), f64s(case, "ref_rejected"));
        let (lens_c, lens_r) = (f64s(case, "lens_chosen"), f64s(case, "lens_rejected"));
        let loss = match kind {
            "sigmoid" => PreferenceLoss::Sigmoid { beta, label_smoothing: ls },
            "robust" => PreferenceLoss::Robust { beta, label_smoothing: ls },
            _ => {
                // TRL's IPO averages over completion tokens: feed per-token means.
                for (xs, lens) in [
                    (&mut chosen, &lens_c),
                    (&mut ref_chosen, &lens_c),
                    (&mut rejected, &lens_r),
                    (&mut ref_rejected, &lens_r),
                ] {
                    xs.iter_mut().zip(lens.iter()).for_each(|(x, n)| *x /= n);
                }
                PreferenceLoss::Ipo { beta }
            }
        };
        let batch = PreferenceBatch {
            chosen: &chosen,
            rejected: &rejected,
            ref_chosen: &ref_chosen,
            ref_rejected: &ref_rejected,
        };
        let out = loss.compute(&batch).unwrap();
        let (mut want_gc, mut want_gr) = (f64s(case, "grad_chosen"), f64s(case, "grad_rejected"));
        if kind == "ipo" {
            // TRL's gradient is with respect to the sums: d/d mean = n · d/d sum.
            want_gc.iter_mut().zip(&lens_c).for_each(|(g, n)| *g *= n);
            want_gr.iter_mut().zip(&lens_r).for_each(|(g, n)| *g *= n);
        }
        assert_close(&format!("{kind} loss"), &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close(&format!("{kind} grad chosen"), &out.grad_chosen, &want_gc, ATOL, RTOL);
        assert_close(&format!("{kind} grad rejected"), &out.grad_rejected, &want_gr, ATOL, RTOL);
    }
}

fn tensors(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

#[test]
fn adamw_matches_torch_over_several_steps() {
    let fx = fixture("optim.json");
    let a = &fx["adamw"];
    let lens: Vec<usize> = a["lens"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let betas = f64s(a, "betas");
    let config = AdamWConfig {
        betas: (betas[0] as f32, betas[1] as f32),
        eps: num(a, "eps") as f32,
        weight_decay: num(a, "weight_decay") as f32,
    };
    let mut opt = AdamW::new(config, &lens);
    let decay: Vec<bool> = a["decay_mask"].as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect();
    opt.set_weight_decay_mask(&decay).unwrap();
    let mut params = tensors(&a["init"]);
    for (k, step) in a["steps"].as_array().unwrap().iter().enumerate() {
        let grads = tensors(&step["grads"]);
        let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        let mut param_refs: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        opt.step(&mut param_refs, &grad_refs, num(step, "lr") as f32).unwrap();
        for (t, (got, want)) in params.iter().zip(tensors(&step["params"])).enumerate() {
            let got: Vec<f64> = got.iter().map(|&x| f64::from(x)).collect();
            let want: Vec<f64> = want.iter().map(|&x| f64::from(x)).collect();
            assert_close(&format!("adamw step {k} tensor {t}"), &got, &want, 1e-6, 1e-6);
        }
    }
    let state = opt.export_state();
    assert_eq!(state.step, a["final_step"].as_u64().unwrap());
    for (name, got, want) in [("m", &state.m, tensors(&a["final_m"])), ("v", &state.v, tensors(&a["final_v"]))] {
        for (g, w) in got.iter().zip(&want) {
            let g: Vec<f64> = g.iter().map(|&x| f64::from(x)).collect();
            let w: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
            assert_close(name, &g, &w, 1e-7, 1e-5);
        }
    }
}

#[test]
fn clip_grad_norm_matches_torch() {
    let fx = fixture("optim.json");
    for case in fx["clip"].as_array().unwrap() {
        let mut grads = tensors(&case["grads"]);
        let mut refs: Vec<&mut [f32]> = grads.iter_mut().map(Vec::as_mut_slice).collect();
        let norm = clip_grad_norm(&mut refs, num(case, "max_norm") as f32);
        assert_close("norm", &[f64::from(norm)], &[num(case, "norm")], 1e-6, 1e-6);
        for (g, w) in grads.iter().zip(tensors(&case["clipped"])) {
            let g: Vec<f64> = g.iter().map(|&x| f64::from(x)).collect();
            let w: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
            assert_close("clipped", &g, &w, 1e-7, 1e-6);
        }
    }
}

#[test]
fn warmup_cosine_matches_transformers() {
    let fx = fixture("optim.json");
    for case in fx["schedule"].as_array().unwrap() {
        let mut s = WarmupCosine::new(case["warmup"].as_u64().unwrap(), case["total"].as_u64().unwrap());
        s.min_lr_ratio = num(case, "min_lr_ratio");
        let got: Vec<f64> = (0..=s.total_steps).map(|t| s.factor(t)).collect();
        assert_close("schedule", &got, &f64s(case, "factors"), 1e-12, 1e-12);
    }
}

#[test]
fn broadcast_puts_sequence_values_on_unmasked_tokens() {
    let shape = selfplay_learn::SeqShape::new(2, 3);
    let m = [true, true, false, true, false, false];
    let out = broadcast_to_tokens(shape, &[1.5, -2.0], &m).unwrap();
    assert_eq!(out, vec![1.5, 1.5, 0.0, -2.0, 0.0, 0.0]);
}

#[test]
fn soft_cross_entropy_matches_torch() {
    let fx = fixture("distill.json");
    let cases = fx.as_array().unwrap();
    assert!(cases.iter().any(|c| !c["legal"].is_null()) && cases.iter().any(|c| !c["weights"].is_null()));
    for case in cases {
        let (rows, vocab) = (case["rows"].as_u64().unwrap() as usize, case["vocab"].as_u64().unwrap() as usize);
        let legal: Option<Vec<bool>> =
            (!case["legal"].is_null()).then(|| f64s(case, "legal").into_iter().map(|x| x != 0.0).collect());
        let weights = (!case["weights"].is_null()).then(|| f64s(case, "weights"));
        let (logits, targets) = (f64s(case, "logits"), f64s(case, "targets"));
        let what =
            format!("soft CE {} {rows}x{vocab} weights {} mask {}", case["kind"], weights.is_some(), legal.is_some());
        let batch = SoftTargets {
            rows,
            vocab,
            logits: &logits,
            targets: &targets,
            weights: weights.as_deref(),
            legal: legal.as_deref(),
        };
        let out = soft_cross_entropy(&batch).unwrap();
        assert_close(&format!("{what} loss"), &[out.loss], &[num(case, "loss")], ATOL, RTOL);
        assert_close(&format!("{what} grad"), &out.grad, &f64s(case, "grad_logits"), ATOL, RTOL);
        // f32, as training runs it.
        let (logits32, targets32) = (f32s(case, "logits"), f32s(case, "targets"));
        let weights32 = weights.as_ref().map(|w| w.iter().map(|&x| x as f32).collect::<Vec<f32>>());
        let batch32 = SoftTargets {
            rows,
            vocab,
            logits: &logits32,
            targets: &targets32,
            weights: weights32.as_deref(),
            legal: legal.as_deref(),
        };
        let out32 = soft_cross_entropy(&batch32).unwrap();
        let grad32: Vec<f64> = out32.grad.iter().map(|&g| f64::from(g)).collect();
        assert_close(&format!("{what} f32 loss"), &[f64::from(out32.loss)], &[num(case, "loss")], 1e-5, 1e-5);
        assert_close(&format!("{what} f32 grad"), &grad32, &f64s(case, "grad_logits"), 1e-6, 1e-4);
    }
}
