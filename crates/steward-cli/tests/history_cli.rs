//! `steward history` (issue 14, item 5): what a real worker process did,
//! minute by minute, on SQLite and PostgreSQL; written at the latest when
//! the worker stops; bad spans and missing stores get one line.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PgSchema, run_ok, steward};
use serde_json::Value;

fn enqueue(store: &str) {
    run_ok(&["enqueue", "noop", "--count", "5", "--store", store]);
    run_ok(&[
        "enqueue",
        "fail",
        "--payload",
        r#"{"times":1}"#,
        "--store",
        store,
    ]);
    run_ok(&[
        "enqueue",
        "fail",
        "--payload",
        r#"{"times":99}"#,
        "--max-attempts",
        "1",
        "--store",
        store,
    ]);
}

/// Runs a worker until the 7 jobs ended, then stops it with SIGTERM.
fn work(store: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["worker", "--store", store, "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a worker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = run_ok(&["jobs", "counts", "--json", "--store", store]);
        let counts: Value = serde_json::from_str(&counts).expect("counts JSON");
        if counts["completed"] == 6 && counts["dead"] == 1 {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not finish the jobs: {counts}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("the worker exits");
    assert!(status.success(), "a clean stop: {status:?}");
}

fn history(store: &str, args: &[&str]) -> Vec<Value> {
    let out = run_ok(&[&["history", "--json", "--store", store][..], args].concat());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn sum(lines: &[Value], field: &str) -> u64 {
    lines.iter().map(|l| l[field].as_u64().unwrap_or(0)).sum()
}

fn check(store: &str) {
    enqueue(store);
    work(store);
    let all = history(store, &[]);
    assert_eq!(
        (
            sum(&all, "succeeded"),
            sum(&all, "failed"),
            sum(&all, "retried")
        ),
        (6, 1, 1),
        "5 noops and a fail that succeeded on its second attempt; one fail dead: {all:?}"
    );
    assert_eq!(sum(&all, "runs"), 8, "one run time per attempt");
    assert!(all.iter().all(|l| l["p50_ms"].is_number()));
    let kinds = history(store, &["--by", "kind"]);
    let noop: u64 = kinds
        .iter()
        .filter(|l| l["kind"] == "noop")
        .map(|l| l["succeeded"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(noop, 5, "by kind: {kinds:?}");
    assert!(history(store, &["--queue", "elsewhere"]).is_empty());
    let text = run_ok(&["history", "--store", store]);
    assert!(text.starts_with("minute (UTC)"), "{text}");
}

#[test]
fn history_of_a_worker_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    check(&format!(
        "sqlite://{}",
        dir.path().join("jobs.db").display()
    ));
}

#[test]
fn history_of_a_worker_on_postgres() {
    let schema = PgSchema::fresh();
    check(&schema.store);
}

#[test]
fn bad_spans_and_missing_stores_get_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    run_ok(&["migrate", "--store", &store]);
    for since in ["0s", "800h", "-1h", "1x"] {
        let out = steward()
            .args(["history", &format!("--since={since}"), "--store", &store])
            .output()
            .expect("run steward");
        assert_eq!(out.status.code(), Some(64), "--since {since}");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error") && first.len() > 20,
            "the first line says what is wrong: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let missing = format!("sqlite://{}", dir.path().join("nope.db").display());
    let out = steward()
        .args(["history", "--store", &missing])
        .output()
        .expect("run steward");
    assert_eq!(out.status.code(), Some(3));
    assert!(!dir.path().join("nope.db").exists(), "nothing created");
}
