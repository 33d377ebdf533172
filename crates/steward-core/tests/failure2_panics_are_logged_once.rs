//! The panic hook `Host::run` installs: one structured ERROR line per panic,
//! inside the span it happened in (so it names the service), instead of
//! Rust's stderr dump; and a panic in a task nobody supervises (a plain
//! `tokio::spawn`) is counted in the host's status and logged with a hint.

mod common;
mod process;

use std::time::Duration;

use common::wait_for;
use process::GlobalLogs;
use steward_core::{BoxError, Context, FailurePolicy, Host, HostBuilder, Service};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(10));
    builder
}

/// Spawns a detached task that panics: the naive failure 2.
struct Detaches;

impl Service for Detaches {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        tokio::spawn(async { panic!("lost in a detached task") });
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_an_unsupervised_task_is_counted_and_logged_with_a_hint() {
    let logs = GlobalLogs::get();
    let mut b = builder();
    b.service("detaches", Detaches).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let before = handle.status().unsupervised_panics;
    let run = tokio::spawn(host.run());

    wait_for(&handle, Duration::from_secs(10), "the panic counted", |s| {
        s.unsupervised_panics > before
    })
    .await;
    let line = logs
        .error_with(&["lost in a detached task"])
        .expect("an ERROR line with the panic message");
    assert!(line.contains("outside any supervised"), "{line}");
    assert!(line.contains("task group"), "the hint: {line}");
    assert!(
        line.contains("failure2_panics_are_logged_once.rs:"),
        "the location: {line}"
    );
    handle.shutdown();
    assert!(run.await.unwrap().is_success());
}

struct Panics;

impl Service for Panics {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        panic!("boom in a supervised service");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_a_service_is_one_log_line_inside_its_span_and_not_unsupervised() {
    let logs = GlobalLogs::get();
    let mut b = builder();
    b.service("boom", Panics)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "boom faulted", |s| {
        s.faulted().any(|s| s.name == "boom")
    })
    .await;
    let line = logs
        .error_with(&["panic: boom in a supervised service"])
        .expect("the hook's ERROR line");
    assert!(
        line.contains("service{name=boom}"),
        "names the service: {line}"
    );
    assert!(
        line.contains("failure2_panics_are_logged_once.rs:"),
        "the location: {line}"
    );
    assert!(!line.contains("outside any supervised"), "{line}");
    handle.shutdown();
    run.await.unwrap();
}

/// A task-group child that panics: caught by its group, so supervised.
struct ChildPanics;

impl Service for ChildPanics {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut group = ctx.task_group(2)?;
        group
            .spawn(|_token| async { panic!("boom in a task-group child") })
            .await?;
        let _ = group.join().await;
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_a_task_group_child_is_not_called_unsupervised() {
    let logs = GlobalLogs::get();
    let mut b = builder();
    b.service("parent", ChildPanics).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(line) = logs.error_with(&["boom in a task-group child"]) {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no panic line logged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(line.contains("panic: boom in a task-group child"), "{line}");
    assert!(line.contains("service{name=parent}"), "{line}");
    assert!(!line.contains("outside any supervised"), "{line}");
    handle.shutdown();
    run.await.unwrap();
}
