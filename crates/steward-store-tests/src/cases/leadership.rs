//! Leadership leases (`try_lead`, `resign`): one holder per role at a time,
//! replaced once its lease expires on the store's clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use steward_core::store::{Store, StoreError};
use tokio::sync::Barrier;

use crate::Harness;
use crate::support::{Fixture, LONG_LEASE, PATIENCE, joined, transient};

/// A lease meant to expire during the case.
const SHORT_TTL: Duration = Duration::from_millis(300);

async fn lead<S: Store>(store: &S, role: &str, holder: &str, ttl: Duration) -> bool {
    transient(|| store.try_lead(role, holder, ttl))
        .await
        .unwrap_or_else(|e| panic!("try_lead({role}, {holder}) failed: {e}"))
}

async fn resign<S: Store>(store: &S, role: &str, holder: &str) {
    transient(|| store.resign(role, holder))
        .await
        .unwrap_or_else(|e| panic!("resign({role}, {holder}) failed: {e}"));
}

/// The first holder to ask takes a free role; another holder is refused
/// while the lease lives, and the holder itself may ask again (a renewal).
pub async fn first_taker_leads_and_others_are_refused_while_its_lease_lives<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(
        lead(s, "maintenance", "node-a", LONG_LEASE).await,
        "a free role is taken"
    );
    assert!(
        !lead(s, "maintenance", "node-b", LONG_LEASE).await,
        "a held role is refused to another holder"
    );
    assert!(
        lead(s, "maintenance", "node-a", LONG_LEASE).await,
        "the holder renews its own lease"
    );
    assert!(!lead(s, "maintenance", "node-b", LONG_LEASE).await);
}

/// A renewal extends the lease from the store's now: a holder that renews
/// keeps the role past the end of its first lease.
pub async fn renewal_extends_the_lease<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(lead(s, "maintenance", "node-a", SHORT_TTL).await);
    assert!(lead(s, "maintenance", "node-a", LONG_LEASE).await);
    tokio::time::sleep(SHORT_TTL * 2).await;
    assert!(
        !lead(s, "maintenance", "node-b", LONG_LEASE).await,
        "the renewed lease still lives, so another holder is refused"
    );
}

/// Once the holder's lease expires (it stopped renewing: dead or paused),
/// another holder takes the role, and the old holder is refused after.
pub async fn expired_lease_is_taken_over_by_another_holder<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(lead(s, "maintenance", "node-a", SHORT_TTL).await);
    let deadline = Instant::now() + PATIENCE;
    while !lead(s, "maintenance", "node-b", LONG_LEASE).await {
        assert!(
            Instant::now() < deadline,
            "node-b never took over after node-a's {SHORT_TTL:?} lease expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !lead(s, "maintenance", "node-a", LONG_LEASE).await,
        "the old holder, back after its lease expired, is refused"
    );
}

/// Resigning frees the role at once; a resign by someone who does not hold
/// it changes nothing.
pub async fn resign_frees_the_role_at_once_and_only_for_its_holder<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(lead(s, "maintenance", "node-a", LONG_LEASE).await);
    resign(s, "maintenance", "node-b").await;
    assert!(
        !lead(s, "maintenance", "node-b", LONG_LEASE).await,
        "a resign by a non-holder must not free the role"
    );
    resign(s, "maintenance", "node-a").await;
    assert!(
        lead(s, "maintenance", "node-b", LONG_LEASE).await,
        "after the holder resigned, the role is free at once"
    );
    resign(s, "unheld-role", "node-a").await;
}

/// Roles are independent: holding one says nothing about another.
pub async fn roles_are_independent<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(lead(s, "maintenance", "node-a", LONG_LEASE).await);
    assert!(
        lead(s, "scheduler", "node-b", LONG_LEASE).await,
        "another role is free"
    );
    assert!(!lead(s, "scheduler", "node-a", LONG_LEASE).await);
    resign(s, "scheduler", "node-b").await;
    assert!(
        !lead(s, "maintenance", "node-b", LONG_LEASE).await,
        "resigning one role leaves the other held"
    );
}

/// Two handles (two processes) racing for a free role: exactly one wins,
/// every time.
pub async fn concurrent_takers_on_two_handles_elect_exactly_one<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    for round in 0..20 {
        let role = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for (name, store) in [("node-a", f.store.clone()), ("node-b", other.clone())] {
            let (role, barrier) = (role.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                lead(&*store, &role, name, LONG_LEASE).await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(joined(task).await);
        }
        assert_eq!(
            winners, 1,
            "round {round}: exactly one of two racing takers leads"
        );
    }
}

/// An empty role or holder, or a zero ttl, is refused as invalid.
pub async fn try_lead_refuses_an_empty_role_or_holder_and_a_zero_ttl<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for (role, holder, ttl) in [
        ("", "node-a", LONG_LEASE),
        ("maintenance", "", LONG_LEASE),
        ("maintenance", "node-a", Duration::ZERO),
    ] {
        match s.try_lead(role, holder, ttl).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("try_lead({role:?}, {holder:?}, {ttl:?}) should be Invalid: {other:?}"),
        }
    }
    assert!(
        lead(s, "maintenance", "node-a", LONG_LEASE).await,
        "refused requests took nothing"
    );
}
