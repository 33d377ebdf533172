//! What `steward jobs ...` prints on SQLite, checked as a newcomer meets it
//! (issue 12, item 6): no surprise file, every field in text, one time format,
//! JSON that ends with one newline, log lines stamped like the rest.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{is_utc_millis, run_ok, steward};

/// `jobs show` of a delayed job in a fresh store, as JSON and as text.
fn one_job_shown_both_ways() -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let id = run_ok(&["enqueue", "noop", "--delay", "1h", "--store", &store]);
    let id = id.trim();
    let json: Value =
        serde_json::from_str(&run_ok(&["jobs", "show", id, "--json", "--store", &store])).unwrap();
    let text = run_ok(&["jobs", "show", id, "--store", &store]);
    (json, text)
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The `name: value` lines of `jobs show`'s text (indented lines are details
/// of the field above them).
fn text_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && !l.is_empty())
        .map(|l| {
            let (name, value) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("not a `name: value` line: {l:?}\n{text}"));
            (name.to_string(), value.trim().to_string())
        })
        .collect()
}

#[test]
fn read_only_commands_on_a_missing_database_say_so_and_create_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let store = format!("sqlite://{}", path.display());
    for args in [
        vec!["jobs", "counts"],
        vec!["jobs", "counts", "--json"],
        vec!["jobs", "show", "1"],
        vec!["jobs", "show", "1", "--json"],
        vec!["jobs", "retry", "1"],
        vec!["jobs", "cancel", "1"],
    ] {
        let out = steward()
            .args([&args[..], &["--store", &store]].concat())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no database at {}", path.display())),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("steward migrate --store {store}")),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: printed something");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn jobs_show_text_names_every_field_of_the_json_with_the_same_value() {
    let (json, text) = one_job_shown_both_ways();
    let fields = text_fields(&text);
    let text_names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = text_names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), text_names.len(), "a field twice:\n{text}");
    let mut json_names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    json_names.sort_unstable();
    assert_eq!(sorted, json_names, "text:\n{text}\njson: {json}");
    for (name, value) in &fields {
        if let Some(s) = json[name.as_str()].as_str() {
            assert_eq!(value, s, "{name} differs:\n{text}\njson: {json}");
        }
    }
}

#[test]
fn times_are_utc_rfc3339_with_milliseconds_in_text_and_json() {
    let (json, text) = one_job_shown_both_ways();
    let fields = text_fields(&text);
    for name in ["created_at", "run_at"] {
        let in_json = json[name].as_str().unwrap_or_default();
        assert!(is_utc_millis(in_json), "json {name}: {in_json:?}");
        let (_, in_text) = fields
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in text:\n{text}"));
        assert!(is_utc_millis(in_text), "text {name}: {in_text:?}\n{text}");
    }
}

#[test]
fn json_output_ends_with_exactly_one_newline() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let id = run_ok(&["enqueue", "noop", "--store", &store]);
    for args in [
        vec!["jobs", "counts", "--json"],
        vec!["jobs", "show", id.trim(), "--json"],
    ] {
        let out = run_ok(&[&args[..], &["--store", &store]].concat());
        assert!(
            out.ends_with('\n') && !out.ends_with("\n\n"),
            "{args:?}: {out:?}"
        );
        serde_json::from_str::<Value>(&out).unwrap();
    }
}

#[test]
fn log_lines_carry_the_same_time_format_as_jobs_show() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let mut worker = steward()
        .args(["worker", "--store", &store, "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let read = BufReader::new(worker.stdout.take().unwrap()).read_line(&mut first);
    worker.kill().unwrap();
    worker.wait().unwrap();
    read.unwrap();
    let stamp = first.split_whitespace().next().unwrap_or_default();
    assert!(is_utc_millis(stamp), "log line: {first:?}");
}

/// `--json` gives the payload and checkpoint as JSON values, not as strings
/// holding JSON, so a script reads `.payload.steps` directly (a new user
/// found them quoted). The text shows them as compact JSON.
#[test]
fn payload_and_checkpoint_are_json_values_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let id = run_ok(&[
        "enqueue",
        "checkpoint",
        "--payload",
        r#"{"steps": 2, "ms": 1, "note": "a \"quoted\" word"}"#,
        "--store",
        &store,
    ]);
    let id = id.trim();
    let json: Value =
        serde_json::from_str(&run_ok(&["jobs", "show", id, "--json", "--store", &store])).unwrap();
    assert_eq!(json["payload"]["steps"], 2, "{json}");
    assert_eq!(json["payload"]["note"], "a \"quoted\" word", "{json}");
    assert_eq!(json["checkpoint"], Value::Null, "{json}");
    let text = run_ok(&["jobs", "show", id, "--store", &store]);
    let payload = text_fields(&text)
        .into_iter()
        .find(|(name, _)| name == "payload")
        .expect("a payload line")
        .1;
    let parsed: Value = serde_json::from_str(&payload).expect("the text's payload is JSON");
    assert_eq!(parsed, json["payload"], "{text}");
}
