//! Waking workers on another process's commit: a file-system watch on the
//! database's WAL file.
//!
//! SQLite has no notifications between processes, but in WAL mode every
//! commit, from any process or connection, writes the `-wal` file beside
//! the database, and the operating system reports that write at once
//! (inotify, kqueue, ReadDirectoryChangesW, through the `notify` crate).
//! Each such report wakes the store's waiting workers and leaves one
//! wake-up for a worker about to wait, as the writer does after its own
//! commits: a commit between a worker's empty claim and its wait is not
//! missed.
//!
//! The watch cannot tell whose commit it saw, so this process's own commits
//! wake idle workers too: spurious wake-ups (allowed), at most one empty
//! claim per worker after a burst of this process's writes; an empty claim
//! writes nothing, so it wakes no one in turn. Reads (the database and WAL
//! are read through a memory map) and checkpoints (which write the database
//! file, not the WAL) are not reported.
//!
//! The parent directory is watched rather than the WAL file itself: the WAL
//! is deleted when the last connection to the database closes and created
//! again by the next one, which would end a watch on the file.
//!
//! The watch is started by the first `wait_for_work` (a process that only
//! enqueues never pays for it) and wakes the waiters once when it starts:
//! a commit made before it was not seen. If it cannot start (no watch
//! left: `fs.inotify.max_user_watches`), workers poll, within `max_wait`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use steward_core::store::WorkSignal;

/// Starts watching the WAL of the database at `file`, waking `signal` on
/// every write to it. The watch lasts as long as the returned watcher.
pub(crate) fn start(
    file: &str,
    signal: Arc<WorkSignal>,
) -> Result<RecommendedWatcher, notify::Error> {
    let (dir, wal) = wal_of(file);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        match event {
            Ok(event) if is_write(&event.kind) => {
                if event.paths.iter().any(|p| p.file_name() == Some(&wal)) {
                    signal.wake();
                }
            }
            Ok(_) => {}
            // Lost events (an overflowing queue) may have been commits.
            Err(_) => signal.wake(),
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// The directory to watch and the WAL's file name in it.
fn wal_of(file: &str) -> (PathBuf, OsString) {
    let path = Path::new(file);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut wal = path.file_name().map(OsString::from).unwrap_or_default();
    wal.push("-wal");
    (dir, wal)
}

/// A write or a (re)creation: what a commit does to the WAL. Not a change
/// of metadata: opening a connection changes the WAL's owner or mode (as
/// root, SQLite gives it the database file's), which is no commit.
fn is_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
            | EventKind::Create(_)
            | EventKind::Any
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_is_beside_the_database() {
        assert_eq!(
            wal_of("/var/lib/app/jobs.db"),
            (PathBuf::from("/var/lib/app"), OsString::from("jobs.db-wal"))
        );
        assert_eq!(
            wal_of("jobs.db"),
            (PathBuf::from("."), OsString::from("jobs.db-wal"))
        );
    }
}
