//! `steward jobs list` (issue 14, item 6, first part): filter by state,
//! queue and kind, page with a cursor, a table for people and a JSON
//! object (the jobs and the next page's token) for scripts; bad input gets
//! one line and the documented exit code. (Time ranges, error text, order
//! and page tokens: jobs_query.rs.)

mod common;

use std::collections::BTreeSet;

use common::{run_ok, steward};
use serde_json::Value;

/// A store with 5 `noop` jobs in `default`, 3 `sleep` jobs in `slow` and
/// 2 delayed `noop` jobs (scheduled).
fn store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    run_ok(&["enqueue", "noop", "--count", "5", "--store", &store]);
    let sleep = [
        "enqueue",
        "sleep",
        "--payload",
        r#"{"ms":1}"#,
        "--queue",
        "slow",
    ];
    run_ok(&[&sleep[..], &["--count", "3", "--store", &store]].concat());
    run_ok(&[
        "enqueue", "noop", "--delay", "1h", "--count", "2", "--store", &store,
    ]);
    (dir, store)
}

fn list(store: &str, args: &[&str]) -> Vec<Value> {
    list_page(store, args).0
}

/// One page's jobs and the next page's token.
fn list_page(store: &str, args: &[&str]) -> (Vec<Value>, Option<String>) {
    let out = run_ok(&[&["jobs", "list", "--json", "--store", store][..], args].concat());
    let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let jobs = serde_json::from_value::<Vec<Value>>(value["jobs"].clone())
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    (jobs, value["next_cursor"].as_str().map(str::to_string))
}

fn ids(jobs: &[Value]) -> Vec<i64> {
    jobs.iter()
        .map(|j| j["id"].as_i64().expect("an id"))
        .collect()
}

#[test]
fn filters_by_state_queue_and_kind_newest_first() {
    let (_dir, store) = store();
    let all = list(&store, &[]);
    assert_eq!(all.len(), 10);
    assert!(ids(&all).windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(list(&store, &["--queue", "slow"]).len(), 3);
    assert_eq!(list(&store, &["--kind", "noop"]).len(), 7);
    let scheduled = list(&store, &["--state", "scheduled"]);
    assert_eq!(scheduled.len(), 2);
    assert!(scheduled.iter().all(|j| j["state"] == "scheduled"));
    let both = list(
        &store,
        &[
            "--state",
            "scheduled",
            "--state",
            "available",
            "--kind",
            "noop",
        ],
    );
    assert_eq!(both.len(), 7);
    assert!(list(&store, &["--queue", "'; DROP TABLE steward_jobs; --"]).is_empty());
    assert_eq!(list(&store, &[]).len(), 10, "nothing harmed");
    assert_eq!(
        all[0]["payload"],
        serde_json::json!({}),
        "the payload as JSON"
    );
}

#[test]
fn a_cursor_pages_through_every_job_exactly_once() {
    let (_dir, store) = store();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["--limit", "3"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let (page, next) = list_page(&store, &args);
        assert!(page.len() <= 3);
        seen.extend(ids(&page));
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 10, "each once");
}

#[test]
fn the_table_shows_one_line_per_job_and_says_how_to_go_on() {
    let (_dir, store) = store();
    let oldest = ["jobs", "list", "--order", "oldest", "--limit", "4"];
    let out = run_ok(&[&oldest[..], &["--store", &store]].concat());
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("id"), "a header: {out}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("noop")).count(),
        4,
        "{out}"
    );
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .unwrap_or_else(|| panic!("how to see the next page: {out}"));
    let next = run_ok(&[
        "jobs", "list", "--order", "oldest", "--limit", "4", "--cursor", token, "--store", &store,
    ]);
    let token = next
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .unwrap_or_else(|| panic!("a third page: {next}"));
    let last = run_ok(&[
        "jobs", "list", "--order", "oldest", "--limit", "4", "--cursor", token, "--store", &store,
    ]);
    assert!(
        !last.contains("--cursor"),
        "no next page after the last: {last}"
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_64_and_a_missing_store_exit_3() {
    let (dir, store) = store();
    for args in [
        vec!["--limit", "0"],
        vec!["--limit", "1001"],
        vec!["--limit", "-5"],
        vec!["--state", "sleeping"],
        vec!["--cursor", "abc"],
    ] {
        let out = steward()
            .args([&["jobs", "list", "--store", &store][..], &args].concat())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!err.trim().is_empty(), "{args:?}: says why");
    }
    let missing = format!("sqlite://{}", dir.path().join("nope.db").display());
    let out = steward()
        .args(["jobs", "list", "--store", &missing])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(!dir.path().join("nope.db").exists(), "nothing made");
}
