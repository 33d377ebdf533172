//! `steward jobs list` (issue 14, part 1): time ranges (`--since`,
//! `--until`, `--time`), the last error's text (`--error`), the order
//! (`--order`, newest first by default) and opaque page tokens
//! (`--cursor`), on SQLite and PostgreSQL; bad values exit 64 with one
//! line.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PgSchema, run_ok, steward};
use serde_json::Value;

/// The jobs of one page and the token of the next (`null` after the last).
fn page(store: &str, args: &[&str]) -> (Vec<i64>, Option<String>) {
    let out = run_ok(&[&["jobs", "list", "--json", "--store", store][..], args].concat());
    let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let ids = value["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("a jobs array: {out}"))
        .iter()
        .map(|j| j["id"].as_i64().expect("an id"))
        .collect();
    let next = value["next_cursor"].as_str().map(str::to_string);
    assert!(next.is_some() || value["next_cursor"].is_null(), "{out}");
    (ids, next)
}

fn ids(store: &str, args: &[&str]) -> Vec<i64> {
    page(store, &[args, &["--limit", "1000"]].concat()).0
}

fn counts(store: &str) -> Value {
    serde_json::from_str(&run_ok(&["jobs", "counts", "--json", "--store", store])).expect("json")
}

fn stop(child: &mut Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    child.wait().expect("worker exits");
}

/// 3 `noop` jobs and 2 `fail` jobs that die on their one attempt, run by
/// a real worker; then 1 `noop` delayed an hour. Returns the ids in order:
/// noop×3, fail×2, delayed.
fn seed(store: &str) -> Vec<i64> {
    run_ok(&["migrate", "--store", store]);
    run_ok(&["enqueue", "noop", "--count", "3", "--store", store]);
    let fail = ["enqueue", "fail", "--payload", r#"{"times":5}"#];
    run_ok(
        &[
            &fail[..],
            &["--max-attempts", "1", "--count", "2", "--store", store],
        ]
        .concat(),
    );
    let mut worker = steward()
        .args(["worker", "--store", store, "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("a worker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = counts(store);
        if c["completed"] == 3 && c["dead"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not finish: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(&mut worker);
    run_ok(&["enqueue", "noop", "--delay", "1h", "--store", store]);
    let mut all = ids(store, &["--order", "oldest"]);
    all.sort();
    assert_eq!(all.len(), 6, "{all:?}");
    all
}

fn ranges_error_and_order(store: &str) {
    let all = seed(store);
    let newest: Vec<i64> = all.iter().rev().copied().collect();
    assert_eq!(ids(store, &[]), newest, "newest first by default");
    assert_eq!(ids(store, &["--order", "newest"]), newest);
    assert_eq!(ids(store, &["--order", "oldest"]), all);
    let oldest = ["--order", "oldest"];
    let q = |args: &[&str]| ids(store, &[&oldest[..], args].concat());
    assert_eq!(q(&["--since", "1h"]), all, "created in the last hour");
    assert_eq!(q(&["--since", "90s", "--time", "created"]), all);
    assert_eq!(q(&["--until", "1h"]), [0i64; 0], "created over an hour ago");
    assert_eq!(q(&["--since", "2d", "--until", "1d"]), [0i64; 0]);
    assert_eq!(
        q(&["--since", "15m", "--time", "finished"]),
        &all[..5],
        "the finished jobs"
    );
    assert_eq!(
        q(&["--until", "0s", "--time", "run-at"]),
        &all[..5],
        "run_at before now"
    );
    let soon = (chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339();
    assert_eq!(
        q(&["--since", &soon, "--time", "run-at"]),
        [all[5]],
        "due in over 30 minutes"
    );
    assert_eq!(
        q(&["--until", "2999-01-01T00:00:00Z"]),
        all,
        "an RFC 3339 time"
    );
    assert_eq!(q(&["--since", "2999-01-01T00:00:00+02:00"]), [0i64; 0]);
    assert_eq!(
        q(&["--error", "PLANNED failure"]),
        &all[3..5],
        "the last error's text, any case"
    );
    assert_eq!(
        q(&["--error", "planned", "--state", "dead", "--kind", "fail"]),
        &all[3..5]
    );
    assert_eq!(
        q(&["--error", "planned", "--kind", "noop"]),
        [0i64; 0],
        "combined with AND"
    );
    let before = counts(store);
    for text in ["%", "_", "'; DROP TABLE steward_jobs; --", r"\"] {
        assert_eq!(q(&["--error", text]), [0i64; 0], "{text:?} is plain text");
    }
    assert_eq!(counts(store), before, "nothing harmed");
}

fn tokens_page_both_ways(store: &str) {
    let all = seed(store);
    for (order, want) in [
        ("oldest", all.clone()),
        ("newest", all.iter().rev().copied().collect()),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut args = vec!["--limit", "2", "--order", order, "--since", "1h"];
            if let Some(c) = &cursor {
                args.extend(["--cursor", c.as_str()]);
            }
            let (got, next) = page(store, &args);
            seen.extend(got);
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "paging {order} ends");
        assert_eq!(seen, want, "{order} first: each job once, in order");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 6);
    }
    // The table says how to go on, with a token that the same listing takes.
    let out = run_ok(&[
        "jobs", "list", "--limit", "4", "--kind", "noop", "--store", store,
    ]);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .unwrap_or_else(|| panic!("how to see the next page: {out}"))
        .trim()
        .to_string();
    let rest = run_ok(&[
        "jobs", "list", "--limit", "4", "--kind", "noop", "--cursor", &token, "--store", store,
    ]);
    assert!(!rest.contains("more:"), "no page after the last: {rest}");

    // Another query's token, or a garbled one, exits 64 with one line.
    let foreign = [
        vec!["--kind", "fail", "--cursor", &token],
        vec!["--kind", "noop", "--order", "oldest", "--cursor", &token],
        vec!["--kind", "noop", "--since", "1h", "--cursor", &token],
        vec!["--kind", "noop", "--cursor", "garbage"],
        vec!["--kind", "noop", "--cursor", &token[..token.len() - 1]],
    ];
    for args in foreign {
        assert_usage_error(store, &args);
    }
}

/// `jobs list ARGS` exits 64 with one line on stderr and nothing on stdout.
fn assert_usage_error(store: &str, args: &[&str]) {
    let out = steward()
        .args([&["jobs", "list", "--store", store][..], args].concat())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    // One line of error; clap adds its usual pointer to --help after a
    // blank line, as for every flag it refuses.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line: {err}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
}

fn bad_values_exit_64(store: &str) {
    run_ok(&["migrate", "--store", store]);
    run_ok(&["enqueue", "noop", "--store", store]);
    for args in [
        vec!["--since", "-5m"],
        vec!["--since", "1x"],
        vec!["--since", "h"],
        vec!["--since", ""],
        vec!["--until", "1.5h"],
        vec!["--since", "40000d"],
        vec!["--since", "99999999999999999999s"],
        vec!["--until", "yesterday"],
        vec!["--since", "10000-01-01T00:00:00Z"],
        vec!["--since", "1h", "--until", "2h"],
        vec![
            "--since",
            "2026-01-02T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
        vec!["--time", "started", "--since", "1h"],
        vec!["--order", "random"],
        vec!["--error", ""],
        vec!["--error", &"x".repeat(1001)],
        vec!["--cursor", "o1-0123456789abcdef"],
    ] {
        assert_usage_error(store, &args);
    }
}

#[test]
fn ranges_error_text_and_order_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    ranges_error_and_order(&format!("sqlite://{}", dir.path().join("q.db").display()));
}

#[test]
fn ranges_error_text_and_order_on_postgres() {
    let schema = PgSchema::fresh();
    ranges_error_and_order(&schema.store);
}

#[test]
fn page_tokens_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    tokens_page_both_ways(&format!("sqlite://{}", dir.path().join("q.db").display()));
}

#[test]
fn page_tokens_on_postgres() {
    let schema = PgSchema::fresh();
    tokens_page_both_ways(&schema.store);
}

#[test]
fn bad_values_exit_64_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    bad_values_exit_64(&format!("sqlite://{}", dir.path().join("q.db").display()));
}

#[test]
fn bad_values_exit_64_on_postgres() {
    let schema = PgSchema::fresh();
    bad_values_exit_64(&schema.store);
}
