//! `STEWARD_HOST__*` and `STEWARD_SERVICES__*` variables as a settings
//! layer. Written here rather than with figment's `Env` provider because
//! that one reads only the process's environment, and tests running in
//! parallel must not share it.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// The layer's name, also how an error's origin is recognised as a variable.
pub(super) const NAME: &str = "STEWARD_* environment variables";

const PREFIX: &str = "STEWARD_";

/// The variables that are Steward's settings, with their keys.
pub(super) struct Vars {
    /// Each variable as its key path (below `steward`) and value.
    settings: Vec<(Vec<String>, String)>,
}

impl Vars {
    pub(super) fn collect(vars: impl IntoIterator<Item = (String, String)>) -> Vars {
        let settings = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(PREFIX)?.to_ascii_lowercase();
                let path: Vec<String> = rest.split("__").map(str::to_string).collect();
                // Other STEWARD_* variables belong to the `steward` command.
                matches!(path.first().map(String::as_str), Some("host" | "services"))
                    .then_some((path, value))
            })
            .collect();
        Vars { settings }
    }
}

/// The variable that sets `key` (`steward.host.shutdown_timeout` is
/// `STEWARD_HOST__SHUTDOWN_TIMEOUT`).
pub(super) fn name_of(key: &str) -> String {
    let below = key.strip_prefix("steward.").unwrap_or(key);
    format!("{PREFIX}{}", below.replace('.', "__").to_ascii_uppercase())
}

impl Provider for Vars {
    fn metadata(&self) -> Metadata {
        Metadata::named(NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (path, value) in &self.settings {
            // Parsed as figment's own provider does: numbers and booleans
            // become numbers and booleans, anything else a string.
            let value: Value = value.parse().unwrap_or_else(|never| match never {});
            let mut keys = vec!["steward"];
            keys.extend(path.iter().map(String::as_str));
            insert(&mut root, &keys, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Puts `value` at `path` below `table`, making the tables on the way. A
/// variable for a table and one inside it: the inner one wins, as the more
/// specific.
fn insert(table: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            table.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry((*first).to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}
