//! The `steward` commands on the PostgreSQL store: real processes against
//! the real server on 127.0.0.1:5432, one fresh schema per test. No skip:
//! without the server these tests fail.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{PG_DATABASE as DATABASE, is_utc_millis, run_ok, steward};

/// A fresh schema per test, dropped afterwards (the shared helper).
use common::PgSchema as Schema;

fn run(args: &[&str]) -> Output {
    steward().args(args).output().unwrap()
}

fn counts(store: &str) -> Value {
    serde_json::from_str(&run_ok(&["jobs", "counts", "--json", "--store", store])).unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn enqueued_jobs_are_run_by_a_worker_on_postgres_and_visible_to_jobs_commands() {
    let schema = Schema::fresh();
    let store = schema.store.as_str();
    let out = run_ok(&["enqueue", "noop", "--count", "50", "--store", store]);
    // "enqueued 50 jobs (ids A..=B)"
    let first_id: i64 = out
        .split("ids ")
        .nth(1)
        .and_then(|rest| rest.split("..").next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id range in {out:?}"));
    assert_eq!(counts(store)["available"], 50);

    let mut worker = steward()
        .args(["worker", "--store", store, "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("50 jobs completed", Duration::from_secs(60), || {
        counts(store)["completed"] == 50
    });
    signal(&worker, "-TERM");
    let exit = worker.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut worker.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(
        exit.code(),
        Some(0),
        "worker did not stop cleanly: {stdout}"
    );
    assert!(
        stdout.contains("worker stopped: 50 completed"),
        "no summary line: {stdout}"
    );

    let c = counts(store);
    assert_eq!(c["completed"], 50, "{c}");
    assert_eq!(c["available"], 0, "{c}");
    assert_eq!(c["running"], 0, "{c}");

    let job: Value = serde_json::from_str(&run_ok(&[
        "jobs",
        "show",
        &first_id.to_string(),
        "--json",
        "--store",
        store,
    ]))
    .unwrap();
    assert_eq!(job["id"], first_id, "{job}");
    assert_eq!(job["kind"], "noop", "{job}");
    assert_eq!(job["state"], "completed", "{job}");

    // A job that does not exist in this schema: not found (3).
    let missing = run(&["jobs", "show", "999999999", "--store", store]);
    assert_eq!(missing.status.code(), Some(3));
}

#[test]
fn migrate_creates_the_schema_named_in_the_url() {
    let schema = Schema::fresh();
    let out = run_ok(&["migrate", "--store", &schema.store]);
    assert!(out.contains("schema is up to date"), "{out}");
    let found = Command::new("psql")
        .args([
            DATABASE,
            "--no-psqlrc",
            "-Atc",
            &format!(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = '{}' AND table_name = 'jobs'",
                schema.name
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        "1",
        "no jobs table in schema {}: {}",
        schema.name,
        String::from_utf8_lossy(&found.stderr)
    );
    let c = counts(&schema.store);
    assert_eq!(c["completed"], 0, "{c}");
}

/// A schema never migrated is "not found" like a missing SQLite file: exit
/// 3 and a message naming the schema and how to create it (a new user got
/// exit 65 and had to guess).
#[test]
fn an_unmigrated_schema_exits_3_naming_it() {
    let schema = Schema::fresh();
    for args in [
        vec!["jobs", "counts", "--store", &schema.store],
        vec!["jobs", "show", "1", "--store", &schema.store],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(&schema.name), "{args:?}: {stderr}");
        assert!(stderr.contains("steward migrate"), "{args:?}: {stderr}");
    }
}

#[test]
fn unreachable_postgres_exits_69_with_a_message_naming_the_store() {
    let url = "postgres://postgres@127.0.0.1:1/test";
    for args in [
        vec!["jobs", "counts", "--store", url],
        vec!["enqueue", "noop", "--store", url],
        vec!["worker", "--store", url, "--http", "127.0.0.1:0"],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("opening store {url}")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn postgres_times_print_with_milliseconds_like_sqlite_in_text_and_json() {
    let schema = Schema::fresh();
    let store = schema.store.as_str();
    // Several jobs: a PostgreSQL time has microseconds, and one in a
    // thousand happens to end in 000.
    let out = run_ok(&["enqueue", "noop", "--count", "3", "--store", store]);
    let first: i64 = out
        .split("ids ")
        .nth(1)
        .and_then(|rest| rest.split("..").next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id range in {out:?}"));
    for id in first..first + 3 {
        let id = id.to_string();
        let json_text = run_ok(&["jobs", "show", &id, "--json", "--store", store]);
        assert!(
            json_text.ends_with('\n') && !json_text.ends_with("\n\n"),
            "{json_text:?}"
        );
        let json: Value = serde_json::from_str(&json_text).unwrap();
        let text = run_ok(&["jobs", "show", &id, "--store", store]);
        for name in ["created_at", "run_at"] {
            let in_json = json[name].as_str().unwrap_or_default();
            assert!(is_utc_millis(in_json), "json {name}: {in_json:?}");
            let line = format!("{name}:");
            let in_text = text
                .lines()
                .find_map(|l| l.strip_prefix(&line))
                .map(str::trim)
                .unwrap_or_else(|| panic!("no {name} in text:\n{text}"));
            assert_eq!(in_text, in_json, "{name}:\n{text}");
        }
    }
    let counts = run_ok(&["jobs", "counts", "--json", "--store", store]);
    assert!(
        counts.ends_with('\n') && !counts.ends_with("\n\n"),
        "{counts:?}"
    );
}
