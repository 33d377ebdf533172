//! `steward bench jobs` with its in-process worker also measures single
//! enqueues made by a second process (the hidden `bench probe-enqueuer`).
//! A tiny run, to check the wiring, never the speed.

use std::process::Command;

fn assert_cross_process_line(store: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["bench", "jobs", "--store", store])
        .args(["--jobs", "300", "--probes", "5", "--concurrency", "4"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert!(
        text.contains("(5 single enqueues to an idle worker)"),
        "{text}"
    );
    assert!(
        text.contains("latency from another process: p50="),
        "{text}"
    );
    assert!(
        text.contains("(5 single enqueues by a second process to an idle worker)"),
        "{text}"
    );
}

#[test]
fn bench_jobs_on_sqlite_prints_a_cross_process_latency_line() {
    assert_cross_process_line("sqlite");
}

#[test]
fn bench_jobs_on_postgres_prints_a_cross_process_latency_line() {
    assert_cross_process_line("postgres://postgres@127.0.0.1:5432/test");
}
