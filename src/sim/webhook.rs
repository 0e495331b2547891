//! Builds the events EUM publishes for WhatsApp webhooks: a Meta webhook entry (as a JSON
//! string) inside an EUM event (reference.md section 1).

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use super::identity::{BusinessNumber, SimIdentity};

/// Wraps a Meta `changes[].value` in a webhook entry and that in an EUM event about the
/// business number `number`.
fn eum_event(identity: &SimIdentity, number: &BusinessNumber, value: Value) -> String {
    let entry = json!({
        "id": identity.waba_id,
        "changes": [{ "field": "messages", "value": value }],
    });
    json!({
        "context": {
            "MetaWabaIds": [{ "wabaId": identity.waba_id, "arn": identity.waba_arn }],
            "MetaPhoneNumberIds": [{
                "metaPhoneNumberId": number.meta_phone_number_id,
                "arn": number.phone_number_arn,
            }],
        },
        "whatsAppWebhookEntry": entry.to_string(),
        "aws_account_id": identity.account_id,
        "message_timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    })
    .to_string()
}

fn metadata(number: &BusinessNumber) -> Value {
    json!({
        "display_phone_number": number.display_phone_number,
        "phone_number_id": number.meta_phone_number_id,
    })
}

/// A fresh WhatsApp message id in Meta's `wamid.<base64>` style.
pub(crate) fn new_wamid(wa_id: &str) -> String {
    let raw = format!("{wa_id}:{}", uuid::Uuid::new_v4().simple());
    format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// The EUM event for a customer message. `message` is the complete Meta message object
/// (`from`, `id`, `timestamp`, `type`, ...).
pub(crate) fn customer_message_event(
    identity: &SimIdentity,
    number: &BusinessNumber,
    wa_id: &str,
    profile_name: &str,
    message: Value,
) -> String {
    eum_event(
        identity,
        number,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(number),
            "contacts": [{ "profile": { "name": profile_name }, "wa_id": wa_id }],
            "messages": [message],
        }),
    )
}

/// A status of a message the business sent, as Meta reports it.
pub(crate) struct Status<'a> {
    pub message_id: &'a str,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: &'a str,
    pub recipient_id: &'a str,
    /// The message's `biz_opaque_callback_data`, echoed as Meta does.
    pub callback_data: Option<&'a str>,
    /// Meta's `errors` of a `failed` status.
    pub errors: Option<Value>,
}

/// The EUM event for a delivery status of a message the business number `number` sent.
pub(crate) fn status_event(
    identity: &SimIdentity,
    number: &BusinessNumber,
    status: &Status<'_>,
) -> String {
    let mut entry = json!({
        "id": status.message_id,
        "status": status.status,
        "timestamp": Utc::now().timestamp().to_string(),
        "recipient_id": status.recipient_id,
    });
    if let Some(data) = status.callback_data {
        entry["biz_opaque_callback_data"] = json!(data);
    }
    if let Some(errors) = &status.errors {
        entry["errors"] = errors.clone();
    }
    eum_event(
        identity,
        number,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(number),
            "statuses": [entry],
        }),
    )
}

/// Meta's `errors` of a message refused because the customer's 24-hour window is closed.
pub(crate) fn window_closed_errors() -> Value {
    json!([{
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
    }])
}

/// The (wamid, customer) pairs of the customer messages in a queue body, whether it is an
/// SNS envelope, a raw EUM event or anything else (then none). Lets mark-as-read of
/// messages injected raw be filed under the right customer.
pub(crate) fn customer_messages_in(body: &str) -> Vec<(String, String)> {
    fn nested(v: &Value, key: &str) -> Option<Value> {
        match v.get(key)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            other => Some(other.clone()),
        }
    }
    let Ok(outer) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    let event = nested(&outer, "Message").unwrap_or(outer);
    let Some(entry) = nested(&event, "whatsAppWebhookEntry") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for change in entry["changes"].as_array().into_iter().flatten() {
        for message in change["value"]["messages"].as_array().into_iter().flatten() {
            if let (Some(id), Some(from)) = (message["id"].as_str(), message["from"].as_str()) {
                found.push((id.to_string(), from.to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_event_has_the_eum_shape() {
        let identity = SimIdentity::default();
        let message = json!({"from": "5491100000000", "id": "wamid.X", "timestamp": "1", "type": "text", "text": {"body": "hi"}});
        let event: Value = serde_json::from_str(&customer_message_event(
            &identity,
            &identity.first_number(),
            "5491100000000",
            "Ana",
            message,
        ))
        .unwrap();
        assert_eq!(
            event["context"]["MetaPhoneNumberIds"][0]["arn"],
            identity.phone_number_arn
        );
        assert_eq!(event["aws_account_id"], "123456789012");
        let entry: Value =
            serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
        let value = &entry["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["metadata"]["display_phone_number"], "15550783881");
        assert_eq!(value["contacts"][0]["profile"]["name"], "Ana");
        assert_eq!(value["messages"][0]["text"]["body"], "hi");
    }

    #[test]
    fn finds_customer_messages_in_envelopes_and_raw_events() {
        let identity = SimIdentity::default();
        let message = json!({"from": "549", "id": "wamid.A", "timestamp": "1", "type": "text", "text": {"body": "x"}});
        let event =
            customer_message_event(&identity, &identity.first_number(), "549", "A", message);
        let envelope = super::super::sinks::sns_envelope("arn:aws:sns:us-east-1:1:t", &event, &[]);
        let expected = vec![("wamid.A".to_string(), "549".to_string())];
        assert_eq!(customer_messages_in(&event), expected);
        assert_eq!(customer_messages_in(&envelope), expected);
        assert!(customer_messages_in("not json").is_empty());
    }
}
