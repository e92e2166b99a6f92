//! Reading mctx's recorded search trees (`mctx/_src/tests/test_data/*.json`) as a model and a configuration,
//! and comparing trees. Shared by the parity test and the `mctx_replay` example.
#![allow(dead_code)]

use selfplay_search::{
    Algorithm, Evaluation, Evaluator, GumbelConfig, LeafBatch, LeafOutputs, MuZeroConfig, QTransform, RootOutput,
    Search, SearchConfig, Tree,
};
use serde_json::Value;

/// Priors are rounded to 10 digits in the files; a prior rounded to zero gets this floor before its logarithm.
const PRIOR_FLOOR: f64 = 1e-12;

/// One evaluated node of the recording: what the model returned there.
#[derive(Debug, Clone)]
struct RecordedNode {
    logits: Vec<f32>,
    value: f32,
    reward: f32,
    children: Vec<Option<u32>>,
}

/// A recorded tree used as a model: the output at a node is looked up by its action path.
#[derive(Debug, Clone)]
pub struct RecordedModel {
    nodes: Vec<RecordedNode>,
    discount: f32,
    zero_reward: bool,
}

/// Everything needed to replay a file.
#[derive(Debug, Clone)]
pub struct Replay {
    pub model: RecordedModel,
    pub config: SearchConfig,
    pub num_actions: usize,
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| format!("missing number `{key}`"))
}

fn qtransform(cfg: &Value) -> Result<QTransform, String> {
    let name = cfg.get("qtransform").and_then(Value::as_str).ok_or("missing `qtransform`")?;
    let empty = Value::Object(Default::default());
    let kw = cfg.get("qtransform_kwargs").unwrap_or(&empty);
    let f = |k: &str, d: f64| kw.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
    let b = |k: &str, d: bool| kw.get(k).and_then(Value::as_bool).unwrap_or(d);
    match name {
        "qtransform_by_parent_and_siblings" => Ok(QTransform::ParentAndSiblings { epsilon: f("epsilon", 1e-8) }),
        "qtransform_by_min_max" => {
            Ok(QTransform::MinMax { min_value: f("min_value", 0.0), max_value: f("max_value", 1.0) })
        }
        "qtransform_completed_by_mix_value" => Ok(QTransform::CompletedByMixValue {
            value_scale: f("value_scale", 0.1),
            maxvisit_init: f("maxvisit_init", 50.0),
            rescale_values: b("rescale_values", true),
            use_mixed_value: b("use_mixed_value", true),
            epsilon: f("epsilon", 1e-8),
        }),
        other => Err(format!("unknown qtransform `{other}`")),
    }
}

impl Replay {
    /// Reads the model outputs (`prior`, `raw_value_view`, `reward`) and the configuration. The number of
    /// simulations is `num_simulations` if given, else the root's `visit - 1`, else (no `visit` recorded) the
    /// number of evaluated nodes minus one.
    pub fn from_json(file: &Value, num_simulations: Option<usize>) -> Result<Self, String> {
        let root = file.get("tree").ok_or("missing `tree`")?;
        let children = root.get("child_stats").and_then(Value::as_array).ok_or("root has no `child_stats`")?;
        let num_actions = children.len();
        let explicit = match (num_simulations, root.get("visit").and_then(Value::as_u64)) {
            (Some(s), _) => Some(s),
            (None, Some(v)) => Some((v as usize).checked_sub(1).ok_or("root visit must be at least 1")?),
            (None, None) => None,
        };
        let cfg = file.get("algorithm_config").ok_or("missing `algorithm_config`")?;
        let algorithm = match file.get("algorithm").and_then(Value::as_str) {
            Some("muzero") => Algorithm::MuZero(MuZeroConfig {
                pb_c_init: cfg.get("pb_c_init").and_then(Value::as_f64).unwrap_or(1.25) as f32,
                pb_c_base: cfg.get("pb_c_base").and_then(Value::as_f64).unwrap_or(19652.0) as f32,
                qtransform: qtransform(cfg)?,
                dirichlet_fraction: cfg.get("dirichlet_fraction").and_then(Value::as_f64).unwrap_or(0.25) as f32,
                dirichlet_alpha: cfg.get("dirichlet_alpha").and_then(Value::as_f64).unwrap_or(0.3) as f32,
                temperature: cfg.get("temperature").and_then(Value::as_f64).unwrap_or(1.0) as f32,
            }),
            Some("gumbel_muzero") => Algorithm::GumbelMuZero(GumbelConfig {
                max_num_considered_actions: cfg.get("max_num_considered_actions").and_then(Value::as_u64).unwrap_or(16)
                    as usize,
                gumbel_scale: cfg.get("gumbel_scale").and_then(Value::as_f64).unwrap_or(1.0) as f32,
                qtransform: qtransform(cfg)?,
            }),
            other => return Err(format!("unknown algorithm {other:?}")),
        };
        let env = file.get("env_config").ok_or("missing `env_config`")?;
        let discount = num(env, "discount")? as f32;
        let zero_reward = env.get("zero_reward").and_then(Value::as_bool).unwrap_or(false);
        let mut model = RecordedModel { nodes: Vec::new(), discount, zero_reward };
        model.add(root, num_actions)?;
        // Without a recorded visit count: every simulation of a recording evaluated exactly one new node.
        let sims = explicit.unwrap_or(model.nodes.len() - 1);
        let mut config = SearchConfig::muzero(sims);
        config.algorithm = algorithm;
        Ok(Self { model, config, num_actions })
    }

    /// Runs our search on the recorded model and returns the tree.
    pub fn run(&mut self) -> Result<Tree<u32>, String> {
        let mut search = Search::new(self.config, self.num_actions).map_err(|e| e.to_string())?;
        self.run_with(&mut search)
    }

    /// As [`Replay::run`], with a caller's (possibly already used) search engine of the same configuration.
    pub fn run_with(&mut self, search: &mut Search<u32>) -> Result<Tree<u32>, String> {
        let root = &self.model.nodes[0];
        let mut tree = Tree::new(self.num_actions);
        tree.reset(RootOutput { state: 0u32, prior_logits: &root.logits, value: root.value, invalid_actions: None })
            .map_err(|e| e.to_string())?;
        search.run(std::slice::from_mut(&mut tree), &mut self.model, 0).map_err(|e| e.to_string())?;
        Ok(tree)
    }
}

impl RecordedModel {
    /// Adds an evaluated node and, recursively, its evaluated children; returns its index.
    fn add(&mut self, node: &Value, num_actions: usize) -> Result<u32, String> {
        let stats = node.get("child_stats").and_then(Value::as_array).ok_or("node without `child_stats`")?;
        if stats.len() != num_actions {
            return Err(format!("a node has {} children, the root {num_actions}", stats.len()));
        }
        let mut logits = Vec::with_capacity(num_actions);
        for c in stats {
            logits.push(num(c, "prior")?.max(PRIOR_FLOOR).ln() as f32);
        }
        let index = self.nodes.len() as u32;
        self.nodes.push(RecordedNode {
            logits,
            value: num(node, "raw_value_view")? as f32,
            reward: node.get("reward").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            children: vec![None; num_actions],
        });
        for (a, c) in stats.iter().enumerate() {
            if c.get("raw_value_view").is_some() {
                let child = self.add(c, num_actions)?;
                self.nodes[index as usize].children[a] = Some(child);
            }
        }
        Ok(index)
    }
}

impl Evaluator for RecordedModel {
    type State = u32;
    type Error = String;

    fn evaluate(&mut self, leaves: &LeafBatch<'_, u32>, out: &mut LeafOutputs<u32>) -> Result<(), String> {
        for (i, leaf) in leaves.iter().enumerate() {
            let parent = self.nodes.get(*leaf.parent as usize).ok_or("unknown parent")?;
            let child = parent.children[leaf.action].ok_or_else(|| {
                format!("the search expanded action {} of a node the recording never expanded", leaf.action)
            })?;
            let node = &self.nodes[child as usize];
            let reward = if self.zero_reward { 0.0 } else { node.reward };
            let eval = Evaluation { state: child, reward, discount: self.discount, value: node.value, terminal: false };
            out.set(i, eval, &node.logits).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Compares two trees in mctx format: same shape, equal visits, `value_view`/`raw_value_view`/`prior`/`reward`
/// within `atol`. Returns the first difference with its action path.
pub fn compare(expected: &Value, got: &Value, atol: f64) -> Result<(), String> {
    let mut stack = vec![(expected, got, String::from("root"))];
    while let Some((e, g, path)) = stack.pop() {
        for key in ["prior", "value_view", "raw_value_view", "reward"] {
            match (e.get(key).and_then(Value::as_f64), g.get(key).and_then(Value::as_f64)) {
                (Some(x), Some(y)) if (x - y).abs() <= atol => {}
                (None, None) => {}
                (x, y) => return Err(format!("{path}: `{key}` expected {x:?}, got {y:?}")),
            }
        }
        for key in ["visit", "action", "evaluation_index"] {
            if e.get(key).and_then(Value::as_i64) != g.get(key).and_then(Value::as_i64) {
                return Err(format!("{path}: `{key}` expected {:?}, got {:?}", e.get(key), g.get(key)));
            }
        }
        let ec = e.get("child_stats").and_then(Value::as_array).ok_or(format!("{path}: no child_stats"))?;
        let gc = g.get("child_stats").and_then(Value::as_array).ok_or(format!("{path}: no child_stats in ours"))?;
        if ec.len() != gc.len() {
            return Err(format!("{path}: {} children expected, got {}", ec.len(), gc.len()));
        }
        for (a, (x, y)) in ec.iter().zip(gc).enumerate() {
            stack.push((x, y, format!("{path}/{a}")));
        }
    }
    Ok(())
}
