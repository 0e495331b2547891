//! Meta Cloud API message bodies for EUM `SendWhatsAppMessage` (its `message` blob).
//!
//! Pure builders: no splitting or validation of lengths here (texts over
//! [`WHATSAPP_TEXT_MAX_CHARS`] must be split by the caller with `split_text`). Agent
//! markdown is sent as-is: WhatsApp shows it as plain text, and rewriting it could change
//! what the agent meant.

use serde_json::{json, Value};

use super::whatsapp_in::MediaKind;

/// Longest WhatsApp text message body (characters).
pub const WHATSAPP_TEXT_MAX_CHARS: usize = 4096;

/// Longest caption on an outbound image/video/document (characters).
pub const WHATSAPP_CAPTION_MAX_CHARS: usize = 1024;

/// Reactions we put on customer messages to show progress.
pub mod reactions {
    /// Received and being handled.
    pub const SEEN: &str = "👀";
    /// Delivered to the agent.
    pub const DONE: &str = "✅";
    /// Attachment uploaded to the agent.
    pub const FILE_OK: &str = "📎";
    /// Could not be delivered to the agent.
    pub const FAILED: &str = "❌";
}

/// `+<wa_id>` (a leading `+` already present is kept, not doubled).
fn recipient(to_wa_id: &str) -> String {
    if to_wa_id.starts_with('+') {
        to_wa_id.to_string()
    } else {
        format!("+{to_wa_id}")
    }
}

fn envelope(to_wa_id: &str, message_type: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(to_wa_id),
        "type": message_type,
    })
}

/// A text message, optionally quoting the customer message `reply_to` (a wamid).
/// Link previews are off: agent texts are not meant to unfurl arbitrary URLs.
pub fn text_message(to_wa_id: &str, body: &str, reply_to: Option<&str>) -> Value {
    let mut v = envelope(to_wa_id, "text");
    v["text"] = json!({"preview_url": false, "body": body});
    if let Some(id) = reply_to {
        v["context"] = json!({"message_id": id});
    }
    v
}

/// A reaction on message `message_id`; an empty `emoji` removes our reaction.
pub fn reaction(to_wa_id: &str, message_id: &str, emoji: &str) -> Value {
    let mut v = envelope(to_wa_id, "reaction");
    v["reaction"] = json!({"message_id": message_id, "emoji": emoji});
    v["biz_opaque_callback_data"] = json!(super::receipt::ACKNOWLEDGEMENT_CALLBACK);
    v
}

/// Marks the customer message `message_id` (and those before it) as read (blue ticks).
pub fn mark_read(message_id: &str) -> Value {
    json!({"messaging_product": "whatsapp", "status": "read", "message_id": message_id})
}

/// [`mark_read`] plus a "typing…" indicator shown to the customer until we reply
/// (Meta also hides it after a short timeout).
pub fn mark_read_with_typing(message_id: &str) -> Value {
    let mut v = mark_read(message_id);
    v["typing_indicator"] = json!({"type": "text"});
    v
}

/// The WhatsApp media type for an agent attachment's MIME type: `image/` -> image,
/// `video/` -> video, `audio/` -> audio, anything else -> document.
pub fn media_kind_for_mime(mime_type: &str) -> MediaKind {
    let major = mime_type
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match major.as_str() {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// A media message fetched by WhatsApp from `link` (e.g. a pre-signed URL).
/// `caption` is sent for image/video/document, `filename` for documents only (WhatsApp
/// rejects the fields elsewhere); they are dropped for other kinds.
pub fn media_by_link(
    to_wa_id: &str,
    kind: MediaKind,
    link: &str,
    caption: Option<&str>,
    filename: Option<&str>,
) -> Value {
    let mut media = json!({"link": link});
    if let Some(c) = caption.filter(|c| !c.is_empty()) {
        if matches!(
            kind,
            MediaKind::Image | MediaKind::Video | MediaKind::Document
        ) {
            media["caption"] = json!(c);
        }
    }
    if let Some(f) = filename.filter(|f| !f.is_empty()) {
        if kind == MediaKind::Document {
            media["filename"] = json!(f);
        }
    }
    let mut v = envelope(to_wa_id, kind.as_str());
    v[kind.as_str()] = media;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies() {
        assert_eq!(
            text_message("5491155550123", "Hola *Lucía*", None),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "+5491155550123", "type": "text",
                   "text": {"preview_url": false, "body": "Hola *Lucía*"}})
        );
        let v = text_message("+5491155550123", "sí", Some("wamid.Q"));
        assert_eq!(v["to"], "+5491155550123");
        assert_eq!(v["context"], json!({"message_id": "wamid.Q"}));
    }

    #[test]
    fn text_is_escaped_not_transformed() {
        let body = "line \"1\"\n**bold** _it_ \\ </script> 👍";
        let v = text_message("1", body, None);
        let bytes = serde_json::to_vec(&v).unwrap();
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["text"]["body"], body);
    }

    #[test]
    fn reaction_body() {
        assert_eq!(
            reaction("15551234567", "wamid.A", reactions::FILE_OK),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "+15551234567", "type": "reaction",
                   "reaction": {"message_id": "wamid.A", "emoji": "📎"},
                   "biz_opaque_callback_data": "waconnect-ack"})
        );
    }

    #[test]
    fn read_receipts() {
        assert_eq!(
            mark_read("wamid.A"),
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A"})
        );
        assert_eq!(
            mark_read_with_typing("wamid.A")["typing_indicator"],
            json!({"type": "text"})
        );
    }

    #[test]
    fn media_kinds_by_mime() {
        assert_eq!(media_kind_for_mime("image/png"), MediaKind::Image);
        assert_eq!(media_kind_for_mime("Video/MP4"), MediaKind::Video);
        assert_eq!(
            media_kind_for_mime("audio/ogg; codecs=opus"),
            MediaKind::Audio
        );
        assert_eq!(media_kind_for_mime("application/pdf"), MediaKind::Document);
        assert_eq!(media_kind_for_mime(""), MediaKind::Document);
    }

    #[test]
    fn media_bodies() {
        assert_eq!(
            media_by_link(
                "1",
                MediaKind::Document,
                "https://s3/x",
                Some("mirá"),
                Some("a.pdf")
            ),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1",
                   "type": "document",
                   "document": {"link": "https://s3/x", "caption": "mirá", "filename": "a.pdf"}})
        );
        let v = media_by_link(
            "1",
            MediaKind::Image,
            "https://s3/x",
            Some("c"),
            Some("a.png"),
        );
        assert_eq!(v["image"], json!({"link": "https://s3/x", "caption": "c"}));
        let v = media_by_link(
            "1",
            MediaKind::Audio,
            "https://s3/x",
            Some("c"),
            Some("a.ogg"),
        );
        assert_eq!(v["type"], "audio");
        assert_eq!(v["audio"], json!({"link": "https://s3/x"}));
    }

    #[test]
    fn reaction_constants() {
        assert_eq!(reactions::SEEN, "👀");
        assert_eq!(reactions::DONE, "✅");
        assert_eq!(reactions::FILE_OK, "📎");
        assert_eq!(reactions::FAILED, "❌");
        assert_eq!(WHATSAPP_TEXT_MAX_CHARS, 4096);
    }
}
