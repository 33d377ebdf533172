//! The whole contract suite against the in-memory reference store: proof that
//! every case can pass, and the template a store's `tests/contract.rs` follows.

use steward_store_tests::Harness;
use steward_store_tests::memory::MemoryStore;

/// Every database is a new in-memory store; a second handle is a clone,
/// which shares its jobs the way a second connection shares a database.
struct MemoryHarness;

impl Harness for MemoryHarness {
    type Store = MemoryStore;
    type Database = MemoryStore;

    async fn database(&self) -> MemoryStore {
        MemoryStore::new()
    }

    async fn connect(&self, database: &MemoryStore) -> MemoryStore {
        database.clone()
    }
}

steward_store_tests::contract!(MemoryHarness);

/// The macro generated a test per registered case (a compile-time list, so
/// this is a guard against the list and the macro drifting apart).
#[test]
fn the_suite_has_cases() {
    assert!(steward_store_tests::CASES.len() >= 60);
}
