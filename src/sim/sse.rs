//! `GET /sim/events`: the simulator's event bus as Server-Sent Events.
//!
//! A new connection gets a `snapshot` (everything the console shows) and then every event
//! after it. A client that reconnects with `Last-Event-ID` (EventSource does so by itself)
//! gets the events it missed if they are still in the replay window, else a fresh
//! snapshot; so does a client that falls too far behind.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::broadcast::{error::RecvError, Receiver};

use super::events::{names, EventBus, SimEvent};
use super::state::{self, Simulator};

/// How long an EventSource waits before reconnecting (the SSE `retry:` field).
const RETRY: Duration = Duration::from_secs(2);
/// How often a comment line keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// AWS calls a snapshot carries (the most recent).
const SNAPSHOT_CALLS: usize = 200;

/// What a connection still has to send before it waits on the bus again.
struct Feed {
    sim: Arc<Simulator>,
    bus: EventBus,
    receiver: Receiver<Arc<SimEvent>>,
    pending: VecDeque<Event>,
}

/// `GET /sim/events`.
pub(crate) async fn events(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (bus, receiver, first) = open(&sim, last_id.as_deref());
    let feed = Feed {
        sim,
        bus,
        receiver,
        pending: first.into(),
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((Ok(event), feed));
            }
            match feed.receiver.recv().await {
                Ok(event) => {
                    let event = to_sse(&feed.bus, &event);
                    return Some((Ok(event), feed));
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(
                        missed,
                        "simulator: event stream client lagged, resending a snapshot"
                    );
                    let (bus, receiver, first) = open(&feed.sim, None);
                    feed.bus = bus;
                    feed.receiver = receiver;
                    feed.pending.extend(first);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

/// Subscribes under the state lock and answers what to send first: the missed events
/// (a `Last-Event-ID` still in the replay window) or a snapshot.
fn open(sim: &Simulator, last_id: Option<&str>) -> (EventBus, Receiver<Arc<SimEvent>>, Vec<Event>) {
    let state = sim.lock();
    let bus = state.console.events.clone();
    let after = last_id.and_then(|id| bus.parse_event_id(id));
    let subscription = bus.subscribe(after);
    let first = match subscription.replay {
        Some(missed) => missed.iter().map(|e| to_sse(&bus, e)).collect(),
        None => vec![Event::default()
            .event(names::SNAPSHOT)
            .id(bus.event_id(subscription.seq))
            .retry(RETRY)
            .data(snapshot(sim, &state, subscription.seq).to_string())],
    };
    (bus, subscription.receiver, first)
}

fn to_sse(bus: &EventBus, event: &SimEvent) -> Event {
    Event::default()
        .event(event.name)
        .id(bus.event_id(event.seq))
        .data(&event.data)
}

/// Everything the console shows, as of sequence number `seq`.
pub(crate) fn snapshot(sim: &Simulator, state: &state::State, seq: u64) -> Value {
    #[derive(Default)]
    struct Customer {
        profile_name: Option<String>,
        sent: Vec<Value>,
        inbox: Vec<Value>,
    }
    /// `value` (an object) with the sequence number (and time) of its event added.
    fn stamped(value: impl serde::Serialize, seq: u64, at: Option<&str>) -> Value {
        let mut value = json!(value);
        value["seq"] = json!(seq);
        if let Some(at) = at {
            value["at"] = json!(at);
        }
        value
    }
    let mut customers: BTreeMap<&str, Customer> = BTreeMap::new();
    for (wa_id, phone) in &state.console.phones {
        let customer = customers.entry(wa_id).or_default();
        customer.profile_name = Some(phone.profile_name.clone());
        customer.sent = phone
            .sent
            .iter()
            .map(|(seq, sent)| stamped(sent, *seq, None))
            .collect();
    }
    for (wa_id, inbox) in &state.inboxes {
        customers.entry(wa_id).or_default().inbox = inbox
            .iter()
            .map(|entry| match state.console.delivered.get(&entry.id) {
                Some((seq, at)) => stamped(entry, *seq, Some(at)),
                // Filed without an event (not through `State::deliver`): order unknown.
                None => stamped(entry, 0, None),
            })
            .collect();
    }
    for chat in &state.chats {
        if let Some(wa_id) = chat.attributes.get("customerId") {
            let customer = customers.entry(wa_id.trim_start_matches('+')).or_default();
            if customer.profile_name.is_none() {
                customer.profile_name = Some(chat.customer_display_name.clone());
            }
        }
    }
    let customers: Vec<Value> = customers
        .into_iter()
        // Read marks of messages the simulator never saw are filed under a non-number.
        .filter(|(wa_id, _)| !wa_id.is_empty() && wa_id.chars().all(|c| c.is_ascii_digit()))
        .map(|(wa_id, c)| {
            json!({
                "wa_id": wa_id,
                "profile_name": c.profile_name,
                "sent": c.sent,
                "inbox": c.inbox,
            })
        })
        .collect();
    let skip = state.calls.len().saturating_sub(SNAPSHOT_CALLS);
    let calls: Vec<_> = state.calls.iter().skip(skip).collect();
    json!({
        "epoch": state.console.events.epoch(),
        "seq": seq,
        "business": {
            "display_phone_number": sim.identity.display_phone_number,
            "phone_number_id": sim.identity.phone_number_id(),
        },
        "business_numbers": super::control::numbers_json(&sim.identity),
        "customers": customers,
        "chats": state.chats.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "calls": calls,
        "figures": state.console.figures,
    })
}
