//! An Amazon Connect chat item streamed to SNS (StartContactStreaming): the `Message` of a
//! notification on the streaming topic.
//!
//! ```json
//! {"Id": "...", "Type": "MESSAGE", "ContentType": "text/plain", "Content": "...",
//!  "ParticipantId": "...", "ParticipantRole": "AGENT", "DisplayName": "...",
//!  "ContactId": "...", "InitialContactId": "...", "AbsoluteTime": "2026-11-20T14:05:02.117Z",
//!  "Attachments": [{"AttachmentId": "...", "AttachmentName": "...",
//!                   "ContentType": "application/pdf", "Status": "APPROVED"}]}
//! ```
//!
//! `Type`, `ParticipantRole`, `ContactId`, `InitialContactId` and `ContentType` are also
//! sent as SNS message attributes, and some items carry them only there; the item is read
//! first (see `domain::connect_item`). The enums below name the values; each keeps an
//! unknown value as it came, so a new one can be logged and skipped.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::json_objects;
use super::tolerant::Lenient;

/// One chat item. Only `Id` is required here; the ids that may come from the attributes
/// instead are checked once both are known.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase")]
pub struct ConnectItem {
    pub id: String,
    /// "MESSAGE", "ATTACHMENT", "EVENT" (see `domain::ItemType`).
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// See [`ContentType`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The text (MESSAGE), or an event's payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Lenient::is_none")]
    pub participant_id: Lenient<String>,
    /// See [`ParticipantRole`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_contact_id: Option<String>,
    /// ISO-8601 with milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<ConnectAttachment>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase")]
pub struct ConnectAttachment {
    pub attachment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// "APPROVED" (scanned and allowed), "REJECTED", "IN_PROGRESS".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

json_objects!(ConnectItem, ConnectAttachment);

/// Declares a string enum with an `Other(String)` variant for values not listed.
macro_rules! open_enum {
    ($(#[$meta:meta])* $Name:ident { $($(#[$vmeta:meta])* $Variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $Name {
            $($(#[$vmeta])* $Variant,)*
            /// A value this version does not know, as it came.
            Other(String),
        }

        impl $Name {
            /// Every known value, as on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($text),*];

            /// The known value this text names (exactly), else [`Self::Other`].
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => $Name::$Variant,)*
                    other => $Name::Other(other.to_string()),
                }
            }

            /// The value as on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($Name::$Variant => $text,)*
                    $Name::Other(other) => other,
                }
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// `ContentType` of a chat item: texts, interactive messages and events.
    ContentType {
        TextPlain = "text/plain",
        TextMarkdown = "text/markdown",
        /// An interactive message (list picker, time picker, panel...) sent to the customer.
        Interactive = "application/vnd.amazonaws.connect.message.interactive",
        /// The customer's answer to an interactive message.
        InteractiveResponse = "application/vnd.amazonaws.connect.message.interactive.response",
        Json = "application/json",
        Typing = "application/vnd.amazonaws.connect.event.typing",
        ParticipantJoined = "application/vnd.amazonaws.connect.event.participant.joined",
        ParticipantLeft = "application/vnd.amazonaws.connect.event.participant.left",
        ParticipantIdle = "application/vnd.amazonaws.connect.event.participant.idle",
        ParticipantReturned = "application/vnd.amazonaws.connect.event.participant.returned",
        TransferSucceeded = "application/vnd.amazonaws.connect.event.transfer.succeeded",
        TransferFailed = "application/vnd.amazonaws.connect.event.transfer.failed",
        MessageDelivered = "application/vnd.amazonaws.connect.event.message.delivered",
        MessageRead = "application/vnd.amazonaws.connect.event.message.read",
        ChatEnded = "application/vnd.amazonaws.connect.event.chat.ended",
    }
}

impl ContentType {
    /// An event (`application/vnd.amazonaws.connect.event.*`), known or not.
    pub fn is_event(&self) -> bool {
        self.as_str()
            .starts_with("application/vnd.amazonaws.connect.event.")
    }
}

open_enum! {
    /// `ParticipantRole` of a chat item.
    ParticipantRole {
        Agent = "AGENT",
        Customer = "CUSTOMER",
        System = "SYSTEM",
        CustomBot = "CUSTOM_BOT",
        Supervisor = "SUPERVISOR",
    }
}

impl ParticipantRole {
    /// Like [`ParticipantRole::parse`], ignoring ASCII case (the role decides whether an
    /// item is the customer's own echo, so "customer" must not slip through).
    pub fn parse_any_case(text: &str) -> Self {
        let upper = text.to_ascii_uppercase();
        match ParticipantRole::parse(&upper) {
            ParticipantRole::Other(_) => ParticipantRole::Other(text.to_string()),
            known => known,
        }
    }
}
