//! Conversation: one actor per customer, created on demand and stopped when idle. It is
//! the unit of ordering and backpressure: a bounded mailbox and one step in flight, so a
//! customer's messages reach the agent in the order they were routed here, and the
//! agent's replies reach the customer in the order Connect streamed them.
//!
//! It caches the customer's chat session, so a message to an existing chat costs one
//! Connect call and no database read.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use metrics::{counter, gauge, histogram};

use super::connect_upload::{ConnectUpload, Customer, Deliver, Piece};
use super::media_flow::{
    deliver_inbound_media, deliver_outbound_attachment, InboundFile, MediaDeps,
};
use super::supervisor::{ConversationIdle, Supervisor};
use super::whatsapp_send::{Acknowledge, SendWhatsApp, WhatsAppSend};
use super::{backoff, Outcome, Reply, Work};
use crate::config::Behaviour;
use crate::domain::{
    dedupe_key_chat_item, dedupe_key_inbound, reactions, split_text, text_message, ChatItem,
    CustomerMessage, ItemType, Media, MessageContent, CONNECT_MESSAGE_MAX_CHARS,
};
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{DedupeStore, ErrorKind, PortError, Session};

pub const METRICS: ActorMetrics = ActorMetrics::new("conversation");

/// What every conversation shares.
#[derive(Clone)]
pub struct ConversationDeps {
    pub dedupe: Arc<dyn DedupeStore>,
    pub connect_upload: Addr<ConnectUpload>,
    pub whatsapp: Addr<WhatsAppSend>,
    pub supervisor: Addr<Supervisor>,
    pub behaviour: Arc<Behaviour>,
    /// None when no media bucket is configured: files then reach the agent as a notice.
    pub media: Option<MediaDeps>,
}

pub struct Conversation {
    customer_id: String,
    deps: ConversationDeps,
    session: Option<Session>,
    /// After a message failed and went back to the queue, later messages of this customer
    /// wait too (until the failed one returns or the deadline passes), so a retry does not
    /// let them overtake it.
    blocked: Option<(String, Instant)>,
    last_work: Instant,
}

impl Conversation {
    pub fn new(customer_id: String, deps: ConversationDeps) -> Self {
        Self {
            customer_id,
            deps,
            session: None,
            blocked: None,
            last_work: Instant::now(),
        }
    }
}

impl Actor for Conversation {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.deps.behaviour.mailbox_capacity);
        gauge!(m::CONVERSATIONS_ACTIVE).increment(1.0);
        let idle = self.deps.behaviour.conversation_idle;
        ctx.run_interval(idle / 4 + Duration::from_millis(10), move |act, ctx| {
            if act.last_work.elapsed() >= idle {
                act.deps.supervisor.do_send(ConversationIdle {
                    customer_id: act.customer_id.clone(),
                    addr: ctx.address(),
                });
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        gauge!(m::CONVERSATIONS_ACTIVE).decrement(1.0);
        if self.session.is_some() {
            gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
        }
    }
}

fn port_outcome(e: &PortError, receive_hint: u32) -> Outcome {
    match e.kind {
        ErrorKind::Invalid => Outcome::Reject {
            reason: e.to_string(),
        },
        _ => Outcome::retry(e.to_string(), backoff(receive_hint)),
    }
}

fn latency(direction: &'static str, queued_at: Option<SystemTime>) {
    if let Some(Ok(took)) = queued_at.map(|t| t.elapsed()) {
        histogram!(m::E2E_LATENCY, "direction" => direction).record(took.as_secs_f64());
    }
}

/// The agent-facing text of a media message until attachments are delivered as files.
fn media_notice(media: &Media) -> String {
    let mut text = format!(
        "📎 The customer sent {} {} ({}).",
        if media.kind.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        },
        media.kind.as_str(),
        media.mime_type
    );
    if let Some(caption) = &media.caption {
        text.push('\n');
        text.push_str(caption);
    }
    text
}

/// Whether configuration says to drop this message instead of forwarding it.
fn ignored_by_config(msg: &CustomerMessage, behaviour: &Behaviour) -> Option<&'static str> {
    match &msg.content {
        MessageContent::Reaction { .. } if !behaviour.forward_reactions => Some("reaction"),
        MessageContent::Media(media)
            if media.kind.as_str() == "sticker" && !behaviour.forward_stickers =>
        {
            Some("sticker")
        }
        _ => None,
    }
}

/// Delivers one customer message to the agent. Returns the outcome and the session now in
/// use (or the one passed in).
async fn deliver_inbound(
    deps: ConversationDeps,
    session: Option<Session>,
    msg: CustomerMessage,
    queued_at: Option<SystemTime>,
) -> (Outcome, Option<Session>) {
    let key = dedupe_key_inbound(&msg.wamid);
    match deps.dedupe.is_done(&key).await {
        Ok(true) => {
            counter!(m::DEDUPE_HITS, "direction" => "inbound").increment(1);
            tracing::info!(wamid = %msg.wamid, "already delivered; skipping redelivery");
            return (Outcome::Duplicate, session);
        }
        Ok(false) => {}
        Err(e) => return (port_outcome(&e, 1), session),
    }
    let behaviour = &deps.behaviour;
    let ack = |reaction: Option<&'static str>, mark_read: bool| Acknowledge {
        system_number: msg.system_number.clone(),
        customer_id: msg.customer_id.clone(),
        wamid: msg.wamid.clone(),
        mark_read,
        reaction,
    };
    if let Some(what) = ignored_by_config(&msg, behaviour) {
        if behaviour.acknowledge {
            deps.whatsapp.do_send(ack(None, true));
        }
        tracing::debug!(wamid = %msg.wamid, what, "not forwarded (configuration)");
        return (Outcome::Ignored(what), session);
    }
    if behaviour.acknowledge {
        deps.whatsapp.do_send(ack(Some(reactions::SEEN), true));
    }
    let customer = Customer {
        customer_id: msg.customer_id.clone(),
        name: msg
            .customer_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "WhatsApp customer".into()),
        system_number: msg.system_number.clone(),
    };
    if let (MessageContent::Media(media), Some(media_deps)) = (&msg.content, &deps.media) {
        let file = InboundFile {
            upload: &deps.connect_upload,
            customer,
            wamid: &msg.wamid,
            system_number: &msg.system_number,
            media,
            caption: msg.agent_text(),
        };
        let result = deliver_inbound_media(media_deps, file, session.clone()).await;
        if let Some(notice) = &result.customer_notice {
            let send = deps.whatsapp.send(SendWhatsApp {
                system_number: msg.system_number.clone(),
                body: text_message(&msg.customer_id, notice, Some(&msg.wamid)),
            });
            if let Ok(Err(e)) | Err(e) = send.await.map_err(|e| {
                PortError::new(ErrorKind::Other, "actor", "SendWhatsApp", e.to_string())
            }) {
                tracing::warn!(wamid = %msg.wamid, error = %e, "could not tell the customer why the file was not delivered");
            }
        }
        if let Some(delivered) = result.delivered {
            finish(&deps, &key, &msg, queued_at).await;
            if behaviour.acknowledge {
                let emoji = if delivered {
                    reactions::FILE_OK
                } else {
                    reactions::FAILED
                };
                deps.whatsapp.do_send(ack(Some(emoji), false));
            }
        }
        let contact = result
            .session
            .as_ref()
            .map(|s| s.contact_id.clone())
            .unwrap_or_default();
        match result.delivered {
            Some(true) => {
                tracing::info!(wamid = %msg.wamid, contact_id = %contact, kind = %media.kind, "file delivered to agent")
            }
            Some(false) => {
                tracing::warn!(wamid = %msg.wamid, contact_id = %contact, kind = %media.kind, "file not delivered; customer and agent told")
            }
            None => {}
        }
        let session = result.session.or(session);
        return (result.outcome, session);
    }
    let text = match &msg.content {
        MessageContent::Media(media) => media_notice(media),
        _ => msg.agent_text().unwrap_or_default(),
    };
    let pieces: Vec<Piece> = split_text(&text, CONNECT_MESSAGE_MAX_CHARS)
        .into_iter()
        .map(Piece::Text)
        .collect();
    if pieces.is_empty() {
        return (Outcome::Ignored("empty"), session);
    }
    let delivered = deps
        .connect_upload
        .send(Deliver {
            customer,
            session: session.clone(),
            pieces,
            source_id: msg.wamid.clone(),
        })
        .await;
    match delivered {
        Ok(Ok(new_session)) => {
            finish(&deps, &key, &msg, queued_at).await;
            if behaviour.acknowledge {
                deps.whatsapp.do_send(ack(Some(reactions::DONE), false));
            }
            tracing::info!(wamid = %msg.wamid, contact_id = %new_session.contact_id, "delivered to agent");
            (Outcome::Done, Some(new_session))
        }
        Ok(Err(e)) => {
            tracing::warn!(wamid = %msg.wamid, error = %e, "delivery to agent failed");
            // A failed call may mean a dead chat: look it up afresh next time.
            (port_outcome(&e, 1), None)
        }
        Err(e) => (
            Outcome::retry(format!("connect upload unavailable: {e}"), backoff(1)),
            session,
        ),
    }
}

/// Records a delivered customer message (dedupe and latency). Awaited before the next
/// step of this customer, so a redelivered copy right behind it finds the record.
async fn finish(
    deps: &ConversationDeps,
    key: &str,
    msg: &CustomerMessage,
    queued_at: Option<SystemTime>,
) {
    latency("inbound", queued_at);
    if let Err(e) = deps.dedupe.mark_done(key, deps.behaviour.dedupe_ttl).await {
        // Delivered all the same; a redelivery would repeat the same ClientTokens.
        tracing::warn!(wamid = %msg.wamid, error = %e, "could not record delivery");
    }
}

/// Delivers one agent chat item to the customer.
async fn deliver_outbound(
    deps: ConversationDeps,
    item: ChatItem,
    session: Session,
    queued_at: Option<SystemTime>,
) -> Outcome {
    let key = dedupe_key_chat_item(&item.id);
    match deps.dedupe.is_done(&key).await {
        Ok(true) => {
            counter!(m::DEDUPE_HITS, "direction" => "outbound").increment(1);
            tracing::info!(item_id = %item.id, contact_id = %item.contact_id, "already sent; skipping redelivery");
            return Outcome::Duplicate;
        }
        Ok(false) => {}
        Err(e) => return port_outcome(&e, 1),
    }
    let outcome = match item.item_type {
        ItemType::Message => {
            let Some(text) = item.content.as_deref().filter(|t| !t.trim().is_empty()) else {
                return Outcome::Ignored("empty");
            };
            let sent = deps
                .whatsapp
                .send(SendWhatsApp {
                    system_number: session.system_number.clone(),
                    body: text_message(&session.customer_id, text, None),
                })
                .await;
            match sent {
                Ok(Ok(_)) => Outcome::Done,
                Ok(Err(e)) => port_outcome(&e, 1),
                Err(e) => Outcome::retry(format!("whatsapp sender unavailable: {e}"), backoff(1)),
            }
        }
        ItemType::Attachment => {
            let mut outcome = Outcome::Ignored("no approved attachment");
            for attachment in item.approved_attachments() {
                outcome = deliver_outbound_attachment(
                    deps.media.as_ref(),
                    &deps.connect_upload,
                    &deps.whatsapp,
                    &session,
                    &item.id,
                    attachment,
                )
                .await;
                if outcome != Outcome::Done {
                    break;
                }
            }
            outcome
        }
        _ => Outcome::Ignored("not a message"),
    };
    match &outcome {
        Outcome::Done => {
            if let Err(e) = deps.dedupe.mark_done(&key, deps.behaviour.dedupe_ttl).await {
                tracing::warn!(item_id = %item.id, error = %e, "could not record delivery");
            }
            latency("outbound", queued_at);
            tracing::info!(item_id = %item.id, contact_id = %item.contact_id, "delivered to customer");
        }
        Outcome::Retry { reason, .. } | Outcome::Reject { reason } => {
            tracing::warn!(item_id = %item.id, contact_id = %item.contact_id, %reason, "delivery to customer failed");
        }
        _ => {}
    }
    outcome
}

impl Conversation {
    fn reply(&self, reply: Reply, outcome: Outcome, started: Instant, kind: &'static str) {
        counter!(kind, "outcome" => outcome.label()).increment(1);
        METRICS.handled(outcome.label(), started.elapsed());
        let _ = reply.send(outcome);
    }

    fn set_session(&mut self, session: Option<Session>) {
        match (self.session.is_some(), session.is_some()) {
            (false, true) => gauge!(m::SESSIONS_ACTIVE).increment(1.0),
            (true, false) => gauge!(m::SESSIONS_ACTIVE).decrement(1.0),
            _ => {}
        }
        self.session = session;
    }
}

impl Handler<Work> for Conversation {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, work: Work, _: &mut Self::Context) -> Self::Result {
        METRICS.dequeued();
        self.last_work = Instant::now();
        let started = Instant::now();
        let deps = self.deps.clone();
        match work {
            Work::Inbound {
                message,
                queued_at,
                reply,
            } => {
                if let Some((wamid, until)) = &self.blocked {
                    if *wamid != message.wamid && Instant::now() < *until {
                        let wait = until.saturating_duration_since(Instant::now());
                        let outcome = Outcome::retry(
                            "an earlier message of this customer is being retried",
                            wait + Duration::from_secs(1),
                        );
                        self.reply(reply, outcome, started, m::INBOUND_MESSAGES);
                        return AtomicResponse::new(Box::pin(actix::fut::ready(())));
                    }
                    self.blocked = None;
                }
                let wamid = message.wamid.clone();
                let fut = deliver_inbound(deps, self.session.clone(), *message, queued_at);
                AtomicResponse::new(Box::pin(fut.into_actor(self).map(
                    move |(outcome, session), act, _| {
                        if let Outcome::Retry { after, .. } = &outcome {
                            act.blocked =
                                Some((wamid, Instant::now() + *after + Duration::from_secs(5)));
                        }
                        act.set_session(session);
                        act.reply(reply, outcome, started, m::INBOUND_MESSAGES);
                    },
                )))
            }
            Work::Outbound {
                item,
                session,
                queued_at,
                reply,
            } => {
                let fut = deliver_outbound(deps, *item, *session, queued_at);
                AtomicResponse::new(Box::pin(fut.into_actor(self).map(
                    move |outcome, act, _| {
                        act.reply(reply, outcome, started, m::OUTBOUND_ITEMS);
                    },
                )))
            }
            Work::SessionEnded { contact_id, reply } => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.contact_id == contact_id)
                {
                    self.set_session(None);
                }
                self.reply(reply, Outcome::Done, started, m::OUTBOUND_ITEMS);
                AtomicResponse::new(Box::pin(actix::fut::ready(())))
            }
        }
    }
}
