//! `jobs`: listing jobs by state, queue and kind with a keyset cursor; and
//! `time_travel`: the tests' way to let waiting work come due at once.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use steward_core::store::{
    EARLIEST_TIME, FinishOutcome, JobId, JobQuery, JobRecord, JobState, MAX_PAGE, NewJob,
    ScheduleDef, ScheduleFire, Store, StoreError,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, claim_from, claim_one, counts, enqueue_one, failed, finish_ok,
    fresh_queue, job_in, job_in_state, ms, now, record, transient,
};

/// Lists `query`, checking that every record is exactly what `job(id)`
/// returns for it (errors included); returns the ids in the order given.
async fn list<S: Store>(store: &S, query: JobQuery) -> Vec<JobId> {
    let records = transient(|| store.jobs(query.clone()))
        .await
        .unwrap_or_else(|e| panic!("jobs({query:?}) failed: {e}"));
    let mut ids = Vec::with_capacity(records.len());
    for listed in records {
        assert_eq!(
            listed,
            record(store, listed.id).await,
            "jobs({query:?}) should list job {} exactly as job(id) returns it",
            listed.id
        );
        ids.push(listed.id);
    }
    ids
}

/// A job of `kind` in `queue`.
fn job(kind: &str, queue: &str) -> NewJob {
    NewJob::new(kind, r#"{"n":1}"#).queue(queue)
}

/// Moves the store's waiting work `by` closer; returns how many jobs moved.
async fn travel<S: Store>(store: &S, by: Duration) -> u64 {
    transient(|| store.time_travel(by))
        .await
        .unwrap_or_else(|e| panic!("time_travel({by:?}) failed: {e}"))
}

/// Filters by one state, several states, queue, kind and their
/// combinations all list exactly the matching jobs, oldest first.
pub async fn jobs_lists_by_state_queue_and_kind_oldest_first<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut by_state = Vec::new();
    for state in JobState::ALL {
        by_state.push((state, job_in_state(s, state).await));
    }
    let id_of = |want: JobState| {
        by_state
            .iter()
            .find(|(state, _)| *state == want)
            .map(|(_, id)| *id)
            .expect("a job of every state")
    };
    let mail_alpha = enqueue_one(s, job("alpha", "mail")).await;
    let mail_beta = enqueue_one(s, job("beta", "mail")).await;
    let sms_alpha = enqueue_one(s, job("alpha", "sms")).await;
    let mail_alpha_later = enqueue_one(s, job("alpha", "mail").delay(HOUR)).await;

    let mut all: Vec<JobId> = by_state.iter().map(|(_, id)| *id).collect();
    all.extend([mail_alpha, mail_beta, sms_alpha, mail_alpha_later]);
    all.sort();
    assert_eq!(
        list(s, JobQuery::default()).await,
        all,
        "no filter lists every job, oldest first"
    );
    for state in JobState::ALL {
        let mut want = vec![id_of(state)];
        if state == JobState::Available {
            want.extend([mail_alpha, mail_beta, sms_alpha]);
        }
        if state == JobState::Scheduled {
            want.push(mail_alpha_later);
        }
        let q = JobQuery::default().states([state]);
        assert_eq!(list(s, q).await, want, "jobs in state {state}");
    }
    let q = JobQuery::default().states([JobState::Dead, JobState::Running, JobState::Completed]);
    let mut want = vec![
        id_of(JobState::Dead),
        id_of(JobState::Running),
        id_of(JobState::Completed),
    ];
    want.sort();
    assert_eq!(list(s, q).await, want, "jobs in any of three states");

    let cases: Vec<(JobQuery, Vec<JobId>, &str)> = vec![
        (
            JobQuery::default().queue("mail"),
            vec![mail_alpha, mail_beta, mail_alpha_later],
            "by queue",
        ),
        (
            JobQuery::default().kind("alpha"),
            vec![mail_alpha, sms_alpha, mail_alpha_later],
            "by kind",
        ),
        (
            JobQuery::default().queue("mail").kind("alpha"),
            vec![mail_alpha, mail_alpha_later],
            "by queue and kind",
        ),
        (
            JobQuery::default()
                .queue("mail")
                .kind("alpha")
                .states([JobState::Available]),
            vec![mail_alpha],
            "by queue, kind and state",
        ),
        (
            JobQuery::default()
                .kind("alpha")
                .states([JobState::Scheduled, JobState::Available]),
            vec![mail_alpha, sms_alpha, mail_alpha_later],
            "by kind and two states",
        ),
        (
            JobQuery::default()
                .kind("contract")
                .states([JobState::Retryable, JobState::Cancelled]),
            {
                let mut ids = vec![id_of(JobState::Retryable), id_of(JobState::Cancelled)];
                ids.sort();
                ids
            },
            "by kind and two finished or waiting states",
        ),
    ];
    for (query, want, what) in cases {
        assert_eq!(list(s, query).await, want, "jobs {what}");
    }
    let dead = list(s, JobQuery::default().states([JobState::Dead])).await;
    assert_eq!(
        record(s, dead[0]).await.errors.len(),
        1,
        "a dead job is listed with its error"
    );
}

/// Pages of 2 with the cursor visit every matching job exactly once, in id
/// order, whatever else is in the table; the page after the last is empty.
pub async fn jobs_cursor_pages_through_every_job_exactly_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut want = Vec::new();
    for i in 0..7 {
        want.push(enqueue_one(s, job("page", "paged")).await);
        // Interleaved jobs the filter leaves out.
        let other = if i % 2 == 0 { "other" } else { "paged" };
        let kind = if i % 2 == 0 { "page" } else { "skipped" };
        enqueue_one(s, job(kind, other)).await;
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let mut q = JobQuery::default().queue("paged").kind("page").limit(2);
        if let Some(last) = after {
            q = q.after(last);
        }
        let page = list(s, q).await;
        sizes.push(page.len());
        let Some(&last) = page.last() else {
            break;
        };
        assert!(sizes.len() <= 10, "paging does not end: {seen:?}");
        after = Some(last);
        seen.extend(page);
    }
    assert_eq!(seen, want, "every matching job once, oldest first");
    assert_eq!(sizes, [2, 2, 2, 1, 0], "pages of at most the limit");

    let mut everything = Vec::new();
    let mut after = JobId(0);
    loop {
        let page = list(s, JobQuery::default().after(after).limit(2)).await;
        let Some(&last) = page.last() else {
            break;
        };
        after = last;
        everything.extend(page);
    }
    assert_eq!(everything.len(), 14, "no filter pages through all 14 jobs");
    assert!(
        everything.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing ids: {everything:?}"
    );
}

/// Filters that match nothing list nothing; SQL-looking or wildcard-looking
/// queue and kind names are plain values: they match only jobs of exactly
/// that name and harm nothing.
pub async fn jobs_filters_match_exact_values_only<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(
        list(s, JobQuery::default()).await.is_empty(),
        "an empty store"
    );
    let mail = enqueue_one(s, job("email", "mail")).await;
    let hostile_queue = "'; DROP TABLE jobs; --";
    let hostile_kind = "x' OR '1'='1";
    let hostile = enqueue_one(s, job(hostile_kind, hostile_queue)).await;
    let before = counts(s).await;

    let nothing = [
        JobQuery::default().queue("nope"),
        JobQuery::default().kind("nope"),
        JobQuery::default().states([JobState::Cancelled, JobState::Dead]),
        JobQuery::default().queue("mail").kind("x"),
        JobQuery::default().after(hostile),
        JobQuery::default().queue("'; DROP TABLE steward_jobs; --"),
        JobQuery::default().queue("' OR 1=1 --"),
        JobQuery::default().kind("' OR '1'='1"),
        JobQuery::default().kind("email' --"),
        JobQuery::default().queue("ma%"),
        JobQuery::default().queue("m_il"),
        JobQuery::default().queue("%"),
        JobQuery::default().kind("*"),
        JobQuery::default().queue("MAIL"),
    ];
    for q in nothing {
        assert_eq!(list(s, q.clone()).await, [], "{q:?} matches nothing");
    }
    assert_eq!(
        list(s, JobQuery::default().queue(hostile_queue)).await,
        [hostile],
        "a queue named like SQL matches its own job only"
    );
    assert_eq!(
        list(s, JobQuery::default().kind(hostile_kind)).await,
        [hostile],
        "a kind named like SQL matches its own job only"
    );
    assert_eq!(
        counts(s).await,
        before,
        "the hostile filters changed nothing"
    );
    assert_eq!(list(s, JobQuery::default()).await, [mail, hostile]);
    let other = f.another_handle(h).await;
    assert_eq!(
        list(&*other, JobQuery::default()).await,
        [mail, hostile],
        "another handle lists the same jobs"
    );
}

/// A limit of 0 or above `MAX_PAGE` is refused as invalid; `MAX_PAGE` and
/// 1 are fine.
pub async fn jobs_refuses_a_limit_of_zero_or_above_max_page<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let id = enqueue_one(s, job_in("default")).await;
    for limit in [0, MAX_PAGE + 1, u32::MAX] {
        let answer = s.jobs(JobQuery::default().limit(limit)).await;
        assert!(
            matches!(answer, Err(StoreError::Invalid { .. })),
            "jobs with limit {limit} should be refused as invalid, got {answer:?}"
        );
    }
    for limit in [1, MAX_PAGE] {
        assert_eq!(list(s, JobQuery::default().limit(limit)).await, [id]);
    }
}

/// Records listed carry every attempt error, as `job(id)` returns them.
pub async fn jobs_lists_records_with_their_errors<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("errors");
    let id = enqueue_one(s, job_in(&q)).await;
    for attempt in 1..=3 {
        let claimed = claim_one(s, &q, id, LONG_LEASE).await;
        let retry = (attempt < 3).then_some(Duration::ZERO);
        let message = format!("failure {attempt}: 'quoted' \"and\" ✗");
        finish_ok(s, claimed.lease, failed(attempt, &message, retry)).await;
    }
    let queued = enqueue_one(s, job_in(&q)).await;
    assert_eq!(list(s, JobQuery::default()).await, [id, queued]);
    let listed = transient(|| s.jobs(JobQuery::default().states([JobState::Dead])))
        .await
        .unwrap_or_else(|e| panic!("jobs failed: {e}"));
    assert_eq!(listed.len(), 1);
    let errors: Vec<u32> = listed[0].errors.iter().map(|e| e.attempt).collect();
    assert_eq!(
        errors,
        [1, 2, 3],
        "the dead job's three errors, oldest first"
    );
    assert_eq!(listed[0], record(s, id).await);
}

/// After `time_travel(1 h)`, a job scheduled an hour ahead and a job whose
/// retry is an hour away are claimable, their `run_at` moved by exactly
/// that; an available job moves too. A running job (its lease) and a
/// completed one are left as they were; creation times never move. The
/// answer counts the moved jobs.
pub async fn time_travel_makes_scheduled_and_retryable_jobs_due<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let scheduled = job_in_state(s, JobState::Scheduled).await;
    let retryable = job_in_state(s, JobState::Retryable).await;
    let available = job_in_state(s, JobState::Available).await;
    let running = job_in_state(s, JobState::Running).await;
    let completed = job_in_state(s, JobState::Completed).await;
    let waiting = [scheduled, retryable, available];
    let mut before = Vec::new();
    for id in waiting {
        before.push(record(s, id).await);
    }
    let untouched = [record(s, running).await, record(s, completed).await];
    for r in &before[..2] {
        assert!(
            claim_from(s, &[(&r.queue, 10)], LONG_LEASE)
                .await
                .is_empty(),
            "the {} job is not due before the time travel",
            r.state
        );
    }

    assert_eq!(travel(s, HOUR).await, 3, "three waiting jobs moved");

    for was in &before {
        let r = record(s, was.id).await;
        assert_eq!(
            r.run_at,
            was.run_at - TimeDelta::hours(1),
            "the {} job's run_at moved an hour earlier, exactly",
            was.state
        );
        assert_eq!(
            JobRecord {
                run_at: was.run_at,
                ..r
            },
            *was,
            "only the {} job's run_at changed",
            was.state
        );
    }
    for was in &untouched {
        assert_eq!(
            record(s, was.id).await,
            *was,
            "a {} job is untouched",
            was.state
        );
    }
    for was in &before[..2] {
        let claimed = claim_one(s, &was.queue, was.id, LONG_LEASE).await;
        assert_eq!(
            claimed.attempt,
            was.attempt + 1,
            "the {} job is claimed after the time travel",
            was.state
        );
    }
    assert_eq!(
        travel(s, HOUR).await,
        1,
        "only the available job is still waiting"
    );
}

/// `time_travel` moves every schedule's `next_at` (paused or not) and
/// leaves an unarmed schedule unarmed.
pub async fn time_travel_moves_schedules_next_at<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let defs = vec![
        ScheduleDef::new("armed", "*/5 * * * *", "report"),
        ScheduleDef::new("paused", "*/5 * * * *", "report"),
        ScheduleDef::new("unarmed", "*/5 * * * *", "report"),
    ];
    transient(|| s.save_schedules(defs.clone(), false))
        .await
        .unwrap_or_else(|e| panic!("save_schedules failed: {e}"));
    let owed = ms(now() + TimeDelta::hours(2));
    for id in ["armed", "paused"] {
        let fire = ScheduleFire {
            id: id.to_string(),
            expected: None,
            jobs: Vec::new(),
            next_at: owed,
        };
        let armed = transient(|| s.fire_schedule(fire.clone()))
            .await
            .unwrap_or_else(|e| panic!("fire_schedule failed: {e}"));
        assert!(armed.is_some(), "arming `{id}`");
    }
    assert!(s.pause_schedule("paused", true).await.expect("pause"));
    let due = s.due_schedules(10).await.expect("due_schedules");
    assert!(
        due.due.iter().all(|d| d.def.id == "unarmed"),
        "only the unarmed schedule is due before"
    );

    assert_eq!(travel(s, HOUR * 3).await, 0, "no jobs to move");

    for id in ["armed", "paused"] {
        let got = s.schedule(id).await.expect("schedule").expect("saved");
        assert_eq!(
            got.next_at,
            Some(owed - TimeDelta::hours(3)),
            "`{id}`'s next_at moved three hours earlier"
        );
    }
    let unarmed = s
        .schedule("unarmed")
        .await
        .expect("schedule")
        .expect("saved");
    assert_eq!(unarmed.next_at, None, "an unarmed schedule stays unarmed");
    let due = s.due_schedules(10).await.expect("due_schedules");
    let ids: Vec<&str> = due.due.iter().map(|d| d.def.id.as_str()).collect();
    assert_eq!(ids, ["unarmed", "armed"], "the armed schedule is due now");
}

/// An absurd `by` (`Duration::MAX`) saturates every moved time at
/// `EARLIEST_TIME` without failing; the jobs are then due.
pub async fn time_travel_by_an_absurd_duration_saturates_at_the_earliest_time<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("far");
    let far = enqueue_one(s, job_in(&q).run_at(steward_core::store::LATEST_TIME)).await;
    let soon = enqueue_one(s, job_in(&q).delay(HOUR)).await;
    let old = enqueue_one(s, job_in(&q).run_at(EARLIEST_TIME + TimeDelta::days(1))).await;
    transient(|| s.save_schedules(vec![ScheduleDef::new("s", "* * * * *", "r")], false))
        .await
        .unwrap_or_else(|e| panic!("save_schedules failed: {e}"));
    let fire = ScheduleFire {
        id: "s".to_string(),
        expected: None,
        jobs: Vec::new(),
        next_at: ms(now() + TimeDelta::days(365)),
    };
    assert!(s.fire_schedule(fire).await.expect("fire").is_some());

    assert_eq!(travel(s, Duration::MAX).await, 3);
    for id in [far, soon, old] {
        assert_eq!(
            record(s, id).await.run_at,
            EARLIEST_TIME,
            "job {id} saturates at the earliest time"
        );
    }
    let got = s.schedule("s").await.expect("schedule").expect("saved");
    assert_eq!(got.next_at, Some(EARLIEST_TIME), "next_at saturates too");
    assert_eq!(
        travel(s, Duration::MAX).await,
        0,
        "jobs already at the earliest time do not move again"
    );
    let claimed = claim_from(s, &[(&q, 10)], LONG_LEASE).await;
    let mut ids: Vec<JobId> = claimed.iter().map(|c| c.lease.id).collect();
    ids.sort();
    assert_eq!(ids, [far, soon, old], "all three are due");
    let done = claimed.into_iter().map(|c| c.lease);
    for lease in done {
        finish_ok(s, lease, FinishOutcome::Completed).await;
    }
}

/// A waiting worker wakes when a time travel makes work due, as it does
/// after other writes that do.
pub async fn time_travel_wakes_a_waiting_worker_when_work_comes_due<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("woken");
    let id = enqueue_one(s, job_in(&q).delay(HOUR)).await;
    // Wake-ups left over from setting up are spurious; use them up.
    s.wait_for_work(Duration::from_millis(1)).await;
    s.wait_for_work(Duration::from_millis(1)).await;
    let long = Duration::from_secs(30);
    let started = Instant::now();
    let ((), moved) = tokio::join!(s.wait_for_work(long), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        travel(s, HOUR).await
    });
    assert_eq!(moved, 1);
    let waited = started.elapsed();
    assert!(
        waited < long / 2,
        "wait_for_work({long:?}) should return soon after a time travel made a job due, \
         but took {waited:?}"
    );
    claim_one(s, &q, id, LONG_LEASE).await;
}

/// After `time_travel(by)` the schedule's past is `by` further back too:
/// its last tick moves with it and the ticks it fired are forgotten, so the
/// tick at the same wall time a day later (after travelling a day) fires
/// again instead of being taken for one already fired.
pub async fn time_travel_moves_a_schedules_past_with_it<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let def = ScheduleDef::new("daily", "0 9 * * *", "report");
    s.save_schedules(vec![def], false).await.expect("save");
    let tick = ms(now() - TimeDelta::hours(1));
    let step = |expected, next_at| {
        let mut job = NewJob::new("report", "null");
        job.run_at = Some(tick);
        ScheduleFire {
            id: "daily".into(),
            expected,
            jobs: vec![job],
            next_at,
        }
    };
    let day = TimeDelta::hours(24);
    let fired = s.fire_schedule(step(None, tick + day)).await.expect("fire");
    assert_eq!(fired.map(|f| f.len()), Some(1));
    s.time_travel(std::time::Duration::from_secs(24 * 3600))
        .await
        .expect("travel");
    let got = s.schedule("daily").await.expect("read").expect("saved");
    assert_eq!(got.next_at, Some(tick), "the tick owed moved a day back");
    assert_eq!(
        got.last_tick,
        Some(tick - day),
        "the last tick moved with it"
    );
    let again = s
        .fire_schedule(step(Some(tick), tick + day))
        .await
        .expect("fire");
    assert_eq!(
        again.map(|f| f.len()),
        Some(1),
        "the tick owed after the travel fires: the earlier firing is a day further back"
    );
}
