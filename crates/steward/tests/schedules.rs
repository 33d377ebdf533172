//! Recurring schedules through the library (issue 13): declared at start,
//! enqueued once per tick however many schedulers step at once, managed at
//! run time, and every bad input refused with a typed error that names the
//! problem, before anything is written.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Ping, builder};
use steward::jobs::{ScheduleError, Scheduler, Schedules};
use steward::store::{Misfire, ScheduleDef, ScheduleOrigin, Store, StoreError};
use steward::{ConfigError, ExitStatus};

fn every_second(id: &str) -> ScheduleDef {
    ScheduleDef::new(id, "* * * * * *", "ping").misfire(Misfire::All { limit: 1000 })
}

/// The run_at of every job, as Unix seconds, in order.
async fn ticks<S: Store>(store: &S) -> Vec<i64> {
    let mut out = Vec::new();
    let mut id = 1;
    while let Some(job) = store.job(steward::store::JobId(id)).await.expect("job") {
        out.push(job.run_at.timestamp());
        id += 1;
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_stepping_at_once_enqueue_each_tick_exactly_once() {
    let store = steward::testing::sqlite().await;
    let mut a = Scheduler::new(store.clone()).schedule(every_second("s"));
    a.declare().await.expect("declare");
    let mut b = Scheduler::new(store.clone());
    // Both step as fast as they can for three seconds: each believes it
    // leads (step_once does not ask).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let (fa, fb) = tokio::join!(
        async {
            let mut n = 0;
            while tokio::time::Instant::now() < deadline {
                n += a.step_once().await.expect("step a").fired;
            }
            n
        },
        async {
            let mut n = 0;
            while tokio::time::Instant::now() < deadline {
                n += b.step_once().await.expect("step b").fired;
            }
            n
        }
    );
    let seconds = ticks(&**store).await;
    assert!(seconds.len() >= 2, "ticks fired: {seconds:?}");
    assert_eq!(fa + fb, seconds.len() as u64, "fired counts match the jobs");
    for pair in seconds.windows(2) {
        assert_eq!(pair[1] - pair[0], 1, "each second once: {seconds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_declares_its_schedules_and_its_scheduler_fires_them() {
    let store = steward::testing::sqlite().await;
    let scheduler = Scheduler::new(store.clone()).job(
        ScheduleDef::at("ping-every-second", "* * * * * *").misfire(Misfire::Skip),
        &Ping,
    );
    let fired = scheduler.fired();
    let mut b = builder();
    b.service("scheduler", scheduler).expect("service");
    let host = b.build().expect("build");
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fired.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no ticks fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown();
    assert_eq!(run.await.expect("host"), ExitStatus::Clean);
    let record = store
        .schedule("ping-every-second")
        .await
        .expect("read")
        .expect("declared");
    assert_eq!(record.def.kind, "ping");
    assert_eq!(record.def.origin, ScheduleOrigin::Code);
    assert!(record.last_job.is_some());
}

#[tokio::test]
async fn mistakes_in_declared_schedules_fail_the_build_naming_each() {
    let store = steward::testing::sqlite().await;
    let scheduler = Scheduler::new(store.store())
        .known_kinds(["ping"])
        .schedule(ScheduleDef::new("a", "61 * * * *", "ping"))
        .schedule(ScheduleDef::new("b", "@daily", "ping").zone("Europe/Berlni"))
        .schedule(ScheduleDef::new("c", "@daily", "pnig"))
        .schedule(ScheduleDef::new("d", "@daily", "ping").misfire(Misfire::All { limit: 0 }))
        .schedule(ScheduleDef::new("e", "@daily", "ping"))
        .schedule(ScheduleDef::new("e", "@hourly", "ping"));
    let mut b = builder();
    b.service("scheduler", scheduler).expect("service");
    let err = b.build().expect_err("the mistakes are reported");
    let ConfigError::Service { problems, .. } = &err else {
        panic!("expected ConfigError::Service, got {err}");
    };
    let text = err.to_string();
    for needle in [
        "61 * * * *",
        "Europe/Berlni",
        "`pnig`",
        "limit 0",
        "`e` is declared twice",
    ] {
        assert!(text.contains(needle), "`{needle}` in: {text}");
    }
    assert_eq!(problems.len(), 5, "{text}");
}

#[tokio::test]
async fn a_restart_removes_schedules_no_longer_declared_but_never_an_operators() {
    let store = steward::testing::sqlite().await;
    Scheduler::new(store.clone())
        .schedule(every_second("kept"))
        .schedule(every_second("dropped"))
        .declare()
        .await
        .expect("first release");
    Schedules::new(store.clone())
        .add(every_second("by-hand"))
        .await
        .expect("add");
    let config = steward::jobs::SchedulerConfig {
        remove_undeclared: true,
        ..Default::default()
    };
    Scheduler::new(store.clone())
        .config(config)
        .schedule(every_second("kept"))
        .declare()
        .await
        .expect("next release");
    let ids: Vec<String> = store
        .schedules()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.def.id)
        .collect();
    assert_eq!(ids, ["by-hand", "kept"]);
}

#[tokio::test]
async fn run_time_management_refuses_bad_input_with_typed_errors_and_writes_nothing() {
    let store = steward::testing::sqlite().await;
    let schedules = Schedules::new(store.clone()).known_kinds(["ping"]);
    let bad_cron = schedules.add(ScheduleDef::new("x", "* * *", "ping")).await;
    assert!(
        matches!(bad_cron, Err(ScheduleError::Cron { .. })),
        "{bad_cron:?}"
    );
    let bad_zone = schedules
        .add(ScheduleDef::new("x", "@daily", "ping").zone("Mars/Base"))
        .await;
    assert!(bad_zone.is_err_and(|e| e.to_string().contains("Mars/Base")));
    let unknown = schedules.add(ScheduleDef::new("x", "@daily", "pnig")).await;
    assert!(matches!(unknown, Err(ScheduleError::UnknownKind { ref kind, .. }) if kind == "pnig"));
    let zero = schedules
        .add(ScheduleDef::new("x", "@daily", "ping").misfire(Misfire::All { limit: 0 }))
        .await;
    assert!(
        matches!(zero, Err(ScheduleError::Store(StoreError::Invalid { .. }))),
        "{zero:?}"
    );
    assert!(
        schedules.list().await.expect("list").is_empty(),
        "nothing half-written"
    );
    for missing in [
        schedules.pause("nope").await,
        schedules.resume("nope").await,
        schedules.delete("nope").await,
    ] {
        assert!(matches!(missing, Err(ScheduleError::NotFound { .. })));
    }
    assert!(matches!(
        schedules.trigger("nope").await,
        Err(ScheduleError::NotFound { .. })
    ));
}

#[tokio::test]
async fn pause_resume_trigger_and_upcoming() {
    let store = steward::testing::sqlite().await;
    let schedules = Schedules::new(store.clone());
    schedules
        .add(ScheduleDef::new("nightly", "30 2 * * *", "ping").zone("Europe/Berlin"))
        .await
        .expect("add");
    let next = schedules.upcoming("nightly", 3).await.expect("upcoming");
    assert_eq!(next.len(), 3);
    assert!(next.windows(2).all(|p| p[0] < p[1]));
    schedules.pause("nightly").await.expect("pause");
    assert!(
        schedules
            .upcoming("nightly", 3)
            .await
            .expect("upcoming")
            .is_empty()
    );
    let job = schedules
        .trigger("nightly")
        .await
        .expect("a paused schedule can still be triggered");
    let record = store.job(job).await.expect("read").expect("enqueued");
    assert_eq!(record.kind, "ping");
    schedules.resume("nightly").await.expect("resume");
    assert!(!schedules.get("nightly").await.expect("get").paused);
    schedules.delete("nightly").await.expect("delete");
    assert!(
        store.job(job).await.expect("read").is_some(),
        "its job stays"
    );
    let _ = Arc::clone(&store);
}
