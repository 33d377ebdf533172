//! Leadership leases: who holds each role, until when.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::StoreError;

use super::row::after;

/// Every role's current holder and the end of its lease.
#[derive(Debug, Default)]
pub(super) struct Leaders {
    roles: HashMap<String, (String, DateTime<Utc>)>,
}

impl Leaders {
    /// `Store::try_lead`: take a free or expired role, renew one's own.
    pub(super) fn try_lead(
        &mut self,
        now: DateTime<Utc>,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let expires = check(role, holder, ttl, now)?;
        match self.roles.get(role) {
            // Strictly before now, as leases of jobs expire.
            Some((current, until)) if current != holder && *until >= now => Ok(false),
            _ => {
                self.roles
                    .insert(role.to_string(), (holder.to_string(), expires));
                Ok(true)
            }
        }
    }

    /// `Store::resign`: drop the role if `holder` holds it.
    pub(super) fn resign(&mut self, role: &str, holder: &str) {
        if self.roles.get(role).is_some_and(|(h, _)| h == holder) {
            self.roles.remove(role);
        }
    }
}

/// The lease's end, or why the request is refused.
fn check(
    role: &str,
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    steward_core::store::validate_leadership(role, holder, ttl)?;
    after(now, ttl)
}
