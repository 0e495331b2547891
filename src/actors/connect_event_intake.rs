//! ConnectEventIntake: long-polls the Connect streaming queue (Connect -> SNS -> SQS),
//! keeps the items meant for the customer (visibility CUSTOMER or ALL, from anyone but
//! the customer), resolves the chat to its customer, and routes them to that customer's
//! conversation; chat.ended and the customer leaving end the stored session.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics::counter;
use tokio::sync::oneshot;

use super::poller::Poller;
use super::supervisor::{Route, Supervisor};
use super::{backoff, Outcome, Work};
use crate::domain::{decode_chat_item, unwrap_sns, ChatItem, ItemType};
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{PortResult, Queue, QueueMessage, Session, SessionStore};

const METRICS: ActorMetrics = ActorMetrics::new("connect_event_intake");
/// Receives of a forwardable item whose chat we cannot find before it is dead-lettered:
/// covers the short race between a chat starting and its session being stored.
const UNKNOWN_CHAT_ATTEMPTS: u32 = 5;

pub struct ConnectEventIntake {
    poller: Arc<Poller>,
    sessions: Arc<dyn SessionStore>,
    supervisor: Addr<Supervisor>,
}

impl ConnectEventIntake {
    pub fn new(
        queue: Arc<dyn Queue>,
        sessions: Arc<dyn SessionStore>,
        supervisor: Addr<Supervisor>,
        lifecycle: Arc<Lifecycle>,
        max_in_flight: usize,
    ) -> Self {
        Self {
            poller: Arc::new(Poller::new(
                queue,
                "connect",
                lifecycle,
                METRICS,
                max_in_flight,
            )),
            sessions,
            supervisor,
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl Actor for ConnectEventIntake {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Poll);
    }
}

/// The session of the chat an item belongs to: by ContactId, else by InitialContactId
/// (Connect gives a transferred chat a new ContactId).
async fn resolve(sessions: &Arc<dyn SessionStore>, item: &ChatItem) -> PortResult<Option<Session>> {
    if let Some(s) = sessions.find_by_contact(&item.contact_id).await? {
        return Ok(Some(s));
    }
    match item.initial_contact_id.as_deref() {
        Some(initial) if initial != item.contact_id => sessions.find_by_contact(initial).await,
        _ => Ok(None),
    }
}

fn ignored(reason: &'static str) -> Outcome {
    counter!(m::OUTBOUND_ITEMS, "outcome" => "ignored", "reason" => reason).increment(1);
    Outcome::Ignored(reason)
}

enum Step {
    Settle(Outcome),
    Routed(oneshot::Receiver<Outcome>),
}

async fn handle_item(
    msg: &QueueMessage,
    sessions: &Arc<dyn SessionStore>,
    supervisor: &Addr<Supervisor>,
) -> Step {
    let item = match unwrap_sns(&msg.body).and_then(|sns| decode_chat_item(&sns)) {
        Ok(item) => item,
        Err(e) => {
            METRICS.error("undecodable");
            tracing::error!(sqs_message_id = %msg.id, reason = %e.reason(), "chat item cannot be decoded");
            return Step::Settle(Outcome::Reject { reason: e.reason() });
        }
    };
    let ends = item.ends_session();
    let forward = item.is_for_customer()
        && match item.item_type {
            ItemType::Message => true,
            // Still being scanned or rejected: Connect streams the approved one again.
            ItemType::Attachment => item.approved_attachments().next().is_some(),
            _ => false,
        };
    if !ends && !forward {
        let reason = match (&item.item_type, item.participant_role.as_str()) {
            (_, "CUSTOMER") => "customer_echo",
            (ItemType::Message | ItemType::Attachment, _) if !item.is_for_customer() => {
                "not_visible_to_customer"
            }
            (ItemType::Attachment, _) => "attachment_not_approved",
            _ => "event",
        };
        tracing::debug!(item_id = %item.id, contact_id = %item.contact_id, reason, "chat item not forwarded");
        return Step::Settle(ignored(reason));
    }
    let session = match resolve(sessions, &item).await {
        Ok(s) => s,
        Err(e) => return Step::Settle(Outcome::retry(e.to_string(), backoff(msg.receive_count))),
    };
    let Some(session) = session else {
        if ends {
            return Step::Settle(ignored("unknown_chat_ended"));
        }
        if msg.receive_count < UNKNOWN_CHAT_ATTEMPTS {
            return Step::Settle(Outcome::retry(
                "no session for this contact yet",
                Duration::from_secs(2),
            ));
        }
        return Step::Settle(Outcome::Reject {
            reason: format!("no WhatsApp session for contact {}", item.contact_id),
        });
    };
    let (reply, rx) = oneshot::channel();
    let work = if ends {
        if let Err(e) = sessions.delete(&session.contact_id).await {
            return Step::Settle(Outcome::retry(e.to_string(), backoff(msg.receive_count)));
        }
        tracing::info!(contact_id = %session.contact_id, item_id = %item.id, "chat ended; session cleared");
        Work::SessionEnded {
            contact_id: session.contact_id.clone(),
            reply,
        }
    } else {
        Work::Outbound {
            item: Box::new(item),
            session: Box::new(session.clone()),
            queued_at: msg.sent_at,
            reply,
        }
    };
    let _ = supervisor
        .send(Route {
            customer_id: session.customer_id,
            work,
        })
        .await;
    Step::Routed(rx)
}

impl Handler<Poll> for ConnectEventIntake {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Poll, _: &mut Self::Context) -> Self::Result {
        let poller = self.poller.clone();
        let sessions = self.sessions.clone();
        let supervisor = self.supervisor.clone();
        let fut = async move {
            for (msg, guard) in poller.next_batch().await {
                match handle_item(&msg, &sessions, &supervisor).await {
                    Step::Settle(outcome) => poller.settle_now(msg, guard, outcome),
                    Step::Routed(rx) => poller.settle_later(msg, guard, vec![rx], Vec::new()),
                }
            }
        };
        Box::pin(fut.into_actor(self).map(|_, _, ctx| ctx.notify(Poll)))
    }
}
