//! Amazon Connect operations: StartChatContact and StartContactStreaming.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::{Chat, NewItem, Simulator, StreamTarget, DEFAULT_CHAT_MINUTES};
use super::wire::{parse_aws, AwsError};

/// Connect's code for a body that does not fit the input shape.
const SHAPE_ERROR: &str = "InvalidRequestException";
const INVALID: &str = "InvalidParameterException";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartChatContactInput {
    instance_id: String,
    contact_flow_id: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    participant_details: ParticipantDetails,
    initial_message: Option<ChatMessage>,
    client_token: Option<String>,
    chat_duration_in_minutes: Option<i64>,
    supported_messaging_content_types: Option<Vec<String>>,
}

/// What SupportedMessagingContentTypes may list (Connect's API reference).
pub(crate) const MESSAGING_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/markdown",
    "application/json",
    "application/vnd.amazonaws.connect.message.interactive",
    "application/vnd.amazonaws.connect.message.interactive.response",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParticipantDetails {
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChatMessage {
    content_type: String,
    content: String,
}

/// Checks a text message as Connect does: known text type, 1..=1024 characters.
pub(crate) fn check_text(content_type: &str, content: &str, code: &str) -> Result<(), AwsError> {
    if content_type != "text/plain" && content_type != "text/markdown" {
        return Err(AwsError::new(
            code,
            format!("Unsupported ContentType {content_type:?}"),
        ));
    }
    let chars = content.chars().count();
    if !(1..=1024).contains(&chars) {
        return Err(AwsError::new(
            code,
            format!("Content must be 1 to 1024 characters, got {chars}"),
        ));
    }
    Ok(())
}

/// `PUT /contact/chat`. The same ClientToken returns the first call's chat.
pub(crate) fn start_chat_contact(
    sim: &Simulator,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input: StartChatContactInput = parse_aws(body, SHAPE_ERROR)?;
    if input.instance_id.is_empty() || input.contact_flow_id.is_empty() {
        return Err(AwsError::new(
            INVALID,
            "InstanceId and ContactFlowId are required",
        ));
    }
    let name_len = input.participant_details.display_name.chars().count();
    if !(1..=256).contains(&name_len) {
        return Err(AwsError::new(
            INVALID,
            "DisplayName must be 1 to 256 characters",
        ));
    }
    if let Some(message) = &input.initial_message {
        check_text(&message.content_type, &message.content, INVALID)?;
    }
    if let Some(types) = &input.supported_messaging_content_types {
        if let Some(bad) = types
            .iter()
            .find(|t| !MESSAGING_CONTENT_TYPES.contains(&t.as_str()))
        {
            return Err(AwsError::new(
                INVALID,
                format!("Unsupported messaging content type {bad:?}"),
            ));
        }
        if !types.iter().any(|t| t == "text/plain") {
            return Err(AwsError::new(
                INVALID,
                "SupportedMessagingContentTypes must contain text/plain",
            ));
        }
    }
    let minutes = input
        .chat_duration_in_minutes
        .unwrap_or(DEFAULT_CHAT_MINUTES);
    if !(60..=10080).contains(&minutes) {
        return Err(AwsError::new(
            INVALID,
            "ChatDurationInMinutes must be within 60..=10080",
        ));
    }

    let mut state = sim.lock();
    if let Some(token) = &input.client_token {
        if let Some(&index) = state.by_start_token.get(token) {
            let chat = &state.chats[index];
            return Ok(started(chat));
        }
    }
    let mut chat = Chat::new(
        input.instance_id,
        input.attributes,
        input.participant_details.display_name,
        minutes,
        state.console.events.clone(),
    );
    chat.contact_flow_id = input.contact_flow_id;
    if let Some(types) = input.supported_messaging_content_types {
        chat.supported_content_types = types;
    }
    chat.announce();
    if let Some(message) = &input.initial_message {
        let display_name = chat.customer_display_name.clone();
        chat.record(
            NewItem {
                kind: "MESSAGE",
                role: "CUSTOMER",
                display_name: &display_name,
                content_type: &message.content_type,
                content: Some(&message.content),
                visibility: "ALL",
                attachment: None,
            },
            &sim.identity.account_id,
        );
    }
    let answer = started(&chat);
    let index = state.chats.len();
    state.by_contact.insert(chat.contact_id.clone(), index);
    state
        .by_participant_token
        .insert(chat.participant_token.clone(), index);
    if let Some(token) = input.client_token {
        state.by_start_token.insert(token, index);
    }
    tracing::info!(contact_id = %chat.contact_id, "simulator: chat started");
    state.chats.push(chat);
    Ok(answer)
}

fn started(chat: &Chat) -> Value {
    json!({
        "ContactId": chat.initial_contact_id,
        "ParticipantId": chat.customer_participant_id,
        "ParticipantToken": chat.participant_token,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartContactStreamingInput {
    #[allow(dead_code)] // required by the API, any instance is accepted
    instance_id: String,
    contact_id: String,
    chat_streaming_configuration: ChatStreamingConfiguration,
    client_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChatStreamingConfiguration {
    streaming_endpoint_arn: String,
}

/// `POST /contact/start-streaming`: streams the chat's items (earlier ones included) to an
/// SNS topic. Repeating a ClientToken or a topic changes nothing.
pub(crate) fn start_contact_streaming(
    sim: &Simulator,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input: StartContactStreamingInput = parse_aws(body, SHAPE_ERROR)?;
    let topic = input.chat_streaming_configuration.streaming_endpoint_arn;
    if !topic.starts_with("arn:aws:sns:") {
        return Err(AwsError::new(
            INVALID,
            "StreamingEndpointArn must be an SNS topic ARN",
        ));
    }
    let mut state = sim.lock();
    let index = state
        .chat_by_contact(&input.contact_id)
        .ok_or_else(|| AwsError::new("ResourceNotFoundException", "Contact not found"))?;
    let chat = &mut state.chats[index];
    let existing = chat.streams.iter().find(|s| {
        s.topic_arn == topic
            || (input.client_token.is_some() && s.client_token == input.client_token)
    });
    if let Some(existing) = existing {
        return Ok(json!({ "StreamingId": existing.streaming_id }));
    }
    if !chat.is_open() {
        return Err(AwsError::new(SHAPE_ERROR, "Contact is not active"));
    }
    let streaming_id = uuid::Uuid::new_v4().to_string();
    chat.add_stream(
        StreamTarget {
            topic_arn: topic,
            streaming_id: streaming_id.clone(),
            client_token: input.client_token,
        },
        &sim.stream,
        &sim.identity.account_id,
    );
    tracing::info!(contact_id = %chat.contact_id, "simulator: contact streaming started");
    Ok(json!({ "StreamingId": streaming_id }))
}
