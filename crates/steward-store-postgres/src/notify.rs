//! Waking workers in other processes: `NOTIFY` on writes that make jobs due,
//! one `LISTEN`ing connection per [`PostgresStore`](crate::PostgresStore).
//!
//! - **Sending**: after a write that made jobs due now (enqueue, operator
//!   retry, release, a due retry or snooze, rescue) the store runs one
//!   `SELECT pg_notify(channel, payload)` on the same connection — inside the
//!   same transaction when there is one, so the notification is delivered
//!   at commit and never for a rolled-back write. One per write operation,
//!   not per row; the payload is the distinct queue names, sorted, joined by
//!   `,` (informational: a wake-up wakes every waiter whatever the queue).
//! - **Due times**: a write that makes jobs due *later* (an enqueue with a
//!   delay or a future `run_at`, a retry's back-off, a snooze) sends one
//!   notification whose payload is `+` and the milliseconds until the
//!   earliest of them comes due (`+1500`), counted when it is sent: relative,
//!   so the nodes' clocks need not agree. A listener remembers it
//!   (`WorkSignal::due_in`) and its workers' waits end then, instead of
//!   waking now.
//! - **Channel**: `<schema>_jobs`, so stores in two schemas of one database
//!   do not wake each other (see [`channel`] for long names).
//! - **Listening**: one task per store, started by the first
//!   `wait_for_work`, holding one connection (application name
//!   `steward-listener`) in a pool of its own. Every notification wakes
//!   every waiter through the store's `WorkSignal`, or, for a due time,
//!   sets when they wake. When the connection drops,
//!   the task logs it, reconnects with exponential back-off (100 ms to 5 s,
//!   with jitter) and, once listening again, wakes every waiter once:
//!   notifications sent while it was away are lost, so workers re-check the
//!   table. Polling (`max_wait`) stays the fallback throughout.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use steward_core::store::WorkSignal;

/// PostgreSQL's longest identifier (and channel name), in bytes.
const MAX_NAME: usize = 63;

/// The largest payload sent; a longer list of queues is sent as `*`
/// (PostgreSQL refuses payloads of 8000 bytes or more).
const MAX_PAYLOAD: usize = 7_900;

const SEND: &str = "SELECT pg_notify($1, $2)";

/// First and longest pause before reconnecting the listener.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The application name of the listener's connection, as
/// `pg_stat_activity` shows it.
pub(crate) const LISTENER_APPLICATION_NAME: &str = "steward-listener";

/// The channel of the store in `schema`: `<schema>_jobs`. A schema name
/// longer than 58 bytes is cut so the channel fits PostgreSQL's 63 bytes;
/// two such schemas sharing their first 58 bytes share a channel, which
/// costs only spurious wake-ups (allowed), never a missed one.
pub(crate) fn channel(schema: &str) -> String {
    // Schema names are ASCII (checked by `options::quoted_schema`), so any
    // byte index is a character boundary.
    let keep = schema.len().min(MAX_NAME - "_jobs".len());
    format!("{}_jobs", &schema[..keep])
}

/// The payload for these queues: distinct names, sorted, joined by `,`.
pub(crate) fn payload(queues: &BTreeSet<String>) -> String {
    let joined = queues
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    // A list starting with `+` would read as a due time (`due_payload`).
    if joined.len() > MAX_PAYLOAD || joined.starts_with('+') {
        "*".to_string()
    } else {
        joined
    }
}

/// Sends one notification naming `queues` on `channel`, on `conn` (inside
/// its transaction, if any). Nothing is sent for no queues.
pub(crate) async fn send(
    conn: &mut PgConnection,
    channel: &str,
    queues: &BTreeSet<String>,
) -> Result<(), sqlx::Error> {
    if queues.is_empty() {
        return Ok(());
    }
    sqlx::query(SEND)
        .bind(channel)
        .bind(payload(queues))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The payload announcing work due `delay` from now: `+<milliseconds>`
/// (at least 1: a zero would read as due now).
pub(crate) fn due_payload(delay: Duration) -> String {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
    format!("+{ms}")
}

/// The delay a payload announces, if it is a due-time payload.
fn due_in(payload: &str) -> Option<Duration> {
    let ms = payload.strip_prefix('+')?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ms))
}

/// Announces work due `delay` from now on `channel`, on `conn` (inside its
/// transaction, if any).
pub(crate) async fn send_due(
    conn: &mut PgConnection,
    channel: &str,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(SEND)
        .bind(channel)
        .bind(due_payload(delay))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a notification means for the waiting workers: a due time to
/// remember, or work due now.
fn heard(signal: &WorkSignal, payload: &str) {
    match due_in(payload) {
        Some(delay) => signal.due_in(delay),
        None => signal.wake(),
    }
}

/// The listener task: listens on `channel` through `pool` (one connection)
/// until aborted, waking `signal` on every notification (or setting a due
/// time) and after every (re)connection.
pub(crate) async fn listen(pool: PgPool, channel: String, schema: String, signal: Arc<WorkSignal>) {
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    loop {
        match subscribe(&pool, &channel).await {
            Ok(mut listener) => {
                if connected_before {
                    tracing::info!(%schema, %channel, "postgres listener reconnected");
                } else {
                    tracing::debug!(%schema, %channel, "postgres listener connected");
                }
                connected_before = true;
                backoff = BACKOFF_MIN;
                // Anything sent before this point (first start, or while
                // disconnected) was not heard: workers must look.
                signal.wake();
                let lost = loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => heard(&signal, n.payload()),
                        Ok(None) => break "connection closed".to_string(),
                        Err(e) => break e.to_string(),
                    }
                };
                tracing::warn!(
                    %schema, %channel, error = %lost,
                    "postgres listener lost its connection; reconnecting \
                     (workers poll meanwhile)"
                );
            }
            Err(e) => {
                tracing::warn!(
                    %schema, %channel, error = %e, retry_in = ?backoff,
                    "postgres listener cannot connect; workers poll meanwhile"
                );
            }
        }
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A listener on `channel`, connected and listening.
async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnection is ours (to log it and wake waiters after it).
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// `d` plus up to half of it again, so many nodes that lost the server at
/// once do not reconnect in lockstep.
fn jittered(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_fit_postgres_names() {
        assert_eq!(channel("steward"), "steward_jobs");
        let long = "a".repeat(63);
        assert_eq!(channel(&long).len(), MAX_NAME);
        assert!(channel(&long).ends_with("_jobs"));
    }

    #[test]
    fn due_times_travel_as_milliseconds_and_queue_lists_do_not_parse_as_them() {
        assert_eq!(due_payload(Duration::from_millis(1500)), "+1500");
        assert_eq!(due_payload(Duration::from_micros(10)), "+1");
        assert_eq!(due_in("+1500"), Some(Duration::from_millis(1500)));
        assert_eq!(due_in("default,emails"), None);
        assert_eq!(due_in("*"), None);
        let odd: BTreeSet<String> = ["+5".to_string()].into();
        assert_eq!(payload(&odd), "*");
    }

    #[test]
    fn payload_lists_queues_once_and_caps_its_size() {
        let q: BTreeSet<String> = ["b", "a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(payload(&q), "a,b");
        let many: BTreeSet<String> = (0..2_000).map(|i| format!("queue{i}")).collect();
        assert_eq!(payload(&many), "*");
    }
}
