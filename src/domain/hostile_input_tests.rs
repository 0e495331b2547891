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
                assert!(m.system_number.starts_with("phone-number-id-"));
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
