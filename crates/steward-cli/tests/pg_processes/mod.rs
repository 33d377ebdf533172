//! The harness of the PostgreSQL fault tests: a role and a schema per test
//! (dropped afterwards), `steward worker` processes with their logs and
//! journals, faults injected on the test's own role, and reads of the jobs
//! table through `psql`.
#![allow(dead_code)] // each test crate uses its own part of this module

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::common::run_ok;
use crate::common::steward;

/// Where the tests' roles and schemas are created; also what the checks
/// connect to (as a superuser, so a fault injected on the test's role does
/// not blind them).
pub const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Serializes `GRANT`/`REVOKE` on the shared database row between tests
/// running at once: concurrent updates of one catalog row fail with "tuple
/// concurrently updated".
const GRANT_LOCK: i64 = 0x0053_5445_5741_5244;

/// Runs `sql` through `psql` as `postgres`; returns its unaligned output.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            ADMIN,
            "--quiet",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql must be on PATH");
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One test's role, schema and directory (logs, journals).
pub struct Env {
    dir: tempfile::TempDir,
    /// Role and schema name (the same string).
    pub name: String,
    /// The store URL the test's processes use: as the role, in the schema.
    pub store: String,
    /// A second role, member of the first (so it may do all the first
    /// may), for a process whose connections are cut while the others'
    /// stay up.
    pub other: String,
    /// The store URL as the second role.
    pub other_store: String,
}

impl Env {
    pub fn new() -> Env {
        let name = format!("pgfault_{:016x}", rand::random::<u64>());
        let other = format!("{name}_b");
        // A password, though this machine trusts loopback: a cluster set up
        // by `.ci/run` trusts only `postgres` there and asks other roles
        // for one.
        let password = format!("{:016x}", rand::random::<u64>());
        psql(&format!(
            "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}';
             CREATE ROLE \"{other}\" LOGIN PASSWORD '{password}' IN ROLE \"{name}\";
             BEGIN;
             SELECT pg_advisory_xact_lock({GRANT_LOCK});
             GRANT CREATE ON DATABASE test TO \"{name}\";
             COMMIT;"
        ));
        let at = "127.0.0.1:5432/test";
        let store = format!("postgres://{name}:{password}@{at}?schema={name}");
        let other_store = format!("postgres://{other}:{password}@{at}?schema={name}");
        Env {
            dir: tempfile::tempdir().unwrap(),
            name,
            store,
            other,
            other_store,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `sql` with `{s}` replaced by the test's schema.
    pub fn query(&self, sql: &str) -> String {
        psql(&sql.replace("{s}", &format!("\"{}\"", self.name)))
    }

    /// Jobs per state.
    pub fn counts(&self) -> BTreeMap<String, i64> {
        self.query("SELECT state, count(*) FROM {s}.jobs GROUP BY state")
            .lines()
            .map(|line| {
                let (state, n) = line.split_once('|').unwrap();
                (state.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    pub fn count(&self, state: &str) -> i64 {
        self.counts().get(state).copied().unwrap_or(0)
    }

    /// Every job: id → (state, attempt, error kinds).
    pub fn jobs(&self) -> BTreeMap<i64, JobRow> {
        self.query(
            "SELECT id, state, attempt, \
                 coalesce((SELECT string_agg(e->>'kind', ',') FROM jsonb_array_elements(errors) e), '') \
             FROM {s}.jobs ORDER BY id",
        )
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            let errors = f[3]
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
            (
                f[0].parse().unwrap(),
                JobRow {
                    state: f[1].to_string(),
                    attempt: f[2].parse().unwrap(),
                    errors,
                },
            )
        })
        .collect()
    }

    /// Ends every connection of `role`; returns how many.
    pub fn terminate_backends(&self, role: &str) -> i64 {
        psql(&format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
             FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .parse()
        .unwrap()
    }

    /// Ends the `LISTEN` connections of `role`, leaving its pools alone;
    /// returns how many.
    pub fn terminate_listeners(&self, role: &str) -> i64 {
        psql(&format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
             FROM pg_stat_activity WHERE usename = '{role}' \
             AND application_name = 'steward-listener'"
        ))
        .parse()
        .unwrap()
    }

    /// From now on, `role` cannot connect (`false`) or can again (`true`).
    /// Its connections that are open stay open: end them with
    /// [`Env::terminate_backends`].
    pub fn allow_connections(&self, role: &str, allowed: bool) {
        let limit = if allowed { -1 } else { 0 };
        psql(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT {limit}"));
    }

    /// The enqueue command; returns the first id it printed.
    pub fn enqueue(&self, kind: &str, payload: &str, count: usize) -> i64 {
        let out = run_ok(&[
            "enqueue",
            kind,
            "--payload",
            payload,
            "--count",
            &count.to_string(),
            "--store",
            &self.store,
        ]);
        // "ID" for one job, "enqueued N jobs (ids A..=B)" for several.
        let first = out.split("ids ").nth(1).unwrap_or(&out);
        first
            .trim()
            .split("..")
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no id in {out:?}"))
    }

    /// A worker process named `name` (its worker id in job rows is
    /// `name/PID`), logging to `name.log`, journaling to `name.journal`.
    pub fn worker(&self, name: &str, extra: &[&str]) -> Worker {
        self.worker_on(&self.store, name, extra)
    }

    /// A worker process on the store at `store`.
    pub fn worker_on(&self, store: &str, name: &str, extra: &[&str]) -> Worker {
        let log = self.path(&format!("{name}.log"));
        let journal = self.path(&format!("{name}.journal"));
        let file = std::fs::File::create(&log).unwrap();
        let mut args = vec![
            "worker",
            "--store",
            store,
            "--http",
            "127.0.0.1:0",
            "--journal",
            journal.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let child = steward()
            .args(&args)
            .env("RUST_LOG", "info")
            .env("HOSTNAME", name)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Worker {
            id: format!("{name}/{}", child.id()),
            child,
            log,
            journal,
        }
    }

    /// How many of the test's connections are listening for wake-ups.
    pub fn listeners(&self) -> i64 {
        psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename IN ('{}', '{}') \
             AND application_name = 'steward-listener' AND query LIKE 'LISTEN%'",
            self.name, self.other
        ))
        .parse()
        .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Best effort, and no panic while a failed test unwinds: a leftover
        // role or schema must not hide the test's own failure.
        let name = &self.name;
        let other = &self.other;
        let sql = format!(
            "ALTER ROLE \"{name}\" CONNECTION LIMIT 0;
             ALTER ROLE \"{other}\" CONNECTION LIMIT 0;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE usename IN ('{name}', '{other}');
             DROP SCHEMA IF EXISTS \"{name}\" CASCADE;
             DROP ROLE IF EXISTS \"{other}\";
             BEGIN;
             SELECT pg_advisory_xact_lock({GRANT_LOCK});
             REVOKE ALL ON DATABASE test FROM \"{name}\";
             COMMIT;
             DROP ROLE IF EXISTS \"{name}\";"
        );
        let out = Command::new("psql")
            .args([
                ADMIN,
                "--quiet",
                "--no-psqlrc",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
            ])
            .arg(&sql)
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "could not drop role and schema {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => eprintln!("could not run psql to drop {name}: {err}"),
        }
    }
}

#[derive(Debug)]
pub struct JobRow {
    pub state: String,
    pub attempt: i64,
    /// The kinds of its recorded errors, oldest first.
    pub errors: Vec<String>,
}

/// A worker process, killed if the test ends with it still running.
pub struct Worker {
    pub child: Child,
    /// Its worker id as job rows show it.
    pub id: String,
    log: PathBuf,
    journal: PathBuf,
}

impl Worker {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, and the exit must be clean.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "worker {} did not stop cleanly ({status}):\n{}",
            self.id,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ids of the jobs this worker ran to success, in order.
    pub fn journal(&self) -> Vec<i64> {
        std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The address of its health endpoints, from its start-up log line.
    pub fn http(&self) -> String {
        let mut addr = None;
        wait_until(
            "the worker's start-up line",
            Duration::from_secs(30),
            || {
                addr = self
                    .log()
                    .split("http=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_string);
                addr.is_some()
            },
        );
        addr.unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The HTTP status of `GET path` at `addr`, or `None` if nothing answers.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Every id in `ids` at most once; returns them as a set.
pub fn distinct(who: &str, ids: &[i64]) -> BTreeSet<i64> {
    let set: BTreeSet<i64> = ids.iter().copied().collect();
    if set.len() != ids.len() {
        let mut seen = BTreeSet::new();
        let twice: Vec<_> = ids.iter().filter(|id| !seen.insert(**id)).collect();
        panic!("{who} ran jobs twice: {twice:?}");
    }
    set
}

/// Successful runs per job, across the journals of `workers`.
pub fn runs_per_job(workers: &[&Worker]) -> BTreeMap<i64, usize> {
    let mut ran = BTreeMap::new();
    for w in workers {
        for id in w.journal() {
            *ran.entry(id).or_default() += 1;
        }
    }
    ran
}

/// A completed job ran to success at least once, and more often only after
/// a rescue that is on its record: the run whose outcome could not be
/// written (its worker lost or cut off) and the rescued run.
pub fn assert_runs_match_rescues(id: i64, job: &JobRow, ran: &BTreeMap<i64, usize>) {
    let runs = ran.get(&id).copied().unwrap_or(0);
    assert!(runs >= 1, "job {id} completed without a successful run");
    assert!(
        runs <= 1 + job.errors.len(),
        "job {id} ran {runs} times with only {:?} on record",
        job.errors
    );
}
