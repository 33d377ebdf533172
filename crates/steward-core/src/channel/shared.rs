//! What the host knows of a channel beside its two ends: depth, who uses
//! it, and the means to close it and to see a drain wait.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ChannelStatus;
use crate::poll_mark;
use crate::status::Slot;
use crate::sync::LockExt;

/// Who sends to and receives from a channel, by service registration index.
#[derive(Default)]
pub(crate) struct Roles {
    pub(crate) senders: BTreeSet<usize>,
    pub(crate) receivers: BTreeSet<usize>,
}

/// What the host knows of a channel: its capacity, a live depth counter
/// maintained by the channel's ends (signed because a receive may be counted
/// a moment before the send that fed it; snapshots clamp it into range), who
/// uses it, and the means to close it at shutdown.
pub(crate) struct ChannelShared {
    pub(crate) name: String,
    pub(crate) capacity: usize,
    pub(crate) depth: AtomicIsize,
    pub(crate) roles: Mutex<Roles>,
    /// Cancelled by the host to end a drain that no sender will end.
    pub(crate) closing: CancellationToken,
    /// Notified when a draining receiver starts waiting on senders.
    pub(crate) progress: Arc<Notify>,
    /// Items that died with a dropped receiver.
    pub(crate) dropped: AtomicUsize,
    /// Bit `i` set: service `i` is already recorded in `roles`, so the ends
    /// skip the lock on every later send and receive.
    senders_seen: AtomicU64,
    receivers_seen: AtomicU64,
    /// The host's services, set when the host is built: how an end finds
    /// the service polling it (see `poll_mark.rs`).
    slots: OnceLock<Arc<[Arc<Slot>]>>,
}

/// Marks service `index` in `mask`; true if it was marked already. Services
/// past the 64th are always reported unseen (they take the lock).
fn seen(mask: &AtomicU64, index: usize) -> bool {
    let Some(bit) = u32::try_from(index).ok().and_then(|i| 1u64.checked_shl(i)) else {
        return false;
    };
    mask.load(Ordering::Relaxed) & bit != 0 || mask.fetch_or(bit, Ordering::Relaxed) & bit != 0
}

impl ChannelShared {
    pub(super) fn new(name: String, capacity: usize, progress: Arc<Notify>) -> Self {
        ChannelShared {
            name,
            capacity,
            depth: AtomicIsize::new(0),
            roles: Mutex::new(Roles::default()),
            closing: CancellationToken::new(),
            progress,
            dropped: AtomicUsize::new(0),
            senders_seen: AtomicU64::new(0),
            receivers_seen: AtomicU64::new(0),
            slots: OnceLock::new(),
        }
    }

    /// Tells the channel its host's services.
    pub(crate) fn attach(&self, slots: Arc<[Arc<Slot>]>) {
        let _ = self.slots.set(slots);
    }

    /// The service of this channel's host that is being polled now, if any.
    pub(super) fn current(&self) -> Option<&Slot> {
        let key = poll_mark::current_service()?;
        key.find(self.slots.get()?).map(|s| &**s)
    }

    pub(crate) fn snapshot(&self) -> ChannelStatus {
        ChannelStatus {
            name: self.name.clone(),
            capacity: self.capacity,
            depth: usize::try_from(self.depth.load(Ordering::Relaxed))
                .unwrap_or(0)
                .min(self.capacity),
        }
    }

    fn roles(&self) -> std::sync::MutexGuard<'_, Roles> {
        self.roles.lock_or_recover()
    }

    /// Records the current service (if any) as a sender.
    pub(super) fn note_sender(&self) -> Option<&Slot> {
        let me = self.current()?;
        let index = me.index as usize;
        if !seen(&self.senders_seen, index) {
            self.roles().senders.insert(index);
        }
        Some(me)
    }

    /// Records the current service (if any) as the receiver.
    pub(super) fn note_receiver(&self) {
        let Some(me) = self.current() else {
            return;
        };
        let index = me.index as usize;
        if !seen(&self.receivers_seen, index) {
            self.roles().receivers.insert(index);
        }
    }

    /// Items queued now plus items dropped with a receiver.
    pub(crate) fn left(&self) -> usize {
        usize::try_from(self.depth.load(Ordering::Relaxed)).unwrap_or(0)
            + self.dropped.load(Ordering::Relaxed)
    }
}

/// Marks the current service as waiting on the other end of a channel (a
/// drain waiting on senders, a draining send waiting for room) while it
/// lives, so the shutdown sequence stops the others instead of waiting.
pub(super) struct Parked<'a> {
    current: Option<&'a Slot>,
}

impl<'a> Parked<'a> {
    pub(super) fn new(shared: &'a ChannelShared) -> Self {
        let current = shared.current();
        if let Some(slot) = current {
            slot.parked.fetch_add(1, Ordering::SeqCst);
        }
        shared.progress.notify_waiters();
        Parked { current }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.current {
            slot.parked.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
