//! Process-level tests: the test binary re-runs itself with `CHILD_ENV` set
//! and one test selected; in that mode the test body is the child (a real
//! process with a real runtime), and the parent watches its output and exit.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Set in the child's environment.
pub const CHILD_ENV: &str = "STEWARD_TEST_PROCESS_CHILD";

/// True when this test binary runs as a child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Logs to stdout, no colours, for the parent to read.
pub fn init_child_logs() {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
}

/// A multi-thread runtime with two workers, like the machine the issue was
/// shown on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A running child; killed if the test fails half-way.
pub struct Child {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    out: Option<JoinHandle<()>>,
    err: Option<JoinHandle<String>>,
}

impl Child {
    /// Runs test `test_name` of this binary as a child process.
    pub fn start(test_name: &str) -> Child {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        Child {
            child,
            lines,
            seen: Vec::new(),
            out: Some(out),
            err: Some(err),
        }
    }

    /// Waits for a stdout line equal to `line`, or panics with the output.
    pub fn wait_for_line(&mut self, line: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            match self
                .lines
                .recv_timeout(limit.saturating_sub(start.elapsed()))
            {
                Ok(l) => {
                    let found = l == line;
                    self.seen.push(l);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "the child never printed `{line}`; its output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends a real signal (`TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {signal} failed");
    }

    /// Waits up to `limit` for the child to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the child wrote (stdout then stderr); call after it exited.
    pub fn output(&mut self) -> String {
        if let Some(out) = self.out.take() {
            out.join().unwrap();
        }
        self.seen.extend(self.lines.try_iter());
        let err = self
            .err
            .take()
            .map(|e| e.join().unwrap())
            .unwrap_or_default();
        format!("{}\n--- stderr ---\n{err}", self.seen.join("\n"))
    }

    /// Everything read so far, without waiting for the child.
    pub fn output_so_far(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
