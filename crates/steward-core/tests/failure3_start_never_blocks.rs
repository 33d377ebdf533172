//! Failure 3: start-up that blocks everything.
//!
//! Every service's init runs concurrently with the others; a slow init delays
//! nobody else, the host is not ready until every init has finished, and an
//! init that overruns its timeout is a failure handled by the policy. Time is
//! paused, so "5 s" costs nothing and the schedule is exact.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, FailurePolicy, Host, HostBuilder, RestartPolicy, Service,
    ServiceState,
};
use tokio::time::Instant;

/// Takes `init` to initialise, then idles. Counts how many inits run at once.
struct Warmup {
    init: Duration,
    inits: Arc<InitCounter>,
}

#[derive(Default)]
struct InitCounter {
    started: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Warmup {
    fn new(init: Duration, inits: &Arc<InitCounter>) -> Self {
        Warmup {
            init,
            inits: inits.clone(),
        }
    }
}

impl Service for Warmup {
    async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.inits.started.fetch_add(1, Ordering::SeqCst);
        let now = self.inits.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inits.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // A plain sleep, not ctx.sleep: this is work that cannot be hurried.
        tokio::time::sleep(self.init).await;
        self.inits.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
}

#[tokio::test(start_paused = true)]
async fn slow_init_does_not_delay_the_other_services() {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    // The slow one is registered first: registration order must not matter.
    builder
        .service("cache", Warmup::new(Duration::from_secs(5), &inits))
        .unwrap();
    builder
        .service("api", Warmup::new(Duration::ZERO, &inits))
        .unwrap();
    builder
        .service("mailer", Warmup::new(Duration::from_millis(10), &inits))
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let t0 = Instant::now();
    let run = tokio::spawn(host.run());

    tokio::time::sleep_until(t0 + Duration::from_millis(100)).await;
    let status = handle.status();
    assert!(state_of(&status, "api").is_running(), "{status:#?}");
    assert!(state_of(&status, "mailer").is_running(), "{status:#?}");
    assert_eq!(state_of(&status, "cache"), ServiceState::Starting);
    assert!(!status.ready, "not ready while cache is still in init");

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn every_init_runs_at_the_same_time() {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    for name in ["a", "b", "c", "d"] {
        builder
            .service(name, Warmup::new(Duration::from_secs(1), &inits))
            .unwrap();
    }
    let host = builder.build().unwrap();
    let handle = host.handle();
    let t0 = Instant::now();
    let run = tokio::spawn(host.run());

    let status = wait_for(&handle, Duration::from_secs(10), "all running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    assert_eq!(inits.max_in_flight.load(Ordering::SeqCst), 4);
    // Four 1 s inits in parallel take 1 s of (paused) time, not 4 s.
    assert!(Instant::now() - t0 < Duration::from_secs(2), "{status:#?}");
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn host_stays_unready_until_the_slowest_init_finishes() {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    builder
        .service("fast", Warmup::new(Duration::ZERO, &inits))
        .unwrap();
    builder
        .service("slow", Warmup::new(Duration::from_secs(5), &inits))
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let t0 = Instant::now();
    assert!(!handle.status().ready, "not ready before it even runs");
    let run = tokio::spawn(host.run());

    for at in [1, 1000, 4999] {
        tokio::time::sleep_until(t0 + Duration::from_millis(at)).await;
        let status = handle.status();
        assert!(!status.ready, "ready at {at} ms, before slow's init ended");
        assert_eq!(
            status
                .not_ready()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["slow"]
        );
    }
    tokio::time::sleep_until(t0 + Duration::from_millis(5001)).await;
    let status = handle.status();
    assert!(status.ready, "{status:#?}");
    assert!(status.services.iter().all(|s| s.ready));

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

fn overrunning_host(policy: FailurePolicy) -> (Host, Arc<InitCounter>) {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    builder
        .service("api", Warmup::new(Duration::ZERO, &inits))
        .unwrap();
    builder
        .service("cache", Warmup::new(Duration::from_secs(3600), &inits))
        .unwrap()
        .init_timeout(Duration::from_secs(2))
        .policy(policy);
    (builder.build().unwrap(), inits)
}

#[tokio::test(start_paused = true)]
async fn init_overrunning_its_timeout_faults_the_service_under_ignore() {
    let (host, inits) = overrunning_host(FailurePolicy::Ignore);
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(60), "cache faulted", |s| {
        s.service("cache").unwrap().state.is_faulted()
    })
    .await;
    let ServiceState::Faulted { error, .. } = state_of(&status, "cache") else {
        unreachable!()
    };
    assert_eq!(error, "init did not finish within 2s");
    assert!(state_of(&status, "api").is_running());
    assert!(!status.live);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(inits.started.load(Ordering::SeqCst), 2, "no second init");
    assert!(!run.is_finished(), "the host goes on");
    handle.shutdown();
    assert_eq!(run.await.unwrap().code(), 4, "it ended faulted");
}

#[tokio::test(start_paused = true)]
async fn init_overrunning_its_timeout_stops_the_host_under_stop_host() {
    let (host, _inits) = overrunning_host(FailurePolicy::StopHost);
    let handle = host.handle();
    let t0 = Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(600), host.run())
        .await
        .expect("the init timeout must stop the host");
    assert!(
        matches!(&exit, ExitStatus::ServiceFailed { service, error, .. }
            if service == "cache" && error == "init did not finish within 2s"),
        "{exit:?}"
    );
    assert!(Instant::now() - t0 < Duration::from_secs(3600));
    assert_eq!(state_of(&handle.status(), "api"), ServiceState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn init_overrunning_its_timeout_is_retried_under_restart() {
    let policy = RestartPolicy {
        initial_backoff: Duration::from_secs(1),
        jitter: 0.0,
        max_restarts: 2,
        ..RestartPolicy::default()
    };
    let (host, inits) = overrunning_host(FailurePolicy::Restart(policy));
    let handle = host.handle();
    let t0 = Instant::now();
    let run = tokio::spawn(host.run());

    // Timeout at 2 s, restart at 3 s, timeout at 5 s, restart at 7 s,
    // timeout at 9 s: two restarts used up, faulted.
    tokio::time::sleep_until(t0 + Duration::from_millis(2500)).await;
    let status = handle.status();
    assert!(
        matches!(
            state_of(&status, "cache"),
            ServiceState::Restarting { attempt: 1, .. }
        ),
        "{status:#?}"
    );
    tokio::time::sleep_until(t0 + Duration::from_secs(10)).await;
    let status = handle.status();
    assert!(state_of(&status, "cache").is_faulted(), "{status:#?}");
    assert_eq!(status.service("cache").unwrap().restarts, 2);
    assert_eq!(inits.started.load(Ordering::SeqCst), 1 + 3);
    assert!(state_of(&status, "api").is_running());
    handle.shutdown();
    assert_eq!(run.await.unwrap().code(), 4, "it ended out of restarts");
}

#[tokio::test(start_paused = true)]
async fn default_init_timeout_applies_to_services_without_their_own() {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    builder.default_init_timeout(Duration::from_secs(7));
    builder
        .service("cache", Warmup::new(Duration::from_secs(3600), &inits))
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(60), "cache faulted", |s| {
        s.service("cache").unwrap().state.is_faulted()
    })
    .await;
    let ServiceState::Faulted { error, .. } = state_of(&status, "cache") else {
        unreachable!()
    };
    assert_eq!(error, "init did not finish within 7s");
    handle.shutdown();
    run.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_slow_init_is_not_a_failure() {
    let inits = Arc::new(InitCounter::default());
    let mut builder = builder();
    builder
        .service("cache", Warmup::new(Duration::from_secs(3600), &inits))
        .unwrap()
        .policy(FailurePolicy::StopHost);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(state_of(&handle.status(), "cache"), ServiceState::Stopped);
}
