//! `steward worker` refuses settings that cannot work, at start-up, with a
//! clear error and a configuration exit code, instead of starting a worker
//! that misbehaves (issue 11, input gaps). Each case used to start a worker
//! that ran until it was killed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `steward worker` with `args` on a fresh SQLite file; returns its exit
/// code and stderr, or fails the test if it keeps running (it was accepted).
fn worker(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["worker", "--store", &store, "--http", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`steward worker {}` was accepted and kept running:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused(args: &[&str], names: &str) {
    let (code, err) = worker(args);
    assert_eq!(code, Some(78), "`{}`: {err}", args.join(" "));
    assert!(
        err.contains(names),
        "`{}` should name `{names}`: {err}",
        args.join(" ")
    );
}

#[test]
fn zero_max_rescues_is_refused() {
    refused(&["--max-rescues", "0"], "max_rescues");
}

#[test]
fn an_absurd_lease_is_refused() {
    refused(&["--lease", "100000000000s"], "lease");
}

#[test]
fn a_zero_shutdown_timeout_is_refused() {
    refused(&["--shutdown-timeout", "0s"], "shutdown timeout");
}

#[test]
fn a_zero_rescue_period_is_refused_before_the_host_starts() {
    refused(&["--rescue-every", "0s"], "rescue_every");
}

/// A kind whose jobs go to a queue this worker does not serve would sit
/// `available` with no word; the worker names each such kind and its queue
/// when it starts (it is not refused: workers split by queue over one code
/// base register every kind).
#[test]
fn kinds_for_queues_the_worker_does_not_serve_are_named_at_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["worker", "--store", &store, "--http", "127.0.0.1:0"])
        .args(["--queues", "mail"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let logs = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(logs).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains("WARN")
                    && line.contains("`noop`")
                    && line.contains("queue `default`")
                    && line.contains("does not serve");
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        found,
        "no warning naming kind `noop` and queue `default`:\n{}",
        seen.join("\n")
    );
}
