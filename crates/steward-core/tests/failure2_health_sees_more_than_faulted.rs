//! Failure 2, silent death, in the forms a `Faulted` state does not show: a
//! crash loop (up between failures, so never faulted) and a service whose
//! loop is stuck on a wait (state `Running`, work stopped).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Idle, capture_logs, wait_for};
use steward_core::{
    BoxError, ConfigError, Context, FailurePolicy, Health, Host, HostBuilder, RestartPolicy,
    Service,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5));
    builder
}

/// Runs for a second, then fails.
struct Flaky;

impl Service for Flaky {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(Duration::from_secs(1)).await?;
        Err("connection reset".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_crash_looping_service_is_degraded_not_healthy() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .service("flaky", Flaky)
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_restarts: 1000,
            ..RestartPolicy::default()
        }));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    // Between failures it runs, so it is never Faulted; it is degraded the
    // whole time, both while waiting to restart and while up again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..40 {
        let status = handle.status();
        let flaky = status.service("flaky").unwrap();
        assert_eq!(flaky.health, Health::Degraded, "{flaky:#?}");
        assert!(
            flaky
                .problem
                .as_deref()
                .unwrap_or("")
                .contains("crash-looping"),
            "{flaky:#?}"
        );
        assert_eq!(status.health, Health::Degraded);
        assert!(status.live, "degraded is still live");
        assert_eq!(
            status
                .with_health(Health::Degraded)
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["flaky"]
        );
        tokio::time::sleep(Duration::from_millis(97)).await;
    }
    handle.shutdown();
    run.await.unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_periodic_service_that_stopped_ticking_is_unhealthy_and_named() {
    let (_logs, _guard) = capture_logs();
    let hang = Arc::new(AtomicBool::new(false));
    let h = hang.clone();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .periodic("sync", Duration::from_secs(1), move |ctx| {
            let hang = h.load(Ordering::SeqCst);
            async move {
                if hang {
                    // A call with no timeout on a peer that never answers.
                    ctx.cancelled().await;
                }
                Ok(())
            }
        })
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(handle.status().health, Health::Healthy);

    hang.store(true, Ordering::SeqCst);
    let status = wait_for(&handle, Duration::from_secs(60), "sync unhealthy", |s| {
        !s.live
    })
    .await;
    let sync = status.service("sync").unwrap();
    assert!(sync.state.is_running(), "its state still says running");
    assert_eq!(sync.health, Health::Unhealthy);
    let problem = sync.problem.as_deref().unwrap_or("");
    assert!(problem.contains("no tick or heartbeat"), "{problem}");
    handle.shutdown();
    run.await.unwrap();
}

/// Beats while `beating` is set.
struct Pump {
    beating: Arc<AtomicBool>,
}

impl Service for Pump {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        loop {
            ctx.sleep(Duration::from_millis(100)).await?;
            if self.beating.load(Ordering::SeqCst) {
                ctx.heartbeat();
            }
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_with_a_liveness_interval_is_unhealthy_while_silent() {
    let (_logs, _guard) = capture_logs();
    let beating = Arc::new(AtomicBool::new(true));
    let mut builder = builder();
    builder
        .service(
            "pump",
            Pump {
                beating: beating.clone(),
            },
        )
        .unwrap()
        .liveness(Duration::from_secs(1));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(handle.status().health, Health::Healthy);

    beating.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2900)).await;
    assert_eq!(handle.status().health, Health::Healthy, "under 3 intervals");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handle.status().health,
        Health::Unhealthy,
        "past 3 intervals"
    );
    assert!(!handle.status().live);

    beating.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handle.status().health, Health::Healthy, "beating again");
    handle.shutdown();
    run.await.unwrap();
}

#[test]
fn a_zero_liveness_interval_is_refused() {
    let mut builder = builder();
    builder
        .service("pump", Idle)
        .unwrap()
        .liveness(Duration::ZERO);
    let err = builder.build().unwrap_err();
    assert!(matches!(err, ConfigError::ZeroPeriod { .. }), "{err:?}");
    assert!(err.to_string().contains("pump"), "{err}");
}
