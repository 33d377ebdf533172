//! Multi-node guarantees on the PostgreSQL store, with real `steward worker`
//! processes, real signals and real connection faults against the server on
//! 127.0.0.1:5432. No skip: without the server these tests fail.
//!
//! Each test runs as a PostgreSQL role of its own, in a schema of its own,
//! both dropped afterwards. The role is what makes the connection faults
//! safe on a shared server: `pg_terminate_backend` and `CONNECTION LIMIT 0`
//! hit only this test's connections (matched by user name), never those of
//! tests running beside it. The checks read the tables with `psql` as
//! `postgres`, which the faults do not touch.
//!
//! "Exactly once" is read from two records that do not depend on each
//! other: each worker's journal (`--journal`: one line per successful run,
//! written by the built-in kinds before the outcome is sent to the store),
//! and each job's row (attempt, errors, state).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the tests' roles and schemas are created; also what the checks
/// connect to (as a superuser, so a fault injected on the test's role does
/// not blind them).
const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Serializes `GRANT`/`REVOKE` on the shared database row between tests
/// running at once: concurrent updates of one catalog row fail with "tuple
/// concurrently updated".
const GRANT_LOCK: i64 = 0x0053_5445_5741_5244;

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

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
struct Env {
    dir: tempfile::TempDir,
    /// Role and schema name (the same string).
    name: String,
    /// The store URL the test's processes use: as the role, in the schema.
    store: String,
    /// A second role, member of the first (so it may do all the first
    /// may), for a process whose connections are cut while the others'
    /// stay up.
    other: String,
    /// The store URL as the second role.
    other_store: String,
}

impl Env {
    fn new() -> Env {
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
    fn query(&self, sql: &str) -> String {
        psql(&sql.replace("{s}", &format!("\"{}\"", self.name)))
    }

    /// Jobs per state.
    fn counts(&self) -> BTreeMap<String, i64> {
        self.query("SELECT state, count(*) FROM {s}.jobs GROUP BY state")
            .lines()
            .map(|line| {
                let (state, n) = line.split_once('|').unwrap();
                (state.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    fn count(&self, state: &str) -> i64 {
        self.counts().get(state).copied().unwrap_or(0)
    }

    /// Every job: id → (state, attempt, error kinds).
    fn jobs(&self) -> BTreeMap<i64, JobRow> {
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
    fn terminate_backends(&self, role: &str) -> i64 {
        psql(&format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
             FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .parse()
        .unwrap()
    }

    /// Ends the `LISTEN` connections of `role`, leaving its pools alone;
    /// returns how many.
    fn terminate_listeners(&self, role: &str) -> i64 {
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
    fn allow_connections(&self, role: &str, allowed: bool) {
        let limit = if allowed { -1 } else { 0 };
        psql(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT {limit}"));
    }

    /// The enqueue command; returns the first id it printed.
    fn enqueue(&self, kind: &str, payload: &str, count: usize) -> i64 {
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
    fn worker(&self, name: &str, extra: &[&str]) -> Worker {
        self.worker_on(&self.store, name, extra)
    }

    /// A worker process on the store at `store`.
    fn worker_on(&self, store: &str, name: &str, extra: &[&str]) -> Worker {
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
    fn listeners(&self) -> i64 {
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
struct JobRow {
    state: String,
    attempt: i64,
    /// The kinds of its recorded errors, oldest first.
    errors: Vec<String>,
}

/// A worker process, killed if the test ends with it still running.
struct Worker {
    child: Child,
    /// Its worker id as job rows show it.
    id: String,
    log: PathBuf,
    journal: PathBuf,
}

impl Worker {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, and the exit must be clean.
    fn stop(&mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "worker {} did not stop cleanly ({status}):\n{}",
            self.id,
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ids of the jobs this worker ran to success, in order.
    fn journal(&self) -> Vec<i64> {
        std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The address of its health endpoints, from its start-up log line.
    fn http(&self) -> String {
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

fn run_ok(args: &[&str]) -> String {
    let out = steward().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "steward {args:?} failed ({:?}): {stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The HTTP status of `GET path` at `addr`, or `None` if nothing answers.
fn http_status(addr: &str, path: &str) -> Option<u16> {
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
fn distinct(who: &str, ids: &[i64]) -> BTreeSet<i64> {
    let set: BTreeSet<i64> = ids.iter().copied().collect();
    if set.len() != ids.len() {
        let mut seen = BTreeSet::new();
        let twice: Vec<_> = ids.iter().filter(|id| !seen.insert(**id)).collect();
        panic!("{who} ran jobs twice: {twice:?}");
    }
    set
}

/// Successful runs per job, across the journals of `workers`.
fn runs_per_job(workers: &[&Worker]) -> BTreeMap<i64, usize> {
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
fn assert_runs_match_rescues(id: i64, job: &JobRow, ran: &BTreeMap<i64, usize>) {
    let runs = ran.get(&id).copied().unwrap_or(0);
    assert!(runs >= 1, "job {id} completed without a successful run");
    assert!(
        runs <= 1 + job.errors.len(),
        "job {id} ran {runs} times with only {:?} on record",
        job.errors
    );
}

#[test]
fn three_worker_processes_run_20000_jobs_each_exactly_once() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    let mut workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| env.worker(name, &["--concurrency", "16"]))
        .collect();
    // All three listening before the jobs arrive, so all three share them.
    wait_until("three listening workers", Duration::from_secs(60), || {
        env.listeners() == 3
    });

    let first = env.enqueue("noop", "{}", 20_000);
    wait_until("20,000 jobs completed", Duration::from_secs(90), || {
        env.count("completed") == 20_000
    });
    for w in &mut workers {
        w.stop();
    }

    let counts = env.counts();
    assert_eq!(counts.values().sum::<i64>(), 20_000, "{counts:?}");
    let jobs = env.jobs();
    let expected: BTreeSet<i64> = (first..first + 20_000).collect();
    assert_eq!(jobs.keys().copied().collect::<BTreeSet<_>>(), expected);
    for (id, job) in &jobs {
        // One attempt and no error: no job was claimed twice or rescued.
        assert!(
            job.state == "completed" && job.attempt == 1 && job.errors.is_empty(),
            "job {id}: {job:?}"
        );
    }
    let mut ran = Vec::new();
    for w in &workers {
        let mine = w.journal();
        assert!(!mine.is_empty(), "worker {} ran no job", w.id);
        ran.extend(mine);
    }
    assert_eq!(distinct("the three workers", &ran), expected);
}

#[test]
fn sigkilled_leader_process_jobs_are_rescued_by_the_others_and_none_is_lost() {
    let env = Env::new();
    // Half a second each, 20 at a time per worker: every worker holds jobs
    // whenever it is killed.
    let first = env.enqueue("sleep", r#"{"ms":500}"#, 600);
    // The leaders' lease short, so the others take over the killed
    // leader's maintenance (the rescue) soon after its lease lapses.
    let fast = [
        "--concurrency",
        "20",
        "--lease",
        "3s",
        "--heartbeat",
        "300ms",
        "--rescue-every",
        "300ms",
        "--leader-ttl",
        "2s",
    ];
    let mut workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| env.worker(name, &fast))
        .collect();
    // The victim is the maintenance leader, the one node that rescues: the
    // hardest process to lose.
    let mut leader = String::new();
    wait_until("a maintenance leader", Duration::from_secs(60), || {
        leader = env.query(
            "SELECT holder FROM {s}.leaders WHERE role = 'maintenance' AND expires_at > now()",
        );
        !leader.is_empty()
    });
    let at = workers
        .iter()
        .position(|w| leader.starts_with(&format!("{}/", w.id)))
        .unwrap_or_else(|| panic!("leader {leader} is none of the workers"));
    let mut victim = workers.remove(at);
    let (mut survivor1, mut survivor2) = (workers.remove(0), workers.remove(0));
    let victim_running = format!(
        "SELECT count(*) FROM {{s}}.jobs WHERE state = 'running' AND worker = '{}'",
        victim.id
    );
    let mid_run = || {
        let on_victim: i64 = env.query(&victim_running).parse().unwrap();
        env.count("completed") >= 60 && on_victim >= 5
    };
    wait_until(
        "mid-run, with jobs on the victim",
        Duration::from_secs(60),
        mid_run,
    );
    victim.signal("-KILL");
    victim.child.wait().unwrap();
    // A statement the victim sent just before it died may still commit;
    // give it a moment. Its leases were renewed every 300 ms and last 3 s:
    // the rows it held still name it, and will until they are rescued.
    std::thread::sleep(Duration::from_millis(500));
    let lost: BTreeSet<i64> = env
        .query(&format!(
            "SELECT id FROM {{s}}.jobs WHERE state = 'running' AND worker = '{}'",
            victim.id
        ))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        !lost.is_empty(),
        "the victim held no job when it was killed"
    );

    wait_until("all 600 completed", Duration::from_secs(90), || {
        env.count("completed") == 600
    });
    survivor1.stop();
    survivor2.stop();

    let jobs = env.jobs();
    assert_eq!(jobs.len(), 600);
    for (id, job) in &jobs {
        assert_eq!(job.state, "completed", "job {id}: {job:?}");
        // A lost attempt is not counted against the job.
        assert_eq!(job.attempt, 1, "job {id}: {job:?}");
        if lost.contains(id) {
            assert_eq!(job.errors, ["worker_lost"], "job {id}: {job:?}");
        } else {
            assert!(
                job.errors.is_empty(),
                "job {id} was not the victim's: {job:?}"
            );
        }
    }
    // The survivors ran each job at most once, and between them every job
    // the victim held.
    let s1 = distinct(&survivor1.id, &survivor1.journal());
    let s2 = distinct(&survivor2.id, &survivor2.journal());
    assert!(s1.is_disjoint(&s2), "two survivors ran the same job");
    let survivors: BTreeSet<i64> = s1.union(&s2).copied().collect();
    assert!(lost.is_subset(&survivors), "a lost job never completed");
    // The victim's own runs: each job once, and the only jobs that also
    // ran elsewhere are the ones whose outcome it did not get to record.
    let by_victim = distinct("the victim", &victim.journal());
    let twice: BTreeSet<i64> = by_victim.intersection(&survivors).copied().collect();
    assert!(
        twice.is_subset(&lost),
        "ran twice though not lost: {:?}",
        twice.difference(&lost).collect::<Vec<_>>()
    );
    let all: BTreeSet<i64> = survivors.union(&by_victim).copied().collect();
    assert_eq!(all, (first..first + 600).collect::<BTreeSet<_>>());
    let logs = survivor1.log() + &survivor2.log();
    assert!(
        logs.contains("became leader") && logs.contains("rescued jobs whose worker was lost"),
        "no survivor took over and reported the rescue:\n{logs}"
    );
}

#[test]
fn stale_worker_process_writes_are_refused_after_rescue_on_postgres() {
    let env = Env::new();
    // Ten steps of 300 ms, checkpointed after each.
    let id = env.enqueue("checkpoint", r#"{"steps":10,"ms":300}"#, 1);
    let lease = [
        "--lease",
        "1s",
        "--heartbeat",
        "200ms",
        "--rescue-every",
        "200ms",
        "--leader-ttl",
        "2s",
    ];
    let checkpoint =
        format!("SELECT coalesce(checkpoint::text, '') FROM {{s}}.jobs WHERE id = {id}");
    let state = format!("SELECT state FROM {{s}}.jobs WHERE id = {id}");
    let mut paused = env.worker("paused", &lease);
    wait_until("two checkpoints", Duration::from_secs(30), || {
        env.query(&checkpoint).parse::<u32>().unwrap_or(0) >= 2
    });
    paused.signal("-STOP");

    // Another worker rescues the job once the lease has expired, resumes from
    // the checkpoint and completes it.
    let mut rescuer = env.worker("rescuer", &lease);
    wait_until("the rescuer's completion", Duration::from_secs(60), || {
        env.query(&state) == "completed"
    });
    rescuer.stop();

    // The paused worker wakes up believing it still owns the job: its
    // heartbeat, checkpoint and outcome all carry the old lease token.
    paused.signal("-CONT");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        paused.is_alive(),
        "the stale worker died:\n{}",
        paused.log()
    );
    paused.stop();

    let job = &env.jobs()[&id];
    assert_eq!(job.state, "completed", "{job:?}");
    assert_eq!(
        env.query(&checkpoint),
        "10",
        "the stale worker overwrote the checkpoint"
    );
    assert_eq!(
        job.errors,
        ["worker_lost"],
        "only the lost lease is on record"
    );
    assert_eq!(rescuer.journal(), [id]);
    assert_eq!(
        paused.journal(),
        Vec::<i64>::new(),
        "the stale attempt ran to success"
    );
    let log = paused.log();
    assert!(
        log.contains("lease lost"),
        "the stale worker did not report its refusal:\n{log}"
    );
}

#[test]
fn workers_ride_out_terminated_connections_and_an_outage_and_lose_no_job() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    // A poll interval far beyond the test's waits: a job enqueued while the
    // workers idle starts in time only if a wake-up reaches them.
    let opts = [
        "--concurrency",
        "10",
        "--lease",
        "2s",
        "--heartbeat",
        "300ms",
        "--rescue-every",
        "500ms",
        "--leader-ttl",
        "2s",
        "--poll-interval",
        "60s",
    ];
    let mut workers = vec![env.worker("w1", &opts), env.worker("w2", &opts)];
    let http: Vec<String> = workers.iter().map(Worker::http).collect();
    // Idle and listening: the listener starts with the first wait for work.
    wait_until("both workers listening", Duration::from_secs(60), || {
        env.listeners() == 2
    });
    let first = env.enqueue("sleep", r#"{"ms":250}"#, 600);
    wait_until("work under way", Duration::from_secs(60), || {
        env.count("completed") >= 40
    });

    // Every connection of both workers (pools and listeners) cut, three
    // times, while jobs run, heartbeat and complete.
    for _ in 0..3 {
        assert!(
            env.terminate_backends(&env.name) > 0,
            "no connection to terminate"
        );
        std::thread::sleep(Duration::from_millis(700));
        for w in &mut workers {
            assert!(w.is_alive(), "worker {} exited:\n{}", w.id, w.log());
        }
    }

    // Then an outage longer than the lease: no connection of the workers'
    // role is accepted for at least 4 s, and jobs that were running then
    // outlive their leases.
    let before = env.count("completed");
    assert!(before < 600, "the jobs were all done before the outage");
    env.allow_connections(&env.name, false);
    let outage = Instant::now();
    // Terminating again on every look also ends a connection whose
    // handshake was under way when the limit changed.
    wait_until("both workers not ready", Duration::from_secs(30), || {
        env.terminate_backends(&env.name);
        http.iter().all(|a| http_status(a, "/readyz") == Some(503))
    });
    // Enqueued (as another role) while no worker can hear it: its
    // notification is lost, and the workers must look for it themselves
    // once they are back.
    let admin_store = format!("{ADMIN}?schema={}", env.name);
    let during = run_ok(&["enqueue", "noop", "--store", &admin_store]);
    let during: i64 = during.trim().parse().unwrap();
    std::thread::sleep(Duration::from_secs(4).saturating_sub(outage.elapsed()));
    for w in &mut workers {
        assert!(
            w.is_alive(),
            "worker {} exited in the outage:\n{}",
            w.id,
            w.log()
        );
    }
    env.allow_connections(&env.name, true);

    wait_until("all 601 completed", Duration::from_secs(60), || {
        env.count("completed") == 601
    });
    wait_until("both workers ready again", Duration::from_secs(30), || {
        http.iter().all(|a| http_status(a, "/readyz") == Some(200))
    });
    // The listeners listen again: a job enqueued now starts long before
    // the next poll.
    wait_until("both listeners back", Duration::from_secs(30), || {
        env.listeners() == 2
    });
    let last = env.enqueue("noop", "{}", 1);
    wait_until(
        "the job enqueued after the faults",
        Duration::from_secs(20),
        || env.count("completed") == 602,
    );

    // Only the listeners cut, and kept from reconnecting, while the workers
    // idle (their pooled connections stay up): a notification sent now is
    // lost for good.
    env.allow_connections(&env.name, false);
    assert_eq!(env.terminate_listeners(&env.name), 2);
    wait_until("both listeners gone", Duration::from_secs(30), || {
        env.terminate_listeners(&env.name);
        env.listeners() == 0
    });
    let unheard = run_ok(&["enqueue", "noop", "--store", &admin_store]);
    let unheard: i64 = unheard.trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        env.count("completed"),
        602,
        "a job started with no wake-up and no poll due: the test proves nothing"
    );
    // Once a listener is back it cannot know what it missed: the workers
    // must look at the table then, not at the next poll a minute later.
    env.allow_connections(&env.name, true);
    wait_until(
        "the job whose notification was lost",
        Duration::from_secs(20),
        || env.count("completed") == 603,
    );
    for w in &mut workers {
        w.stop();
    }

    let counts = env.counts();
    assert_eq!(
        counts.get("completed"),
        Some(&603),
        "none lost, none stuck: {counts:?}"
    );
    let jobs = env.jobs();
    let ran = runs_per_job(&workers.iter().collect::<Vec<_>>());
    for id in (first..first + 600).chain([during, last, unheard]) {
        let job = &jobs[&id];
        assert!(
            job.errors.iter().all(|k| k == "worker_lost"),
            "job {id}: {job:?}"
        );
        assert_runs_match_rescues(id, job, &ran);
    }
    for w in &workers {
        let log = w.log();
        for said in [
            "postgres listener lost its connection",
            "postgres listener reconnected",
            "cannot claim jobs; backing off",
        ] {
            assert!(
                log.contains(said),
                "worker {} never logged {said:?}:\n{log}",
                w.id
            );
        }
    }
}

#[test]
fn worker_cut_off_past_its_lease_has_its_jobs_rescued_and_its_late_outcomes_refused() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    let opts = [
        "--concurrency",
        "10",
        "--lease",
        "2s",
        "--heartbeat",
        "300ms",
        "--rescue-every",
        "300ms",
        "--leader-ttl",
        "2s",
    ];
    let mut connected = env.worker("up", &opts);
    // The same store as a role of its own, whose connections alone are cut.
    let mut cut = env.worker_on(&env.other_store, "cut", &opts);
    let cut_http = cut.http();
    wait_until("both workers listening", Duration::from_secs(60), || {
        env.listeners() == 2
    });
    let first = env.enqueue("sleep", r#"{"ms":500}"#, 300);
    let cut_running = format!(
        "SELECT count(*) FROM {{s}}.jobs WHERE state = 'running' AND worker = '{}'",
        cut.id
    );
    wait_until(
        "jobs running on the worker to be cut off",
        Duration::from_secs(60),
        || env.query(&cut_running).parse::<i64>().unwrap() >= 5,
    );

    // A network partition of one worker: its connections end and no new
    // one is accepted, while the other worker carries on. The jobs it was
    // running end meanwhile, but it cannot record their outcomes.
    env.allow_connections(&env.other, false);
    let rescued = "SELECT count(*) FROM {s}.jobs WHERE errors @> '[{\"kind\":\"worker_lost\"}]'";
    wait_until(
        "the other worker rescuing the cut-off worker's jobs",
        Duration::from_secs(30),
        || {
            env.terminate_backends(&env.other);
            env.query(rescued).parse::<i64>().unwrap() > 0
        },
    );
    wait_until(
        "the cut-off worker not ready",
        Duration::from_secs(30),
        || http_status(&cut_http, "/readyz") == Some(503),
    );
    assert!(cut.is_alive(), "the cut-off worker exited:\n{}", cut.log());
    env.allow_connections(&env.other, true);

    wait_until("all 300 completed", Duration::from_secs(90), || {
        env.count("completed") == 300
    });
    wait_until(
        "the cut-off worker ready again",
        Duration::from_secs(30),
        || http_status(&cut_http, "/readyz") == Some(200),
    );
    connected.stop();
    cut.stop();

    let jobs = env.jobs();
    let ran = runs_per_job(&[&connected, &cut]);
    let mut lost = 0;
    for id in first..first + 300 {
        let job = &jobs[&id];
        assert_eq!(job.state, "completed", "job {id}: {job:?}");
        assert!(
            job.errors.iter().all(|k| k == "worker_lost") && job.errors.len() <= 1,
            "job {id}: {job:?}"
        );
        lost += job.errors.len();
        assert_runs_match_rescues(id, job, &ran);
    }
    assert!(lost > 0);
    let log = cut.log();
    assert!(
        log.contains("outcome refused") || log.contains("lease lost"),
        "the cut-off worker's late writes were not refused:\n{log}"
    );
}
