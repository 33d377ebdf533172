//! `jobs`: the time ranges, the id range, the error text and the order
//! (issue 14), alone and combined; SQL-looking and wildcard error text.

use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{
    FinishOutcome, JobId, JobOrder, JobQuery, JobState, JobTime, NewJob, Store, TimeBound,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, claim_one, counts, enqueue_one, failed, finish_ok, fresh_queue, now,
    record, transient,
};

/// Lists `query`: the ids in the order given.
pub(crate) async fn ids<S: Store>(store: &S, query: JobQuery) -> Vec<JobId> {
    transient(|| store.jobs(query.clone()))
        .await
        .unwrap_or_else(|e| panic!("jobs({query:?}) failed: {e}"))
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Enqueues a job of `kind` in `queue`, then waits a few milliseconds so
/// that the next job's creation time differs at every store's precision.
async fn enqueue_apart<S: Store>(store: &S, job: NewJob) -> JobId {
    let id = enqueue_one(store, job).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    id
}

/// Runs the job (alone in its queue) to the end: each message is one
/// failed attempt (retried at once), then `last` (an error that kills it,
/// or success) ends it.
async fn run_to_end<S: Store>(store: &S, id: JobId, errors: &[&str], last: Option<&str>) {
    let queue = &record(store, id).await.queue;
    let mut attempt = 0;
    for message in errors {
        attempt += 1;
        let claimed = claim_one(store, queue, id, LONG_LEASE).await;
        finish_ok(
            store,
            claimed.lease,
            failed(attempt, message, Some(Duration::ZERO)),
        )
        .await;
    }
    let claimed = claim_one(store, queue, id, LONG_LEASE).await;
    let outcome = match last {
        Some(message) => failed(attempt + 1, message, None),
        None => FinishOutcome::Completed,
    };
    finish_ok(store, claimed.lease, outcome).await;
}

/// `created` ranges take `from` inclusive and `to` exclusive, as times or
/// as ages on the store's clock; `run_at` ranges likewise; a `finished`
/// range lists only finished jobs.
pub async fn jobs_filter_by_time_ranges<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(enqueue_apart(s, NewJob::new("t", "{}").queue(fresh_queue("times"))).await);
    }
    let later = NewJob::new("t", "{}")
        .queue(fresh_queue("times"))
        .delay(HOUR * 2);
    let later = enqueue_apart(s, later).await;
    let created: Vec<_> = {
        let mut times = Vec::new();
        for id in &made {
            times.push(record(s, *id).await.created_at);
        }
        times
    };
    let at = TimeBound::At;
    let range = JobQuery::default()
        .since(JobTime::Created, at(created[1]))
        .until(JobTime::Created, at(created[3]));
    assert_eq!(
        ids(s, range).await,
        [made[1], made[2]],
        "created from (inclusive) to (exclusive)"
    );
    let from = JobQuery::default().since(JobTime::Created, at(created[2]));
    assert_eq!(
        ids(s, from).await,
        [made[2], made[3], later],
        "created from, open end"
    );
    let to = JobQuery::default().until(JobTime::Created, at(created[1]));
    assert_eq!(ids(s, to).await, [made[0]], "created before, open start");
    let hour = TimeBound::Ago(HOUR);
    let all = [made[0], made[1], made[2], made[3], later];
    assert_eq!(
        ids(s, JobQuery::default().since(JobTime::Created, hour)).await,
        all,
        "created in the last hour"
    );
    assert_eq!(
        ids(s, JobQuery::default().until(JobTime::Created, hour)).await,
        [],
        "created over an hour ago"
    );

    let due_later = JobQuery::default().since(JobTime::RunAt, at(now() + TimeDelta::hours(1)));
    assert_eq!(
        ids(s, due_later).await,
        [later],
        "run_at an hour or more ahead"
    );
    let due_now = JobQuery::default().until(JobTime::RunAt, TimeBound::Ago(Duration::ZERO));
    assert_eq!(ids(s, due_now).await, made, "run_at before the store's now");

    assert_eq!(
        ids(s, JobQuery::default().since(JobTime::Finished, hour)).await,
        [],
        "nothing finished yet"
    );
    run_to_end(s, made[0], &[], None).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    run_to_end(s, made[1], &[], Some("gave up")).await;
    let first_done = record(s, made[0]).await.finished_at.expect("finished");
    let second_done = record(s, made[1]).await.finished_at.expect("finished");
    assert!(first_done < second_done, "set up: two finishing times");
    let finished = JobQuery::default().since(JobTime::Finished, hour);
    assert_eq!(
        ids(s, finished).await,
        [made[0], made[1]],
        "finished in the last hour, whatever how"
    );
    let before = JobQuery::default().until(JobTime::Finished, at(second_done));
    assert_eq!(
        ids(s, before).await,
        [made[0]],
        "finished before the second one finished"
    );
    let from = JobQuery::default().since(JobTime::Finished, at(second_done));
    assert_eq!(
        ids(s, from).await,
        [made[1]],
        "finished from the second one's time"
    );
}

/// The id range includes both ends; the error text matches the last
/// attempt's message only, ignoring ASCII case, with `%`, `_` and `\`
/// matching only themselves and SQL-looking text being just text.
pub async fn jobs_filter_by_ids_and_last_error_text<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(enqueue_one(s, NewJob::new("e", "{}").queue(fresh_queue("errors"))).await);
    }
    let ids_q = JobQuery::default().ids(made[1], made[3]);
    assert_eq!(
        ids(s, ids_q).await,
        &made[1..=3],
        "ids from and to, both included"
    );
    let min = JobQuery {
        min_id: Some(made[3]),
        ..JobQuery::default()
    };
    assert_eq!(ids(s, min).await, &made[3..], "ids from");
    let max = JobQuery {
        max_id: Some(made[0]),
        ..JobQuery::default()
    };
    assert_eq!(ids(s, max).await, [made[0]], "ids up to");
    assert_eq!(
        ids(s, JobQuery::default().ids(made[2], made[2])).await,
        [made[2]],
        "one id"
    );

    let hostile = "'; DROP TABLE steward_jobs; --";
    run_to_end(
        s,
        made[0],
        &["Connection REFUSED by peer"],
        Some("timeout after 30s"),
    )
    .await;
    run_to_end(s, made[1], &[], Some("disk 100% full_now")).await;
    run_to_end(s, made[2], &[], Some(r"path C:\temp\x not found")).await;
    run_to_end(s, made[3], &[], Some(&format!("bad input {hostile}"))).await;
    let before = counts(s).await;
    let cases: Vec<(&str, Vec<JobId>, &str)> = vec![
        ("timeout", vec![made[0]], "the last error's text"),
        ("TIMEOUT AFTER", vec![made[0]], "ASCII case ignored"),
        (
            "refused",
            vec![],
            "an earlier attempt's error is not the last",
        ),
        ("%", vec![made[1]], "a percent sign is only itself"),
        ("100%", vec![made[1]], "a percent sign at the end"),
        ("_", vec![made[1], made[3]], "an underscore is only itself"),
        (
            "d_s",
            vec![],
            "an underscore does not stand for any character",
        ),
        (
            r"c:\temp\",
            vec![made[2]],
            "backslashes are only themselves",
        ),
        (r"\t", vec![made[2]], "a backslash is no escape"),
        (hostile, vec![made[3]], "SQL-looking text is text"),
        ("' OR '1'='1", vec![], "quotes are text"),
        ("not in any", vec![], "text in no error"),
    ];
    for (text, want, what) in cases {
        let query = JobQuery::default().error(text);
        assert_eq!(ids(s, query).await, want, "error text {text:?}: {what}");
    }
    assert_eq!(counts(s).await, before, "the error texts changed nothing");
    let never_failed = JobQuery::default().ids(made[4], made[4]).error("e");
    assert_eq!(
        ids(s, never_failed).await,
        [],
        "a job that never failed has no error text"
    );
}

/// Newest first lists by id, highest first, with every filter; all the
/// filters combine (each must match).
pub async fn jobs_newest_first_and_filters_combined<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mail = fresh_queue("mail");
    let sms = fresh_queue("sms");
    let mut all = Vec::new();
    let mut mail_dead = Vec::new();
    for i in 0..6 {
        let queue = if i % 2 == 0 { &mail } else { &sms };
        let id = enqueue_apart(s, NewJob::new("send", "{}").queue(queue)).await;
        all.push(id);
        let message = if i < 4 {
            "smtp timeout"
        } else {
            "smtp refused"
        };
        run_to_end(s, id, &[], Some(message)).await;
        if queue == &mail {
            mail_dead.push(id);
        }
    }
    let other = enqueue_apart(s, NewJob::new("other", "{}").queue(&mail)).await;
    all.push(other);
    let newest = JobQuery::default().order(JobOrder::NewestFirst);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(
        ids(s, newest.clone()).await,
        reversed,
        "every job, newest first"
    );
    assert_eq!(
        ids(s, newest.clone().limit(2)).await,
        &reversed[..2],
        "the newest two"
    );
    let after = newest.clone().after(all[3]);
    assert_eq!(
        ids(s, after).await,
        [all[2], all[1], all[0]],
        "newest first after an id: below it"
    );

    let first = record(s, all[0]).await.created_at;
    let combined = JobQuery::default()
        .queue(&mail)
        .kind("send")
        .states([JobState::Dead])
        .since(JobTime::Created, TimeBound::At(first))
        .since(JobTime::Finished, TimeBound::Ago(HOUR))
        .until(JobTime::RunAt, TimeBound::Ago(Duration::ZERO))
        .ids(all[0], all[5])
        .error("TIMEOUT");
    assert_eq!(
        ids(s, combined.clone()).await,
        [mail_dead[0], mail_dead[1]],
        "every filter at once"
    );
    let newest = combined.clone().order(JobOrder::NewestFirst);
    assert_eq!(
        ids(s, newest).await,
        [mail_dead[1], mail_dead[0]],
        "every filter, newest first"
    );
    let narrower = combined.clone().ids(all[1], all[5]);
    assert_eq!(
        ids(s, narrower).await,
        [mail_dead[1]],
        "the id range narrows it"
    );
    let none = combined.until(JobTime::Created, TimeBound::At(first));
    assert_eq!(ids(s, none).await, [], "an empty created range empties it");
}
