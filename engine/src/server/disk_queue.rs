//! The order in which an ensemble member's owner performs its node's disk steps and lets the
//! messages of each Ready leave, kept apart from the I/O so that it can be tested on its own.
//!
//! The blocking steps (the epoch files, a TRUNC, a SNAP installation) run on a helper thread
//! (`off_the_executor`) while the owner's executor goes on serving clients. The node's rules
//! (see `DiskStep` and `NodeReady`) then have to be kept by queueing instead of by blocking:
//!
//! * steps are performed one after another in the order the node handed them out; an append
//!   with nothing queued or running before it goes straight to the log writer (whose rounds
//!   keep appends in order), every other step goes through the queue;
//! * the messages of a Ready (peer sends and resets, client replies and closes) may leave at
//!   once unless an epochs step is queued or running: the epochs must be durable before any
//!   message of the same Ready leaves, so then the messages wait in the queue behind it;
//! * once one Ready's messages wait in the queue, every later Ready's messages wait behind
//!   them, so that nothing sent to a peer or a connection overtakes what was held back.
//!
//! Messages may overtake a queued truncation or snapshot installation, as they always could:
//! a message that depends on the log being durable (an ACK) is only emitted by the node once
//! `Node::rewound` or `Node::synced` has told it so.

use std::collections::VecDeque;

use crate::machine::ConnId;
use crate::quorum::{DiskStep, Msg, ServerId};

/// What a Ready sends once its disk work allows it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outgoing {
    pub resets: Vec<ServerId>,
    pub sends: Vec<(ServerId, Msg)>,
    pub client_sends: Vec<(ConnId, Vec<u8>)>,
    pub closes: Vec<ConnId>,
}

impl Outgoing {
    pub fn is_empty(&self) -> bool {
        self.resets.is_empty() && self.sends.is_empty() && self.client_sends.is_empty() && self.closes.is_empty()
    }
}

/// One entry of the queue.
#[derive(Debug, PartialEq)]
pub(crate) enum Work {
    Step(DiskStep),
    Deliver(Outgoing),
}

/// The queue of disk steps and held-back messages, and whether a task is working through it.
#[derive(Debug, Default)]
pub(crate) struct DiskQueue {
    queue: VecDeque<Work>,
    /// A task is working through the queue: it takes entries with [`DiskQueue::next`] until
    /// there are none left.
    running: bool,
    /// The entry the task is performing is an epochs step.
    epochs_running: bool,
    /// How many queued entries hold messages back: epochs steps and held messages.
    holding: usize,
}

impl DiskQueue {
    /// Offers a step of the next Ready, in the node's order. Returns it when it may be
    /// performed right away by the caller (an append with nothing before it); otherwise it is
    /// queued and `None` is returned.
    pub fn offer_step(&mut self, step: DiskStep) -> Option<DiskStep> {
        if matches!(step, DiskStep::Append(_)) && self.is_idle() {
            return Some(step);
        }
        if matches!(step, DiskStep::Epochs(_)) {
            self.holding += 1;
        }
        self.queue.push_back(Work::Step(step));
        None
    }

    /// Offers a Ready's messages, after its disk steps were offered. Returns them when they may
    /// leave now; otherwise they wait in the queue and `None` is returned.
    pub fn offer_messages(&mut self, out: Outgoing) -> Option<Outgoing> {
        if self.holding == 0 && !self.epochs_running {
            return Some(out);
        }
        if !out.is_empty() {
            self.holding += 1;
            self.queue.push_back(Work::Deliver(out));
        }
        None
    }

    /// Whether a task must be started to work through the queue; if so, it counts as started.
    pub fn start(&mut self) -> bool {
        if self.running || self.queue.is_empty() {
            return false;
        }
        self.running = true;
        true
    }

    /// The next entry for the task, once the previous one is done. `None`: the queue is empty
    /// and the task must end (a later entry starts a new one, see [`DiskQueue::start`]).
    pub fn next(&mut self) -> Option<Work> {
        self.epochs_running = false;
        let Some(w) = self.queue.pop_front() else {
            self.running = false;
            return None;
        };
        match &w {
            Work::Step(DiskStep::Epochs(_)) => {
                self.holding -= 1;
                self.epochs_running = true;
            }
            Work::Deliver(_) => self.holding -= 1,
            Work::Step(_) => {}
        }
        Some(w)
    }

    fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::Epochs;
    use crate::txn::{Txn, TxnHeader, TxnOp};

    fn append(zxid: i64) -> DiskStep {
        DiskStep::Append(vec![Txn {
            hdr: TxnHeader { session_id: 1, cxid: 1, zxid, time_ms: 0 },
            op: TxnOp::CloseSession,
        }])
    }

    fn epochs(n: u32) -> DiskStep {
        DiskStep::Epochs(Epochs { accepted: n, current: n })
    }

    fn reply(conn: ConnId, byte: u8) -> Outgoing {
        Outgoing { client_sends: vec![(conn, vec![byte])], ..Outgoing::default() }
    }

    fn ping(to: ServerId) -> Outgoing {
        Outgoing { sends: vec![(to, Msg::LeaderInfo { epoch: 1 })], ..Outgoing::default() }
    }

    /// Offers one Ready the way the owner does: its steps in order, then its messages. Returns
    /// what may happen at once.
    fn offer(q: &mut DiskQueue, steps: Vec<DiskStep>, out: Outgoing) -> (Vec<DiskStep>, Option<Outgoing>) {
        let now = steps.into_iter().filter_map(|s| q.offer_step(s)).collect();
        (now, q.offer_messages(out))
    }

    /// Runs the queue to its end, as the owner's task does; returns what it performed and sent.
    fn drain(q: &mut DiskQueue) -> Vec<Work> {
        let mut done = Vec::new();
        if q.start() {
            while let Some(w) = q.next() {
                done.push(w);
            }
        }
        done
    }

    #[test]
    fn appends_and_messages_go_straight_through_when_nothing_is_queued() {
        let mut q = DiskQueue::default();
        let (now, out) = offer(&mut q, vec![append(1)], reply(7, 1));
        assert_eq!(now, vec![append(1)]);
        assert_eq!(out, Some(reply(7, 1)));
        assert!(!q.start(), "nothing to run");
    }

    #[test]
    fn the_messages_of_a_ready_wait_for_its_epochs_step() {
        let mut q = DiskQueue::default();
        let (now, out) = offer(&mut q, vec![epochs(2), append(1)], ping(3));
        assert!(now.is_empty(), "the append waits for the epochs too");
        assert_eq!(out, None, "the AckEpoch must not leave before the epochs are durable");
        assert!(q.start());
        assert!(!q.start(), "one task at a time");
        assert_eq!(q.next(), Some(Work::Step(epochs(2))));
        // While the epochs are being written, a later Ready's messages wait too, even one
        // without disk work: they must not overtake the held ones.
        let (now, out) = offer(&mut q, vec![], reply(9, 2));
        assert!(now.is_empty());
        assert_eq!(out, None);
        assert_eq!(q.next(), Some(Work::Step(append(1))));
        assert_eq!(q.next(), Some(Work::Deliver(ping(3))));
        assert_eq!(q.next(), Some(Work::Deliver(reply(9, 2))));
        assert_eq!(q.next(), None);
        // Everything has left: the next Ready goes straight through again.
        let (now, out) = offer(&mut q, vec![append(2)], reply(9, 3));
        assert_eq!((now, out), (vec![append(2)], Some(reply(9, 3))));
    }

    #[test]
    fn messages_wait_for_an_epochs_step_that_is_still_running() {
        let mut q = DiskQueue::default();
        offer(&mut q, vec![epochs(1)], Outgoing::default());
        assert!(q.start());
        assert_eq!(q.next(), Some(Work::Step(epochs(1))));
        // The queue is empty but the epochs step is not done yet.
        assert_eq!(q.offer_messages(ping(2)), None);
        assert_eq!(q.next(), Some(Work::Deliver(ping(2))));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn messages_may_overtake_a_rewind_but_appends_may_not() {
        let mut q = DiskQueue::default();
        let (now, out) = offer(&mut q, vec![DiskStep::Truncate(5), append(6)], ping(2));
        assert!(now.is_empty());
        assert_eq!(out, Some(ping(2)), "only epochs hold messages back");
        // A later append waits behind the truncation and the append queued before it.
        let (now, out) = offer(&mut q, vec![append(7)], reply(4, 1));
        assert!(now.is_empty());
        assert_eq!(out, Some(reply(4, 1)));
        assert_eq!(
            drain(&mut q),
            vec![Work::Step(DiskStep::Truncate(5)), Work::Step(append(6)), Work::Step(append(7))]
        );
    }

    #[test]
    fn an_epochs_step_behind_a_rewind_holds_later_messages_behind_both() {
        let mut q = DiskQueue::default();
        offer(&mut q, vec![DiskStep::Truncate(5)], Outgoing::default());
        let (_, out) = offer(&mut q, vec![epochs(3)], ping(1));
        assert_eq!(out, None);
        let (_, out) = offer(&mut q, vec![append(6)], reply(8, 1));
        assert_eq!(out, None);
        assert_eq!(
            drain(&mut q),
            vec![
                Work::Step(DiskStep::Truncate(5)),
                Work::Step(epochs(3)),
                Work::Deliver(ping(1)),
                Work::Step(append(6)),
                Work::Deliver(reply(8, 1)),
            ]
        );
    }

    /// Per-connection order over many Readys, some of them with epochs steps: whatever is
    /// sent at once or from the queue, the replies reach the connection in the order the node
    /// produced them.
    #[test]
    fn replies_keep_their_order_across_held_and_direct_readys() {
        let mut q = DiskQueue::default();
        let mut sent = Vec::new();
        let mut running = false;
        for i in 0u8..60 {
            let steps = if i % 7 == 3 { vec![epochs(u32::from(i))] } else { vec![append(i64::from(i))] };
            let (_, out) = offer(&mut q, steps, reply(1, i));
            if let Some(o) = out {
                sent.extend(o.client_sends.into_iter().map(|(_, b)| b[0]));
            }
            running |= q.start();
            // The task gets through one entry now and then.
            if running && i % 3 == 0 {
                match q.next() {
                    Some(Work::Deliver(o)) => sent.extend(o.client_sends.into_iter().map(|(_, b)| b[0])),
                    Some(Work::Step(_)) => {}
                    None => running = false,
                }
            }
        }
        while running {
            match q.next() {
                Some(Work::Deliver(o)) => sent.extend(o.client_sends.into_iter().map(|(_, b)| b[0])),
                Some(Work::Step(_)) => {}
                None => running = false,
            }
        }
        assert_eq!(sent, (0u8..60).collect::<Vec<_>>());
    }
}
