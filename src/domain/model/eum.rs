//! The EUM (AWS End User Messaging Social) event: SNS `Message` of the inbound topic.
//!
//! ```json
//! {"context": {"MetaWabaIds": [...], "MetaPhoneNumberIds": [
//!      {"metaPhoneNumberId": "106540352242922",
//!       "arn": "arn:aws:social-messaging:REGION:ACCOUNT:phone-number-id/0123abcd"}]},
//!  "whatsAppWebhookEntry": "{\"id\": \"...\", \"changes\": [...]}",
//!  "aws_account_id": "...", "message_timestamp": "2026-11-20T14:03:11.482913Z"}
//! ```

use serde::{Deserialize, Serialize};

use super::json_objects;
use super::meta_webhook::WebhookEntry;
use super::tolerant::{Embedded, Lenient, Part};

/// One EUM event. The mapping and the entry are required: without the mapping we could
/// not reply, without the entry there is nothing to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct EumEvent {
    pub context: EumContext,
    /// The Meta webhook entry as a JSON string (as EUM sends it), or as an object.
    #[serde(rename = "whatsAppWebhookEntry")]
    pub whatsapp_webhook_entry: Embedded<WebhookEntry>,
    /// RFC 3339; the time of messages that carry none.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub message_timestamp: Lenient<String>,
    /// Ours, not EUM's: the regroup stage held these texts of one customer for burst
    /// aggregation and passes them on together, to be joined into one chat message.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub waconnect_burst: Lenient<bool>,
    /// Ours too: the regroup stage had received the queue message carrying this event
    /// before, so it may have been passed on, and delivered, already.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub waconnect_received_before: Lenient<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct EumContext {
    /// Meta phone number id -> EUM phone number ARN. One bad entry does not spoil the
    /// others (another may be the one needed).
    #[serde(rename = "MetaPhoneNumberIds")]
    pub meta_phone_number_ids: Vec<Part<PhoneNumberMapping>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct PhoneNumberMapping {
    #[serde(rename = "metaPhoneNumberId")]
    pub meta_phone_number_id: String,
    pub arn: String,
}

json_objects!(EumEvent, EumContext, PhoneNumberMapping);
