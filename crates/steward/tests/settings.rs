//! Settings from a TOML file and `STEWARD_*` environment variables (issue 12,
//! item 7): the host's shutdown and init timeouts, each service's failure
//! policy, and a worker's queues and timeouts, with an error naming the key
//! (and the file or variable it came from) for a bad value.
//!
//! Environment variables are read through `Settings::env_from`, given the
//! variables as pairs, so tests running in parallel never touch the
//! process's environment.

mod common;

use std::time::Duration;

use common::{Ping, builder, store_in};
use steward::jobs::{Maintenance, QueueConfig, Worker};
use steward::{BoxError, ConfigError, Context, ExitStatus, FailurePolicy, Service, Settings};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Fails at once; its policy decides what the host does.
struct Broken;

impl Service for Broken {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("broken on purpose".into())
    }
}

struct Idle;

impl Service for Idle {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_toml_file_sets_the_host_a_policy_and_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steward.toml");
    std::fs::write(
        &file,
        r#"
[steward.host]
shutdown_timeout = "7s"
init_timeout = "3s"

[steward.services.broken]
policy = "stop_host"

[steward.services.worker]
queues = { default = 3, mail = 2 }
drain_timeout = "4s"
lease = "40s"

[app]
greeting = "the application's own section is left to it"
"#,
    )
    .unwrap();
    let settings = Settings::new().toml_file(&file).unwrap();
    assert_eq!(
        settings.extract::<String>("app.greeting").unwrap(),
        "the application's own section is left to it"
    );

    let mut worker = Worker::new(store_in(&dir).await)
        .register::<Ping>()
        .queue("default", 10)
        .queue("low", 1);
    // What build does for the worker, called here so the result can be read.
    Service::configure(&mut worker, &settings.service("worker")).unwrap();
    let config = worker.current_config();
    assert_eq!(
        config.queues,
        [
            QueueConfig {
                name: "default".into(),
                concurrency: 3
            },
            QueueConfig {
                name: "low".into(),
                concurrency: 1
            },
            QueueConfig {
                name: "mail".into(),
                concurrency: 2
            },
        ]
    );
    assert_eq!(config.drain_timeout, Some(Duration::from_secs(4)));
    assert_eq!(config.lease, Duration::from_secs(40));

    // Through the host: the policy from the file stops the host when the
    // service fails (its default would restart it).
    let mut builder = builder();
    builder.settings(settings);
    builder.service("broken", Broken).unwrap();
    builder.service("worker", worker).unwrap();
    let host = builder.build().unwrap();
    assert_eq!(host.handle().shutdown_timeout(), Duration::from_secs(7));
    let status = tokio::time::timeout(Duration::from_secs(20), host.run())
        .await
        .expect("the host stops because of the broken service");
    assert!(
        matches!(status, ExitStatus::ServiceFailed { .. }),
        "{status:?}"
    );
}

#[tokio::test]
async fn environment_variables_win_over_the_file() {
    let settings = Settings::new()
        .toml_str("[steward.host]\nshutdown_timeout = \"7s\"\n")
        .unwrap()
        .env_from(env(&[
            ("STEWARD_HOST__SHUTDOWN_TIMEOUT", "9s"),
            ("STEWARD_SERVICES__IDLE__POLICY", "ignore"),
            // The CLI's own variables are not Steward's settings.
            ("STEWARD_STORE", "sqlite://elsewhere.db"),
            ("UNRELATED", "1"),
        ]));
    let mut builder = builder();
    builder.settings(settings);
    builder.service("idle", Idle).unwrap();
    let host = builder.build().unwrap();
    assert_eq!(host.handle().shutdown_timeout(), Duration::from_secs(9));
}

fn build_error(settings: Settings) -> ConfigError {
    let mut builder = builder();
    builder.settings(settings);
    builder
        .service("worker", Idle)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    builder.service("other", Idle).unwrap();
    builder.build().expect_err("build must refuse the settings")
}

#[test]
fn a_bad_value_in_a_file_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steward.toml");
    std::fs::write(&file, "[steward.host]\nshutdown_timeout = \"soon\"\n").unwrap();
    let err = build_error(Settings::new().toml_file(&file).unwrap()).to_string();
    assert!(err.contains("steward.host.shutdown_timeout"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn a_bad_value_in_a_variable_names_the_variable() {
    let err =
        build_error(Settings::new().env_from(env(&[("STEWARD_HOST__BLOCKING_LIMIT", "many")])))
            .to_string();
    assert!(err.contains("STEWARD_HOST__BLOCKING_LIMIT"), "{err}");
    assert!(err.contains("many"), "{err}");
}

#[test]
fn a_zero_that_would_break_the_host_names_the_key() {
    let err = build_error(Settings::new().env_from(env(&[("STEWARD_HOST__BLOCKING_LIMIT", "0")])))
        .to_string();
    assert!(err.contains("STEWARD_HOST__BLOCKING_LIMIT"), "{err}");
    let err = build_error(
        Settings::new()
            .toml_str("[steward.host]\nshutdown_timeout = \"0s\"\n")
            .unwrap(),
    )
    .to_string();
    assert!(err.contains("steward.host.shutdown_timeout"), "{err}");
}

/// Found by a second new-user trial: the messages must point at the exact
/// key, say where it came from, and say what would be right.
#[test]
fn errors_read_well_for_nested_keys_typos_and_enum_values() {
    let nested = build_error(
        Settings::new()
            .toml_str("[steward.services.other]\nrestart = { max_restart = 5 }\n")
            .unwrap(),
    )
    .to_string();
    assert_eq!(
        nested,
        "setting `steward.services.other.restart.max_restart` (from TOML text): unknown \
         setting; the keys here are initial_backoff, max_backoff, multiplier, jitter, \
         max_restarts, window"
    );
    let from_env = build_error(Settings::new().env_from(env(&[(
        "STEWARD_SERVICES__OTHER__RESTART__MAX_RESTART",
        "5",
    )])))
    .to_string();
    assert!(
        from_env
            .contains("(from environment variable STEWARD_SERVICES__OTHER__RESTART__MAX_RESTART)"),
        "{from_env}"
    );
    let variant = build_error(
        Settings::new()
            .toml_str("[steward.services.other]\npolicy = \"Restart\"\n")
            .unwrap(),
    )
    .to_string();
    assert_eq!(
        variant,
        "setting `steward.services.other.policy` (from TOML text): found `Restart`, expected \
         one of `restart`, `stop_host`, `ignore`"
    );
    let zero =
        build_error(Settings::new().env_from(env(&[("STEWARD_HOST__SHUTDOWN_TIMEOUT", "0s")])))
            .to_string();
    assert!(zero.ends_with("must be greater than 0"), "{zero}");
}

#[tokio::test]
async fn a_queue_set_to_zero_by_a_setting_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(store_in(&dir).await)
        .register::<Ping>()
        .queue("default", 4);
    let mut builder = builder();
    builder.settings(
        Settings::new().env_from(env(&[("STEWARD_SERVICES__WORKER__QUEUES__DEFAULT", "0")])),
    );
    builder.service("worker", worker).unwrap();
    let err = builder.build().expect_err("refused").to_string();
    assert!(
        err.contains("steward.services.worker.queues.default")
            && err.contains("STEWARD_SERVICES__WORKER__QUEUES__DEFAULT"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named_by_its_full_path() {
    let err = Settings::new()
        .toml_file("no-such-steward.toml")
        .expect_err("missing")
        .to_string();
    let full = std::env::current_dir()
        .unwrap()
        .join("no-such-steward.toml");
    assert!(err.contains(&full.display().to_string()), "{err}");
}

#[test]
fn unknown_keys_and_services_are_refused_by_name() {
    let cases = [
        (
            "[steward.host]\nshutdown_timout = \"5s\"\n",
            "shutdown_timout",
        ),
        (
            "[steward.hosts]\nshutdown_timeout = \"5s\"\n",
            "steward.hosts",
        ),
        ("[steward.services.wroker]\npolicy = \"ignore\"\n", "wroker"),
        (
            "[steward.services.other]\npolicy = \"sometimes\"\n",
            "sometimes",
        ),
        // A service that takes no settings of its own.
        (
            "[steward.services.other]\nqueues = { a = 1 }\n",
            "steward.services.other.queues",
        ),
        (
            "[steward.services.worker.restart]\nmax_restarts = 3\n",
            "restart",
        ),
    ];
    for (toml, named) in cases {
        let err = build_error(Settings::new().toml_str(toml).unwrap()).to_string();
        assert!(err.contains(named), "{toml}: {err}");
    }
}

#[tokio::test]
async fn a_worker_setting_that_breaks_a_rule_is_reported_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(store_in(&dir).await).register::<Ping>();
    let settings = Settings::new().env_from(env(&[
        ("STEWARD_SERVICES__WORKER__QUEUES__DEFAULT", "0"),
        ("STEWARD_SERVICES__WORKER__LEASE", "forever"),
    ]));
    let mut builder = self::builder();
    builder.settings(settings);
    builder.service("worker", worker).unwrap();
    let err = builder.build().expect_err("refused").to_string();
    // The README quotes this message.
    assert_eq!(
        err,
        "setting `steward.services.worker.lease` (from environment variable \
         STEWARD_SERVICES__WORKER__LEASE): found string \"forever\", expected a duration"
    );

    // A rule between two values (from the code and a setting) is the
    // worker's to report, naming the service.
    let worker = Worker::new(store_in(&dir).await).register::<Ping>();
    let settings =
        Settings::new().env_from(env(&[("STEWARD_SERVICES__WORKER__HEARTBEAT_EVERY", "1m")]));
    let mut builder = self::builder();
    builder.settings(settings);
    builder.service("worker", worker).unwrap();
    let err = builder.build().expect_err("refused").to_string();
    assert!(err.contains("service `worker`"), "{err}");
    assert!(err.contains("heartbeat_every (60s)"), "{err}");
}

#[tokio::test]
async fn maintenance_takes_its_settings_and_reports_a_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let settings = Settings::new().env_from(env(&[
        ("STEWARD_SERVICES__MAINTENANCE__COMPLETED_RETENTION", "2h"),
        ("STEWARD_SERVICES__MAINTENANCE__LEADER_EVERY", "1m"),
    ]));
    let mut builder = builder();
    builder.settings(settings);
    builder
        .service("maintenance", Maintenance::new(store.clone()))
        .unwrap();
    let err = builder
        .build()
        .expect_err("leader_every over leader_ttl")
        .to_string();
    assert!(err.contains("service `maintenance`"), "{err}");
    assert!(err.contains("leader_every"), "{err}");

    let settings =
        Settings::new().env_from(env(&[("STEWARD_SERVICES__MAINTENANCE__RETENTION", "2h")]));
    let mut builder = self::builder();
    builder.settings(settings);
    builder
        .service("maintenance", Maintenance::new(store))
        .unwrap();
    let err = builder.build().expect_err("unknown key").to_string();
    assert!(
        err.contains("STEWARD_SERVICES__MAINTENANCE__RETENTION"),
        "{err}"
    );
}

#[test]
fn a_missing_or_broken_file_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Settings::new()
        .toml_file(&missing)
        .expect_err("missing file");
    assert!(err.to_string().contains("nope.toml"), "{err}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[steward.host\n").unwrap();
    let err = Settings::new().toml_file(&broken).expect_err("broken file");
    assert!(err.to_string().contains("broken.toml"), "{err}");
}
