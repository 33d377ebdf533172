//! How a [`SqliteStore`](crate::SqliteStore) opens its database.

use std::time::Duration;

/// How hard SQLite works to make a commit survive a crash (`PRAGMA synchronous`).
///
/// In WAL mode, [`Synchronous::Normal`] (the default) syncs the WAL only at
/// checkpoints: a committed transaction survives the *process* crashing or
/// being killed (the WAL is in the OS page cache, which outlives the
/// process), but the last few commits can be lost if the *machine* loses
/// power or the kernel panics. [`Synchronous::Full`] syncs the WAL at every
/// commit, so commits survive power loss too, at the price of one `fsync`
/// per group commit.
///
/// ```
/// use steward_store_sqlite::{SqliteOptions, Synchronous};
/// let options = SqliteOptions { synchronous: Synchronous::Full, ..SqliteOptions::default() };
/// assert_eq!(options.synchronous, Synchronous::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Durable against a process crash, not against power loss (WAL mode).
    #[default]
    Normal,
    /// Durable against power loss: an `fsync` at every commit.
    Full,
}

impl Synchronous {
    /// The value `PRAGMA synchronous` reports for this setting.
    ///
    /// ```
    /// assert_eq!(steward_store_sqlite::Synchronous::Normal.pragma_value(), 1);
    /// assert_eq!(steward_store_sqlite::Synchronous::Full.pragma_value(), 2);
    /// ```
    pub fn pragma_value(self) -> i64 {
        match self {
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
        }
    }
}

/// Settings for [`SqliteStore::open`](crate::SqliteStore::open).
///
/// ```
/// use std::time::Duration;
/// use steward_store_sqlite::SqliteOptions;
/// let options = SqliteOptions { busy_timeout: Duration::from_secs(1), ..SqliteOptions::default() };
/// assert_eq!(options.read_pool_size, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of a commit; see [`Synchronous`]. Default: `Normal`.
    pub synchronous: Synchronous,
    /// How long a statement waits for another connection's lock before
    /// failing with [`StoreError::Busy`](steward_core::store::StoreError::Busy).
    /// Default: 5 s.
    pub busy_timeout: Duration,
    /// Connections in the pool used for reads ([`job`](steward_core::store::Store::job),
    /// [`counts`](steward_core::store::Store::counts)) and handed out by
    /// [`SqliteStore::pool`](crate::SqliteStore::pool). Default: 4.
    pub read_pool_size: u32,
    /// How many write operations may wait for the writer task before callers
    /// wait to hand theirs over (the writer's channel capacity). Default: 4096.
    pub queue_capacity: usize,
    /// The most work one group commit takes on (jobs enqueued, leases
    /// finished, ... counted one per item): a bound on how long one
    /// transaction holds the write lock. Default: 20,000.
    pub max_batch_items: usize,
    /// Create the database file if it does not exist. Default: `true`.
    /// With `false`, [`SqliteStore::open`](crate::SqliteStore::open) of a
    /// missing file fails with
    /// [`StoreError::Unavailable`](steward_core::store::StoreError::Unavailable)
    /// and leaves no file behind: a tool that only looks at a store must not
    /// leave an empty database where a mistyped path pointed.
    pub create_if_missing: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            read_pool_size: 4,
            queue_capacity: 4096,
            max_batch_items: 20_000,
            create_if_missing: true,
        }
    }
}
