//! A second SIGINT or SIGTERM during shutdown ends the process at once, with
//! the shell's code for that signal (130 for SIGINT, 143 for SIGTERM) and a
//! log line saying so: the operator's way out of a shutdown that hangs,
//! short of SIGKILL. Real child processes, real signals.
//!
//! But one stop delivered twice (GNU `timeout` signals the child and then
//! its process group; a terminal's Ctrl-C reaches every process of the
//! foreground group) is one request: a repeat within half a second of the
//! first is logged and ignored. A new user's `timeout -s INT` run exited
//! with 130 one time in three before.

mod common;
mod process;

use std::time::{Duration, Instant};

use common::wait_for;
use process::{Child, init_child_logs, is_child, runtime};
use steward_core::{BoxError, Context, Host, Service};

/// Ignores its token: the graceful shutdown hangs on it for the whole
/// (long) shutdown timeout.
struct Stubborn;

impl Service for Stubborn {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

fn child() -> ! {
    child_running("stubborn", Stubborn, Duration::from_secs(120))
}

/// Runs a host with `service` and signals handled, prints READY once it
/// runs, and exits with the host's code.
fn child_running<S: Service>(name: &str, service: S, shutdown_timeout: Duration) -> ! {
    init_child_logs();
    let rt = runtime();
    let code = rt.block_on(async {
        let mut b = Host::builder();
        b.handle_signals(true).shutdown_timeout(shutdown_timeout);
        b.service(name, service).unwrap();
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        wait_for(&handle, Duration::from_secs(30), "running", |s| {
            s.services.iter().all(|s| s.state.is_running())
        })
        .await;
        println!("READY");
        let code = run.await.unwrap().code();
        // Time for a late repeat of the signal to arrive and (wrongly)
        // end the process before it exits with the host's code.
        tokio::time::sleep(Duration::from_millis(300)).await;
        code
    });
    std::process::exit(code.into())
}

fn second_signal_exits_at_once(test: &str, signal: &str, name: &str, code: i32) {
    let mut child = Child::start(test);
    child.wait_for_line("READY", Duration::from_secs(60));
    child.signal(signal);
    child.wait_for_line_containing(
        &format!("received {name}, shutting down"),
        Duration::from_secs(30),
    );
    // Past the window in which a repeat counts as the same signal.
    std::thread::sleep(Duration::from_millis(700));
    let asked = Instant::now();
    child.signal(signal);
    // Generous: "at once" on a loaded machine, far below the 120 s timeout.
    let exit = child.wait_exit(Duration::from_secs(10));
    let Some(exit) = exit else {
        panic!(
            "still running {:?} after the second {name}; output:\n{}",
            asked.elapsed(),
            child.output_so_far()
        );
    };
    let output = child.output();
    assert_eq!(exit.code(), Some(code), "{output}");
    assert!(
        output.lines().any(|l| l.contains(" ERROR ")
            && l.contains(&format!("received {name} again during shutdown"))
            && l.contains(&format!("exiting now with code {code}"))),
        "{output}"
    );
}

#[test]
fn second_sigterm_during_shutdown_exits_at_once_with_143() {
    if is_child() {
        child();
    }
    second_signal_exits_at_once(
        "second_sigterm_during_shutdown_exits_at_once_with_143",
        "TERM",
        "SIGTERM",
        143,
    );
}

#[test]
fn second_sigint_during_shutdown_exits_at_once_with_130() {
    if is_child() {
        child();
    }
    second_signal_exits_at_once(
        "second_sigint_during_shutdown_exits_at_once_with_130",
        "INT",
        "SIGINT",
        130,
    );
}

/// Stops when asked.
struct Polite;

impl Service for Polite {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

#[test]
fn a_signal_delivered_twice_at_once_is_one_graceful_stop() {
    if is_child() {
        child_running("polite", Polite, Duration::from_secs(30));
    }
    let mut child = Child::start("a_signal_delivered_twice_at_once_is_one_graceful_stop");
    child.wait_for_line("READY", Duration::from_secs(60));
    child.signal("INT");
    child.wait_for_line_containing("received SIGINT, shutting down", Duration::from_secs(30));
    child.signal("INT");
    let exit = child.wait_exit(Duration::from_secs(30));
    let output = child.output();
    let exit = exit.unwrap_or_else(|| panic!("did not stop:\n{output}"));
    assert_eq!(exit.code(), Some(0), "{output}");
    assert!(
        output.contains("taken as the same request"),
        "the repeat was not reported: {output}"
    );
}
