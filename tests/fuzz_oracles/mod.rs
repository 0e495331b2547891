//! What every fuzzed input must satisfy, shared by the bounded harness that runs in the
//! test command (`tests/fuzz_decoders.rs`) and the cargo-fuzz targets (`fuzz/`), so a
//! crash found by a long run means the same thing as a failing test case.
//!
//! Each oracle feeds one input through a decoder the way the router does and panics (the
//! fuzzers' notion of a crash) when an invariant breaks:
//!
//! - no decoder panics, whatever the bytes;
//! - no error, problem or refusal quotes payload text: fixtures are seeded with
//!   [`SECRET`] planted in every customer or agent text, and it must never come back in a
//!   reason (reasons end in logs, dead-letter attributes and agent notices);
//! - the regroup splitter loses and duplicates nothing: when the whole event decodes, its
//!   FIFO pieces decode to exactly the same messages and statuses, and every piece carries
//!   a group and a deduplication id SQS accepts;
//! - an agent attachment item yields, for each approved attachment, a WhatsApp body that
//!   names the customer and the attachment's link;
//! - the content checker refuses every program, whatever type it claims.
//!
//! Executions are counted per target and thread ([`executions`]) so each harness can report
//! its own.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::Value;
use waconnect::delivery::regroup::{customer_group, split_inbound};
use waconnect::domain::content_check::{check_content, Mismatch};
use waconnect::domain::{
    decode_chat_item, decode_eum_event, media_by_link, media_kind_for_mime, unwrap_sns,
    DecodeError, InboundEvent, SnsMessage,
};

/// Planted in every free text of the seeds; must never appear in a reason.
pub const SECRET: &str = "SECRETxCUSTOMERxDATA";

/// The fuzz targets, as reported.
pub const TARGETS: [&str; 7] = [
    "sns_envelope",
    "eum_event",
    "meta_webhook",
    "connect_item",
    "agent_attachments",
    "regroup_split",
    "content_check",
];

thread_local! {
    /// Per thread: each harness runs its cases on its own test thread.
    static EXECUTIONS: [Cell<u64>; TARGETS.len()] = const { [const { Cell::new(0) }; TARGETS.len()] };
}

fn count(target: &str) {
    if let Some(i) = TARGETS.iter().position(|t| *t == target) {
        EXECUTIONS.with(|e| e[i].set(e[i].get() + 1));
    }
}

/// Inputs this thread has run so far, per target.
pub fn executions() -> Vec<(&'static str, u64)> {
    EXECUTIONS.with(|e| TARGETS.iter().zip(e).map(|(t, n)| (*t, n.get())).collect())
}

/// Panics if `text` (a reason, a problem, a notice) quotes planted payload text.
pub fn assert_private(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} quotes payload text: {text}");
}

fn check_error(what: &str, e: &DecodeError) {
    assert_private(what, &e.reason());
    assert!(e.reason().chars().count() <= 301, "reasons are capped");
}

fn check_event(what: &str, event: &InboundEvent) {
    for p in &event.problems {
        assert_private(what, p);
    }
    for m in &event.messages {
        assert!(!m.wamid.is_empty(), "{what}: a message without an id");
        assert!(
            !m.customer_id.is_empty() && m.customer_id.bytes().all(|b| b.is_ascii_digit()),
            "{what}: customer id {:?} is not a WhatsApp id",
            m.customer_id
        );
        assert!(m.business_number_id.starts_with("phone-number-id-"));
    }
}

/// One SQS body of the inbound or connect queue: the SNS envelope (or raw payload), then
/// whichever payload it carries, then the regroup splitter and what its pieces decode to.
pub fn sqs_body(body: &str) {
    count("sns_envelope");
    match unwrap_sns(body) {
        Ok(sns) => {
            for name in sns.attributes.keys() {
                assert!(!name.is_empty());
            }
            eum_event(&sns.message);
            connect_item(&sns);
        }
        Err(e) => check_error("SNS envelope", &e),
    }
    regroup_split(body);
}

/// An EUM event (the SNS `Message` of the inbound queue).
pub fn eum_event(message: &str) {
    count("eum_event");
    match decode_eum_event(message) {
        Ok(event) => check_event("EUM event", &event),
        Err(e) => check_error("EUM event", &e),
    }
}

/// A Meta webhook entry, as EUM embeds it (a JSON string) in an otherwise valid event.
pub fn meta_webhook(entry: &str, around: &Value) {
    count("meta_webhook");
    let mut event = around.clone();
    event["whatsAppWebhookEntry"] = Value::String(entry.to_string());
    match decode_eum_event(&event.to_string()) {
        Ok(event) => check_event("Meta webhook", &event),
        Err(e) => check_error("Meta webhook", &e),
    }
}

/// A Connect chat item (the SNS `Message` of the connect queue) with its attributes; an
/// attachment item then goes the way an agent's file goes to the customer.
pub fn connect_item(sns: &SnsMessage) {
    count("connect_item");
    match decode_chat_item(sns) {
        Ok(item) => {
            assert!(!item.id.is_empty() && !item.contact_id.is_empty());
            let _ = (item.is_for_customer(), item.ends_session(), item.text());
            if let Some(t) = item.text() {
                assert!(!t.trim().is_empty());
            }
            agent_attachments(&item);
        }
        Err(e) => check_error("Connect item", &e),
    }
}

/// What the outbound path builds from an item's `Attachments`: one WhatsApp media message
/// by link per approved attachment.
fn agent_attachments(item: &waconnect::domain::ChatItem) {
    count("agent_attachments");
    for a in item.approved_attachments() {
        assert!(a.is_approved() && !a.attachment_id.is_empty());
        let essence = a.content_type.split(';').next().unwrap_or_default().trim();
        let kind = media_kind_for_mime(essence);
        let link = "https://attachments.example/presigned?X-Amz-Signature=s";
        let body = media_by_link("5491100000000", kind, link, None, Some(&a.name));
        assert_eq!(body["to"], "+5491100000000");
        assert_eq!(body["type"], kind.as_str());
        assert_eq!(body[kind.as_str()]["link"], link, "{body}");
        // The body is sent as JSON: it must serialise and read back the same.
        let text = body.to_string();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);
    }
}

/// A Connect item text whose `Attachments` is `attachments` (any JSON text), inside the
/// SNS attributes of a real attachment notification.
pub fn attachments_json(attachments: &str, item_around: &str, sns: &SnsMessage) {
    let message = item_around.replacen("\"@@ATTACHMENTS@@\"", attachments, 1);
    connect_item(&SnsMessage {
        message,
        ..sns.clone()
    });
}

/// (wamid -> count, (status id, status) -> count) of an event.
type Census = (BTreeMap<String, usize>, BTreeMap<(String, String), usize>);

fn census(events: &[InboundEvent]) -> Census {
    let mut messages = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    for e in events {
        for m in &e.messages {
            *messages.entry(m.wamid.clone()).or_insert(0) += 1;
        }
        for s in &e.statuses {
            *statuses
                .entry((s.message_id.clone(), s.status.clone()))
                .or_insert(0) += 1;
        }
    }
    (messages, statuses)
}

/// The regroup splitter on an inbound SQS body. Returns the pieces' decoded events (for
/// callers that check more), or None when the body could not be split.
pub fn regroup_split(body: &str) -> Option<Vec<(String, InboundEvent)>> {
    count("regroup_split");
    let pieces = match split_inbound(body) {
        Ok(pieces) => pieces,
        Err(e) => {
            check_error("regroup split", &e);
            return None;
        }
    };
    let mut decoded = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let group = piece
            .group
            .as_deref()
            .expect("every FIFO piece has a group");
        let dedupe = piece
            .dedupe_id
            .as_deref()
            .expect("every FIFO piece has a deduplication id");
        for id in [group, dedupe] {
            // SQS: 1..128 characters, alphanumeric and punctuation.
            assert!(
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()),
                "{id:?}"
            );
        }
        let event = match unwrap_sns(&piece.body).and_then(|sns| decode_eum_event(&sns.message)) {
            Ok(event) => {
                check_event("regrouped piece", &event);
                Some(event)
            }
            Err(e) => {
                check_error("regrouped piece", &e);
                None
            }
        };
        decoded.push((group.to_string(), event));
    }
    // Nothing lost, nothing duplicated: when the event decodes whole, its pieces carry
    // exactly its messages and statuses.
    let whole = unwrap_sns(body).and_then(|sns| decode_eum_event(&sns.message));
    if let Ok(whole) = whole {
        let pieces_ok: Option<Vec<InboundEvent>> = decoded.iter().map(|(_, e)| e.clone()).collect();
        let Some(pieces_ok) = pieces_ok else {
            panic!(
                "the event decodes whole but one of its {} FIFO pieces does not; event: {body}",
                decoded.len()
            );
        };
        assert_eq!(
            census(&pieces_ok),
            census(std::slice::from_ref(&whole)),
            "the FIFO pieces carry other messages or statuses than the event"
        );
    }
    Some(
        decoded
            .into_iter()
            .filter_map(|(g, e)| e.map(|e| (g, e)))
            .collect(),
    )
}

/// Checks the pieces of a split for the FIFO promises: one group per customer, and
/// messages in timestamp order (for events whose timestamps are plain digits).
pub fn check_groups_and_order(business: &str, pieces: &[(String, InboundEvent)]) {
    let mut last = i64::MIN;
    for (group, event) in pieces {
        for m in &event.messages {
            assert_eq!(
                group,
                &customer_group(business, &m.customer_id),
                "a customer's messages share one FIFO group"
            );
            assert!(m.timestamp >= last, "pieces in timestamp order");
            last = m.timestamp;
        }
    }
}

/// The content checker on `bytes` claimed to be `mime`.
pub fn content(mime: &str, bytes: &[u8]) {
    count("content_check");
    let verdict = check_content(mime, bytes);
    if is_program(bytes) {
        assert!(
            matches!(verdict, Err(Mismatch::Executable { .. })),
            "a program claimed as {mime:?} was not refused: {verdict:?}"
        );
    }
    if let Err(m) = &verdict {
        let text = m.to_string();
        assert_private("content check", &text);
        // The reason quotes the claimed type at most, never the bytes.
        if !mime.contains(SECRET) {
            let printable: String = bytes
                .iter()
                .filter(|b| b.is_ascii_alphanumeric())
                .map(|b| *b as char)
                .collect();
            if printable.len() >= 24 {
                assert!(!text.contains(&printable), "{text}");
            }
        }
    }
}

/// A Windows PE (DOS header whose e_lfanew points at "PE\0\0") or an ELF binary (the
/// magic and room for its 52-byte header: anything shorter cannot run).
pub fn is_program(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\x7fELF") && bytes.len() > 52 {
        return true;
    }
    if !bytes.starts_with(b"MZ") {
        return false;
    }
    let Some(at) = bytes
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return false;
    };
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .is_some_and(|sig| sig == b"PE\0\0")
}
