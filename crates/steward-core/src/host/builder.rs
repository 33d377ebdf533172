//! Registration and configuration checks. Every mistake is a typed
//! [`ConfigError`] here, before anything runs.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Host, HostShared, ServiceConfig};
use crate::blocking::BlockingPool;
use crate::channel::ChannelShared;
use crate::channel::new_channel;
use crate::periodic::Periodic;
use crate::service::DynService;
use crate::status::Slot;
use crate::sync::LockExt;
use crate::{BoxError, ConfigError, Context, FailurePolicy, Receiver, Sender, Service, Settings};

const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Configures a [`Host`]: services, channels, timeouts.
///
/// ```
/// use std::time::Duration;
/// use steward_core::{FailurePolicy, Host};
///
/// # fn demo() -> Result<(), steward_core::ConfigError> {
/// let mut builder = Host::builder();
/// builder.shutdown_timeout(Duration::from_secs(10));
/// builder
///     .periodic("report", Duration::from_secs(5), |_ctx| async { Ok(()) })?
///     .policy(FailurePolicy::Ignore);
/// let host = builder.build()?;
/// # Ok(()) }
/// ```
pub struct HostBuilder {
    services: Vec<Registered>,
    /// Beside `services`, index for index.
    declared: Vec<Declared>,
    names: HashSet<Arc<str>>,
    channels: Vec<Arc<ChannelShared>>,
    progress: Arc<tokio::sync::Notify>,
    shutdown_timeout: Duration,
    default_init_timeout: Duration,
    blocking_limit: usize,
    handle_signals: bool,
    /// Set through the setters in watchdog.rs.
    pub(super) watch: super::watch_config::WatchConfig,
    /// Applied at `build`, over what the code set.
    settings: Option<Settings>,
}

/// A service as registered, before the host starts it.
pub(crate) struct Registered {
    pub(crate) service: Box<dyn DynService>,
    pub(crate) name: Arc<str>,
    pub(crate) policy: FailurePolicy,
    /// `run` may return `Ok(())` by itself without that being a failure.
    pub(crate) may_finish: bool,
    /// Stopped after every other service (see `Service::STOPS_LAST`).
    pub(crate) stops_last: bool,
}

/// What a registration declares that only `build` needs: kept beside the
/// services, not in them, so the running host does not carry it.
#[derive(Default)]
pub(crate) struct Declared {
    /// How long its init may take; the host's default if not set.
    pub(crate) init_timeout: Option<Duration>,
    /// How often it promises to beat (tick or heartbeat), if at all.
    pub(crate) liveness: Option<Duration>,
    /// Channels it declared it sends to / receives from, by name.
    pub(crate) sends_to: Vec<String>,
    pub(crate) receives_from: Vec<String>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBuilder {
    /// An empty configuration: 30 s shutdown timeout, 60 s init timeout,
    /// a blocking pool as large as the machine's cores, signals handled.
    ///
    /// ```
    /// let builder = steward_core::HostBuilder::new();
    /// ```
    pub fn new() -> Self {
        HostBuilder {
            services: Vec::new(),
            declared: Vec::new(),
            names: HashSet::new(),
            channels: Vec::new(),
            progress: Arc::new(tokio::sync::Notify::new()),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            default_init_timeout: DEFAULT_INIT_TIMEOUT,
            blocking_limit: std::thread::available_parallelism().map_or(2, |n| n.get()),
            handle_signals: true,
            watch: Default::default(),
            settings: None,
        }
    }

    /// Registers `service` under a unique `name`. Services start concurrently
    /// and stop in reverse order of registration, except that a channel's
    /// producers stop before its consumer and services that report on the
    /// others ([`Service::STOPS_LAST`], the HTTP server) stop last.
    ///
    /// ```
    /// # use steward_core::{BoxError, Context, Host, Service};
    /// struct Idle;
    /// impl Service for Idle {
    ///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
    ///         ctx.cancelled().await;
    ///         Ok(())
    ///     }
    /// }
    /// # fn main() -> Result<(), steward_core::ConfigError> {
    /// let mut builder = Host::builder();
    /// builder.service("idle", Idle)?;
    /// assert!(builder.service("idle", Idle).is_err()); // names are unique
    /// # Ok(()) }
    /// ```
    pub fn service<S: Service>(
        &mut self,
        name: impl Into<String>,
        service: S,
    ) -> Result<ServiceConfig<'_>, ConfigError> {
        let name: String = name.into();
        if name.is_empty() {
            return Err(ConfigError::EmptyName { what: "service" });
        }
        let name: Arc<str> = Arc::from(name);
        if !self.names.insert(name.clone()) {
            return Err(ConfigError::DuplicateService {
                name: name.to_string(),
            });
        }
        self.services.push(Registered {
            service: Box::new(service),
            name,
            policy: FailurePolicy::default(),
            may_finish: false,
            stops_last: S::STOPS_LAST,
        });
        self.declared.push(Declared::default());
        let entry = self
            .services
            .last_mut()
            .expect("a service was pushed on the line above");
        let declared = self
            .declared
            .last_mut()
            .expect("a declaration was pushed on the line above");
        Ok(ServiceConfig { entry, declared })
    }

    /// Registers a closure that runs every `period` (drift-free; missed ticks
    /// are skipped). A zero period is refused.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// let err = builder.periodic("bad", std::time::Duration::ZERO, |_ctx| async { Ok(()) });
    /// assert!(err.is_err());
    /// # }
    /// ```
    pub fn periodic<F, Fut>(
        &mut self,
        name: impl Into<String>,
        period: Duration,
        f: F,
    ) -> Result<ServiceConfig<'_>, ConfigError>
    where
        F: FnMut(Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let name: String = name.into();
        if period.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: format!("periodic service `{name}`"),
            });
        }
        Ok(self
            .service(name, Periodic::new(period, f))?
            .liveness(period))
    }

    /// Creates a typed bounded channel named `name` holding up to `capacity`
    /// items; its depth shows in the host's status.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// let (tx, rx) = builder.channel::<String>("emails", 128)?;
    /// # Ok(()) }
    /// ```
    pub fn channel<T: Send + 'static>(
        &mut self,
        name: impl Into<String>,
        capacity: usize,
    ) -> Result<(Sender<T>, Receiver<T>), ConfigError> {
        let name: String = name.into();
        if name.is_empty() {
            return Err(ConfigError::EmptyName { what: "channel" });
        }
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity { name });
        }
        if self.channels.iter().any(|c| c.name == name) {
            return Err(ConfigError::DuplicateChannel { name });
        }
        let (tx, rx, shared) = new_channel(name, capacity, self.progress.clone());
        self.channels.push(shared);
        Ok((tx, rx))
    }

    /// How long shutdown may take in all before services still running are
    /// aborted and named (default 30 s). Zero is refused by
    /// [`build`](Self::build).
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// builder.shutdown_timeout(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The init timeout for services that do not set their own (default 60 s).
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// builder.default_init_timeout(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn default_init_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.default_init_timeout = timeout;
        self
    }

    /// How many blocking calls ([`Context::spawn_blocking`]) may run at once
    /// (default: the number of cores). Zero is refused.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// assert!(builder.blocking_limit(0).is_err());
    /// # }
    /// ```
    pub fn blocking_limit(&mut self, limit: usize) -> Result<&mut Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: "the blocking pool".to_string(),
            });
        }
        self.blocking_limit = limit;
        Ok(self)
    }

    /// Whether [`Host::run`] listens for SIGINT and SIGTERM (default true).
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) {
    /// builder.handle_signals(false); // tests stop the host with a handle instead
    /// # }
    /// ```
    pub fn handle_signals(&mut self, on: bool) -> &mut Self {
        self.handle_signals = on;
        self
    }

    /// Settings from a file or the environment ([`Settings`]) that override
    /// what the code set: the host's timeouts, and per service its failure
    /// policy, init timeout and own settings. Applied by
    /// [`build`](Self::build), which reports a bad or unknown key by name.
    ///
    /// ```
    /// # fn demo(mut builder: steward_core::HostBuilder) -> Result<(), steward_core::ConfigError> {
    /// builder.settings(steward_core::Settings::new().env());
    /// # Ok(()) }
    /// ```
    pub fn settings(&mut self, settings: Settings) -> &mut Self {
        self.settings = Some(settings);
        self
    }

    /// Checks the configuration and builds the host.
    ///
    /// ```
    /// # fn main() -> Result<(), steward_core::ConfigError> {
    /// let host = steward_core::Host::builder().build()?;
    /// # Ok(()) }
    /// ```
    pub fn build(mut self) -> Result<Host, ConfigError> {
        if let Some(settings) = self.settings.take() {
            self.apply(&settings)?;
        }
        for entry in &self.services {
            let problems = entry.service.check();
            if !problems.is_empty() {
                return Err(ConfigError::Service {
                    name: entry.name.to_string(),
                    problems,
                });
            }
            if let FailurePolicy::Restart(policy) = &entry.policy {
                policy.validate()?;
            }
        }
        if self.shutdown_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                what: "host",
                reason: "the shutdown timeout is 0: no service would get any time to stop and \
                    finish its work"
                    .to_string(),
            });
        }
        self.declare_channel_roles()?;
        if let Some((entry, _)) = self
            .services
            .iter()
            .zip(&self.declared)
            .find(|(_, d)| d.liveness == Some(Duration::ZERO))
        {
            return Err(ConfigError::ZeroPeriod {
                what: format!("liveness interval of service `{}`", entry.name),
            });
        }
        let slots: Arc<[Arc<Slot>]> = self
            .services
            .iter()
            .zip(&self.declared)
            .enumerate()
            .map(|(index, (s, declared))| {
                let stable_after = match &s.policy {
                    FailurePolicy::Restart(policy) => policy.max_backoff,
                    _ => Duration::ZERO,
                };
                // Past u32::MAX services, the ones beyond are not found by
                // their channel ends: roles and drain credit go unrecorded.
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let slot = Slot::new(s.name.clone(), index, declared.liveness, stable_after);
                // Kept in the slot, where both the supervisor and the
                // watchdog (which enforces it when init blocks its thread)
                // read it.
                slot.poll
                    .set_init_timeout(declared.init_timeout.unwrap_or(self.default_init_timeout));
                Arc::new(slot)
            })
            .collect();
        for channel in &self.channels {
            channel.attach(slots.clone());
        }
        let services = self.services;
        Ok(Host {
            shared: Arc::new(HostShared {
                slots,
                channels: self.channels,
                progress: self.progress,
                shutdown: CancellationToken::new(),
                shutting_down: AtomicBool::new(false),
                failures: Mutex::new(Vec::new()),
                shutdown_timeout: self.shutdown_timeout,
                stop_deadline: std::sync::OnceLock::new(),
                blocking: BlockingPool::new(self.blocking_limit),
            }),
            services,
            handle_signals: self.handle_signals,
            watch: self.watch,
        })
    }
}

impl HostBuilder {
    /// Applies `settings` over what the code set.
    fn apply(&mut self, settings: &Settings) -> Result<(), ConfigError> {
        let host = settings.host_keys()?;
        if let Some(timeout) = host.shutdown_timeout {
            self.shutdown_timeout = timeout;
        }
        if let Some(timeout) = host.init_timeout {
            self.default_init_timeout = timeout;
        }
        if let Some(limit) = host.blocking_limit {
            self.blocking_limit(limit)
                .map_err(|err| settings.refuse("steward.host.blocking_limit", err.to_string()))?;
        }
        if host.shutdown_timeout.is_some_and(|t| t.is_zero()) {
            return Err(settings.refuse(
                "steward.host.shutdown_timeout",
                "must be greater than 0".to_string(),
            ));
        }
        let names = settings.service_names(|name| self.names.contains(name))?;
        for name in names {
            let section = settings.service(&name);
            let keys = section.host_keys()?;
            let Some(index) = self.services.iter().position(|s| *s.name == *name) else {
                continue;
            };
            let entry = &mut self.services[index];
            entry.policy = keys.policy(&entry.policy, &section)?;
            if let Some(timeout) = keys.init_timeout {
                self.declared[index].init_timeout = Some(timeout);
            }
            entry.service.configure(&section)?;
        }
        Ok(())
    }

    /// Records the declared channel roles, refusing unknown channels, a
    /// second receiver, and producer/consumer cycles.
    fn declare_channel_roles(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            what: "channel roles",
            reason,
        };
        let channel = |name: &str, service: &str| {
            self.channels
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    invalid(format!(
                        "service `{service}` names channel `{name}`, but no channel has that name"
                    ))
                })
        };
        for (index, (entry, declared)) in self.services.iter().zip(&self.declared).enumerate() {
            for name in &declared.sends_to {
                let mut roles = channel(name, &entry.name)?.roles.lock_or_recover();
                roles.senders.insert(index);
            }
            for name in &declared.receives_from {
                let mut roles = channel(name, &entry.name)?.roles.lock_or_recover();
                if let Some(&other) = roles.receivers.iter().find(|&&r| r != index) {
                    return Err(invalid(format!(
                        "channel `{name}` has one receiver, but both `{}` and `{}` declare they receive from it",
                        self.services[other].name, entry.name
                    )));
                }
                roles.receivers.insert(index);
            }
        }
        let edges = super::stop_order::edges(&self.channels);
        if let Some(cycle) = super::stop_order::find_cycle(self.services.len(), &edges) {
            let path: Vec<&str> = cycle.iter().map(|&i| &*self.services[i].name).collect();
            return Err(invalid(format!(
                "the services' channels form a cycle ({}), so no stop order lets every consumer drain after its producers",
                path.join(" -> ")
            )));
        }
        Ok(())
    }
}
