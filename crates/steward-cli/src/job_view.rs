//! What `steward jobs show` prints: one view of a job, written as JSON or as
//! text with the same field names, every time in one format.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use steward::store::{ErrorKind, JobId, JobRecord, JobState};

/// A time as the CLI prints it everywhere: RFC 3339 in UTC with exactly
/// three decimals. Truncated, not rounded: PostgreSQL keeps microseconds and
/// SQLite milliseconds, and the same instant must print the same on both
/// (rounding could also carry into the next second, past what was stored).
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One job as printed; the JSON keys are [`JobRecord`]'s field names.
#[derive(Serialize)]
pub struct JobView {
    id: JobId,
    kind: String,
    queue: String,
    state: JobState,
    priority: i16,
    payload: JsonText,
    payload_version: u32,
    attempt: u32,
    max_attempts: u32,
    run_at: String,
    created_at: String,
    attempted_at: Option<String>,
    finished_at: Option<String>,
    errors: Vec<AttemptView>,
    checkpoint: Option<JsonText>,
    worker: Option<String>,
    lease_expires_at: Option<String>,
    rescues: u32,
    interrupted: u32,
    cancel_requested: bool,
    timeout: Option<Duration>,
    unique_key: Option<String>,
}

/// JSON the store keeps as text (a payload, a checkpoint): written into the
/// output as the JSON value it is, so scripts read `.payload.field`, or as
/// a string if it does not parse (a row written by hand).
#[derive(Serialize)]
#[serde(untagged)]
pub enum JsonText {
    Value(Box<serde_json::value::RawValue>),
    Text(String),
}

impl JsonText {
    /// The value `text` holds, or `text` itself if it is not JSON.
    pub fn new(text: String) -> JsonText {
        match serde_json::from_str::<Box<serde_json::value::RawValue>>(&text) {
            Ok(raw) => JsonText::Value(raw),
            Err(_) => JsonText::Text(text),
        }
    }

    /// The text as stored (compact JSON as written).
    pub fn as_str(&self) -> &str {
        match self {
            JsonText::Value(raw) => raw.get(),
            JsonText::Text(text) => text,
        }
    }
}

/// One failed attempt as printed.
#[derive(Serialize)]
struct AttemptView {
    attempt: u32,
    at: String,
    kind: ErrorKind,
    message: String,
}

impl From<JobRecord> for JobView {
    fn from(job: JobRecord) -> JobView {
        // Destructured in full so a field added to JobRecord fails to
        // compile here instead of silently missing from the output.
        let JobRecord {
            id,
            kind,
            queue,
            state,
            priority,
            payload,
            payload_version,
            attempt,
            max_attempts,
            run_at,
            created_at,
            attempted_at,
            finished_at,
            errors,
            checkpoint,
            worker,
            lease_expires_at,
            rescues,
            interrupted,
            cancel_requested,
            timeout,
            unique_key,
        } = job;
        JobView {
            id,
            kind,
            queue,
            state,
            priority,
            payload: JsonText::new(payload),
            payload_version,
            attempt,
            max_attempts,
            run_at: format_time(run_at),
            created_at: format_time(created_at),
            attempted_at: attempted_at.map(format_time),
            finished_at: finished_at.map(format_time),
            errors: errors
                .into_iter()
                .map(|e| AttemptView {
                    attempt: e.attempt,
                    at: format_time(e.at),
                    kind: e.kind,
                    message: e.message,
                })
                .collect(),
            checkpoint: checkpoint.map(JsonText::new),
            worker,
            lease_expires_at: lease_expires_at.map(format_time),
            rescues,
            interrupted,
            cancel_requested,
            timeout,
            unique_key,
        }
    }
}

impl JobView {
    /// One `name: value` line per field, in the JSON's order; `-` for none.
    /// Failed attempts follow `errors:` on indented lines, and a value's own
    /// line breaks are indented too, so every line at the margin is a field.
    pub fn text(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        let fields: [(&str, String); 22] = [
            ("id", self.id.to_string()),
            ("kind", self.kind.clone()),
            ("queue", self.queue.clone()),
            ("state", self.state.to_string()),
            ("priority", self.priority.to_string()),
            ("payload", self.payload.as_str().to_string()),
            ("payload_version", self.payload_version.to_string()),
            ("attempt", self.attempt.to_string()),
            ("max_attempts", self.max_attempts.to_string()),
            ("run_at", self.run_at.clone()),
            ("created_at", self.created_at.clone()),
            ("attempted_at", opt(&self.attempted_at)),
            ("finished_at", opt(&self.finished_at)),
            ("errors", self.errors.len().to_string()),
            (
                "checkpoint",
                self.checkpoint
                    .as_ref()
                    .map_or("-".to_string(), |c| c.as_str().to_string()),
            ),
            ("worker", opt(&self.worker)),
            ("lease_expires_at", opt(&self.lease_expires_at)),
            ("rescues", self.rescues.to_string()),
            ("interrupted", self.interrupted.to_string()),
            ("cancel_requested", self.cancel_requested.to_string()),
            (
                "timeout",
                self.timeout.map_or("-".to_string(), |t| format!("{t:?}")),
            ),
            ("unique_key", opt(&self.unique_key)),
        ];
        let mut out = String::new();
        for (name, value) in fields {
            let _ = writeln!(out, "{:<18}{}", format!("{name}:"), indented(&value));
            if name == "errors" {
                for e in &self.errors {
                    let _ = writeln!(
                        out,
                        "  attempt {} failed at {} ({}): {}",
                        e.attempt,
                        e.at,
                        e.kind.as_str(),
                        indented(&e.message)
                    );
                }
            }
        }
        out
    }
}

/// `text` with its continuation lines indented.
fn indented(text: &str) -> String {
    text.replace('\n', "\n    ")
}

/// Jobs as a table for people: a header, then one line per job, the last
/// error cut to one short line.
pub fn table(jobs: &[JobRecord]) -> String {
    let rows: Vec<[String; 7]> = jobs
        .iter()
        .map(|j| {
            let error = j.errors.last().map_or(String::new(), |e| {
                let line = e.message.lines().next().unwrap_or_default();
                let mut cut: String = line.chars().take(60).collect();
                if cut.len() < line.len() {
                    cut.push('…');
                }
                cut
            });
            [
                j.id.to_string(),
                j.state.as_str().to_string(),
                j.queue.clone(),
                j.kind.clone(),
                format!("{}/{}", j.attempt, j.max_attempts),
                format_time(j.run_at),
                error,
            ]
        })
        .collect();
    let header = [
        "id",
        "state",
        "queue",
        "kind",
        "attempt",
        "run_at",
        "last error",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn times_print_in_utc_with_exactly_three_decimals_truncated() {
        let at = |nanos| {
            Utc.with_ymd_and_hms(2026, 12, 7, 17, 5, 59)
                .single()
                .expect("a valid time")
                + chrono::Duration::nanoseconds(nanos)
        };
        assert_eq!(format_time(at(0)), "2026-12-07T17:05:59.000Z");
        assert_eq!(format_time(at(123_000_000)), "2026-12-07T17:05:59.123Z");
        assert_eq!(format_time(at(999_999_000)), "2026-12-07T17:05:59.999Z");
    }
}
