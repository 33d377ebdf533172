//! Configuration mistakes are typed `ConfigError`s, returned where they are
//! made (or at `build`), never panics.

mod common;

use std::time::Duration;

use common::{Idle, Journal, state_of, wait_for};
use steward_core::{
    BoxError, ConfigError, Context, FailurePolicy, Host, HostBuilder, RestartPolicy, Service,
    ServiceState, TaskError,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
}

fn noop(_ctx: Context) -> futures::future::Ready<Result<(), BoxError>> {
    futures::future::ready(Ok(()))
}

#[test]
fn duplicate_service_name_is_refused() {
    let mut builder = builder();
    builder.service("mailer", Idle).unwrap();
    let err = builder.service("mailer", Idle).err().unwrap();
    assert!(
        matches!(&err, ConfigError::DuplicateService { name } if name == "mailer"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "a service named `mailer` is already registered; service names must be unique"
    );
    let err = builder
        .periodic("mailer", Duration::from_secs(1), noop)
        .err()
        .unwrap();
    assert!(
        matches!(err, ConfigError::DuplicateService { .. }),
        "{err:?}"
    );
    // The refusal does not spoil the builder.
    let host = builder.build().unwrap();
    assert_eq!(host.handle().status().services.len(), 1);
}

#[test]
fn empty_service_name_is_refused() {
    let mut builder = builder();
    let err = builder.service("", Idle).err().unwrap();
    assert!(
        matches!(err, ConfigError::EmptyName { what: "service" }),
        "{err:?}"
    );
    let err = builder
        .periodic("", Duration::from_secs(1), noop)
        .err()
        .unwrap();
    assert!(
        matches!(err, ConfigError::EmptyName { what: "service" }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "service name must not be empty");
}

#[test]
fn zero_channel_capacity_is_refused() {
    let mut builder = builder();
    let err = builder.channel::<u32>("orders", 0).unwrap_err();
    assert!(
        matches!(&err, ConfigError::ZeroCapacity { name } if name == "orders"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`orders` has capacity 0"), "{err}");
    assert!(
        builder
            .build()
            .unwrap()
            .handle()
            .status()
            .channels
            .is_empty()
    );
}

#[test]
fn duplicate_and_empty_channel_names_are_refused() {
    let mut builder = builder();
    let _orders = builder.channel::<u32>("orders", 4).unwrap();
    let err = builder.channel::<String>("orders", 8).unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateChannel { name } if name == "orders"),
        "{err:?}"
    );
    let err = builder.channel::<u32>("", 8).unwrap_err();
    assert!(
        matches!(err, ConfigError::EmptyName { what: "channel" }),
        "{err:?}"
    );
}

#[test]
fn zero_blocking_limit_is_refused() {
    let mut builder = builder();
    let err = builder.blocking_limit(0).err().unwrap();
    assert!(
        matches!(&err, ConfigError::ZeroConcurrency { what } if what.contains("blocking")),
        "{err:?}"
    );
    assert!(builder.blocking_limit(1).is_ok());
}

#[test]
fn zero_period_for_a_periodic_service_is_refused() {
    let mut builder = builder();
    let err = builder
        .periodic("cleanup", Duration::ZERO, noop)
        .err()
        .unwrap();
    assert!(
        matches!(&err, ConfigError::ZeroPeriod { what } if what.contains("cleanup")),
        "{err:?}"
    );
    assert!(
        builder
            .build()
            .unwrap()
            .handle()
            .status()
            .services
            .is_empty()
    );
}

/// Asks its context for bad helpers and reports the errors.
struct AsksForZero {
    journal: Journal,
}

impl Service for AsksForZero {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        match ctx.every(Duration::ZERO) {
            Err(ConfigError::ZeroPeriod { what }) => self.journal.push(format!("period: {what}")),
            Err(other) => self.journal.push(format!("unexpected: {other:?}")),
            Ok(_) => self.journal.push("a zero-period ticker was made"),
        }
        match ctx.task_group(0) {
            Err(ConfigError::ZeroConcurrency { what }) => {
                self.journal.push(format!("group: {what}"))
            }
            Err(other) => self.journal.push(format!("unexpected: {other:?}")),
            Ok(_) => self.journal.push("a zero-limit group was made"),
        }
        let each = ctx.for_each_concurrent(0..10, 0, |_, _| async { Ok(()) });
        match tokio::time::timeout(Duration::from_secs(60), each).await {
            Ok(Err(TaskError::Failed { source })) => match source.downcast_ref::<ConfigError>() {
                Some(ConfigError::ZeroConcurrency { what }) => {
                    self.journal.push(format!("for_each: {what}"))
                }
                other => self.journal.push(format!("unexpected: {other:?}")),
            },
            Ok(other) => self.journal.push(format!("unexpected: {other:?}")),
            Err(_) => self.journal.push("a zero limit waited for a slot forever"),
        }
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn zero_period_ticker_and_zero_limit_group_from_a_context_are_errors() {
    let journal = Journal::default();
    let mut builder = builder();
    builder
        .service(
            "reports",
            AsksForZero {
                journal: journal.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "all answers", |_| {
        journal.events().len() == 3
    })
    .await;
    assert_eq!(
        journal.events(),
        [
            "period: ticker of service `reports`",
            "group: task group `reports`",
            "for_each: task group `reports`"
        ]
    );
    assert!(state_of(&handle.status(), "reports").is_running());
    handle.shutdown();
    run.await.unwrap();
}

fn build_with(policy: RestartPolicy) -> Result<Host, ConfigError> {
    let mut builder = builder();
    builder
        .service("sync", Idle)
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    builder.build()
}

#[test]
fn invalid_restart_policy_is_refused_at_build() {
    let base = RestartPolicy::default();
    let cases = [
        (
            "multiplier below 1",
            RestartPolicy {
                multiplier: 0.5,
                ..base.clone()
            },
        ),
        (
            "multiplier NaN",
            RestartPolicy {
                multiplier: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "multiplier infinite",
            RestartPolicy {
                multiplier: f64::INFINITY,
                ..base.clone()
            },
        ),
        (
            "negative jitter",
            RestartPolicy {
                jitter: -0.1,
                ..base.clone()
            },
        ),
        (
            "jitter above 1",
            RestartPolicy {
                jitter: 1.5,
                ..base.clone()
            },
        ),
        (
            "jitter NaN",
            RestartPolicy {
                jitter: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "max below initial",
            RestartPolicy {
                initial_backoff: Duration::from_secs(10),
                max_backoff: Duration::from_secs(1),
                ..base.clone()
            },
        ),
        (
            "zero window",
            RestartPolicy {
                window: Duration::ZERO,
                ..base.clone()
            },
        ),
    ];
    for (case, policy) in cases {
        let err = build_with(policy)
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    what: "restart policy",
                    ..
                }
            ),
            "{case}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid restart policy: "));
    }
    assert!(build_with(base).is_ok());
}

/// Fails every time it runs.
struct AlwaysFails;

impl Service for AlwaysFails {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("upstream is down".into())
    }
}

#[test]
fn backoff_of_an_uncapped_policy_never_panics() {
    // "No cap on the delay" is a valid policy; computing its delays must not
    // overflow `Duration` however many attempts there are.
    for jitter in [0.0, 0.5, 1.0] {
        let policy = RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::MAX,
            multiplier: 1000.0,
            jitter,
            max_restarts: u32::MAX,
            window: Duration::MAX,
        };
        policy.validate().unwrap();
        for attempt in [1, 2, 7, 8, 9, 100, u32::MAX] {
            let delay = policy.backoff(attempt);
            if jitter == 0.0 && attempt == 1 {
                assert_eq!(delay, Duration::from_secs(1));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn uncapped_restart_policy_does_not_crash_the_supervisor() {
    let policy = RestartPolicy {
        initial_backoff: Duration::MAX,
        max_backoff: Duration::MAX,
        jitter: 0.0,
        ..RestartPolicy::default()
    };
    let mut builder = builder();
    builder
        .service("sync", AlwaysFails)
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    // Restarting, with the next attempt as far in the future as it gets.
    let status = wait_for(&handle, Duration::from_secs(10), "restarting", |s| {
        matches!(
            s.services[0].state,
            ServiceState::Restarting { attempt: 1, .. }
        )
    })
    .await;
    assert_eq!(status.services[0].restarts, 1);
    handle.shutdown();
    let exit = run.await.expect("the host must not panic");
    // Stopped while waiting to restart: it never recovered.
    assert_eq!(exit.code(), 4, "{exit:?}");
    assert_eq!(state_of(&handle.status(), "sync"), ServiceState::Stopped);
}
