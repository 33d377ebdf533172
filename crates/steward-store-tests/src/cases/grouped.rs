//! `grouped_counts`: counts per queue and per kind, exact after every path
//! that adds, moves or deletes a job.

use std::time::Duration;

use chrono::TimeDelta;
use steward_core::store::{
    FinishOutcome, GroupedCounts, JobId, JobQuery, JobState, MAX_PAGE, NewJob, ScheduleDef,
    ScheduleFire, StateCounts, Store,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, SHORT_LEASE, cancel, claim_from, counts, enqueue, failed, finish_ok,
    ms, now, prune_all_finished, release, rescue_until, retry, transient,
};

use JobState::{Available, Cancelled, Completed, Dead, Retryable, Running, Scheduled};

/// Counts with the given states set, the others zero.
fn sc(states: &[(JobState, u64)]) -> StateCounts {
    let mut c = StateCounts::default();
    for (state, n) in states {
        c.set(*state, *n);
    }
    c
}

/// The store's grouped counts.
async fn grouped<S: Store>(store: &S) -> GroupedCounts {
    transient(|| store.grouped_counts())
        .await
        .unwrap_or_else(|e| panic!("grouped_counts failed: {e}"))
}

/// The same counts worked out another way: every job listed page by page
/// and folded, so a store's counting is checked against its own rows.
async fn folded<S: Store>(store: &S) -> GroupedCounts {
    let mut out = GroupedCounts::default();
    let mut query = JobQuery::default().limit(MAX_PAGE);
    loop {
        let page = transient(|| store.jobs(query.clone()))
            .await
            .unwrap_or_else(|e| panic!("jobs failed: {e}"));
        let Some(last) = page.last().map(|r| r.id) else {
            return out;
        };
        for r in &page {
            out.add(&r.queue, &r.kind, r.state, 1);
        }
        query = query.after(last);
    }
}

/// Asserts the exact counts per queue and per kind after `step`, and that
/// they agree with the listed jobs and with `counts()`.
async fn expect<S: Store>(
    store: &S,
    step: &str,
    queues: &[(&str, StateCounts)],
    kinds: &[(&str, StateCounts)],
) {
    let got = grouped(store).await;
    let want = GroupedCounts {
        by_queue: queues
            .iter()
            .map(|(q, c)| (q.to_string(), c.clone()))
            .collect(),
        by_kind: kinds
            .iter()
            .map(|(k, c)| (k.to_string(), c.clone()))
            .collect(),
    };
    assert_eq!(got, want, "grouped counts after {step}");
    assert_eq!(
        got,
        folded(store).await,
        "grouped counts agree with the jobs listed after {step}"
    );
    assert_eq!(
        got.totals(),
        counts(store).await,
        "grouped counts sum to counts() after {step}"
    );
}

/// Claims everything due in `queue` (at most 10); returns the leases' ids in
/// claim order with the claimed jobs.
async fn claim_all<S: Store>(
    store: &S,
    queue: &str,
    lease: Duration,
) -> Vec<steward_core::store::ClaimedJob> {
    claim_from(store, &[(queue, 10)], lease).await
}

/// A job of `kind` in `queue`.
fn job(kind: &str, queue: &str) -> NewJob {
    NewJob::new(kind, r#"{"n":1}"#).queue(queue)
}

/// An empty store has no groups.
pub async fn grouped_counts_of_an_empty_store_are_empty<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    assert_eq!(grouped(&*f.store).await, GroupedCounts::default());
}

/// Every path that moves a job between states, or deletes it, moves it
/// between counts: enqueue (due and delayed), claim, each finish outcome,
/// cancel, operator retry, rescue (back in line and dead), release, snooze
/// and prune. A group whose last job is pruned disappears.
pub async fn grouped_counts_follow_every_transition<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let ids: Vec<JobId> = enqueue(
        s,
        vec![
            job("welcome", "mail"),
            job("welcome", "mail"),
            job("welcome", "mail"),
            job("digest", "mail").delay(HOUR),
            job("welcome", "sms"),
            job("welcome", "sms"),
        ],
    )
    .await
    .iter()
    .map(|e| e.id)
    .collect();
    expect(
        s,
        "enqueues",
        &[
            ("mail", sc(&[(Available, 3), (Scheduled, 1)])),
            ("sms", sc(&[(Available, 2)])),
        ],
        &[
            ("digest", sc(&[(Scheduled, 1)])),
            ("welcome", sc(&[(Available, 5)])),
        ],
    )
    .await;

    let mail = claim_from(s, &[("mail", 2)], LONG_LEASE).await;
    assert_eq!(mail.len(), 2, "two due mail jobs claimed");
    expect(
        s,
        "a claim",
        &[
            ("mail", sc(&[(Available, 1), (Running, 2), (Scheduled, 1)])),
            ("sms", sc(&[(Available, 2)])),
        ],
        &[
            ("digest", sc(&[(Scheduled, 1)])),
            ("welcome", sc(&[(Available, 3), (Running, 2)])),
        ],
    )
    .await;

    finish_ok(s, mail[0].lease, FinishOutcome::Completed).await;
    finish_ok(s, mail[1].lease, failed(1, "boom", Some(HOUR))).await;
    let sms = claim_all(s, "sms", LONG_LEASE).await;
    assert_eq!(sms.len(), 2, "both sms jobs claimed");
    finish_ok(s, sms[0].lease, failed(1, "boom", None)).await;
    let reason = "not wanted".to_string();
    finish_ok(s, sms[1].lease, FinishOutcome::Cancelled { reason }).await;
    expect(
        s,
        "finishes: completed, retryable, dead, cancelled",
        &[
            (
                "mail",
                sc(&[
                    (Available, 1),
                    (Completed, 1),
                    (Retryable, 1),
                    (Scheduled, 1),
                ]),
            ),
            ("sms", sc(&[(Dead, 1), (Cancelled, 1)])),
        ],
        &[
            ("digest", sc(&[(Scheduled, 1)])),
            (
                "welcome",
                sc(&[
                    (Available, 1),
                    (Completed, 1),
                    (Retryable, 1),
                    (Dead, 1),
                    (Cancelled, 1),
                ]),
            ),
        ],
    )
    .await;

    let waiting = ids[..3]
        .iter()
        .copied()
        .find(|id| mail.iter().all(|c| c.lease.id != *id))
        .expect("one welcome mail job was left in line");
    cancel(s, waiting).await;
    assert!(
        retry(s, sms[0].lease.id).await,
        "the dead sms job is retried"
    );
    expect(
        s,
        "a cancel and an operator's retry",
        &[
            (
                "mail",
                sc(&[
                    (Completed, 1),
                    (Retryable, 1),
                    (Scheduled, 1),
                    (Cancelled, 1),
                ]),
            ),
            ("sms", sc(&[(Available, 1), (Cancelled, 1)])),
        ],
        &[
            ("digest", sc(&[(Scheduled, 1)])),
            (
                "welcome",
                sc(&[
                    (Available, 1),
                    (Completed, 1),
                    (Retryable, 1),
                    (Cancelled, 2),
                ]),
            ),
        ],
    )
    .await;

    assert_eq!(claim_all(s, "sms", SHORT_LEASE).await.len(), 1);
    let back = rescue_until(s, 5, 1).await;
    assert_eq!(back.rescued, 1, "rescued back in line");
    expect(
        s,
        "a rescue back in line",
        &[
            (
                "mail",
                sc(&[
                    (Completed, 1),
                    (Retryable, 1),
                    (Scheduled, 1),
                    (Cancelled, 1),
                ]),
            ),
            ("sms", sc(&[(Available, 1), (Cancelled, 1)])),
        ],
        &[
            ("digest", sc(&[(Scheduled, 1)])),
            (
                "welcome",
                sc(&[
                    (Available, 1),
                    (Completed, 1),
                    (Retryable, 1),
                    (Cancelled, 2),
                ]),
            ),
        ],
    )
    .await;
    assert_eq!(claim_all(s, "sms", SHORT_LEASE).await.len(), 1);
    let buried = rescue_until(s, 2, 1).await;
    assert_eq!(buried.dead, 1, "the second rescue in a row buries it");
    let after_rescues: [(&str, StateCounts); 2] = [
        ("digest", sc(&[(Scheduled, 1)])),
        (
            "welcome",
            sc(&[(Completed, 1), (Retryable, 1), (Dead, 1), (Cancelled, 2)]),
        ),
    ];
    expect(
        s,
        "a rescue that makes the job dead",
        &[
            (
                "mail",
                sc(&[
                    (Completed, 1),
                    (Retryable, 1),
                    (Scheduled, 1),
                    (Cancelled, 1),
                ]),
            ),
            ("sms", sc(&[(Dead, 1), (Cancelled, 1)])),
        ],
        &after_rescues,
    )
    .await;

    transient(|| s.time_travel(HOUR * 2))
        .await
        .unwrap_or_else(|e| panic!("time_travel failed: {e}"));
    expect(
        s,
        "time travel (moves run_at, not states)",
        &[
            (
                "mail",
                sc(&[
                    (Completed, 1),
                    (Retryable, 1),
                    (Scheduled, 1),
                    (Cancelled, 1),
                ]),
            ),
            ("sms", sc(&[(Dead, 1), (Cancelled, 1)])),
        ],
        &after_rescues,
    )
    .await;
    let both = claim_all(s, "mail", LONG_LEASE).await;
    assert_eq!(
        both.len(),
        2,
        "the retryable and the scheduled mail job are due"
    );
    let leases = both.iter().map(|c| c.lease).collect();
    assert_eq!(release(s, leases).await, 2);
    expect(
        s,
        "a release",
        &[
            (
                "mail",
                sc(&[(Available, 2), (Completed, 1), (Cancelled, 1)]),
            ),
            ("sms", sc(&[(Dead, 1), (Cancelled, 1)])),
        ],
        &[
            ("digest", sc(&[(Available, 1)])),
            (
                "welcome",
                sc(&[(Available, 1), (Completed, 1), (Dead, 1), (Cancelled, 2)]),
            ),
        ],
    )
    .await;

    for claimed in claim_all(s, "mail", LONG_LEASE).await {
        let outcome = if claimed.lease.id == ids[3] {
            FinishOutcome::Completed
        } else {
            FinishOutcome::Snoozed { delay: HOUR }
        };
        finish_ok(s, claimed.lease, outcome).await;
    }
    expect(
        s,
        "a snooze and a completion",
        &[
            (
                "mail",
                sc(&[(Scheduled, 1), (Completed, 2), (Cancelled, 1)]),
            ),
            ("sms", sc(&[(Dead, 1), (Cancelled, 1)])),
        ],
        &[
            ("digest", sc(&[(Completed, 1)])),
            (
                "welcome",
                sc(&[(Scheduled, 1), (Completed, 1), (Dead, 1), (Cancelled, 2)]),
            ),
        ],
    )
    .await;

    assert_eq!(prune_all_finished(s).await, 5, "every finished job pruned");
    expect(
        s,
        "a prune (sms and digest have no jobs left)",
        &[("mail", sc(&[(Scheduled, 1)]))],
        &[("welcome", sc(&[(Scheduled, 1)]))],
    )
    .await;
}

/// Jobs a large batch writes (a store may write those another way) and
/// jobs a schedule fires are counted like any others.
pub async fn grouped_counts_count_large_batches_and_schedule_fires<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut batch = Vec::new();
    for i in 0..1500 {
        batch.push(match i % 3 {
            0 => job("resize", "media").delay(HOUR),
            1 => job("resize", "media"),
            _ => job("encode", "media").priority(-1),
        });
    }
    enqueue(s, batch).await;
    transient(|| {
        s.save_schedules(
            vec![ScheduleDef::new("nightly", "0 3 * * *", "report")],
            false,
        )
    })
    .await
    .unwrap_or_else(|e| panic!("save_schedules failed: {e}"));
    let tick = ms(now() - TimeDelta::minutes(1));
    let fire = ScheduleFire {
        id: "nightly".to_string(),
        expected: None,
        jobs: vec![job("report", "cron").run_at(tick)],
        next_at: ms(now() + TimeDelta::days(1)),
    };
    let fired = transient(|| s.fire_schedule(fire.clone()))
        .await
        .unwrap_or_else(|e| panic!("fire_schedule failed: {e}"));
    assert_eq!(fired.map(|t| t.len()), Some(1), "one tick fired");
    expect(
        s,
        "a batch of 1,500 and a schedule's fire",
        &[
            ("cron", sc(&[(Available, 1)])),
            ("media", sc(&[(Available, 1000), (Scheduled, 500)])),
        ],
        &[
            ("encode", sc(&[(Available, 500)])),
            ("report", sc(&[(Available, 1)])),
            ("resize", sc(&[(Available, 500), (Scheduled, 500)])),
        ],
    )
    .await;
}
