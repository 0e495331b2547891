//! AWS End User Messaging Social: SendWhatsAppMessage delivers into the simulated
//! customer's inbox (and, like Meta, reports the message delivered).

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::{InboxEntry, Simulator};
use super::stream::publish_with_retries;
use super::webhook::status_event;
use super::wire::{parse_aws, AwsError};

const INVALID: &str = "InvalidParametersException";

/// Inbox for mark-as-read bodies naming a message the simulator never saw.
pub const UNKNOWN_CUSTOMER: &str = "unknown";

/// Meta's limit for a text message body.
const MAX_TEXT_CHARS: usize = 4096;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendWhatsAppMessageInput {
    origination_phone_number_id: String,
    /// Base64 of the Meta message JSON (a blob member).
    message: String,
    #[allow(dead_code)] // required by the API; every version behaves the same here
    meta_api_version: String,
}

/// Decodes and checks the Meta message a SendWhatsAppMessage carries.
fn decode_message(encoded: &str) -> Result<Value, AwsError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| AwsError::new(INVALID, format!("message is not base64: {e}")))?;
    let message: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AwsError::new(INVALID, format!("message is not valid JSON: {e}")))?;
    if !message.is_object() {
        return Err(AwsError::new(INVALID, "message must be a JSON object"));
    }
    if let Some(body) = message["text"]["body"].as_str() {
        let chars = body.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(AwsError::new(
                INVALID,
                format!("text body is {chars} characters, the limit is {MAX_TEXT_CHARS}"),
            ));
        }
    }
    Ok(message)
}

/// `POST /v1/whatsapp/send`.
pub(crate) fn send_whatsapp_message(
    sim: &Simulator,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let input: SendWhatsAppMessageInput = parse_aws(body, "ValidationException")?;
    sim.identity
        .check_phone_number(&input.origination_phone_number_id)?;
    let message = decode_message(&input.message)?;
    let message_id = uuid::Uuid::new_v4().to_string();
    let recipient = message["to"]
        .as_str()
        .map(|to| to.trim_start_matches('+').to_string());

    let mut state = sim.lock();
    let (customer, kind) = match &recipient {
        Some(to) => {
            let kind = message["type"].as_str().unwrap_or("text").to_string();
            (to.clone(), kind)
        }
        None if message["status"] == "read" => {
            let read_id = message["message_id"].as_str().ok_or_else(|| {
                AwsError::new(INVALID, "a read status needs the message_id it marks")
            })?;
            let owner = state.wamid_owner.get(read_id).cloned().unwrap_or_else(|| {
                tracing::info!("simulator: mark-as-read of a message it never saw");
                UNKNOWN_CUSTOMER.to_string()
            });
            (owner, "read".to_string())
        }
        None => return Err(AwsError::new(INVALID, "message has no recipient (\"to\")")),
    };
    if customer.is_empty() {
        return Err(AwsError::new(INVALID, "\"to\" is empty"));
    }
    state.deliver(
        customer,
        InboxEntry {
            id: message_id.clone(),
            kind,
            body: message,
        },
    );
    drop(state);

    if let (Some(to), true) = (recipient, sim.emit_statuses) {
        let inbound = sim.inbound.clone();
        let event = status_event(&sim.identity, &message_id, "delivered", &to);
        tokio::spawn(async move {
            publish_with_retries("delivered status", || inbound.publish_event(&event)).await;
        });
    }
    Ok(json!({ "messageId": message_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    }

    #[test]
    fn long_text_and_bad_json_are_invalid_parameters() {
        let long = json!({"to": "1", "type": "text", "text": {"body": "é".repeat(4097)}});
        assert_eq!(
            decode_message(&encode(&long)).unwrap_err().code,
            "InvalidParametersException"
        );
        let ok = json!({"to": "1", "type": "text", "text": {"body": "é".repeat(4096)}});
        assert!(decode_message(&encode(&ok)).is_ok());
        let not_json = base64::engine::general_purpose::STANDARD.encode("{nope");
        assert_eq!(decode_message(&not_json).unwrap_err().status, 400);
        assert!(decode_message("***").is_err());
    }
}
