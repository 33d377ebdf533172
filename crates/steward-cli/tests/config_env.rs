//! Configuration from the environment: every flag has a `STEWARD_*`
//! variable, the command line beats it, it beats the default, and
//! `--log-format json` writes one JSON object per log line.

use std::path::Path;
use std::process::Output;

mod common;
use common::steward;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sqlite(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// `jobs counts --json` of a store, parsed.
fn counts(store: &str) -> serde_json::Value {
    let out = steward()
        .args(["jobs", "counts", "--json", "--store", store])
        .output()
        .expect("run steward jobs counts");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("counts --json prints JSON")
}

#[test]
fn help_shows_each_flags_variable() {
    let help = |args: &[&str]| {
        let out = steward()
            .args(args)
            .arg("--help")
            .output()
            .expect("run --help");
        assert!(out.status.success());
        text(&out.stdout)
    };
    let worker = help(&["worker"]);
    for var in [
        "STEWARD_STORE",
        "STEWARD_CONCURRENCY",
        "STEWARD_QUEUES",
        "STEWARD_SHUTDOWN_TIMEOUT",
        "STEWARD_CRASH_KINDS",
        "STEWARD_LOG_FORMAT",
    ] {
        assert!(
            worker.contains(&format!("[env: {var}=")),
            "{var}:\n{worker}"
        );
    }
    let counts = help(&["jobs", "counts"]);
    for var in ["STEWARD_STORE", "STEWARD_JSON"] {
        assert!(
            counts.contains(&format!("[env: {var}=")),
            "{var}:\n{counts}"
        );
    }
    let enqueue = help(&["enqueue"]);
    assert!(enqueue.contains("[env: STEWARD_QUEUE="), "{enqueue}");
    // A positional argument is not configuration.
    assert!(!enqueue.contains("STEWARD_KIND"), "{enqueue}");
}

#[test]
fn the_flag_beats_the_variable_and_the_variable_beats_the_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (from_env, from_flag) = (sqlite(dir.path(), "env.db"), sqlite(dir.path(), "flag.db"));
    let enqueue = |extra: &[&str]| {
        let out = steward()
            .current_dir(dir.path())
            .env("STEWARD_STORE", &from_env)
            .arg("enqueue")
            .arg("noop")
            .args(extra)
            .output()
            .expect("run steward enqueue");
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    enqueue(&[]);
    // The default store would be ./steward-demo.db in the working directory.
    assert!(!dir.path().join("steward-demo.db").exists());
    assert_eq!(counts(&from_env)["available"], 1);
    enqueue(&["--store", &from_flag]);
    assert_eq!(counts(&from_flag)["available"], 1);
    assert_eq!(counts(&from_env)["available"], 1);
}

#[test]
fn boolean_variables_take_true_and_false_and_the_flag_still_wins() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = sqlite(dir.path(), "bool.db");
    let out = steward()
        .args(["migrate", "--store", &store])
        .output()
        .expect("run steward migrate");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = |value: &str, flag: bool| -> Output {
        let mut cmd = steward();
        cmd.env("STEWARD_STORE", &store).env("STEWARD_JSON", value);
        cmd.args(["jobs", "counts"]);
        if flag {
            cmd.arg("--json");
        }
        cmd.output().expect("run steward jobs counts")
    };
    let is_json = |out: &Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok()
    };
    for on in ["true", "1", "yes"] {
        assert!(is_json(&run(on, false)), "STEWARD_JSON={on}");
    }
    for off in ["false", "0", "no"] {
        assert!(!is_json(&run(off, false)), "STEWARD_JSON={off}");
    }
    assert!(
        is_json(&run("false", true)),
        "--json with STEWARD_JSON=false"
    );
}

#[test]
fn a_bad_value_in_a_variable_is_a_usage_error_naming_the_value() {
    let out = steward()
        .env("STEWARD_CONCURRENCY", "lots")
        // Should the variable be ignored, the worker fails at once on the
        // address instead of running.
        .args([
            "worker",
            "--store",
            "sqlite://unused.db",
            "--http",
            "no-such-address",
        ])
        .output()
        .expect("run steward worker");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    // clap names the flag, not the variable:
    // "error: invalid value 'lots' for '--concurrency <CONCURRENCY>'".
    assert!(
        err.contains("invalid value 'lots' for '--concurrency"),
        "{err}"
    );

    let out = steward()
        .env("STEWARD_LOG_FORMAT", "xml")
        .args(["jobs", "counts"])
        .output()
        .expect("run steward jobs counts");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("invalid value 'xml' for '--log-format"),
        "{err}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_log_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = sqlite(dir.path(), "demo.db");
    let out = steward()
        .args(["demo", "--for", "2s", "--http", "127.0.0.1:0"])
        .args(["--store", &store, "--log-format", "json"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run steward demo");
    let stdout = text(&out.stdout);
    // Not `success()`: the demo's flaky service may fail while the host
    // stops, and the exit code then says so (4). Only the log format is
    // tested here; the demo must still have ended by itself.
    assert!(
        matches!(out.status.code(), Some(0 | 4)),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    // Logs go to stdout, between the demo's own plain-text lines
    // (its closing summary): every line that is not one of those is a
    // JSON object.
    let mut logs = 0;
    for line in stdout.lines() {
        if !line.starts_with('{') {
            assert!(
                !line.starts_with(|c: char| c.is_ascii_digit()),
                "a text log line: {line}"
            );
            continue;
        }
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let time = event["timestamp"].as_str().unwrap_or_default();
        // Milliseconds, UTC, as in the text format.
        assert!(time.len() == 24 && time.ends_with('Z'), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["message"].is_string(), "{line}");
        logs += 1;
    }
    assert!(logs >= 3, "too few log lines:\n{stdout}");
}
