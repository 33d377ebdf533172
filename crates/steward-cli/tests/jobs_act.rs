//! Acting on jobs from the CLI (issue 14, part 2): `steward jobs delete ID`,
//! `retry|cancel|delete --matching FILTERS` in chunks (dry run, resume),
//! `steward jobs run ID` and `steward jobs update ID`; bad input gets one
//! line and the documented exit code, and writes nothing. SQLite and
//! PostgreSQL.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{PgSchema, run_ok, steward};
use serde_json::Value;

/// Runs `steward ARGS`; returns the exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = steward().args(args).output().expect("run steward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &str) -> Value {
    assert!(
        out.ends_with('\n') && out.trim_end().lines().count() == 1,
        "one JSON line: {out:?}"
    );
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    run_ok(&["migrate", "--store", &store]);
    (dir, store)
}

fn postgres() -> PgSchema {
    let schema = PgSchema::fresh();
    run_ok(&["migrate", "--store", &schema.store]);
    schema
}

fn enqueue(store: &str, args: &[&str]) {
    run_ok(&[&["enqueue"][..], args, &["--store", store]].concat());
}

fn list(store: &str, args: &[&str]) -> Vec<Value> {
    let out = run_ok(
        &[
            &[
                "jobs", "list", "--json", "--limit", "1000", "--store", store,
            ][..],
            args,
        ]
        .concat(),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn states(store: &str) -> Vec<String> {
    list(store, &[])
        .iter()
        .map(|j| j["state"].as_str().expect("a state").to_string())
        .collect()
}

fn count(store: &str, state: &str) -> usize {
    let out = run_ok(&["jobs", "counts", "--json", "--store", store]);
    json(&out)[state].as_u64().expect("a count") as usize
}

/// Delete one job; unknown, bad or running ids are refused with the
/// documented exit codes and write nothing.
fn delete_one_job(store: &str) {
    enqueue(store, &["noop", "--count", "2"]);
    let ids: Vec<i64> = list(store, &[])
        .iter()
        .map(|j| j["id"].as_i64().expect("id"))
        .collect();
    let out = run_ok(&[
        "jobs",
        "delete",
        &ids[0].to_string(),
        "--json",
        "--store",
        store,
    ]);
    assert_eq!(json(&out)["deleted"], true);
    assert_eq!(list(store, &[]).len(), 1);
    let (code, _, err) = run(&["jobs", "delete", &ids[0].to_string(), "--store", store]);
    assert_eq!(code, 3, "an unknown id: {err}");
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    for bad in ["0", "-3"] {
        let (code, _, err) = run(&["jobs", "delete", bad, "--store", store]);
        assert_eq!(code, 64, "id {bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(list(store, &[]).len(), 1, "nothing else deleted");
}

#[test]
fn delete_one_job_sqlite() {
    let (_dir, store) = sqlite();
    delete_one_job(&store);
}

#[test]
fn delete_one_job_postgres() {
    let schema = postgres();
    delete_one_job(&schema.store);
}

/// `--matching` acts on exactly the jobs `jobs list` shows for the same
/// filter, in chunks; a dry run counts without writing; a filter matching
/// nothing says "0 jobs" and exits 0.
fn bulk_by_filter(store: &str) {
    enqueue(store, &["noop", "--count", "25"]);
    enqueue(store, &["noop", "--count", "4", "--queue", "other"]);
    enqueue(
        store,
        &["sleep", "--count", "3", "--payload", r#"{"ms":1}"#],
    );
    let filter = ["--kind", "noop", "--queue", "default"];
    let dry = run_ok(
        &[
            &[
                "jobs",
                "cancel",
                "--matching",
                "--dry-run",
                "--json",
                "--store",
                store,
            ][..],
            &filter,
        ]
        .concat(),
    );
    let dry = json(&dry);
    assert_eq!(
        (dry["touched"].as_u64(), dry["dry_run"].as_bool()),
        (Some(25), Some(true))
    );
    assert_eq!(count(store, "cancelled"), 0, "a dry run writes nothing");

    let out = run_ok(
        &[
            &[
                "jobs",
                "cancel",
                "--matching",
                "--chunk",
                "7",
                "--json",
                "--store",
                store,
            ][..],
            &filter,
        ]
        .concat(),
    );
    let out = json(&out);
    assert_eq!(out["touched"], 25);
    assert_eq!(out["chunks"], 4);
    assert_eq!(out["finished"], true);
    assert_eq!(count(store, "cancelled"), 25);
    assert_eq!(
        count(store, "available"),
        7,
        "other queue and kind untouched"
    );

    let text = run_ok(
        &[&[
            "jobs",
            "retry",
            "--matching",
            "--state",
            "cancelled",
            "--store",
            store,
        ][..]]
        .concat(),
    );
    assert!(text.contains("25 jobs retried"), "{text}");
    assert_eq!(count(store, "available"), 32);

    let nothing = run_ok(&[
        "jobs",
        "delete",
        "--matching",
        "--kind",
        "'; DROP TABLE steward_jobs; --",
        "--store",
        store,
    ]);
    assert!(nothing.contains("0 jobs"), "{nothing}");
    let out = run_ok(&[
        "jobs",
        "delete",
        "--matching",
        "--queue",
        "other",
        "--json",
        "--store",
        store,
    ]);
    assert_eq!(json(&out)["touched"], 4);
    assert_eq!(list(store, &[]).len(), 28);
}

#[test]
fn bulk_by_filter_sqlite() {
    let (_dir, store) = sqlite();
    bulk_by_filter(&store);
}

#[test]
fn bulk_by_filter_postgres() {
    let schema = postgres();
    bulk_by_filter(&schema.store);
}

/// Bad bulk input: no filter at all, an id with `--matching`, a chunk of 0
/// or too big: exit 64, one line, nothing written.
fn bulk_bad_input(store: &str) {
    enqueue(store, &["noop", "--count", "3"]);
    let cases: [&[&str]; 6] = [
        &["jobs", "delete", "--matching"],
        &["jobs", "retry", "--matching", "--json"],
        &["jobs", "delete", "1", "--matching", "--kind", "noop"],
        &[
            "jobs",
            "delete",
            "--matching",
            "--kind",
            "noop",
            "--chunk",
            "0",
        ],
        &[
            "jobs",
            "delete",
            "--matching",
            "--kind",
            "noop",
            "--chunk",
            "100000",
        ],
        &["jobs", "delete", "--kind", "noop"],
    ];
    for args in cases {
        let (code, out, err) = run(&[args, &["--store", store]].concat());
        assert_eq!(code, 64, "{args:?}: {out}{err}");
        assert!(
            err.trim_end().lines().count() <= 2,
            "short error for {args:?}: {err}"
        );
    }
    assert_eq!(states(store), ["available"; 3], "nothing written");
}

#[test]
fn bulk_bad_input_sqlite() {
    let (_dir, store) = sqlite();
    bulk_bad_input(&store);
}

#[test]
fn bulk_bad_input_postgres() {
    let schema = postgres();
    bulk_bad_input(&schema.store);
}

/// Killed between chunks, a bulk cancel leaves whole chunks done (never a
/// partial one); the same command run again finishes the rest, and every
/// job ends cancelled exactly once.
fn killed_bulk_resumes(store: &str) {
    let total = 20_000;
    enqueue(store, &["noop", "--count", &total.to_string()]);
    let mut child = steward()
        .args([
            "jobs",
            "cancel",
            "--matching",
            "--state",
            "available",
            "--chunk",
            "10",
            "--store",
            store,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn steward");
    let started = Instant::now();
    loop {
        let done = count(store, "cancelled");
        if done >= 100 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill steward");
    child.wait().expect("reap steward");
    let done = count(store, "cancelled");
    assert!(
        done > 0 && done < total,
        "killed half-way, {done} cancelled"
    );
    assert_eq!(done % 10, 0, "whole chunks only: {done} cancelled");
    let out = run_ok(&[
        "jobs",
        "cancel",
        "--matching",
        "--state",
        "available",
        "--json",
        "--store",
        store,
    ]);
    assert_eq!(
        json(&out)["touched"].as_u64(),
        Some((total - done) as u64),
        "the rest, once"
    );
    assert_eq!(count(store, "cancelled"), total);
}

#[test]
fn killed_bulk_resumes_sqlite() {
    let (_dir, store) = sqlite();
    killed_bulk_resumes(&store);
}

#[test]
fn killed_bulk_resumes_postgres() {
    let schema = postgres();
    killed_bulk_resumes(&schema.store);
}

/// `run ID` makes a delayed job due now; `update ID` changes priority and
/// run time; running or finished jobs and bad values are refused.
fn run_and_update(store: &str) {
    enqueue(store, &["noop", "--delay", "1h"]);
    let id = list(store, &[])[0]["id"].as_i64().expect("id").to_string();
    let out = run_ok(&["jobs", "run", &id, "--json", "--store", store]);
    assert_eq!(json(&out)["state"], "available");
    let out = run_ok(&[
        "jobs",
        "update",
        &id,
        "--priority",
        "-3",
        "--delay",
        "2h",
        "--json",
        "--store",
        store,
    ]);
    let out = json(&out);
    assert_eq!(out["state"], "scheduled");
    let job = &list(store, &[])[0];
    assert_eq!(job["priority"], -3);
    let out = run_ok(&[
        "jobs",
        "update",
        &id,
        "--run-at",
        "2030-01-02T03:04:05Z",
        "--store",
        store,
    ]);
    assert!(out.contains(&id), "{out}");
    assert!(
        list(store, &[])[0]["run_at"]
            .as_str()
            .expect("run_at")
            .starts_with("2030-01-02T03:04:05")
    );
    let bad: [&[&str]; 5] = [
        &["jobs", "update", &id],
        &["jobs", "update", &id, "--run-at", "tomorrow"],
        &[
            "jobs",
            "update",
            &id,
            "--run-at",
            "2030-01-02T03:04:05Z",
            "--delay",
            "1h",
        ],
        &["jobs", "update", &id, "--priority", "40000"],
        &["jobs", "run", "0"],
    ];
    for args in bad {
        let (code, out, err) = run(&[args, &["--store", store]].concat());
        assert_eq!(code, 64, "{args:?}: {out}{err}");
    }
    let (code, _, err) = run(&["jobs", "run", "999999", "--store", store]);
    assert_eq!(code, 3, "{err}");
    run_ok(&["jobs", "cancel", &id, "--store", store]);
    let (code, _, err) = run(&["jobs", "run", &id, "--store", store]);
    assert_eq!(code, 64, "a cancelled job cannot be run now: {err}");
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn run_and_update_sqlite() {
    let (_dir, store) = sqlite();
    run_and_update(&store);
}

#[test]
fn run_and_update_postgres() {
    let schema = postgres();
    run_and_update(&schema.store);
}

/// Ctrl-C (SIGINT) stops a bulk action between chunks: exit 130, a line
/// saying how far it got and how to resume; resuming with the `--cursor`
/// it printed finishes the rest.
fn interrupted_bulk_says_how_to_resume(store: &str) {
    let total = 20_000;
    enqueue(store, &["noop", "--count", &total.to_string()]);
    let child = steward()
        .args([
            "jobs",
            "delete",
            "--matching",
            "--kind",
            "noop",
            "--chunk",
            "10",
            "--store",
            store,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn steward");
    let started = Instant::now();
    while count(store, "available") > total - 100 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait for steward");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("interrupted: ") && stdout.lines().count() == 1,
        "{stdout}"
    );
    let left = count(store, "available");
    assert!(left > 0 && left % 10 == 0, "whole chunks only: {left} left");
    let cursor = stdout
        .split("--cursor ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or_else(|| panic!("a --cursor to resume from: {stdout}"));
    let out = run_ok(&[
        "jobs",
        "delete",
        "--matching",
        "--kind",
        "noop",
        "--cursor",
        cursor,
        "--json",
        "--store",
        store,
    ]);
    assert_eq!(
        json(&out)["touched"].as_u64(),
        Some(left as u64),
        "the rest, once"
    );
    assert_eq!(count(store, "available"), 0);
}

#[test]
fn interrupted_bulk_says_how_to_resume_sqlite() {
    let (_dir, store) = sqlite();
    interrupted_bulk_says_how_to_resume(&store);
}

#[test]
fn interrupted_bulk_says_how_to_resume_postgres() {
    let schema = postgres();
    interrupted_bulk_says_how_to_resume(&schema.store);
}
