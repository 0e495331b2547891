//! A customer's gate: how much of their work may wait in memory, and the order rule that
//! keeps later work from overtaking work handed back to the queue.
//!
//! The registry asks [`Gate::admit`] before putting work in a customer's mailbox; the
//! mailbox bound is this counter, not actix's (a cloned `Addr` gets a fresh sender that
//! never reports "full"). The conversation asks [`Gate::check`] when it takes the work out,
//! and reports with [`Gate::hand_back`] any work it returns to the queue.
//!
//! Order rule, per direction: once a piece of work has been handed back (mailbox full,
//! shutdown, an outage held too long), every piece of that direction that arrived after it
//! is handed back too, until the returned ones come back and pass in the order they left.
//! Work that was already in the mailbox before it passes. If one never comes back
//! (another replica took it, it was dead-lettered) the block lifts after
//! [`GIVE_UP_AFTER`] past its expected return.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the expected return the gate stops waiting for handed-back work.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Smallest delay a handed-back message gets (SQS visibility is in whole seconds).
pub const MIN_RETURN_DELAY: Duration = Duration::from_secs(1);

/// The independent orders of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Customer -> agent.
    Inbound,
    /// Agent -> customer (chat items and chat end).
    Outbound,
    /// WhatsApp's statuses of our messages (receipts): they neither wait for nor hold
    /// back the customer's messages.
    Status,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Status => "status",
        }
    }
}

/// Why work was not taken now, and when it should be offered again.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub after: Duration,
    pub reason: &'static str,
}

/// The order rule of one direction.
#[derive(Debug, Default)]
struct OrderGuard {
    /// Ids handed back, in their original order, not yet come back.
    returning: VecDeque<String>,
    /// When the handed-back work is expected back.
    until: Option<Instant>,
    /// Admission number of the first handed-back work: what was admitted before it is
    /// older and passes.
    barrier: u64,
}

impl OrderGuard {
    /// May work `id`, admitted as number `seq`, run now?
    fn check(&mut self, id: &str, seq: u64, now: Instant) -> Result<(), Refusal> {
        let Some(until) = self.until else {
            return Ok(());
        };
        if seq < self.barrier {
            return Ok(());
        }
        if now >= until + GIVE_UP_AFTER {
            tracing::warn!(
                waiting_for = self.returning.len(),
                "handed-back work did not come back in time; no longer holding later work"
            );
            *self = OrderGuard::default();
            return Ok(());
        }
        if self.returning.front().map(String::as_str) == Some(id) {
            self.returning.pop_front();
            if self.returning.is_empty() {
                *self = OrderGuard::default();
            }
            return Ok(());
        }
        let reason = if self.returning.iter().any(|r| r == id) {
            "waiting for earlier handed-back work of this customer to come back first"
        } else {
            self.returning.push_back(id.to_string());
            "an earlier message of this customer went back to the queue"
        };
        Err(Refusal {
            after: until.saturating_duration_since(now).max(MIN_RETURN_DELAY),
            reason,
        })
    }

    fn hand_back(&mut self, id: &str, seq: u64, after: Duration, now: Instant) {
        let back = now + after.max(MIN_RETURN_DELAY);
        self.barrier = match self.until {
            Some(_) => self.barrier.min(seq),
            None => seq,
        };
        self.until = Some(self.until.map_or(back, |u| u.max(back)));
        if !self.returning.iter().any(|r| r == id) {
            self.returning.push_back(id.to_string());
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Work admitted to the mailbox and not yet taken out, in mailbox order, with its
    /// admission number.
    queued: VecDeque<(Direction, String, u64)>,
    next_seq: u64,
    high_water: usize,
    inbound: OrderGuard,
    outbound: OrderGuard,
    status: OrderGuard,
}

impl State {
    fn guard(&mut self, direction: Direction) -> &mut OrderGuard {
        match direction {
            Direction::Inbound => &mut self.inbound,
            Direction::Outbound => &mut self.outbound,
            Direction::Status => &mut self.status,
        }
    }
}

/// See the module docs. Shared by the registry and the customer's conversation.
#[derive(Debug)]
pub struct Gate {
    capacity: usize,
    /// Delay for work refused because the mailbox is full.
    full_delay: Duration,
    state: Mutex<State>,
}

impl Gate {
    pub fn new(capacity: usize, full_delay: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            full_delay,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room in the mailbox for work `id`? On success the work counts as pending until
    /// [`Gate::check`] takes it out. A refusal also holds back later work (order).
    pub fn admit(&self, direction: Direction, id: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        if state.queued.len() >= self.capacity {
            let now = Instant::now();
            state
                .guard(direction)
                .hand_back(id, seq, self.full_delay, now);
            return Err(Refusal {
                after: self.full_delay.max(MIN_RETURN_DELAY),
                reason: "conversation mailbox full",
            });
        }
        state.queued.push_back((direction, id.to_string(), seq));
        state.high_water = state.high_water.max(state.queued.len());
        Ok(())
    }

    /// The conversation takes work `id` out of its mailbox: may it run now?
    pub fn check(&self, direction: Direction, id: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let seq = match state
            .queued
            .iter()
            .position(|(d, i, _)| *d == direction && i == id)
        {
            Some(at) => state.queued.remove(at).map_or(u64::MAX, |(_, _, seq)| seq),
            None => u64::MAX,
        };
        state.guard(direction).check(id, seq, Instant::now())
    }

    /// The conversation handed work `id` (the one it was running) back to the queue, to
    /// be visible after `after`: all work of that direction still in the mailbox is later.
    pub fn hand_back(&self, direction: Direction, id: &str, after: Duration) {
        let mut state = self.lock();
        let seq = state
            .queued
            .iter()
            .filter(|(d, _, _)| *d == direction)
            .map(|(_, _, seq)| *seq)
            .min()
            .unwrap_or(state.next_seq);
        state
            .guard(direction)
            .hand_back(id, seq, after, Instant::now());
    }

    /// Work in the mailbox now.
    pub fn pending(&self) -> usize {
        self.lock().queued.len()
    }

    /// Whether handed-back work is still awaited (the gate must outlive its actor).
    pub fn is_blocked(&self) -> bool {
        let state = self.lock();
        state.inbound.until.is_some()
            || state.outbound.until.is_some()
            || state.status.until.is_some()
    }

    /// The most work that was ever waiting in this mailbox at once.
    pub fn high_water(&self) -> usize {
        self.lock().high_water
    }

    /// The conversation died with work in its mailbox: that work went back to the queue
    /// (its replies were dropped), so it is handed back here, in order, to be waited for.
    pub fn abandon(&self, after: Duration) {
        let mut state = self.lock();
        let now = Instant::now();
        let lost: Vec<_> = state.queued.drain(..).collect();
        for (direction, id, seq) in lost {
            state.guard(direction).hand_back(&id, seq, after, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: Direction = Direction::Inbound;

    #[test]
    fn the_bound_is_applied_and_counted() {
        let gate = Gate::new(2, Duration::from_secs(2));
        assert!(gate.admit(IN, "a").is_ok());
        assert!(gate.admit(IN, "b").is_ok());
        let refused = gate.admit(IN, "c").unwrap_err();
        assert_eq!(refused.reason, "conversation mailbox full");
        assert_eq!(gate.pending(), 2);
        assert_eq!(gate.high_water(), 2);
    }

    #[test]
    fn later_work_waits_for_refused_work_to_come_back_in_order() {
        let gate = Gate::new(1, Duration::from_secs(2));
        gate.admit(IN, "1").unwrap();
        assert!(gate.admit(IN, "2").is_err(), "full: 2 goes back");
        assert!(gate.check(IN, "1").is_ok(), "1 was before the refusal");
        // 3 arrives while 2 is away: room now, but it must not overtake 2.
        gate.admit(IN, "3").unwrap();
        assert!(gate.check(IN, "3").is_err());
        // 3 comes back first: still behind 2.
        gate.admit(IN, "3").unwrap();
        assert!(gate.check(IN, "3").is_err());
        gate.admit(IN, "2").unwrap();
        assert!(gate.check(IN, "2").is_ok());
        gate.admit(IN, "3").unwrap();
        assert!(gate.check(IN, "3").is_ok());
        gate.admit(IN, "4").unwrap();
        assert!(gate.check(IN, "4").is_ok(), "unblocked once all came back");
    }

    #[test]
    fn directions_are_independent() {
        let gate = Gate::new(8, Duration::from_secs(1));
        gate.hand_back(IN, "x", Duration::from_secs(1));
        gate.admit(Direction::Outbound, "reply").unwrap();
        assert!(gate.check(Direction::Outbound, "reply").is_ok());
        gate.admit(IN, "y").unwrap();
        assert!(gate.check(IN, "y").is_err());
    }

    #[test]
    fn work_lost_with_a_dead_conversation_is_waited_for_in_order() {
        let gate = Gate::new(8, Duration::from_secs(1));
        gate.admit(IN, "a").unwrap();
        gate.admit(IN, "b").unwrap();
        gate.abandon(Duration::from_secs(1));
        assert_eq!(gate.pending(), 0);
        assert!(gate.is_blocked());
        gate.admit(IN, "c").unwrap();
        assert!(gate.check(IN, "c").is_err());
        for id in ["a", "b", "c"] {
            gate.admit(IN, id).unwrap();
            assert!(gate.check(IN, id).is_ok(), "{id}");
        }
        assert!(!gate.is_blocked());
    }

    #[test]
    fn a_block_lifts_if_the_returned_work_never_comes_back() {
        let gate = Gate::new(8, Duration::from_secs(1));
        gate.hand_back(IN, "gone", Duration::ZERO);
        let mut state = gate.lock();
        let until = state.inbound.until.unwrap();
        let later = until + GIVE_UP_AFTER;
        assert!(state.inbound.check("new", u64::MAX, later).is_ok());
    }
}
