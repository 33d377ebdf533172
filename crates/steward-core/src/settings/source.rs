//! Where a setting came from, so that an error names the key and the file
//! or variable that gave it; and which keys a reader did not use.

use figment::{Figment, Metadata, Source};
use serde::{Deserialize, Deserializer};

use super::env;
use crate::ConfigError;

/// A value read with the keys it ignored, so that a misspelt key is an
/// error rather than a setting silently not applied (`serde_ignored`: serde
/// alone can only refuse unknown keys of a whole table, and a service's
/// table also holds the host's keys).
pub(super) struct Tracked<T> {
    pub(super) value: T,
    pub(super) ignored: Vec<String>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tracked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ignored = Vec::new();
        let value = serde_ignored::deserialize(deserializer, |path| {
            ignored.push(path.to_string());
        })?;
        Ok(Tracked { value, ignored })
    }
}

/// A figment error as a [`ConfigError::Setting`]; `base` is the dotted path
/// the failed read started at (the error's own path is relative to it).
pub(super) fn error_from(figment: &Figment, base: &str, err: figment::Error) -> ConfigError {
    let key = std::iter::once(base)
        .chain(err.path.iter().map(String::as_str))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    let origin = err
        .metadata
        .as_ref()
        .map(|metadata| describe(metadata, &key))
        .or_else(|| origin_of(figment, &key));
    ConfigError::Setting {
        key,
        origin,
        reason: err.kind.to_string(),
    }
}

/// Where the value at `key` came from, if it has one.
pub(super) fn origin_of(figment: &Figment, key: &str) -> Option<String> {
    figment
        .find_metadata(key)
        .map(|metadata| describe(metadata, key))
}

fn describe(metadata: &Metadata, key: &str) -> String {
    match &metadata.source {
        Some(Source::File(path)) => format!("TOML file {}", path.display()),
        _ if metadata.name == env::NAME => format!("environment variable {}", env::name_of(key)),
        // figment's name for `Toml::string`, in the words of this API.
        _ if metadata.name == "TOML source string" => "TOML text".to_string(),
        _ => metadata.name.to_string(),
    }
}
