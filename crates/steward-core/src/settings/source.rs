//! Where a setting came from, so that an error names the key and the file
//! or variable that gave it; and which keys a reader did not use.

use figment::error::Kind;
use figment::{Figment, Metadata, Source};
use serde::de::Visitor;
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
            let mut keys = Vec::new();
            keys_of(&path, &mut keys);
            ignored.push(keys.join("."));
        })?;
        Ok(Tracked { value, ignored })
    }
}

/// The keys of `path`, outermost first; serde_ignored's own text marks an
/// `Option` on the way with `?`, which is no key of the file.
fn keys_of(path: &serde_ignored::Path<'_>, keys: &mut Vec<String>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            keys_of(parent, keys);
            keys.push(index.to_string());
        }
        Path::Map { parent, key } => {
            keys_of(parent, keys);
            keys.push(key.clone());
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => keys_of(parent, keys),
    }
}

/// The field names of struct `T`, for an unknown key's message. Asked of
/// `T`'s own `Deserialize` (serde hands them to `deserialize_struct`), so
/// the list cannot drift from the struct.
pub(super) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom(
            "only a struct's field names are asked for",
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom(
            "only a struct's field names are asked for",
        ))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// What is wrong with a value, in the words of a settings file: figment's
/// own text nests backticks and names Rust types.
fn reason_of(kind: &Kind) -> String {
    let one_of = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let expected = |what: &str| match what {
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number".to_string(),
        "isize" | "i8" | "i16" | "i32" | "i64" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        other => other.to_string(),
    };
    match kind {
        Kind::UnknownVariant(found, names) => {
            format!("found `{found}`, expected one of {}", one_of(names))
        }
        Kind::InvalidType(found, what) => format!("found {found}, expected {}", expected(what)),
        Kind::InvalidValue(found, what) => format!("found {found}, expected {}", expected(what)),
        other => other.to_string(),
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
        reason: reason_of(&err.kind),
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
