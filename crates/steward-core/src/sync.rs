//! One rule for the host's own locks: a poisoned lock is recovered, not
//! propagated.
//!
//! Every critical section behind these locks is a few lines that do not
//! panic (status updates, role sets, child lists); if one ever did, the data
//! is still consistent, and poisoning would turn one bug into a host whose
//! status and shutdown can no longer be read.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// [`Mutex::lock`], recovering the data from a poisoned lock.
pub(crate) trait LockExt<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
