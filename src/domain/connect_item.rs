//! Amazon Connect chat items streamed to SNS (StartContactStreaming), one per notification.
//!
//! Agent messages, attachments and events arrive here; only some must reach the customer:
//! the customer's own messages are streamed too (they would echo back), and agent-only
//! items are marked by the `MessageVisibility` attribute. Ids may be in the item or only in
//! the SNS attributes, so both are read (item first).

use serde_json::Value;

use super::envelope::{SnsMessage, MAX_BODY_BYTES};
use super::error::DecodeError;
use super::json::{self, Object};

/// Content types seen in Connect chat items (the `ContentType` field).
pub mod content_types {
    pub const CHAT_ENDED: &str = "application/vnd.amazonaws.connect.event.chat.ended";
    pub const PARTICIPANT_LEFT: &str = "application/vnd.amazonaws.connect.event.participant.left";
    pub const PARTICIPANT_JOINED: &str =
        "application/vnd.amazonaws.connect.event.participant.joined";
    pub const TRANSFER_SUCCEEDED: &str =
        "application/vnd.amazonaws.connect.event.transfer.succeeded";
    pub const TYPING: &str = "application/vnd.amazonaws.connect.event.typing";
    pub const MESSAGE_DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
    pub const MESSAGE_READ: &str = "application/vnd.amazonaws.connect.event.message.read";
    pub const TEXT_PLAIN: &str = "text/plain";
    pub const TEXT_MARKDOWN: &str = "text/markdown";
    pub const INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
    pub const INTERACTIVE_RESPONSE: &str =
        "application/vnd.amazonaws.connect.message.interactive.response";
    pub const JSON: &str = "application/json";
}

/// Participant roles (the `ParticipantRole` field).
pub mod roles {
    pub const AGENT: &str = "AGENT";
    pub const CUSTOMER: &str = "CUSTOMER";
    pub const SYSTEM: &str = "SYSTEM";
    pub const CUSTOM_BOT: &str = "CUSTOM_BOT";
}

/// `MessageVisibility` attribute values.
pub mod visibility {
    pub const CUSTOMER: &str = "CUSTOMER";
    pub const AGENT: &str = "AGENT";
    pub const ALL: &str = "ALL";
}

/// Attachment status meaning "scanned and allowed": only these are forwarded.
pub const ATTACHMENT_APPROVED: &str = "APPROVED";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemType {
    Message,
    Attachment,
    Event,
    /// Anything else Connect may add; kept so callers can log and skip it.
    Other(String),
}

impl ItemType {
    fn parse(s: &str) -> ItemType {
        match s {
            "MESSAGE" => ItemType::Message,
            "ATTACHMENT" => ItemType::Attachment,
            "EVENT" => ItemType::Event,
            other => ItemType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Message => "MESSAGE",
            ItemType::Attachment => "ATTACHMENT",
            ItemType::Event => "EVENT",
            ItemType::Other(s) => s,
        }
    }
}

/// One streamed chat item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatItem {
    /// Item id: the outbound dedupe key.
    pub id: String,
    pub item_type: ItemType,
    /// `ContentType`; for attachments without one, the first attachment's; else "".
    pub content_type: String,
    /// Message text (MESSAGE) or event payload (some EVENTs).
    pub content: Option<String>,
    /// "AGENT" | "CUSTOMER" | "SYSTEM" | "CUSTOM_BOT" | ...
    pub participant_role: String,
    pub display_name: Option<String>,
    pub contact_id: String,
    pub initial_contact_id: Option<String>,
    /// `MessageVisibility` SNS attribute: "CUSTOMER" | "AGENT" | "ALL".
    pub visibility: Option<String>,
    pub attachments: Vec<AttachmentRef>,
    /// ISO-8601 with milliseconds, as sent.
    pub absolute_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRef {
    pub attachment_id: String,
    pub name: String,
    pub content_type: String,
    /// "APPROVED" | "REJECTED" | "IN_PROGRESS" ...
    pub status: String,
}

impl AttachmentRef {
    /// Scanned and allowed: the only attachments we may forward.
    pub fn is_approved(&self) -> bool {
        self.status == ATTACHMENT_APPROVED
    }
}

impl ChatItem {
    /// Should this item be relayed to the customer? Visible to the customer (CUSTOMER or
    /// ALL; a missing attribute counts as ALL) and not written by the customer (an echo).
    pub fn is_for_customer(&self) -> bool {
        let visible = match self.visibility.as_deref() {
            None => true,
            Some(v) => {
                v.eq_ignore_ascii_case(visibility::CUSTOMER)
                    || v.eq_ignore_ascii_case(visibility::ALL)
            }
        };
        visible && !self.participant_role.eq_ignore_ascii_case(roles::CUSTOMER)
    }

    /// The chat is over for the customer: `chat.ended`, or the customer left.
    pub fn ends_session(&self) -> bool {
        self.item_type == ItemType::Event
            && (self.content_type == content_types::CHAT_ENDED
                || (self.content_type == content_types::PARTICIPANT_LEFT
                    && self.participant_role.eq_ignore_ascii_case(roles::CUSTOMER)))
    }

    /// Agent text to forward (MESSAGE with plain or markdown text).
    pub fn text(&self) -> Option<&str> {
        let is_text = self.content_type == content_types::TEXT_PLAIN
            || self.content_type == content_types::TEXT_MARKDOWN;
        if self.item_type == ItemType::Message && is_text {
            self.content.as_deref().filter(|c| !c.trim().is_empty())
        } else {
            None
        }
    }

    /// Attachments that passed scanning.
    pub fn approved_attachments(&self) -> impl Iterator<Item = &AttachmentRef> {
        self.attachments.iter().filter(|a| a.is_approved())
    }
}

/// Decodes the chat item carried by an SNS notification from the Connect streaming topic.
pub fn decode_chat_item(sns: &SnsMessage) -> Result<ChatItem, DecodeError> {
    let item = json::parse_object(&sns.message, "Connect chat item", MAX_BODY_BYTES)?;

    let id = json::req_id(&item, "Id", "Id", 256)?;
    let item_type = ItemType::parse(json::check_id(
        item_or_attr(&item, sns, "Type")?.ok_or(DecodeError::MissingField("Type"))?,
        "Type",
        64,
    )?);
    let participant_role = json::check_id(
        item_or_attr(&item, sns, "ParticipantRole")?
            .ok_or(DecodeError::MissingField("ParticipantRole"))?,
        "ParticipantRole",
        64,
    )?
    .to_string();
    let contact_id = json::check_id(
        item_or_attr(&item, sns, "ContactId")?.ok_or(DecodeError::MissingField("ContactId"))?,
        "ContactId",
        256,
    )?
    .to_string();
    let initial_contact_id = item_or_attr(&item, sns, "InitialContactId")?
        .map(|c| json::check_id(c, "InitialContactId", 256).map(str::to_string))
        .transpose()?;

    let attachments = match json::opt_array(&item, "Attachments", "Attachments")? {
        Some(list) => list
            .iter()
            .map(decode_attachment)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };

    let content_type = match item_or_attr(&item, sns, "ContentType")? {
        Some(ct) => json::check_len(ct, "ContentType", 256)?.to_string(),
        None => attachments
            .first()
            .map(|a: &AttachmentRef| a.content_type.clone())
            .unwrap_or_default(),
    };

    Ok(ChatItem {
        id,
        item_type,
        content_type,
        content: json::opt_str(&item, "Content", "Content")?.map(str::to_string),
        participant_role,
        display_name: json::opt_text(&item, "DisplayName", "DisplayName", 1024)?,
        contact_id,
        initial_contact_id,
        visibility: sns
            .attribute("MessageVisibility")
            .map(|v| json::check_id(v, "MessageAttributes.MessageVisibility", 64))
            .transpose()?
            .map(str::to_string),
        attachments,
        absolute_time: json::opt_text(&item, "AbsoluteTime", "AbsoluteTime", 64)?,
    })
}

/// A string field from the item, else the SNS attribute of the same name. Empty strings
/// count as absent; a wrongly typed item field is an error, not a reason to fall back.
fn item_or_attr<'a>(
    item: &'a Object,
    sns: &'a SnsMessage,
    key: &'static str,
) -> Result<Option<&'a str>, DecodeError> {
    let from_item = json::opt_str(item, key, key)?.filter(|s| !s.is_empty());
    Ok(from_item.or_else(|| sns.attribute(key).filter(|s| !s.is_empty())))
}

fn decode_attachment(v: &Value) -> Result<AttachmentRef, DecodeError> {
    let a = json::as_obj(v, "Attachments[]")?;
    let text = |key: &'static str, field: &'static str, max: usize| {
        json::opt_str(a, key, field)
            .and_then(|s| s.map(|s| json::check_len(s, field, max)).transpose())
            .map(|s| s.unwrap_or_default().to_string())
    };
    Ok(AttachmentRef {
        attachment_id: json::req_id(a, "AttachmentId", "Attachments[].AttachmentId", 256)?,
        name: text("AttachmentName", "Attachments[].AttachmentName", 1024)?,
        content_type: text("ContentType", "Attachments[].ContentType", 256)?,
        status: text("Status", "Attachments[].Status", 64)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::envelope::unwrap_sns;
    use super::*;
    use std::collections::HashMap;

    const CONTACT: &str = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d";

    fn fixture(body: &str) -> ChatItem {
        decode_chat_item(&unwrap_sns(body).unwrap()).unwrap()
    }

    fn raw(message: &str, attrs: &[(&str, &str)]) -> SnsMessage {
        SnsMessage {
            message: message.to_string(),
            message_id: None,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn fixture_agent_message() {
        let item = fixture(include_str!(
            "../../tests/fixtures/connect-message.sns.json"
        ));
        assert_eq!(item.id, "c2f0a3d4-1b5e-4c7a-9e8d-6f5a4b3c2d1e");
        assert_eq!(item.item_type, ItemType::Message);
        assert_eq!(item.content_type, content_types::TEXT_PLAIN);
        assert_eq!(
            item.content.as_deref(),
            Some("Hola Lucía, ¿me pasás el número de pedido?")
        );
        assert_eq!(item.text(), item.content.as_deref());
        assert_eq!(item.participant_role, "AGENT");
        assert_eq!(item.display_name.as_deref(), Some("Martina (agente)"));
        assert_eq!(item.contact_id, CONTACT);
        assert_eq!(item.initial_contact_id.as_deref(), Some(CONTACT));
        assert_eq!(item.visibility.as_deref(), Some("ALL"));
        assert_eq!(
            item.absolute_time.as_deref(),
            Some("2026-11-20T14:05:02.117Z")
        );
        assert!(item.attachments.is_empty());
        assert!(item.is_for_customer());
        assert!(!item.ends_session());
    }

    #[test]
    fn fixture_attachment() {
        let item = fixture(include_str!(
            "../../tests/fixtures/connect-attachment.sns.json"
        ));
        assert_eq!(item.item_type, ItemType::Attachment);
        // No ContentType in the item: taken from the SNS attribute.
        assert_eq!(item.content_type, "application/pdf");
        assert_eq!(
            item.attachments,
            vec![AttachmentRef {
                attachment_id: "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b".into(),
                name: "instructivo.pdf".into(),
                content_type: "application/pdf".into(),
                status: "APPROVED".into(),
            }]
        );
        assert!(item.attachments[0].is_approved());
        assert_eq!(item.approved_attachments().count(), 1);
        assert!(item.is_for_customer());
        assert_eq!(item.text(), None);
    }

    #[test]
    fn fixture_chat_ended() {
        let item = fixture(include_str!(
            "../../tests/fixtures/connect-chat-ended.sns.json"
        ));
        assert_eq!(item.item_type, ItemType::Event);
        assert_eq!(item.content_type, content_types::CHAT_ENDED);
        assert_eq!(item.participant_role, "SYSTEM");
        assert!(item.ends_session());
    }

    #[test]
    fn fixture_customer_echo() {
        let item = fixture(include_str!(
            "../../tests/fixtures/connect-customer-echo.sns.json"
        ));
        assert_eq!(item.participant_role, "CUSTOMER");
        assert!(!item.is_for_customer());
        assert!(!item.ends_session());
    }

    #[test]
    fn visibility_and_role_rules() {
        let item = |vis: Option<&str>, role: &str| {
            let mut attrs = vec![];
            if let Some(v) = vis {
                attrs.push(("MessageVisibility", v));
            }
            decode_chat_item(&raw(
                &format!(r#"{{"Id":"i","Type":"MESSAGE","ContentType":"text/plain","Content":"x","ParticipantRole":"{role}","ContactId":"c"}}"#),
                &attrs,
            ))
            .unwrap()
        };
        assert!(item(None, "AGENT").is_for_customer());
        assert!(item(Some("ALL"), "AGENT").is_for_customer());
        assert!(item(Some("CUSTOMER"), "CUSTOM_BOT").is_for_customer());
        assert!(item(Some("CUSTOMER"), "SYSTEM").is_for_customer());
        assert!(!item(Some("AGENT"), "AGENT").is_for_customer());
        assert!(!item(Some("ALL"), "CUSTOMER").is_for_customer());
        assert!(!item(None, "CUSTOMER").is_for_customer());
    }

    #[test]
    fn ends_session_rules() {
        let ev = |ct: &str, role: &str| {
            decode_chat_item(&raw(
                &format!(r#"{{"Id":"i","Type":"EVENT","ContentType":"{ct}","ParticipantRole":"{role}","ContactId":"c"}}"#),
                &[],
            ))
            .unwrap()
        };
        assert!(ev(content_types::CHAT_ENDED, "SYSTEM").ends_session());
        assert!(ev(content_types::PARTICIPANT_LEFT, "CUSTOMER").ends_session());
        assert!(!ev(content_types::PARTICIPANT_LEFT, "AGENT").ends_session());
        assert!(!ev(content_types::PARTICIPANT_JOINED, "CUSTOMER").ends_session());
        assert!(!ev(content_types::TYPING, "AGENT").ends_session());
        // A MESSAGE that merely has that content type does not end anything.
        let m = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"MESSAGE","ContentType":"application/vnd.amazonaws.connect.event.chat.ended","ParticipantRole":"SYSTEM","ContactId":"c"}"#,
            &[],
        ))
        .unwrap();
        assert!(!m.ends_session());
    }

    #[test]
    fn ids_fall_back_to_attributes() {
        let item = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"MESSAGE","ContentType":"text/plain","Content":"x"}"#,
            &[
                ("ContactId", "c-attr"),
                ("InitialContactId", "ic-attr"),
                ("ParticipantRole", "AGENT"),
            ],
        ))
        .unwrap();
        assert_eq!(item.contact_id, "c-attr");
        assert_eq!(item.initial_contact_id.as_deref(), Some("ic-attr"));
        assert_eq!(item.participant_role, "AGENT");

        // The item wins over the attributes.
        let item = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"MESSAGE","ParticipantRole":"AGENT","ContactId":"c-item"}"#,
            &[("ContactId", "c-attr")],
        ))
        .unwrap();
        assert_eq!(item.contact_id, "c-item");
        assert_eq!(item.initial_contact_id, None);
        assert_eq!(item.content_type, "");
    }

    #[test]
    fn other_types_are_kept() {
        let item = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"NEW_THING","ParticipantRole":"SYSTEM","ContactId":"c"}"#,
            &[],
        ))
        .unwrap();
        assert_eq!(item.item_type, ItemType::Other("NEW_THING".into()));
        assert_eq!(item.item_type.as_str(), "NEW_THING");
        assert!(!item.ends_session());
    }

    #[test]
    fn attachment_statuses() {
        let item = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"ATTACHMENT","ParticipantRole":"AGENT","ContactId":"c","Attachments":[
                {"AttachmentId":"a1","AttachmentName":"x.png","ContentType":"image/png","Status":"IN_PROGRESS"},
                {"AttachmentId":"a2","AttachmentName":"y.pdf","ContentType":"application/pdf","Status":"APPROVED"},
                {"AttachmentId":"a3"}]}"#,
            &[],
        ))
        .unwrap();
        assert_eq!(item.content_type, "image/png");
        let ids: Vec<_> = item
            .approved_attachments()
            .map(|a| a.attachment_id.as_str())
            .collect();
        assert_eq!(ids, ["a2"]);
        assert_eq!(item.attachments[2].status, "");
    }

    #[test]
    fn invalid_items() {
        let ok_tail = r#""ParticipantRole":"AGENT","ContactId":"c""#;
        let cases = [
            "not json".to_string(),
            "[]".to_string(),
            "{}".to_string(),
            format!(r#"{{"Type":"MESSAGE",{ok_tail}}}"#),
            format!(r#"{{"Id":"","Type":"MESSAGE",{ok_tail}}}"#),
            format!(r#"{{"Id":"i",{ok_tail}}}"#),
            format!(r#"{{"Id":"i","Type":5,{ok_tail}}}"#),
            r#"{"Id":"i","Type":"MESSAGE","ContactId":"c"}"#.to_string(),
            r#"{"Id":"i","Type":"MESSAGE","ParticipantRole":"AGENT"}"#.to_string(),
            format!(r#"{{"Id":"i","Type":"MESSAGE","Content":7,{ok_tail}}}"#),
            format!(r#"{{"Id":"i","Type":"ATTACHMENT","Attachments":{{}},{ok_tail}}}"#),
            format!(
                r#"{{"Id":"i","Type":"ATTACHMENT","Attachments":[{{"Status":"APPROVED"}}],{ok_tail}}}"#
            ),
            format!(r#"{{"Id":"i","Type":"ATTACHMENT","Attachments":[5],{ok_tail}}}"#),
            r#"{"Id":"i","Type":"MESSAGE","ContactId":["c"],"ParticipantRole":"AGENT"}"#
                .to_string(),
            format!("{{\"Id\":{}}}", "[".repeat(3000)),
            format!(
                "{{\"Id\":\"i\",\"pad\":\"{}\"}}",
                "x".repeat(MAX_BODY_BYTES)
            ),
        ];
        for c in cases {
            assert!(
                decode_chat_item(&raw(&c, &[])).is_err(),
                "{}",
                &c[..c.len().min(80)]
            );
        }
    }

    #[test]
    fn errors_do_not_quote_agent_text() {
        let e = decode_chat_item(&raw(
            r#"{"Id":"i","Type":"MESSAGE","Content":"SECRET","ContactId":"c"}"#,
            &[],
        ))
        .unwrap_err();
        assert!(!e.reason().contains("SECRET"));
    }
}
