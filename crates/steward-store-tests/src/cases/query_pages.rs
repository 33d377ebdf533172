//! `jobs` page tokens (issue 14): pages in either order visit every job
//! once while new jobs arrive; a token from another query, or garbled, is
//! refused; bad ranges are refused and write nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{
    JobId, JobOrder, JobQuery, JobTime, MAX_AGO, MAX_ERROR_MATCH, NewJob, Store, StoreError,
    TimeBound,
};

use crate::Harness;
use crate::cases::query_filters::ids;
use crate::support::{Fixture, counts, enqueue_one, fresh_queue, now, transient};

/// Pages through `query` (pages of 3) with the library's tokens, enqueuing
/// a matching and a non-matching job after each page; returns the ids seen.
async fn page_through<S: Store>(store: &S, query: JobQuery, queue: &str) -> Vec<JobId> {
    let query = query.limit(3);
    let mut seen = Vec::new();
    let mut next = query.clone();
    for _ in 0..20 {
        let page = transient(|| store.jobs(next.clone()))
            .await
            .unwrap_or_else(|e| panic!("jobs({next:?}) failed: {e}"));
        seen.extend(page.iter().map(|r| r.id));
        enqueue_one(store, NewJob::new("paged", "{}").queue(queue)).await;
        enqueue_one(store, NewJob::new("skipped", "{}").queue(queue)).await;
        let Some(token) = query.next_cursor(&page) else {
            return seen;
        };
        next = query
            .clone()
            .resume(&token)
            .unwrap_or_else(|e| panic!("its own token {token:?} refused: {e}"));
    }
    panic!("paging does not end: {seen:?}");
}

/// Oldest first, the jobs that arrive while paging are met at the end;
/// newest first, they are above the cursor and never met. Either way every
/// job there at the start is seen exactly once, in order.
pub async fn jobs_page_tokens_visit_every_job_once_while_jobs_arrive<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("paged");
    let mut before = Vec::new();
    for i in 0..8 {
        before.push(enqueue_one(s, NewJob::new("paged", "{}").queue(&q)).await);
        if i % 3 == 0 {
            enqueue_one(s, NewJob::new("skipped", "{}").queue(&q)).await;
        }
    }
    let query = JobQuery::default().kind("paged");

    let oldest = page_through(s, query.clone(), &q).await;
    assert_eq!(
        &oldest[..8],
        &before[..],
        "oldest first: the jobs there at the start, in order"
    );
    assert!(
        oldest.windows(2).all(|w| w[0] < w[1]),
        "ascending, no repeats: {oldest:?}"
    );
    assert!(
        oldest.len() > 8,
        "oldest first meets jobs that arrived while paging"
    );
    let mut all_paged = ids(s, query.clone().limit(1000)).await;
    let newest = page_through(s, query.order(JobOrder::NewestFirst), &q).await;
    all_paged.reverse();
    assert_eq!(
        newest, all_paged,
        "newest first: exactly the jobs there at the start, newest first"
    );
    assert_eq!(
        newest.iter().collect::<BTreeSet<_>>().len(),
        newest.len(),
        "no repeats"
    );
}

/// A token is taken back only by the query that made it: another filter
/// or order, or a garbled token, is refused with `Invalid`; the limit may
/// change between pages.
pub async fn jobs_page_tokens_from_another_query_or_garbled_are_refused<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("tokens");
    for _ in 0..3 {
        enqueue_one(s, NewJob::new("k", "{}").queue(&q)).await;
    }
    let query = JobQuery::default().queue(&q).error("x").limit(1);
    let mut first = query.clone();
    first.error = None;
    let page = ids(s, first.clone()).await;
    let token = first.next_cursor(&transient(|| s.jobs(first.clone())).await.expect("jobs"));
    let token = token.expect("a full page has a next one");
    let resumed = first
        .clone()
        .limit(5)
        .resume(&token)
        .expect("another limit is fine");
    assert_eq!(resumed.after, Some(page[0]));
    assert_eq!(ids(s, resumed).await.len(), 2, "the rest");

    let hour = TimeBound::Ago(Duration::from_secs(3600));
    let others = [
        query.clone(),
        first.clone().queue("other"),
        first.clone().kind("k"),
        first.clone().states([steward_core::store::JobState::Dead]),
        first.clone().since(JobTime::Created, hour),
        first.clone().until(JobTime::RunAt, hour),
        first.clone().since(JobTime::Finished, hour),
        first.clone().ids(JobId(1), JobId(2)),
        first.clone().order(JobOrder::NewestFirst),
        JobQuery::default(),
    ];
    for other in others {
        let refused = other.clone().resume(&token);
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "{other:?} must refuse a token of {first:?}, got {refused:?}"
        );
    }
    let mut garbled = vec![
        String::new(),
        "x".into(),
        "o".into(),
        "o12".into(),
        "12".into(),
        format!("{token}0"),
        token[..token.len() - 1].to_string(),
        token.replacen('o', "n", 1),
        format!("o-1{}", &token[token.find('-').unwrap_or(0)..]),
        "'; DROP TABLE steward_jobs; --".into(),
    ];
    let (id, fingerprint) = token[1..].split_once('-').expect("a token's shape");
    garbled.push(format!(
        "o{}-{fingerprint}",
        id.parse::<i64>().expect("an id") + 1
    ));
    for bad in garbled {
        let refused = first.clone().resume(&bad);
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "a garbled token {bad:?} must be refused, got {refused:?}"
        );
    }
}

/// Bad ranges and error texts are refused with `Invalid` by every store,
/// before anything is read or written.
pub async fn jobs_refuses_bad_ranges_and_error_text<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    enqueue_one(s, NewJob::new("k", "{}")).await;
    let before = counts(s).await;
    let t = now();
    let at = TimeBound::At;
    let mut bad = Vec::new();
    for time in [JobTime::Created, JobTime::RunAt, JobTime::Finished] {
        bad.push(
            JobQuery::default()
                .since(time, at(t))
                .until(time, at(t - TimeDelta::seconds(1))),
        );
        bad.push(
            JobQuery::default()
                .since(time, TimeBound::Ago(Duration::from_secs(60)))
                .until(time, TimeBound::Ago(Duration::from_secs(120))),
        );
        bad.push(JobQuery::default().since(time, TimeBound::Ago(MAX_AGO + Duration::from_secs(1))));
        bad.push(JobQuery::default().until(time, TimeBound::Ago(Duration::MAX)));
    }
    bad.push(JobQuery::default().ids(JobId(10), JobId(9)));
    bad.push(JobQuery::default().error(""));
    bad.push(JobQuery::default().error("x".repeat(MAX_ERROR_MATCH + 1)));
    for query in bad {
        let answer = s.jobs(query.clone()).await;
        assert!(
            matches!(answer, Err(StoreError::Invalid { .. })),
            "{query:?} must be refused as invalid, got {answer:?}"
        );
    }
    assert_eq!(counts(s).await, before, "nothing written");
    let fine = [
        JobQuery::default().ids(JobId(3), JobId(3)),
        JobQuery::default().error("x".repeat(MAX_ERROR_MATCH)),
        JobQuery::default().since(JobTime::Created, TimeBound::Ago(MAX_AGO)),
        JobQuery::default()
            .since(JobTime::Created, at(t))
            .until(JobTime::Created, at(t)),
    ];
    for query in fine {
        assert!(s.jobs(query.clone()).await.is_ok(), "{query:?} is fine");
    }
}
