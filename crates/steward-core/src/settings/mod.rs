//! Settings from a TOML file and `STEWARD_*` environment variables, the way
//! deployments give them: the host's timeouts, each service's failure
//! policy and init timeout, and a service's own settings (a worker's queues,
//! lease, drain timeout).
//!
//! Layers are merged with [`figment`] (a maintained layered-configuration
//! crate): each one added wins over the ones before it, so code sets
//! defaults, a file overrides them, and the environment overrides the file.
//! Steward's keys live under `steward` (`[steward.host]`,
//! `[steward.services.<name>]`); the rest of the file is the application's,
//! read with [`Settings::extract`].
//!
//! - [`source`]: where a value came from, for error messages.
//! - [`env`]: `STEWARD_*` variables as a layer.
//! - [`host`]: the host's and each service's keys, applied at build.

mod env;
pub(crate) mod host;
mod source;

use std::collections::BTreeSet;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::Value;
use serde::de::DeserializeOwned;

use crate::ConfigError;
use source::{error_from, origin_of};

/// Keys of a service's table that the host reads (its failure policy and
/// init timeout); every other key is the service's own.
pub(crate) const HOST_KEYS: [&str; 3] = ["policy", "restart", "init_timeout"];

/// Layered settings: a TOML file, TOML text and environment variables, later
/// layers winning. Give them to [`HostBuilder::settings`](crate::HostBuilder::settings);
/// they are applied, and every mistake in them reported by key, at
/// [`build`](crate::HostBuilder::build).
///
/// ```toml
/// [steward.host]
/// shutdown_timeout = "30s"     # durations: "500ms", "30s", "1m 30s"
/// init_timeout = "60s"         # for services that set none
/// blocking_limit = 4
///
/// [steward.services.mailer]
/// policy = "stop_host"         # "restart" (default), "stop_host" or "ignore"
///
/// [steward.services.worker]    # any service, by name
/// policy = "restart"
/// restart = { max_restarts = 5, max_backoff = "1m" }
/// init_timeout = "10s"
/// queues = { default = 16, mail = 2 }   # a worker's own settings
/// drain_timeout = "20s"
/// ```
///
/// The same keys as environment variables: `STEWARD_HOST__SHUTDOWN_TIMEOUT=30s`,
/// `STEWARD_SERVICES__WORKER__QUEUES__DEFAULT=16` (`__` between keys, service
/// names in lower case).
///
/// ```
/// use steward_core::{Host, Settings};
/// # fn demo() -> Result<(), steward_core::ConfigError> {
/// let settings = Settings::new()
///     .toml_str("[steward.host]\nshutdown_timeout = \"10s\"\n")?
///     .env(); // STEWARD_HOST__*, STEWARD_SERVICES__* win over the text
/// let mut builder = Host::builder();
/// builder.settings(settings);
/// let host = builder.build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, Debug)]
pub struct Settings {
    figment: Figment,
}

impl Settings {
    /// No settings: everything as the code configured it.
    ///
    /// ```
    /// let settings = steward_core::Settings::new();
    /// ```
    pub fn new() -> Self {
        Settings::default()
    }

    /// Adds a TOML file. A file that is missing or not valid TOML is an
    /// error now, naming the file: a deployment that points at the wrong
    /// path must not run on defaults.
    ///
    /// ```
    /// let err = steward_core::Settings::new().toml_file("/nowhere/steward.toml");
    /// assert!(err.is_err());
    /// ```
    pub fn toml_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let given = path.as_ref();
        // Named in full in errors: a relative path is relative to a working
        // directory the reader may not know.
        let path = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        if !path.is_file() {
            return Err(ConfigError::Setting {
                key: String::new(),
                origin: Some(format!("TOML file {}", path.display())),
                reason: "no such file".to_string(),
            });
        }
        self.layer(
            Toml::file_exact(&path),
            Some(format!("TOML file {}", path.display())),
        )
    }

    /// Adds TOML text (settings embedded in the program, or read from
    /// elsewhere). Text that is not valid TOML is an error now.
    ///
    /// ```
    /// let settings = steward_core::Settings::new().toml_str("[steward.host]\nblocking_limit = 2\n");
    /// assert!(settings.is_ok());
    /// ```
    pub fn toml_str(self, text: &str) -> Result<Self, ConfigError> {
        self.layer(Toml::string(text), None)
    }

    /// Adds the process's `STEWARD_HOST__*` and `STEWARD_SERVICES__*`
    /// variables. Other `STEWARD_*` variables (the `steward` command's, such
    /// as `STEWARD_STORE`) are not settings and are left alone.
    ///
    /// ```
    /// let settings = steward_core::Settings::new().env();
    /// ```
    pub fn env(self) -> Self {
        self.env_from(std::env::vars())
    }

    /// Adds variables given as name/value pairs, read as [`env`](Self::env)
    /// reads the process's: for tests, and for programs that read their
    /// environment elsewhere.
    ///
    /// ```
    /// let settings = steward_core::Settings::new()
    ///     .env_from([("STEWARD_HOST__SHUTDOWN_TIMEOUT".to_string(), "5s".to_string())]);
    /// ```
    pub fn env_from(self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Settings {
            figment: self.figment.merge(env::Vars::collect(vars)),
        }
    }

    /// Reads the application's own setting at `key` (a dotted path such as
    /// `app.greeting`), from the same layers.
    ///
    /// ```
    /// let settings = steward_core::Settings::new().toml_str("[app]\nname = \"billing\"\n")?;
    /// assert_eq!(settings.extract::<String>("app.name")?, "billing");
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn extract<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        self.figment
            .extract_inner::<T>(key)
            .map_err(|err| error_from(&self.figment, "", err))
    }

    /// The table of service `name` (`steward.services.<name>`), as its
    /// [`Service::configure`](crate::Service::configure) receives it.
    ///
    /// ```
    /// let section = steward_core::Settings::new().service("worker");
    /// assert!(section.own_keys().is_empty());
    /// ```
    pub fn service(&self, name: &str) -> Section {
        Section {
            figment: self.figment.clone(),
            path: format!("steward.services.{name}"),
        }
    }

    /// Adds a layer, parsing it now: figment parses lazily, and a broken
    /// layer must be reported where it is added. `origin` names it when the
    /// parser's error does not.
    fn layer(
        self,
        provider: impl figment::Provider,
        origin: Option<String>,
    ) -> Result<Self, ConfigError> {
        let figment = self.figment.merge(provider);
        if let Err(err) = figment::Provider::data(&figment) {
            return Err(match error_from(&figment, "", err) {
                ConfigError::Setting {
                    key,
                    origin: None,
                    reason,
                } => ConfigError::Setting {
                    key,
                    origin,
                    reason,
                },
                other => other,
            });
        }
        Ok(Settings { figment })
    }

    /// An error about the setting at `key`, with its origin.
    pub(crate) fn refuse(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::Setting {
            key: key.to_string(),
            origin: origin_of(&self.figment, key),
            reason,
        }
    }

    /// The keys under `path` (empty when it has none or is not a table).
    fn keys(&self, path: &str) -> BTreeSet<String> {
        keys_under(&self.figment, path)
    }
}

fn keys_under(figment: &Figment, path: &str) -> BTreeSet<String> {
    match figment.find_value(path) {
        Ok(Value::Dict(_, dict)) => dict.into_keys().collect(),
        _ => BTreeSet::new(),
    }
}

/// One service's table of settings, `steward.services.<name>`, given to
/// [`Service::configure`](crate::Service::configure). The host's keys in it
/// (`policy`, `restart`, `init_timeout`) are the host's; the others are the
/// service's own.
///
/// ```
/// use serde::Deserialize;
/// #[derive(Deserialize, Default)]
/// struct MailerSettings { relay: Option<String> }
///
/// let settings = steward_core::Settings::new()
///     .toml_str("[steward.services.mailer]\npolicy = \"ignore\"\nrelay = \"smtp.example.com\"\n")?;
/// let mine: MailerSettings = settings.service("mailer").get()?;
/// assert_eq!(mine.relay.as_deref(), Some("smtp.example.com"));
/// # Ok::<(), steward_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Section {
    figment: Figment,
    path: String,
}

impl Section {
    /// The dotted path of this table, such as `steward.services.worker`.
    ///
    /// ```
    /// assert_eq!(steward_core::Settings::new().service("worker").path(), "steward.services.worker");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The service's own keys in this table, sorted (the host's left out).
    ///
    /// ```
    /// let settings = steward_core::Settings::new().toml_str("[steward.services.w]\npolicy = \"ignore\"\n")?;
    /// assert!(settings.service("w").own_keys().is_empty());
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn own_keys(&self) -> Vec<String> {
        keys_under(&self.figment, &self.path)
            .into_iter()
            .filter(|k| !HOST_KEYS.contains(&k.as_str()))
            .collect()
    }

    /// Reads the service's own keys into `T`. A key `T` does not have is an
    /// error naming it, as is a value of the wrong type; an absent table
    /// reads as an empty one.
    ///
    /// ```
    /// #[derive(serde::Deserialize, Debug)]
    /// struct Mine { relay: Option<String> }
    /// let settings = steward_core::Settings::new().toml_str("[steward.services.m]\nrelai = \"x\"\n")?;
    /// let err = settings.service("m").get::<Mine>().unwrap_err();
    /// assert!(err.to_string().contains("steward.services.m.relai"));
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.read(&HOST_KEYS, &[])
    }

    /// Reads the table into `T`, where `others` are keys that belong to
    /// someone else and are not unknown to `T`. `nested` gives the keys of
    /// `T`'s inner tables, by the key that holds them, for the message
    /// about an unknown key inside one.
    pub(crate) fn read<T: DeserializeOwned>(
        &self,
        others: &[&str],
        nested: &[(&str, &'static [&'static str])],
    ) -> Result<T, ConfigError> {
        let focused = self.figment.focus(&self.path);
        let tracked: source::Tracked<T> = focused
            .extract()
            .map_err(|err| error_from(&self.figment, &self.path, err))?;
        let Some(unknown) = tracked.ignored.iter().find(|key| {
            let first = key.split('.').next().unwrap_or_default();
            !others.contains(&first)
        }) else {
            return Ok(tracked.value);
        };
        let known = match unknown.split_once('.') {
            None => Some(source::fields_of::<T>()),
            Some((table, _)) => nested.iter().find(|(t, _)| *t == table).map(|(_, f)| *f),
        };
        let reason = match known {
            Some(fields) if !fields.is_empty() => {
                format!("unknown setting; the keys here are {}", fields.join(", "))
            }
            _ => "unknown setting".to_string(),
        };
        Err(self.refuse(unknown, reason))
    }

    /// An error about this table's key `key` (dotted, below the table).
    pub(crate) fn refuse(&self, key: &str, reason: String) -> ConfigError {
        let key = format!("{}.{key}", self.path);
        ConfigError::Setting {
            origin: origin_of(&self.figment, &key),
            key,
            reason,
        }
    }

    /// Refuses any key of the service's own: for services that take none.
    pub(crate) fn refuse_own_keys(&self) -> Result<(), ConfigError> {
        match self.own_keys().first() {
            None => Ok(()),
            Some(first) => Err(self.refuse(
                first,
                "unknown setting: this service takes only policy, restart and init_timeout"
                    .to_string(),
            )),
        }
    }
}
