//! Amazon Connect chat items streamed to SNS (StartContactStreaming), one per notification.
//!
//! Agent messages, attachments and events arrive here; only some must reach the customer:
//! the customer's own messages are streamed too (they would echo back), and agent-only
//! items are marked by the `MessageVisibility` attribute. Ids may be in the item or only in
//! the SNS attributes, so both are read (item first).

use super::checks::{check_id, check_len, opt_text};
use super::envelope::{SnsMessage, MAX_BODY_BYTES};
use super::error::DecodeError;
use super::model::connect_item::{ConnectAttachment, ConnectItem};
use super::model::decode_str;

pub use super::model::connect_item::{ContentType, ParticipantRole};

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
    /// [`ChatItem::content_kind`] names it.
    pub content_type: String,
    /// Message text (MESSAGE) or event payload (some EVENTs).
    pub content: Option<String>,
    /// AGENT, CUSTOMER, SYSTEM, CUSTOM_BOT... (read ignoring case).
    pub participant_role: ParticipantRole,
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
    /// The content type as a [`ContentType`].
    pub fn content_kind(&self) -> ContentType {
        ContentType::parse(&self.content_type)
    }

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
        visible && self.participant_role != ParticipantRole::Customer
    }

    /// The chat is over for the customer: `chat.ended`, or the customer left.
    pub fn ends_session(&self) -> bool {
        self.item_type == ItemType::Event
            && match self.content_kind() {
                ContentType::ChatEnded => true,
                ContentType::ParticipantLeft => self.participant_role == ParticipantRole::Customer,
                _ => false,
            }
    }

    /// A human agent joined the chat (the contact flow or a bot handled it until now).
    pub fn agent_joined(&self) -> bool {
        self.item_type == ItemType::Event
            && self.content_kind() == ContentType::ParticipantJoined
            && self.participant_role == ParticipantRole::Agent
    }

    /// Agent text to forward (MESSAGE with plain or markdown text).
    pub fn text(&self) -> Option<&str> {
        let is_text = matches!(
            self.content_kind(),
            ContentType::TextPlain | ContentType::TextMarkdown
        );
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
    let item: ConnectItem = decode_str(&sns.message, "Connect chat item", MAX_BODY_BYTES)?;

    let id = check_id(&item.id, "Id", 256)?.to_string();
    let required = |value: Option<&'_ str>, key: &'static str, max: usize| {
        let value = item_or_attr(value, sns, key).ok_or_else(|| DecodeError::missing(key))?;
        check_id(value, key, max).map(str::to_string)
    };
    let item_type = ItemType::parse(&required(item.kind.as_deref(), "Type", 64)?);
    let participant_role = ParticipantRole::parse_any_case(&required(
        item.participant_role.as_deref(),
        "ParticipantRole",
        64,
    )?);
    let contact_id = required(item.contact_id.as_deref(), "ContactId", 256)?;
    let initial_contact_id =
        item_or_attr(item.initial_contact_id.as_deref(), sns, "InitialContactId")
            .map(|c| check_id(c, "InitialContactId", 256).map(str::to_string))
            .transpose()?;

    let attachments = item
        .attachments
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| decode_attachment(a).map_err(|e| e.within(&format!("Attachments[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;

    let content_type = match item_or_attr(item.content_type.as_deref(), sns, "ContentType") {
        Some(ct) => check_len(ct, "ContentType", 256)?.to_string(),
        None => attachments
            .first()
            .map(|a: &AttachmentRef| a.content_type.clone())
            .unwrap_or_default(),
    };

    Ok(ChatItem {
        id,
        item_type,
        content_type,
        content: item.content,
        participant_role,
        display_name: opt_text(item.display_name.as_ref(), "DisplayName", 1024)?,
        contact_id,
        initial_contact_id,
        visibility: sns
            .attribute("MessageVisibility")
            .map(|v| check_id(v, "MessageAttributes.MessageVisibility", 64))
            .transpose()?
            .map(str::to_string),
        attachments,
        absolute_time: opt_text(item.absolute_time.as_ref(), "AbsoluteTime", 64)?,
    })
}

/// A value from the item, else the SNS attribute of the same name. Empty strings count as
/// absent; a wrongly typed item field already failed decoding (no fallback then).
fn item_or_attr<'a>(
    from_item: Option<&'a str>,
    sns: &'a SnsMessage,
    key: &'static str,
) -> Option<&'a str> {
    from_item
        .filter(|s| !s.is_empty())
        .or_else(|| sns.attribute(key).filter(|s| !s.is_empty()))
}

/// One attachment; error paths relative to it.
fn decode_attachment(a: &ConnectAttachment) -> Result<AttachmentRef, DecodeError> {
    let text = |value: &Option<String>, field: &str, max: usize| {
        value
            .as_deref()
            .map(|s| check_len(s, field, max).map(str::to_string))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(AttachmentRef {
        attachment_id: check_id(&a.attachment_id, "AttachmentId", 256)?.to_string(),
        name: text(&a.attachment_name, "AttachmentName", 1024)?,
        content_type: text(&a.content_type, "ContentType", 256)?,
        status: text(&a.status, "Status", 64)?,
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
        assert_eq!(item.content_kind(), ContentType::TextPlain);
        assert_eq!(
            item.content.as_deref(),
            Some("Hola Lucía, ¿me pasás el número de pedido?")
        );
        assert_eq!(item.text(), item.content.as_deref());
        assert_eq!(item.participant_role, ParticipantRole::Agent);
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
        assert_eq!(item.content_kind(), ContentType::ChatEnded);
        assert_eq!(item.participant_role, ParticipantRole::System);
        assert!(item.ends_session());
    }

    #[test]
    fn fixture_customer_echo() {
        let item = fixture(include_str!(
            "../../tests/fixtures/connect-customer-echo.sns.json"
        ));
        assert_eq!(item.participant_role, ParticipantRole::Customer);
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
        assert!(ev(ContentType::ChatEnded.as_str(), "SYSTEM").ends_session());
        assert!(ev(ContentType::ParticipantLeft.as_str(), "CUSTOMER").ends_session());
        assert!(!ev(ContentType::ParticipantLeft.as_str(), "AGENT").ends_session());
        assert!(!ev(ContentType::ParticipantJoined.as_str(), "CUSTOMER").ends_session());
        assert!(!ev(ContentType::Typing.as_str(), "AGENT").ends_session());
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
        assert_eq!(item.participant_role, ParticipantRole::Agent);

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
