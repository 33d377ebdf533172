//! Failure 4 with two hosts run one after the other in one process (a `main`
//! that rebuilds its host, a test harness): the first SIGTERM to the second
//! host is a graceful shutdown, not a "signal after the host returned".
//! Real child processes, real signals.

mod common;
mod process;

use std::time::Duration;

use common::wait_for;
use process::{Child, init_child_logs, is_child, runtime};
use steward_core::{BoxError, Context, Host, Service};

/// Its `on_stop` writes a checkpoint, which takes 1 s.
struct Checkpointer;

impl Service for Checkpointer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("CHECKPOINT SAVED");
        Ok(())
    }
}

async fn one_host(generation: u32, stop_by_handle: bool) -> u8 {
    let mut b = Host::builder();
    b.handle_signals(true)
        .shutdown_timeout(Duration::from_secs(20));
    b.service("checkpointer", Checkpointer).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(30), "running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    println!("HOST {generation} RUNNING");
    if stop_by_handle {
        handle.shutdown();
    }
    run.await.unwrap().code()
}

fn child_two_hosts() -> ! {
    init_child_logs();
    let rt = runtime();
    let code = rt.block_on(async {
        // First host: stopped by its handle (a config reload).
        let first = one_host(1, true).await;
        println!("HOST 1 RETURNED {first}");
        // Second host: stopped by the operator's SIGTERM.
        one_host(2, false).await
    });
    println!("HOST 2 RETURNED {code}");
    std::process::exit(code.into())
}

/// Guarantee (§4): the first signal always starts (or joins) a graceful
/// shutdown. The first host's watchdog keeps listening after it returned, but
/// leaves signals to a host that runs meanwhile (it once exited the process
/// with 143 on the second host's first SIGTERM).
#[test]

fn first_sigterm_to_a_second_host_in_the_same_process_is_graceful() {
    let mut child = Child::start("child_entry_two_hosts");
    child.wait_for_line("HOST 2 RUNNING", Duration::from_secs(60));
    let (exit, output) = child.stop_with("TERM", Duration::from_secs(20));
    assert!(
        output.contains("CHECKPOINT SAVED\nHOST 2 RETURNED 0")
            || output.contains("HOST 2 RETURNED 0"),
        "the second host's graceful stop was cut short:\n{output}"
    );
    assert_eq!(exit.code(), Some(0), "{output}");
}

/// Child entry point; outside a child it does nothing.
#[test]
fn child_entry_two_hosts() {
    if is_child() {
        child_two_hosts();
    }
}
