//! EUM (AWS End User Messaging Social) events: the `Message` of an inbound SNS notification.
//!
//! An event wraps one Meta webhook entry (itself a JSON *string*) plus a `context` mapping
//! Meta phone number ids to EUM phone number ARNs. We need that mapping to reply, so an
//! event whose messages cannot be mapped is refused whole. Otherwise decoding is tolerant:
//! a malformed message or status becomes a short, data-free entry in
//! [`InboundEvent::problems`] and the rest of the event is still delivered.

use std::collections::HashMap;

use super::checks::{check_id, wa_id};
use super::envelope::MAX_BODY_BYTES;
use super::error::DecodeError;
use super::model::decode_str;
use super::model::eum::{EumContext, EumEvent};
use super::model::meta_webhook::ChangeValue;
use super::status::{decode_status, DeliveryStatus};
use super::whatsapp_in::{
    decode_message, error_detail, limits::MAX_NAME_CHARS, CustomerMessage, MessageContext,
};

/// Everything one EUM event carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboundEvent {
    /// Customer messages, in webhook order.
    pub messages: Vec<CustomerMessage>,
    /// Receipts for messages we sent, in webhook order.
    pub statuses: Vec<DeliveryStatus>,
    /// Why some parts were skipped, e.g. ``changes[0].messages[1]: missing field `text.body` ``.
    /// Never contains customer data; suitable for logs and dead-letter reasons.
    pub problems: Vec<String>,
    /// The regroup stage held these texts as one burst: join them into one chat message.
    pub burst: bool,
    /// The regroup stage had received this event's queue message before: it may have
    /// been delivered already, whatever this copy's receive count says.
    pub received_before: bool,
}

impl InboundEvent {
    /// True when the event carried nothing we can act on.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.statuses.is_empty()
    }
}

/// Decodes an EUM event (the SNS `Message` text).
///
/// Errors (the whole event is unusable): not a JSON object, over [`MAX_BODY_BYTES`], no
/// `context.MetaPhoneNumberIds`, no decodable `whatsAppWebhookEntry` (a JSON string, or an
/// object) with a `changes` array, or customer messages for a business number that the
/// context does not map to an EUM phone number id (or without `metadata` to say which).
/// Anything else that is malformed becomes a [`InboundEvent::problems`] entry.
pub fn decode_eum_event(message: &str) -> Result<InboundEvent, DecodeError> {
    let event: EumEvent = decode_str(message, "EUM event", MAX_BODY_BYTES)?;
    let mut out = InboundEvent {
        burst: event.waconnect_burst.get().copied().unwrap_or(false),
        received_before: event
            .waconnect_received_before
            .get()
            .copied()
            .unwrap_or(false),
        ..InboundEvent::default()
    };
    let phone_numbers = phone_number_map(&event.context, &mut out.problems);
    let entry = event
        .whatsapp_webhook_entry
        .0
        .as_ref()
        .map_err(|e| e.clone().within("whatsAppWebhookEntry"))?;
    let fallback_timestamp = event
        .message_timestamp
        .get()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());

    for (ci, change) in entry.changes.iter().enumerate() {
        let Ok(change) = &change.0 else {
            out.problems.push(format!("changes[{ci}]: not an object"));
            continue;
        };
        // Other webhook fields (template status, account updates...) are not conversations.
        if change.field.get().map(String::as_str) != Some("messages") {
            continue;
        }
        let value = match &change.value {
            Some(value) => value.named("value"),
            None => Err(DecodeError::missing("value")),
        };
        match value {
            Ok(value) => decode_change(ci, value, &phone_numbers, fallback_timestamp, &mut out)?,
            Err(e) => out.problems.push(format!("changes[{ci}]: {}", e.reason())),
        }
    }
    Ok(out)
}

/// The EUM phone number id for an EUM phone number ARN:
/// `arn:aws:social-messaging:REGION:ACCT:phone-number-id/0123abcd` -> `phone-number-id-0123abcd`.
pub fn eum_phone_number_id_from_arn(arn: &str) -> Option<String> {
    const MARK: &str = "phone-number-id/";
    let start = arn.find(MARK)? + MARK.len();
    let suffix = &arn[start..];
    let valid = !suffix.is_empty()
        && suffix.len() <= 64
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| format!("phone-number-id-{suffix}"))
}

/// `context.MetaPhoneNumberIds[]`: Meta phone number id -> EUM phone number id.
/// Bad entries are reported as problems and skipped (another entry may be the one we need).
fn phone_number_map(context: &EumContext, problems: &mut Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(context.meta_phone_number_ids.len());
    for (i, entry) in context.meta_phone_number_ids.iter().enumerate() {
        let decoded = entry.named("MetaPhoneNumberIds[]").and_then(|e| {
            let meta = check_id(&e.meta_phone_number_id, "metaPhoneNumberId", 64)?;
            let eum = eum_phone_number_id_from_arn(&e.arn)
                .ok_or_else(|| DecodeError::invalid("arn", "not an EUM phone-number-id ARN"))?;
            Ok((meta.to_string(), eum))
        });
        match decoded {
            Ok((meta, eum)) => {
                map.insert(meta, eum);
            }
            Err(e) => problems.push(format!("context.MetaPhoneNumberIds[{i}]: {}", e.reason())),
        }
    }
    map
}

/// One `changes[].value` with field "messages".
fn decode_change(
    ci: usize,
    value: &ChangeValue,
    phone_numbers: &HashMap<String, String>,
    fallback_timestamp: Option<i64>,
    out: &mut InboundEvent,
) -> Result<(), DecodeError> {
    match value.messages.as_ref().map(|m| m.named("value.messages")) {
        Some(Ok(messages)) if !messages.is_empty() => {
            let business_number_id = business_number_id(value, phone_numbers)?;
            let names = profile_names(value);
            let ctx = MessageContext {
                business_number_id: &business_number_id,
                names: &names,
                fallback_timestamp,
            };
            for (mi, m) in messages.iter().enumerate() {
                match m.named("messages[]").and_then(|m| decode_message(m, &ctx)) {
                    Ok(m) => out.messages.push(m),
                    Err(e) => out
                        .problems
                        .push(format!("changes[{ci}].messages[{mi}]: {}", e.reason())),
                }
            }
        }
        Some(Ok(_)) | None => {}
        Some(Err(e)) => out.problems.push(format!("changes[{ci}]: {}", e.reason())),
    }

    match value.statuses.as_ref().map(|s| s.named("value.statuses")) {
        Some(Ok(statuses)) => {
            // Which number sent them: advisory (a receipt's label), so unmapped is fine.
            let sender = business_number_id(value, phone_numbers).ok();
            for (si, s) in statuses.iter().enumerate() {
                match s.named("statuses[]").and_then(decode_status) {
                    Ok(mut s) => {
                        s.business_number_id = sender.clone();
                        out.statuses.push(s)
                    }
                    Err(e) => out
                        .problems
                        .push(format!("changes[{ci}].statuses[{si}]: {}", e.reason())),
                }
            }
        }
        None => {}
        Some(Err(e)) => out.problems.push(format!("changes[{ci}]: {}", e.reason())),
    }

    // Webhook-level errors (no message attached): worth a log line.
    for e in value.errors.get().into_iter().flatten() {
        let detail = e
            .get()
            .and_then(error_detail)
            .unwrap_or_else(|| "no detail".to_string());
        out.problems
            .push(format!("changes[{ci}]: webhook error {detail}"));
    }
    Ok(())
}

/// The EUM phone number id for this change's `metadata.phone_number_id`.
fn business_number_id(
    value: &ChangeValue,
    phone_numbers: &HashMap<String, String>,
) -> Result<String, DecodeError> {
    let metadata = value
        .metadata
        .as_ref()
        .ok_or_else(|| DecodeError::missing("value.metadata"))?
        .within("value.metadata")?;
    phone_numbers
        .get(&metadata.phone_number_id)
        .cloned()
        .ok_or_else(|| DecodeError::unmapped_phone_number(&metadata.phone_number_id))
}

/// `contacts[]` -> wa_id -> profile name. Names are display-only, so malformed entries are
/// skipped, control characters removed and long names cut to [`MAX_NAME_CHARS`].
fn profile_names(value: &ChangeValue) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for contact in value.contacts.get().into_iter().flatten() {
        let Some(contact) = contact.get() else {
            continue;
        };
        let Some(id) = contact
            .wa_id
            .get()
            .and_then(|w| wa_id(w, "contacts[].wa_id").ok())
        else {
            continue;
        };
        let name = contact
            .profile
            .get()
            .and_then(|p| p.name.get())
            .map(|n| clean_name(n))
            .filter(|n| !n.is_empty());
        if let Some(name) = name {
            names.insert(id, name);
        }
    }
    names
}

fn clean_name(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::envelope::unwrap_sns;
    use super::super::whatsapp_in::{Media, MediaKind, MessageContent};
    use super::*;
    use serde_json::{json, Value};

    const SYSTEM: &str = "phone-number-id-9f8e7d6c5b4a49382716a5b4c3d2e1f0";
    const WAMID: &str = "wamid.HBgNNTQ5MTE1NTU1MDEyMxUCABIYFjNFQjBDMEE3RDE5RjA1QTg4MUM0AA==";

    fn fixture(body: &str) -> InboundEvent {
        let sns = unwrap_sns(body).unwrap();
        let ev = decode_eum_event(&sns.message).unwrap();
        assert!(ev.problems.is_empty(), "{:?}", ev.problems);
        ev
    }

    fn single(body: &str) -> CustomerMessage {
        let ev = fixture(body);
        assert_eq!(ev.messages.len(), 1);
        assert!(ev.statuses.is_empty());
        let m = ev.messages.into_iter().next().unwrap();
        assert_eq!(m.wamid, WAMID);
        assert_eq!(m.customer_id, "5491155550123");
        assert_eq!(m.customer_name.as_deref(), Some("Lucía"));
        assert_eq!(m.timestamp, 1763647391);
        assert_eq!(m.business_number_id, SYSTEM);
        m
    }

    #[test]
    fn fixture_text() {
        let m = single(include_str!("../../tests/fixtures/eum-text.sns.json"));
        assert_eq!(m.reply_to, None);
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "Hola, necesito ayuda con mi pedido".into()
            }
        );
    }

    #[test]
    fn fixture_image() {
        let m = single(include_str!("../../tests/fixtures/eum-image.sns.json"));
        assert_eq!(
            m.content,
            MessageContent::Media(Media {
                kind: MediaKind::Image,
                media_id: "1183209473924211".into(),
                mime_type: "image/jpeg".into(),
                sha256: Some("0Ab3kq8z0a5vJq1hM9m3Yf6rJ0o6mD4w8x3x6QpKq2E=".into()),
                caption: Some("la caja llegó rota".into()),
                filename: None,
                voice: false,
                animated: false,
            })
        );
    }

    #[test]
    fn fixture_document() {
        let m = single(include_str!("../../tests/fixtures/eum-document.sns.json"));
        let MessageContent::Media(media) = m.content else {
            panic!("not media")
        };
        assert_eq!(media.kind, MediaKind::Document);
        assert_eq!(media.media_id, "1549302211890277");
        assert_eq!(media.mime_type, "application/pdf");
        assert_eq!(media.filename.as_deref(), Some("factura 0042.pdf"));
        assert_eq!(media.caption, None);
    }

    #[test]
    fn fixture_voice() {
        let m = single(include_str!("../../tests/fixtures/eum-voice.sns.json"));
        let MessageContent::Media(media) = m.content else {
            panic!("not media")
        };
        assert_eq!(media.kind, MediaKind::Audio);
        assert!(media.voice);
        assert_eq!(media.mime_type, "audio/ogg; codecs=opus");
        assert_eq!(media.media_id, "987409134520113");
    }

    #[test]
    fn fixture_location() {
        let m = single(include_str!("../../tests/fixtures/eum-location.sns.json"));
        assert_eq!(
            m.content,
            MessageContent::Location {
                latitude: -34.603722,
                longitude: -58.381592,
                name: Some("Obelisco".into()),
                address: Some("Av. 9 de Julio s/n".into()),
                url: None,
            }
        );
    }

    #[test]
    fn fixture_reply_context() {
        let m = single(include_str!(
            "../../tests/fixtures/eum-reply-context.sns.json"
        ));
        assert_eq!(
            m.reply_to.as_deref(),
            Some("wamid.HBgNNTQ5MTE1NTU1MDEyMxUCABEYEkE5QjE3QzQ0RTZBNjQ4QUZCNgA=")
        );
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "sí, ese mismo".into()
            }
        );
    }

    #[test]
    fn fixture_status_failed() {
        let ev = fixture(include_str!(
            "../../tests/fixtures/eum-status-failed.sns.json"
        ));
        assert!(ev.messages.is_empty());
        assert_eq!(ev.statuses.len(), 1);
        let s = &ev.statuses[0];
        assert_eq!(
            s.message_id,
            "wamid.HBgNNTQ5MTE1NTU1MDEyMxUCABEYEjc3NEVGRkQ5NjBDMzk4QjJFQgA="
        );
        assert_eq!(s.status, "failed");
        assert_eq!(s.recipient_id.as_deref(), Some("5491155550123"));
        assert_eq!(s.timestamp, Some(1763650991));
        assert_eq!(s.error_codes, vec![131047]);
        assert!(s.window_closed());
    }

    #[test]
    fn raw_delivery_and_object_entry() {
        let inner = unwrap_sns(include_str!("../../tests/fixtures/eum-text.sns.json"))
            .unwrap()
            .message;
        // Raw delivery: the SQS body is the event itself.
        let raw = unwrap_sns(&inner).unwrap();
        let ev = decode_eum_event(&raw.message).unwrap();
        assert_eq!(ev.messages.len(), 1);

        // The entry as an object instead of a string.
        let mut v: Value = serde_json::from_str(&inner).unwrap();
        let entry: Value =
            serde_json::from_str(v["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
        v["whatsAppWebhookEntry"] = entry;
        let ev = decode_eum_event(&v.to_string()).unwrap();
        assert_eq!(ev.messages.len(), 1);
        assert_eq!(ev.messages[0].business_number_id, SYSTEM);
    }

    /// A synthetic event: `value` is the single change's value.
    fn event_with(value: Value) -> String {
        json!({
            "context": {"MetaPhoneNumberIds": [
                {"metaPhoneNumberId": "111", "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/aaa111"},
            ]},
            "whatsAppWebhookEntry": json!({"id": "w", "changes": [{"field": "messages", "value": value}]}).to_string(),
            "message_timestamp": "2026-11-20T14:03:11.482913Z",
        })
        .to_string()
    }

    fn text(id: &str, body: Value) -> Value {
        json!({"from": "15551234567", "id": id, "timestamp": "1", "type": "text", "text": {"body": body}})
    }

    #[test]
    fn one_bad_message_does_not_sink_the_others() {
        let ev = decode_eum_event(&event_with(json!({
            "metadata": {"phone_number_id": "111"},
            "messages": [
                text("wamid.1", json!("first")),
                text("wamid.2", json!(7)),
                "not an object",
                text("wamid.4", json!("x".repeat(5000))),
                text("wamid.5", json!("last")),
            ],
            "statuses": [{"id": "wamid.S", "status": "read"}, {"status": "read"}],
        })))
        .unwrap();
        let ids: Vec<_> = ev.messages.iter().map(|m| m.wamid.as_str()).collect();
        assert_eq!(ids, ["wamid.1", "wamid.5"]);
        assert_eq!(ev.messages[0].business_number_id, "phone-number-id-aaa111");
        // Meta omitted `contacts`: no name, no problem.
        assert_eq!(ev.messages[0].customer_name, None);
        assert_eq!(ev.statuses.len(), 1);
        assert_eq!(
            ev.problems,
            [
                "changes[0].messages[1]: field `text.body` has the wrong type (expected string)",
                "changes[0].messages[2]: field `messages[]` has the wrong type (expected object)",
                "changes[0].messages[3]: field `text.body` too long: 5000 characters (max 4096)",
                "changes[0].statuses[1]: missing field `id`",
            ]
        );
        for p in &ev.problems {
            assert!(!p.contains("xxxx"));
        }
    }

    #[test]
    fn unmapped_phone_number_is_an_error() {
        let e = decode_eum_event(&event_with(json!({
            "metadata": {"phone_number_id": "999"},
            "messages": [text("wamid.1", json!("hi"))],
        })))
        .unwrap_err();
        assert_eq!(e, DecodeError::UnmappedPhoneNumber("999".into()));
        let e = decode_eum_event(&event_with(json!({
            "messages": [text("wamid.1", json!("hi"))],
        })))
        .unwrap_err();
        assert_eq!(e, DecodeError::missing("value.metadata"));
        // Statuses alone do not need a reply route.
        let ev = decode_eum_event(&event_with(json!({
            "metadata": {"phone_number_id": "999"},
            "statuses": [{"id": "wamid.S", "status": "delivered"}],
        })))
        .unwrap();
        assert_eq!(ev.statuses.len(), 1);
    }

    #[test]
    fn arn_to_eum_id() {
        assert_eq!(
            eum_phone_number_id_from_arn(
                "arn:aws:social-messaging:us-east-1:111122223333:phone-number-id/9f8e7d6c"
            )
            .as_deref(),
            Some("phone-number-id-9f8e7d6c")
        );
        for bad in [
            "arn:aws:social-messaging:us-east-1:1:waba/abc",
            "arn:aws:social-messaging:us-east-1:1:phone-number-id/",
            "arn:aws:social-messaging:us-east-1:1:phone-number-id/a/b",
            "",
        ] {
            assert_eq!(eum_phone_number_id_from_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_mapping_entries_are_problems() {
        let event = json!({
            "context": {"MetaPhoneNumberIds": [
                {"metaPhoneNumberId": "111", "arn": "arn:x:waba/1"},
                "junk",
                {"metaPhoneNumberId": "222", "arn": "arn:aws:social-messaging:r:1:phone-number-id/b2"},
            ]},
            "whatsAppWebhookEntry": {"changes": [{"field": "messages", "value": {
                "metadata": {"phone_number_id": "222"},
                "messages": [text("wamid.1", json!("hi"))]}}]},
        });
        let ev = decode_eum_event(&event.to_string()).unwrap();
        assert_eq!(ev.messages[0].business_number_id, "phone-number-id-b2");
        assert_eq!(ev.problems.len(), 2);
    }

    #[test]
    fn several_changes_and_other_fields() {
        let event = json!({
            "context": {"MetaPhoneNumberIds": [
                {"metaPhoneNumberId": "111", "arn": "arn:aws:social-messaging:r:1:phone-number-id/a1"},
                {"metaPhoneNumberId": "222", "arn": "arn:aws:social-messaging:r:1:phone-number-id/b2"},
            ]},
            "whatsAppWebhookEntry": {"changes": [
                {"field": "message_template_status_update", "value": {"event": "APPROVED"}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": "111"},
                    "contacts": [{"profile": {"name": " Ana\u{7} "}, "wa_id": "15551234567"},
                                 {"profile": {"name": "Bo"}, "wa_id": "15550000000"}],
                    "messages": [text("wamid.1", json!("a"))]}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": "222"},
                    "messages": [text("wamid.2", json!("b"))],
                    "errors": [{"code": 131000, "title": "Something went wrong"}]}},
                {"field": "messages", "value": "junk"},
                {"field": "messages", "value": {"messages": {}}},
                7,
            ]},
        });
        let ev = decode_eum_event(&event.to_string()).unwrap();
        assert_eq!(ev.messages.len(), 2);
        assert_eq!(ev.messages[0].business_number_id, "phone-number-id-a1");
        assert_eq!(ev.messages[0].customer_name.as_deref(), Some("Ana"));
        assert_eq!(ev.messages[1].business_number_id, "phone-number-id-b2");
        assert_eq!(ev.messages[1].customer_name, None);
        assert_eq!(
            ev.problems,
            [
                "changes[2]: webhook error 131000: Something went wrong",
                "changes[3]: field `value` has the wrong type (expected object)",
                "changes[4]: field `value.messages` has the wrong type (expected array)",
                "changes[5]: not an object",
            ]
        );
    }

    #[test]
    fn long_names_are_cut_not_refused() {
        let ev = decode_eum_event(&event_with(json!({
            "metadata": {"phone_number_id": "111"},
            "contacts": [{"profile": {"name": "N".repeat(1000)}, "wa_id": "15551234567"}],
            "messages": [text("wamid.1", json!("hi"))],
        })))
        .unwrap();
        assert_eq!(
            ev.messages[0]
                .customer_name
                .as_ref()
                .unwrap()
                .chars()
                .count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn timestamp_fallback_from_event() {
        let mut m = text("wamid.1", json!("hi"));
        m.as_object_mut().unwrap().remove("timestamp");
        let ev = decode_eum_event(&event_with(json!({
            "metadata": {"phone_number_id": "111"}, "messages": [m]})))
        .unwrap();
        assert_eq!(ev.messages[0].timestamp, 1_795_183_391);
    }

    #[test]
    fn undecodable_events_are_errors() {
        let entry_ok = json!({"changes": []}).to_string();
        let ctx = json!({"MetaPhoneNumberIds": []});
        let huge = format!(
            "{{\"context\":{{}},\"pad\":\"{}\"}}",
            "x".repeat(MAX_BODY_BYTES)
        );
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not json"),
            ("[]".into(), "array"),
            ("{}".into(), "no context"),
            (
                json!({"context": 1, "whatsAppWebhookEntry": entry_ok}).to_string(),
                "context type",
            ),
            (
                json!({"context": {}, "whatsAppWebhookEntry": entry_ok}).to_string(),
                "no ids",
            ),
            (json!({"context": ctx}).to_string(), "no entry"),
            (
                json!({"context": ctx, "whatsAppWebhookEntry": 5}).to_string(),
                "entry type",
            ),
            (
                json!({"context": ctx, "whatsAppWebhookEntry": "{not json"}).to_string(),
                "entry json",
            ),
            (
                json!({"context": ctx, "whatsAppWebhookEntry": "[]"}).to_string(),
                "entry array",
            ),
            (
                json!({"context": ctx, "whatsAppWebhookEntry": "{}"}).to_string(),
                "no changes",
            ),
            (
                json!({"context": ctx, "whatsAppWebhookEntry": {"changes": {}}}).to_string(),
                "changes type",
            ),
            (huge, "huge"),
            (format!("{{\"context\":{}}}", "[".repeat(5000)), "deep"),
        ];
        for (body, what) in cases {
            assert!(decode_eum_event(&body).is_err(), "{what}");
        }
        // Deep nesting inside the entry string too.
        let deep_entry = json!({"context": ctx, "whatsAppWebhookEntry": "[".repeat(5000)});
        assert!(decode_eum_event(&deep_entry.to_string()).is_err());
        // An empty but well-formed event is fine.
        let ev = decode_eum_event(
            &json!({"context": ctx, "whatsAppWebhookEntry": entry_ok}).to_string(),
        )
        .unwrap();
        assert!(ev.is_empty() && ev.problems.is_empty());
    }
}
