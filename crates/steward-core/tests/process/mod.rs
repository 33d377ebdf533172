//! Process-wide test helpers: logs from every thread, and child processes.
//!
//! Process-level tests: the test binary re-runs itself with `CHILD_ENV` set
//! and one test selected; in that mode the test body is the child (a real
//! process with a real runtime), and the parent watches its output and exit.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Everything logged in this test binary, by any thread: the watchdog logs
/// from a thread of its own, which a thread-local capture would miss.
#[derive(Clone, Default)]
pub struct GlobalLogs(Arc<Mutex<Vec<u8>>>);

impl GlobalLogs {
    pub fn get() -> GlobalLogs {
        static LOGS: OnceLock<GlobalLogs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = GlobalLogs::default();
            tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .try_init()
                .expect(
                    "no other global subscriber in a test binary that reads every thread's logs",
                );
            logs
        })
        .clone()
    }

    pub fn error_naming(&self, service: &str, needle: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .find(|l| l.contains(" ERROR ") && names_service(l, service) && l.contains(needle))
            .map(str::to_owned)
    }

    /// The first ERROR line containing every one of `needles`.
    pub fn error_with(&self, needles: &[&str]) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .find(|l| l.contains(" ERROR ") && needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
    }
}

impl io::Write for GlobalLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for GlobalLogs {
    type Writer = GlobalLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// True if a log line's `service` field is `name` (`service=name` or
/// `service="name"`).
fn names_service(line: &str, name: &str) -> bool {
    let bare = format!("service={name}");
    line.contains(&format!("service=\"{name}\""))
        || line
            .match_indices(&bare)
            .any(|(at, _)| matches!(line[at + bare.len()..].chars().next(), None | Some(' ')))
}

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
        self.wait_for(line, limit, |l| l == line)
    }

    /// Waits for a stdout line containing `needle`, or panics with the output.
    pub fn wait_for_line_containing(&mut self, needle: &str, limit: Duration) {
        self.wait_for(needle, limit, |l| l.contains(needle))
    }

    fn wait_for(&mut self, line: &str, limit: Duration, matches: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            match self
                .lines
                .recv_timeout(limit.saturating_sub(start.elapsed()))
            {
                Ok(l) => {
                    let found = matches(&l);
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

    /// Sends `signal` and waits up to `limit` for the child to exit: its
    /// exit status and everything it wrote. Fails the test, with the output
    /// so far, if it is still running.
    pub fn stop_with(&mut self, signal: &str, limit: Duration) -> (ExitStatus, String) {
        self.signal(signal);
        let Some(exit) = self.wait_exit(limit) else {
            panic!(
                "still running {limit:?} after SIG{signal}; output so far:\n{}",
                self.seen.join("\n")
            );
        };
        (exit, self.output())
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
