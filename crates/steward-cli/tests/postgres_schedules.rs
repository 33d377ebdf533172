//! Recurring schedules across processes on PostgreSQL (issue 13, item 3):
//! three `steward worker` processes run the scheduler; the leader is
//! killed, then another is frozen past its lease and thawed (for a moment
//! two nodes believe they lead). Every tick of four per-second schedules,
//! a few hundred in all, is enqueued exactly once and none is missed.
//!
//! The record read is the jobs table: each tick's job has the tick as its
//! `run_at`. No skip: without the server this test fails.

mod common;
mod pg_processes;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pg_processes::*;

const SCHEDULES: [&str; 4] = [
    "every-second-a",
    "every-second-b",
    "every-second-c",
    "every-second-d",
];

/// The worker (by name) that leads the `scheduler` role now, if any.
fn leader(env: &Env) -> Option<String> {
    let holder =
        env.query("SELECT holder FROM {s}.leaders WHERE role = 'scheduler' AND expires_at > now()");
    holder
        .split('/')
        .next()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// The ticks enqueued per schedule, as Unix seconds, in order. The job's
/// payload names its schedule.
fn ticks(env: &Env) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in env
        .query("SELECT payload->>'schedule', extract(epoch FROM run_at)::bigint FROM {s}.jobs ORDER BY 1, 2")
        .lines()
    {
        let (id, t) = line.split_once('|').expect("two columns");
        out.entry(id.to_string()).or_default().push(t.parse().expect("seconds"));
    }
    out
}

fn wait_for_a_leader(env: &Env, not: Option<&str>) -> String {
    let mut found = None;
    wait_until("a scheduler leader", Duration::from_secs(60), || {
        found = leader(env).filter(|l| Some(l.as_str()) != not);
        found.is_some()
    });
    found.expect("a leader")
}

fn run_for(d: Duration) {
    std::thread::sleep(d);
}

#[test]
fn three_workers_enqueue_every_tick_of_per_second_schedules_exactly_once_through_failovers() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    for id in SCHEDULES {
        let payload = format!(r#"{{"schedule":"{id}"}}"#);
        run_ok(&[
            "schedules",
            "add",
            id,
            "* * * * * *",
            "noop",
            "--payload",
            &payload,
            "--misfire",
            "all:1000",
            "--store",
            &env.store,
        ]);
    }
    // A short lease so that a failover takes seconds, not the default 13.
    let args = ["--leader-ttl", "3s", "--concurrency", "8"];
    let mut workers: BTreeMap<String, Worker> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|name| (name.to_string(), env.worker(name, &args)))
        .collect();

    let first = wait_for_a_leader(&env, None);
    run_for(Duration::from_secs(25));
    // The leader dies without a word: its lease runs out, another takes over
    // and enqueues the ticks that fell meanwhile (they are within the grace).
    workers.get_mut(&first).expect("leader").signal("-KILL");
    let second = wait_for_a_leader(&env, Some(&first));
    run_for(Duration::from_secs(25));
    // The second leader freezes past its lease (a long GC pause, a stopped
    // VM) and thaws after a third took over: it must not enqueue again.
    let frozen = workers.get(&second).expect("leader");
    frozen.signal("-STOP");
    let third = wait_for_a_leader(&env, Some(&second));
    frozen.signal("-CONT");
    run_for(Duration::from_secs(25));
    let stop_at = Instant::now();
    for (name, w) in workers.iter_mut().filter(|(n, _)| **n != first) {
        w.stop();
        assert!(
            stop_at.elapsed() < Duration::from_secs(30),
            "{name} stopped slowly"
        );
    }

    let ticks = ticks(&env);
    assert_eq!(
        ticks.len(),
        SCHEDULES.len(),
        "every schedule fired: {:?}",
        ticks.keys()
    );
    let mut total = 0;
    for (id, seconds) in &ticks {
        for pair in seconds.windows(2) {
            assert!(pair[1] != pair[0], "{id}: tick {} enqueued twice", pair[0]);
            assert_eq!(
                pair[1] - pair[0],
                1,
                "{id}: ticks missed between {} and {}",
                pair[0],
                pair[1]
            );
        }
        // From when the first leader armed it to when the last one stopped.
        assert!(seconds.len() >= 60, "{id}: only {} ticks", seconds.len());
        total += seconds.len();
    }
    assert!(total >= 240, "a few hundred ticks in all: {total}");
    eprintln!("{total} ticks; leaders {first}, {second}, then {third}");
}
