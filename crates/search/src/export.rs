//! Writing a tree for people and tools: mctx-format JSON (the format of mctx's recorded test trees) and
//! Graphviz DOT. Plain string building, so it works without `std`; iterative, so deep trees cannot overflow
//! the stack.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::tree::{NONE, Tree};

fn write_f32(out: &mut String, x: f32) {
    if x.is_finite() {
        let _ = write!(out, "{x}");
    } else {
        out.push_str("null");
    }
}

fn open_node<S>(out: &mut String, tree: &Tree<S>, node: usize, prior: f32) {
    out.push_str("{\"prior\":");
    write_f32(out, prior);
    let n = &tree.nodes[node];
    let _ = write!(out, ",\"visit\":{},\"value_view\":", n.visits);
    write_f32(out, n.value);
    out.push_str(",\"raw_value_view\":");
    write_f32(out, n.raw_value);
    out.push_str(",\"child_stats\":[");
}

fn close_node<S>(out: &mut String, tree: &Tree<S>, node: usize) {
    let _ = write!(out, "],\"evaluation_index\":{node}");
    if let (Some(p), Some(a)) = (tree.parent(node), tree.action_from_parent(node)) {
        let _ = write!(out, ",\"action\":{a},\"reward\":");
        write_f32(out, tree.edges_of(p)[a].reward);
    }
    out.push('}');
}

/// The tree as mctx's `tree_to_pytree` writes it: every evaluated node carries `prior`, `visit`, `value_view`,
/// `raw_value_view`, `child_stats` (one entry per action), `evaluation_index` (its node id) and, below the root,
/// `action` and `reward`; an unexpanded action carries only `prior`, `child_stats: []` and `action`.
pub fn to_mctx_json<S>(tree: &Tree<S>) -> String {
    let mut out = String::new();
    if tree.is_empty() {
        out.push_str("null");
        return out;
    }
    let a = tree.num_actions;
    open_node(&mut out, tree, 0, 1.0);
    let mut stack: Vec<(usize, usize)> = alloc::vec![(0, 0)];
    while let Some(top) = stack.last_mut() {
        let (node, action) = *top;
        if action == a {
            close_node(&mut out, tree, node);
            stack.pop();
            continue;
        }
        top.1 += 1;
        if action > 0 {
            out.push(',');
        }
        let edge = tree.edges_of(node)[action];
        let prior = edge.prior;
        match edge.child {
            c if c != NONE && !tree.nodes[c as usize].pending => {
                open_node(&mut out, tree, c as usize, prior);
                stack.push((c as usize, 0));
            }
            _ => {
                out.push_str("{\"prior\":");
                write_f32(&mut out, prior);
                let _ = write!(out, ",\"child_stats\":[],\"action\":{action}}}");
            }
        }
    }
    out
}

/// The expanded part of the tree as a Graphviz digraph: nodes labelled with id, visits and value, edges with the
/// action, its prior and visit count.
pub fn to_dot<S>(tree: &Tree<S>) -> String {
    let mut out = String::from("digraph search_tree {\n  node [shape=box, fontname=monospace];\n");
    for (node, n) in tree.nodes.iter().enumerate() {
        if n.pending {
            continue;
        }
        let _ = write!(out, "  n{node} [label=\"#{node}\\nN={}\\nV=", n.visits);
        write_f32(&mut out, n.value);
        out.push_str(if n.terminal { "\\nterminal\"];\n" } else { "\"];\n" });
        for (action, e) in tree.edges_of(node).iter().enumerate() {
            if e.child != NONE && !tree.nodes[e.child as usize].pending {
                let _ = write!(out, "  n{node} -> n{} [label=\"a={action} p=", e.child);
                write_f32(&mut out, e.prior);
                let _ = writeln!(out, " n={}\"];", e.visits);
            }
        }
    }
    out.push_str("}\n");
    out
}
