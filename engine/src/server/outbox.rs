//! A connection's outgoing frames: the core pushes, the connection's writer task drains
//! everything queued into one write per wake-up (replies batch naturally under load).
//!
//! The reply bytes a connection has waiting are bounded (`warren.maxQueuedReplyBytes`, see
//! `ReplyLimits`). Two mechanisms keep them there:
//! - **Backpressure.** The connection's reader takes no further request while `pause` bytes or
//!   more wait to be written: a client that sends requests faster than it reads the replies
//!   is simply not read (TCP pushes back on it), and costs at most `pause` plus one reply.
//! - **The cap.** A frame that arrives when `cap` bytes or more are already waiting (watch
//!   notifications, which no reader pause can stop, or replies already on their way from the
//!   owner) is dropped and the connection is aborted: its queue is discarded and its socket
//!   closed without flushing. One frame is always accepted on an empty queue, whatever its size.
//!
//! The count lives in a `Backlog` shared with the owner: for a connection held by another
//! executor the owner counts a frame when it routes it, so frames in the channel count too and
//! a burst of replies cannot pile up there either.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Poll, Waker};

use super::admission::Slot;

/// Bounds on a connection's unwritten reply bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// `warren.maxQueuedReplyBytes`: past this the connection is aborted.
    pub cap: usize,
    /// The reader pauses while this much waits (`PAUSE_BYTES_MAX`, or half the cap if smaller).
    pub pause: usize,
}

/// Reading pauses at 1 MiB of unwritten replies: enough to keep the socket busy (the kernel's
/// send buffer holds more), little enough that a thousand stalled connections cost a GiB.
const PAUSE_BYTES_MAX: usize = 1 << 20;

impl ReplyLimits {
    pub fn new(cap: usize) -> ReplyLimits {
        let cap = cap.max(1);
        ReplyLimits { cap, pause: (cap / 2).clamp(1, PAUSE_BYTES_MAX) }
    }
}

/// What happened to a frame offered to a `Backlog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Counted; deliver it.
    Yes,
    /// The cap was reached with this frame: drop it and abort the connection (once).
    Overflowed,
    /// The connection overflowed earlier: drop it.
    Dropped,
}

/// Reply bytes queued for a connection and not yet written to its socket.
#[derive(Debug, Default)]
pub struct Backlog {
    bytes: AtomicUsize,
    overflowed: AtomicBool,
}

impl Backlog {
    /// Counts a frame of `len` bytes against `cap` (see the module doc for the rule).
    pub fn admit(&self, len: usize, cap: usize) -> Admit {
        if self.overflowed.load(Relaxed) {
            return Admit::Dropped;
        }
        let before = self.bytes.fetch_add(len, Relaxed);
        if before < cap {
            return Admit::Yes;
        }
        if self.overflowed.swap(true, Relaxed) {
            Admit::Dropped
        } else {
            Admit::Overflowed
        }
    }

    /// Bytes counted and not yet written (it includes the frame that overflowed, if any).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Relaxed)
    }

    fn written(&self, len: usize) -> usize {
        self.bytes.fetch_sub(len, Relaxed) - len
    }
}

pub struct Outbox {
    frames: RefCell<VecDeque<Vec<u8>>>,
    backlog: Arc<Backlog>,
    limits: ReplyLimits,
    closing: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    close_waker: RefCell<Option<Waker>>,
    /// The reader, paused until the backlog falls below `limits.pause`.
    drain_waker: RefCell<Option<Waker>>,
    /// The connection's admission slot, freed as soon as the connection is closing (so a client
    /// that got its closeSession answer can connect again at once).
    slot: RefCell<Option<Slot>>,
}

impl Outbox {
    pub fn new(limits: ReplyLimits, slot: Option<Slot>) -> Outbox {
        Outbox {
            frames: RefCell::new(VecDeque::new()),
            backlog: Arc::new(Backlog::default()),
            limits,
            closing: Cell::new(false),
            waker: RefCell::new(None),
            close_waker: RefCell::new(None),
            drain_waker: RefCell::new(None),
            slot: RefCell::new(slot),
        }
    }

    /// An outbox without a cap (peer links: a SNAP image may be larger than any client reply).
    pub fn unbounded() -> Outbox {
        Outbox::new(ReplyLimits { cap: usize::MAX, pause: usize::MAX }, None)
    }

    /// The count to share with the owner, which counts frames for this connection as it routes
    /// them when the connection is on another executor.
    pub fn backlog(&self) -> &Arc<Backlog> {
        &self.backlog
    }

    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// Queues a frame not yet counted (the owner's own executor), enforcing the cap.
    pub fn push(&self, frame: Vec<u8>) {
        if self.closing.get() {
            return;
        }
        match self.backlog.admit(frame.len(), self.limits.cap) {
            Admit::Yes => self.queue(frame),
            Admit::Overflowed | Admit::Dropped => self.abort(),
        }
    }

    /// Queues a frame the owner already counted (another executor's connection).
    pub fn push_counted(&self, frame: Vec<u8>) {
        if !self.closing.get() {
            self.queue(frame);
        }
    }

    fn queue(&self, frame: Vec<u8>) {
        self.frames.borrow_mut().push_back(frame);
        self.wake();
    }

    /// Asks the writer to flush what is queued and then close the connection; if the
    /// connection overflowed, drops the queue instead (see `abort`).
    pub fn close(&self) {
        if self.backlog.overflowed() {
            self.abort();
            return;
        }
        self.closing.set(true);
        self.slot.borrow_mut().take();
        self.wake();
    }

    /// Closes without flushing: the queue is dropped (the client is not reading it).
    fn abort(&self) {
        self.closing.set(true);
        self.frames.borrow_mut().clear();
        self.slot.borrow_mut().take();
        self.wake();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// The reply cap was reached: the connection is aborted, not flushed.
    pub fn overflowed(&self) -> bool {
        self.backlog.overflowed()
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        if self.closing.get() {
            for w in [&self.close_waker, &self.drain_waker] {
                if let Some(w) = w.borrow_mut().take() {
                    w.wake();
                }
            }
        }
    }

    /// Resolves once `close` was called (the owner is done with this connection).
    pub async fn closed(&self) {
        poll_fn(|cx| {
            if self.closing.get() {
                return Poll::Ready(());
            }
            register(&self.close_waker, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Whether the reader should stop taking requests for now.
    pub fn should_pause(&self) -> bool {
        self.backlog.bytes() >= self.limits.pause
    }

    /// Resolves once the backlog is below the pause mark, or the connection is closing.
    pub async fn drained(&self) {
        poll_fn(|cx| {
            if self.closing.get() || !self.should_pause() {
                return Poll::Ready(());
            }
            register(&self.drain_waker, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Waits for frames; appends them all to `buf`. Returns false once closing and drained.
    pub async fn next_batch(&self, buf: &mut Vec<u8>) -> bool {
        poll_fn(|cx| {
            let mut q = self.frames.borrow_mut();
            if !q.is_empty() {
                for f in q.drain(..) {
                    buf.extend_from_slice(&f);
                }
                return Poll::Ready(true);
            }
            if self.closing.get() {
                return Poll::Ready(false);
            }
            register(&self.waker, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// The writer wrote `len` bytes of what `next_batch` gave it.
    pub fn written(&self, len: usize) {
        if self.backlog.written(len) < self.limits.pause {
            if let Some(w) = self.drain_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// Stores `waker` unless the one stored would wake the same task (no clone per poll).
fn register(slot: &RefCell<Option<Waker>>, waker: &Waker) {
    let mut s = slot.borrow_mut();
    if !s.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *s = Some(waker.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_one_frame_on_an_empty_queue_and_refuses_past_it() {
        let b = Backlog::default();
        assert_eq!(b.admit(5_000, 1_000), Admit::Yes, "one frame always fits an empty queue");
        assert_eq!(b.admit(1, 1_000), Admit::Overflowed);
        assert_eq!(b.admit(1, 1_000), Admit::Dropped);
        assert!(b.overflowed());
    }

    #[test]
    fn written_bytes_leave_the_count() {
        let b = Backlog::default();
        assert_eq!(b.admit(600, 1_000), Admit::Yes);
        assert_eq!(b.admit(300, 1_000), Admit::Yes);
        assert_eq!(b.written(900), 0);
        assert_eq!(b.admit(999, 1_000), Admit::Yes);
        assert_eq!(b.admit(1, 1_000), Admit::Yes, "999 < 1000 queued before it");
        assert_eq!(b.admit(1, 1_000), Admit::Overflowed);
    }

    #[test]
    fn pause_is_half_the_cap_up_to_a_mebibyte() {
        assert_eq!(ReplyLimits::new(16 << 20), ReplyLimits { cap: 16 << 20, pause: 1 << 20 });
        assert_eq!(ReplyLimits::new(1000), ReplyLimits { cap: 1000, pause: 500 });
        assert_eq!(ReplyLimits::new(0), ReplyLimits { cap: 1, pause: 1 });
    }

    #[test]
    fn overflow_drops_the_queue_and_frees_the_slot() {
        let adm = super::super::admission::Admission::new(super::super::admission::Limits { per_ip: 1, total: 0 });
        let ip: std::net::IpAddr = [10, 0, 0, 1].into();
        let o = Outbox::new(ReplyLimits::new(100), Some(adm.admit(ip).unwrap()));
        assert!(adm.admit(ip).is_err());
        o.push(vec![0; 150]);
        assert!(!o.is_closing() && o.should_pause());
        o.push(vec![0; 10]);
        assert!(o.is_closing() && o.overflowed());
        assert!(o.frames.borrow().is_empty(), "nothing left to flush");
        assert!(adm.admit(ip).is_ok(), "the slot was freed");
    }
}
