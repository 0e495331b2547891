//! What the agent learns about the messages it sent: WhatsApp's `delivered` and `read`
//! statuses become Connect `message.delivered` / `message.read` events on the chat item,
//! and a `failed` status (or a send EUM refuses outright) becomes a notice in the chat.
//!
//! Every agent message goes out with `biz_opaque_callback_data` naming its chat and item
//! ([`AgentMessageRef`]), which Meta echoes in each status; the WhatsApp message id is
//! also recorded (`wamsg#<wamid>`, for `receipt_ttl_secs`) for a status without it. That
//! the item reached WhatsApp is recorded too (`wa-sent#<item>`, from the send's answer and
//! from `sent`/`delivered` statuses): [`reached_whatsapp`].
//!
//! Receipts are best effort and never fail or hold the customer's work: a receipt for a
//! chat that ended is dropped (debug log), one Connect refuses for good is dropped
//! (warning), and statuses have their own order in the conversation
//! ([`Direction::Status`]) and their own lane ([`StatusLane`]): handled one at a time
//! per customer, beside the customer's messages rather than between them.
//!
//! [`Direction::Status`]: crate::delivery::gate::Direction::Status

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use metrics::counter;
use serde_json::json;
use tokio::sync::mpsc;

use super::{send_to_customer, ConversationDeps, METRICS};
use crate::actors::connect_upload::{ChatCall, ChatCallKind, ChatCallOutcome};
use crate::actors::{Outcome, Reply};
use crate::config::number_label;
use crate::delivery::retrying::{retrying, RetryContext};
use crate::delivery::Arrival;
use crate::domain::receipt::{
    message_key, receipt_content, sent_key, AgentMessageRef, ReceiptKind, ACKNOWLEDGEMENT_CALLBACK,
};
use crate::domain::send_failure::SendFailure;
use crate::domain::{client_token, DeliveryStatus};
use crate::metrics as m;
use crate::ports::{DedupeStore, PortError, PortResult, Session};
use crate::supervision::unavailable;

/// How long "this agent item reached WhatsApp" is remembered: longer than any redelivery
/// of the item can come (the retry policy gives up within hours).
pub const SENT_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// The latest [`RECENT_KEPT`] keys put, with their values, oldest forgotten first.
struct Recent<V> {
    order: VecDeque<String>,
    values: HashMap<String, V>,
}

const RECENT_KEPT: usize = 10_000;

impl<V: Clone> Recent<V> {
    fn new() -> Mutex<Self> {
        Mutex::new(Self {
            order: VecDeque::new(),
            values: HashMap::new(),
        })
    }

    fn put(this: &Mutex<Self>, key: &str, value: V) {
        let mut r = this.lock().unwrap_or_else(|e| e.into_inner());
        if r.values.insert(key.to_string(), value).is_none() {
            r.order.push_back(key.to_string());
            if r.order.len() > RECENT_KEPT {
                if let Some(old) = r.order.pop_front() {
                    r.values.remove(&old);
                }
            }
        }
    }

    fn get(this: &Mutex<Self>, key: &str) -> Option<V> {
        let r = this.lock().unwrap_or_else(|e| e.into_inner());
        r.values.get(key).cloned()
    }
}

/// `wa-sent` records this process wrote: a `sent` / `delivered` status of one of them
/// need not write it again (the status write is for answers that were lost). Only saves
/// writes: a record forgotten here is written again, the same.
static RECORDED: LazyLock<Mutex<Recent<()>>> = LazyLock::new(Recent::new);

/// WhatsApp message ids of agent messages whose `sent` / `delivered` status this process
/// received, by `wa-sent` key: read by a resend waiting for the first copy's status while
/// its conversation (where statuses are otherwise handled) is busy with that very resend.
static SEEN_SENT: LazyLock<Mutex<Recent<String>>> = LazyLock::new(Recent::new);

fn note_recorded(key: &str) {
    Recent::put(&RECORDED, key, ());
}

fn was_recorded(key: &str) -> bool {
    Recent::get(&RECORDED, key).is_some()
}

/// Notes a status as it is received (before it reaches the customer's conversation):
/// a `sent` or `delivered` status of an agent message means that message reached
/// WhatsApp.
pub fn note_status(status: &DeliveryStatus) {
    let kind = ReceiptKind::of(&status.status);
    if !matches!(kind, ReceiptKind::Sent | ReceiptKind::Delivered) {
        return;
    }
    let Some(reference) = status
        .callback_data
        .as_deref()
        .and_then(AgentMessageRef::parse)
    else {
        return;
    };
    let key = sent_key(&reference.item_id, reference.part);
    Recent::put(&SEEN_SENT, &key, status.message_id.clone());
}

/// Whether an earlier attempt of part `part` (0: the first or only WhatsApp message) of
/// agent chat item `item_id` reached WhatsApp: EUM accepted it, or WhatsApp reported it
/// `sent` or `delivered` (to this process, or recorded by any). Answers the WhatsApp
/// message id. For deciding not to send again after an answer was lost; `None` means no
/// record (it may still have reached WhatsApp if its status has not come yet).
pub async fn reached_whatsapp(
    dedupe: &dyn DedupeStore,
    item_id: &str,
    part: usize,
) -> PortResult<Option<String>> {
    let key = sent_key(item_id, part);
    match Recent::get(&SEEN_SENT, &key) {
        Some(wamid) => Ok(Some(wamid)),
        None => dedupe.get_value(&key).await,
    }
}

/// Sends part `part` of agent item `item_id` to the customer of `session`, tagged for
/// receipts, under the retry policy; records where it went. A send EUM refuses outright
/// is told to the agent and stays a [`Outcome::Reject`].
pub async fn send_agent_message(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    session: &Session,
    item_id: &str,
    part: usize,
    mut body: serde_json::Value,
) -> Result<String, Outcome> {
    let reference = AgentMessageRef {
        contact_id: session.contact_id.clone(),
        item_id: item_id.to_string(),
        part,
    };
    let callback = reference.callback_data();
    if let Some(data) = &callback {
        body["biz_opaque_callback_data"] = json!(data);
    }
    match send_to_customer(
        deps,
        ctx,
        item_id,
        Some(part),
        &session.business_number_id,
        &body,
    )
    .await
    {
        Ok(wamid) => {
            remember(deps, &wamid, callback.as_deref(), &reference).await;
            Ok(wamid)
        }
        Err(Outcome::Reject { reason }) => {
            let failure = SendFailure::refused(&reason);
            count_failure(&failure, Some(&session.business_number_id));
            tracing::warn!(item_id, contact_id = %session.contact_id, %reason,
                "WhatsApp refused the agent's message; telling the agent");
            if deps.behaviour.receipts {
                let token = client_token(&["refused", item_id, &part.to_string()]);
                // The item is dead-lettered either way; a notice that cannot be put in the
                // chat now is not worth holding it.
                let _ = tell_agent(deps, ctx, Some(session), &reference, &failure, token).await;
            }
            Err(Outcome::Reject { reason })
        }
        Err(other) => Err(other),
    }
}

/// Records, after EUM accepted a message: which item it carried (for statuses without
/// callback data) and that the item reached WhatsApp. Failures are only logged: the send
/// happened either way.
async fn remember(
    deps: &ConversationDeps,
    wamid: &str,
    callback: Option<&str>,
    reference: &AgentMessageRef,
) {
    let key = sent_key(&reference.item_id, reference.part);
    let sent = deps.dedupe.put_value(&key, wamid, SENT_RECORD_TTL);
    let link = async {
        match callback.filter(|_| deps.behaviour.receipts) {
            Some(data) => {
                deps.dedupe
                    .put_value(&message_key(wamid), data, deps.behaviour.receipt_ttl_secs)
                    .await
            }
            None => Ok(()),
        }
    };
    let (sent, link) = futures::join!(sent, link);
    if sent.is_ok() {
        note_recorded(&key);
    }
    for e in [sent.err(), link.err()].into_iter().flatten() {
        tracing::warn!(%wamid, item_id = %reference.item_id, error = %e,
            "could not record where an agent message went (its receipts may be missing)");
    }
}

/// Counts a status of one of our acknowledgements as [`handle_status`] would, for the
/// regroup stage, which drops such statuses before they reach a conversation.
pub fn count_acknowledgement_status(status: &DeliveryStatus) {
    let outcome = match ReceiptKind::of(&status.status) {
        ReceiptKind::Other => "dropped",
        _ => "unmatched",
    };
    count(&status.status, outcome);
}

fn count(status: &str, outcome: &'static str) {
    let status = match status {
        "sent" | "delivered" | "read" | "failed" => status.to_string(),
        _ => "other".to_string(),
    };
    counter!(m::RECEIPTS, "status" => status, "outcome" => outcome).increment(1);
}

fn count_failure(failure: &SendFailure, business_number_id: Option<&str>) {
    counter!(m::SEND_FAILURES, "code_class" => failure.code_class(),
        "number" => number_label(business_number_id))
    .increment(1);
}

/// Puts `failure` in the chat as a notice for the agent: a text by the customer
/// participant (the only one waconnect speaks as; the customer never sees their own
/// items), so it is shown to the agent only.
async fn tell_agent(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    session: Option<&Session>,
    reference: &AgentMessageRef,
    failure: &SendFailure,
    token: String,
) -> Result<&'static str, Outcome> {
    let call = || ChatCall {
        contact_id: reference.contact_id.clone(),
        session: session.cloned(),
        kind: ChatCallKind::Message {
            content_type: "text/plain",
            content: failure.agent_notice(),
        },
        client_token: token.clone(),
    };
    match retrying(ctx, "tell the agent", &reference.item_id, || {
        chat_call(deps, call())
    })
    .await
    {
        Ok(ChatCallOutcome::Done) => Ok("told"),
        Ok(ChatCallOutcome::ChatGone) => {
            tracing::debug!(%reference, "chat ended; the failed send is not told");
            Ok("chat_ended")
        }
        Err(Outcome::Reject { reason }) => {
            tracing::warn!(%reference, %reason, "could not tell the agent about a failed send");
            Ok("dropped")
        }
        // Shutting down or an outage held too long: the status comes back later.
        Err(outcome) => Err(outcome),
    }
}

async fn chat_call(deps: &ConversationDeps, call: ChatCall) -> Result<ChatCallOutcome, PortError> {
    let upload = deps.connect_upload.get()?;
    upload
        .send(call)
        .await
        .map_err(|e| unavailable("connect_upload", e))?
}

/// Which agent message a status is about: its callback data, else the recorded link.
async fn find_reference(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    status: &DeliveryStatus,
) -> Result<Option<AgentMessageRef>, Outcome> {
    match status.callback_data.as_deref() {
        Some(ACKNOWLEDGEMENT_CALLBACK) => return Ok(None),
        Some(data) => {
            if let Some(reference) = AgentMessageRef::parse(data) {
                return Ok(Some(reference));
            }
        }
        None => {}
    }
    let key = message_key(&status.message_id);
    let linked = retrying(ctx, "receipt lookup", &status.message_id, || {
        deps.dedupe.get_value(&key)
    })
    .await?;
    Ok(linked.as_deref().and_then(AgentMessageRef::parse))
}

/// One status waiting in a customer's [`StatusLane`].
pub(super) struct StatusJob {
    pub status: DeliveryStatus,
    pub arrival: Arrival,
    /// The conversation's cached session when the status was taken.
    pub session: Option<Session>,
    pub reply: Reply,
    pub started: Instant,
}

/// A customer's statuses, handled in order by a task of their own, so a slow receipt
/// (a Connect call under the retry policy) never holds the customer's messages. The task
/// ends once the conversation (the sender) is gone and the lane is empty.
pub(super) struct StatusLane {
    jobs: mpsc::UnboundedSender<Box<StatusJob>>,
}

impl StatusLane {
    pub fn start(deps: ConversationDeps) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Box<StatusJob>>();
        actix::spawn(async move {
            while let Some(job) = queue.recv().await {
                let job = *job;
                let outcome =
                    handle_status(deps.clone(), job.session, job.status, job.arrival).await;
                counter!(m::STATUSES_HANDLED, "outcome" => outcome.label()).increment(1);
                METRICS.handled(outcome.label(), job.started.elapsed());
                let _ = job.reply.send(outcome);
            }
        });
        Self { jobs }
    }

    /// Queues `job`; hands it back if the lane's task is gone.
    pub fn push(&self, job: Box<StatusJob>) -> Result<(), Box<StatusJob>> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

/// A status of one of our messages: a receipt for the agent, a notice, or nothing.
pub(super) async fn handle_status(
    deps: ConversationDeps,
    cached: Option<Session>,
    status: DeliveryStatus,
    arrival: Arrival,
) -> Outcome {
    let kind = ReceiptKind::of(&status.status);
    if kind == ReceiptKind::Other {
        count(&status.status, "dropped");
        return Outcome::Ignored("status");
    }
    let ctx = deps.retry_context(&arrival);
    let reference = match find_reference(&deps, &ctx, &status).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            // Our reactions, read marks and notices to the customer: not agent messages.
            count(&status.status, "unmatched");
            tracing::debug!(wamid = %status.message_id, status = %status.status,
                "status of a message that carried no agent item");
            return Outcome::Ignored("not an agent message");
        }
        // Never held for a receipt: the status is dropped rather than retried forever.
        Err(Outcome::Reject { reason }) => {
            count(&status.status, "dropped");
            tracing::warn!(wamid = %status.message_id, %reason, "receipt dropped");
            return Outcome::Ignored("receipt dropped");
        }
        Err(outcome) => return outcome,
    };
    let key = sent_key(&reference.item_id, reference.part);
    if matches!(kind, ReceiptKind::Sent | ReceiptKind::Delivered) && !was_recorded(&key) {
        match deps
            .dedupe
            .put_value(&key, &status.message_id, SENT_RECORD_TTL)
            .await
        {
            Ok(()) => note_recorded(&key),
            Err(e) => {
                tracing::warn!(%reference, error = %e, "could not record that an agent message reached WhatsApp")
            }
        }
    }
    let outcome = match kind {
        ReceiptKind::Sent => "recorded",
        ReceiptKind::Failed => {
            let failure = SendFailure::from_codes(status.error_codes.clone());
            count_failure(&failure, status.business_number_id.as_deref());
            tracing::warn!(wamid = %status.message_id, %reference, codes = ?status.error_codes,
                code_class = failure.code_class(), "WhatsApp reports an agent message failed");
            if deps.behaviour.receipts {
                let token = client_token(&["failed", &status.message_id]);
                match tell_agent(&deps, &ctx, cached.as_ref(), &reference, &failure, token).await {
                    Ok(outcome) => outcome,
                    Err(outcome) => return outcome,
                }
            } else {
                "recorded"
            }
        }
        // Later parts of an item (its second file...) add nothing the first did not say.
        _ if reference.part > 0 || !deps.behaviour.receipts => "recorded",
        _ => {
            let Some(event) = kind.event() else {
                return Outcome::Ignored("status");
            };
            match show(&deps, &ctx, cached, &reference, event, &status).await {
                Ok(outcome) => outcome,
                Err(outcome) => return outcome,
            }
        }
    };
    count(&status.status, outcome);
    match outcome {
        "shown" | "told" | "recorded" => Outcome::Done,
        _ => Outcome::Ignored("receipt not shown"),
    }
}

/// SendEvent `event` on the item `reference` names.
async fn show(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    cached: Option<Session>,
    reference: &AgentMessageRef,
    event: &'static str,
    status: &DeliveryStatus,
) -> Result<&'static str, Outcome> {
    let token = client_token(&["receipt", &status.status, &status.message_id]);
    let call = || ChatCall {
        contact_id: reference.contact_id.clone(),
        session: cached.clone(),
        kind: ChatCallKind::Event {
            content_type: event,
            content: receipt_content(&reference.item_id),
        },
        client_token: token.clone(),
    };
    match retrying(ctx, "receipt", &status.message_id, || {
        chat_call(deps, call())
    })
    .await
    {
        Ok(ChatCallOutcome::Done) => {
            tracing::debug!(%reference, status = %status.status, "receipt shown to the agent");
            Ok("shown")
        }
        Ok(ChatCallOutcome::ChatGone) => {
            tracing::debug!(%reference, status = %status.status, "chat ended; receipt dropped");
            Ok("chat_ended")
        }
        Err(Outcome::Reject { reason }) => {
            tracing::warn!(%reference, %reason, "receipt dropped");
            Ok("dropped")
        }
        Err(outcome) => Err(outcome),
    }
}
