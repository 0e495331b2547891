//! Burst aggregation at the regroup stage. With the FIFO stage a customer's texts cannot
//! wait in their conversation (the FIFO queue would not hand over the next text while one
//! waits), so the regroup stage holds them: a customer's plain texts, while no human agent
//! has joined their chat, stay received in the standard queue (their visibility extended)
//! and go on to the FIFO queue together, as one burst message, once the customer has been
//! quiet for the quiet gap, at the latest the maximum wait after the first, when the next
//! text would not fit one chat message, or at once when anything else of that customer
//! comes (it follows the burst). The conversation stage joins a burst message's texts
//! into one chat message (`Work::InboundBurst`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::regroup::Split;
use crate::actors::conversation::BurstPolicy;
use crate::actors::Outcome;
use crate::domain::CONNECT_MESSAGE_MAX_CHARS;
use crate::ports::{OutgoingMessage, SessionStore};

/// How long "an agent is in this customer's chat" is believed without asking again.
const AGENT_KNOWN_FOR: Duration = Duration::from_secs(60);

/// One held text: its event split and where its queue message's outcome goes.
struct Part {
    split: Split,
    done: oneshot::Sender<Outcome>,
}

/// A customer's held texts.
struct Held {
    first: Instant,
    last: Instant,
    chars: usize,
    parts: Vec<Part>,
}

impl Held {
    fn due(&self, policy: &BurstPolicy) -> Instant {
        policy.due(self.first, self.last)
    }
}

/// Texts taken out of the hold, to be passed on as one burst message.
pub struct HeldBurst {
    parts: Vec<Part>,
}

impl HeldBurst {
    /// The FIFO message carrying every text of the burst.
    pub fn message(&self) -> OutgoingMessage {
        let first = &self.parts[0].split;
        let units: Vec<_> = self.parts.iter().flat_map(|p| &p.split.units).collect();
        first.message(&units)
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Settles every held queue message with `outcome`.
    pub fn settle(self, outcome: Outcome) {
        for part in self.parts {
            let _ = part.done.send(outcome.clone());
        }
    }
}

/// See the module docs.
pub struct BurstHold {
    policy: BurstPolicy,
    sessions: Arc<dyn SessionStore>,
    held: Mutex<HashMap<String, Held>>,
    /// customer group (business number + customer) -> until when an agent is known to be
    /// in their chat.
    agents: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BurstHold {
    pub fn new(policy: BurstPolicy, sessions: Arc<dyn SessionStore>) -> Self {
        Self {
            policy,
            sessions,
            held: Mutex::default(),
            agents: Mutex::default(),
        }
    }

    /// When the next held burst is due.
    pub fn next_due(&self) -> Option<Instant> {
        lock(&self.held).values().map(|h| h.due(&self.policy)).min()
    }

    /// Takes out the bursts that are due at `now` (every one when `all`: draining).
    pub fn take_due(&self, now: Instant, all: bool) -> Vec<HeldBurst> {
        let mut held = lock(&self.held);
        let due: Vec<String> = held
            .iter()
            .filter(|(_, h)| all || h.due(&self.policy) <= now)
            .map(|(g, _)| g.clone())
            .collect();
        due.iter()
            .filter_map(|g| held.remove(g))
            .map(|h| HeldBurst { parts: h.parts })
            .collect()
    }

    /// Takes out the burst of `group`, if any (something else of that customer follows).
    pub fn take(&self, group: &str) -> Option<HeldBurst> {
        lock(&self.held)
            .remove(group)
            .map(|h| HeldBurst { parts: h.parts })
    }

    /// Whether `split` is a text to hold: one plain text of a customer with no agent in
    /// their chat (asked of the session store at a burst's start; a failed lookup holds,
    /// which costs the text a little time and nothing else).
    pub async fn wants(&self, split: &Split) -> bool {
        let [unit] = split.units.as_slice() else {
            return false;
        };
        if unit.text_chars.is_none() || unit.customer.is_empty() {
            return false;
        }
        if lock(&self.held).contains_key(&unit.group) {
            return true;
        }
        if lock(&self.agents)
            .get(&unit.group)
            .is_some_and(|until| Instant::now() < *until)
        {
            return false;
        }
        match self
            .sessions
            .find_by_customer(&unit.business_number_id, &unit.customer)
            .await
        {
            Ok(Some(session)) if session.agent_joined => {
                lock(&self.agents).insert(unit.group.clone(), Instant::now() + AGENT_KNOWN_FOR);
                false
            }
            _ => true,
        }
    }

    /// Holds a text [`BurstHold::wants`]; answers the customer's burst that has to go on
    /// first because this text would not fit it.
    pub fn keep(&self, split: Split, done: oneshot::Sender<Outcome>) -> Option<HeldBurst> {
        let unit = &split.units[0];
        let (group, chars) = (unit.group.clone(), unit.text_chars.unwrap_or(0));
        let now = Instant::now();
        let mut held = lock(&self.held);
        let full = held
            .get(&group)
            .is_some_and(|h| h.chars + 1 + chars > CONNECT_MESSAGE_MAX_CHARS);
        let previous = if full {
            held.remove(&group).map(|h| HeldBurst { parts: h.parts })
        } else {
            None
        };
        let entry = held.entry(group).or_insert_with(|| Held {
            first: now,
            last: now,
            chars: 0,
            parts: Vec::new(),
        });
        entry.chars += chars + usize::from(!entry.parts.is_empty());
        entry.last = now;
        entry.parts.push(Part { split, done });
        previous
    }
}
