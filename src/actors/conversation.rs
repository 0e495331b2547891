//! Conversation: one actor per customer, created on demand and stopped when idle. It is
//! the unit of ordering: one step in flight, so a customer's messages reach the agent in
//! the order they were routed here, and the agent's replies reach the customer in the
//! order Connect streamed them.
//!
//! A step that fails is retried in place under the retry policy (`delivery::retrying`):
//! its queue message stays received (the intake extends its visibility) and the
//! customer's later work waits behind it. Work that does go back to the queue (shutdown,
//! an outage held too long) is reported to the customer's [`Gate`], which holds back the
//! later work of that direction until it returns.
//!
//! It caches the customer's chat session, so a message to an existing chat costs one
//! Connect call and no database read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use metrics::{counter, gauge, histogram};

mod burst;
mod interactive;
mod media;
pub mod receipts;
mod transcript;
mod typing;

use super::connect_upload::{ConnectUpload, Deliver};
use super::supervisor::{ConversationIdle, Supervisor};
use super::whatsapp_send::{Acknowledge, SendWhatsApp, WhatsAppSend};
use super::{Outcome, Reply, Work};
use crate::config::{number_label, Behaviour};
use crate::delivery::gate::{Direction, Gate};
use crate::delivery::retrying::{retrying, RetryContext};
use crate::delivery::Arrival;
use crate::domain::interactive::looks_like_a_menu_number;
use crate::domain::{
    dedupe_key_chat_item, dedupe_key_inbound, reactions, split_text, text_message, ChatItem,
    ContentType, Customer, CustomerMessage, ItemType, Media, MediaKind, MessageContent,
    ParticipantRole, Piece, CONNECT_MESSAGE_MAX_CHARS,
};
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{DedupeStore, PortError, Session, SessionStore};
use crate::supervision::{unavailable, Slot};
pub use burst::BurstPolicy;
use burst::{deliver_burst, is_plain_text, Buffered, Burst};
pub use media::MediaDeps;
use media::{deliver_inbound_media, deliver_outbound_attachment, InboundFile};
pub use transcript::Transcription;

pub const METRICS: ActorMetrics = ActorMetrics::new("conversation");

/// What every conversation shares.
#[derive(Clone)]
pub struct ConversationDeps {
    pub dedupe: Arc<dyn DedupeStore>,
    pub connect_upload: Slot<ConnectUpload>,
    pub whatsapp: Slot<WhatsAppSend>,
    pub supervisor: Addr<Supervisor>,
    pub behaviour: Arc<Behaviour>,
    pub lifecycle: Arc<Lifecycle>,
    /// None when no media bucket is configured: files then reach the agent as a notice.
    pub media: Option<MediaDeps>,
    pub sessions: Arc<dyn SessionStore>,
    /// Burst aggregation, when it happens here (without the FIFO stage; with it, the
    /// regroup stage holds the texts and passes a burst on as one piece of work).
    pub aggregation: Option<BurstPolicy>,
    /// Every remote step gets one attempt (see [`RetryContext::single_attempt`]): for
    /// telling which text of a refused burst is the bad one.
    pub single_attempt: bool,
}

impl ConversationDeps {
    /// The retry context of one piece of work.
    pub fn retry_context(&self, arrival: &Arrival) -> RetryContext {
        RetryContext {
            policy: Arc::new(self.behaviour.retry.clone()),
            lifecycle: self.lifecycle.clone(),
            probe: None,
            receive_count: arrival.receive_count,
            single_attempt: self.single_attempt,
        }
    }

    /// Sends one piece of the customer's message (or a notice) to the chat, once.
    pub async fn deliver(&self, request: Deliver) -> Result<Session, PortError> {
        let upload = self.connect_upload.get()?;
        upload
            .send(request)
            .await
            .map_err(|e| unavailable("connect_upload", e))?
    }

    /// Sends one WhatsApp message, once; answers EUM's message id.
    pub async fn send_whatsapp(&self, request: SendWhatsApp) -> Result<String, PortError> {
        let sender = self.whatsapp.get()?;
        sender
            .send(request)
            .await
            .map_err(|e| unavailable("whatsapp_send", e))?
    }

    /// Fire-and-forget acknowledgement; lost if the sender is being restarted.
    pub fn acknowledge(&self, ack: Acknowledge) {
        if let Ok(sender) = self.whatsapp.get() {
            sender.do_send(ack);
        }
    }
}

pub struct Conversation {
    customer_id: String,
    deps: ConversationDeps,
    session: Option<Session>,
    gate: Arc<Gate>,
    last_work: Instant,
    /// Texts waiting to go to the agent as one message (burst aggregation).
    burst: Option<Burst>,
    /// When the store last said no agent had joined the cached chat (contact id): asked
    /// again only after [`AGENT_RECHECK`], so texts in a bot's chat cost no lookup each.
    agent_checked: Option<(String, Instant)>,
    typing: typing::Typing,
    /// Started on the first status (receipts beside the customer's messages).
    statuses: Option<receipts::StatusLane>,
}

impl Conversation {
    pub fn new(customer_id: String, deps: ConversationDeps, gate: Arc<Gate>) -> Self {
        Self {
            customer_id,
            deps,
            session: None,
            gate,
            last_work: Instant::now(),
            burst: None,
            agent_checked: None,
            typing: typing::Typing::default(),
            statuses: None,
        }
    }
}

impl Actor for Conversation {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The gate bounds the mailbox; actix's own bound only needs to stay out of the way.
        ctx.set_mailbox_capacity(self.deps.behaviour.mailbox_capacity + 1);
        gauge!(m::CONVERSATIONS_ACTIVE).increment(1.0);
        let idle = self.deps.behaviour.conversation_idle;
        ctx.run_interval(idle / 4 + Duration::from_millis(10), move |act, ctx| {
            if act.last_work.elapsed() >= idle && act.gate.pending() == 0 && act.burst.is_none() {
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

fn latency(direction: &'static str, arrival: &Arrival) {
    if let Some(Ok(took)) = arrival.queued_at.map(|t| t.elapsed()) {
        histogram!(m::E2E_LATENCY, "direction" => direction).record(took.as_secs_f64());
    }
}

/// The agent-facing text of a media message when files cannot be transferred.
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
            if media.kind == MediaKind::Sticker && !behaviour.forward_stickers =>
        {
            Some("sticker")
        }
        _ => None,
    }
}

/// Whether `key` was already delivered (a redelivery), retried in place on failure. A
/// customer message received for the first time is checked without a remote call when
/// this process never handled it (`delivery::dedupe`); chat items always ask the store
/// on a miss, SendWhatsAppMessage having no idempotency token.
async fn already_done(
    deps: &ConversationDeps,
    arrival: &Arrival,
    key: &str,
    id: &str,
    direction: Direction,
) -> Result<bool, Outcome> {
    let ctx = deps.retry_context(arrival);
    let first_receipt = !arrival.maybe_seen() && direction == Direction::Inbound;
    retrying(&ctx, "dedupe check", id, || async {
        if first_receipt {
            deps.dedupe.is_done_on_first_receipt(key).await
        } else {
            deps.dedupe.is_done(key).await
        }
    })
    .await
}

/// Delivers one customer message to the agent. Returns the outcome and the session now in
/// use (or the one passed in).
async fn deliver_inbound(
    deps: ConversationDeps,
    session: Option<Session>,
    msg: CustomerMessage,
    arrival: Arrival,
) -> (Outcome, Option<Session>) {
    let key = dedupe_key_inbound(&msg.wamid);
    match already_done(&deps, &arrival, &key, &msg.wamid, Direction::Inbound).await {
        Ok(true) => {
            counter!(m::DEDUPE_HITS, "direction" => "inbound").increment(1);
            tracing::info!(wamid = %msg.wamid, "already delivered; skipping redelivery");
            return (Outcome::Duplicate, session);
        }
        Ok(false) => {}
        Err(outcome) => return (outcome, session),
    }
    let behaviour = &deps.behaviour;
    let ack = |reaction: Option<&'static str>, mark_read: bool| Acknowledge {
        business_number_id: msg.business_number_id.clone(),
        customer_id: msg.customer_id.clone(),
        wamid: msg.wamid.clone(),
        mark_read,
        reaction,
    };
    if let Some(what) = ignored_by_config(&msg, behaviour) {
        if behaviour.acknowledge {
            deps.acknowledge(ack(None, true));
        }
        tracing::debug!(wamid = %msg.wamid, what, "not forwarded (configuration)");
        return (Outcome::Ignored(what), session);
    }
    if behaviour.acknowledge && arrival.receive_count <= 1 {
        deps.acknowledge(ack(Some(reactions::SEEN), true));
    }
    let customer = Customer {
        customer_id: msg.customer_id.clone(),
        name: msg
            .customer_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "WhatsApp customer".into()),
        business_number_id: msg.business_number_id.clone(),
    };
    if let (MessageContent::Media(media), Some(media_deps)) = (&msg.content, &deps.media) {
        let file = InboundFile {
            customer,
            wamid: &msg.wamid,
            business_number_id: &msg.business_number_id,
            media,
            caption: msg.agent_text(),
        };
        let result =
            deliver_inbound_media(&deps, media_deps, &arrival, file, session.clone()).await;
        if let Some(notice) = &result.customer_notice {
            let send = deps
                .send_whatsapp(SendWhatsApp {
                    business_number_id: msg.business_number_id.clone(),
                    body: text_message(&msg.customer_id, notice, Some(&msg.wamid)),
                })
                .await;
            if let Err(e) = send {
                tracing::warn!(wamid = %msg.wamid, error = %e, "could not tell the customer why the file was not delivered");
            }
        }
        if let Some(delivered) = result.delivered {
            finish(&deps, &key, &msg, &arrival).await;
            if behaviour.acknowledge {
                let emoji = if delivered {
                    reactions::FILE_OK
                } else {
                    reactions::FAILED
                };
                deps.acknowledge(ack(Some(emoji), false));
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
    let pieces: Vec<Piece> = match interactive::choice_piece(&deps, &arrival, &msg).await {
        Some(choice) => vec![choice],
        None => split_text(&text, CONNECT_MESSAGE_MAX_CHARS)
            .into_iter()
            .map(Piece::Text)
            .collect(),
    };
    if pieces.is_empty() {
        return (Outcome::Ignored("empty"), session);
    }
    let ctx = deps.retry_context(&arrival);
    let delivered = retrying(&ctx, "deliver to agent", &msg.wamid, || {
        deps.deliver(Deliver {
            customer: customer.clone(),
            session: session.clone(),
            pieces: pieces.clone(),
            source_id: msg.wamid.clone(),
        })
    })
    .await;
    match delivered {
        Ok(new_session) => {
            finish(&deps, &key, &msg, &arrival).await;
            if behaviour.acknowledge {
                deps.acknowledge(ack(Some(reactions::DONE), false));
            }
            tracing::info!(wamid = %msg.wamid, contact_id = %new_session.contact_id, "delivered to agent");
            (Outcome::Done, Some(new_session))
        }
        // A step that failed for good may mean a dead chat: look it up afresh next time.
        Err(outcome) => (outcome, None),
    }
}

/// How long "no agent in this chat" from the store is trusted. An agent's joining is
/// usually learnt at once (its event reaches this conversation); the store is asked again
/// for a join another replica saw. Until then texts keep being joined: nothing worse.
const AGENT_RECHECK: Duration = Duration::from_secs(30);

/// Whether a human agent is in the customer's chat, from the cached session or, when that
/// says no, from the store (another replica may have seen the agent join). A lookup that
/// fails counts as "no agent": the texts then wait a little, nothing worse.
async fn agent_present(
    deps: ConversationDeps,
    cached: Option<Session>,
    business_number_id: String,
    customer_id: String,
) -> (bool, Option<Session>) {
    if cached.as_ref().is_some_and(|s| s.agent_joined) {
        return (true, cached);
    }
    let stored = match &cached {
        Some(s) => deps.sessions.find_by_contact(&s.contact_id).await,
        None => {
            deps.sessions
                .find_by_customer(&business_number_id, &customer_id)
                .await
        }
    };
    match stored {
        Ok(Some(s)) if !s.ended => (s.agent_joined, Some(s)),
        Ok(_) => (false, None),
        Err(e) => {
            tracing::debug!(error = %e, "could not look up whether an agent joined");
            (false, cached)
        }
    }
}

/// Records a delivered customer message (dedupe and latency). Awaited before the next
/// step of this customer, so a redelivered copy right behind it finds the record; the
/// durable record is written in a batch after the delivery, and stored before the queue
/// message is deleted.
async fn finish(deps: &ConversationDeps, key: &str, msg: &CustomerMessage, arrival: &Arrival) {
    latency("inbound", arrival);
    if let Err(e) = deps.dedupe.mark_done(key, deps.behaviour.dedupe_ttl).await {
        // Delivered all the same; a redelivery would repeat the same ClientTokens.
        tracing::warn!(wamid = %msg.wamid, error = %e, "could not record delivery");
    }
}

/// Delivers one agent chat item to the customer. The session travels with the item, so
/// the chat ending while it is retried does not lose it.
async fn deliver_outbound(
    deps: ConversationDeps,
    item: ChatItem,
    session: Session,
    arrival: Arrival,
) -> Outcome {
    let key = dedupe_key_chat_item(&item.id);
    match already_done(&deps, &arrival, &key, &item.id, Direction::Outbound).await {
        Ok(true) => {
            counter!(m::DEDUPE_HITS, "direction" => "outbound").increment(1);
            tracing::info!(item_id = %item.id, contact_id = %item.contact_id, "already sent; skipping redelivery");
            return Outcome::Duplicate;
        }
        Ok(false) => {}
        Err(outcome) => return outcome,
    }
    let outcome = match item.item_type {
        ItemType::Message => {
            let Some(text) = item.content.as_deref().filter(|t| !t.trim().is_empty()) else {
                return Outcome::Ignored("empty");
            };
            let body = interactive::agent_body(&item, &session.customer_id, text);
            let ctx = deps.retry_context(&arrival);
            let sent =
                receipts::send_agent_message(&deps, &ctx, &session, &item.id, 0, body.body.clone())
                    .await;
            match sent {
                Ok(_) => {
                    interactive::sent(&deps, &session, body).await;
                    Outcome::Done
                }
                Err(outcome) => outcome,
            }
        }
        ItemType::Attachment => {
            let mut outcome = Outcome::Ignored("no approved attachment");
            for (part, attachment) in item.approved_attachments().enumerate() {
                outcome = deliver_outbound_attachment(
                    &deps, &arrival, &session, &item.id, part, attachment,
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
            latency("outbound", &arrival);
            tracing::info!(item_id = %item.id, contact_id = %item.contact_id, "delivered to customer");
        }
        Outcome::Retry { reason, .. } | Outcome::Reject { reason } => {
            tracing::warn!(item_id = %item.id, contact_id = %item.contact_id, %reason, "delivery to customer failed");
        }
        _ => {}
    }
    outcome
}

/// Sends one WhatsApp message to the customer under the retry policy.
///
/// SendWhatsAppMessage has no idempotency token: when an attempt fails in a way that may
/// have reached WhatsApp (a lost answer, a timeout, a 5xx), sending again may give the
/// customer a second copy, but not sending loses the message. When the message is part
/// `part` of an agent item, whose arrival at WhatsApp is recorded from the send's answer
/// and from WhatsApp's `sent` / `delivered` statuses ([`receipts::reached_whatsapp`]),
/// the retry first waits up to [`STATUS_GRACE`] for such a record and sends nothing if
/// one comes (`waconnect_whatsapp_resends_avoided_total`). Otherwise it sends again and
/// counts it (`waconnect_whatsapp_suspected_duplicates_total`); the SDK's own retries are
/// off for this client so no hidden layer multiplies the copies.
pub async fn send_to_customer(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    id: &str,
    part: Option<usize>,
    business_number_id: &str,
    body: &serde_json::Value,
) -> Result<String, Outcome> {
    // A redelivery may follow a crash between the send and its dedupe record: by now
    // (a visibility timeout later) the first copy's status has long been recorded.
    if ctx.receive_count > 1 {
        if let Some(part) = part {
            if let Ok(Some(wamid)) =
                receipts::reached_whatsapp(deps.dedupe.as_ref(), id, part).await
            {
                counter!(m::RESENDS_AVOIDED).increment(1);
                tracing::info!(%id, %wamid, "a redelivered agent message had reached WhatsApp: not sending it again");
                return Ok(wamid);
            }
        }
    }
    let ambiguous = std::cell::Cell::new(false);
    retrying(ctx, "send to customer", id, || {
        let ambiguous = &ambiguous;
        async move {
            if ambiguous.get() {
                if let Some(part) = part {
                    if let Some(wamid) = sent_meanwhile(deps, id, part).await {
                        counter!(m::RESENDS_AVOIDED).increment(1);
                        tracing::info!(%id, %wamid, "the lost answer's message reached WhatsApp: not sending it again");
                        return Ok(wamid);
                    }
                }
                counter!(m::SUSPECTED_DUPLICATES).increment(1);
                tracing::warn!(%id, "sending again after an answer was lost: the customer may get it twice");
            }
            let result = deps
                .send_whatsapp(SendWhatsApp {
                    business_number_id: business_number_id.to_string(),
                    body: body.clone(),
                })
                .await;
            ambiguous.set(result.as_ref().is_err_and(|e| e.may_have_taken_effect()));
            result
        }
    })
    .await
}

/// How long a resend after a lost answer waits for WhatsApp's status of the first copy.
/// Statuses come within a second or two; a resend held this long costs that reply as
/// much latency, and only after an answer was lost.
pub const STATUS_GRACE: Duration = Duration::from_secs(3);

/// The WhatsApp message id of part `part` of agent item `id` if an earlier attempt is
/// known to have reached WhatsApp, waiting up to [`STATUS_GRACE`] for its status.
async fn sent_meanwhile(deps: &ConversationDeps, id: &str, part: usize) -> Option<String> {
    let deadline = Instant::now() + STATUS_GRACE;
    loop {
        match receipts::reached_whatsapp(deps.dedupe.as_ref(), id, part).await {
            Ok(Some(wamid)) => return Some(wamid),
            Ok(None) => {}
            // Unknown: sending again (and counting it) is the safe side.
            Err(e) => {
                tracing::debug!(%id, error = %e, "cannot tell whether the message reached WhatsApp");
                return None;
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
        // A chat read from or written to the store just now: its agent_joined is fresh.
        let fresh = session.as_ref().filter(|new| {
            self.session
                .as_ref()
                .is_none_or(|old| old.contact_id != new.contact_id)
        });
        if let Some(new) = fresh {
            self.agent_checked = Some((new.contact_id.clone(), Instant::now()));
        }
        self.session = session;
    }

    /// Reports a step's outcome; work handed back to the queue holds back later work.
    fn settle(&mut self, work_id: &str, direction: Direction, outcome: &Outcome) {
        if let Outcome::Retry { after, .. } = outcome {
            self.gate.hand_back(direction, work_id, *after);
        }
    }
}

impl Conversation {
    /// Whether this text may wait in a burst here.
    fn may_aggregate(&self, message: &CustomerMessage) -> bool {
        self.deps.aggregation.is_some()
            && is_plain_text(message)
            && !matches!(&message.content, MessageContent::Text { body } if looks_like_a_menu_number(body))
            && ignored_by_config(message, &self.deps.behaviour).is_none()
    }

    /// Adds a text to the waiting burst (starting one) and (re)sets the timer that sends it.
    fn buffer(&mut self, ctx: &mut Context<Self>, buffered: Buffered) {
        let Some(policy) = self.deps.aggregation else {
            return;
        };
        let message = &buffered.message;
        if self.deps.behaviour.acknowledge && buffered.arrival.receive_count <= 1 {
            self.deps.acknowledge(Acknowledge {
                business_number_id: message.business_number_id.clone(),
                customer_id: message.customer_id.clone(),
                wamid: message.wamid.clone(),
                mark_read: true,
                reaction: Some(reactions::SEEN),
            });
        }
        let chars = burst::agent_text(message).chars().count();
        let burst = self.burst.get_or_insert_with(Burst::new);
        burst.push(chars, buffered);
        if let Some(timer) = burst.timer.take() {
            ctx.cancel_future(timer);
        }
        let delay = policy
            .due(burst.first, Instant::now())
            .saturating_duration_since(Instant::now());
        burst.timer = Some(ctx.run_later(delay, |act, ctx| {
            let flush = act.flush_burst(ctx);
            ctx.wait(flush);
        }));
    }

    /// Sends the waiting burst (if any) and answers its texts.
    fn flush_burst(&mut self, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ()> {
        let Some(mut burst) = self.burst.take() else {
            return Box::pin(actix::fut::ready(()));
        };
        if let Some(timer) = burst.timer.take() {
            ctx.cancel_future(timer);
        }
        let (texts, answers): (Vec<_>, Vec<_>) = burst
            .texts
            .into_iter()
            .map(|b| {
                let id = b.message.wamid.clone();
                ((b.message, b.arrival), (b.reply, id, b.started))
            })
            .unzip();
        let session = texts
            .first()
            .and_then(|(m, _)| self.session_with(&m.business_number_id));
        let deps = self.deps.clone();
        let fut = async move { deliver_burst(&deps, session, texts).await };
        Box::pin(
            fut.into_actor(self)
                .map(move |(outcomes, session), act, _| {
                    act.set_session(session);
                    for ((reply, id, started), outcome) in answers.into_iter().zip(outcomes) {
                        act.settle(&id, Direction::Inbound, &outcome);
                        act.reply(reply, outcome, started, m::INBOUND_MESSAGES);
                    }
                }),
        )
    }

    /// Delivers one customer message the usual way.
    fn deliver_one(
        &mut self,
        message: CustomerMessage,
        arrival: Arrival,
        reply: Reply,
        started: Instant,
    ) -> ResponseActFuture<Self, ()> {
        let id = message.wamid.clone();
        let session = self.session_with(&message.business_number_id);
        let fut = deliver_inbound(self.deps.clone(), session, message, arrival);
        Box::pin(fut.into_actor(self).map(move |(outcome, session), act, _| {
            act.settle(&id, Direction::Inbound, &outcome);
            act.set_session(session);
            act.reply(reply, outcome, started, m::INBOUND_MESSAGES);
        }))
    }

    /// A text that may wait: joins the burst, or starts one if no agent is in the chat,
    /// or goes at once if one is.
    fn text(
        &mut self,
        ctx: &mut Context<Self>,
        message: CustomerMessage,
        arrival: Arrival,
        reply: Reply,
        started: Instant,
    ) -> ResponseActFuture<Self, ()> {
        let buffered = Buffered {
            message,
            arrival,
            reply,
            started,
        };
        if let Some(burst) = &self.burst {
            // A burst is the customer's texts to one business number (one chat).
            let same_chat = burst.texts.first().is_none_or(|b| {
                b.message.business_number_id == buffered.message.business_number_id
            });
            if same_chat && burst.fits(&burst::agent_text(&buffered.message)) {
                self.buffer(ctx, buffered);
                return Box::pin(actix::fut::ready(()));
            }
            // Full: the waiting texts go first, this one starts the next burst.
            let flush = self.flush_burst(ctx);
            return Box::pin(flush.map(move |_, act, ctx| act.buffer(ctx, buffered)));
        }
        let cached = self.session_with(&buffered.message.business_number_id);
        let checked_lately = cached.as_ref().is_some_and(|s| {
            !s.agent_joined
                && self.agent_checked.as_ref().is_some_and(|(contact, at)| {
                    *contact == s.contact_id && at.elapsed() < AGENT_RECHECK
                })
        });
        if checked_lately {
            self.buffer(ctx, buffered);
            return Box::pin(actix::fut::ready(()));
        }
        let present = agent_present(
            self.deps.clone(),
            cached,
            buffered.message.business_number_id.clone(),
            self.customer_id.clone(),
        );
        Box::pin(
            present
                .into_actor(self)
                .then(move |(present, session), act, ctx| {
                    if let Some(s) = &session {
                        act.agent_checked = Some((s.contact_id.clone(), Instant::now()));
                    }
                    act.set_session(session);
                    if present {
                        let Buffered {
                            message,
                            arrival,
                            reply,
                            started,
                        } = buffered;
                        act.deliver_one(message, arrival, reply, started)
                    } else {
                        act.buffer(ctx, buffered);
                        Box::pin(actix::fut::ready(()))
                    }
                }),
        )
    }
}

impl Handler<Work> for Conversation {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, work: Work, ctx: &mut Self::Context) -> Self::Result {
        METRICS.dequeued();
        self.last_work = Instant::now();
        let started = Instant::now();
        let (direction, id) = (work.direction(), work.id().to_string());
        if let Err(refusal) = self.gate.check(direction, &id) {
            let kind = match direction {
                Direction::Inbound => m::INBOUND_MESSAGES,
                Direction::Outbound => m::OUTBOUND_ITEMS,
                Direction::Status => m::STATUSES_HANDLED,
            };
            tracing::debug!(%id, reason = refusal.reason, "holding back work behind handed-back work");
            self.reply(
                work.into_reply(),
                Outcome::retry(refusal.reason, refusal.after),
                started,
                kind,
            );
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let deps = self.deps.clone();
        let step: ResponseActFuture<Self, ()> = match work {
            Work::Inbound {
                message,
                arrival,
                reply,
            } => {
                self.typing.saw(&message.business_number_id, &message.wamid);
                count_number(&message.business_number_id, direction);
                if self.may_aggregate(&message) {
                    self.text(ctx, *message, arrival, reply, started)
                } else {
                    // Anything but a plain text follows the texts waiting before it.
                    let flush = self.flush_burst(ctx);
                    Box::pin(
                        flush.then(move |_, act, _| {
                            act.deliver_one(*message, arrival, reply, started)
                        }),
                    )
                }
            }
            Work::InboundBurst {
                messages,
                arrival,
                reply,
            } => {
                let flush = self.flush_burst(ctx);
                for m in &messages {
                    self.typing.saw(&m.business_number_id, &m.wamid);
                    count_number(&m.business_number_id, direction);
                }
                if self.deps.behaviour.acknowledge && arrival.receive_count <= 1 {
                    for m in &messages {
                        self.deps.acknowledge(Acknowledge {
                            business_number_id: m.business_number_id.clone(),
                            customer_id: m.customer_id.clone(),
                            wamid: m.wamid.clone(),
                            mark_read: true,
                            reaction: Some(reactions::SEEN),
                        });
                    }
                }
                let texts: Vec<_> = messages.into_iter().map(|m| (m, arrival.clone())).collect();
                Box::pin(flush.then(move |_, act, _| {
                    let session = texts
                        .first()
                        .and_then(|(m, _)| act.session_with(&m.business_number_id));
                    let deps = act.deps.clone();
                    let fut = async move { deliver_burst(&deps, session, texts).await };
                    fut.into_actor(act).map(move |(outcomes, session), act, _| {
                        act.set_session(session);
                        let outcome = worst(outcomes);
                        act.settle(&id, direction, &outcome);
                        act.reply(reply, outcome, started, m::INBOUND_MESSAGES);
                    })
                }))
            }
            Work::Outbound {
                item,
                session,
                arrival,
                reply,
            } => {
                if is_agent_typing(&item) {
                    // An ended chat's session is still found for its last messages; its
                    // agent no longer types to this customer.
                    if deps.behaviour.typing_indicator && !session.ended {
                        typing::agent_typing(&deps, &mut self.typing, &session);
                    }
                    self.reply(reply, Outcome::Done, started, m::OUTBOUND_ITEMS);
                    return AtomicResponse::new(Box::pin(actix::fut::ready(())));
                }
                count_number(&session.business_number_id, direction);
                let fut = deliver_outbound(deps, *item, *session, arrival);
                Box::pin(fut.into_actor(self).map(move |outcome, act, _| {
                    act.settle(&id, direction, &outcome);
                    act.reply(reply, outcome, started, m::OUTBOUND_ITEMS);
                }))
            }
            Work::SessionEnded {
                contact_id, reply, ..
            } => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.contact_id == contact_id)
                {
                    self.set_session(None);
                }
                self.reply(reply, Outcome::Done, started, m::OUTBOUND_ITEMS);
                Box::pin(actix::fut::ready(()))
            }
            Work::AgentJoined {
                contact_id, reply, ..
            } => {
                if let Some(s) = self.session.as_mut().filter(|s| s.contact_id == contact_id) {
                    s.agent_joined = true;
                }
                self.reply(reply, Outcome::Done, started, m::OUTBOUND_ITEMS);
                // From now on texts go through at once; the waiting ones go now.
                self.flush_burst(ctx)
            }
            Work::Status {
                status,
                arrival,
                reply,
            } => {
                // Handled in the customer's status lane, beside their messages; never
                // handed back to the gate (a receipt that must wait goes back to the queue
                // on its own, holding nothing).
                let job = Box::new(receipts::StatusJob {
                    status: *status,
                    arrival,
                    session: self.session.clone(),
                    reply,
                    started,
                });
                let lane = self
                    .statuses
                    .get_or_insert_with(|| receipts::StatusLane::start(deps));
                if let Err(job) = lane.push(job) {
                    self.statuses = None;
                    let outcome = Outcome::retry("status lane gone", Duration::from_secs(1));
                    self.reply(job.reply, outcome, started, m::STATUSES_HANDLED);
                }
                Box::pin(actix::fut::ready(()))
            }
        };
        AtomicResponse::new(step)
    }
}

/// One outcome for several pieces of work that share a queue message: the one that
/// decides what happens to the message (retry wins, then reject).
fn worst(outcomes: Vec<Outcome>) -> Outcome {
    let mut result = Outcome::Done;
    for outcome in outcomes {
        match (&result, &outcome) {
            (Outcome::Retry { .. }, _) => {}
            (_, Outcome::Retry { .. })
            | (Outcome::Done | Outcome::Duplicate, Outcome::Reject { .. }) => result = outcome,
            _ => {}
        }
    }
    result
}

/// An agent's typing event (the only event routed to a conversation besides chat end).
fn is_agent_typing(item: &ChatItem) -> bool {
    item.item_type == ItemType::Event
        && item.content_kind() == ContentType::Typing
        && item.participant_role == ParticipantRole::Agent
}

/// Traffic per business number (configured ones by id, others as `default`).
fn count_number(business_number_id: &str, direction: Direction) {
    counter!(m::BUSINESS_NUMBER_MESSAGES, "number" => number_label(Some(business_number_id)),
        "direction" => direction.as_str())
    .increment(1);
}

impl Conversation {
    /// The cached session if it is the customer's chat with `business_number_id`.
    fn session_with(&self, business_number_id: &str) -> Option<Session> {
        self.session
            .clone()
            .filter(|s| s.business_number_id == business_number_id)
    }
}
