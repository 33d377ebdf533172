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

mod common;
mod pg_processes;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pg_processes::*;

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

/// Issue 11 (4) on PostgreSQL: one job that kills its process, beside 20
/// ordinary 1.5 s jobs at concurrency 16, the worker restarted whenever it
/// dies. Every crash rescues every job the process held, but a suspect
/// (rescued twice) never runs beside another, so only the killer keeps
/// collecting rescues: it ends dead after `max_rescues`, the 20 others
/// complete. The SQLite twin is in `faults.rs`.
#[test]
fn a_job_that_kills_its_worker_takes_no_innocent_job_with_it_on_postgres() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    let killer = env.enqueue("abort", "{}", 1);
    let first = env.enqueue("sleep", r#"{"ms":1500}"#, 20);
    let args = [
        "--concurrency",
        "16",
        "--lease",
        "1s",
        "--heartbeat",
        "200ms",
        "--rescue-every",
        "200ms",
        "--leader-ttl",
        "1s",
        "--crash-kinds",
    ];
    // Every job final, however it ended.
    let settled = || env.count("completed") + env.count("dead") == 21;
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut starts = 0;
    while !settled() {
        starts += 1;
        let mut w = env.worker(&format!("w{starts}"), &args);
        loop {
            if !w.is_alive() {
                break; // killed by the abort job: start another
            }
            if settled() {
                w.stop();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not settled after {starts} worker starts: {:?}",
                env.counts()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let jobs = env.jobs();
    let dead = &jobs[&killer];
    assert_eq!(dead.state, "dead", "the killer: {dead:?}");
    let last = env.query(&format!(
        "SELECT errors->-1->>'message' FROM {{s}}.jobs WHERE id = {killer}"
    ));
    assert_eq!(last, "worker lost 3 times");
    for id in first..first + 20 {
        assert_eq!(jobs[&id].state, "completed", "job {id}: {:?}", jobs[&id]);
    }
}
