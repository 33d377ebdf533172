//! The store contract suite: every Steward store (SQLite, PostgreSQL, ...)
//! runs these same cases, so the engine can rely on one behaviour whatever
//! the database (see `docs/store-contract.md`).
//!
//! A store's test crate implements [`Harness`] (a fresh database per case,
//! and handles on it) and calls [`contract!`] once; `cargo test` then lists
//! one test per case, `contract::<case name>`. There is no way to leave a
//! case out: a store that cannot pass one fails it, visibly.
//!
//! ```
//! // tests/contract.rs of a store crate (here the in-memory reference store).
//! use steward_store_tests::Harness;
//! use steward_store_tests::memory::MemoryStore;
//!
//! struct MemoryHarness;
//!
//! impl Harness for MemoryHarness {
//!     type Store = MemoryStore;
//!     type Database = MemoryStore;
//!     async fn database(&self) -> MemoryStore {
//!         MemoryStore::new()
//!     }
//!     async fn connect(&self, database: &MemoryStore) -> MemoryStore {
//!         database.clone()
//!     }
//! }
//!
//! steward_store_tests::contract!(MemoryHarness);
//! # fn main() {}
//! ```
//!
//! Time: the cases use real time (a store's clock is its database's), with
//! short leases (100 ms) where a lease must expire and generous deadlines
//! (seconds) for anything that should happen; none asserts on speed.
//!
//! Errors: a transient [`StoreError`](steward_core::store::StoreError)
//! (`Busy`, `Unavailable`) is retried for up to 20 s, as the engine would
//! retry it (two handles contending for one SQLite file may answer `Busy`);
//! any other unexpected error fails the case with its message.
#![deny(missing_docs)]
// The suite is test code: an unexpected answer from the store is a panic,
// which is how a case fails (helpers use `unwrap_or_else(|e| panic!(..))`
// to say which rule broke).

mod harness;
mod support;

pub mod cases;
pub mod engine;
pub mod logs;
pub mod memory;

pub use harness::Harness;

/// How long one case may run before it is failed as hung (a store that
/// deadlocks must fail the case, not stall `cargo test`).
pub const CASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Expands to one `#[test]` per contract case, in a module `contract`,
/// each running the case against a fresh database from the given harness.
///
/// Takes an expression that builds the [`Harness`] (evaluated once per
/// case, in the calling file's scope). Each case runs on its own tokio
/// multi-thread runtime with two workers (as
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` would, but
/// without the calling crate needing tokio), within [`CASE_TIMEOUT`].
///
/// ```
/// # use steward_store_tests::{Harness, memory::MemoryStore};
/// # struct MemoryHarness;
/// # impl Harness for MemoryHarness {
/// #     type Store = MemoryStore;
/// #     type Database = MemoryStore;
/// #     async fn database(&self) -> MemoryStore { MemoryStore::new() }
/// #     async fn connect(&self, db: &MemoryStore) -> MemoryStore { db.clone() }
/// # }
/// steward_store_tests::contract!(MemoryHarness);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! contract {
    ($harness:expr $(,)?) => {
        $crate::__contract_cases!(@tests ($harness));
    };
}

/// The one list of cases, fed to [`contract!`] and [`CASES`]. Not public
/// API: use those.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    (@$mode:ident $args:tt) => {
        $crate::__contract_cases! { @$mode $args [
            basics::store_name_is_a_short_lowercase_word,
            basics::migrate_twice_and_a_second_handle_see_one_database,
            basics::empty_batches_return_empty_results,
            basics::a_closed_store_refuses_calls_and_closes_twice,
            enqueue::enqueue_returns_one_result_per_job_in_order_with_increasing_ids,
            enqueue::enqueue_refuses_a_payload_that_is_not_json_and_writes_nothing,
            enqueue::enqueue_refuses_an_empty_kind_and_writes_nothing,
            enqueue::enqueue_refuses_an_empty_queue_and_writes_nothing,
            enqueue::enqueue_refuses_zero_max_attempts_and_writes_nothing,
            enqueue::enqueue_records_every_field_of_the_new_job,
            enqueue::enqueue_without_run_at_is_available_now,
            enqueue::enqueue_with_a_future_run_at_is_scheduled_and_a_past_one_available,
            enqueue::enqueue_refuses_both_run_at_and_delay_and_writes_nothing,
            enqueue::enqueue_refuses_a_run_at_outside_years_1_to_9999_and_writes_nothing,
            enqueue::enqueue_with_a_delay_is_scheduled_that_long_after_the_store_now,
            enqueue::enqueue_with_an_absurd_delay_saturates_instead_of_failing,
            large_batch::large_batch_is_recorded_exactly_like_a_small_one,
            large_batch::large_batch_with_unique_jobs_keeps_order_and_duplicates,
            large_batch::large_batch_with_one_invalid_job_is_refused_and_writes_nothing,
            large_batch::claim_after_a_large_batch_orders_by_priority_then_run_at_then_id,
            unique::unique_queued_key_is_held_while_queued_and_released_at_claim,
            unique::unique_key_is_released_when_a_queued_job_is_cancelled,
            unique::unique_active_key_is_held_while_running_and_released_at_completion,
            unique::unique_active_key_is_held_while_retryable_and_released_when_dead_or_cancelled,
            unique::unique_window_key_holds_in_every_state_until_the_job_is_pruned,
            unique::unique_window_key_is_bucketed_by_the_window_length,
            unique::duplicate_key_in_one_batch_is_a_duplicate_of_the_first,
            unique::refused_batch_leaves_no_unique_key_behind,
            unique::concurrent_enqueues_of_one_key_insert_exactly_once,
            unique::unique_queued_key_through_a_jobs_whole_life,
            unique::unique_active_key_through_a_jobs_whole_life,
            unique::unique_window_key_through_a_jobs_whole_life,
            claim::claim_takes_only_the_kinds_asked_for,
            claim::claim_from_an_empty_or_unknown_queue_or_with_limit_zero_returns_nothing,
            claim::claim_takes_only_due_jobs_that_are_scheduled_available_or_retryable,
            claim::scheduled_job_becomes_claimable_once_its_run_at_passes,
            claim::delayed_job_becomes_claimable_once_its_delay_passes,
            claim::claim_serves_queues_in_the_order_given_up_to_each_limit,
            claim::claim_orders_a_queue_by_priority_then_run_at_then_id,
            claim::claim_marks_the_job_running_with_attempt_worker_and_lease,
            claim::each_claim_gets_a_fresh_lease_token,
            race::claim_returns_each_job_to_exactly_one_of_two_racing_workers,
            race::many_racing_workers_on_two_handles_never_share_a_job,
            race::claims_racing_with_enqueues_take_each_job_exactly_once,
            heartbeat::heartbeat_extends_the_lease_of_a_running_attempt,
            heartbeat::heartbeat_answers_cancel_requested_and_still_extends,
            heartbeat::heartbeat_with_a_stale_token_or_a_finished_job_is_lost_and_writes_nothing,
            heartbeat::late_heartbeat_and_finish_before_any_rescue_are_still_accepted,
            finish::finish_completed_records_completion_and_clears_the_lease,
            finish::finish_failed_with_retry_in_is_retryable_and_claimable_only_once_it_passes,
            finish::failed_job_is_claimed_again_after_its_retry_in_passes,
            finish::finish_failed_without_retry_in_makes_the_job_dead,
            finish::finish_snoozed_does_not_use_up_an_attempt,
            finish::snooze_with_zero_delay_is_available_at_once,
            finish::retry_in_and_snooze_delay_count_from_the_store_clock,
            finish::absurd_retry_and_snooze_delays_saturate_instead_of_failing,
            finish::finish_cancelled_records_the_reason_as_a_cancelled_error,
            finish::finish_applies_each_item_of_a_batch_with_its_own_fence,
            finish::a_finished_attempt_cannot_be_finished_again,
            fencing::stale_worker_completion_is_refused_after_rescue,
            fencing::stale_worker_writes_are_refused_after_rescue,
            checkpoint::checkpoint_is_stored_and_returned_to_the_next_attempt,
            checkpoint::checkpoint_with_a_lost_lease_is_refused_with_lease_lost,
            checkpoint::checkpoint_survives_release_rescue_and_retry,
            checkpoint::retry_of_a_completed_job_starts_from_a_clean_checkpoint,
            release::release_makes_the_job_available_without_counting_the_attempt,
            release::release_is_fenced_per_item,
            cancel::cancel_of_a_queued_job_cancels_it_at_once,
            cancel::cancel_of_a_running_job_asks_its_worker,
            cancel::cancel_of_a_finished_job_is_already_finished,
            cancel::cancel_of_an_unknown_job_is_not_found,
            cancel::a_requested_cancel_is_never_lost_when_the_attempt_ends_another_way,
            retry::retry_makes_a_dead_cancelled_or_completed_job_available_with_a_fresh_budget,
            retry::retry_leaves_queued_running_and_unknown_jobs_alone,
            rescue::rescue_expired_leaves_live_leases_alone,
            rescue::rescue_expired_makes_the_job_available_without_counting_the_attempt,
            rescue::crash_loop_makes_the_job_dead_after_max_rescues_in_a_row,
            rescue::a_claim_takes_at_most_max_suspects_rescued_jobs,
            rescue::a_suspect_stays_one_until_an_attempt_of_it_ends,
            rescue::a_normal_finish_resets_the_rescue_count,
            prune::prune_deletes_completed_jobs_older_than_their_age,
            prune::prune_deletes_dead_and_cancelled_jobs_older_than_their_age,
            prune::prune_never_deletes_queued_running_or_retryable_jobs,
            prune::prune_with_an_absurd_age_keeps_everything,
            inspect::job_of_an_unknown_id_is_none,
            inspect::job_lists_attempt_errors_oldest_first,
            inspect::counts_count_every_state,
            grouped::grouped_counts_of_an_empty_store_are_empty,
            grouped::grouped_counts_follow_every_transition,
            grouped::grouped_counts_count_large_batches_and_schedule_fires,
            query::jobs_lists_by_state_queue_and_kind_oldest_first,
            query::jobs_cursor_pages_through_every_job_exactly_once,
            query::jobs_filters_match_exact_values_only,
            query::jobs_refuses_a_limit_of_zero_or_above_max_page,
            query::jobs_lists_records_with_their_errors,
            query_filters::jobs_filter_by_time_ranges,
            query_filters::jobs_filter_by_ids_and_last_error_text,
            query_filters::jobs_newest_first_and_filters_combined,
            query_pages::jobs_page_tokens_visit_every_job_once_while_jobs_arrive,
            query_pages::jobs_page_tokens_from_another_query_or_garbled_are_refused,
            query_pages::jobs_refuses_bad_ranges_and_error_text,
            query::time_travel_makes_scheduled_and_retryable_jobs_due,
            query::time_travel_moves_schedules_next_at,
            query::time_travel_by_an_absurd_duration_saturates_at_the_earliest_time,
            query::time_travel_wakes_a_waiting_worker_when_work_comes_due,
            query::time_travel_moves_a_schedules_past_with_it,
            history::record_history_adds_up_one_minute_of_one_queue_and_kind,
            history::history_keeps_minutes_apart_and_reads_only_the_span_asked,
            history::history_filters_by_queue_and_kind,
            history::record_history_from_concurrent_writers_loses_nothing,
            history::record_history_refuses_an_invalid_batch_and_writes_nothing,
            history::history_refuses_a_zero_or_too_long_span,
            history::prune_history_deletes_minutes_older_than_the_age,
            history::rescue_expired_adds_rescued_and_dead_jobs_to_the_history,
            queues::pause_and_resume_a_queue_and_repeat_each_as_a_no_op,
            queues::pausing_or_resuming_an_unknown_queue_writes_nothing,
            queues::a_bad_queue_name_is_refused_as_invalid,
            queues::queues_lists_each_queue_with_its_counts_per_state,
            queues::a_pause_is_a_setting_for_workers_not_a_claim_filter,
            queues::enqueue_refuses_a_bad_queue_name_and_writes_nothing,
            leadership::first_taker_leads_and_others_are_refused_while_its_lease_lives,
            leadership::renewal_extends_the_lease,
            leadership::expired_lease_is_taken_over_by_another_holder,
            leadership::resign_frees_the_role_at_once_and_only_for_its_holder,
            leadership::roles_are_independent,
            leadership::concurrent_takers_on_two_handles_elect_exactly_one,
            leadership::try_lead_refuses_an_empty_role_or_holder_and_a_zero_ttl,
            nodes::a_registered_node_lists_and_reads_back_every_field,
            nodes::a_refresh_updates_the_report_and_keeps_started_at,
            nodes::a_node_not_seen_for_its_ttl_expires_and_its_row_goes,
            nodes::an_expired_node_that_returns_starts_afresh,
            nodes::remove_drops_a_node_at_once,
            nodes::register_refuses_bad_input_and_writes_nothing,
            payload_version::payload_version_round_trips_through_enqueue_claim_and_job,
            payload_version::payload_version_zero_is_refused_and_writes_nothing,
            payload_version::schedules_keep_the_payload_version_and_their_ticks_carry_it,
            schedules::a_saved_schedule_reads_back_every_field,
            schedules::saving_again_updates_and_rearms_only_when_the_timing_changed,
            schedules::an_invalid_definition_refuses_the_whole_list_and_writes_nothing,
            schedules::removing_undeclared_schedules_spares_those_of_operators,
            schedules::due_lists_unarmed_and_owed_schedules_but_not_paused_or_later_ones,
            schedules::a_fire_enqueues_one_job_per_tick_and_moves_the_tick_owed,
            schedules::a_fire_from_a_stale_read_or_on_a_paused_schedule_writes_nothing,
            schedules::a_tick_already_fired_never_enqueues_again,
            schedules::racing_fires_of_one_step_apply_exactly_once,
            schedules::a_malformed_fire_is_refused_and_writes_nothing,
            schedules::resume_rearms_and_unknown_ids_answer_false,
            schedules::delete_keeps_the_jobs_and_fired_ticks_are_bounded,
            wait::wait_for_work_returns_by_max_wait_when_nothing_happens,
            wait::wait_for_work_returns_early_after_an_enqueue,
            wait::wait_for_work_returns_early_after_retry_release_snooze_and_rescue,
            wait::wait_for_work_wakes_every_waiting_worker,
            wait::wait_for_work_returns_when_delayed_work_comes_due,
            act::act_on_jobs_applies_each_action_only_to_the_states_it_accepts,
            act::act_on_jobs_skips_jobs_outside_the_filter_states_and_reports_unknown_ids,
            act::act_on_jobs_refuses_an_invalid_chunk_and_writes_nothing,
            act::act_on_jobs_keeps_the_unique_key_rules,
            act::deleted_jobs_are_gone_and_other_jobs_untouched,
            act::reschedule_now_makes_a_waiting_job_due_at_once,
            act::reschedule_changes_priority_and_run_time,
            act::reschedule_refuses_running_finished_unknown_and_invalid,
            act::reschedule_now_wakes_a_waiting_worker,
            bulk::bulk_action_pages_through_every_match_in_chunks,
            bulk::bulk_action_stopped_half_way_resumes_from_its_last_id,
            bulk::bulk_dry_run_counts_without_writing,
            bulk::bulk_refuses_bad_chunks_and_a_filter_matching_nothing_is_zero,
            bulk::bulk_cancel_and_retry_race_a_worker_on_the_same_jobs,
        ] }
    };
    (@tests ($harness:expr) [$($module:ident :: $case:ident),* $(,)?]) => {
        /// The store contract (`steward-store-tests`): one test per rule.
        mod contract {
            // The harness expression is written in the calling file.
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::__run_case(stringify!($case), async {
                        let harness = $harness;
                        $crate::cases::$module::$case(&harness).await;
                    });
                }
            )*
        }
    };
    (@names () [$($module:ident :: $case:ident),* $(,)?]) => {
        &[$(stringify!($case)),*]
    };
}

/// Every case [`contract!`] runs, by test name (`contract::<name>`), in the
/// order they are declared. Generated from the same list as the macro.
pub const CASES: &[&str] = crate::__contract_cases!(@names ());

/// Runs one case on a fresh two-worker runtime, failing it if it hangs.
/// Used by [`contract!`]; not public API.
#[doc(hidden)]
pub fn __run_case<F: std::future::Future<Output = ()>>(name: &str, case: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("building the runtime for case `{name}`: {e}"));
    runtime.block_on(async {
        if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
            panic!(
                "contract case `{name}` did not finish within {CASE_TIMEOUT:?}: a hung store call?"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `pub async fn` in `src/cases` is in the list the macro runs,
    /// so a new case cannot be written and silently never run.
    #[test]
    fn every_case_function_is_registered_once() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cases");
        let mut written = BTreeSet::new();
        for entry in std::fs::read_dir(dir).expect("src/cases exists") {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a readable case file");
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(written.insert(name.clone()), "case {name} is defined twice");
                }
            }
        }
        let registered: BTreeSet<String> = super::CASES.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            registered.len(),
            super::CASES.len(),
            "a case is registered twice"
        );
        let unregistered: Vec<_> = written.difference(&registered).collect();
        assert!(
            unregistered.is_empty(),
            "cases missing from __contract_cases!: {unregistered:?}"
        );
        assert_eq!(written, registered);
    }
}
