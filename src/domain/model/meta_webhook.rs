//! The Meta Cloud API webhook entry (WhatsApp Business Account, field `messages`), as EUM
//! forwards it in `whatsAppWebhookEntry`.
//!
//! ```json
//! {"id": "WABA_ID", "changes": [{"field": "messages", "value": {
//!     "messaging_product": "whatsapp",
//!     "metadata": {"display_phone_number": "...", "phone_number_id": "..."},
//!     "contacts": [{"profile": {"name": "..."}, "wa_id": "..."}],
//!     "messages": [{"from": "...", "id": "wamid...", "timestamp": "...", "type": "text",
//!                   "text": {"body": "..."}}],
//!     "statuses": [{"id": "wamid...", "status": "failed", "timestamp": "...",
//!                   "recipient_id": "...", "errors": [{"code": 131047, ...}]}],
//!     "errors": [...]}}]}
//! ```
//!
//! Each message and each status is a [`Part`]: one malformed element is reported and the
//! others are delivered. A message's body sits under the key named by its `type`; the
//! bodies are parts too, so a malformed body of another type does not matter.

use serde::{Deserialize, Serialize};

use super::json_objects;
use super::tolerant::{FiniteNumber, Lenient, MetaInt, Part};

/// One webhook entry. `changes` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct WebhookEntry {
    /// The WhatsApp Business Account id.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub id: Lenient<String>,
    pub changes: Vec<Part<Change>>,
}

/// One change. Only `field: "messages"` is a conversation; other fields (template status,
/// account updates...) carry other values and are skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Change {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub field: Lenient<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Part<ChangeValue>>,
}

/// The value of a `messages` change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ChangeValue {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub messaging_product: Lenient<String>,
    /// Which business number was written to; needed only when there are messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Part<Metadata>>,
    /// Senders' profiles, display-only: malformed ones are skipped.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub contacts: Lenient<Vec<Lenient<ContactProfile>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Part<Vec<Part<WebhookMessage>>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Part<Vec<Part<WebhookStatus>>>>,
    /// Errors not attached to a message (worth a log line).
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub errors: Lenient<Vec<Lenient<MetaError>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub display_phone_number: Lenient<String>,
    pub phone_number_id: String,
}

/// `contacts[]`: who sent the messages of this change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ContactProfile {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub profile: Lenient<Profile>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub wa_id: Lenient<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub name: Lenient<String>,
}

/// One customer message. `id` and `from` are required; `type` says which body applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct WebhookMessage {
    pub id: String,
    pub from: String,
    /// Unix seconds as a string; a malformed one reads as absent.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub timestamp: Lenient<MetaInt>,
    /// "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    /// "interactive", "button", "reaction", "unsupported", or a type Meta adds later.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Set when the customer quoted a message ("reply"), or forwarded one (no `id` then).
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub context: Lenient<MessageContext>,
    /// Meta could not deliver the message to us (unsupported type, too large...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Lenient<MetaError>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Part<TextBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Part<MediaBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Part<MediaBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Part<MediaBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Part<MediaBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Part<MediaBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Part<LocationBody>>,
    /// Shared contact cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Part<Vec<ContactCardBody>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Part<InteractiveBody>>,
    /// A quick-reply button of a template message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Part<ButtonBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<Part<ReactionBody>>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub unsupported: Lenient<UnsupportedBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MessageContext {
    /// wamid of the quoted message.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub id: Lenient<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub from: Lenient<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub forwarded: Lenient<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct TextBody {
    pub body: String,
}

/// image, video, audio, document and sticker bodies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MediaBody {
    /// Media id for GetWhatsAppMessageMedia.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio recorded as a voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Animated sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct LocationBody {
    pub latitude: FiniteNumber,
    pub longitude: FiniteNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One shared contact card (addresses, org, urls and birthday are not read).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ContactCardBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<CardName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<CardPhone>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<CardEmail>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CardName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted_name: Option<String>,
    /// Read only without `formatted_name`, so checked only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<Part<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<Part<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CardPhone {
    /// As written on the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// "CELL", "HOME", "WORK"...; read (and checked) only for a phone that has a number.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Part<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CardEmail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// "HOME", "WORK"; not read.
    #[serde(rename = "type", default, skip_serializing_if = "Lenient::is_none")]
    pub kind: Lenient<String>,
}

/// A reply to an interactive message: `type` names the body that applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct InteractiveBody {
    /// "button_reply", "list_reply", "nfm_reply" (a Flow's answer), or a later addition.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<Part<ReplyChoice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<Part<ReplyChoice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfm_reply: Option<Part<FlowReply>>,
}

/// The choice of a reply button (`button_reply`) or of a list row (`list_reply`, which
/// may carry the row's description).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ReplyChoice {
    /// The id our message gave the button or row.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A Flow's answer (`nfm_reply`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FlowReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The answers, a JSON text; not read yet.
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub response_json: Lenient<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ButtonBody {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ReactionBody {
    /// wamid of the message reacted to.
    pub message_id: String,
    /// Absent or empty when the reaction was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct UnsupportedBody {
    /// What it was ("edit", "poll"...).
    #[serde(rename = "type", default, skip_serializing_if = "Lenient::is_none")]
    pub kind: Lenient<String>,
}

/// A delivery receipt for a message we sent. `id` and `status` are required; the rest is
/// advisory and reads as absent when malformed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct WebhookStatus {
    pub id: String,
    /// "sent", "delivered", "read", "failed", "deleted"...
    pub status: String,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub recipient_id: Lenient<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub timestamp: Lenient<MetaInt>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub errors: Lenient<Vec<Lenient<MetaError>>>,
    /// What we attached to the message when sending it (`biz_opaque_callback_data`).
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub biz_opaque_callback_data: Lenient<String>,
}

/// A Meta error object: in `statuses[].errors[]`, `messages[].errors[]` and
/// `value.errors[]`. Every part is advisory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MetaError {
    /// e.g. 131047 (more than 24 hours since the customer last wrote).
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub code: Lenient<MetaInt>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub title: Lenient<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub message: Lenient<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub error_data: Lenient<MetaErrorData>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MetaErrorData {
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub details: Lenient<String>,
}

json_objects!(
    WebhookEntry,
    Change,
    ChangeValue,
    Metadata,
    ContactProfile,
    Profile,
    WebhookMessage,
    MessageContext,
    TextBody,
    MediaBody,
    LocationBody,
    ContactCardBody,
    CardName,
    CardPhone,
    CardEmail,
    InteractiveBody,
    ReplyChoice,
    FlowReply,
    ButtonBody,
    ReactionBody,
    UnsupportedBody,
    WebhookStatus,
    MetaError,
    MetaErrorData,
);
