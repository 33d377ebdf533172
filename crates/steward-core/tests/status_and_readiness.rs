//! What `HostHandle::status` reports: each service's state, restarts, last
//! error and last tick; each channel; and the host's liveness (no service
//! faulted) and readiness (every init done, every service ready, not
//! shutting down).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Idle, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, FailurePolicy, Host, HostBuilder, RestartPolicy, Service,
    ServiceState,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder
}

/// Hands its context to the test, so the test can act as the service.
struct Exposed {
    ctx: Arc<Mutex<Option<Context>>>,
}

impl Exposed {
    fn new() -> (Self, Arc<Mutex<Option<Context>>>) {
        let ctx = Arc::new(Mutex::new(None));
        (Exposed { ctx: ctx.clone() }, ctx)
    }
}

impl Service for Exposed {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        *self.ctx.lock().unwrap() = Some(ctx.clone());
        ctx.cancelled().await;
        Ok(())
    }
}

#[test]
fn status_lists_every_service_and_channel_in_registration_order() {
    let mut builder = builder();
    builder.service("database", Idle).unwrap();
    let (_tx, _rx) = builder.channel::<u32>("orders", 16).unwrap();
    builder.service("consumer", Idle).unwrap();
    builder
        .periodic("report", Duration::from_secs(60), |_ctx| async { Ok(()) })
        .unwrap();
    let (_tx2, _rx2) = builder.channel::<u32>("emails", 4).unwrap();
    let handle = builder.build().unwrap().handle();

    let status = handle.status();
    let names: Vec<_> = status.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["database", "consumer", "report"]);
    let channels: Vec<_> = status.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(channels, ["orders", "emails"]);
    for s in &status.services {
        assert_eq!(s.state, ServiceState::Starting);
        assert!(!s.ready);
        assert_eq!(s.restarts, 0);
        assert!(s.last_error.is_none());
        assert!(s.last_tick.is_none());
    }
    assert!(status.live, "nothing has failed");
    assert!(!status.ready, "nothing has started");
    assert!(!status.shutting_down);
}

#[tokio::test(start_paused = true)]
async fn running_services_make_the_host_ready_and_a_service_sees_the_same_status() {
    let (exposed, ctx) = Exposed::new();
    let mut builder = builder();
    builder.service("api", exposed).unwrap();
    builder.service("worker", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    let status = wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    assert!(status.live);
    assert!(
        status
            .services
            .iter()
            .all(|s| s.state.is_running() && s.ready)
    );
    assert_eq!(status.not_ready().count(), 0);
    assert_eq!(status.faulted().count(), 0);

    let ctx = ctx.lock().unwrap().clone().unwrap();
    let seen_by_service = ctx.host().status();
    assert!(seen_by_service.ready);
    assert_eq!(
        seen_by_service.services.len(),
        2,
        "a service sees the whole host"
    );
    assert_eq!(ctx.name(), "api");

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn set_ready_false_makes_the_host_unready_until_set_back() {
    let (exposed, ctx) = Exposed::new();
    let mut builder = builder();
    builder.service("api", exposed).unwrap();
    builder.service("worker", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    let ctx = ctx.lock().unwrap().clone().unwrap();

    ctx.set_ready(false); // e.g. its upstream went away
    let status = handle.status();
    assert!(!status.ready);
    assert!(status.live, "not ready is not dead");
    let api = status.service("api").unwrap();
    assert!(api.state.is_running());
    assert!(!api.ready);
    assert_eq!(
        status
            .not_ready()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["api"]
    );

    ctx.set_ready(true);
    assert!(handle.status().ready);

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

/// Fails its first `failures` runs, then runs normally.
struct RecoversAfter {
    failures: usize,
    runs: Arc<AtomicUsize>,
}

impl Service for RecoversAfter {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        if run < self.failures {
            return Err(format!("flaky dependency (run {run})").into());
        }
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn faulted_service_makes_the_host_not_live_and_not_ready() {
    let mut builder = builder();
    builder.service("api", Idle).unwrap();
    builder
        .service(
            "stats",
            RecoversAfter {
                failures: usize::MAX,
                runs: Arc::default(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(10), "stats faulted", |s| {
        s.service("stats").unwrap().state.is_faulted()
    })
    .await;
    assert!(!status.live);
    assert!(!status.ready);
    assert_eq!(
        status
            .faulted()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["stats"]
    );
    assert!(state_of(&status, "api").is_running());
    handle.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn restart_count_and_last_error_are_kept_after_recovery() {
    let runs = Arc::new(AtomicUsize::new(0));
    let policy = RestartPolicy {
        initial_backoff: Duration::from_millis(100),
        jitter: 0.0,
        ..RestartPolicy::default()
    };
    let mut builder = builder();
    builder
        .service(
            "sync",
            RecoversAfter {
                failures: 2,
                runs: runs.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(5)).await;

    let status = handle.status();
    let sync = status.service("sync").unwrap();
    assert!(sync.state.is_running(), "{:?}", sync.state);
    assert_eq!(sync.restarts, 2);
    assert_eq!(
        sync.last_error.as_ref().map(|e| e.message.as_str()),
        Some("flaky dependency (run 1)"),
        "the last error stays visible after recovery"
    );
    assert!(status.live && status.ready, "{status:#?}");
    assert_eq!(runs.load(Ordering::SeqCst), 3);

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn ticker_records_each_tick_as_last_tick() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let mut builder = builder();
    builder
        .periodic("report", Duration::from_secs(60), move |_ctx| {
            t.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .unwrap();
    builder.service("idle", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    // The first tick fires at once.
    let status = wait_for(&handle, Duration::from_secs(10), "first tick", |s| {
        s.service("report").unwrap().last_tick.is_some()
    })
    .await;
    let first = status.service("report").unwrap().last_tick.unwrap();
    assert_eq!(ticks.load(Ordering::SeqCst), 1);
    assert!(
        status.service("idle").unwrap().last_tick.is_none(),
        "only ticking services have a last tick"
    );

    // Tick times are wall-clock; paused tokio time does not move them, so
    // wait for the wall clock to move before the next tick.
    std::thread::sleep(Duration::from_millis(5));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let status = handle.status();
    assert_eq!(ticks.load(Ordering::SeqCst), 2);
    let second = status.service("report").unwrap().last_tick.unwrap();
    assert!(second > first, "last_tick moved on: {first} then {second}");

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

/// Its stop hook takes a while, so the test can look at the host mid-stop.
struct SlowStop;

impl Service for SlowStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn host_is_not_ready_while_shutting_down() {
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder.service("flusher", SlowStop).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;

    handle.shutdown();
    // At once, before any service has even been asked to stop.
    let status = handle.status();
    assert!(status.services.iter().all(|s| s.state.is_running()));
    assert!(status.shutting_down);
    assert!(!status.ready, "not ready from the moment shutdown is asked");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = handle.status();
    assert!(status.shutting_down);
    assert!(handle.is_shutting_down());
    assert!(!status.ready, "a stopping host takes no new traffic");
    assert!(status.live, "stopping is not failing");
    assert_eq!(state_of(&status, "flusher"), ServiceState::Stopping);
    assert!(
        state_of(&status, "idle").is_running(),
        "stopped after flusher"
    );

    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    let status = handle.status();
    assert!(
        status
            .services
            .iter()
            .all(|s| s.state == ServiceState::Stopped)
    );
}

/// Does its job once and returns.
struct OneShot;

impl Service for OneShot {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn service_that_may_finish_and_finished_does_not_hold_readiness_back() {
    let mut builder = builder();
    builder.service("migrate", OneShot).unwrap().may_finish();
    builder.service("api", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    assert_eq!(state_of(&status, "migrate"), ServiceState::Stopped);
    assert!(status.live);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn status_serializes_to_json_with_the_state_inline() {
    let policy = RestartPolicy {
        initial_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(60),
        jitter: 0.0,
        ..RestartPolicy::default()
    };
    let mut builder = builder();
    builder.service("api", Idle).unwrap();
    builder
        .service(
            "sync",
            RecoversAfter {
                failures: 1,
                runs: Arc::default(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    let (_tx, _rx) = builder.channel::<u8>("orders", 8).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "sync restarting", |s| {
        matches!(
            s.service("sync").unwrap().state,
            ServiceState::Restarting { .. }
        )
    })
    .await;

    let json = serde_json::to_value(handle.status()).unwrap();
    assert_eq!(json["live"], true);
    assert_eq!(json["ready"], false);
    assert_eq!(json["shutting_down"], false);
    assert_eq!(json["services"][0]["name"], "api");
    assert_eq!(json["services"][0]["state"], "running");
    let sync = &json["services"][1];
    assert_eq!(sync["state"], "restarting");
    assert_eq!(sync["attempt"], 1);
    assert!(sync["next_at"].is_string(), "{sync}");
    assert_eq!(sync["restarts"], 1);
    assert_eq!(sync["last_error"]["message"], "flaky dependency (run 0)");
    assert_eq!(
        json["channels"][0],
        serde_json::json!({"name": "orders", "capacity": 8, "depth": 0})
    );

    handle.shutdown();
    // Stopped while waiting to restart: it never recovered.
    assert_eq!(run.await.unwrap().code(), 4);
}

/// Reports "not ready" from its init (say, its cache is cold) and only
/// becomes ready when `run` says so.
struct ColdStart {
    warmed: Arc<tokio::sync::Notify>,
}

impl Service for ColdStart {
    async fn init(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.set_ready(false);
        Ok(())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        self.warmed.notified().await;
        ctx.set_ready(true);
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn not_ready_said_during_init_holds_after_init_until_set_back() {
    let warmed = Arc::new(tokio::sync::Notify::new());
    let mut builder = builder();
    builder
        .service(
            "cache",
            ColdStart {
                warmed: warmed.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "cache running", |s| {
        s.services[0].state.is_running()
    })
    .await;
    assert!(!handle.status().ready, "init said not ready");
    warmed.notify_one();
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}
