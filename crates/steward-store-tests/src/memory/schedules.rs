//! Recurring schedules: definitions, pauses, the tick each owes and the
//! ticks each fired (see `Store::save_schedules` and `Store::fire_schedule`).

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{
    DueSchedules, EARLIEST_TIME, FiredTick, JobId, KEPT_TICKS, NewJob, SaveReport, Saved,
    ScheduleDef, ScheduleFire, ScheduleOrigin, ScheduleRecord,
};

use super::row::earlier;

/// Every schedule, by id.
#[derive(Debug, Default)]
pub(super) struct Schedules {
    rows: BTreeMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    record: ScheduleRecord,
    /// Fired ticks (the unique key per schedule and tick) and their jobs.
    ticks: BTreeMap<DateTime<Utc>, JobId>,
}

impl Schedules {
    /// `Store::save_schedules`, on definitions already validated.
    pub(super) fn save(
        &mut self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
        now: DateTime<Utc>,
    ) -> SaveReport {
        let mut report = SaveReport::default();
        let declared: BTreeSet<String> = defs.iter().map(|d| d.id.clone()).collect();
        for def in defs {
            let saved = match self.rows.get_mut(&def.id) {
                None => {
                    let record = ScheduleRecord {
                        def: def.clone(),
                        paused: false,
                        next_at: None,
                        last_tick: None,
                        last_job: None,
                        created_at: now,
                        updated_at: now,
                    };
                    let ticks = BTreeMap::new();
                    self.rows.insert(def.id.clone(), Entry { record, ticks });
                    Saved::Created
                }
                Some(entry) if entry.record.def == def => Saved::Unchanged,
                Some(entry) => {
                    let old = &entry.record.def;
                    if old.cron != def.cron || old.zone != def.zone {
                        entry.record.next_at = None;
                    }
                    entry.record.def = def;
                    entry.record.updated_at = now;
                    Saved::Updated
                }
            };
            report.saved.push(saved);
        }
        if remove_undeclared {
            let gone: Vec<String> = self
                .rows
                .values()
                .filter(|e| e.record.def.origin == ScheduleOrigin::Code)
                .map(|e| e.record.def.id.clone())
                .filter(|id| !declared.contains(id))
                .collect();
            for id in &gone {
                self.rows.remove(id);
            }
            report.removed = gone;
        }
        report
    }

    pub(super) fn list(&self) -> Vec<ScheduleRecord> {
        self.rows.values().map(|e| e.record.clone()).collect()
    }

    pub(super) fn get(&self, id: &str) -> Option<ScheduleRecord> {
        self.rows.get(id).map(|e| e.record.clone())
    }

    /// `Store::pause_schedule`: whether the schedule exists.
    pub(super) fn pause(&mut self, id: &str, paused: bool, now: DateTime<Utc>) -> bool {
        let Some(entry) = self.rows.get_mut(id) else {
            return false;
        };
        let r = &mut entry.record;
        if r.paused != paused {
            r.paused = paused;
            r.updated_at = now;
            if !paused {
                r.next_at = None;
            }
        }
        true
    }

    pub(super) fn delete(&mut self, id: &str) -> bool {
        self.rows.remove(id).is_some()
    }

    /// `Store::due_schedules` at `now`.
    pub(super) fn due(&self, now: DateTime<Utc>, limit: u32) -> DueSchedules {
        let live = || self.rows.values().map(|e| &e.record).filter(|r| !r.paused);
        let mut due: Vec<ScheduleRecord> = live()
            .filter(|r| r.next_at.is_none_or(|at| at <= now))
            .cloned()
            .collect();
        // Unarmed first (`None` sorts first), then by the tick owed.
        due.sort_by(|a, b| (a.next_at, &a.def.id).cmp(&(b.next_at, &b.def.id)));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_due = live()
            .filter_map(|r| r.next_at)
            .filter(|&at| at > now)
            .min();
        DueSchedules { now, due, next_due }
    }

    /// The jobs of `fire`'s ticks not fired yet, if the fence lets the step
    /// through (the schedule exists, is not paused, still owes `expected`).
    pub(super) fn admit(&self, fire: &ScheduleFire) -> Option<Vec<NewJob>> {
        let entry = self.rows.get(&fire.id)?;
        if entry.record.paused || entry.record.next_at != fire.expected {
            return None;
        }
        let fresh = |job: &&NewJob| job.run_at.is_some_and(|t| !entry.ticks.contains_key(&t));
        Some(fire.jobs.iter().filter(fresh).cloned().collect())
    }

    /// Records an admitted step: its fired ticks and the tick owed next.
    pub(super) fn record(&mut self, id: &str, next_at: DateTime<Utc>, fired: &[FiredTick]) {
        let Some(entry) = self.rows.get_mut(id) else {
            return;
        };
        entry.record.next_at = Some(next_at);
        for t in fired {
            entry.ticks.insert(t.tick, t.job);
        }
        if let Some(last) = fired.iter().max_by_key(|t| t.tick) {
            entry.record.last_tick = Some(last.tick);
            entry.record.last_job = Some(last.job);
        }
        let kept = usize::try_from(KEPT_TICKS).unwrap_or(usize::MAX);
        while entry.ticks.len() > kept {
            entry.ticks.pop_first();
        }
    }

    /// `Store::time_travel` for schedules: every tick owed moves `by`
    /// earlier, saturating at the earliest time; unarmed ones stay so.
    pub(super) fn shift(&mut self, by: Duration) {
        for entry in self.rows.values_mut() {
            let r = &mut entry.record;
            for at in [r.next_at.as_mut(), r.last_tick.as_mut()]
                .into_iter()
                .flatten()
            {
                *at = earlier(*at, by).max(EARLIEST_TIME);
            }
            // The fired ticks are forgotten rather than moved: they are
            // history, and the tick owed (moved) fences every fire anyway.
            entry.ticks.clear();
        }
    }

    /// `Store::schedule_fires`: newest first.
    pub(super) fn fires(&self, id: &str, limit: u32) -> Vec<FiredTick> {
        let Some(entry) = self.rows.get(id) else {
            return Vec::new();
        };
        entry
            .ticks
            .iter()
            .rev()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(&tick, &job)| FiredTick { tick, job })
            .collect()
    }
}
