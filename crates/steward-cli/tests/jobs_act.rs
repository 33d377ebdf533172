//! Acting on jobs from the CLI (issue 14, part 2): `steward jobs delete ID`,
//! `retry|cancel|delete --matching FILTERS` in chunks (dry run), `steward
//! jobs run ID` and `steward jobs update ID`; bad input gets one line and
//! the documented exit code, and writes nothing. SQLite and PostgreSQL.
//! (Interrupted bulk actions: `jobs_act_interrupt.rs`.)

mod common;

use common::act::{count, enqueue, json, list, postgres, run, sqlite, states};
use common::run_ok;

/// Delete one job; unknown or bad ids are refused with the documented
/// exit codes and write nothing.
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

/// A running job cannot be deleted (its worker holds it): exit 64 and a
/// line saying to cancel it first; once cancelled and stopped, it can.
fn delete_refuses_a_running_job(store: &str) {
    enqueue(store, &["sleep", "--payload", r#"{"ms":60000}"#]);
    let id = list(store, &[])[0]["id"].as_i64().expect("id").to_string();
    let mut worker = common::steward()
        .args(["worker", "--store", store])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a worker");
    let started = std::time::Instant::now();
    while count(store, "running") == 0 && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, _, err) = run(&["jobs", "delete", &id, "--store", store]);
    worker.kill().expect("stop the worker");
    worker.wait().expect("reap the worker");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("running") && err.contains("cancel it first"),
        "{err}"
    );
    assert_eq!(list(store, &[]).len(), 1, "nothing deleted");
}

#[test]
fn delete_refuses_a_running_job_sqlite() {
    let (_dir, store) = sqlite();
    delete_refuses_a_running_job(&store);
}

#[test]
fn delete_refuses_a_running_job_postgres() {
    let schema = postgres();
    delete_refuses_a_running_job(&schema.store);
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
