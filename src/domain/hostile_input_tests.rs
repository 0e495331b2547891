//! Cross-module robustness tests: every fixture, mutated systematically, must decode to a
//! value or a typed error, never panic, and no error or problem may quote payload text.

use serde_json::{json, Value};

use super::*;

const EUM_FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/eum-text.sns.json"),
    include_str!("../../tests/fixtures/eum-image.sns.json"),
    include_str!("../../tests/fixtures/eum-document.sns.json"),
    include_str!("../../tests/fixtures/eum-voice.sns.json"),
    include_str!("../../tests/fixtures/eum-location.sns.json"),
    include_str!("../../tests/fixtures/eum-reply-context.sns.json"),
    include_str!("../../tests/fixtures/eum-status-failed.sns.json"),
];

const CONNECT_FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/connect-message.sns.json"),
    include_str!("../../tests/fixtures/connect-attachment.sns.json"),
    include_str!("../../tests/fixtures/connect-chat-ended.sns.json"),
    include_str!("../../tests/fixtures/connect-customer-echo.sns.json"),
];

/// Marker planted in replacement values: it must never surface in an error or a problem.
const SECRET: &str = "SECRETxCUSTOMERxDATA";

fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(0),
        json!(-1),
        json!(1e308),
        json!(u64::MAX),
        json!(true),
        json!(""),
        json!(" "),
        json!(SECRET),
        json!(format!("{SECRET} 123")),
        json!(SECRET.repeat(300)),
        json!([]),
        json!([SECRET]),
        json!({}),
        json!({"x": SECRET}),
    ]
}

/// JSON pointers to every node of `v` (except the root).
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{prefix}/{}", escape(k));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// Every variant of `v` with one node replaced by one of [`replacements`], or removed.
fn mutations(v: &Value) -> Vec<Value> {
    let mut ptrs = Vec::new();
    pointers(v, String::new(), &mut ptrs);
    let mut out = Vec::new();
    for p in &ptrs {
        for r in replacements() {
            let mut m = v.clone();
            if let Some(node) = m.pointer_mut(p) {
                *node = r;
                out.push(m);
            }
        }
        // Removal of an object key.
        let (parent, key) = p.rsplit_once('/').unwrap();
        let mut m = v.clone();
        let parent_node = if parent.is_empty() {
            Some(&mut m)
        } else {
            m.pointer_mut(parent)
        };
        if let Some(Value::Object(obj)) = parent_node {
            obj.remove(&key.replace("~1", "/").replace("~0", "~"));
            out.push(m);
        }
    }
    out
}

fn assert_private(reason: &str) {
    assert!(!reason.contains(SECRET), "leaked payload text: {reason}");
    assert!(!reason.contains("Lucía"), "leaked payload text: {reason}");
    assert!(!reason.contains("pedido"), "leaked payload text: {reason}");
}

fn check_eum(event_text: &str) {
    match decode_eum_event(event_text) {
        Ok(ev) => {
            for p in &ev.problems {
                assert_private(p);
            }
            for m in &ev.messages {
                assert!(!m.customer_id.is_empty() && m.customer_id.len() <= 20);
                assert!(m.customer_id.bytes().all(|b| b.is_ascii_digit()));
                assert!(!m.wamid.is_empty() && m.wamid.len() <= limits::MAX_WAMID_CHARS);
                assert!(m.business_number_id.starts_with("phone-number-id-"));
                if let Some(t) = m.agent_text() {
                    assert!(!t.trim().is_empty());
                }
            }
        }
        Err(e) => assert_private(&e.reason()),
    }
}

#[test]
fn eum_entry_mutations_never_panic_or_leak() {
    for fixture in EUM_FIXTURES {
        let event: Value = serde_json::from_str(&unwrap_sns(fixture).unwrap().message).unwrap();
        let entry: Value =
            serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
        for mutated in mutations(&entry) {
            let mut ev = event.clone();
            ev["whatsAppWebhookEntry"] = json!(mutated.to_string());
            check_eum(&ev.to_string());
        }
    }
}

#[test]
fn eum_event_mutations_never_panic_or_leak() {
    for fixture in EUM_FIXTURES {
        let event: Value = serde_json::from_str(&unwrap_sns(fixture).unwrap().message).unwrap();
        for mutated in mutations(&event) {
            check_eum(&mutated.to_string());
        }
    }
}

#[test]
fn truncated_bodies_never_panic() {
    for fixture in EUM_FIXTURES.iter().chain(CONNECT_FIXTURES) {
        let inner = unwrap_sns(fixture).unwrap().message;
        for (i, _) in fixture.char_indices().step_by(7) {
            let _ = unwrap_sns(&fixture[..i]);
        }
        for (i, _) in inner.char_indices() {
            let cut = &inner[..i];
            check_eum(cut);
            let sns = SnsMessage {
                message: cut.to_string(),
                ..Default::default()
            };
            if let Err(e) = decode_chat_item(&sns) {
                assert_private(&e.reason());
            }
        }
    }
}

#[test]
fn connect_mutations_never_panic_or_leak() {
    for fixture in CONNECT_FIXTURES {
        let sns = unwrap_sns(fixture).unwrap();
        let item: Value = serde_json::from_str(&sns.message).unwrap();
        for mutated in mutations(&item) {
            let m = SnsMessage {
                message: mutated.to_string(),
                ..sns.clone()
            };
            match decode_chat_item(&m) {
                Ok(item) => {
                    assert!(!item.id.is_empty());
                    assert!(!item.contact_id.is_empty());
                    let _ = (item.is_for_customer(), item.ends_session(), item.text());
                }
                Err(e) => assert_private(&e.reason()),
            }
        }
        // Mutating the whole SQS body (envelope and attributes).
        let body: Value = serde_json::from_str(fixture).unwrap();
        for mutated in mutations(&body) {
            match unwrap_sns(&mutated.to_string()) {
                Ok(m) => {
                    if let Err(e) = decode_chat_item(&m) {
                        assert_private(&e.reason());
                    }
                }
                Err(e) => assert_private(&e.reason()),
            }
        }
    }
}

/// Property tests over the typed models: hostile JSON of any shape never panics a decoder
/// and never surfaces in an error or a problem; valid models round-trip.
mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::super::model::meta_webhook::{
        InteractiveBody, LocationBody, MediaBody, ReactionBody, ReplyChoice, TextBody,
        WebhookMessage, WebhookStatus,
    };
    use super::super::model::tolerant::{FiniteNumber, MetaInt};
    use super::super::model::{decode_value, Lenient, Part};
    use super::super::*;
    use super::{assert_private, check_eum, pointers, CONNECT_FIXTURES, EUM_FIXTURES, SECRET};

    /// Keys the decoders look for, so generated objects reach deep into them.
    const KEYS: &[&str] = &[
        "Type",
        "Message",
        "MessageId",
        "MessageAttributes",
        "Value",
        "TopicArn",
        "context",
        "MetaPhoneNumberIds",
        "metaPhoneNumberId",
        "arn",
        "whatsAppWebhookEntry",
        "changes",
        "field",
        "value",
        "metadata",
        "phone_number_id",
        "contacts",
        "profile",
        "name",
        "wa_id",
        "messages",
        "statuses",
        "errors",
        "code",
        "title",
        "id",
        "from",
        "timestamp",
        "type",
        "text",
        "body",
        "image",
        "audio",
        "sticker",
        "document",
        "mime_type",
        "caption",
        "voice",
        "location",
        "latitude",
        "longitude",
        "interactive",
        "button_reply",
        "list_reply",
        "nfm_reply",
        "button",
        "reaction",
        "emoji",
        "message_id",
        "status",
        "recipient_id",
        "Id",
        "ContentType",
        "Content",
        "ParticipantRole",
        "ContactId",
        "Attachments",
        "AttachmentId",
        "SECRETxKEY",
    ];

    /// Strings planted in generated JSON: none may appear in an error or a problem.
    fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(SECRET.to_string()),
            Just(format!(
                "{SECRET} with spaces, \"quotes\" and \\ backslashes"
            )),
            Just(format!("{SECRET}\n\u{0}\u{202E}")),
            "[0-9]{1,12}".prop_map(|d| format!("{SECRET}{d}")),
            Just("messages".to_string()),
            Just("Notification".to_string()),
            Just("text".to_string()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            hostile_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(
                    |entries| {
                        Value::Object(
                            entries
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), v))
                                .collect::<Map<_, _>>(),
                        )
                    }
                ),
            ]
        })
    }

    /// A fixture with up to three nodes replaced by generated JSON.
    fn mutated(fixture: Value) -> impl Strategy<Value = Value> {
        let mut ptrs = Vec::new();
        pointers(&fixture, String::new(), &mut ptrs);
        prop::collection::vec((prop::sample::select(ptrs), arb_json()), 1..4).prop_map(
            move |edits| {
                let mut v = fixture.clone();
                for (p, replacement) in edits {
                    if let Some(node) = v.pointer_mut(&p) {
                        *node = replacement;
                    }
                }
                v
            },
        )
    }

    fn eum_event(i: usize) -> Value {
        serde_json::from_str(&unwrap_sns(EUM_FIXTURES[i]).unwrap().message).unwrap()
    }

    /// The fixture's event with the entry as an object, so mutations reach inside it.
    fn eum_event_open(i: usize) -> Value {
        let mut v = eum_event(i);
        let entry: Value =
            serde_json::from_str(v["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
        v["whatsAppWebhookEntry"] = entry;
        v
    }

    fn check_item(sns: &SnsMessage) {
        match decode_chat_item(sns) {
            Ok(item) => {
                assert!(!item.id.is_empty() && !item.contact_id.is_empty());
                let _ = (item.is_for_customer(), item.ends_session(), item.text());
            }
            Err(e) => assert_private(&e.reason()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any JSON at all, as any of the three payloads.
        #[test]
        fn arbitrary_json_never_panics_or_leaks(v in arb_json()) {
            let text = v.to_string();
            match unwrap_sns(&text) {
                Ok(sns) => check_item(&sns),
                Err(e) => assert_private(&e.reason()),
            }
            check_eum(&text);
            check_item(&SnsMessage { message: text, ..Default::default() });
        }

        /// Arbitrary bytes that are not JSON.
        #[test]
        fn arbitrary_text_never_panics_or_leaks(prefix in "[{\\[\"a-z0-9:,]{0,40}") {
            let text = format!("{prefix}{SECRET}");
            if let Err(e) = unwrap_sns(&text) { assert_private(&e.reason()); }
            check_eum(&text);
        }

        /// EUM fixtures with generated JSON planted anywhere in the event or the entry.
        #[test]
        fn mutated_eum_events_never_panic_or_leak(
            v in (0..EUM_FIXTURES.len()).prop_flat_map(|i| mutated(eum_event_open(i)))
        ) {
            check_eum(&v.to_string());
            // And with the entry sent as a string, as EUM does.
            let mut as_string = v.clone();
            if let Some(entry) = v.get("whatsAppWebhookEntry") {
                as_string["whatsAppWebhookEntry"] = json!(entry.to_string());
            }
            check_eum(&as_string.to_string());
        }

        /// Connect fixtures mutated in the item and in the envelope (attributes included).
        #[test]
        fn mutated_connect_items_never_panic_or_leak(
            (i, item, body) in (0..CONNECT_FIXTURES.len()).prop_flat_map(|i| {
                let body: Value = serde_json::from_str(CONNECT_FIXTURES[i]).unwrap();
                let item: Value =
                    serde_json::from_str(&unwrap_sns(CONNECT_FIXTURES[i]).unwrap().message).unwrap();
                (Just(i), mutated(item), mutated(body))
            })
        ) {
            let sns = unwrap_sns(CONNECT_FIXTURES[i]).unwrap();
            check_item(&SnsMessage { message: item.to_string(), ..sns });
            match unwrap_sns(&body.to_string()) {
                Ok(sns) => check_item(&sns),
                Err(e) => assert_private(&e.reason()),
            }
        }
    }

    // ---- valid models round-trip ------------------------------------------------------

    fn wamid() -> impl Strategy<Value = String> {
        "wamid\\.[A-Za-z0-9=_-]{1,60}"
    }

    fn visible(max: usize) -> impl Strategy<Value = String> {
        // Trimmed, non-empty text with accents, emoji and inner spaces.
        proptest::string::string_regex(&format!(
            "[a-zA-Zñáü語👍][a-zA-Z ñáü語👍.,!?]{{0,{}}}[a-z!]",
            max - 2
        ))
        .unwrap()
    }

    fn media() -> impl Strategy<Value = MediaBody> {
        (
            "[0-9]{1,20}",
            proptest::option::of(prop::sample::select(vec![
                "image/jpeg",
                "audio/ogg; codecs=opus",
                "application/pdf",
            ])),
            proptest::option::of(visible(100)),
            proptest::option::of("[a-z]{1,10}\\.pdf"),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(id, mime, caption, filename, voice)| MediaBody {
                id,
                mime_type: mime.map(str::to_string),
                caption,
                filename,
                voice,
                ..Default::default()
            })
    }

    /// A valid message of one of the kinds the router handles, and the content it decodes to.
    fn message() -> impl Strategy<Value = (WebhookMessage, MessageContent)> {
        let text = visible(200).prop_map(|body| {
            (
                with(
                    |m| m.text = Some(Part::ok(TextBody { body: body.clone() })),
                    "text",
                ),
                MessageContent::Text { body },
            )
        });
        let image = media().prop_map(|b| {
            let content = MessageContent::Media(Media {
                kind: MediaKind::Image,
                media_id: b.id.clone(),
                mime_type: b
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                sha256: None,
                caption: b.caption.clone(),
                filename: b.filename.clone(),
                voice: b.voice.unwrap_or(false),
                animated: false,
            });
            (
                with(|m| m.image = Some(Part::ok(b.clone())), "image"),
                content,
            )
        });
        let location = (
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            proptest::option::of(visible(50)),
        )
            .prop_map(|(lat, lon, name)| {
                let body = LocationBody {
                    latitude: FiniteNumber(lat),
                    longitude: FiniteNumber(lon),
                    name: name.clone(),
                    address: None,
                    url: None,
                };
                (
                    with(|m| m.location = Some(Part::ok(body.clone())), "location"),
                    MessageContent::Location {
                        latitude: lat,
                        longitude: lon,
                        name,
                        address: None,
                        url: None,
                    },
                )
            });
        let reaction = (
            wamid(),
            proptest::option::of(prop::sample::select(vec!["👍", "❤️", "😂"])),
        )
            .prop_map(|(id, emoji)| {
                let body = ReactionBody {
                    message_id: id.clone(),
                    emoji: emoji.map(str::to_string),
                };
                (
                    with(|m| m.reaction = Some(Part::ok(body.clone())), "reaction"),
                    MessageContent::Reaction {
                        message_id: id,
                        emoji: emoji.map(str::to_string),
                    },
                )
            });
        let choice = (
            "[a-z0-9_-]{1,20}",
            visible(20),
            proptest::option::of(visible(60)),
            any::<bool>(),
        )
            .prop_map(|(id, title, description, list)| {
                let reply = ReplyChoice {
                    id: id.clone(),
                    title: title.clone(),
                    description: description.clone(),
                };
                let body = InteractiveBody {
                    kind: if list { "list_reply" } else { "button_reply" }.to_string(),
                    button_reply: (!list).then(|| Part::ok(reply.clone())),
                    list_reply: list.then(|| Part::ok(reply.clone())),
                    nfm_reply: None,
                };
                (
                    with(
                        |m| m.interactive = Some(Part::ok(body.clone())),
                        "interactive",
                    ),
                    MessageContent::Interactive {
                        reply_id: id,
                        title,
                        description,
                    },
                )
            });
        prop_oneof![text, image, location, reaction, choice]
    }

    /// A message skeleton of type `kind`, with `set` filling its body.
    fn with(set: impl FnOnce(&mut WebhookMessage), kind: &str) -> WebhookMessage {
        let mut m: WebhookMessage = decode_value(&json!({"id": "wamid.x", "from": "1"})).unwrap();
        m.kind = Some(kind.to_string());
        set(&mut m);
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// model -> JSON -> model is the identity, and the event decodes to what the model
        /// says, whatever the ids, texts and numbers.
        #[test]
        fn valid_messages_round_trip(
            (mut model, content) in message(),
            id in wamid(),
            from in "[0-9]{1,15}",
            ts in 0..4_000_000_000i64,
        ) {
            model.id = id.clone();
            model.from = from.clone();
            model.timestamp = Lenient(Some(MetaInt(ts)));
            let json = serde_json::to_value(&model).unwrap();
            let back: WebhookMessage = decode_value(&json).unwrap();
            prop_assert_eq!(&back, &model);

            let event = json!({
                "context": {"MetaPhoneNumberIds": [{"metaPhoneNumberId": "111",
                    "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/abc"}]},
                "whatsAppWebhookEntry": json!({"changes": [{"field": "messages", "value": {
                    "metadata": {"phone_number_id": "111"}, "messages": [json]}}]}).to_string(),
            });
            let ev = decode_eum_event(&event.to_string()).unwrap();
            prop_assert!(ev.problems.is_empty(), "{:?}", ev.problems);
            prop_assert_eq!(ev.messages.len(), 1);
            let m = &ev.messages[0];
            prop_assert_eq!(&m.wamid, &id);
            prop_assert_eq!(&m.customer_id, &from);
            prop_assert_eq!(m.timestamp, ts);
            prop_assert_eq!(&m.business_number_id, "phone-number-id-abc");
            match (&m.content, &content) {
                // serde_json reads floats from text to within an ulp (no float_roundtrip).
                (
                    MessageContent::Location { latitude: a, longitude: b, name: n, .. },
                    MessageContent::Location { latitude: x, longitude: y, name: nn, .. },
                ) => {
                    prop_assert!((a - x).abs() < 1e-9 && (b - y).abs() < 1e-9);
                    prop_assert_eq!(n, nn);
                }
                (got, want) => prop_assert_eq!(got, want),
            }
        }

        #[test]
        fn valid_statuses_round_trip(
            id in wamid(),
            status in prop::sample::select(vec!["sent", "delivered", "read", "failed"]),
            codes in prop::collection::vec(0..200_000i64, 0..3),
        ) {
            let model: WebhookStatus = decode_value(&json!({
                "id": id, "status": status, "timestamp": "1763650991",
                "errors": codes.iter().map(|c| json!({"code": c, "title": "t",
                    "error_data": {"details": "d"}})).collect::<Vec<_>>(),
                "biz_opaque_callback_data": "ref-1",
            })).unwrap();
            let back: WebhookStatus = decode_value(&serde_json::to_value(&model).unwrap()).unwrap();
            prop_assert_eq!(&back, &model);
            let errors = model.errors.get().unwrap();
            prop_assert_eq!(errors.len(), codes.len());
            prop_assert_eq!(model.biz_opaque_callback_data.get().map(String::as_str), Some("ref-1"));
        }
    }
}
