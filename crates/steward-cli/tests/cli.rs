//! The `steward` binary, driven as a user would: real processes, real signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

#[test]
fn demo_stops_cleanly_on_sigint_and_prints_a_summary_per_service() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut child = steward()
        .args(["demo", "--http", "127.0.0.1:0", "--store", &store])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start steward demo");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = lines_tx.send(line.clone());
        }
    });

    // Wait until the demo has visibly worked: a heartbeat, and a demo job
    // failing and being retried.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut heartbeat, mut retried) = (false, false);
    while !(heartbeat && retried) {
        let line = lines_rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| {
                panic!(
                    "demo showed no heartbeat and retry within 60 s:\n{}",
                    seen.join("\n")
                )
            });
        heartbeat |= line.contains("heartbeat");
        retried |= line.contains("it will be retried");
        seen.push(line);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines_rx.try_iter());
    let out = seen.join("\n");
    // The demo's flaky service fails on purpose; if Ctrl-C lands while it
    // waits to restart, the run truthfully ends 4 naming it, and only it.
    let flaky_unrecovered = exit.code() == Some(4)
        && seen.iter().any(|l| {
            l.starts_with("exit: exit code 4: flaky: did not recover:") && !l.contains("; ")
        });
    assert!(
        exit.code() == Some(0) || flaky_unrecovered,
        "demo did not exit cleanly:\n{out}"
    );
    assert!(out.contains("received SIGINT"), "{out}");
    for name in [
        "http",
        "order-consumer",
        "order-producer",
        "heartbeat",
        "flaky",
    ] {
        let line = seen
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no summary line for {name}:\n{out}"));
        // `flaky` fails at random moments by design; when one lands after
        // shutdown began but before its turn to stop, the host does not
        // restart it and reports it faulted (truthfully; seen once in CI-like runs).
        let ok = line.contains("stopped") || (name == "flaky" && line.contains("faulted"));
        assert!(ok, "{name} did not stop: {line}");
    }
    assert!(out.contains("jobs in sqlite://"), "{out}");
}

#[test]
fn bench_host_prints_the_three_figures() {
    let out = steward()
        .args(["bench", "host", "--services", "200", "--drift-for", "1s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("start+stop 200 services: "), "{text}");
    assert!(text.contains("memory per idle service: "), "{text}");
    assert!(text.contains("ticker drift after 1 s: "), "{text}");
}

#[test]
fn bad_usage_and_bad_config_get_distinct_exit_codes() {
    let usage = steward().args(["demo", "--bogus"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(64));
    let config = steward()
        .args(["demo", "--http", "not-an-address", "--for", "1s"])
        .output()
        .unwrap();
    assert_eq!(config.status.code(), Some(78));
    let err = String::from_utf8_lossy(&config.stderr);
    assert!(err.contains("not-an-address"), "{err}");
}

#[test]
fn operator_can_cancel_and_retry_a_job_and_unknown_ids_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("ops.db").display());
    let run = |args: &[&str]| {
        let out = steward()
            .args(args)
            .args(["--store", &store])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, id, _) = run(&["enqueue", "noop"]);
    assert_eq!(code, Some(0));
    let id = id.trim().to_string();
    let (code, out, err) = run(&["jobs", "retry", &id]);
    assert_eq!(code, Some(64), "a queued job cannot be retried: {out}{err}");
    let (code, out, _) = run(&["jobs", "cancel", &id]);
    assert_eq!(code, Some(0));
    assert!(out.contains("cancelled"), "{out}");
    let (code, out, _) = run(&["jobs", "retry", &id]);
    assert_eq!(code, Some(0));
    assert!(out.contains("will run again"), "{out}");
    let (_, json, _) = run(&["jobs", "show", &id, "--json"]);
    assert!(json.contains("\"state\": \"available\""), "{json}");
    let (code, _, err) = run(&["jobs", "show", "999"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no job with id 999"), "{err}");
}
