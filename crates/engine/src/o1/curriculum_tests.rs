//! `[task] curriculum`: RL's steps split into equal stages by count of numbers, each drawing its own problems;
//! `[task] sft_numbers`: policy initialisation dealt over counts of numbers; evaluation keeps `[task] numbers`.

use super::config::TaskSettings;
use super::data::RecipeData;
use super::{Outcome, RunConfig, run};
use crate::engine::RunStart;

fn curriculum_config(curriculum: &[usize], rl_steps: u64) -> RunConfig {
    let mut config = RunConfig::tiny();
    config.task = TaskSettings { curriculum: curriculum.to_vec(), ..config.task };
    config.rl.steps = rl_steps;
    config
}

#[test]
fn stages_split_the_steps_evenly_in_order() {
    let config = curriculum_config(&[2, 3, 4], 7);
    let counts: Vec<usize> = (1..=7).map(|step| config.rl_numbers(step)).collect();
    // 7 steps over 3 stages: stage k holds the steps s with floor((s − 1)·3/7) = k.
    assert_eq!(counts, [2, 2, 2, 3, 3, 4, 4]);
    assert!((1..=5).all(|step| curriculum_config(&[], 5).rl_numbers(step) == 3), "no curriculum: task.numbers");
    let one_each = curriculum_config(&[4, 2], 2);
    assert_eq!([one_each.rl_numbers(1), one_each.rl_numbers(2)], [4, 2]);
}

#[test]
fn each_stage_draws_problems_of_its_count() {
    let config = curriculum_config(&[2, 3], 4);
    let data = RecipeData::generate(&config).unwrap();
    for (step, n) in [(1, 2), (2, 2), (3, 3), (4, 3)] {
        let problems = data.rl_problems(step);
        assert_eq!(problems.len(), config.task.train_problems);
        assert!(problems.iter().all(|p| p.nums.len() == n), "step {step}");
    }
    assert!(std::ptr::eq(data.rl_problems(3), data.train.as_slice()), "the task's own count reuses its problems");
    assert!(data.train.iter().chain(&data.eval).all(|p| p.nums.len() == 3), "evaluation keeps numbers");
    assert!(std::ptr::eq(data.sft_problems().as_ref(), data.train.as_slice()), "SFT too, without sft_numbers");
}

#[test]
fn policy_initialisation_deals_problems_over_its_counts() {
    let mut config = curriculum_config(&[3, 4], 4);
    config.task.numbers = 4;
    config.task.sft_numbers = vec![3, 4];
    config.model.context = 96;
    let data = RecipeData::generate(&config).unwrap();
    let sft = data.sft_problems();
    assert_eq!(sft.len(), config.task.train_problems);
    let counts: Vec<usize> = sft.iter().map(|p| p.nums.len()).take(6).collect();
    assert_eq!(counts, [3, 4, 3, 4, 3, 4]);
    // Problem i is the i-th of its count: the curriculum's 3-number stage draws from the very same set.
    assert_eq!(sft[2], data.rl_problems(1)[2]);
    assert_eq!(sft[3], data.train[3]);
    assert!(data.eval.iter().all(|p| p.nums.len() == 4));
}

#[test]
fn a_curriculum_run_finishes_and_bad_counts_are_refused() {
    let dir = std::env::temp_dir().join(format!("selfplay-o1-curriculum-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = curriculum_config(&[2, 3], 2);
    config.task.sft_numbers = vec![2, 3];
    let Outcome::Finished(report) = run(&config, &dir, RunStart::New, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    assert_eq!(report.train_curve.last().unwrap().step, 2);
    std::fs::remove_dir_all(&dir).unwrap();

    for (curriculum, steps, key) in [
        (vec![2, 7], 4, "task.curriculum's counts of numbers must each lie between 1 and 6"),
        (vec![0], 4, "task.curriculum's counts"),
        (vec![2, 3, 3], 2, "task.curriculum must have no more stages than rl.steps"),
    ] {
        let message = curriculum_config(&curriculum, steps).validate().unwrap_err().to_string();
        assert!(message.contains(key), "{message}");
    }
    let mut bad_sft = curriculum_config(&[], 2);
    bad_sft.task.sft_numbers = vec![3, 9];
    let message = bad_sft.validate().unwrap_err().to_string();
    assert!(message.contains("task.sft_numbers' counts of numbers must each lie between 1 and 6"), "{message}");
    // The context must hold the curriculum's widest prompt: "99 99 99 -> 100\n" after BOS is 17 tokens, five
    // numbers' 23.
    let mut exact = curriculum_config(&[], 2);
    exact.model.context = 17 + exact.max_new_tokens;
    exact.validate().unwrap();
    let wide = RunConfig { task: TaskSettings { curriculum: vec![5, 3], ..exact.task.clone() }, ..exact.clone() };
    let message = wide.validate().unwrap_err().to_string();
    assert!(message.contains(&format!("{}", 23 + wide.max_new_tokens)), "{message}");
    let wide_sft = RunConfig { task: TaskSettings { sft_numbers: vec![5], ..exact.task.clone() }, ..exact };
    assert!(wide_sft.validate().unwrap_err().to_string().contains("context"), "policy initialisation's prompts too");
}
