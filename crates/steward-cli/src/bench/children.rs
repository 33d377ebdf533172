//! The `steward worker` processes of `steward bench jobs --workers N`:
//! started from this same binary, stopped with SIGTERM, and killed when the
//! bench leaves early (an error, Ctrl-C), so none outlives the bench.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::report::peak_rss_mib;

/// Running worker processes; dropping this kills the ones still running.
pub struct WorkerProcesses {
    workers: Vec<WorkerProcess>,
    /// Each worker's stdout and stderr, read when one fails.
    logs: tempfile::TempDir,
}

struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcesses {
    /// Starts `count` workers on the store at `url`.
    pub fn spawn(count: usize, url: &str, concurrency: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the steward binary")?;
        let logs = tempfile::tempdir().context("creating a directory for worker logs")?;
        let mut processes = WorkerProcesses {
            workers: Vec::with_capacity(count),
            logs,
        };
        for i in 0..count {
            let log = processes.logs.path().join(format!("worker-{i}.log"));
            let out = File::create(&log).context("creating a worker log")?;
            let err = out.try_clone().context("opening a worker log")?;
            // Pushed one by one: if a later spawn fails, dropping
            // `processes` kills the ones already started.
            let mut command = Command::new(&exe);
            // The bench's workers run with the defaults it measures, not
            // with whatever STEWARD_* settings (queues, lease...) are set here.
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("STEWARD_") {
                    command.env_remove(name);
                }
            }
            let child = command
                .args(["worker", "--store", url, "--http", "127.0.0.1:0"])
                .args(["--concurrency", &concurrency.to_string()])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("starting worker process {} worker", exe.display()))?;
            processes.workers.push(WorkerProcess { child, log });
        }
        Ok(processes)
    }

    /// Fails if a worker has exited, with the end of its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for w in &mut self.workers {
            if let Some(status) = w.child.try_wait().context("polling a worker process")? {
                bail!(
                    "worker process {} exited early ({status}):\n{}",
                    w.child.id(),
                    log_tail(&w.log)
                );
            }
        }
        Ok(())
    }

    /// Each worker's peak memory so far, MiB; read before they stop, since
    /// `/proc` forgets a process once it has been waited for.
    pub fn peak_mib(&self) -> Vec<Option<u64>> {
        self.workers
            .iter()
            .map(|w| peak_rss_mib(&w.child.id().to_string()))
            .collect()
    }

    /// Asks every worker to stop (SIGTERM: a graceful drain) and waits up
    /// to `grace` for them, then kills what is left. Fails if any did not
    /// exit cleanly.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        let pids: Vec<String> = self
            .workers
            .iter()
            .map(|w| w.child.id().to_string())
            .collect();
        // std has no signal but SIGKILL; `kill` is as portable as /proc.
        let sent = Command::new("kill")
            .arg("-TERM")
            .args(&pids)
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed ({sent})", pids.join(" "));
        }
        let deadline = Instant::now() + grace;
        let mut failures = Vec::new();
        for w in &mut self.workers {
            loop {
                if let Some(status) = w.child.try_wait().context("waiting for a worker")? {
                    if !status.success() {
                        failures.push(format!(
                            "worker process {} stopped with {status}:\n{}",
                            w.child.id(),
                            log_tail(&w.log)
                        ));
                    }
                    break;
                }
                if Instant::now() > deadline {
                    failures.push(format!(
                        "worker process {} did not stop within {grace:?} of SIGTERM; killed",
                        w.child.id()
                    ));
                    break; // `Drop` kills it.
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(failures.join("\n"))
        }
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        for w in &mut self.workers {
            if let Ok(None) = w.child.try_wait() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

/// The last lines of a worker's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
