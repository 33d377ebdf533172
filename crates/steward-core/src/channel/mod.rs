//! Typed, bounded, named channels between producer and consumer services.
//!
//! Made by [`HostBuilder::channel`](crate::HostBuilder::channel) so that the
//! host can show each channel's depth and capacity in its status. A full
//! channel makes `send` wait (back-pressure); both ends stop waiting when
//! their service is asked to stop.
//!
//! Close order, so that no item is lost at shutdown whatever the order the
//! services were registered in:
//! - the host learns who sends to and who receives from each channel (from
//!   `sends_to` / `receives_from` on the builder, and from the ends' use
//!   inside each service's task) and stops a channel's producers before its
//!   consumer;
//! - a consumer asked to stop keeps receiving until every sender is gone and
//!   the channel is empty, and only then does `recv` return `None` (if it
//!   would wait on senders the host cannot stop first, such as a cycle or a
//!   sender kept outside any service, the host closes the channel once every
//!   other service has stopped);
//! - once the consumer's `recv` returned `None` or its receiver was dropped,
//!   `send` fails with [`SendError::Closed`]: never a silent success;
//! - items still queued when the host stops (or dropped with a receiver) are
//!   counted, logged and named in the exit status.

mod shared;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Notify, mpsc};

pub(crate) use shared::ChannelShared;
use shared::Parked;

use crate::CancelSignal;
use crate::status::Slot;

/// Why an item could not be sent; the item comes back.
///
/// ```
/// use steward_core::SendError;
/// let e = SendError::Closed(5);
/// assert_eq!(e.into_inner(), 5);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<T> {
    /// The sender was asked to stop while the channel was full (its source
    /// is [`Cancelled`](crate::Cancelled), so a service that returns it with
    /// `?` stops cleanly).
    Cancelled(T),
    /// Every receiver is gone.
    Closed(T),
}

impl<T> std::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::Cancelled(_) => "send cancelled: asked to stop while the channel was full",
            SendError::Closed(_) => "channel closed: the consumer is gone",
        })
    }
}

// Written by hand rather than derived: `Cancelled`'s source is the
// crate's `Cancelled`, which is how the supervisor tells "asked to stop"
// from a failure whatever the item type.
impl<T: std::fmt::Debug> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Cancelled(_) => Some(&crate::Cancelled),
            SendError::Closed(_) => None,
        }
    }
}

impl<T> SendError<T> {
    /// The item that was not sent.
    ///
    /// ```
    /// assert_eq!(steward_core::SendError::Cancelled("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendError::Cancelled(t) | SendError::Closed(t) => t,
        }
    }
}

/// Why `try_send` did not send; the item comes back.
///
/// ```
/// let e = steward_core::TrySendError::Full(1);
/// assert!(matches!(e, steward_core::TrySendError::Full(1)));
/// ```
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// No room now.
    #[error("channel full")]
    Full(T),
    /// Every receiver is gone.
    #[error("channel closed: the consumer is gone")]
    Closed(T),
}

/// The sending end of a host channel. Clone it for several producers.
///
/// ```
/// # async fn demo(ctx: steward_core::Context, tx: steward_core::Sender<u64>) -> Result<(), steward_core::BoxError> {
/// tx.send(42, &ctx).await?; // waits while full; Err(Cancelled) on shutdown
/// # Ok(()) }
/// ```
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    shared: Arc<ChannelShared>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send> Sender<T> {
    /// Sends `item`, waiting while the channel is full. Gives the item back
    /// (`Cancelled`) if the sender is asked to stop, or (`Closed`) if the
    /// consumer is gone. Except in a pipeline stage (a service that also
    /// receives from a channel): asked to stop, it still hands on what it
    /// drained, waiting for room while the next stage (stopped after it)
    /// drains, and gets the item back only if the host closes the channel
    /// because nothing will make room.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context, tx: steward_core::Sender<&'static str>) {
    /// if let Err(e) = tx.send("work", &ctx).await {
    ///     let unsent = e.into_inner();
    /// }
    /// # }
    /// ```
    pub async fn send(&self, item: T, cancel: &impl CancelSignal) -> Result<(), SendError<T>> {
        let me = self.shared.note_sender();
        let token = cancel.token();
        if !token.is_cancelled() {
            let permit = tokio::select! {
                biased;
                _ = token.cancelled() => None,
                permit = self.tx.reserve() => Some(permit),
            };
            match permit {
                Some(Ok(permit)) => {
                    self.shared.depth.fetch_add(1, Ordering::Relaxed);
                    permit.send(item);
                    passed_on(me);
                    return Ok(());
                }
                Some(Err(_)) => return Err(SendError::Closed(item)),
                None => {}
            }
        }
        // Asked to stop. A pipeline stage hands on what it drained: as many
        // items as it received and has not passed on yet. Anything beyond
        // is new work, and a producer asked to stop stops producing.
        let holds_drained = me
            .as_ref()
            .is_some_and(|slot| slot.drained.load(Ordering::Relaxed) > 0);
        if holds_drained {
            self.send_draining(item, me).await
        } else {
            Err(SendError::Cancelled(item))
        }
    }

    /// Sends after the sender was asked to stop, from a pipeline stage
    /// passing on an item it drained: waits for room while its consumer,
    /// which stops after it, drains.
    /// While it waits, the host goes on stopping the others; if the host
    /// closes the channel because nothing else will make room, the item
    /// comes back as `Cancelled`.
    async fn send_draining(&self, item: T, me: Option<&Slot>) -> Result<(), SendError<T>> {
        let item = match self.try_send_as(item, me) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(item)) => return Err(SendError::Closed(item)),
            Err(TrySendError::Full(item)) => item,
        };
        if self.shared.closing.is_cancelled() {
            return Err(SendError::Cancelled(item));
        }
        let _parked = Parked::new(&self.shared);
        tokio::select! {
            biased;
            permit = self.tx.reserve() => match permit {
                Ok(permit) => {
                    self.shared.depth.fetch_add(1, Ordering::Relaxed);
                    permit.send(item);
                    passed_on(me);
                    Ok(())
                }
                Err(_) => Err(SendError::Closed(item)),
            },
            _ = self.shared.closing.cancelled() => Err(SendError::Cancelled(item)),
        }
    }

    /// Sends `item` only if there is room now.
    ///
    /// ```
    /// # fn demo(tx: steward_core::Sender<u8>) {
    /// let _ = tx.try_send(1);
    /// # }
    /// ```
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let me = self.shared.note_sender();
        self.try_send_as(item, me)
    }

    fn try_send_as(&self, item: T, me: Option<&Slot>) -> Result<(), TrySendError<T>> {
        match self.tx.try_reserve() {
            Ok(permit) => {
                self.shared.depth.fetch_add(1, Ordering::Relaxed);
                permit.send(item);
                passed_on(me);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TrySendError::Full(item)),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TrySendError::Closed(item)),
        }
    }

    /// The channel's capacity.
    ///
    /// ```
    /// # fn demo(tx: steward_core::Sender<u8>) { let c = tx.capacity(); }
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

/// The receiving end of a host channel.
///
/// ```
/// # async fn demo(ctx: steward_core::Context, mut rx: steward_core::Receiver<u64>) {
/// while let Some(item) = rx.recv(&ctx).await {
///     // handle item; after shutdown starts, this drains what is queued, then ends
/// }
/// # }
/// ```
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    shared: Arc<ChannelShared>,
}

impl<T: Send> Receiver<T> {
    /// The next item. Returns `None` when every sender is gone and the
    /// channel is empty. Once the receiver is asked to stop, it drains: it
    /// keeps returning items, waiting for more while any sender is alive
    /// (the host stops producers first), and returns `None` only when the
    /// senders are gone and nothing is left; after that the channel is
    /// closed and sends fail.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context, mut rx: steward_core::Receiver<u64>) {
    /// let next = rx.recv(&ctx).await;
    /// # }
    /// ```
    pub async fn recv(&mut self, cancel: &impl CancelSignal) -> Option<T> {
        self.shared.note_receiver();
        let token = cancel.token();
        let item = if token.is_cancelled() {
            self.drain().await
        } else {
            tokio::select! {
                biased;
                item = self.rx.recv() => item,
                _ = token.cancelled() => self.drain().await,
            }
        };
        if item.is_some() {
            self.shared.depth.fetch_sub(1, Ordering::Relaxed);
            if let Some(me) = self.shared.current() {
                me.drained.fetch_add(1, Ordering::Relaxed);
            }
        }
        item
    }

    /// Receives after cancellation: what is queued, then what the remaining
    /// senders still send, until they are gone or the host closes the
    /// channel; then closes it so that later sends fail.
    async fn drain(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(item) => return Some(item),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if self.shared.closing.is_cancelled() {
                self.rx.close();
                // Closing keeps what is queued; the loop drains it.
                if self.rx.is_empty() {
                    return None;
                }
                continue;
            }
            // Empty, with senders alive: wait for them, and say so, so the
            // host stops them next instead of waiting on us.
            let _parked = Parked::new(&self.shared);
            tokio::select! {
                item = self.rx.recv() => return item,
                _ = self.shared.closing.cancelled() => {}
            }
        }
    }

    /// How many items are queued now.
    ///
    /// ```
    /// # fn demo(rx: steward_core::Receiver<u8>) { let n = rx.len(); }
    /// ```
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True if nothing is queued now.
    ///
    /// ```
    /// # fn demo(rx: steward_core::Receiver<u8>) { let idle = rx.is_empty(); }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

pub(crate) fn new_channel<T>(
    name: String,
    capacity: usize,
    progress: Arc<Notify>,
) -> (Sender<T>, Receiver<T>, Arc<ChannelShared>) {
    let (tx, rx) = mpsc::channel(capacity);
    let shared = Arc::new(ChannelShared::new(name, capacity, progress));
    (
        Sender {
            tx,
            shared: shared.clone(),
        },
        Receiver {
            rx,
            shared: shared.clone(),
        },
        shared,
    )
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Items still queued die with the receiver: count them, loudly.
        self.rx.close();
        let mut lost = 0;
        while self.rx.try_recv().is_ok() {
            lost += 1;
        }
        if lost > 0 {
            self.shared.dropped.fetch_add(lost, Ordering::Relaxed);
            self.shared.depth.fetch_sub(
                isize::try_from(lost).unwrap_or(isize::MAX),
                Ordering::Relaxed,
            );
            tracing::error!(
                channel = %self.shared.name,
                lost,
                "receiver dropped with {lost} items still queued: they are lost"
            );
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.shared.name)
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.shared.name)
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

/// One item sent by a service: if it was holding drained items, one of them
/// has been passed on.
fn passed_on(me: Option<&Slot>) {
    if let Some(me) = me {
        if me.drained.load(Ordering::Relaxed) > 0 {
            let _ = me
                .drained
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}
