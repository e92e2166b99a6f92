//! Reading a recipe's settings from a TOML file: every recipe's config reads the same way (absent keys keep
//! their defaults, which the recipe's `#[serde(default)]` gives; unknown keys are errors).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A settings file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a valid config (syntax, types, unknown keys).
    #[error("invalid config {}: {source}", path.display())]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the TOML reader said.
        source: toml::de::Error,
    },
}

/// Reads and parses `path` as `T` (the caller validates the values).
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, TomlFileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| TomlFileError::Read { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|source| TomlFileError::Parse { path: path.to_path_buf(), source })
}
