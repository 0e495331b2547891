//! The simulator's event bus: every change the console shows (customer messages, what the
//! business sent, chat items, chat state, AWS calls, the router's figures) is published
//! here as a named event with JSON data, and `GET /sim/events` streams it (see `sse.rs`).
//!
//! Every publish happens while the simulator's state lock is held, and a subscriber
//! takes its snapshot under that same lock. So "snapshot at sequence N, then every event
//! after N" is exact: nothing is missed or shown twice between the two.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::state::{CallRecord, Chat, InboxEntry, Item};

/// Events kept for clients that reconnect with `Last-Event-ID`; one further back gets a
/// fresh snapshot instead.
pub const REPLAY_EVENTS: usize = 2048;
/// Events a slow subscriber may fall behind before it is sent a fresh snapshot.
const CHANNEL_CAPACITY: usize = 1024;

/// SSE event names (the `event:` field). docs/simulator.md describes each data shape.
pub mod names {
    /// Everything at once, first on every connection (and after a gap).
    pub const SNAPSHOT: &str = "snapshot";
    /// A message the customer sent (or its status changed: `failed`).
    pub const CUSTOMER_MESSAGE: &str = "customer.message";
    /// Something the business sent a customer (SendWhatsAppMessage): a message, a
    /// reaction, a read mark (with or without typing indicator).
    pub const INBOX: &str = "inbox";
    /// A chat started, ended, expired or was transferred.
    pub const CHAT: &str = "chat";
    /// A chat item was recorded (any role, messages, attachments and events).
    pub const ITEM: &str = "item";
    /// An AWS call was answered.
    pub const CALL: &str = "call";
    /// The router's figures changed (local mode: scraped from its /metrics).
    pub const FIGURES: &str = "figures";
}

/// One published event. `data` is the JSON text sent as the SSE `data:` field.
#[derive(Debug)]
pub struct SimEvent {
    pub seq: u64,
    pub name: &'static str,
    pub data: String,
}

/// What [`EventBus::subscribe`] hands a new subscriber.
pub(crate) struct Subscription {
    pub receiver: broadcast::Receiver<Arc<SimEvent>>,
    /// The last sequence number published before subscribing.
    pub seq: u64,
    /// With `after` given and still in the replay window: the events since.
    pub replay: Option<Vec<Arc<SimEvent>>>,
}

struct Log {
    seq: u64,
    recent: VecDeque<Arc<SimEvent>>,
}

struct BusInner {
    /// Tells one simulator lifetime from the next, so an event id from before a restart
    /// is never taken for a position in this one.
    epoch: String,
    sender: broadcast::Sender<Arc<SimEvent>>,
    log: Mutex<Log>,
}

/// A cheap-to-clone handle on the simulator's event stream.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        let epoch = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Self {
            inner: Arc::new(BusInner {
                epoch,
                sender,
                log: Mutex::new(Log {
                    seq: 0,
                    recent: VecDeque::with_capacity(REPLAY_EVENTS),
                }),
            }),
        }
    }
}

impl EventBus {
    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    /// The SSE id of sequence number `seq`: `<epoch>-<seq>`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.inner.epoch)
    }

    /// The sequence number an SSE id names, if it is one of this bus's.
    pub fn parse_event_id(&self, id: &str) -> Option<u64> {
        let (epoch, seq) = id.trim().rsplit_once('-')?;
        (epoch == self.inner.epoch).then(|| seq.parse().ok())?
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `data` as event `name` and answers its sequence number. Call it with the
    /// simulator's state lock held.
    pub fn publish(&self, name: &'static str, data: &impl Serialize) -> u64 {
        // Plain data with string keys: serializing cannot fail.
        let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
        let mut log = self.log();
        log.seq += 1;
        let event = Arc::new(SimEvent {
            seq: log.seq,
            name,
            data,
        });
        if log.recent.len() >= REPLAY_EVENTS {
            log.recent.pop_front();
        }
        log.recent.push_back(event.clone());
        // No subscriber is not an error: the event stays in the replay window.
        let _ = self.inner.sender.send(event);
        log.seq
    }

    /// Subscribes; with `after` (a sequence number a client last saw), also returns the
    /// events since, if the replay window still holds them all.
    pub(crate) fn subscribe(&self, after: Option<u64>) -> Subscription {
        let log = self.log();
        let receiver = self.inner.sender.subscribe();
        let replay = after.and_then(|after| {
            if after > log.seq {
                return None;
            }
            let oldest = log.recent.front().map_or(log.seq + 1, |e| e.seq);
            (after + 1 >= oldest).then(|| {
                log.recent
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .collect()
            })
        });
        Subscription {
            receiver,
            seq: log.seq,
            replay,
        }
    }
}

/// The console's share of the simulator's state (one field of `State`).
#[derive(Default)]
pub(crate) struct ConsoleState {
    pub events: EventBus,
    /// Customer wa_id -> what that customer sent through the control API.
    pub phones: BTreeMap<String, Phone>,
    /// Inbox entry id -> (sequence number, time) of its `inbox` event, so a snapshot can
    /// interleave what the customer sent with what the business sent.
    pub delivered: HashMap<String, (u64, String)>,
    /// The router's latest figures (local mode), as last published.
    pub figures: Option<Value>,
    /// The ffmpeg that encodes voice notes (`None`: `ffmpeg` on the PATH).
    pub ffmpeg: Option<PathBuf>,
}

/// One simulated customer's phone: the profile name last used and the messages sent,
/// each with the sequence number of its first `customer.message` event.
#[derive(Debug, Clone)]
pub struct Phone {
    pub profile_name: String,
    pub sent: Vec<(u64, SentMessage)>,
}

/// A message a customer sent, as `customer.message` events carry it.
#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub wa_id: String,
    pub profile_name: String,
    pub wamid: String,
    pub at: String,
    /// `sent` once handed to the inbound queue; `failed` when that was refused.
    pub status: &'static str,
    /// The Meta message object as delivered (`from`, `id`, `type`, ...).
    pub message: Value,
    /// The file behind a media message, readable at `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<SentMedia>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentMedia {
    pub id: String,
    pub mime_type: String,
    pub size: usize,
    /// `/sim/customers/{wa_id}/media/{id}`.
    pub url: String,
}

impl ConsoleState {
    /// Files a customer message (new, or a status change of one filed before) and
    /// publishes it.
    pub fn customer_message(&mut self, sent: SentMessage) {
        let seq = self.events.publish(names::CUSTOMER_MESSAGE, &sent);
        let phone = self
            .phones
            .entry(sent.wa_id.clone())
            .or_insert_with(|| Phone {
                profile_name: sent.profile_name.clone(),
                sent: Vec::new(),
            });
        phone.profile_name = sent.profile_name.clone();
        match phone.sent.iter_mut().find(|(_, m)| m.wamid == sent.wamid) {
            Some((_, known)) => *known = sent,
            None => phone.sent.push((seq, sent)),
        }
    }

    /// Publishes what the business sent `wa_id` (an `inbox` event) and notes when.
    pub fn delivered(&mut self, wa_id: &str, entry: &InboxEntry) {
        let at = now();
        let seq = self.events.publish(
            names::INBOX,
            &json!({ "wa_id": wa_id, "at": at, "entry": entry }),
        );
        self.delivered.insert(entry.id.clone(), (seq, at));
    }

    /// Whether `media_id` is a file `wa_id` sent.
    pub fn sent_media(&self, wa_id: &str, media_id: &str) -> bool {
        self.phones.get(wa_id).is_some_and(|p| {
            p.sent
                .iter()
                .any(|(_, m)| m.media.as_ref().is_some_and(|f| f.id == media_id))
        })
    }
}

/// `item` data: the item as `GET /sim/chats` shows it, with the ids to file it under.
pub(crate) fn item_event(bus: &EventBus, chat: &Chat, item: &Item) {
    bus.publish(
        names::ITEM,
        &json!({
            "contact_id": chat.contact_id,
            "initial_contact_id": chat.initial_contact_id,
            "customer_id": chat.attributes.get("customerId"),
            "item": item,
        }),
    );
}

/// `call` data.
pub(crate) fn call_event(bus: &EventBus, call: &CallRecord) {
    bus.publish(names::CALL, call);
}

/// A chat as `GET /sim/chats` shows it, without its items.
pub(crate) fn chat_summary(chat: &Chat) -> Value {
    let mut value = chat.to_json();
    if let Value::Object(map) = &mut value {
        map.remove("items");
    }
    value
}

impl Chat {
    /// Publishes the chat's current state (`chat` event): on start, end, expiry and
    /// transfer.
    pub(crate) fn announce(&self) {
        self.events
            .publish(names::CHAT, &json!({ "chat": chat_summary(self) }));
    }
}

fn now() -> String {
    super::sinks::iso_millis(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of(events: &[Arc<SimEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn ids_carry_the_epoch() {
        let bus = EventBus::default();
        let other = EventBus::default();
        assert_ne!(bus.epoch(), other.epoch());
        assert_eq!(bus.parse_event_id(&bus.event_id(7)), Some(7));
        assert_eq!(other.parse_event_id(&bus.event_id(7)), None);
        assert_eq!(bus.parse_event_id("garbage"), None);
        assert_eq!(bus.parse_event_id(&format!("{}-x", bus.epoch())), None);
    }

    #[tokio::test]
    async fn subscribers_get_what_follows_and_replay_what_they_missed() {
        let bus = EventBus::default();
        bus.publish(names::CALL, &json!({"n": 1}));
        bus.publish(names::CALL, &json!({"n": 2}));
        let mut sub = bus.subscribe(Some(1));
        assert_eq!(sub.seq, 2);
        assert_eq!(names_of(&sub.replay.unwrap()), vec![2]);
        bus.publish(names::ITEM, &json!({"n": 3}));
        let next = sub.receiver.recv().await.unwrap();
        assert_eq!((next.seq, next.name), (3, names::ITEM));
        assert_eq!(next.data, r#"{"n":3}"#);

        // Up to date: nothing to replay. Ahead of the bus (another lifetime): no replay.
        assert_eq!(bus.subscribe(Some(3)).replay.unwrap().len(), 0);
        assert!(bus.subscribe(Some(4)).replay.is_none());
        assert!(bus.subscribe(None).replay.is_none());
    }

    #[test]
    fn replay_needs_every_missed_event_in_the_window() {
        let bus = EventBus::default();
        for n in 0..REPLAY_EVENTS + 10 {
            bus.publish(names::CALL, &json!({ "n": n }));
        }
        // Events 1..=10 have left the window.
        assert!(bus.subscribe(Some(5)).replay.is_none());
        let replay = bus.subscribe(Some(10)).replay.unwrap();
        assert_eq!(replay.len(), REPLAY_EVENTS);
        assert_eq!(replay[0].seq, 11);
    }
}
