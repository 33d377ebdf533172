//! The worker's loop: claim into the buffers, start buffered jobs into free
//! slots, book the ones that end, until the worker is told to stop.

use std::sync::Arc;
use std::time::Duration;

use super::Worker;
use super::dispatch::Dispatcher;
use super::pauses::{self, Paused};
use super::ready::Readiness;
use crate::Context;
use crate::store::{ClaimRequest, ClaimedJob, Store, StoreError};

/// The worker's loop: claim into the buffers, start buffered jobs into free
/// slots, book the ones that end, until the worker is told to stop.
pub(super) async fn serve<S: Store>(
    worker: &Worker<S>,
    ctx: &Context,
    ready: &Readiness,
    d: &mut Dispatcher,
    mut paused: Paused,
) {
    let config = &worker.config;
    let store = &worker.store;
    d.set_paused(&paused.borrow_and_update());
    let mut backoff = Duration::from_millis(100);
    // At most one claim in flight, polled alongside the running jobs: slots
    // keep turning over (outcomes queued, buffered jobs started) while the
    // store answers, instead of the whole loop waiting a round trip per
    // claim. The claim is what feeds the buffers, so overlapping it with the
    // work they hold is what keeps a fast queue busy.
    let mut claiming = None;
    // Whether to claim when there is room: after a claim that got all it
    // asked for (there may be more), a job's end, or a wake-up; not after a
    // claim that came back short (the queue is empty: wait for work).
    let mut may_claim = true;
    let mut claim_after = tokio::time::Instant::now();
    let kinds = worker.registry.kinds();

    while !ctx.is_cancelled() {
        d.start_buffered();
        let prefetch = d.prefetch(config.prefetch);
        let backing_off = tokio::time::Instant::now() < claim_after;
        if claiming.is_none() && !backing_off && may_claim {
            let wanted = d.wanted_claims(&prefetch, config.fetch_batch);
            if !wanted.is_empty() {
                let request = ClaimRequest {
                    worker: config.id.clone(),
                    queues: wanted,
                    lease: config.lease,
                    max_suspects: d.max_suspects(),
                    kinds: Some(kinds.clone()),
                };
                claiming = Some(Box::pin(timed_claim(store.clone(), request)));
            }
        }
        let room = claiming.is_none() && !backing_off && !may_claim && d.has_room(&prefetch);
        tokio::select! {
            biased;
            _ = ctx.cancelled() => break,
            (claimed, took, asked) = async {
                match claiming.as_mut() {
                    Some(claim) => claim.await,
                    None => std::future::pending().await,
                }
            }, if claiming.is_some() => {
                claiming = None;
                d.pace.claimed(took);
                match claimed {
                    Ok(claimed) => {
                        backoff = Duration::from_millis(100);
                        ready.claims(true);
                        may_claim = claimed.len() as u64 >= asked;
                        d.buffer_claimed(claimed);
                        // A claim sent before a pause was heard of.
                        pauses::give_back(&**store, d).await;
                        // Started at once, not at the next turn: a stop
                        // arriving now would otherwise release them unrun.
                        d.start_buffered();
                    }
                    Err(err) => {
                        ready.claims(false);
                        may_claim = true;
                        tracing::error!(error = %err, retry_in = ?backoff, "cannot claim jobs; backing off");
                        claim_after = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            Some(joined) = d.next_ended(), if d.is_busy() => {
                may_claim = true;
                d.ended(joined).await;
            }
            Ok(()) = paused.changed() => {
                d.set_paused(&paused.borrow_and_update());
                pauses::give_back(&**store, d).await;
                // A resumed queue claims at once.
                may_claim = true;
            }
            _ = tokio::time::sleep_until(claim_after), if backing_off && claiming.is_none() => {}
            _ = store.wait_for_work(config.poll_interval), if room => may_claim = true,
        }
        if d.book_ended().await {
            may_claim = true;
        }
    }

    // A claim still in flight at shutdown: the store already shows its jobs
    // as running, so those that fit a free slot start and get the drain's
    // time to finish, as if the claim had landed a moment earlier; the rest
    // are buffered, and released by the drain.
    if let Some(claim) = claiming.take() {
        if let (Ok(claimed), _, _) = claim.await {
            d.buffer_claimed(claimed);
            d.start_buffered();
        }
    }
}

/// One claim, with how long it took and how many jobs it asked for.
async fn timed_claim<S: Store>(
    store: Arc<S>,
    request: ClaimRequest,
) -> (Result<Vec<ClaimedJob>, StoreError>, Duration, u64) {
    let asked = request.queues.iter().map(|q| u64::from(q.limit)).sum();
    let started = tokio::time::Instant::now();
    let result = store.claim(request).await;
    (result, started.elapsed(), asked)
}
