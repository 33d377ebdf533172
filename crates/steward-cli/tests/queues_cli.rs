//! `steward queues list | pause | resume` (issue 14, part 3), against a
//! separate `steward worker` process, on SQLite and on PostgreSQL: a pause
//! stops the worker claiming the queue (other queues run on), a resume lets
//! the jobs that waited run; repeats are no-ops, an unknown queue exits 3
//! naming the known ones, a bad name exits 64.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{PgSchema, run_ok, steward};
use serde_json::Value;

const POLL: &str = "200ms";

fn run(args: &[&str]) -> Output {
    steward().args(args).output().expect("run steward")
}

fn queues(store: &str) -> Vec<Value> {
    let out = run_ok(&["queues", "list", "--json", "--store", store]);
    assert!(
        out.ends_with("}\n]\n") || out == "[]\n",
        "one JSON value and one newline: {out:?}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn queue(store: &str, name: &str) -> Value {
    queues(store)
        .into_iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("queue {name} is listed"))
}

fn count(store: &str, name: &str, state: &str) -> u64 {
    queue(store, name)["counts"][state]
        .as_u64()
        .expect("a count")
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn enqueue(store: &str, queue: &str, n: usize) {
    let n = n.to_string();
    let payload = r#"{"ms":50}"#;
    run_ok(&[
        "enqueue",
        "sleep",
        "--payload",
        payload,
        "--queue",
        queue,
        "--count",
        &n,
        "--store",
        store,
    ]);
}

fn worker(store: &str) -> Child {
    steward()
        .args([
            "worker",
            "--store",
            store,
            "--queues",
            "mail,other",
            "--concurrency",
            "2",
        ])
        .args(["--poll-interval", POLL, "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start a worker")
}

fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let exit = child.wait().expect("wait for the worker");
    assert_eq!(exit.code(), Some(0), "the worker stops cleanly");
}

fn pause_resume(store: &str) {
    enqueue(store, "mail", 3);
    enqueue(store, "other", 1);
    let worker = worker(store);
    wait_until("the first mail jobs ran", || {
        count(store, "mail", "completed") == 3
    });

    let out = run_ok(&["queues", "pause", "mail", "--json", "--store", store]);
    let paused: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(paused["queue"], "mail");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["changed"], true);
    assert!(out.ends_with("}\n") && !out.ends_with("\n\n"), "{out:?}");
    let listed = queue(store, "mail");
    assert_eq!(listed["paused"], true);
    assert!(
        listed["paused_since"]
            .as_str()
            .is_some_and(common::is_utc_millis),
        "{listed}"
    );

    // Within one poll interval the worker has heard; give it ample slack.
    std::thread::sleep(Duration::from_secs(1));
    enqueue(store, "mail", 4);
    enqueue(store, "other", 2);
    wait_until("other ran on", || count(store, "other", "completed") == 3);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        count(store, "mail", "available"),
        4,
        "paused: mail's new jobs wait"
    );
    assert_eq!(count(store, "mail", "running"), 0);

    let again = run_ok(&["queues", "pause", "mail", "--store", store]);
    assert!(again.contains("already paused"), "{again}");
    let out = run_ok(&["queues", "resume", "mail", "--json", "--store", store]);
    let resumed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (&resumed["paused"], &resumed["changed"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    wait_until("mail ran after the resume", || {
        count(store, "mail", "completed") == 7
    });
    let again = run_ok(&["queues", "resume", "mail", "--store", store]);
    assert!(again.contains("not paused"), "{again}");
    stop(worker);

    let table = run_ok(&["queues", "list", "--store", store]);
    assert!(
        table.lines().count() == 3 && table.contains("mail") && table.contains("other"),
        "{table}"
    );
}

fn refusals(store: &str) {
    for verb in ["pause", "resume"] {
        let out = run(&["queues", verb, "mial", "--store", store]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{verb} of an unknown queue: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("mial") && stderr.contains("mail, other"),
            "{stderr}"
        );
        let long = "q".repeat(129);
        for bad in ["", long.as_str(), "a\tb"] {
            let out = run(&["queues", verb, bad, "--store", store]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{verb} {bad:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        }
    }
    assert!(
        queues(store).iter().all(|q| q["paused"] == false),
        "nothing paused"
    );
}

#[test]
fn sqlite_queues_pause_and_resume_a_running_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    run_ok(&["migrate", "--store", &store]);
    pause_resume(&store);
    refusals(&store);
}

#[test]
fn postgres_queues_pause_and_resume_a_running_worker() {
    let schema = PgSchema::fresh();
    run_ok(&["migrate", "--store", &schema.store]);
    pause_resume(&schema.store);
    refusals(&schema.store);
}
