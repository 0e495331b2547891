//! Delivery receipts for messages *we* sent (`value.statuses[]`).
//!
//! Mostly informational, except failures: error 131047 means the customer's 24-hour service
//! window is closed and free-form messages will be refused until they write again, which the
//! agent must be told.

use super::checks::{check_id, safe_token};
use super::error::DecodeError;
use super::model::meta_webhook::WebhookStatus;
use super::whatsapp_in::limits::MAX_WAMID_CHARS;

/// Longest `biz_opaque_callback_data` kept (Meta allows 512 characters).
const MAX_CALLBACK_DATA_BYTES: usize = 2048;

/// Meta error code: "Re-engagement message" (more than 24 h since the customer last wrote).
pub const WINDOW_CLOSED_ERROR_CODE: i64 = 131047;

/// One delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// wamid of our outbound message.
    pub message_id: String,
    /// "sent" | "delivered" | "read" | "failed" | ... (a sanitized lowercase token).
    pub status: String,
    /// The customer's wa_id.
    pub recipient_id: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<i64>,
    /// `errors[].code`, in order.
    pub error_codes: Vec<i64>,
    /// `biz_opaque_callback_data` we attached to the message, echoed (unchecked here).
    pub callback_data: Option<String>,
    /// EUM phone number id of the business number that sent the message, when the
    /// change's metadata maps to one.
    pub business_number_id: Option<String>,
}

impl DeliveryStatus {
    /// True when delivery failed because the 24-hour customer service window is closed.
    pub fn window_closed(&self) -> bool {
        self.error_codes.contains(&WINDOW_CLOSED_ERROR_CODE)
    }

    /// True for a "failed" receipt.
    pub fn is_failed(&self) -> bool {
        self.status == "failed"
    }
}

/// Turns one `value.statuses[]` element into a receipt. Only the wamid and status must
/// be valid; the optional parts are advisory, so malformed ones read as absent.
pub(crate) fn decode_status(s: &WebhookStatus) -> Result<DeliveryStatus, DecodeError> {
    let message_id = check_id(&s.id, "id", MAX_WAMID_CHARS)?.to_string();
    let status = safe_token(&s.status);
    if status == "unknown" {
        return Err(DecodeError::invalid("status", "not a status token"));
    }
    let recipient_id = s
        .recipient_id
        .get()
        .and_then(|r| check_id(r, "recipient_id", 64).ok())
        .map(str::to_string);
    let error_codes = s
        .errors
        .get()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get()?.code.get().map(|c| c.0))
        .collect();
    let callback_data = s
        .biz_opaque_callback_data
        .get()
        .filter(|d| d.len() <= MAX_CALLBACK_DATA_BYTES)
        .cloned();
    Ok(DeliveryStatus {
        message_id,
        status,
        recipient_id,
        timestamp: s.timestamp.get().map(|t| t.0),
        error_codes,
        callback_data,
        business_number_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{decode_value, Part};
    use serde_json::{json, Value};

    fn decode_status(v: &Value) -> Result<DeliveryStatus, DecodeError> {
        let part: Part<WebhookStatus> = Part(decode_value(v));
        part.named("statuses[]").and_then(super::decode_status)
    }

    #[test]
    fn decodes_a_failed_status() {
        let s = decode_status(&json!({"id": "wamid.O", "status": "failed", "timestamp": "1763650991",
            "recipient_id": "5491155550123", "errors": [{"code": 131047, "title": "Re-engagement message"}]}))
        .unwrap();
        assert_eq!(
            s,
            DeliveryStatus {
                message_id: "wamid.O".into(),
                status: "failed".into(),
                recipient_id: Some("5491155550123".into()),
                timestamp: Some(1763650991),
                error_codes: vec![131047],
                callback_data: None,
                business_number_id: None,
            }
        );
        assert!(s.window_closed());
        assert!(s.is_failed());
    }

    #[test]
    fn minimal_and_degraded_statuses() {
        let s = decode_status(&json!({"id": "wamid.O", "status": "read", "timestamp": [1],
            "recipient_id": 5, "errors": [{"code": "x"}, 3, {"code": 131026}]}))
        .unwrap();
        assert_eq!(s.timestamp, None);
        assert_eq!(s.recipient_id, None);
        assert_eq!(s.error_codes, vec![131026]);
        assert!(!s.window_closed());
        assert!(!s.is_failed());
    }

    #[test]
    fn invalid_statuses() {
        for bad in [
            json!([]),
            json!({"status": "sent"}),
            json!({"id": "wamid.O"}),
            json!({"id": "", "status": "sent"}),
            json!({"id": "wamid.O", "status": "Sent To You!"}),
            json!({"id": "wamid.O", "status": 1}),
        ] {
            assert!(decode_status(&bad).is_err(), "{bad}");
        }
    }
}
