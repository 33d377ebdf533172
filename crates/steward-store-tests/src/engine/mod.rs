//! The engine suite: the job engine (`Client`, `Worker`, `Maintenance`) run
//! end to end on a real store, once per store, like the contract suite.
//! Where the contract proves what a store records, these prove what a user
//! sees: retries, timeouts, checkpoints, cancellation, shutdown, and how
//! the worker copes with a store that fails under it ([`Faulty`] injects
//! the faults over any store) and with user code that misbehaves.

pub mod cases;
mod faults;
mod faulty;
mod history;
mod hostile;
mod kit;
mod leadership;
mod nodes;
mod outcomes;
mod pauses;
mod shutdown;

#[doc(hidden)]
pub use faulty::Faulty;
#[doc(hidden)]
pub use kit::*;

/// Expands to one `#[test]` per engine case, run against `$harness`.
///
/// ```ignore
/// steward_store_tests::engine!(SqliteHarness);
/// ```
#[macro_export]
macro_rules! engine {
    ($harness:expr $(,)?) => {
        $crate::__engine_cases!(($harness) [
            typed_job_runs_once_and_completes,
            the_worker_writes_what_its_attempts_did_to_the_history,
            a_stopping_worker_writes_its_last_history,
            maintenance_prunes_history_past_its_retention,
            client_bulk_and_unique_enqueue_return_ids,
            a_kind_the_worker_does_not_run_is_left_for_another_worker,
            payload_that_no_longer_matches_fails_with_a_clear_error,
            failing_job_is_retried_with_backoff_then_dead_with_every_error_kept,
            panicking_job_records_its_panic_message,
            flaky_job_succeeds_after_retries,
            delayed_job_does_not_run_before_its_time,
            jobs_of_a_queue_run_by_priority,
            queue_concurrency_limit_is_respected,
            job_timeout_cancels_its_context_and_fails_the_attempt,
            job_ignoring_its_timeout_is_dropped_after_the_grace,
            checkpoint_lets_the_next_attempt_resume,
            snooze_does_not_use_up_an_attempt,
            job_can_ask_to_be_retried_later,
            job_can_cancel_itself,
            cancelling_a_running_job_fires_its_token_and_ends_it_cancelled,
            shutdown_lets_running_jobs_finish_within_the_drain_timeout,
            shutdown_releases_jobs_that_cannot_finish_as_interrupted,
            maintenance_rescues_expired_leases_and_prunes,
            error_text_with_a_nul_character_is_recorded,
            only_the_leader_runs_maintenance_and_a_clean_stop_hands_over,
            a_dead_leader_is_replaced_once_its_lease_expires,
            a_worker_whose_loop_panics_gives_back_its_jobs_and_restarts_with_its_kinds,
            a_job_reclaimed_by_the_same_worker_keeps_its_new_attempt_apart_from_the_stale_one,
            an_outcome_the_database_refuses_for_good_holds_back_no_other,
            the_worker_is_not_ready_while_outcomes_cannot_be_written,
            the_worker_drains_within_what_is_left_of_the_shutdown_timeout,
            running_jobs_hear_the_worker_is_stopping_before_they_are_cancelled,
            the_worker_stops_in_time_when_the_store_is_unreachable,
            a_panicking_error_display_fails_the_attempt_and_frees_its_slot,
            a_panicking_payload_decoder_fails_the_attempt_and_frees_its_slot,
            a_job_missing_its_state_fails_at_once_naming_the_type,
            a_failed_read_of_the_paused_queues_keeps_the_last_known_set,
            a_node_whose_refreshes_fail_expires_and_returns_and_the_worker_runs_on,
        ]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __engine_cases {
    (($harness:expr) [$($case:ident),* $(,)?]) => {
        /// The engine suite (`steward-store-tests`): the job engine on this store.
        mod engine {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::__run_case(stringify!($case), async {
                        let harness = $harness;
                        $crate::engine::cases::$case(&harness).await;
                    });
                }
            )*
        }
    };
}
