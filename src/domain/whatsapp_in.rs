//! Customer messages from the Meta Cloud API webhook (`value.messages[]`), one by one.
//!
//! Each message is a [`WebhookMessage`] decoded on its own, so one malformed message cannot
//! sink the others in the same event (see `eum.rs`); here it becomes a [`CustomerMessage`]. Limits below are generous upper bounds of what WhatsApp
//! itself allows; longer values are refused with a typed error, never truncated silently,
//! except for the display-only profile name (see [`limits::MAX_NAME_CHARS`]).

use std::collections::HashMap;

use super::checks::{check_id, check_len, opt_text, req_text, safe_token, wa_id};
use super::error::DecodeError;
use super::model::meta_webhook::{
    ContactCardBody, InteractiveBody, LocationBody, MediaBody, MetaError, WebhookMessage,
};
use super::model::Part;

/// Size limits applied while decoding (characters unless noted).
pub mod limits {
    /// Meta message ids (`wamid.…`) are ~60 bytes; 256 leaves room and bounds storage keys.
    pub const MAX_WAMID_CHARS: usize = 256;
    /// WhatsApp ids are E.164 numbers without `+`: at most 15 digits, 20 to be safe.
    pub const MAX_WA_ID_DIGITS: usize = 20;
    /// WhatsApp text messages carry up to 4096 characters.
    pub const MAX_TEXT_CHARS: usize = 4096;
    /// Media captions (WhatsApp allows 1024 when sending; accept up to a text's size).
    pub const MAX_CAPTION_CHARS: usize = 4096;
    /// Media ids, MIME types, file names.
    pub const MAX_MEDIA_ID_CHARS: usize = 256;
    pub const MAX_MIME_CHARS: usize = 255;
    pub const MAX_FILENAME_CHARS: usize = 512;
    /// Short descriptive strings: location name/address, button and list titles, ids, payloads.
    pub const MAX_SHORT_CHARS: usize = 1024;
    pub const MAX_URL_CHARS: usize = 2048;
    /// Shared contact cards per message, and phones/emails per card.
    pub const MAX_CONTACT_CARDS: usize = 50;
    pub const MAX_CARD_ENTRIES: usize = 20;
    /// A reaction is one emoji (possibly a multi-code-point sequence).
    pub const MAX_EMOJI_CHARS: usize = 32;
    /// Profile names are display-only: longer ones are cut to this (Connect's display name
    /// limit is 256) rather than refusing the customer's message.
    pub const MAX_NAME_CHARS: usize = 256;
}

use limits::*;

/// One message a customer sent on WhatsApp.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMessage {
    /// Meta message id (`wamid.…`): the dedupe key and what reactions/replies refer to.
    pub wamid: String,
    /// Customer WhatsApp id (`from`): digits only, no `+`.
    pub customer_id: String,
    /// Profile name from `contacts[]`, matched by `wa_id`.
    pub customer_name: Option<String>,
    /// Unix seconds when the customer sent it.
    pub timestamp: i64,
    /// EUM phone number id (`phone-number-id-<suffix>`) of the business number written to.
    pub business_number_id: String,
    /// `context.id`: the message this one quotes, when the customer used "reply".
    pub reply_to: Option<String>,
    pub content: MessageContent,
}

/// What the customer sent.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// image, video, audio (incl. voice notes), document, sticker.
    Media(Media),
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
        url: Option<String>,
    },
    Contacts(Vec<ContactCard>),
    /// A tap on an interactive message: `button_reply`, `list_reply`, or a Flow's
    /// `nfm_reply` (title from its `body`, else its `name`).
    Interactive {
        reply_id: String,
        title: String,
        description: Option<String>,
    },
    /// Quick-reply button of a template message.
    Button {
        text: String,
        payload: Option<String>,
    },
    /// `emoji: None` means the customer removed their reaction.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    /// Type `unsupported`, unknown types, and any message carrying `errors`.
    /// `message_type` is a sanitized type token (`[a-z0-9_]{1,32}` or "unknown");
    /// `detail` is Meta's error code/title or the unsupported sub-type, when known.
    Unsupported {
        message_type: String,
        detail: Option<String>,
    },
}

/// A media attachment; the bytes are fetched later with GetWhatsAppMessageMedia.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub media_id: String,
    /// As sent by Meta, e.g. `audio/ogg; codecs=opus`; `application/octet-stream` if absent.
    pub mime_type: String,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
    /// Audio recorded as a voice note (needs conversion: Connect refuses OGG/Opus).
    pub voice: bool,
    /// Animated sticker.
    pub animated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// The WhatsApp message type / body field name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Inverse of [`MediaKind::as_str`].
    pub fn from_type(message_type: &str) -> Option<MediaKind> {
        Some(match message_type {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            "audio" => MediaKind::Audio,
            "document" => MediaKind::Document,
            "sticker" => MediaKind::Sticker,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shared contact card (the parts an agent needs to read it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactCard {
    /// `name.formatted_name`, else first + last name.
    pub formatted_name: Option<String>,
    pub phones: Vec<ContactPhone>,
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPhone {
    /// `phone` as written on the card, else `+<wa_id>`.
    pub phone: String,
    /// `type` (e.g. "CELL", "HOME", "WORK").
    pub phone_type: Option<String>,
}

/// What a message needs from its surroundings in the event.
pub(crate) struct MessageContext<'a> {
    /// EUM phone number id of the business number for this change.
    pub business_number_id: &'a str,
    /// `contacts[]`: wa_id -> profile name (already sanitized).
    pub names: &'a HashMap<String, String>,
    /// Timestamp used when a message has none (the event's `message_timestamp`).
    pub fallback_timestamp: Option<i64>,
}

/// Turns one `value.messages[]` element into a customer message. Errors name paths
/// relative to the message (`text.body`).
pub(crate) fn decode_message(
    m: &WebhookMessage,
    ctx: &MessageContext<'_>,
) -> Result<CustomerMessage, DecodeError> {
    let wamid = check_id(&m.id, "id", MAX_WAMID_CHARS)?.to_string();
    let customer_id = wa_id(&m.from, "from")?;
    let timestamp = match m.timestamp.get() {
        Some(t) if t.0 >= 0 => t.0,
        _ => ctx
            .fallback_timestamp
            .ok_or_else(|| DecodeError::missing("timestamp"))?,
    };
    // Quote info is secondary: an unusable context id drops the quote, not the message.
    let reply_to = m
        .context
        .get()
        .and_then(|c| c.id.get())
        .and_then(|id| check_id(id, "context.id", MAX_WAMID_CHARS).ok())
        .map(str::to_string);
    let customer_name = customer_name(ctx.names, &customer_id);

    let content = decode_content(m)?;

    Ok(CustomerMessage {
        wamid,
        customer_id,
        customer_name,
        timestamp,
        business_number_id: ctx.business_number_id.to_string(),
        reply_to,
        content,
    })
}

/// Profile name for `wa_id`. When the event has exactly one contact whose `wa_id` differs
/// from `from` (Meta normalizes some countries' numbers differently, e.g. Brazil's 9th
/// digit), that single contact is still the sender.
fn customer_name(names: &HashMap<String, String>, wa_id: &str) -> Option<String> {
    names
        .get(wa_id)
        .or_else(|| {
            if names.len() == 1 {
                names.values().next()
            } else {
                None
            }
        })
        .cloned()
}

/// The body under `name` (a message's body key is its type), with its errors' paths
/// prefixed by `name`.
fn body<'a, T>(part: &'a Option<Part<T>>, name: &str) -> Result<&'a T, DecodeError> {
    part.as_ref()
        .ok_or_else(|| DecodeError::missing(name))?
        .within(name)
}

fn decode_content(m: &WebhookMessage) -> Result<MessageContent, DecodeError> {
    // Meta flags messages it could not deliver with `errors`, whatever the type says.
    if let Some(errors) = m.errors.as_ref().filter(|e| !e.is_empty()) {
        return Ok(MessageContent::Unsupported {
            message_type: safe_token(m.kind.as_deref().unwrap_or("unknown")),
            detail: errors[0].get().and_then(error_detail),
        });
    }

    let message_type = m
        .kind
        .as_deref()
        .ok_or_else(|| DecodeError::missing("type"))?;
    if let Some(kind) = MediaKind::from_type(message_type) {
        let part = match kind {
            MediaKind::Image => &m.image,
            MediaKind::Video => &m.video,
            MediaKind::Audio => &m.audio,
            MediaKind::Document => &m.document,
            MediaKind::Sticker => &m.sticker,
        };
        return decode_media(body(part, kind.as_str())?, kind).map(MessageContent::Media);
    }
    match message_type {
        "text" => {
            let text = &body(&m.text, "text")?.body;
            if text.is_empty() {
                return Err(DecodeError::invalid("text.body", "empty"));
            }
            check_len(text, "text.body", MAX_TEXT_CHARS)?;
            Ok(MessageContent::Text { body: text.clone() })
        }
        "location" => decode_location(body(&m.location, "location")?),
        "contacts" => decode_contacts(body(&m.contacts, "contacts")?),
        "interactive" => decode_interactive(body(&m.interactive, "interactive")?),
        "button" => {
            let b = body(&m.button, "button")?;
            Ok(MessageContent::Button {
                text: req_text(&b.text, "button.text", MAX_SHORT_CHARS)?,
                payload: opt_text(b.payload.as_ref(), "button.payload", MAX_SHORT_CHARS)?,
            })
        }
        "reaction" => {
            let r = body(&m.reaction, "reaction")?;
            Ok(MessageContent::Reaction {
                message_id: check_id(&r.message_id, "reaction.message_id", MAX_WAMID_CHARS)?
                    .to_string(),
                emoji: opt_text(r.emoji.as_ref(), "reaction.emoji", MAX_EMOJI_CHARS)?,
            })
        }
        "unsupported" => Ok(MessageContent::Unsupported {
            message_type: "unsupported".to_string(),
            detail: m
                .unsupported
                .get()
                .and_then(|u| u.kind.get())
                .map(|t| safe_token(t)),
        }),
        other => Ok(MessageContent::Unsupported {
            message_type: safe_token(other),
            detail: None,
        }),
    }
}

/// "131051: Unsupported message type" from a Meta error object (code and/or title).
/// The title is Meta's wording, cleaned of control characters and capped.
pub(crate) fn error_detail(e: &MetaError) -> Option<String> {
    let code = e.code.get().map(|c| c.0);
    let title = e
        .title
        .get()
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    match (code, title) {
        (Some(c), Some(t)) => Some(format!("{c}: {t}")),
        (Some(c), None) => Some(format!("error {c}")),
        (None, Some(t)) => Some(t),
        (None, None) => None,
    }
}

fn decode_media(o: &MediaBody, kind: MediaKind) -> Result<Media, DecodeError> {
    let field = |name: &str| format!("{kind}.{name}");
    let media_id = check_id(&o.id, &field("id"), MAX_MEDIA_ID_CHARS)?.to_string();
    let mime_type = match opt_text(o.mime_type.as_ref(), &field("mime_type"), MAX_MIME_CHARS)? {
        Some(mt) if mt.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => mt,
        Some(_) => {
            return Err(DecodeError::invalid(
                &field("mime_type"),
                "not printable ASCII",
            ))
        }
        None => "application/octet-stream".to_string(),
    };
    Ok(Media {
        kind,
        media_id,
        mime_type,
        sha256: opt_text(o.sha256.as_ref(), &field("sha256"), 128)?,
        caption: opt_text(o.caption.as_ref(), &field("caption"), MAX_CAPTION_CHARS)?,
        filename: opt_text(o.filename.as_ref(), &field("filename"), MAX_FILENAME_CHARS)?,
        voice: o.voice.unwrap_or(false),
        animated: o.animated.unwrap_or(false),
    })
}

fn decode_location(o: &LocationBody) -> Result<MessageContent, DecodeError> {
    let (latitude, longitude) = (o.latitude.0, o.longitude.0);
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(DecodeError::invalid("location.latitude", "out of range"));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(DecodeError::invalid("location.longitude", "out of range"));
    }
    Ok(MessageContent::Location {
        latitude,
        longitude,
        name: opt_text(o.name.as_ref(), "location.name", MAX_SHORT_CHARS)?,
        address: opt_text(o.address.as_ref(), "location.address", MAX_SHORT_CHARS)?,
        url: opt_text(o.url.as_ref(), "location.url", MAX_URL_CHARS)?,
    })
}

fn decode_contacts(cards: &[ContactCardBody]) -> Result<MessageContent, DecodeError> {
    if cards.is_empty() {
        return Err(DecodeError::invalid("contacts", "empty"));
    }
    if cards.len() > MAX_CONTACT_CARDS {
        return Err(DecodeError::invalid("contacts", "too many cards"));
    }
    cards
        .iter()
        .enumerate()
        .map(|(i, c)| decode_card(c).map_err(|e| e.within(&format!("contacts[{i}]"))))
        .collect::<Result<Vec<_>, _>>()
        .map(MessageContent::Contacts)
}

/// One shared card; error paths relative to the card.
fn decode_card(c: &ContactCardBody) -> Result<ContactCard, DecodeError> {
    let formatted_name = match &c.name {
        None => None,
        Some(n) => match opt_text(
            n.formatted_name.as_ref(),
            "name.formatted_name",
            MAX_SHORT_CHARS,
        )? {
            Some(f) => Some(f),
            None => {
                let part = |p: &Option<Part<String>>, field: &str| match p {
                    Some(p) => opt_text(Some(p.within(field)?), field, MAX_SHORT_CHARS),
                    None => Ok(None),
                };
                let parts = [
                    part(&n.first_name, "name.first_name")?,
                    part(&n.last_name, "name.last_name")?,
                ];
                let joined = parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
                (!joined.is_empty()).then_some(joined)
            }
        },
    };

    let phones_in = c.phones.as_deref().unwrap_or_default();
    if phones_in.len() > MAX_CARD_ENTRIES {
        return Err(DecodeError::invalid("phones", "too many entries"));
    }
    let mut phones = Vec::new();
    for (i, p) in phones_in.iter().enumerate() {
        let field = |name: &str| format!("phones[{i}].{name}");
        let written = opt_text(p.phone.as_ref(), &field("phone"), 64)?;
        let wa = p
            .wa_id
            .as_deref()
            .map(|w| wa_id(w, &field("wa_id")))
            .transpose()?;
        let Some(phone) = written.or(wa.map(|w| format!("+{w}"))) else {
            continue;
        };
        let phone_type = match &p.kind {
            Some(kind) => opt_text(Some(kind.within(&field("type"))?), &field("type"), 32)?,
            None => None,
        };
        phones.push(ContactPhone { phone, phone_type });
    }

    let emails_in = c.emails.as_deref().unwrap_or_default();
    if emails_in.len() > MAX_CARD_ENTRIES {
        return Err(DecodeError::invalid("emails", "too many entries"));
    }
    let mut emails = Vec::new();
    for (i, e) in emails_in.iter().enumerate() {
        if let Some(email) = opt_text(e.email.as_ref(), &format!("emails[{i}].email"), 320)? {
            emails.push(email);
        }
    }

    Ok(ContactCard {
        formatted_name,
        phones,
        emails,
    })
}

fn decode_interactive(o: &InteractiveBody) -> Result<MessageContent, DecodeError> {
    match o.kind.as_str() {
        kind @ ("button_reply" | "list_reply") => {
            let field = format!("interactive.{kind}");
            let part = if kind == "button_reply" {
                &o.button_reply
            } else {
                &o.list_reply
            };
            let r = body(part, &field)?;
            Ok(MessageContent::Interactive {
                reply_id: req_text(&r.id, &format!("{field}.id"), MAX_SHORT_CHARS)?,
                title: req_text(&r.title, &format!("{field}.title"), MAX_SHORT_CHARS)?,
                description: opt_text(
                    r.description.as_ref(),
                    &format!("{field}.description"),
                    MAX_SHORT_CHARS,
                )?,
            })
        }
        "nfm_reply" => {
            const FIELD: &str = "interactive.nfm_reply";
            let r = body(&o.nfm_reply, FIELD)?;
            let name = opt_text(
                r.name.as_ref(),
                "interactive.nfm_reply.name",
                MAX_SHORT_CHARS,
            )?;
            let text = opt_text(
                r.body.as_ref(),
                "interactive.nfm_reply.body",
                MAX_SHORT_CHARS,
            )?;
            Ok(MessageContent::Interactive {
                reply_id: name.clone().unwrap_or_else(|| "nfm_reply".to_string()),
                title: text
                    .or(name)
                    .unwrap_or_else(|| "Form submitted".to_string()),
                description: None,
            })
        }
        other => Ok(MessageContent::Unsupported {
            message_type: "interactive".to_string(),
            detail: Some(format!("interactive {}", safe_token(other))),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::decode_value;
    use serde_json::{json, Value};

    fn ctx_names() -> HashMap<String, String> {
        HashMap::from([("5491155550123".to_string(), "Lucía".to_string())])
    }

    fn decode(v: Value) -> Result<CustomerMessage, DecodeError> {
        let names = ctx_names();
        let ctx = MessageContext {
            business_number_id: "phone-number-id-abc",
            names: &names,
            fallback_timestamp: Some(1_700_000_000),
        };
        let part: Part<WebhookMessage> = Part(decode_value(&v));
        part.named("messages[]")
            .and_then(|m| decode_message(m, &ctx))
    }

    /// A valid message skeleton with `extra` merged in.
    fn msg(extra: Value) -> Value {
        let mut base =
            json!({"from": "5491155550123", "id": "wamid.X1", "timestamp": "1763647391"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    fn content(extra: Value) -> Result<MessageContent, DecodeError> {
        decode(msg(extra)).map(|m| m.content)
    }

    #[test]
    fn text_message() {
        let m = decode(msg(json!({"type": "text", "text": {"body": "hola"}}))).unwrap();
        assert_eq!(m.wamid, "wamid.X1");
        assert_eq!(m.customer_id, "5491155550123");
        assert_eq!(m.customer_name.as_deref(), Some("Lucía"));
        assert_eq!(m.timestamp, 1763647391);
        assert_eq!(m.business_number_id, "phone-number-id-abc");
        assert_eq!(m.reply_to, None);
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "hola".into()
            }
        );
    }

    #[test]
    fn text_limits() {
        let ok = "ñ".repeat(MAX_TEXT_CHARS);
        assert!(content(json!({"type": "text", "text": {"body": ok}})).is_ok());
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            content(json!({"type": "text", "text": {"body": long}})),
            Err(DecodeError::TooLong {
                field: "text.body".into(),
                len: MAX_TEXT_CHARS + 1,
                max: MAX_TEXT_CHARS
            })
        );
        assert!(content(json!({"type": "text", "text": {"body": ""}})).is_err());
        assert!(content(json!({"type": "text", "text": {"body": 5}})).is_err());
        assert!(content(json!({"type": "text", "text": "hola"})).is_err());
        assert!(content(json!({"type": "text"})).is_err());
    }

    #[test]
    fn from_and_id_are_validated() {
        for bad in [
            json!({"from": ""}),
            json!({"from": "54911abc"}),
            json!({"from": "1".repeat(21)}),
            json!({"from": 5491155550123u64}),
            json!({"id": ""}),
            json!({"id": "a".repeat(MAX_WAMID_CHARS + 1)}),
            json!({"id": "wamid with spaces"}),
            json!({"id": null}),
        ] {
            let mut v = msg(json!({"type": "text", "text": {"body": "x"}}));
            for (k, val) in bad.as_object().unwrap() {
                v[k] = val.clone();
            }
            assert!(decode(v.clone()).is_err(), "{v}");
        }
        let plus = msg(json!({"from": "+5491155550123", "type": "text", "text": {"body": "x"}}));
        assert_eq!(decode(plus).unwrap().customer_id, "5491155550123");
    }

    #[test]
    fn timestamp_falls_back_to_event_time() {
        let mut v = msg(json!({"type": "text", "text": {"body": "x"}}));
        v.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(decode(v.clone()).unwrap().timestamp, 1_700_000_000);
        v["timestamp"] = json!("soon");
        assert_eq!(decode(v).unwrap().timestamp, 1_700_000_000);
    }

    #[test]
    fn name_lookup() {
        let names = HashMap::from([
            ("1".to_string(), "A".to_string()),
            ("2".to_string(), "B".to_string()),
        ]);
        assert_eq!(customer_name(&names, "2").as_deref(), Some("B"));
        assert_eq!(customer_name(&names, "3"), None);
        let one = HashMap::from([("5511912345678".to_string(), "C".to_string())]);
        assert_eq!(customer_name(&one, "551112345678").as_deref(), Some("C"));
        assert_eq!(customer_name(&HashMap::new(), "1"), None);
    }

    #[test]
    fn reply_context() {
        let m = decode(msg(json!({"type": "text", "text": {"body": "x"},
            "context": {"from": "15550783881", "id": "wamid.Q"}})))
        .unwrap();
        assert_eq!(m.reply_to.as_deref(), Some("wamid.Q"));
        // Forwarded messages have a context without id; broken contexts drop the quote only.
        for ctx in [json!({"forwarded": true}), json!("x"), json!({"id": 5})] {
            let m = decode(msg(
                json!({"type": "text", "text": {"body": "x"}, "context": ctx}),
            ))
            .unwrap();
            assert_eq!(m.reply_to, None);
        }
    }

    #[test]
    fn media_kinds() {
        for kind in [
            MediaKind::Image,
            MediaKind::Video,
            MediaKind::Audio,
            MediaKind::Document,
            MediaKind::Sticker,
        ] {
            assert_eq!(MediaKind::from_type(kind.as_str()), Some(kind));
            let c = content(json!({"type": kind.as_str(),
                kind.as_str(): {"id": "123", "mime_type": "x/y"}}))
            .unwrap();
            let MessageContent::Media(media) = c else {
                panic!("not media")
            };
            assert_eq!(media.kind, kind);
            assert_eq!(media.media_id, "123");
            assert!(!media.voice && !media.animated);
        }
        assert_eq!(MediaKind::from_type("text"), None);
    }

    #[test]
    fn media_fields() {
        let c = content(
            json!({"type": "sticker", "sticker": {"id": "9", "mime_type": "image/webp",
            "sha256": "abc", "animated": true}}),
        )
        .unwrap();
        assert_eq!(
            c,
            MessageContent::Media(Media {
                kind: MediaKind::Sticker,
                media_id: "9".into(),
                mime_type: "image/webp".into(),
                sha256: Some("abc".into()),
                caption: None,
                filename: None,
                voice: false,
                animated: true,
            })
        );
        let c = content(json!({"type": "image", "image": {"id": "9"}})).unwrap();
        let MessageContent::Media(m) = c else {
            panic!()
        };
        assert_eq!(m.mime_type, "application/octet-stream");

        for bad in [
            json!({"type": "image"}),
            json!({"type": "image", "image": {"mime_type": "image/png"}}),
            json!({"type": "image", "image": {"id": ""}}),
            json!({"type": "image", "image": {"id": "1", "caption": 3}}),
            json!({"type": "image", "image": {"id": "1", "caption": "x".repeat(MAX_CAPTION_CHARS + 1)}}),
            json!({"type": "audio", "audio": {"id": "1", "voice": "yes"}}),
            json!({"type": "image", "image": {"id": "1", "mime_type": "image/\u{1}png"}}),
        ] {
            assert!(content(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn location() {
        let c = content(json!({"type": "location", "location":
            {"latitude": -34.6, "longitude": "-58.38", "name": " Obelisco ", "url": ""}}))
        .unwrap();
        assert_eq!(
            c,
            MessageContent::Location {
                latitude: -34.6,
                longitude: -58.38,
                name: Some("Obelisco".into()),
                address: None,
                url: None
            }
        );
        for bad in [
            json!({"type": "location", "location": {"latitude": 91, "longitude": 0}}),
            json!({"type": "location", "location": {"latitude": 0, "longitude": -181}}),
            json!({"type": "location", "location": {"longitude": 0}}),
            json!({"type": "location", "location": {"latitude": "x", "longitude": 0}}),
            json!({"type": "location", "location": {"latitude": 0, "longitude": 0, "name": "n".repeat(2000)}}),
        ] {
            assert!(content(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn contacts() {
        let c = content(json!({"type": "contacts", "contacts": [
            {"name": {"formatted_name": "Juan Pérez", "first_name": "Juan"},
             "phones": [{"phone": "+54 9 11 5555-0000", "type": "CELL", "wa_id": "5491155550000"},
                        {"wa_id": "15550001111"}, {"type": "HOME"}],
             "emails": [{"email": "juan@example.com", "type": "WORK"}, {"type": "HOME"}]},
            {"name": {"first_name": "Ana", "last_name": "Gómez"}},
            {}
        ]}))
        .unwrap();
        assert_eq!(
            c,
            MessageContent::Contacts(vec![
                ContactCard {
                    formatted_name: Some("Juan Pérez".into()),
                    phones: vec![
                        ContactPhone {
                            phone: "+54 9 11 5555-0000".into(),
                            phone_type: Some("CELL".into())
                        },
                        ContactPhone {
                            phone: "+15550001111".into(),
                            phone_type: None
                        },
                    ],
                    emails: vec!["juan@example.com".into()],
                },
                ContactCard {
                    formatted_name: Some("Ana Gómez".into()),
                    ..Default::default()
                },
                ContactCard::default(),
            ])
        );
        let many: Vec<Value> = (0..=MAX_CONTACT_CARDS).map(|_| json!({})).collect();
        for bad in [
            json!({"type": "contacts", "contacts": []}),
            json!({"type": "contacts", "contacts": {}}),
            json!({"type": "contacts", "contacts": [1]}),
            json!({"type": "contacts", "contacts": many}),
            json!({"type": "contacts", "contacts": [{"phones": [{"phone": 1}]}]}),
            json!({"type": "contacts", "contacts": [{"phones": [{"wa_id": "abc"}]}]}),
        ] {
            assert!(content(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn interactive() {
        assert_eq!(
            content(
                json!({"type": "interactive", "interactive": {"type": "button_reply",
                "button_reply": {"id": "yes", "title": "Sí"}}})
            ),
            Ok(MessageContent::Interactive {
                reply_id: "yes".into(),
                title: "Sí".into(),
                description: None
            })
        );
        assert_eq!(
            content(
                json!({"type": "interactive", "interactive": {"type": "list_reply",
                "list_reply": {"id": "r2", "title": "Envío", "description": "A domicilio"}}})
            ),
            Ok(MessageContent::Interactive {
                reply_id: "r2".into(),
                title: "Envío".into(),
                description: Some("A domicilio".into())
            })
        );
        assert_eq!(
            content(
                json!({"type": "interactive", "interactive": {"type": "nfm_reply",
                "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{\"a\":1}"}}})
            ),
            Ok(MessageContent::Interactive {
                reply_id: "flow".into(),
                title: "Sent".into(),
                description: None
            })
        );
        assert_eq!(
            content(
                json!({"type": "interactive", "interactive": {"type": "nfm_reply",
                "nfm_reply": {"name": "address_message"}}})
            ),
            Ok(MessageContent::Interactive {
                reply_id: "address_message".into(),
                title: "address_message".into(),
                description: None
            })
        );
        assert_eq!(
            content(json!({"type": "interactive", "interactive": {"type": "Carousel!"}})),
            Ok(MessageContent::Unsupported {
                message_type: "interactive".into(),
                detail: Some("interactive unknown".into())
            })
        );
        for bad in [
            json!({"type": "interactive"}),
            json!({"type": "interactive", "interactive": {"type": "button_reply"}}),
            json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "x"}}}),
            json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"title": "x"}}}),
        ] {
            assert!(content(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn button_and_reaction() {
        assert_eq!(
            content(json!({"type": "button", "button": {"text": "Confirmar", "payload": "OK-1"}})),
            Ok(MessageContent::Button {
                text: "Confirmar".into(),
                payload: Some("OK-1".into())
            })
        );
        assert!(content(json!({"type": "button", "button": {"payload": "p"}})).is_err());
        assert_eq!(
            content(
                json!({"type": "reaction", "reaction": {"message_id": "wamid.A", "emoji": "👍"}})
            ),
            Ok(MessageContent::Reaction {
                message_id: "wamid.A".into(),
                emoji: Some("👍".into())
            })
        );
        assert_eq!(
            content(
                json!({"type": "reaction", "reaction": {"message_id": "wamid.A", "emoji": ""}})
            ),
            Ok(MessageContent::Reaction {
                message_id: "wamid.A".into(),
                emoji: None
            })
        );
        assert!(content(json!({"type": "reaction", "reaction": {"emoji": "👍"}})).is_err());
    }

    #[test]
    fn unsupported_and_errors() {
        assert_eq!(
            content(json!({"type": "unsupported", "errors": [{"code": 131051,
                "title": "Message type unknown", "details": "Message type is not currently supported"}]})),
            Ok(MessageContent::Unsupported {
                message_type: "unsupported".into(),
                detail: Some("131051: Message type unknown".into())
            })
        );
        assert_eq!(
            content(json!({"type": "unsupported", "unsupported": {"type": "edit"}})),
            Ok(MessageContent::Unsupported {
                message_type: "unsupported".into(),
                detail: Some("edit".into())
            })
        );
        // Errors win over a type that otherwise looks fine (and has no body).
        assert_eq!(
            content(json!({"type": "image", "errors": [{"code": 131052}]})),
            Ok(MessageContent::Unsupported {
                message_type: "image".into(),
                detail: Some("error 131052".into())
            })
        );
        assert_eq!(
            content(json!({"type": "order", "order": {}})),
            Ok(MessageContent::Unsupported {
                message_type: "order".into(),
                detail: None
            })
        );
        assert_eq!(
            content(json!({"type": "<script>"})),
            Ok(MessageContent::Unsupported {
                message_type: "unknown".into(),
                detail: None
            })
        );
        assert_eq!(content(json!({})), Err(DecodeError::missing("type")));
    }

    #[test]
    fn errors_never_quote_customer_text() {
        let secret = "MY-SECRET-CARD-NUMBER";
        let long = secret.repeat(300);
        for bad in [
            json!({"type": "text", "text": {"body": long}}),
            json!({"type": "location", "location": {"latitude": secret, "longitude": 0}}),
            json!({"type": "text", "text": {"body": "x"}, "from": secret}),
            json!({"type": "text", "text": {"body": "x"}, "id": format!("a b {secret}")}),
        ] {
            let e = decode(msg(bad)).unwrap_err();
            assert!(!e.reason().contains(secret), "{}", e.reason());
        }
    }
}
