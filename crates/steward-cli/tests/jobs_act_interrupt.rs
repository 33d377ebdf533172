//! A bulk action interrupted half-way (the process killed, or Ctrl-C)
//! leaves whole chunks done and is finished by running it again, or from
//! the `--cursor` it printed. SQLite and PostgreSQL.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::act::{count, enqueue, json, postgres, sqlite};
use common::{run_ok, steward};

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
