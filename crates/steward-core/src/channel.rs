//! Typed, bounded, named channels between producer and consumer services.
//!
//! Made by [`HostBuilder::channel`](crate::HostBuilder::channel) so that the
//! host can show each channel's depth and capacity in its status. A full
//! channel makes `send` wait (back-pressure); both ends stop waiting when
//! their service is asked to stop.
//!
//! Close order: the host stops services in reverse order of registration, so
//! register a consumer before the producers that feed it. The producers stop
//! first and drop their senders; the consumer then drains what is queued
//! (its `recv` keeps returning queued items after cancellation) and ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use crate::CancelSignal;
use crate::status::ChannelShared;

/// Why an item could not be sent; the item comes back.
///
/// ```
/// use steward_core::SendError;
/// let e = SendError::Closed(5);
/// assert_eq!(e.into_inner(), 5);
/// ```
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError<T> {
    /// The sender's service was asked to stop while waiting for room.
    #[error("send cancelled: asked to stop while the channel was full")]
    Cancelled(T),
    /// Every receiver is gone.
    #[error("channel closed: the consumer is gone")]
    Closed(T),
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
    /// if the sender is asked to stop while waiting, or the consumer is gone.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context, tx: steward_core::Sender<&'static str>) {
    /// if let Err(e) = tx.send("work", &ctx).await {
    ///     let unsent = e.into_inner();
    /// }
    /// # }
    /// ```
    pub async fn send(&self, item: T, cancel: &impl CancelSignal) -> Result<(), SendError<T>> {
        let token = cancel.token();
        if token.is_cancelled() {
            return Err(SendError::Cancelled(item));
        }
        let permit = tokio::select! {
            biased;
            _ = token.cancelled() => return Err(SendError::Cancelled(item)),
            permit = self.tx.reserve() => permit,
        };
        match permit {
            Ok(permit) => {
                self.shared.depth.fetch_add(1, Ordering::Relaxed);
                permit.send(item);
                Ok(())
            }
            Err(_) => Err(SendError::Closed(item)),
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
        match self.tx.try_reserve() {
            Ok(permit) => {
                self.shared.depth.fetch_add(1, Ordering::Relaxed);
                permit.send(item);
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
    /// channel is empty, or once the receiver is asked to stop and nothing is
    /// left queued: after cancellation it drains, it does not drop work.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context, mut rx: steward_core::Receiver<u64>) {
    /// let next = rx.recv(&ctx).await;
    /// # }
    /// ```
    pub async fn recv(&mut self, cancel: &impl CancelSignal) -> Option<T> {
        let token = cancel.token();
        let item = if token.is_cancelled() {
            self.rx.try_recv().ok()
        } else {
            tokio::select! {
                biased;
                item = self.rx.recv() => item,
                _ = token.cancelled() => self.rx.try_recv().ok(),
            }
        };
        if item.is_some() {
            self.shared.depth.fetch_sub(1, Ordering::Relaxed);
        }
        item
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
) -> (Sender<T>, Receiver<T>, Arc<ChannelShared>) {
    let (tx, rx) = mpsc::channel(capacity);
    let shared = Arc::new(ChannelShared {
        name,
        capacity,
        depth: Default::default(),
    });
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
