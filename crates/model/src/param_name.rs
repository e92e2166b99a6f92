//! [`ParamName`]: a parameter's Hugging Face name, built without allocating (its own module so the
//! error type and the parameter layout can both name parameters without importing each other).

use std::fmt;

/// A parameter's Hugging Face name without allocating: a static name, or a static suffix after
/// `model.layers.{layer}.`. `Display` writes the full name (`model.layers.3.mlp.up_proj.weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamName {
    /// The decoder layer, for a layer's parameter.
    pub layer: Option<usize>,
    /// The whole name, or the suffix after `model.layers.{layer}.`.
    pub name: &'static str,
}

impl ParamName {
    /// A parameter outside the decoder layers (`model.norm.weight`).
    pub const fn top(name: &'static str) -> Self {
        ParamName { layer: None, name }
    }

    /// Layer `layer`'s parameter with suffix `name` (`mlp.up_proj.weight`).
    pub const fn layer(layer: usize, name: &'static str) -> Self {
        ParamName { layer: Some(layer), name }
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer {
            Some(l) => write!(f, "model.layers.{l}.{}", self.name),
            None => f.write_str(self.name),
        }
    }
}
