//! Payload versions: the version of each job's payload shape (the kind's
//! `Job::VERSION`) is stored with the job and handed back at claim and read,
//! so a worker can upgrade a payload an older release enqueued. Schedules
//! keep it too, and the jobs their ticks enqueue carry it.

use std::collections::HashMap;

use chrono::TimeDelta;
use steward_core::store::{JobId, NewJob, Saved, ScheduleDef, ScheduleFire, Store, UniqueScope};

use crate::Harness;
use crate::cases::enqueue::assert_refused;
use crate::support::{
    Fixture, LONG_LEASE, claim_from, enqueue, enqueue_one, fresh_queue, ms, now, record, transient,
};

/// Jobs at more than this many go through PostgreSQL's `COPY` and several
/// of SQLite's multi-row statements: every insert path must keep the version.
const BIG_BATCH: usize = 600;

/// Versions 1 and 7 come back from `claim` and `job` as enqueued, whichever
/// way the store inserted them: one job, a small batch, a big batch, a job
/// with a unique key.
pub async fn payload_version_round_trips_through_enqueue_claim_and_job<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("versions");
    let job = |v: u32| {
        NewJob::new("versioned", r#"{"n":1}"#)
            .queue(queue.clone())
            .payload_version(v)
    };
    let mut want: HashMap<JobId, u32> = HashMap::new();
    let default = enqueue_one(s, NewJob::new("versioned", "{}").queue(queue.clone())).await;
    want.insert(default, 1);
    let one = enqueue_one(s, job(7)).await;
    want.insert(one, 7);
    let small: Vec<NewJob> = [1, 7, 7, 1].into_iter().map(job).collect();
    for (e, j) in enqueue(s, small.clone()).await.iter().zip(&small) {
        want.insert(e.id, j.payload_version);
    }
    let big: Vec<NewJob> = (0..BIG_BATCH)
        .map(|i| job(if i % 3 == 0 { 7 } else { 1 }))
        .collect();
    for (e, j) in enqueue(s, big.clone()).await.iter().zip(&big) {
        want.insert(e.id, j.payload_version);
    }
    let unique = enqueue_one(s, job(7).unique("versioned:1", UniqueScope::Queued)).await;
    want.insert(unique, 7);

    for (id, version) in &want {
        assert_eq!(
            record(s, *id).await.payload_version,
            *version,
            "job {id} reads back with the payload version it was enqueued with"
        );
    }
    let limit = u32::try_from(want.len()).expect("a small count");
    let claimed = claim_from(s, &[(&queue, limit)], LONG_LEASE).await;
    assert_eq!(claimed.len(), want.len(), "every job is claimed");
    for c in &claimed {
        assert_eq!(
            Some(&c.payload_version),
            want.get(&c.lease.id),
            "claimed job {} carries its payload version",
            c.lease.id
        );
    }
    let sevens = claimed.iter().filter(|c| c.payload_version == 7).count();
    assert_eq!(
        sevens,
        2 + 2 + BIG_BATCH.div_ceil(3),
        "both versions were in play"
    );
}

/// Version 0 (never set) refuses the whole batch with `Invalid`, naming it,
/// and writes nothing.
pub async fn payload_version_zero_is_refused_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert_refused(
        s,
        vec![
            NewJob::new("ok", "{}"),
            NewJob::new("zero", "{}").payload_version(0),
        ],
        "payload_version 0",
    )
    .await;
    assert_refused(
        s,
        vec![NewJob::new("zero", "{}").payload_version(0)],
        "payload_version 0 alone",
    )
    .await;
    match s
        .enqueue(vec![NewJob::new("zero", "{}").payload_version(0)])
        .await
    {
        Err(steward_core::store::StoreError::Invalid { message }) => assert!(
            message.contains("payload_version"),
            "the refusal names the payload version: {message}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A schedule keeps its payload version (a change of version alone is an
/// update), and the jobs its ticks enqueue carry the version they are given.
pub async fn schedules_keep_the_payload_version_and_their_ticks_carry_it<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let def = ScheduleDef::new("versioned", "*/5 * * * *", "report").payload_version(7);
    let save = |defs: Vec<ScheduleDef>| async move {
        transient(|| s.save_schedules(defs.clone(), false))
            .await
            .unwrap_or_else(|e| panic!("save_schedules failed: {e}"))
            .saved
    };
    assert_eq!(save(vec![def.clone()]).await, [Saved::Created]);
    let got = |id: &'static str| async move {
        transient(|| s.schedule(id))
            .await
            .unwrap_or_else(|e| panic!("schedule({id}) failed: {e}"))
            .unwrap_or_else(|| panic!("schedule `{id}` was saved but is not found"))
    };
    assert_eq!(
        got("versioned").await.def.payload_version,
        7,
        "kept as saved"
    );
    assert_eq!(
        save(vec![def.clone()]).await,
        [Saved::Unchanged],
        "the same version is no change"
    );
    assert_eq!(
        save(vec![def.clone().payload_version(8)]).await,
        [Saved::Updated],
        "a new payload version alone is an update"
    );
    let record_now = got("versioned").await;
    assert_eq!(record_now.def.payload_version, 8);
    assert!(
        transient(|| s.schedules())
            .await
            .expect("schedules")
            .iter()
            .all(|r| r.def.payload_version == 8),
        "listed with its version"
    );

    let tick = ms(now() - TimeDelta::minutes(1));
    let mut job = NewJob::new("report", "{}").payload_version(8);
    job.run_at = Some(tick);
    let fired = transient(|| {
        s.fire_schedule(ScheduleFire {
            id: "versioned".into(),
            expected: None,
            jobs: vec![job.clone()],
            next_at: ms(now() + TimeDelta::hours(1)),
        })
    })
    .await
    .unwrap_or_else(|e| panic!("fire_schedule failed: {e}"))
    .unwrap_or_else(|| panic!("an unarmed schedule's first step applies"));
    assert_eq!(fired.len(), 1, "one tick, one job");
    assert_eq!(
        record(s, fired[0].job).await.payload_version,
        8,
        "the tick's job carries the payload version"
    );
}
