//! Counts per queue and per kind for the in-memory store: counted afresh
//! from the rows at every call, the reference the real stores' counts are
//! held to.

use steward_core::store::{GroupedCounts, StoreError};

use super::MemoryStore;

impl MemoryStore {
    /// Every row folded into its queue's and its kind's counts, under one
    /// lock so both maps describe the same moment.
    pub(super) fn grouped(&self) -> Result<GroupedCounts, StoreError> {
        self.open()?;
        let mut counts = GroupedCounts::default();
        for row in self.jobs().rows.values() {
            let r = &row.record;
            counts.add(&r.queue, &r.kind, r.state, 1);
        }
        Ok(counts)
    }
}
