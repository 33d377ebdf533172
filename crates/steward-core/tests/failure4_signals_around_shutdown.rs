//! Failure 4, signals the operator sends around a shutdown (real child
//! processes, real signals): the first SIGTERM during a shutdown the host
//! began itself is not a "second" signal, and a signal after the host
//! returned still ends a `main` that hangs.

mod common;
mod process;

use std::time::{Duration, Instant};

use common::wait_for;
use process::{Child, init_child_logs, is_child, runtime};
use steward_core::{BoxError, Context, FailurePolicy, Host, Service};

/// Its `on_stop` writes a checkpoint, which takes 2 s.
struct Checkpointer;

impl Service for Checkpointer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("CHECKPOINT SAVED");
        Ok(())
    }
}

/// Fails under StopHost when told to (through a file-less flag: after 1 s).
struct Billing;

impl Service for Billing {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(Duration::from_millis(500)).await?;
        Err("payment provider returned 500".into())
    }
}

fn child_stophost() -> ! {
    init_child_logs();
    let rt = runtime();
    let code = rt.block_on(async {
        let mut b = Host::builder();
        b.handle_signals(true)
            .shutdown_timeout(Duration::from_secs(60));
        b.service("checkpointer", Checkpointer).unwrap();
        b.service("billing", Billing)
            .unwrap()
            .policy(FailurePolicy::StopHost);
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        wait_for(&handle, Duration::from_secs(30), "shutting down", |s| {
            s.shutting_down
        })
        .await;
        println!("SHUTTING DOWN");
        run.await.unwrap().code()
    });
    std::process::exit(code.into())
}

/// The host is already shutting down by itself (a StopHost failure); the
/// operator (docker stop, systemd, kubectl) sends ONE SIGTERM. That is a
/// first signal, not a second: the graceful stop goes on (checkpoint saved)
/// and the exit code says the service failed (1). It once exited at once
/// with 143.

#[test]
fn first_sigterm_during_host_initiated_shutdown_is_not_a_second_signal() {
    let mut child = Child::start("child_entry_stophost");
    child.wait_for_line("SHUTTING DOWN", Duration::from_secs(60));
    let (exit, output) = child.stop_with("TERM", Duration::from_secs(20));
    assert!(
        output.contains("CHECKPOINT SAVED"),
        "on_stop never finished:\n{output}"
    );
    assert_eq!(exit.code(), Some(1), "{output}");
}

fn child_after_return() -> ! {
    init_child_logs();
    let rt = runtime();
    rt.block_on(async {
        let mut b = Host::builder();
        b.handle_signals(true)
            .shutdown_timeout(Duration::from_secs(5));
        b.service("idle", common::Idle).unwrap();
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        wait_for(&handle, Duration::from_secs(30), "running", |s| {
            s.services.iter().all(|s| s.state.is_running())
        })
        .await;
        handle.shutdown();
        let code = run.await.unwrap().code();
        println!("RETURNED {code}");
    });
    // main's own cleanup after the host returned hangs (a telemetry flush
    // without a timeout, a stuck join...).
    std::thread::sleep(Duration::from_secs(30));
    std::process::exit(0)
}

/// After `host.run()` returned, Ctrl-C / SIGTERM still end the process: one
/// watchdog thread keeps listening (tokio's handlers stay installed for the
/// life of the process, and would otherwise swallow the signal).

#[test]
fn sigint_after_the_host_returned_still_ends_the_process() {
    let mut child = Child::start("child_entry_after_return");
    child.wait_for_line_containing("RETURNED", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500)); // the watchdog thread has wound down
    child.signal("INT");
    let asked = Instant::now();
    let exit = child.wait_exit(Duration::from_secs(5));
    assert!(
        exit.is_some(),
        "SIGINT ignored: still running {:?} later; output:\n{}",
        asked.elapsed(),
        child.output_so_far()
    );
}

/// Child entry points (a test of their own, which the parents above run by
/// name in a child process); outside a child they do nothing.
#[test]
fn child_entry_stophost() {
    if is_child() {
        child_stophost();
    }
}

#[test]
fn child_entry_after_return() {
    if is_child() {
        child_after_return();
    }
}
