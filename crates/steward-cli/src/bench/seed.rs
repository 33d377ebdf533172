//! Seeding `steward bench queries`' store through the store API: a table of
//! realistic jobs, most completed, with payloads and errors of real size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use steward::store::{
    AttemptError, ClaimRequest, ErrorKind, Finish, FinishOutcome, JobId, NewJob, QueueClaim,
    StateCounts, Store,
};

/// The queues the seeded jobs are spread over.
pub const QUEUES: [&str; 8] = [
    "default", "mail", "billing", "reports", "media", "webhooks", "search", "exports",
];

/// The kinds the seeded jobs are spread over.
pub const KINDS: [&str; 20] = [
    "send_welcome",
    "send_digest",
    "charge_card",
    "refund",
    "invoice_pdf",
    "daily_report",
    "weekly_report",
    "resize_image",
    "transcode",
    "thumbnail",
    "deliver_webhook",
    "retry_webhook",
    "reindex",
    "index_document",
    "export_csv",
    "export_json",
    "sync_crm",
    "cleanup_tmp",
    "audit_log",
    "notify_slack",
];

/// What becomes of a seeded job, out of every 100: 90 completed, 3 dead,
/// 2 cancelled, 1 retryable, 2 scheduled, 2 available.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Completed,
    Dead,
    Cancelled,
    Retryable,
    Scheduled,
    Available,
}

fn fate(i: u64) -> Fate {
    match mix(i, 1) % 100 {
        0..90 => Fate::Completed,
        90..93 => Fate::Dead,
        93..95 => Fate::Cancelled,
        95..96 => Fate::Retryable,
        96..98 => Fate::Scheduled,
        _ => Fate::Available,
    }
}

/// A cheap deterministic scramble of `i`, so the queues, kinds and fates
/// are interleaved along the ids as real traffic would be.
fn mix(i: u64, salt: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

/// Job number `i`: a queue and a kind (skewed: the first ones are busier),
/// a payload of about 250 bytes.
fn new_job(i: u64) -> NewJob {
    let queue = QUEUES[(mix(i, 2) % 36).isqrt() as usize % QUEUES.len()];
    let kind = KINDS[(mix(i, 3) % 400).isqrt() as usize % KINDS.len()];
    let payload = format!(
        r#"{{"account_id":{},"request_id":"req-{:016x}","email":"user{}@example.com","locale":"en-GB","attempt_note":"seeded by steward bench queries","tags":["bench","seed","realistic"],"amount_cents":{}}}"#,
        mix(i, 4) % 1_000_000,
        mix(i, 5),
        i,
        mix(i, 6) % 100_000
    );
    NewJob::new(kind, payload).queue(queue)
}

/// A failed attempt's error with a chain of causes, about 400 bytes.
fn error(attempt: u32) -> AttemptError {
    AttemptError {
        attempt,
        at: Utc::now(),
        kind: ErrorKind::Error,
        message: "calling the payment provider: POST https://api.example.com/v1/charges \
                  returned 503 Service Unavailable after 30.0 s: upstream connect error or \
                  disconnect/reset before headers. reset reason: connection timeout; caused \
                  by: operation timed out; retry budget for this account exhausted \
                  (3 of 3 in the last 10 minutes), giving up on this attempt"
            .to_string(),
    }
}

/// Scheduled jobs and retries wait this long: never due during a run.
const DAY: Duration = Duration::from_secs(86_400);

/// How many jobs one enqueue call carries (large: PostgreSQL writes
/// batches of 512 plain jobs or more with `COPY`).
const BATCH: u64 = 10_000;

/// Seeds `jobs` jobs: in batches, each enqueued then claimed and finished
/// with its fate (scheduled ones wait a day); the available ones are
/// enqueued last, as a backlog is the newest work. Returns the time taken.
pub async fn seed<S: Store>(store: &S, jobs: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut backlog = Vec::new();
    let mut start = 0;
    while start < jobs {
        let end = (start + BATCH).min(jobs);
        let mut batch = Vec::new();
        let mut fates = Vec::new();
        for i in start..end {
            match fate(i) {
                Fate::Available => backlog.push(new_job(i)),
                Fate::Scheduled => {
                    batch.push(new_job(i).delay(DAY));
                    fates.push(None);
                }
                f => {
                    batch.push(new_job(i));
                    fates.push(Some(f));
                }
            }
        }
        let ids = store.enqueue(batch).await?;
        let due: HashMap<JobId, Fate> = ids
            .iter()
            .zip(fates)
            .filter_map(|(e, f)| f.map(|f| (e.id, f)))
            .collect();
        settle(store, &due).await?;
        start = end;
    }
    for chunk in backlog.chunks(BATCH as usize) {
        store.enqueue(chunk.to_vec()).await?;
    }
    Ok(started.elapsed())
}

/// Claims every due job and finishes each with its fate.
async fn settle<S: Store>(store: &S, fates: &HashMap<JobId, Fate>) -> anyhow::Result<()> {
    let request = ClaimRequest {
        worker: "bench-seed".to_string(),
        queues: QUEUES
            .iter()
            .map(|q| QueueClaim {
                queue: (*q).to_string(),
                limit: 1000,
            })
            .collect(),
        lease: Duration::from_secs(600),
        max_suspects: 0,
        kinds: None,
    };
    loop {
        let claimed = store.claim(request.clone()).await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let batch = claimed
            .iter()
            .map(|c| {
                let outcome = match fates.get(&c.lease.id) {
                    Some(Fate::Dead) => FinishOutcome::Failed {
                        error: error(c.attempt),
                        retry_in: None,
                    },
                    Some(Fate::Retryable) => FinishOutcome::Failed {
                        error: error(c.attempt),
                        retry_in: Some(DAY),
                    },
                    Some(Fate::Cancelled) => FinishOutcome::Cancelled {
                        reason: "the customer closed the account".to_string(),
                    },
                    _ => FinishOutcome::Completed,
                };
                Finish {
                    lease: c.lease,
                    outcome,
                }
            })
            .collect();
        store.finish(batch).await?;
    }
}

/// The counts as one line: `completed a, dead b, ...`.
pub fn describe(c: &StateCounts) -> String {
    format!(
        "completed {}, dead {}, cancelled {}, retryable {}, scheduled {}, available {}, running {}",
        c.completed, c.dead, c.cancelled, c.retryable, c.scheduled, c.available, c.running
    )
}
