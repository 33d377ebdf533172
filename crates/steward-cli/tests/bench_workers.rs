//! `steward bench jobs --workers N`: the bench starts real `steward worker`
//! processes on its own store, and prints the same figures as with its
//! in-process worker. A tiny run, to check the wiring, never the speed.

use std::process::{Command, Output};

fn bench(store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["bench", "jobs", "--store", store, "--workers", "2"])
        .args(["--jobs", "300", "--probes", "5", "--concurrency", "4"])
        .output()
        .unwrap()
}

fn assert_figures(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(text.contains("enqueue: "), "{text}");
    assert!(
        text.contains("(300 jobs, 2 worker processes, concurrency 4)"),
        "{text}"
    );
    assert!(
        text.contains("(5 single enqueues to idle worker processes)"),
        "{text}"
    );
    assert!(text.contains("MiB (bench), workers "), "{text}");
}

#[test]
fn bench_jobs_with_worker_processes_on_sqlite_prints_every_figure() {
    assert_figures(&bench("sqlite"));
}

#[test]
fn bench_jobs_with_worker_processes_on_postgres_prints_every_figure() {
    assert_figures(&bench("postgres://postgres@127.0.0.1:5432/test"));
}

#[test]
fn bench_jobs_refuses_zero_workers_as_bad_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["bench", "jobs", "--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
