//! Failure 2 in health: an init that keeps failing is a crash loop
//! (degraded) although the service never reaches running, and a periodic
//! service whose work outlasts three periods is unhealthy unless its
//! liveness interval says otherwise.

mod common;

use std::time::Duration;

use common::{capture_logs, wait_for};
use steward_core::{
    BoxError, Context, FailurePolicy, Health, Host, HostBuilder, RestartPolicy, Service,
    ServiceState,
};

fn builder() -> HostBuilder {
    let mut b = Host::builder();
    b.handle_signals(false)
        .panic_hook(false)
        .shutdown_timeout(Duration::from_secs(5));
    b
}

/// Its init takes 1 s (connecting, with a timeout) and then fails, every time.
struct SlowInitFails;

impl Service for SlowInitFails {
    async fn init(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(Duration::from_secs(1)).await?;
        Err("connect timed out".into())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

/// A crash loop whose failures happen in init spends most of its time in
/// `Starting`: it is degraded there too (it was judged healthy).

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn crash_loop_in_init_is_degraded_while_starting_again() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder();
    b.service("db", SlowInitFails)
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            jitter: 0.0,
            ..RestartPolicy::default()
        }));
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(
        &handle,
        Duration::from_secs(30),
        "restarted 3 times, starting again",
        |s| {
            let db = s.service("db").unwrap();
            db.restarts >= 3 && db.state == ServiceState::Starting
        },
    )
    .await;
    // Most of the loop is spent here: sample 10 times over the next 900 ms.
    let mut healthy = 0;
    for _ in 0..10 {
        if handle.status().service("db").unwrap().health == Health::Healthy {
            healthy += 1;
        }
        tokio::time::sleep(Duration::from_millis(90)).await;
    }
    handle.shutdown();
    let _ = run.await;
    assert_eq!(
        healthy,
        0,
        "crash-looping service judged Healthy in {healthy}/10 samples: {:#?}",
        status.service("db")
    );
}

/// A periodic service promises a run every period: one whose work routinely
/// takes longer than three periods (100 ms period, 450 ms of work) has not
/// ticked for three periods and is reported unhealthy, as documented. A
/// service whose work is legitimately that slow says so with `.liveness`.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn slow_periodic_work_is_unhealthy_unless_its_liveness_says_otherwise() {
    let (_logs, _guard) = capture_logs();
    for liveness in [None, Some(Duration::from_secs(1))] {
        let mut b = builder();
        let config = b
            .periodic("report", Duration::from_millis(100), |ctx| async move {
                for _ in 0..9 {
                    ctx.sleep(Duration::from_millis(50)).await?; // steady progress
                }
                Ok(())
            })
            .unwrap();
        if let Some(interval) = liveness {
            config.liveness(interval);
        }
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        let mut worst = Health::Healthy;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            worst = worst.max(handle.status().service("report").unwrap().health);
        }
        handle.shutdown();
        let exit = run.await.unwrap();
        assert!(exit.is_success(), "{exit}");
        let expected = if liveness.is_some() {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        assert_eq!(worst, expected, "liveness {liveness:?}");
    }
}
