//! `steward bench queries`: seeds a store through the store API, times
//! pages of 50 and the counts, and prints the three summary lines. A small
//! run, to check the wiring and the output, never the speed.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["bench", "queries"])
        .args(args)
        .output()
        .expect("run steward")
}

/// The number in a `NAME: X ms` line, which must be there exactly once.
fn millis(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}: ");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "one `{prefix}X ms` line in:\n{text}");
    let value = lines[0]
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("`{}` should read `{prefix}X ms`", lines[0]));
    value
        .parse()
        .unwrap_or_else(|e| panic!("`{value}` in `{}` is not a number: {e}", lines[0]))
}

/// Succeeded and printed `page of 50: X ms`, `counts: X ms` and
/// `jobs: N`, with the per-query detail.
fn assert_summary(out: &Output, jobs: u64) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(millis(&text, "page of 50") >= 0.0);
    assert!(millis(&text, "counts") >= 0.0);
    assert!(
        text.lines().any(|l| l == format!("jobs: {jobs}")),
        "a `jobs: {jobs}` line in:\n{text}"
    );
    for detail in [
        "  page unfiltered: ",
        "  page state=dead: ",
        "  page queue: ",
        "  page kind: ",
        "  page queue+kind+state: ",
        "  page next (cursor): ",
        "  counts by state: ",
        "  counts by queue and kind: ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(detail)),
            "a `{detail}...` line in:\n{text}"
        );
    }
    text
}

#[test]
fn bench_queries_on_sqlite_prints_pages_counts_and_jobs() {
    assert_summary(&bench(&["--store", "sqlite", "--jobs", "3000"]), 3000);
}

#[test]
fn bench_queries_on_postgres_prints_pages_counts_and_jobs() {
    let store = "postgres://postgres@127.0.0.1:5432/test";
    assert_summary(&bench(&["--store", store, "--jobs", "3000"]), 3000);
}

#[test]
fn bench_queries_reuses_a_seeded_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("seeded.db").display());
    let first = assert_summary(
        &bench(&["--store", &url, "--jobs", "2000", "--reuse"]),
        2000,
    );
    assert!(first.contains("seeded: 2000 jobs"), "{first}");
    let again = assert_summary(
        &bench(&["--store", &url, "--jobs", "2000", "--reuse"]),
        2000,
    );
    assert!(again.contains("reused: 2000 jobs"), "{again}");
}

#[test]
fn bench_queries_refuses_zero_jobs_and_reuse_of_a_temporary_store() {
    assert_eq!(bench(&["--jobs", "0"]).status.code(), Some(64));
    assert_eq!(bench(&["--reuse"]).status.code(), Some(64));
}
