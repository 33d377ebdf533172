//! Embedded schema migrations: the entry each store's list holds, and the
//! rules every store applies to it. How a migration runs (its transaction,
//! its lock, its version table) stays with the store.

use crate::store::StoreError;

/// One migration embedded in a store's binary.
///
/// ```
/// use steward_core::store::migration::Migration;
/// const MIGRATIONS: &[Migration] = &[Migration {
///     version: 1,
///     name: "jobs",
///     sql: "CREATE TABLE jobs (id INTEGER PRIMARY KEY)",
/// }];
/// assert_eq!(MIGRATIONS[0].version, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version: 1 for the first, one more for each next.
    pub version: i64,
    /// A short name, recorded with the version.
    pub name: &'static str,
    /// The statements, run as one text.
    pub sql: &'static str,
}

/// Refuses a database recorded at `found` when this binary knows versions
/// up to `supported` only: a newer binary migrated it, and this one must
/// not write to a schema it does not know.
///
/// ```
/// use steward_core::store::{StoreError, migration::check_not_newer};
/// assert!(check_not_newer(3, 3).is_ok());
/// assert!(matches!(check_not_newer(4, 3), Err(StoreError::SchemaTooNew { found: 4, supported: 3 })));
/// ```
pub fn check_not_newer(found: i64, supported: i64) -> Result<(), StoreError> {
    if found > supported {
        Err(StoreError::SchemaTooNew { found, supported })
    } else {
        Ok(())
    }
}

/// Why `list` is not a proper migration list for a binary whose schema
/// version is `newest`: versions must run 1, 2, … in order and end at
/// `newest`. `None` if it is. For each store's unit test.
///
/// ```
/// use steward_core::store::migration::{Migration, list_error};
/// let m = |version| Migration { version, name: "m", sql: "" };
/// assert_eq!(list_error(&[m(1), m(2)], 2), None);
/// assert!(list_error(&[m(1), m(3)], 3).is_some());
/// assert!(list_error(&[m(1), m(2)], 3).is_some());
/// ```
pub fn list_error(list: &[Migration], newest: i64) -> Option<String> {
    for (i, m) in list.iter().enumerate() {
        let want = i as i64 + 1;
        if m.version != want {
            return Some(format!(
                "migration {} (`{}`) should be version {want}",
                m.version, m.name
            ));
        }
    }
    let last = list.last().map_or(0, |m| m.version);
    (last != newest).then(|| format!("the newest migration is {last}, the schema version {newest}"))
}
