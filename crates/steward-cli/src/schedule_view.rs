//! What `steward schedules` prints: one view of a schedule, written as
//! JSON or as text with the same field names, every time in one format.

use std::fmt::Write as _;

use serde::Serialize;
use steward::store::{FiredTick, JobId, Saved, ScheduleDef, ScheduleRecord};

use crate::job_view::{JsonText, format_time};

/// One schedule as printed; the JSON keys are [`ScheduleRecord`]'s (and its
/// definition's) field names, times in the CLI's one format, the misfire
/// policy as `--misfire` takes it.
#[derive(Serialize)]
pub(crate) struct ScheduleView {
    pub(crate) id: String,
    pub(crate) cron: String,
    pub(crate) zone: String,
    pub(crate) kind: String,
    pub(crate) payload: JsonText,
    pub(crate) payload_version: u32,
    pub(crate) queue: String,
    pub(crate) priority: i16,
    pub(crate) max_attempts: u32,
    pub(crate) misfire: String,
    pub(crate) origin: &'static str,
    pub(crate) paused: bool,
    pub(crate) next_at: Option<String>,
    pub(crate) last_tick: Option<String>,
    pub(crate) last_job: Option<JobId>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(record: ScheduleRecord) -> ScheduleView {
        // Destructured in full so a field added to the record fails to
        // compile here instead of silently missing from the output.
        let ScheduleRecord {
            def:
                ScheduleDef {
                    id,
                    cron,
                    zone,
                    kind,
                    payload,
                    payload_version,
                    queue,
                    priority,
                    max_attempts,
                    misfire,
                    origin,
                },
            paused,
            next_at,
            last_tick,
            last_job,
            created_at,
            updated_at,
        } = record;
        ScheduleView {
            id,
            cron,
            zone,
            kind,
            payload: JsonText::new(payload),
            payload_version,
            queue,
            priority,
            max_attempts,
            misfire: misfire.to_string(),
            origin: origin.as_str(),
            paused,
            next_at: next_at.map(format_time),
            last_tick: last_tick.map(format_time),
            last_job,
            created_at: format_time(created_at),
            updated_at: format_time(updated_at),
        }
    }
}

impl ScheduleView {
    /// One `name: value` line per field, in the JSON's order; `-` for none.
    pub(crate) fn text(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let fields: [(&str, String); 17] = [
            ("id", self.id.clone()),
            ("cron", self.cron.clone()),
            ("zone", self.zone.clone()),
            ("kind", self.kind.clone()),
            ("payload", self.payload.as_str().to_string()),
            ("payload_version", self.payload_version.to_string()),
            ("queue", self.queue.clone()),
            ("priority", self.priority.to_string()),
            ("max_attempts", self.max_attempts.to_string()),
            ("misfire", self.misfire.clone()),
            ("origin", self.origin.to_string()),
            ("paused", self.paused.to_string()),
            ("next_at", opt(&self.next_at)),
            ("last_tick", opt(&self.last_tick)),
            (
                "last_job",
                self.last_job.map_or("-".to_string(), |j| j.to_string()),
            ),
            ("created_at", self.created_at.clone()),
            ("updated_at", self.updated_at.clone()),
        ];
        let mut out = String::new();
        for (name, value) in fields {
            // A payload may span lines: indent the rest so every line at the
            // margin is a field.
            let _ = writeln!(
                out,
                "{:<14}{}",
                format!("{name}:"),
                value.replace('\n', "\n    ")
            );
        }
        out
    }
}

/// `schedules add --json`: what saving did, the schedule, its next times.
#[derive(Serialize)]
pub(crate) struct AddView {
    pub(crate) saved: Saved,
    #[serde(flatten)]
    pub(crate) schedule: ScheduleView,
    pub(crate) upcoming: Vec<String>,
}

/// `schedules show`: the schedule, its next times, its latest ticks.
#[derive(Serialize)]
pub(crate) struct ShowView {
    #[serde(flatten)]
    pub(crate) schedule: ScheduleView,
    pub(crate) upcoming: Vec<String>,
    pub(crate) fired: Vec<TickView>,
}

impl ShowView {
    /// The schedule's fields, then `upcoming:` and `fired:` with a count
    /// and one indented line per time or tick.
    pub(crate) fn text(&self) -> String {
        let mut out = self.schedule.text();
        let upcoming = if self.schedule.paused {
            "0 (paused)".to_string()
        } else {
            self.upcoming.len().to_string()
        };
        let _ = writeln!(out, "{:<14}{upcoming}", "upcoming:");
        for at in &self.upcoming {
            let _ = writeln!(out, "  {at}");
        }
        let _ = writeln!(out, "{:<14}{}", "fired:", self.fired.len());
        for tick in &self.fired {
            let _ = writeln!(out, "  {} job {}", tick.tick, tick.job);
        }
        out
    }
}

/// A tick that fired, and its job.
#[derive(Serialize)]
pub(crate) struct TickView {
    pub(crate) tick: String,
    pub(crate) job: JobId,
}

impl From<FiredTick> for TickView {
    fn from(t: FiredTick) -> TickView {
        TickView {
            tick: format_time(t.tick),
            job: t.job,
        }
    }
}

/// The `schedules list` table: one row per schedule, columns as wide as
/// their widest value.
pub(crate) fn table(all: &[ScheduleRecord]) -> String {
    if all.is_empty() {
        return "no schedules\n".to_string();
    }
    let header = ["id", "cron", "tz", "kind", "paused", "next_at", "last_tick"].map(String::from);
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|s| {
            [
                s.def.id.clone(),
                s.def.cron.clone(),
                s.def.zone.clone(),
                s.def.kind.clone(),
                if s.paused { "yes" } else { "no" }.to_string(),
                s.next_at.map_or("-".to_string(), format_time),
                s.last_tick.map_or("-".to_string(), format_time),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
