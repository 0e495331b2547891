//! AWS End User Messaging Social: SendWhatsAppMessage delivers into the simulated
//! customer's inbox (and, like Meta, reports the message delivered), from the business
//! number it names. A customer whose 24-hour window is closed gets nothing but templates:
//! other messages are accepted, then reported `failed` with error 131047, as Meta does.
//! Interactive messages are held to Meta's limits; `biz_opaque_callback_data` is echoed in
//! every status of its message.

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::{InboxEntry, Simulator};
use super::stream::publish_with_retries;
use super::webhook::{status_event, window_closed_errors, Status};
use super::wire::{parse_aws, AwsError};

const INVALID: &str = "InvalidParametersException";

/// Inbox for mark-as-read bodies naming a message the simulator never saw.
pub const UNKNOWN_CUSTOMER: &str = "unknown";

/// Meta's limit for a text message body.
const MAX_TEXT_CHARS: usize = 4096;
/// Meta's limit for `biz_opaque_callback_data`.
const MAX_CALLBACK_DATA_CHARS: usize = 512;

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
    match message.get("biz_opaque_callback_data") {
        None => {}
        Some(Value::String(data)) if data.chars().count() <= MAX_CALLBACK_DATA_CHARS => {}
        Some(_) => {
            return Err(AwsError::new(
                INVALID,
                format!("biz_opaque_callback_data must be a string of at most {MAX_CALLBACK_DATA_CHARS} characters"),
            ))
        }
    }
    if message["type"] == "interactive" {
        crate::domain::interactive::check_meta_interactive(&message["interactive"])
            .map_err(|e| AwsError::new(INVALID, format!("interactive message: {e}")))?;
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
    let number = sim
        .identity
        .check_phone_number(&input.origination_phone_number_id)?;
    let message = decode_message(&input.message)?;
    let callback_data = message["biz_opaque_callback_data"]
        .as_str()
        .map(str::to_string);
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
    // Outside the 24-hour window only templates go out; the refusal comes as a status.
    let refused =
        recipient.is_some() && kind != "template" && state.closed_windows.contains(&customer);
    if !refused {
        state.deliver(
            customer,
            InboxEntry {
                id: message_id.clone(),
                kind,
                body: message,
                from: number.phone_number_id(),
            },
        );
    }
    drop(state);

    let status = match (&recipient, refused) {
        (Some(_), true) => Some(("failed", Some(window_closed_errors()))),
        (Some(_), false) if sim.emit_statuses => Some(("delivered", None)),
        _ => None,
    };
    if let (Some(to), Some((status, errors))) = (recipient, status) {
        if refused {
            tracing::info!(%to, %message_id, "simulator: the customer's window is closed; reporting 131047");
        }
        let event = status_event(
            &sim.identity,
            &number,
            &Status {
                message_id: &message_id,
                status,
                recipient_id: &to,
                callback_data: callback_data.as_deref(),
                errors,
            },
        );
        publish_status(sim, event, status);
    }
    Ok(json!({ "messageId": message_id }))
}

/// Publishes a status event on the inbound path, after the answer (as Meta's webhook
/// follows the API's answer).
pub(crate) fn publish_status(sim: &Simulator, event: String, status: &'static str) {
    let inbound = sim.inbound.clone();
    tokio::spawn(async move {
        let what = format!("{status} status");
        publish_with_retries(&what, || inbound.publish_event(&event)).await;
    });
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
