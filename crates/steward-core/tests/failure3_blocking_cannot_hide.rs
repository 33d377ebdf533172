//! Blocking code cannot hide: a service that holds a runtime thread
//! (`std::thread::sleep`, a long synchronous loop) is detected by the
//! watchdog's own OS thread, named in the status and the logs, and the
//! process still exits by the shutdown deadline plus grace with code 2, even
//! when a stuck thread or an abandoned `spawn_blocking` call would keep it
//! alive.
//!
//! Real time and a multi-thread runtime throughout: paused time would hide
//! the blocking. Bounds are generous; nothing asserts on speed.

mod common;
mod process;

use std::time::Duration;

use common::wait_for;
use process::{Child, GlobalLogs, init_child_logs, is_child, runtime};
use steward_core::{BoxError, Context, Host, HostBuilder, Service};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(10));
    builder
}

/// Sleeps on its runtime thread for `hold`, once, then waits politely.
struct Hog {
    hold: Duration,
}

impl Service for Hog {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        std::thread::sleep(self.hold);
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_blocking_its_thread_is_named_in_status_and_the_host_is_not_live() {
    let logs = GlobalLogs::get();
    let mut b = builder();
    b.service(
        "hog",
        Hog {
            hold: Duration::from_secs(4),
        },
    )
    .unwrap();
    b.service("idle", common::Idle).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    // The blocked threshold is 1 s; "a couple of seconds" plus slack.
    let status = wait_for(
        &handle,
        Duration::from_secs(3),
        "hog reported blocked",
        |s| s.service("hog").is_some_and(|h| h.blocked.is_some()),
    )
    .await;
    assert!(!status.live, "a blocked service makes the host not live");
    let names: Vec<_> = status.blocked().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hog"]);
    let line = logs
        .error_naming("hog", "blocking its runtime thread")
        .expect("an ERROR line naming hog");
    assert!(
        line.contains("spawn_blocking"),
        "the log says what to do: {line}"
    );

    // Once it yields, the report clears and the host is live again.
    let status = wait_for(&handle, Duration::from_secs(10), "hog yields", |s| {
        s.service("hog").is_some_and(|h| h.blocked.is_none())
    })
    .await;
    assert!(status.live, "{status:#?}");
    handle.shutdown();
    assert!(run.await.unwrap().is_success());
}

/// Blocks its thread during init.
struct SlowBlockingInit;

impl Service for SlowBlockingInit {
    async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        std::thread::sleep(Duration::from_secs(4));
        Ok(())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_blocking_its_thread_past_its_init_timeout_is_reported() {
    let logs = GlobalLogs::get();
    let mut b = builder();
    b.service("warmup", SlowBlockingInit)
        .unwrap()
        .init_timeout(Duration::from_millis(1500));
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    let status = wait_for(
        &handle,
        Duration::from_secs(3),
        "init timeout reported",
        |s| {
            s.service("warmup")
                .and_then(|w| w.blocked.as_ref())
                .is_some_and(|b| b.message.contains("init did not finish within 1.5s"))
        },
    )
    .await;
    assert!(!status.live);
    logs.error_naming("warmup", "init did not finish within 1.5s")
        .expect("an ERROR line naming warmup and its init timeout");
    handle.shutdown();
    run.await.unwrap();
}

// ---- The process's exit is bounded ------------------------------------

/// Stays on its thread after being asked to stop: nothing can abort it.
struct StuckOnStop;

impl Service for StuckOnStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }
}

/// A blocking call that outlives shutdown.
struct Crunch;

impl Service for Crunch {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.spawn_blocking(|| {
            tracing::info!("crunching");
            std::thread::sleep(Duration::from_secs(60));
        })
        .await?;
        Ok(())
    }
}

/// The child: a host that owns its process (signals handled, so the hard
/// exit is on by default), shut down at once, then the runtime dropped the
/// way `#[tokio::main]` drops it.
fn child(name: &str, service: impl Service) -> ! {
    init_child_logs();
    let rt = runtime();
    let code = rt.block_on(async {
        let mut b = Host::builder();
        b.shutdown_timeout(Duration::from_secs(1));
        b.service(name, service).unwrap();
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        wait_for(&handle, Duration::from_secs(30), "running", |s| {
            s.services.iter().all(|s| s.state.is_running())
        })
        .await;
        // Let the service reach its wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!("READY");
        handle.shutdown();
        run.await.unwrap().code()
    });
    println!("HOST RETURNED {code}");
    drop(rt);
    std::process::exit(code.into())
}

/// Shutdown timeout 1 s + grace 2 s, plus 5 s of slack for a loaded machine.
const EXIT_BOUND: Duration = Duration::from_secs(8);

fn expect_hard_exit(test: &str, service: &str, needle: &str) {
    let mut child = Child::start(test);
    child.wait_for_line("READY", Duration::from_secs(60));
    let exit = child.wait_exit(EXIT_BOUND);
    let Some(exit) = exit else {
        panic!(
            "the child was still running {EXIT_BOUND:?} after shutdown began; its output:\n{}",
            child.output_so_far()
        );
    };
    let output = child.output();
    assert_eq!(exit.code(), Some(2), "{output}");
    assert!(
        output.lines().any(|l| l.contains(" ERROR ")
            && l.contains("exiting now with code 2")
            && l.contains(&format!("`{service}`"))),
        "one ERROR line names what is stuck:\n{output}"
    );
    assert!(
        output.lines().any(|l| l.contains(needle)),
        "missing `{needle}`:\n{output}"
    );
}

#[test]
fn service_stuck_on_its_thread_cannot_keep_the_process_alive_past_the_deadline() {
    if is_child() {
        child("stuck", StuckOnStop);
    }
    expect_hard_exit(
        "service_stuck_on_its_thread_cannot_keep_the_process_alive_past_the_deadline",
        "stuck",
        "HOST RETURNED 2",
    );
}

#[test]
fn abandoned_blocking_call_cannot_keep_the_process_alive_past_the_deadline() {
    if is_child() {
        child("crunch", Crunch);
    }
    expect_hard_exit(
        "abandoned_blocking_call_cannot_keep_the_process_alive_past_the_deadline",
        "crunch",
        "abandoned, not stopped",
    );
}

#[test]
fn blocking_calls_log_inside_their_services_span() {
    if is_child() {
        child("crunch", Crunch);
    }
    let mut child = Child::start("blocking_calls_log_inside_their_services_span");
    child.wait_for_line("READY", Duration::from_secs(60));
    child.wait_exit(EXIT_BOUND);
    let output = child.output();
    let line = output
        .lines()
        .find(|l| l.contains("crunching"))
        .unwrap_or_else(|| panic!("no `crunching` line:\n{output}"));
    assert!(line.contains("service{name=crunch}"), "{line}");
    let abandoned = output
        .lines()
        .find(|l| l.contains("abandoned, not stopped"))
        .unwrap_or_else(|| panic!("no `abandoned` line:\n{output}"));
    assert!(common::names_service(abandoned, "crunch"), "{abandoned}");
}
