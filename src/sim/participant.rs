//! Amazon Connect Participant operations, authenticated by the `X-Amz-Bearer` header:
//! the participant token for CreateParticipantConnection, the connection token otherwise.

use std::collections::HashMap;

use axum::http::HeaderMap;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::connect::check_text;
use super::sinks::iso_millis;
use super::state::{new_token, receipt_message_id, NewItem, Simulator, State};

/// Receipt events (they name the item they acknowledge).
const RECEIPTS: [&str; 2] = [
    "application/vnd.amazonaws.connect.event.message.delivered",
    "application/vnd.amazonaws.connect.event.message.read",
];
use super::wire::{parse_aws, AwsError};

/// Connect Participant's code for a request that does not fit the input shape.
const INVALID: &str = "ValidationException";

const EVENT_PREFIX: &str = "application/vnd.amazonaws.connect.event.";
const JSON: &str = "application/json";
const INTERACTIVE_RESPONSE: &str = "application/vnd.amazonaws.connect.message.interactive.response";
const PARTICIPANT_LEFT: &str = "application/vnd.amazonaws.connect.event.participant.left";

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, AwsError> {
    headers
        .get("x-amz-bearer")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(AwsError::access_denied)
}

/// The open chat a token map names; unknown tokens and ended or expired chats are all
/// AccessDenied, as Connect answers them.
pub(crate) fn open_chat(
    state: &State,
    tokens: &HashMap<String, usize>,
    token: &str,
) -> Result<usize, AwsError> {
    match tokens.get(token) {
        Some(&index) if state.chats[index].is_open() => Ok(index),
        _ => Err(AwsError::access_denied()),
    }
}

/// `POST /participant/connection`: returns the chat's connection token (the same one on
/// repeated calls) and a websocket URL.
pub(crate) fn create_participant_connection(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let _input: Value = parse_aws(body, INVALID)?;
    let mut state = sim.lock();
    let index = open_chat(&state, &state.by_participant_token, token)?;
    let chat = &mut state.chats[index];
    let connection_token = chat.connection_token.get_or_insert_with(new_token).clone();
    let expiry = iso_millis(chat.expires_at);
    let websocket_expiry = iso_millis(Utc::now() + chrono::Duration::days(1));
    let websocket_url = format!(
        "wss://sim.invalid/connect/websocket/{}",
        uuid::Uuid::new_v4()
    );
    state
        .by_connection_token
        .insert(connection_token.clone(), index);
    Ok(json!({
        "ConnectionCredentials": { "ConnectionToken": connection_token, "Expiry": expiry },
        "Websocket": { "Url": websocket_url, "ConnectionExpiry": websocket_expiry },
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendInput {
    content_type: String,
    content: Option<String>,
    client_token: Option<String>,
}

/// Records a customer item unless its ClientToken was seen on this chat; returns
/// `{Id, AbsoluteTime}` either way.
fn record_customer_item(
    sim: &Simulator,
    headers: &HeaderMap,
    operation: &str,
    kind: &'static str,
    input: SendInput,
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let mut state = sim.lock();
    let index = open_chat(&state, &state.by_connection_token, token)?;
    let chat = &mut state.chats[index];
    let key = input.client_token.map(|t| format!("{operation}:{t}"));
    if let Some((id, at)) = key.as_ref().and_then(|k| chat.sent.get(k)) {
        return Ok(json!({ "Id": id, "AbsoluteTime": at }));
    }
    let display_name = chat.customer_display_name.clone();
    let item = chat.record(
        NewItem {
            kind,
            role: "CUSTOMER",
            display_name: &display_name,
            content_type: &input.content_type,
            content: input.content.as_deref(),
            visibility: "ALL",
            attachment: None,
        },
        &sim.identity.account_id,
    );
    if let Some(key) = key {
        chat.sent
            .insert(key, (item.id.clone(), item.absolute_time.clone()));
    }
    Ok(json!({ "Id": item.id, "AbsoluteTime": item.absolute_time }))
}

/// `POST /participant/message`: text/plain or text/markdown of 1..=1024 characters; or,
/// when the chat declared it supported (StartChatContact's
/// SupportedMessagingContentTypes), a JSON object as `application/json` (up to 12000
/// characters) or `...message.interactive.response` (up to 12288).
pub(crate) fn send_message(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input: SendInput = parse_aws(body, INVALID)?;
    let content = input
        .content
        .as_deref()
        .ok_or_else(|| AwsError::new(INVALID, "Content is required"))?;
    match input.content_type.as_str() {
        JSON | INTERACTIVE_RESPONSE => {
            let max = if input.content_type == JSON {
                12_000
            } else {
                12_288
            };
            let chars = content.chars().count();
            if !(1..=max).contains(&chars) {
                return Err(AwsError::new(
                    INVALID,
                    format!("Content must be 1 to {max} characters, got {chars}"),
                ));
            }
            if !serde_json::from_str::<Value>(content).is_ok_and(|v| v.is_object()) {
                return Err(AwsError::new(
                    INVALID,
                    format!("{} Content must be a JSON object", input.content_type),
                ));
            }
            let token = bearer(headers)?;
            let state = sim.lock();
            let index = open_chat(&state, &state.by_connection_token, token)?;
            if !state.chats[index]
                .supported_content_types
                .contains(&input.content_type)
            {
                return Err(AwsError::new(
                    INVALID,
                    format!(
                        "ContentType {} is not among the chat's SupportedMessagingContentTypes",
                        input.content_type
                    ),
                ));
            }
        }
        _ => check_text(&input.content_type, content, INVALID)?,
    }
    record_customer_item(sim, headers, "SendMessage", "MESSAGE", input)
}

/// `POST /participant/event`: typing, delivered/read receipts and other events.
pub(crate) fn send_event(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input: SendInput = parse_aws(body, INVALID)?;
    if !input.content_type.starts_with(EVENT_PREFIX) {
        return Err(AwsError::new(
            INVALID,
            format!("Unsupported event ContentType {:?}", input.content_type),
        ));
    }
    if let Some(content) = &input.content {
        let chars = content.chars().count();
        if !(1..=1024).contains(&chars) {
            return Err(AwsError::new(
                INVALID,
                "Content must be 1 to 1024 characters",
            ));
        }
    }
    // A receipt names the item it acknowledges: {"messageId": "<an item of this chat>"}.
    if RECEIPTS.contains(&input.content_type.as_str()) {
        let Some(id) = receipt_message_id(&input.content_type, input.content.as_deref()) else {
            return Err(AwsError::new(
                INVALID,
                "A receipt's Content must be {\"messageId\": \"<item id>\"}",
            ));
        };
        let token = bearer(headers)?;
        let state = sim.lock();
        let index = open_chat(&state, &state.by_connection_token, token)?;
        if !state.chats[index].items.iter().any(|i| i.id == id) {
            return Err(AwsError::new(
                INVALID,
                format!("messageId {id} is not an item of this chat"),
            ));
        }
    }
    record_customer_item(sim, headers, "SendEvent", "EVENT", input)
}

/// `POST /participant/disconnect`: the customer leaves, which ends the chat.
pub(crate) fn disconnect_participant(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let _input: Value = parse_aws(body, INVALID)?;
    let mut state = sim.lock();
    let index = open_chat(&state, &state.by_connection_token, token)?;
    let chat = &mut state.chats[index];
    let display_name = chat.customer_display_name.clone();
    chat.record(
        NewItem {
            kind: "EVENT",
            role: "CUSTOMER",
            display_name: &display_name,
            content_type: PARTICIPANT_LEFT,
            content: None,
            visibility: "ALL",
            attachment: None,
        },
        &sim.identity.account_id,
    );
    chat.ended = true;
    chat.announce();
    tracing::info!(contact_id = %chat.contact_id, "simulator: customer disconnected");
    Ok(json!({}))
}
