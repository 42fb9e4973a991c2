//! A connection's outgoing frames: the core pushes, the connection's writer task drains
//! everything queued into one write per wake-up (replies batch naturally under load).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct Outbox {
    frames: RefCell<VecDeque<Vec<u8>>>,
    bytes: Cell<usize>,
    closing: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    close_waker: RefCell<Option<Waker>>,
}

impl Outbox {
    pub fn push(&self, frame: Vec<u8>) {
        if self.closing.get() {
            return;
        }
        self.bytes.set(self.bytes.get() + frame.len());
        self.frames.borrow_mut().push_back(frame);
        self.wake();
    }

    /// Asks the writer to flush what is queued and then close the connection.
    pub fn close(&self) {
        self.closing.set(true);
        self.wake();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        if self.closing.get() {
            if let Some(w) = self.close_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Resolves once `close` was called (the owner is done with this connection).
    pub async fn closed(&self) {
        poll_fn(|cx| {
            if self.closing.get() {
                return Poll::Ready(());
            }
            *self.close_waker.borrow_mut() = Some(cx.waker().clone());
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
                self.bytes.set(0);
                return Poll::Ready(true);
            }
            if self.closing.get() {
                return Poll::Ready(false);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
