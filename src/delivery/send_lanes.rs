//! The pacing queue of one business number in WhatsAppSend: two lanes under one rate.
//!
//! Agents' replies (and every other send a caller waits for) go in the **reply lane**,
//! first come first served; acknowledgements of customer messages (read receipts and
//! reactions) go in the **ack lane**. Each free send slot goes to the reply lane first,
//! so a reply never waits behind acknowledgements; the slots themselves are the number's
//! one rate, so the overall rate still holds.
//!
//! Acknowledgements that back up are merged rather than sent one by one:
//!
//! - a reaction replaces a pending reaction to the same message (✅ after 👀: the 👀
//!   would only be replaced a moment after it showed);
//! - a read mark replaces a pending read mark of the same customer (WhatsApp marks the
//!   named message *and every earlier one* read, so the later mark covers both);
//!
//! a merged acknowledgement keeps the earlier one's place in the lane. The one at the
//! front of the lane (the next to go) is never replaced: on a number that keeps up, the
//! customer still sees 👀 turn into ✅. Past
//! `ack_capacity` pending acknowledgements the oldest is dropped (and counted): they are
//! courtesy, and a lane that grows without bound only delays the newer ones further.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One number's send slots: one every `interval`. After an idle spell the first send goes
/// at once and the next one `interval` later (no burst); behind a backlog a wake-up that
/// comes late does not slow the cadence, and one that comes more than an interval late
/// starts it afresh (no catching up in a burst). So no window of one second holds more
/// than `1 s / interval + 1` sends.
#[derive(Debug, Clone)]
pub struct Slots {
    interval: Duration,
    next: Option<Instant>,
}

impl Slots {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: None,
        }
    }

    /// Takes the slot if a send may start at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        let due = self.next.unwrap_or(now);
        if due > now {
            return false;
        }
        self.next = Some(if now.duration_since(due) < self.interval {
            due + self.interval
        } else {
            now + self.interval
        });
        true
    }

    /// When the next slot frees (None: free now).
    pub fn next_free(&self) -> Option<Instant> {
        self.next
    }
}

/// One acknowledgement to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Mark `wamid` (and the customer's earlier messages) read.
    Read { customer_id: String, wamid: String },
    /// React to `wamid` with `emoji`.
    React {
        customer_id: String,
        wamid: String,
        emoji: &'static str,
    },
}

/// What a pending acknowledgement is merged on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AckKey {
    Read(String),
    React(String),
}

impl Ack {
    fn key(&self) -> AckKey {
        match self {
            Ack::Read { customer_id, .. } => AckKey::Read(customer_id.clone()),
            Ack::React { wamid, .. } => AckKey::React(wamid.clone()),
        }
    }
}

/// What became of an acknowledgement pushed into the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPush {
    /// Waits for its slot.
    Queued,
    /// Replaced a pending one (which will not be sent).
    Merged,
    /// Queued, and the oldest pending one was dropped to make room.
    DroppedOldest,
}

/// The next send of a number.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<R> {
    Reply(R),
    Ack(Ack),
}

/// The two lanes of one business number. `R` is a reply with whatever its caller waits on.
#[derive(Debug)]
pub struct Lanes<R> {
    replies: VecDeque<R>,
    /// Acknowledgements in lane order, by id.
    order: VecDeque<(u64, AckKey)>,
    pending: HashMap<u64, Ack>,
    /// The id of the latest queued acknowledgement of each key.
    latest: HashMap<AckKey, u64>,
    next_id: u64,
    ack_capacity: usize,
}

impl<R> Lanes<R> {
    pub fn new(ack_capacity: usize) -> Self {
        Self {
            replies: VecDeque::new(),
            order: VecDeque::new(),
            pending: HashMap::new(),
            latest: HashMap::new(),
            next_id: 0,
            ack_capacity: ack_capacity.max(1),
        }
    }

    pub fn push_reply(&mut self, reply: R) {
        self.replies.push_back(reply);
    }

    pub fn push_ack(&mut self, ack: Ack) -> AckPush {
        let key = ack.key();
        let front = self.order.front().map(|(id, _)| *id);
        if let Some(id) = self
            .latest
            .get(&key)
            .copied()
            .filter(|id| Some(*id) != front)
        {
            self.pending.insert(id, ack);
            return AckPush::Merged;
        }
        let mut outcome = AckPush::Queued;
        if self.order.len() >= self.ack_capacity {
            self.pop_ack();
            outcome = AckPush::DroppedOldest;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.order.push_back((id, key.clone()));
        self.latest.insert(key, id);
        self.pending.insert(id, ack);
        outcome
    }

    fn pop_ack(&mut self) -> Option<Ack> {
        let (id, key) = self.order.pop_front()?;
        if self.latest.get(&key) == Some(&id) {
            self.latest.remove(&key);
        }
        self.pending.remove(&id)
    }

    /// The send that gets the next slot: the oldest reply, else the oldest acknowledgement.
    pub fn pop(&mut self) -> Option<Next<R>> {
        if let Some(reply) = self.replies.pop_front() {
            return Some(Next::Reply(reply));
        }
        self.pop_ack().map(Next::Ack)
    }

    pub fn replies_pending(&self) -> usize {
        self.replies.len()
    }

    pub fn acks_pending(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most grants within any one second.
    fn busiest_second(grants: &[Instant]) -> usize {
        let mut most = 0;
        let mut start = 0;
        for end in 0..grants.len() {
            while grants[end].duration_since(grants[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        most
    }

    #[test]
    fn slots_hold_the_rate_whatever_the_wake_up_delays() {
        let interval = Duration::from_secs(1) / 80;
        let mut slots = Slots::new(interval);
        let t0 = Instant::now();
        let mut now = t0;
        let mut grants = Vec::new();
        // A backlog served by wake-ups that come 0..30 ms late, with the odd long stall.
        let mut seed = 7u64;
        while now < t0 + Duration::from_secs(20) {
            if slots.take(now) {
                grants.push(now);
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let late = Duration::from_micros((seed >> 33) % 30_000);
            let stall = if (seed >> 20).is_multiple_of(50) {
                Duration::from_millis(300)
            } else {
                Duration::ZERO
            };
            now = slots.next_free().unwrap_or(now).max(now) + late + stall;
        }
        assert!(busiest_second(&grants) <= 81, "{}", busiest_second(&grants));
        assert!(
            grants.len() > 20 * 30,
            "the backlog is served: {}",
            grants.len()
        );
    }

    #[test]
    fn an_idle_number_sends_at_once_then_waits_an_interval() {
        let interval = Duration::from_millis(100);
        let mut slots = Slots::new(interval);
        let t0 = Instant::now();
        assert!(slots.take(t0));
        assert!(!slots.take(t0 + Duration::from_millis(50)));
        assert!(slots.take(t0 + Duration::from_millis(100)));
        // Idle for a while: one send now, none right after (no burst).
        let later = t0 + Duration::from_secs(5);
        assert!(slots.take(later));
        assert!(!slots.take(later));
        assert_eq!(slots.next_free(), Some(later + interval));
    }

    fn read(customer: &str, wamid: &str) -> Ack {
        Ack::Read {
            customer_id: customer.into(),
            wamid: wamid.into(),
        }
    }

    fn react(customer: &str, wamid: &str, emoji: &'static str) -> Ack {
        Ack::React {
            customer_id: customer.into(),
            wamid: wamid.into(),
            emoji,
        }
    }

    fn drain(lanes: &mut Lanes<&'static str>) -> Vec<Next<&'static str>> {
        std::iter::from_fn(|| lanes.pop()).collect()
    }

    #[test]
    fn replies_go_before_every_pending_acknowledgement() {
        let mut lanes = Lanes::new(100);
        lanes.push_ack(read("c1", "w1"));
        lanes.push_ack(react("c1", "w1", "👀"));
        lanes.push_reply("r1");
        lanes.push_ack(read("c2", "w2"));
        lanes.push_reply("r2");
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Reply("r1"),
                Next::Reply("r2"),
                Next::Ack(read("c1", "w1")),
                Next::Ack(react("c1", "w1", "👀")),
                Next::Ack(read("c2", "w2")),
            ]
        );
        assert!(lanes.is_empty());
    }

    #[test]
    fn a_later_reaction_replaces_a_pending_one_in_its_place() {
        let mut lanes: Lanes<&str> = Lanes::new(100);
        lanes.push_ack(read("c0", "w0"));
        assert_eq!(lanes.push_ack(react("c1", "w1", "👀")), AckPush::Queued);
        lanes.push_ack(react("c2", "w2", "👀"));
        assert_eq!(lanes.push_ack(react("c1", "w1", "✅")), AckPush::Merged);
        assert_eq!(lanes.acks_pending(), 3);
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Ack(read("c0", "w0")),
                Next::Ack(react("c1", "w1", "✅")),
                Next::Ack(react("c2", "w2", "👀")),
            ]
        );
    }

    #[test]
    fn the_next_acknowledgement_to_go_is_not_replaced() {
        // A number that keeps up: 👀 is next, ✅ follows it rather than replacing it.
        let mut lanes: Lanes<&str> = Lanes::new(100);
        lanes.push_ack(react("c1", "w1", "👀"));
        assert_eq!(lanes.push_ack(react("c1", "w1", "✅")), AckPush::Queued);
        // A third one replaces the ✅ still waiting behind it.
        assert_eq!(lanes.push_ack(react("c1", "w1", "❌")), AckPush::Merged);
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Ack(react("c1", "w1", "👀")),
                Next::Ack(react("c1", "w1", "❌")),
            ]
        );
    }

    #[test]
    fn a_read_mark_for_a_later_message_covers_earlier_ones_of_that_customer_only() {
        let mut lanes: Lanes<&str> = Lanes::new(100);
        lanes.push_ack(react("c0", "w0", "👀"));
        lanes.push_ack(read("c1", "w1"));
        lanes.push_ack(read("c2", "x1"));
        assert_eq!(lanes.push_ack(read("c1", "w2")), AckPush::Merged);
        assert_eq!(lanes.push_ack(read("c1", "w3")), AckPush::Merged);
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Ack(react("c0", "w0", "👀")),
                Next::Ack(read("c1", "w3")),
                Next::Ack(read("c2", "x1")),
            ]
        );
    }

    #[test]
    fn reactions_to_different_messages_are_not_merged() {
        let mut lanes: Lanes<&str> = Lanes::new(100);
        lanes.push_ack(react("c1", "w1", "✅"));
        assert_eq!(lanes.push_ack(react("c1", "w2", "👀")), AckPush::Queued);
        assert_eq!(lanes.acks_pending(), 2);
    }

    #[test]
    fn past_capacity_the_oldest_acknowledgement_is_dropped() {
        let mut lanes: Lanes<&str> = Lanes::new(2);
        lanes.push_ack(react("c1", "w1", "👀"));
        lanes.push_ack(react("c2", "w2", "👀"));
        assert_eq!(
            lanes.push_ack(react("c3", "w3", "👀")),
            AckPush::DroppedOldest
        );
        // The dropped one is forgotten: a later ack of it queues anew, at the back.
        assert_eq!(
            lanes.push_ack(react("c1", "w1", "✅")),
            AckPush::DroppedOldest
        );
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Ack(react("c3", "w3", "👀")),
                Next::Ack(react("c1", "w1", "✅")),
            ]
        );
    }

    #[test]
    fn replies_are_never_dropped_or_merged() {
        let mut lanes = Lanes::new(1);
        for r in ["a", "a", "b"] {
            lanes.push_reply(r);
        }
        lanes.push_ack(read("c1", "w1"));
        assert_eq!(lanes.replies_pending(), 3);
        assert_eq!(
            drain(&mut lanes),
            vec![
                Next::Reply("a"),
                Next::Reply("a"),
                Next::Reply("b"),
                Next::Ack(read("c1", "w1")),
            ]
        );
    }
}
