//! `steward schedules ...`, driven as an operator would: the built binary on
//! SQLite temp files (and one test on the PostgreSQL server at
//! 127.0.0.1:5432, which fails, not skips, without it).

use std::path::Path;

use serde_json::Value;

mod common;
use common::{PgSchema, is_utc_millis, run_ok, steward};

/// A fresh, migrated SQLite store in a temp dir (kept alive by the guard).
fn sqlite_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("schedules.db").display());
    run_ok(&["migrate", "--store", &store]);
    (dir, store)
}

/// `steward ARGS --store STORE`: exit code, stdout, stderr.
fn run(store: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = steward()
        .args(args)
        .args(["--store", store])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `steward ARGS --store STORE`, which must succeed; its stdout.
fn ok(store: &str, args: &[&str]) -> String {
    run_ok(&[args, &["--store", store]].concat())
}

/// `steward ARGS --json --store STORE`, parsed.
fn json(store: &str, args: &[&str]) -> Value {
    let out = ok(store, &[args, &["--json"]].concat());
    assert!(
        out.ends_with('\n') && !out.ends_with("\n\n"),
        "{args:?}: JSON output must end with one newline: {out:?}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// The lines of `text` that are times in the CLI's one format.
fn time_lines(text: &str) -> usize {
    text.lines().filter(|l| is_utc_millis(l.trim())).count()
}

/// The `name: value` lines of `schedules show`'s text (indented lines are
/// details of the field above them).
fn text_field(text: &str, name: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n == name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no `{name}:` line in\n{text}"))
}

/// `schedules add` of a schedule with every option set.
const ADD_NIGHTLY: [&str; 17] = [
    "schedules",
    "add",
    "nightly",
    "0 3 * * *",
    "noop",
    "--tz",
    "Europe/Berlin",
    "--payload",
    r#"{"full":true}"#,
    "--misfire",
    "all:5",
    "--queue",
    "reports",
    "--priority",
    "-2",
    "--max-attempts",
    "7",
];

#[test]
fn a_schedule_goes_through_add_list_show_pause_resume_trigger_and_delete() {
    let (_dir, store) = sqlite_store();

    // add: created, with the next three fire times.
    let out = ok(&store, &ADD_NIGHTLY);
    assert!(out.contains("created"), "{out}");
    assert!(out.contains("nightly"), "{out}");
    assert_eq!(time_lines(&out), 3, "three next fire times: {out}");

    // The same definition again changes nothing.
    let out = ok(&store, &ADD_NIGHTLY);
    assert!(out.contains("unchanged"), "{out}");

    // A second schedule with the defaults, as JSON.
    let added = json(&store, &["schedules", "add", "hourly", "@hourly", "stamp"]);
    assert_eq!(added["saved"], "created", "{added}");
    assert_eq!(added["id"], "hourly", "{added}");
    assert_eq!(added["zone"], "UTC", "{added}");
    assert_eq!(added["payload"], Value::Null, "{added}");
    assert_eq!(added["misfire"], "once", "{added}");
    assert_eq!(added["queue"], "default", "{added}");
    assert_eq!(added["origin"], "operator", "{added}");
    assert_eq!(added["paused"], false, "{added}");
    let next = added["upcoming"].as_array().unwrap();
    assert_eq!(next.len(), 3, "{added}");
    assert!(next.iter().all(|t| is_utc_millis(t.as_str().unwrap())));
    // Changing it: updated.
    let changed = json(
        &store,
        &["schedules", "add", "hourly", "30 * * * *", "stamp"],
    );
    assert_eq!(changed["saved"], "updated", "{changed}");
    assert_eq!(changed["cron"], "30 * * * *", "{changed}");

    // list: a table for people, an array for scripts.
    let table = ok(&store, &["schedules", "list"]);
    let header = table.lines().next().unwrap();
    for column in ["id", "cron", "tz", "kind", "paused", "next_at", "last_tick"] {
        assert!(header.split_whitespace().any(|c| c == column), "{table}");
    }
    assert!(table.lines().any(|l| l.starts_with("nightly")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("hourly")), "{table}");
    let list = json(&store, &["schedules", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let nightly = list.iter().find(|s| s["id"] == "nightly").unwrap();
    assert_eq!(nightly["cron"], "0 3 * * *");
    assert_eq!(nightly["zone"], "Europe/Berlin");
    assert_eq!(nightly["kind"], "noop");
    assert_eq!(nightly["payload"]["full"], true);
    assert_eq!(nightly["misfire"], "all:5");
    assert_eq!(nightly["queue"], "reports");
    assert_eq!(nightly["priority"], -2);
    assert_eq!(nightly["max_attempts"], 7);
    assert_eq!(nightly["paused"], false);
    assert_eq!(nightly["last_tick"], Value::Null);
    assert!(is_utc_millis(nightly["created_at"].as_str().unwrap()));

    // show: the definition, the next N fire times, the ticks fired.
    let shown = json(&store, &["schedules", "show", "nightly"]);
    assert_eq!(shown["id"], "nightly");
    assert_eq!(shown["misfire"], "all:5");
    let upcoming = shown["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 5, "{shown}");
    assert!(upcoming.iter().all(|t| is_utc_millis(t.as_str().unwrap())));
    assert!(
        upcoming.windows(2).all(|w| w[0].as_str() < w[1].as_str()),
        "{shown}"
    );
    // 03:00 in Berlin is 01:00 or 02:00 UTC, depending on the season.
    assert!(
        upcoming.iter().all(|t| ["T01:00:00.000Z", "T02:00:00.000Z"]
            .iter()
            .any(|h| t.as_str().unwrap().ends_with(h))),
        "{shown}"
    );
    assert_eq!(shown["fired"], Value::Array(vec![]), "{shown}");
    let two = json(&store, &["schedules", "show", "nightly", "--next", "2"]);
    assert_eq!(two["upcoming"].as_array().unwrap().len(), 2, "{two}");
    let text = ok(&store, &["schedules", "show", "nightly"]);
    assert_eq!(text_field(&text, "id"), "nightly");
    assert_eq!(text_field(&text, "zone"), "Europe/Berlin");
    assert_eq!(text_field(&text, "misfire"), "all:5");
    assert_eq!(text_field(&text, "paused"), "false");
    assert_eq!(time_lines(&text), 5, "five upcoming times: {text}");

    // pause / resume.
    let out = ok(&store, &["schedules", "pause", "nightly"]);
    assert!(out.contains("paused"), "{out}");
    let shown = json(&store, &["schedules", "show", "nightly"]);
    assert_eq!(shown["paused"], true, "{shown}");
    assert_eq!(shown["upcoming"], Value::Array(vec![]), "{shown}");
    let paused = json(&store, &["schedules", "resume", "nightly"]);
    assert_eq!(paused["paused"], false, "{paused}");
    assert_eq!(
        json(&store, &["schedules", "pause", "nightly"])["paused"],
        true
    );
    ok(&store, &["schedules", "resume", "nightly"]);
    assert_eq!(
        json(&store, &["schedules", "show", "nightly"])["paused"],
        false
    );

    // trigger: a job with the schedule's kind, payload and options.
    let out = ok(&store, &["schedules", "trigger", "nightly"]);
    let job_id = out.trim();
    assert!(job_id.parse::<i64>().is_ok(), "a job id: {out:?}");
    let job = json(&store, &["jobs", "show", job_id]);
    assert_eq!(job["kind"], "noop", "{job}");
    assert_eq!(job["queue"], "reports", "{job}");
    assert_eq!(job["priority"], -2, "{job}");
    assert_eq!(job["max_attempts"], 7, "{job}");
    assert_eq!(job["payload"]["full"], true, "{job}");
    assert_eq!(job["state"], "available", "{job}");
    let triggered = json(&store, &["schedules", "trigger", "hourly"]);
    assert_eq!(triggered["schedule"], "hourly", "{triggered}");
    let other = triggered["job"].as_i64().unwrap();
    assert_eq!(
        json(&store, &["jobs", "show", &other.to_string()])["kind"],
        "stamp"
    );

    // delete: gone, and its job stays.
    let out = ok(&store, &["schedules", "delete", "nightly"]);
    assert!(out.contains("deleted"), "{out}");
    let deleted = json(&store, &["schedules", "delete", "hourly"]);
    assert_eq!(deleted["deleted"], true, "{deleted}");
    let (code, out, err) = run(&store, &["schedules", "show", "nightly"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("no schedule `nightly`"), "{err}");
    assert_eq!(json(&store, &["schedules", "list"]), Value::Array(vec![]));
    assert_eq!(json(&store, &["jobs", "show", job_id])["kind"], "noop");
}

/// Every bad input: its exit code, one line naming the problem, nothing on
/// stdout, and nothing written.
#[test]
fn bad_input_gets_its_exit_code_and_one_line_naming_the_problem_and_writes_nothing() {
    let (_dir, store) = sqlite_store();
    ok(&store, &["schedules", "add", "kept", "@daily", "noop"]);
    let before = json(&store, &["schedules", "list"]);
    let add = |extra: &[&'static str]| -> Vec<&'static str> {
        [&["schedules", "add"][..], extra].concat()
    };
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (add(&["x", "61 * * * *", "noop"]), 64, "61 * * * *"),
        (add(&["x", "every day", "noop"]), 64, "every day"),
        // A bad change to an existing schedule leaves it as it was.
        (add(&["kept", "* * *", "noop"]), 64, "* * *"),
        (
            add(&["x", "@daily", "noop", "--tz", "Nowhere/City"]),
            64,
            "Nowhere/City",
        ),
        (add(&["x", "@daily", "mystery"]), 64, "mystery"),
        (add(&["x", "@daily", "mystery"]), 64, "--any-kind"),
        (
            add(&["x", "@daily", "noop", "--misfire", "all:0"]),
            64,
            "misfire limit 0",
        ),
        (
            add(&["x", "@daily", "noop", "--misfire", "all:x"]),
            64,
            "all:x",
        ),
        (
            add(&["x", "@daily", "noop", "--misfire", "sometimes"]),
            64,
            "sometimes",
        ),
        (
            add(&["x", "@daily", "noop", "--payload", "{not json"]),
            64,
            "payload is not JSON",
        ),
        (
            add(&["x", "@daily", "noop", "--max-attempts", "0"]),
            64,
            "max_attempts",
        ),
        (add(&["", "@daily", "noop"]), 64, "schedule id"),
        (vec!["schedules", "show", "ghost"], 3, "no schedule `ghost`"),
        (
            vec!["schedules", "show", "ghost", "--json"],
            3,
            "no schedule `ghost`",
        ),
        (
            vec!["schedules", "pause", "ghost"],
            3,
            "no schedule `ghost`",
        ),
        (
            vec!["schedules", "resume", "ghost"],
            3,
            "no schedule `ghost`",
        ),
        (
            vec!["schedules", "delete", "ghost"],
            3,
            "no schedule `ghost`",
        ),
        (
            vec!["schedules", "trigger", "ghost"],
            3,
            "no schedule `ghost`",
        ),
    ];
    for (args, code, needle) in cases {
        let (got, out, err) = run(&store, &args);
        assert_eq!(got, Some(code), "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: printed {out:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(
            err.matches(needle).count(),
            1,
            "{args:?}: {needle:?} not in {err}, or more than once"
        );
        assert_eq!(
            json(&store, &["schedules", "list"]),
            before,
            "{args:?} changed the schedules"
        );
    }
    let (code, _, _) = run(&store, &["jobs", "counts"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        json(&store, &["jobs", "counts"])["available"],
        0,
        "no job enqueued"
    );
}

/// `--any-kind`: a kind only the user's own workers run.
#[test]
fn any_kind_accepts_a_kind_that_is_not_built_in() {
    let (_dir, store) = sqlite_store();
    let added = json(
        &store,
        &[
            "schedules",
            "add",
            "mail",
            "*/5 * * * *",
            "send_mail",
            "--any-kind",
        ],
    );
    assert_eq!(added["kind"], "send_mail", "{added}");
    let job = ok(&store, &["schedules", "trigger", "mail"]);
    assert_eq!(
        json(&store, &["jobs", "show", job.trim()])["kind"],
        "send_mail"
    );
}

/// Ids are data, not SQL or markup: quotes, SQL-looking text and unicode
/// come back exactly.
#[test]
fn ids_with_quotes_sql_and_unicode_round_trip() {
    let (_dir, store) = sqlite_store();
    let ids = [
        r#"it's "quoted""#,
        "x'; DROP TABLE schedules; --",
        "Robert'); DELETE FROM jobs; --",
        "日次レポート 🌙",
        "naïve café",
    ];
    for id in ids {
        let out = ok(&store, &["schedules", "add", id, "@daily", "noop"]);
        assert!(out.contains(id), "{out}");
    }
    let list = json(&store, &["schedules", "list"]);
    let mut listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let table = ok(&store, &["schedules", "list"]);
    for id in ids {
        assert!(table.contains(id), "{id} not in {table}");
        assert_eq!(json(&store, &["schedules", "show", id])["id"], id);
        let text = ok(&store, &["schedules", "show", id]);
        assert_eq!(text_field(&text, "id"), id);
        ok(&store, &["schedules", "pause", id]);
        ok(&store, &["schedules", "trigger", id]);
        ok(&store, &["schedules", "delete", id]);
    }
    assert_eq!(json(&store, &["schedules", "list"]), Value::Array(vec![]));
    assert_eq!(json(&store, &["jobs", "counts"])["available"], 5);
}

/// Like the `jobs` commands, `schedules` never creates a database.
#[test]
fn schedules_on_a_missing_database_exit_3_and_create_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let store = format!("sqlite://{}", path.display());
    for args in [
        vec!["schedules", "list"],
        vec!["schedules", "add", "x", "@daily", "noop"],
        vec!["schedules", "show", "x"],
    ] {
        let (code, out, err) = run(&store, &args);
        assert_eq!(code, Some(3), "{args:?}: {out}{err}");
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(!Path::new(&path).exists(), "{args:?} created the file");
    }
}

/// Every subcommand's help has a one-line example.
#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "add", "list", "show", "pause", "resume", "delete", "trigger",
    ] {
        let help = run_ok(&["schedules", sub, "--help"]);
        let example = help
            .lines()
            .find(|l| l.contains("steward schedules"))
            .unwrap_or_else(|| panic!("{sub}: no example in\n{help}"));
        assert!(example.contains(sub), "{sub}: {example}");
    }
    let help = run_ok(&["schedules", "--help"]);
    for sub in [
        "add", "list", "show", "pause", "resume", "delete", "trigger",
    ] {
        assert!(help.contains(sub), "{sub} not in\n{help}");
    }
}

/// The same on PostgreSQL, on a fresh schema.
#[test]
fn add_list_and_trigger_on_postgres() {
    let schema = PgSchema::fresh();
    let store = schema.store.as_str();
    run_ok(&["migrate", "--store", store]);
    let added = json(
        store,
        &[
            "schedules",
            "add",
            "pg 'nightly' 🌙",
            "0 3 * * *",
            "noop",
            "--tz",
            "America/New_York",
            "--payload",
            r#"{"n":1}"#,
        ],
    );
    assert_eq!(added["saved"], "created", "{added}");
    let list = json(store, &["schedules", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "pg 'nightly' 🌙");
    assert_eq!(list[0]["zone"], "America/New_York");
    assert_eq!(list[0]["payload"]["n"], 1);
    let triggered = json(store, &["schedules", "trigger", "pg 'nightly' 🌙"]);
    let job = triggered["job"].as_i64().unwrap().to_string();
    let job = json(store, &["jobs", "show", &job]);
    assert_eq!(job["kind"], "noop", "{job}");
    assert_eq!(job["payload"]["n"], 1, "{job}");
    let (code, _, err) = run(
        store,
        &[
            "schedules",
            "add",
            "bad",
            "@daily",
            "noop",
            "--tz",
            "Mars/Base",
        ],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("Mars/Base"), "{err}");
    let (code, _, err) = run(store, &["schedules", "show", "ghost"]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        json(store, &["schedules", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A schedule made here is fired by a `steward worker`'s scheduler, and
/// `show` and `list` report its ticks and their jobs.
#[test]
fn a_worker_fires_a_schedule_and_show_lists_the_ticks_with_their_jobs() {
    let (_dir, store) = sqlite_store();
    ok(
        &store,
        &["schedules", "add", "every-second", "* * * * * *", "noop"],
    );
    let mut worker = steward()
        .args(["worker", "--store", &store, "--http", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let shown = loop {
        let shown = json(&store, &["schedules", "show", "every-second"]);
        if shown["fired"].as_array().unwrap().len() >= 2 {
            break shown;
        }
        if std::time::Instant::now() > deadline {
            let _ = worker.kill();
            panic!("no two ticks fired within 60 s: {shown}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let _ = worker.wait();
    let fired = shown["fired"].as_array().unwrap();
    // Newest first, each tick a whole second with its own job.
    assert!(
        fired[0]["tick"].as_str() > fired[1]["tick"].as_str(),
        "{shown}"
    );
    for tick in fired {
        let at = tick["tick"].as_str().unwrap();
        assert!(is_utc_millis(at) && at.ends_with(".000Z"), "{shown}");
        let job = json(&store, &["jobs", "show", &tick["job"].to_string()]);
        assert_eq!(job["kind"], "noop", "{job}");
    }
    assert!(is_utc_millis(shown["next_at"].as_str().unwrap()), "{shown}");
    assert!(
        is_utc_millis(shown["last_tick"].as_str().unwrap()),
        "{shown}"
    );
    assert!(shown["last_job"].as_i64().is_some(), "{shown}");
    let text = ok(&store, &["schedules", "show", "every-second"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("  ") && l.contains(" job ")),
        "{text}"
    );
    let table = ok(&store, &["schedules", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("every-second"))
        .unwrap();
    assert!(!row.trim_end().ends_with('-'), "last_tick shown: {table}");
}
