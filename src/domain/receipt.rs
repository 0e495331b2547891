//! Which Connect chat item a WhatsApp message carried, so its delivery statuses can be
//! shown to the agent (`message.delivered`, `message.read`) and its failures told.
//!
//! Two ways, both kept: every agent message is sent with Meta's
//! `biz_opaque_callback_data` = [`AgentMessageRef::callback_data`], which Meta echoes in
//! every status of that message; and the WhatsApp message id is recorded durably
//! ([`message_key`]) in case a status comes without it.

use std::fmt;

use serde_json::json;

/// Meta's limit for `biz_opaque_callback_data`.
pub const CALLBACK_DATA_MAX_CHARS: usize = 512;
/// Callback data of our acknowledgements (reactions): their statuses are known at once
/// not to be about an agent message, with no lookup.
pub const ACKNOWLEDGEMENT_CALLBACK: &str = "waconnect-ack";
/// Longest id (contact or item) we put in callback data; Connect's are 36-character UUIDs.
const MAX_ID_CHARS: usize = 128;

/// Connect event content types of receipts and typing.
pub const EVENT_DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
pub const EVENT_READ: &str = "application/vnd.amazonaws.connect.event.message.read";

/// One WhatsApp message that carried (part of) an agent's chat item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMessageRef {
    /// The contact id of the chat's session (the key its session is stored under).
    pub contact_id: String,
    /// The Connect chat item id.
    pub item_id: String,
    /// Which WhatsApp message of the item (an item with several files sends several);
    /// 0 for the first or only one.
    pub part: usize,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl AgentMessageRef {
    /// `<contact id>|<item id>`, or `<contact id>|<item id>|<part>` for parts after the
    /// first. None when an id could not be read back (not what Connect gives).
    pub fn callback_data(&self) -> Option<String> {
        if !valid_id(&self.contact_id) || !valid_id(&self.item_id) {
            return None;
        }
        Some(match self.part {
            0 => format!("{}|{}", self.contact_id, self.item_id),
            n => format!("{}|{}|{n}", self.contact_id, self.item_id),
        })
    }

    /// Reads [`AgentMessageRef::callback_data`] back; None for anything else (callback
    /// data is echoed from the webhook: hostile like the rest of it).
    pub fn parse(data: &str) -> Option<Self> {
        if data.len() > CALLBACK_DATA_MAX_CHARS {
            return None;
        }
        let mut parts = data.split('|');
        let contact_id = parts.next().filter(|s| valid_id(s))?.to_string();
        let item_id = parts.next().filter(|s| valid_id(s))?.to_string();
        let part = match parts.next() {
            None => 0,
            Some(n) if n.len() <= 3 => n.parse().ok().filter(|n| *n > 0)?,
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            contact_id,
            item_id,
            part,
        })
    }
}

impl fmt::Display for AgentMessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.contact_id, self.item_id, self.part)
    }
}

/// Dedupe-table key of the record "WhatsApp message `wamid` carried this agent item"
/// (value: its callback data).
pub fn message_key(wamid: &str) -> String {
    format!("wamsg#{wamid}")
}

/// Dedupe-table key of the record "part `part` of agent item `item_id` reached WhatsApp"
/// (value: the WhatsApp message id).
pub fn sent_key(item_id: &str, part: usize) -> String {
    match part {
        0 => format!("wa-sent#{item_id}"),
        n => format!("wa-sent#{item_id}#{n}"),
    }
}

/// Dedupe-table key of the numbered text menu last sent to a customer of a business
/// number (value: [`crate::domain::interactive::TextMenu`] JSON).
pub fn text_menu_key(business_number_id: &str, customer_id: &str) -> String {
    format!("menu#{business_number_id}#{customer_id}")
}

/// The SendEvent content of a receipt for chat item `item_id`.
pub fn receipt_content(item_id: &str) -> String {
    json!({ "messageId": item_id }).to_string()
}

/// What a WhatsApp status becomes for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// `sent`: recorded (the item reached WhatsApp), nothing shown (Connect has no such
    /// receipt).
    Sent,
    /// `delivered` -> `message.delivered`.
    Delivered,
    /// `read` -> `message.read`.
    Read,
    /// `failed` -> a notice to the agent.
    Failed,
    /// Anything else (`deleted`, `warning`, ...): nothing.
    Other,
}

impl ReceiptKind {
    pub fn of(status: &str) -> Self {
        match status {
            "sent" => ReceiptKind::Sent,
            "delivered" => ReceiptKind::Delivered,
            "read" => ReceiptKind::Read,
            "failed" => ReceiptKind::Failed,
            _ => ReceiptKind::Other,
        }
    }

    /// The Connect event for it, if any.
    pub fn event(self) -> Option<&'static str> {
        match self {
            ReceiptKind::Delivered => Some(EVENT_DELIVERED),
            ReceiptKind::Read => Some(EVENT_READ),
            _ => None,
        }
    }

    /// The status reached WhatsApp's servers (or further).
    pub fn reached_whatsapp(self) -> bool {
        matches!(
            self,
            ReceiptKind::Sent | ReceiptKind::Delivered | ReceiptKind::Read
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentType;

    const C: &str = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d";
    const I: &str = "c2f0a3d4-1b5e-4c7a-9e8d-6f5a4b3c2d1e";

    #[test]
    fn callback_data_round_trips_within_metas_limit() {
        let r = AgentMessageRef {
            contact_id: C.into(),
            item_id: I.into(),
            part: 0,
        };
        let data = r.callback_data().unwrap();
        assert_eq!(data, format!("{C}|{I}"));
        assert!(data.len() <= CALLBACK_DATA_MAX_CHARS);
        assert_eq!(AgentMessageRef::parse(&data), Some(r.clone()));
        let second = AgentMessageRef { part: 2, ..r };
        let data = second.callback_data().unwrap();
        assert_eq!(data, format!("{C}|{I}|2"));
        assert_eq!(AgentMessageRef::parse(&data), Some(second));
    }

    #[test]
    fn foreign_or_hostile_callback_data_is_refused() {
        for bad in [
            "",
            "x",
            "a|",
            "|b",
            "a|b|0",
            "a|b|x",
            "a|b|1|2",
            "a|b|1234",
            "a b|c",
            "a|<script>",
            &format!("{}|b", "a".repeat(200)),
        ] {
            assert_eq!(AgentMessageRef::parse(bad), None, "{bad:?}");
        }
        let odd = AgentMessageRef {
            contact_id: "has|pipe".into(),
            item_id: I.into(),
            part: 0,
        };
        assert_eq!(odd.callback_data(), None);
    }

    #[test]
    fn keys_and_contents() {
        assert_eq!(message_key("wamid.X"), "wamsg#wamid.X");
        assert_eq!(sent_key("i1", 0), "wa-sent#i1");
        assert_eq!(sent_key("i1", 3), "wa-sent#i1#3");
        assert_eq!(
            text_menu_key("phone-number-id-a", "549"),
            "menu#phone-number-id-a#549"
        );
        assert_eq!(receipt_content("i1"), r#"{"messageId":"i1"}"#);
        assert_eq!(EVENT_DELIVERED, ContentType::MessageDelivered.as_str());
        assert_eq!(EVENT_READ, ContentType::MessageRead.as_str());
    }

    #[test]
    fn statuses_map_to_receipts() {
        assert_eq!(ReceiptKind::of("delivered").event(), Some(EVENT_DELIVERED));
        assert_eq!(ReceiptKind::of("read").event(), Some(EVENT_READ));
        assert_eq!(ReceiptKind::of("sent").event(), None);
        assert!(ReceiptKind::of("sent").reached_whatsapp());
        assert!(!ReceiptKind::of("failed").reached_whatsapp());
        assert_eq!(ReceiptKind::of("deleted"), ReceiptKind::Other);
    }
}
