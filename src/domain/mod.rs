//! Domain types: pure, I/O-free decoding of every inbound payload and building of every
//! outbound one.
//!
//! Inbound payloads are hostile: decoders never panic and return [`DecodeError`]s whose
//! messages name JSON paths, never customer data.
//!
//! * `model`: the wire shapes (serde types) of the SNS envelope, the EUM event, the Meta
//!   webhook and the Connect chat item, with how tolerant each part is.
//! * `envelope`: SQS body -> SNS notification (envelope or raw delivery).
//! * `eum`, `whatsapp_in`, `status`: EUM event -> customer messages and delivery receipts.
//! * `checks`: what ids, texts and WhatsApp ids must look like.
//! * `render`: how a customer message reads for the agent.
//! * `connect_item`: Connect chat streaming items (agent -> customer).
//! * `whatsapp_out`: Meta Cloud API bodies for SendWhatsAppMessage.
//! * `text`: splitting long texts to channel limits.
//! * `ids`: idempotency tokens and dedupe keys.
//! * `interactive`: bot menus (Connect interactive messages) to WhatsApp and back.
//! * `receipt`, `send_failure`: statuses of agent messages, as the agent sees them.

pub mod attachment;
pub mod chat;
mod checks;
pub mod connect_item;
pub mod content_check;
pub mod envelope;
pub mod error;
pub mod eum;
pub mod ids;
pub mod interactive;
pub mod model;
pub mod receipt;
pub mod render;
pub mod send_failure;
pub mod status;
pub mod text;
pub mod url_policy;
pub mod whatsapp_in;
pub mod whatsapp_out;

pub use attachment::{
    eum_object_key, extension_for_mime, human_size, plan_upload, sanitize_filename,
    AttachmentRules, Conversion, Refusal, UploadPlan, CONNECT_DEFAULT_EXTENSIONS,
    CONNECT_DEFAULT_MAX_BYTES,
};
pub use chat::{Customer, FileUpload, Piece, OPENING_TEXT_FOR_FILE};
pub use connect_item::{
    decode_chat_item, visibility, AttachmentRef, ChatItem, ContentType, ItemType, ParticipantRole,
    ATTACHMENT_APPROVED,
};
pub use envelope::{unwrap_sns, SnsMessage, MAX_BODY_BYTES};
pub use error::DecodeError;
pub use eum::{decode_eum_event, eum_phone_number_id_from_arn, InboundEvent};
pub use ids::{client_token, dedupe_key_chat_item, dedupe_key_inbound};
pub use render::REPLY_PREFIX;
pub use status::{DeliveryStatus, WINDOW_CLOSED_ERROR_CODE};
pub use text::{split_text, CONNECT_MESSAGE_MAX_CHARS};
pub use url_policy::{UrlAllowlist, DEFAULT_URL_ALLOWLIST};
pub use whatsapp_in::{
    limits, ContactCard, ContactPhone, CustomerMessage, Media, MediaKind, MessageContent,
};
pub use whatsapp_out::{
    mark_read, mark_read_with_typing, media_by_link, media_kind_for_mime, reaction, reactions,
    text_message, WHATSAPP_CAPTION_MAX_CHARS, WHATSAPP_TEXT_MAX_CHARS,
};

#[cfg(test)]
mod hostile_input_tests;
