//! Recurring schedules: definitions saved and read back, pause and delete,
//! what is due, and a scheduler step (`fire_schedule`) fenced twice so that
//! each tick enqueues exactly one job however many schedulers race.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use steward_core::store::{
    FiredTick, JobState, KEPT_TICKS, Misfire, NewJob, Saved, ScheduleDef, ScheduleFire,
    ScheduleOrigin, ScheduleRecord, Store, StoreError,
};
use tokio::sync::Barrier;

use crate::Harness;
use crate::support::{
    Fixture, assert_between, assert_same_json, counts, joined, ms, now, record, slack, transient,
};

fn def(id: &str) -> ScheduleDef {
    ScheduleDef::new(id, "*/5 * * * *", "report")
}

async fn save<S: Store>(store: &S, defs: Vec<ScheduleDef>, remove: bool) -> Vec<Saved> {
    let report = transient(|| store.save_schedules(defs.clone(), remove))
        .await
        .unwrap_or_else(|e| panic!("save_schedules failed: {e}"));
    report.saved
}

async fn get<S: Store>(store: &S, id: &str) -> ScheduleRecord {
    transient(|| store.schedule(id))
        .await
        .unwrap_or_else(|e| panic!("schedule({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("schedule `{id}` was saved but is not found"))
}

async fn fire<S: Store>(store: &S, fire: ScheduleFire) -> Option<Vec<FiredTick>> {
    transient(|| store.fire_schedule(fire.clone()))
        .await
        .unwrap_or_else(|e| panic!("fire_schedule({}) failed: {e}", fire.id))
}

/// A job for `tick` as a scheduler makes it.
fn tick_job(tick: DateTime<Utc>) -> NewJob {
    let mut job = NewJob::new("report", r#"{"tick":true}"#);
    job.run_at = Some(tick);
    job
}

fn step(id: &str, expected: Option<DateTime<Utc>>, ticks: &[DateTime<Utc>]) -> ScheduleFire {
    let next_at = ticks.iter().max().copied().unwrap_or_else(now) + TimeDelta::hours(1);
    ScheduleFire {
        id: id.to_string(),
        expected,
        jobs: ticks.iter().copied().map(tick_job).collect(),
        next_at: ms(next_at),
    }
}

fn ago(minutes: i64) -> DateTime<Utc> {
    ms(now() - TimeDelta::minutes(minutes))
}

/// Every field of a definition comes back as saved; a new schedule is
/// unpaused, not armed, and stamped on the store's clock.
pub async fn a_saved_schedule_reads_back_every_field<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut full = ScheduleDef::new("nightly", "0 30 2 * * *", "report")
        .zone("Europe/Berlin")
        .payload(r#"{"full": true, "name": "nüchtern ' \" --"}"#)
        .queue("reports")
        .misfire(Misfire::All { limit: 7 });
    full.priority = -3;
    full.max_attempts = 4;
    full.origin = ScheduleOrigin::Operator;
    let before = now() - slack();
    assert_eq!(
        save(s, vec![full.clone(), def("other")], false).await,
        [Saved::Created, Saved::Created]
    );
    let got = get(s, "nightly").await;
    assert_same_json(&got.def.payload, &full.payload, "payload");
    assert_eq!(
        ScheduleDef {
            payload: full.payload.clone(),
            ..got.def.clone()
        },
        full,
        "the definition reads back as saved"
    );
    assert!(!got.paused && got.next_at.is_none() && got.last_tick.is_none());
    assert_between(got.created_at, before, now() + slack(), "created_at");
    assert_eq!(got.created_at, got.updated_at);
    let ids: Vec<String> = transient(|| s.schedules())
        .await
        .expect("schedules")
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(ids, ["nightly", "other"], "listed by id");
    assert!(s.schedule("missing").await.expect("schedule").is_none());
}

/// Saving the same definition changes nothing; a changed payload keeps the
/// tick owed; a changed expression or zone re-arms; a pause survives both.
pub async fn saving_again_updates_and_rearms_only_when_the_timing_changed<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("a")], false).await;
    let owed = ms(now() + TimeDelta::hours(1));
    let armed = ScheduleFire {
        next_at: owed,
        ..step("a", None, &[])
    };
    assert!(fire(s, armed).await.is_some(), "arming an unarmed schedule");
    assert!(s.pause_schedule("a", true).await.expect("pause"));
    assert_eq!(save(s, vec![def("a")], false).await, [Saved::Unchanged]);
    assert_eq!(
        save(s, vec![def("a").payload("[1]")], false).await,
        [Saved::Updated]
    );
    let got = get(s, "a").await;
    assert_eq!(got.next_at, Some(owed), "a new payload keeps the tick owed");
    assert!(got.paused, "saving keeps the pause");
    assert_same_json(&got.def.payload, "[1]", "the new payload");
    let rezoned = def("a").payload("[1]").zone("Asia/Tokyo");
    assert_eq!(save(s, vec![rezoned], false).await, [Saved::Updated]);
    assert_eq!(get(s, "a").await.next_at, None, "a new zone re-arms");
    assert!(get(s, "a").await.paused);
}

/// One invalid definition refuses the whole list, naming the problem, and
/// writes nothing.
pub async fn an_invalid_definition_refuses_the_whole_list_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let bad: [(ScheduleDef, &str); 7] = [
        (ScheduleDef::new("x", "61 * * * *", "k"), "61 * * * *"),
        (def("x").zone("Mars/Olympus"), "Mars/Olympus"),
        (def("x").misfire(Misfire::All { limit: 0 }), "limit 0"),
        (def("x").payload("{not json"), "JSON"),
        (ScheduleDef::new("x", "@daily", " "), "kind"),
        (ScheduleDef::new("", "@daily", "k"), "empty"),
        (def("ok"), "twice"),
    ];
    for (wrong, needle) in bad {
        let list = vec![def("ok"), wrong];
        match s.save_schedules(list, false).await {
            Err(StoreError::Invalid { message }) => {
                assert!(message.contains(needle), "`{message}` names `{needle}`")
            }
            other => panic!("expected Invalid naming `{needle}`, got {other:?}"),
        }
    }
    assert!(s.schedules().await.expect("schedules").is_empty());
}

/// `remove_undeclared` deletes code-declared schedules missing from the
/// list, never an operator's.
pub async fn removing_undeclared_schedules_spares_those_of_operators<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let mut by_hand = def("by-hand");
    by_hand.origin = ScheduleOrigin::Operator;
    save(s, vec![def("kept"), def("gone"), by_hand], false).await;
    let report = s
        .save_schedules(vec![def("kept")], true)
        .await
        .expect("save");
    assert_eq!(report.saved, [Saved::Unchanged]);
    assert_eq!(report.removed, ["gone"]);
    let ids: Vec<String> = s
        .schedules()
        .await
        .expect("schedules")
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(ids, ["by-hand", "kept"]);
}

/// Unarmed and owed schedules are due, with the store's now; paused and
/// later ones are not, and the earliest later tick is reported.
pub async fn due_lists_unarmed_and_owed_schedules_but_not_paused_or_later_ones<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(
        s,
        vec![def("new"), def("owed"), def("later"), def("held")],
        false,
    )
    .await;
    let later = ms(now() + TimeDelta::hours(2));
    for (id, next) in [("owed", ago(1)), ("later", later), ("held", ago(1))] {
        let arm = ScheduleFire {
            next_at: next,
            ..step(id, None, &[])
        };
        assert!(fire(s, arm).await.is_some(), "arming {id}");
    }
    s.pause_schedule("held", true).await.expect("pause");
    let before = now() - slack();
    let due = s.due_schedules(10).await.expect("due");
    assert_between(due.now, before, now() + slack(), "the store's now");
    let ids: Vec<&str> = due.due.iter().map(|r| r.def.id.as_str()).collect();
    assert_eq!(ids, ["new", "owed"], "unarmed first, then by next_at");
    assert_eq!(due.next_due, Some(later));
    let one = s.due_schedules(1).await.expect("due");
    assert_eq!(one.due.len(), 1, "the limit holds");
}

/// A step enqueues one job per tick (kind, payload, queue and options of
/// the schedule, `run_at` the tick) and moves the tick owed.
pub async fn a_fire_enqueues_one_job_per_tick_and_moves_the_tick_owed<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    let ticks = [ago(10), ago(5)];
    let fired = fire(s, step("r", None, &ticks)).await.expect("applied");
    assert_eq!(
        fired.iter().map(|t| t.tick).collect::<Vec<_>>(),
        ticks,
        "oldest first"
    );
    for t in &fired {
        let job = record(s, t.job).await;
        assert_eq!((job.kind.as_str(), job.run_at), ("report", t.tick));
        assert_eq!(job.state, JobState::Available, "a past tick is due now");
    }
    let got = get(s, "r").await;
    assert_eq!(got.next_at, Some(ms(ticks[1] + TimeDelta::hours(1))));
    assert_eq!(
        (got.last_tick, got.last_job),
        (Some(ticks[1]), Some(fired[1].job))
    );
    let recent = s.schedule_fires("r", 10).await.expect("fires");
    assert_eq!(recent, [fired[1], fired[0]], "newest first");
}

/// A step from a stale read (the tick owed moved), on a paused or unknown
/// schedule writes nothing.
pub async fn a_fire_from_a_stale_read_or_on_a_paused_schedule_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    let first = step("r", None, &[ago(10)]);
    let owed = first.next_at;
    assert!(fire(s, first).await.is_some());
    assert!(
        fire(s, step("r", None, &[ago(5)])).await.is_none(),
        "expected None, but the schedule owes {owed}: fenced"
    );
    assert!(fire(s, step("r", Some(ago(2)), &[ago(5)])).await.is_none());
    s.pause_schedule("r", true).await.expect("pause");
    assert!(fire(s, step("r", Some(owed), &[ago(5)])).await.is_none());
    assert!(fire(s, step("missing", None, &[ago(5)])).await.is_none());
    assert_eq!(counts(s).await.available, 1, "only the first tick's job");
    assert_eq!(get(s, "r").await.next_at, Some(owed));
}

/// A tick is recorded under its own key: listed again in a later step, it
/// enqueues nothing, and the other ticks of that step still fire.
pub async fn a_tick_already_fired_never_enqueues_again<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    let (t1, t2) = (ago(10), ago(5));
    let first = step("r", None, &[t1]);
    let owed = first.next_at;
    fire(s, first).await.expect("applied");
    let mut again = step("r", Some(owed), &[t1, t2]);
    again.next_at = owed + TimeDelta::hours(1);
    let fired = fire(s, again).await.expect("applied");
    assert_eq!(fired.iter().map(|t| t.tick).collect::<Vec<_>>(), [t2]);
    assert_eq!(counts(s).await.available, 2, "one job per tick");
}

/// Two schedulers on two handles making the same step at the same moment:
/// exactly one applies, and each tick has exactly one job.
pub async fn racing_fires_of_one_step_apply_exactly_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    save(&*f.store, vec![def("r")], false).await;
    let mut expected = None;
    for round in 0..10 {
        let ticks = [ago(60 - round * 2), ago(59 - round * 2)];
        let fire_step = step("r", expected, &ticks);
        let barrier = Arc::new(Barrier::new(2));
        let racers = [f.store.clone(), other.clone()].map(|store| {
            let (step, barrier) = (fire_step.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                transient(|| store.fire_schedule(step.clone())).await
            })
        });
        let mut applied = 0;
        for racer in racers {
            match joined(racer).await {
                Ok(Some(fired)) => {
                    assert_eq!(fired.len(), 2);
                    applied += 1;
                }
                Ok(None) => {}
                Err(e) => panic!("a racing fire failed: {e}"),
            }
        }
        assert_eq!(applied, 1, "round {round}: exactly one racer applies");
        expected = Some(fire_step.next_at);
    }
    assert_eq!(counts(&*f.store).await.available, 20, "one job per tick");
}

/// A step without a tick time, with a tick listed twice, or owing a tick
/// not after its ticks is refused and writes nothing.
pub async fn a_malformed_fire_is_refused_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    let mut no_tick = step("r", None, &[ago(5)]);
    no_tick.jobs[0].run_at = None;
    let twice = step("r", None, &[ago(5), ago(5)]);
    let mut backwards = step("r", None, &[ago(5)]);
    backwards.next_at = ago(6);
    for bad in [no_tick, twice, backwards] {
        assert!(
            matches!(s.fire_schedule(bad).await, Err(StoreError::Invalid { .. })),
            "refused with Invalid"
        );
    }
    assert_eq!(counts(s).await.available, 0);
    assert_eq!(get(s, "r").await.next_at, None);
}

/// Pausing and resuming: a resumed schedule is re-armed (ticks during the
/// pause are not owed); unknown ids answer `false`.
pub async fn resume_rearms_and_unknown_ids_answer_false<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    fire(s, step("r", None, &[])).await.expect("armed");
    assert!(s.pause_schedule("r", true).await.expect("pause"));
    assert!(s.pause_schedule("r", true).await.expect("pause twice"));
    assert!(get(s, "r").await.paused);
    assert!(s.pause_schedule("r", false).await.expect("resume"));
    let got = get(s, "r").await;
    assert!(!got.paused);
    assert_eq!(got.next_at, None, "re-armed from the store's now");
    assert!(!s.pause_schedule("missing", true).await.expect("pause"));
    assert!(!s.delete_schedule("missing").await.expect("delete"));
}

/// Deleting a schedule removes it and its fired ticks; its jobs stay.
/// A store keeps the newest fired ticks only.
pub async fn delete_keeps_the_jobs_and_fired_ticks_are_bounded<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    save(s, vec![def("r")], false).await;
    let n = KEPT_TICKS + 5;
    let ticks: Vec<DateTime<Utc>> = (0..n).map(|i| ago(2 * n - i)).collect();
    let fired = fire(s, step("r", None, &ticks)).await.expect("applied");
    assert_eq!(fired.len() as i64, n);
    let kept = s.schedule_fires("r", 1000).await.expect("fires");
    assert_eq!(kept.len() as i64, KEPT_TICKS, "only the newest are kept");
    assert_eq!(kept[0].tick, ticks[ticks.len() - 1]);
    assert!(s.delete_schedule("r").await.expect("delete"));
    assert!(s.schedule("r").await.expect("schedule").is_none());
    assert!(s.schedule_fires("r", 10).await.expect("fires").is_empty());
    assert_eq!(counts(s).await.available as i64, n, "its jobs stay");
    save(s, vec![def("r")], false).await;
    assert_eq!(
        get(s, "r").await.next_at,
        None,
        "made again: a new schedule"
    );
}
