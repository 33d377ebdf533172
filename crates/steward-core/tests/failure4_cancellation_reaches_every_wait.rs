//! Failure 4: cancellation that never reaches the wait.
//!
//! Every wait Steward hands out ends when the service is asked to stop: the
//! ticker, `ctx.sleep`, a channel's `recv` and `send`, a task group waiting
//! for a slot. SIGTERM and SIGINT start the shutdown (tested on a real child
//! process). A service that ignores its token anyway is named in an ERROR log
//! with how long it was waited for, aborted when the shutdown timeout ends,
//! and named in the exit status.
//!
//! Each wait below is an hour long and the shutdown timeout is ten seconds,
//! so a wait that missed the cancellation shows up as `ShutdownTimedOut`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Idle, Journal, capture_logs, names_service, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, Host, HostBuilder, Receiver, SendError, Sender, Service,
    ServiceState,
};

const HOUR: Duration = Duration::from_secs(3600);

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(10));
    builder
}

/// Runs `builder`'s host until every service is running, shuts it down, and
/// returns the exit status.
async fn run_then_shut_down(builder: HostBuilder) -> (ExitStatus, steward_core::HostHandle) {
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(
        &handle,
        Duration::from_secs(10),
        "every service running",
        |s| s.services.iter().all(|s| s.state.is_running()),
    )
    .await;
    // Let every service reach its wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    (run.await.unwrap(), handle)
}

/// A service built from a closure, for one-off waits.
struct Waits<F>(F);

impl<F, Fut> Service for Waits<F>
where
    F: FnMut(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        (self.0)(ctx.clone()).await
    }
}

#[tokio::test(start_paused = true)]
async fn ticker_stops_ticking_on_shutdown() {
    let journal = Journal::default();
    let mut builder = builder();
    let j = journal.clone();
    builder
        .service(
            "ticker",
            Waits(move |ctx: Context| {
                let j = j.clone();
                async move {
                    let mut ticker = ctx.every(HOUR)?;
                    while ticker.tick().await.is_some() {
                        j.push("tick");
                    }
                    j.push("ticker ended");
                    Ok(())
                }
            }),
        )
        .unwrap();
    let (exit, handle) = run_then_shut_down(builder).await;
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(journal.events(), ["tick", "ticker ended"]);
    assert_eq!(state_of(&handle.status(), "ticker"), ServiceState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn sleep_returns_cancelled_on_shutdown_and_counts_as_a_clean_stop() {
    let journal = Journal::default();
    let mut builder = builder();
    let j = journal.clone();
    builder
        .service(
            "sleeper",
            Waits(move |ctx: Context| {
                let j = j.clone();
                async move {
                    let slept = ctx.sleep(HOUR).await;
                    j.push(format!("{slept:?}"));
                    slept?; // propagating Cancelled is how a service says "stopped"
                    Ok(())
                }
            }),
        )
        .unwrap();
    let (exit, handle) = run_then_shut_down(builder).await;
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(journal.events(), ["Err(Cancelled)"]);
    let status = handle.status();
    let sleeper = status.service("sleeper").unwrap();
    assert_eq!(sleeper.state, ServiceState::Stopped);
    assert!(sleeper.last_error.is_none(), "{:?}", sleeper.last_error);
}

#[tokio::test(start_paused = true)]
async fn recv_on_an_empty_channel_returns_none_on_shutdown() {
    let journal = Journal::default();
    let mut builder = builder();
    // The test keeps the sender: the channel stays open, only cancellation
    // can end the wait.
    let (_tx, rx): (Sender<u32>, Receiver<u32>) = builder.channel("jobs", 4).unwrap();
    let j = journal.clone();
    let mut rx = Some(rx);
    builder
        .service(
            "consumer",
            Waits(move |ctx: Context| {
                let j = j.clone();
                let mut rx = rx.take().expect("run once");
                async move {
                    let got = rx.recv(&ctx).await;
                    j.push(format!("{got:?}"));
                    Ok(())
                }
            }),
        )
        .unwrap();
    let (exit, _) = run_then_shut_down(builder).await;
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(journal.events(), ["None"]);
}

#[tokio::test(start_paused = true)]
async fn send_on_a_full_channel_gives_the_item_back_on_shutdown() {
    let journal = Journal::default();
    let mut builder = builder();
    // The test keeps the receiver and never reads: the channel stays full.
    let (tx, _rx): (Sender<u32>, Receiver<u32>) = builder.channel("jobs", 1).unwrap();
    tx.try_send(1).unwrap();
    let j = journal.clone();
    builder
        .service(
            "producer",
            Waits(move |ctx: Context| {
                let j = j.clone();
                let tx = tx.clone();
                async move {
                    let sent = tx.send(2, &ctx).await;
                    j.push(format!("{sent:?}"));
                    Ok(())
                }
            }),
        )
        .unwrap();
    let (exit, handle) = run_then_shut_down(builder).await;
    // Item 1 was never received: reported, not silently dropped.
    assert_eq!(exit.code(), 5, "{exit:?}");
    assert_eq!(exit.failures()[0].name, "jobs");
    let expected: Result<(), _> = Err(SendError::Cancelled(2));
    assert_eq!(journal.events(), [format!("{expected:?}")]);
    assert_eq!(handle.status().channels[0].depth, 1, "item 2 never queued");
}

#[tokio::test(start_paused = true)]
async fn task_group_waiting_for_a_slot_stops_waiting_on_shutdown() {
    let journal = Journal::default();
    let mut builder = builder();
    let j = journal.clone();
    builder
        .service(
            "fan-out",
            Waits(move |ctx: Context| {
                let j = j.clone();
                async move {
                    let mut group = ctx.task_group(1)?;
                    // The only slot is taken by a child that waits for the token.
                    group
                        .spawn(|token| async move {
                            token.cancelled().await;
                            Ok(())
                        })
                        .await?;
                    let second = group.spawn(|_token| async { Ok(()) }).await;
                    j.push(format!("{second:?}"));
                    j.push(format!("{:?}", group.join().await));
                    Ok(())
                }
            }),
        )
        .unwrap();
    let (exit, _) = run_then_shut_down(builder).await;
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(journal.events(), ["Err(Cancelled)", "Ok(())"]);
}

/// Ignores its token: sleeps with plain tokio, not `ctx.sleep`.
struct Stubborn {
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Service for Stubborn {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        let _flag = SetOnDrop(self.dropped.clone());
        loop {
            tokio::time::sleep(HOUR).await;
        }
    }
}

/// Needs a few awaits to stop: its flush is async.
struct Polite {
    journal: Journal,
}

impl Service for Polite {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.journal.push("polite flushed");
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn service_ignoring_cancellation_is_named_then_aborted_at_the_shutdown_timeout() {
    let (logs, _guard) = capture_logs();
    let dropped = Arc::new(AtomicBool::new(false));
    let journal = Journal::default();
    let mut builder = builder();
    builder.shutdown_timeout(Duration::from_secs(5));
    builder
        .service(
            "stubborn",
            Stubborn {
                dropped: dropped.clone(),
            },
        )
        .unwrap();
    // Registered after stubborn, so stopped before it: they must not be
    // blamed for its overrun.
    builder
        .service(
            "polite",
            Polite {
                journal: journal.clone(),
            },
        )
        .unwrap();
    builder.service("idle", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "all running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    let asked = tokio::time::Instant::now();
    handle.shutdown();
    let exit = run.await.unwrap();
    let took = tokio::time::Instant::now() - asked;

    assert!(
        matches!(&exit, ExitStatus::ShutdownTimedOut { services, .. } if services == &["stubborn"]),
        "{exit:?}"
    );
    assert_eq!(exit.code(), 2);
    assert!(
        took < HOUR,
        "the shutdown timeout must cut the wait short: {took:?}"
    );
    assert!(dropped.load(Ordering::SeqCst), "stubborn's run was aborted");
    let line = logs
        .error_for("stubborn", &["ignored cancellation"])
        .unwrap_or_else(|| panic!("no ERROR line naming stubborn:\n{}", logs.text()));
    assert!(
        line.contains("still running 5.0 s after it was asked to stop"),
        "the log says how long it was waited for: {line}"
    );
    assert!(line.contains("waited="), "{line}");
    assert!(
        logs.errors().iter().all(|l| !names_service(l, "polite")),
        "only the service that ignored cancellation is blamed:\n{}",
        logs.text()
    );

    let status = handle.status();
    match state_of(&status, "stubborn") {
        ServiceState::Faulted { error, .. } => {
            assert!(
                error.contains("did not stop within the shutdown timeout"),
                "{error}"
            )
        }
        other => panic!("expected Faulted, got {other:?}"),
    }
    assert_eq!(state_of(&status, "idle"), ServiceState::Stopped);
    assert_eq!(state_of(&status, "polite"), ServiceState::Stopped);
    assert_eq!(journal.events(), ["polite flushed"]);
}

// ---- Real signals, on a child process ----------------------------------
//
// The test binary re-runs itself with `CHILD_ENV` set and only the one test
// selected; in that mode the test body is the child: a host with signal
// handling on, printing what happens. The parent sends it real signals with
// the `kill` command.

const CHILD_ENV: &str = "STEWARD_TEST_SIGNAL_CHILD";

#[test]
fn sigterm_starts_a_graceful_shutdown() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return signal_child();
    }
    signal_parent("sigterm_starts_a_graceful_shutdown", "TERM");
}

#[test]
fn sigint_starts_a_graceful_shutdown() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return signal_child();
    }
    signal_parent("sigint_starts_a_graceful_shutdown", "INT");
}

/// Prints its life to stdout, for the parent to check.
struct Announcer;

impl Service for Announcer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        println!("worker: running");
        let mut ticker = ctx.every(Duration::from_millis(50))?;
        while ticker.tick().await.is_some() {}
        println!("worker: run ended");
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        println!("worker: on_stop");
        Ok(())
    }
}

fn signal_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Installing our own listeners first means a signal that arrives
        // before the host listens cannot kill the process by default action;
        // the parent repeats the signal until the child exits.
        use tokio::signal::unix::{SignalKind, signal};
        let _term = signal(SignalKind::terminate()).unwrap();
        let _int = signal(SignalKind::interrupt()).unwrap();

        let mut builder = Host::builder();
        builder
            .handle_signals(true)
            .shutdown_timeout(Duration::from_secs(10));
        builder.service("worker", Announcer).unwrap();
        builder.service("idle", Idle).unwrap();
        let host = builder.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        wait_for(&handle, Duration::from_secs(30), "host ready", |s| s.ready).await;
        println!("READY");
        let exit = run.await.unwrap();
        println!("EXIT {exit:?}");
        for s in handle.status().services {
            println!("STATE {} {:?}", s.name, s.state);
        }
        if !exit.is_success() {
            std::process::exit(exit.code().into());
        }
    });
}

/// Kills the child if the parent test fails half-way.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal_parent(test_name: &str, signal: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id().to_string();

    let (lines_tx, lines) = mpsc::channel::<String>();
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());

    // Generous bounds: this is a real process on a possibly loaded machine.
    let limit = Duration::from_secs(60);
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(limit.saturating_sub(start.elapsed())) {
            Ok(line) => {
                let ready = line == "READY";
                seen.push(line);
                if ready {
                    break;
                }
            }
            Err(_) => panic!("the child never became ready; its output: {seen:#?}"),
        }
    }

    let exit = loop {
        let sent = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {signal} {pid} failed");
        let wait_until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < wait_until {
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            start.elapsed() < limit,
            "the child did not exit after SIG{signal}; its output: {seen:#?}"
        );
    };
    out_reader.join().unwrap();
    seen.extend(lines.try_iter());
    let stderr = err_reader.join().unwrap();

    assert!(
        exit.success(),
        "the child must exit cleanly after SIG{signal}: {exit:?}\nstdout: {seen:#?}\nstderr: {stderr}"
    );
    for expected in [
        "worker: run ended",
        "worker: on_stop",
        "EXIT Clean",
        "STATE worker Stopped",
        "STATE idle Stopped",
    ] {
        assert!(
            seen.iter().any(|l| l == expected),
            "missing `{expected}` in the child's output: {seen:#?}\nstderr: {stderr}"
        );
    }
}
