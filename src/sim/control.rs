//! The JSON control API under `/sim`: tests play the customer (inject WhatsApp messages,
//! read the inbox) and the agent (write, end, expire, transfer chats), inject faults and
//! read the call log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::attachments::{
    name_problem, record_attachment_item, size_problem, Author, APPROVED, STATUSES,
};
use super::events::{SentMedia, SentMessage};
use super::faults::{Fault, FaultSpec};
use super::media::{attach_customer_media, MediaSpec, MAX_CUSTOMER_MEDIA_BYTES};
use super::routes::MEDIA_BODY_LIMIT;
use super::sinks::iso_millis;
use super::state::{Attachment, NewItem, Simulator, StoredFile};
use super::voice::{encode_voice_note, VOICE_NOTE_MIME};
use super::webhook::{
    customer_message_event, customer_messages_in, new_wamid, status_event, Status,
};
use super::wire::{parse_control, ControlError};

type Sim = State<Arc<Simulator>>;
type Body = Result<Bytes, BytesRejection>;
type Answer = Result<Response, ControlError>;

const CHAT_ENDED: &str = "application/vnd.amazonaws.connect.event.chat.ended";
const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
const PARTICIPANT_JOINED: &str = "application/vnd.amazonaws.connect.event.participant.joined";
const INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
/// Connect's limit for a message's content (20 KB).
const MAX_INTERACTIVE_BYTES: usize = 20 * 1024;

/// An interactive message as a contact flow's bot streams it: a JSON object naming its
/// template (`templateType`, `data`), within Connect's 20 KB.
fn check_interactive_template(text: &str) -> Result<(), ControlError> {
    if text.len() > MAX_INTERACTIVE_BYTES {
        return Err(ControlError::bad_request(format!(
            "an interactive message is at most {MAX_INTERACTIVE_BYTES} bytes"
        )));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        ControlError::bad_request(format!(
            "an interactive message's text is template JSON: {e}"
        ))
    })?;
    if !v["templateType"].is_string() || !v["data"].is_object() {
        return Err(ControlError::bad_request(
            "an interactive template needs \"templateType\" and \"data\"",
        ));
    }
    Ok(())
}

pub(crate) fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/sim/healthz", get(healthz))
        .route("/sim/tls/ca.pem", get(tls_ca))
        .route(
            "/sim/customers/{wa_id}/messages",
            post(customer_message).layer(DefaultBodyLimit::max(MEDIA_BODY_LIMIT)),
        )
        .route("/sim/customers/{wa_id}/inbox", get(inbox))
        .route("/sim/customers/{wa_id}/read", post(customer_reads))
        .route("/sim/customers/{wa_id}/window", post(customer_window))
        .route("/sim/business-numbers", get(business_numbers))
        .route("/sim/inbound/raw", post(inbound_raw))
        .route("/sim/chats", get(list_chats))
        .route("/sim/chats/{contact_id}", get(get_chat))
        .route(
            "/sim/chats/{contact_id}/agent/messages",
            post(agent_message).layer(DefaultBodyLimit::max(MEDIA_BODY_LIMIT)),
        )
        .route("/sim/chats/{contact_id}/agent/typing", post(agent_typing))
        .route("/sim/chats/{contact_id}/agent/join", post(agent_join))
        .route("/sim/chats/{contact_id}/end", post(end_chat))
        .route("/sim/chats/{contact_id}/expire", post(expire_chat))
        .route("/sim/chats/{contact_id}/transfer", post(transfer_chat))
        .route(
            "/sim/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/sim/calls", get(calls))
}

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

fn bytes(body: Body) -> Result<Bytes, ControlError> {
    body.map_err(|r| ControlError::from_rejection(&r))
}

/// A customer's WhatsApp id as Meta writes it: digits, no `+`.
fn customer_id(raw: &str) -> Result<String, ControlError> {
    let id = raw.trim_start_matches('+');
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ControlError::bad_request(format!(
            "customer id {raw:?} must be digits"
        )));
    }
    Ok(id.to_string())
}

async fn healthz() -> Answer {
    ok(json!({ "status": "ok" }))
}

/// `GET /sim/tls/ca.pem`: the CA certificate of the TLS endpoint, to trust it.
async fn tls_ca(State(sim): Sim) -> Answer {
    let pem = sim
        .tls_ca
        .get()
        .ok_or_else(|| ControlError::not_found("this simulator serves no TLS"))?;
    Ok(([("content-type", "application/x-pem-file")], pem.clone()).into_response())
}

/// `POST /sim/customers/{wa_id}/messages`: the customer writes to the business.
async fn customer_message(State(sim): Sim, Path(wa_id): Path<String>, body: Body) -> Answer {
    let wa_id = customer_id(&wa_id)?;
    let mut message: serde_json::Map<String, Value> = parse_control(&bytes(body)?)?;
    let profile_name = match message.remove("profile_name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(ControlError::bad_request("profile_name must be a string")),
        None => {
            let tail = &wa_id[wa_id.len().saturating_sub(4)..];
            format!("Customer {tail}")
        }
    };
    // Control-only fields, not part of the Meta message.
    let number = match message.remove("business_phone_number_id") {
        None => sim.identity.first_number(),
        Some(Value::String(id)) => sim.identity.number(&id).ok_or_else(|| {
            ControlError::bad_request(format!(
                "business_phone_number_id {id:?} is not one of the simulator's numbers (GET /sim/business-numbers)"
            ))
        })?,
        Some(_) => {
            return Err(ControlError::bad_request(
                "business_phone_number_id must be a string",
            ))
        }
    };
    let media = match message.remove("media") {
        Some(spec) => Some(
            serde_json::from_value::<MediaSpec>(spec)
                .map_err(|e| ControlError::bad_request(format!("bad \"media\": {e}")))?,
        ),
        None => None,
    };
    if !message.get("type").is_some_and(Value::is_string) {
        return Err(ControlError::bad_request(
            "a message needs a \"type\" (e.g. \"text\")",
        ));
    }
    let media = match media {
        Some(spec) if spec.voice_note => Some(record_voice_note(&sim, &mut message, spec).await?),
        other => other,
    };
    let media = match media {
        Some(spec) => Some(
            attach_customer_media(&mut message, spec)
                .map_err(|e| ControlError::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    if let Some(Value::Object(context)) = message.get_mut("context") {
        // Meta names who wrote the quoted message: the business, for our messages.
        context
            .entry("from")
            .or_insert_with(|| json!(number.display_phone_number));
    }
    let wamid = new_wamid(&wa_id);
    message.insert("from".into(), json!(wa_id));
    message.insert("id".into(), json!(wamid));
    message.insert(
        "timestamp".into(),
        json!(Utc::now().timestamp().to_string()),
    );
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let message = Value::Object(message);
    let mut sent = SentMessage {
        wa_id: wa_id.clone(),
        profile_name: profile_name.clone(),
        wamid: wamid.clone(),
        at: iso_millis(Utc::now()),
        status: "sent",
        message: message.clone(),
        media: media.as_ref().map(|(id, file)| SentMedia {
            id: id.clone(),
            mime_type: file.mime_type.clone(),
            size: file.bytes.len(),
            url: format!("/sim/customers/{wa_id}/media/{id}"),
        }),
    };
    {
        let mut state = sim.lock();
        state.wamid_owner.insert(wamid.clone(), wa_id.clone());
        // Writing opens the customer's 24-hour window again.
        state.closed_windows.remove(&wa_id);
        if let Some((media_id, media)) = media {
            state.media.insert(media_id, media);
        }
        // Filed before it is queued, so the console shows it before anything the
        // router does with it.
        state.console.customer_message(sent.clone());
    }
    let event = customer_message_event(&sim.identity, &number, &wa_id, &profile_name, message);
    if let Err(e) = sim.inbound.publish_event(&event).await {
        sent.status = "failed";
        sim.lock().console.customer_message(sent);
        return Err(ControlError::bad_gateway(e.to_string()));
    }
    tracing::info!(%wa_id, %kind, %wamid, "simulator: customer message injected");
    ok(json!({ "wamid": wamid }))
}

/// `"media": {.., "voice_note": true}`: the clip, whatever the microphone recorded, is
/// encoded to an OGG/Opus voice note as the WhatsApp app does, and the message becomes
/// `{"type": "audio", "audio": {"voice": true, ..}}`.
async fn record_voice_note(
    sim: &Simulator,
    message: &mut serde_json::Map<String, Value>,
    spec: MediaSpec,
) -> Result<MediaSpec, ControlError> {
    if message.get("type").and_then(Value::as_str) != Some("audio") {
        return Err(ControlError::bad_request(
            "\"voice_note\" needs a message of type \"audio\"",
        ));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    if spec.content_base64.len() / 4 * 3 > MAX_CUSTOMER_MEDIA_BYTES + 2 {
        return Err(ControlError::bad_request(format!(
            "the clip is over {MAX_CUSTOMER_MEDIA_BYTES} bytes"
        )));
    }
    let clip = engine.decode(spec.content_base64.trim()).map_err(|e| {
        ControlError::bad_request(format!("media.content_base64 is not base64: {e}"))
    })?;
    if clip.is_empty() {
        return Err(ControlError::bad_request("the clip is empty"));
    }
    let ffmpeg = sim
        .lock()
        .console
        .ffmpeg
        .clone()
        .unwrap_or_else(|| "ffmpeg".into());
    let note = encode_voice_note(&ffmpeg, &spec.mime_type, clip)
        .await
        .map_err(|e| ControlError {
            status: e.status(),
            message: e.to_string(),
        })?;
    match message.entry("audio").or_insert_with(|| json!({})) {
        Value::Object(audio) => {
            audio.insert("voice".into(), Value::Bool(true));
        }
        _ => return Err(ControlError::bad_request("\"audio\" must be an object")),
    }
    Ok(MediaSpec {
        content_base64: engine.encode(note),
        mime_type: VOICE_NOTE_MIME.into(),
        filename: None,
        voice_note: false,
    })
}

/// `GET /sim/customers/{wa_id}/inbox`: what the business sent the customer, in order.
async fn inbox(State(sim): Sim, Path(wa_id): Path<String>) -> Answer {
    let key = wa_id.trim_start_matches('+');
    let messages = sim.lock().inboxes.get(key).cloned().unwrap_or_default();
    ok(json!({ "messages": messages }))
}

/// `POST /sim/customers/{wa_id}/read` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadInput {
    message_id: String,
}

/// `POST /sim/customers/{wa_id}/read`: the customer reads a message the business sent
/// them; the `read` status goes out on the inbound path, as Meta reports it.
async fn customer_reads(State(sim): Sim, Path(wa_id): Path<String>, body: Body) -> Answer {
    let wa_id = customer_id(&wa_id)?;
    let input: ReadInput = parse_control(&bytes(body)?)?;
    let entry = sim
        .lock()
        .inboxes
        .get(&wa_id)
        .and_then(|inbox| inbox.iter().find(|e| e.id == input.message_id).cloned())
        .filter(|e| e.body.get("to").is_some())
        .ok_or_else(|| {
            ControlError::not_found(format!(
                "{wa_id} received no business message {}",
                input.message_id
            ))
        })?;
    let number = sim
        .identity
        .number(&entry.from)
        .ok_or_else(|| ControlError::not_found("the sending number is gone"))?;
    let event = status_event(
        &sim.identity,
        &number,
        &Status {
            message_id: &entry.id,
            status: "read",
            recipient_id: &wa_id,
            callback_data: entry.body["biz_opaque_callback_data"].as_str(),
            errors: None,
        },
    );
    sim.inbound
        .publish_event(&event)
        .await
        .map_err(|e| ControlError::bad_gateway(e.to_string()))?;
    tracing::info!(%wa_id, message_id = %entry.id, "simulator: customer read a business message");
    ok(json!({}))
}

/// `POST /sim/customers/{wa_id}/window` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowInput {
    open: bool,
}

/// `POST /sim/customers/{wa_id}/window`: `{"open": false}` closes the customer's 24-hour
/// window (business messages other than templates fail with 131047), `true` opens it.
async fn customer_window(State(sim): Sim, Path(wa_id): Path<String>, body: Body) -> Answer {
    let wa_id = customer_id(&wa_id)?;
    let input: WindowInput = parse_control(&bytes(body)?)?;
    {
        let mut state = sim.lock();
        if input.open {
            state.closed_windows.remove(&wa_id);
        } else {
            state.closed_windows.insert(wa_id.clone());
        }
    }
    tracing::info!(%wa_id, open = input.open, "simulator: customer window set");
    ok(json!({ "open": input.open }))
}

/// `GET /sim/business-numbers`: the business numbers the simulator owns.
async fn business_numbers(State(sim): Sim) -> Answer {
    ok(json!({ "numbers": numbers_json(&sim.identity) }))
}

/// The business numbers as the control API and the event stream show them.
pub(crate) fn numbers_json(identity: &super::identity::SimIdentity) -> Vec<Value> {
    identity
        .numbers()
        .iter()
        .map(|n| {
            json!({
                "phone_number_id": n.phone_number_id(),
                "display_phone_number": n.display_phone_number,
                "meta_phone_number_id": n.meta_phone_number_id,
            })
        })
        .collect()
}

/// `POST /sim/inbound/raw`: the body goes to the inbound queue unchanged.
async fn inbound_raw(State(sim): Sim, body: Body) -> Answer {
    let body = bytes(body)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ControlError::bad_request("body must be UTF-8 (an SQS body is text)"))?;
    {
        let mut state = sim.lock();
        for (wamid, from) in customer_messages_in(text) {
            state.wamid_owner.insert(wamid, from);
        }
    }
    sim.inbound
        .enqueue_raw(text)
        .await
        .map_err(|e| ControlError::bad_gateway(e.to_string()))?;
    tracing::info!(bytes = body.len(), "simulator: raw inbound body enqueued");
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

async fn list_chats(State(sim): Sim) -> Answer {
    let chats: Vec<Value> = sim.lock().chats.iter().map(|c| c.to_json()).collect();
    ok(json!({ "chats": chats }))
}

async fn get_chat(State(sim): Sim, Path(contact_id): Path<String>) -> Answer {
    let state = sim.lock();
    let index = state
        .chat_by_contact(&contact_id)
        .ok_or_else(|| unknown_chat(&contact_id))?;
    ok(state.chats[index].to_json())
}

fn unknown_chat(contact_id: &str) -> ControlError {
    ControlError::not_found(format!("no chat with contact id {contact_id}"))
}

/// Runs `change` on the open chat `contact_id` (404 unknown, 409 ended).
fn with_open_chat<T>(
    sim: &Simulator,
    contact_id: &str,
    change: impl FnOnce(&mut super::state::Chat, &str) -> T,
) -> Result<T, ControlError> {
    let mut state = sim.lock();
    let index = state
        .chat_by_contact(contact_id)
        .ok_or_else(|| unknown_chat(contact_id))?;
    let chat = &mut state.chats[index];
    if !chat.is_open() {
        return Err(ControlError::conflict(format!(
            "chat {contact_id} has ended"
        )));
    }
    Ok(change(chat, &sim.identity.account_id))
}

/// `POST /sim/chats/{contact_id}/agent/messages` body: a text or a file.
#[derive(Deserialize)]
struct AgentMessage {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    attachment: Option<AgentAttachment>,
    /// The attachment's scan result (also accepted inside `attachment`).
    #[serde(default)]
    status: Option<String>,
    #[serde(default = "all")]
    visibility: String,
    #[serde(default = "agent")]
    role: String,
    #[serde(default = "agent_name")]
    display_name: String,
    #[serde(default = "plain")]
    content_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentAttachment {
    name: String,
    content_type: String,
    content_base64: String,
    #[serde(default)]
    status: Option<String>,
}

fn all() -> String {
    "ALL".into()
}
fn agent() -> String {
    "AGENT".into()
}
fn agent_name() -> String {
    "Agent".into()
}
fn plain() -> String {
    "text/plain".into()
}

/// `POST /sim/chats/{contact_id}/agent/messages`: the agent (or a bot, or the system)
/// writes in the chat, a text or a file.
async fn agent_message(State(sim): Sim, Path(contact_id): Path<String>, body: Body) -> Answer {
    let mut input: AgentMessage = parse_control(&bytes(body)?)?;
    if !["ALL", "AGENT", "CUSTOMER"].contains(&input.visibility.as_str()) {
        return Err(ControlError::bad_request(
            "visibility must be ALL, AGENT or CUSTOMER",
        ));
    }
    if !["AGENT", "SYSTEM", "CUSTOM_BOT"].contains(&input.role.as_str()) {
        return Err(ControlError::bad_request(
            "role must be AGENT, SYSTEM or CUSTOM_BOT",
        ));
    }
    let text = match (input.text.take(), input.attachment.take()) {
        (Some(text), None) => text,
        (None, Some(file)) => return agent_attachment(&sim, &contact_id, &input, file),
        _ => {
            return Err(ControlError::bad_request(
                "give either \"text\" or \"attachment\"",
            ))
        }
    };
    if text.is_empty() {
        return Err(ControlError::bad_request("text must not be empty"));
    }
    match input.content_type.as_str() {
        "text/plain" | "text/markdown" => {}
        INTERACTIVE => check_interactive_template(&text)?,
        _ => {
            return Err(ControlError::bad_request(format!(
                "content_type must be text/plain, text/markdown or {INTERACTIVE}"
            )))
        }
    }
    let item = with_open_chat(&sim, &contact_id, |chat, account| {
        chat.record(
            NewItem {
                kind: "MESSAGE",
                role: &input.role,
                display_name: &input.display_name,
                content_type: &input.content_type,
                content: Some(&text),
                visibility: &input.visibility,
                attachment: None,
            },
            account,
        )
    })?;
    tracing::info!(%contact_id, role = %input.role, item_id = %item.id, "simulator: agent message");
    ok(json!({ "id": item.id }))
}

/// An agent's file: checked as Connect checks attachments, stored complete (with the
/// given scan status) and recorded as an ATTACHMENT item. Answers `{"id", "attachment_id"}`.
fn agent_attachment(
    sim: &Simulator,
    contact_id: &str,
    input: &AgentMessage,
    file: AgentAttachment,
) -> Answer {
    if let Some(problem) = name_problem(&file.name) {
        return Err(ControlError::bad_request(problem));
    }
    if file.content_type.trim().is_empty() {
        return Err(ControlError::bad_request(
            "attachment.content_type is required",
        ));
    }
    let status = file
        .status
        .or_else(|| input.status.clone())
        .unwrap_or_else(|| APPROVED.to_string());
    if !STATUSES.contains(&status.as_str()) {
        return Err(ControlError::bad_request(format!(
            "status must be one of {STATUSES:?}"
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(file.content_base64.trim())
        .map_err(|e| ControlError::bad_request(format!("content_base64 is not base64: {e}")))?;
    if let Some(problem) = size_problem(decoded.len() as u64) {
        return Err(ControlError::bad_request(problem));
    }
    let stored = StoredFile::new(Bytes::from(decoded));

    let mut state = sim.lock();
    let index = state
        .chat_by_contact(contact_id)
        .ok_or_else(|| unknown_chat(contact_id))?;
    if !state.chats[index].is_open() {
        return Err(ControlError::conflict(format!(
            "chat {contact_id} has ended"
        )));
    }
    let attachment_id = uuid::Uuid::new_v4().to_string();
    state.attachments.insert(
        attachment_id.clone(),
        Attachment {
            id: attachment_id.clone(),
            chat: index,
            name: file.name,
            content_type: file.content_type,
            declared_size: stored.bytes.len() as u64,
            file: Some(stored),
            status,
            completed: true,
            upload_expires_at: Utc::now(),
        },
    );
    let author = Author {
        role: &input.role,
        display_name: &input.display_name,
        visibility: &input.visibility,
    };
    let item = record_attachment_item(&mut state, &attachment_id, author, &sim.identity.account_id)
        .ok_or_else(|| ControlError::not_found("the attachment vanished"))?;
    tracing::info!(%contact_id, %attachment_id, item_id = %item.id, "simulator: agent attachment");
    ok(json!({ "id": item.id, "attachment_id": attachment_id }))
}

/// `POST /sim/chats/{contact_id}/agent/join` (and `/agent/typing`) body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AgentEventInput {
    #[serde(default)]
    display_name: Option<String>,
}

fn agent_event_input(body: Body) -> Result<AgentEventInput, ControlError> {
    let body = bytes(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AgentEventInput::default());
    }
    let input: AgentEventInput = parse_control(&body)?;
    if input
        .display_name
        .as_deref()
        .is_some_and(|n| !(1..=256).contains(&n.chars().count()))
    {
        return Err(ControlError::bad_request(
            "display_name must be 1 to 256 characters",
        ));
    }
    Ok(input)
}

/// Records and streams an event by the AGENT. Answers the item.
fn record_agent_event(
    sim: &Simulator,
    contact_id: &str,
    content_type: &str,
    display_name: &str,
    joins: bool,
) -> Result<super::state::Item, ControlError> {
    with_open_chat(sim, contact_id, |chat, account| {
        let item = chat.record(
            NewItem {
                kind: "EVENT",
                role: "AGENT",
                display_name,
                content_type,
                content: None,
                visibility: "ALL",
                attachment: None,
            },
            account,
        );
        if joins {
            chat.agent = Some(display_name.to_string());
            chat.announce();
        }
        item
    })
}

/// `POST /sim/chats/{contact_id}/agent/typing`: the agent types (a `typing` event by the
/// AGENT is streamed, as Connect streams the agent's typing).
async fn agent_typing(State(sim): Sim, Path(contact_id): Path<String>, body: Body) -> Answer {
    let input = agent_event_input(body)?;
    let name = input.display_name.unwrap_or_else(agent_name);
    let item = record_agent_event(&sim, &contact_id, TYPING, &name, false)?;
    tracing::info!(%contact_id, item_id = %item.id, "simulator: agent typing");
    ok(json!({ "id": item.id }))
}

/// `POST /sim/chats/{contact_id}/agent/join`: an agent joins the chat
/// (`participant.joined` by the AGENT is streamed); until then the chat has no agent.
async fn agent_join(State(sim): Sim, Path(contact_id): Path<String>, body: Body) -> Answer {
    let input = agent_event_input(body)?;
    let name = input.display_name.unwrap_or_else(agent_name);
    let item = record_agent_event(&sim, &contact_id, PARTICIPANT_JOINED, &name, true)?;
    tracing::info!(%contact_id, item_id = %item.id, "simulator: agent joined");
    ok(json!({ "id": item.id }))
}

/// `POST /sim/chats/{contact_id}/end`: the agent ends the chat (chat.ended is streamed).
async fn end_chat(State(sim): Sim, Path(contact_id): Path<String>) -> Answer {
    with_open_chat(&sim, &contact_id, |chat, account| {
        chat.record(
            NewItem {
                kind: "EVENT",
                role: "SYSTEM",
                display_name: "SYSTEM",
                content_type: CHAT_ENDED,
                content: None,
                visibility: "ALL",
                attachment: None,
            },
            account,
        );
        chat.ended = true;
        chat.announce();
    })?;
    tracing::info!(%contact_id, "simulator: chat ended by agent");
    ok(json!({}))
}

/// `POST /sim/chats/{contact_id}/expire`: the chat times out silently; its tokens answer
/// AccessDenied from now on and nothing is streamed.
async fn expire_chat(State(sim): Sim, Path(contact_id): Path<String>) -> Answer {
    {
        let mut state = sim.lock();
        let index = state
            .chat_by_contact(&contact_id)
            .ok_or_else(|| unknown_chat(&contact_id))?;
        let chat = &mut state.chats[index];
        chat.ended = true;
        chat.expired = true;
        chat.announce();
    }
    tracing::info!(%contact_id, "simulator: chat expired");
    ok(json!({}))
}

/// `POST /sim/chats/{contact_id}/transfer`: the chat continues under a new ContactId.
async fn transfer_chat(State(sim): Sim, Path(contact_id): Path<String>) -> Answer {
    let new_id = uuid::Uuid::new_v4().to_string();
    {
        let mut state = sim.lock();
        let index = state
            .chat_by_contact(&contact_id)
            .ok_or_else(|| unknown_chat(&contact_id))?;
        let chat = &mut state.chats[index];
        if !chat.is_open() {
            return Err(ControlError::conflict(format!(
                "chat {contact_id} has ended"
            )));
        }
        chat.contact_id = new_id.clone();
        chat.announce();
        state.by_contact.insert(new_id.clone(), index);
    }
    tracing::info!(%contact_id, new_contact_id = %new_id, "simulator: chat transferred");
    ok(json!({ "contact_id": new_id }))
}

/// `POST /sim/faults`.
async fn add_fault(State(sim): Sim, body: Body) -> Answer {
    let spec: FaultSpec = parse_control(&bytes(body)?)?;
    let mut state = sim.lock();
    state.next_fault_id += 1;
    let fault = Fault::from_spec(state.next_fault_id, spec)?;
    tracing::info!(
        id = fault.id,
        operation = %fault.operation,
        error = ?fault.error.as_ref().map(|e| &e.code),
        rate = fault.rate,
        latency_ms = fault.latency.as_millis() as u64,
        count = ?fault.remaining,
        "simulator: fault added"
    );
    let id = fault.id;
    state.faults.push(fault);
    ok(json!({ "id": id }))
}

/// `DELETE /sim/faults`: all faults gone.
async fn clear_faults(State(sim): Sim) -> Answer {
    sim.lock().faults.clear();
    tracing::info!("simulator: faults cleared");
    ok(json!({}))
}

/// `GET /sim/faults`: the active faults with their remaining budgets.
async fn list_faults(State(sim): Sim) -> Answer {
    let faults: Vec<Value> = sim
        .lock()
        .faults
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "operation": f.operation,
                "error": f.error.as_ref().map(|e| &e.code),
                "status": f.error.as_ref().map(|e| e.status),
                "rate": f.rate,
                "latency_ms": f.latency.as_millis() as u64,
                "count": f.remaining,
            })
        })
        .collect();
    ok(json!({ "faults": faults }))
}

/// `GET /sim/calls`: every AWS call answered, in order, with its HTTP status.
async fn calls(State(sim): Sim) -> Answer {
    let calls: Vec<_> = sim.lock().calls.iter().cloned().collect();
    ok(json!({ "calls": calls }))
}
