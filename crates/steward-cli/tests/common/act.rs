//! What the tests of the job actions (`jobs_act.rs`, `jobs_act_interrupt.rs`)
//! share: a store of each kind, and short ways to enqueue, list and count.

use serde_json::Value;

use super::{PgSchema, run_ok, steward};

/// Runs `steward ARGS`; returns the exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = steward().args(args).output().expect("run steward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json(out: &str) -> Value {
    assert!(
        out.ends_with('\n') && out.trim_end().lines().count() == 1,
        "one JSON line: {out:?}"
    );
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    run_ok(&["migrate", "--store", &store]);
    (dir, store)
}

pub fn postgres() -> PgSchema {
    let schema = PgSchema::fresh();
    run_ok(&["migrate", "--store", &schema.store]);
    schema
}

pub fn enqueue(store: &str, args: &[&str]) {
    run_ok(&[&["enqueue"][..], args, &["--store", store]].concat());
}

pub fn list(store: &str, args: &[&str]) -> Vec<Value> {
    let out = run_ok(
        &[
            &[
                "jobs", "list", "--json", "--order", "oldest", "--limit", "1000", "--store", store,
            ][..],
            args,
        ]
        .concat(),
    );
    // `{"jobs": [...], "next_cursor": ...}`: the page's jobs.
    let page: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    match page.get("jobs") {
        Some(Value::Array(jobs)) => jobs.clone(),
        _ => panic!("no jobs array: {out}"),
    }
}

pub fn states(store: &str) -> Vec<String> {
    list(store, &[])
        .iter()
        .map(|j| j["state"].as_str().expect("a state").to_string())
        .collect()
}

pub fn count(store: &str, state: &str) -> usize {
    let out = run_ok(&["jobs", "counts", "--json", "--store", store]);
    json(&out)[state].as_u64().expect("a count") as usize
}
