//! Fuzzing of every decoder, bounded so that it runs in the test command: the SNS envelope,
//! the EUM event, the Meta webhook entry, the Connect chat item, the agent attachment JSON
//! (`Attachments` of ATTACHMENT items), the regroup splitter and the content checker.
//!
//! Inputs are mutated at the byte level, as a coverage-less fuzzer would (bit flips,
//! interesting bytes, JSON tokens, random inserts, deletions, repeats, truncation, splices
//! from other seeds), starting from every file in `tests/fixtures` with a marker planted in
//! its free texts; plus structure-aware generators for what byte flips rarely reach (EUM
//! batches for the splitter, attachment lists, programs under every claimed type). The
//! invariants are in `tests/fuzz_oracles` and shared with the cargo-fuzz targets in
//! `fuzz/`. proptest drives the cases, catches panics and shrinks a failing input to a
//! small one.
//!
//! Each test prints `FUZZ harness=... cases=... executions: target=n ...`
//! (docs/reliability.md). `WACONNECT_FUZZ_CASES=N` runs N cases per harness instead of the
//! bounded default, for a longer run (`cargo test --release --test fuzz_decoders`).

mod fuzz_oracles;

use std::path::Path;

use fuzz_oracles as oracles;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use waconnect::domain::{unwrap_sns, SnsMessage};

use oracles::SECRET;

// -------------------------------------------------------------------------------------
// Running
// -------------------------------------------------------------------------------------

/// Cases per harness: bounded for the test command, or `WACONNECT_FUZZ_CASES`.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("WACONNECT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        // A failing case is printed, shrunk, by the panic below; nothing is written
        // next to the sources.
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// Runs `test` over `strategy` and prints the harness's figures.
fn fuzz<S: Strategy>(name: &str, default_cases: u32, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let config = config(default_cases);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    if let Err(e) = runner.run(&strategy, |input| {
        test(input);
        Ok(())
    }) {
        panic!("{name}: {e}");
    }
    let executions: Vec<String> = oracles::executions()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    println!(
        "FUZZ harness={name} cases={cases} panics=0 seconds={:.1} executions: {}",
        started.elapsed().as_secs_f64(),
        executions.join(" ")
    );
}

// -------------------------------------------------------------------------------------
// Seeds: every fixture, with the marker planted in its free texts
// -------------------------------------------------------------------------------------

/// Fields whose values are customer or agent text: the marker goes there.
const FREE_TEXT: &[&str] = &[
    "body",
    "caption",
    "name",
    "address",
    "filename",
    "Content",
    "DisplayName",
    "AttachmentName",
];

/// JSON held as a string inside JSON (the SNS `Message`, EUM's webhook entry).
const EMBEDDED: &[&str] = &["Message", "whatsAppWebhookEntry"];

/// Plants [`SECRET`] in every free text of `v`, embedded JSON included.
fn plant(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if FREE_TEXT.contains(&k.as_str()) => {
                        *s = format!("{SECRET} {s}");
                    }
                    Value::String(s) if EMBEDDED.contains(&k.as_str()) => {
                        if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                            plant(&mut inner);
                            *s = inner.to_string();
                        }
                    }
                    _ => plant(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plant),
        _ => {}
    }
}

/// The layers of one fixture that are mutated, each with how to rebuild the whole input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layer {
    /// The SQS body (SNS envelope).
    Body,
    /// The SNS `Message` (EUM event or Connect item), re-embedded in the envelope.
    Message,
    /// EUM's `whatsAppWebhookEntry` string (the Meta webhook), re-embedded in the event.
    Entry,
    /// A Connect item's `Attachments` JSON, spliced into the item as raw JSON.
    Attachments,
}

struct Seed {
    name: String,
    envelope: Value,
    body: String,
    sns: SnsMessage,
    /// The EUM event around its entry, and the entry.
    eum: Option<(Value, String)>,
    /// The Connect item text with `"@@ATTACHMENTS@@"` where its attachments go, and the
    /// attachments JSON.
    connect: Option<(String, String)>,
}

impl Seed {
    fn layers(&self) -> Vec<Layer> {
        let mut layers = vec![Layer::Body, Layer::Message];
        if self.eum.is_some() {
            layers.push(Layer::Entry);
        }
        if self.connect.is_some() {
            layers.push(Layer::Attachments);
        }
        layers
    }

    fn text(&self, layer: Layer) -> &str {
        match layer {
            Layer::Body => &self.body,
            Layer::Message => &self.sns.message,
            Layer::Entry => &self.eum.as_ref().unwrap().1,
            Layer::Attachments => &self.connect.as_ref().unwrap().1,
        }
    }

    /// Runs the mutated `layer` through the router's decoders, rebuilt into a whole input.
    fn run(&self, layer: Layer, mutated: &str) {
        match layer {
            Layer::Body => oracles::sqs_body(mutated),
            Layer::Message => {
                let mut envelope = self.envelope.clone();
                envelope["Message"] = json!(mutated);
                oracles::sqs_body(&envelope.to_string());
            }
            Layer::Entry => {
                let (event, _) = self.eum.as_ref().unwrap();
                oracles::meta_webhook(mutated, event);
                let mut event = event.clone();
                event["whatsAppWebhookEntry"] = json!(mutated);
                let mut envelope = self.envelope.clone();
                envelope["Message"] = json!(event.to_string());
                oracles::regroup_split(&envelope.to_string());
            }
            Layer::Attachments => {
                let (around, _) = self.connect.as_ref().unwrap();
                oracles::attachments_json(mutated, around, &self.sns);
            }
        }
    }
}

/// The agent attachment list of the attachment fixture: the seed of every Attachments layer.
const ATTACHMENTS_SEED: &str = r#"[{"AttachmentId": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b", "AttachmentName": "SECRETxCUSTOMERxDATA instructivo.pdf", "ContentType": "application/pdf", "Status": "APPROVED"}]"#;

fn seeds() -> Vec<Seed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 11, "the fixtures: {paths:?}");
    paths
        .iter()
        .map(|path| {
            let mut envelope: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            plant(&mut envelope);
            let body = envelope.to_string();
            let sns = unwrap_sns(&body).expect("a fixture decodes");
            let inner: Value = serde_json::from_str(&sns.message).unwrap();
            let eum = inner["whatsAppWebhookEntry"]
                .as_str()
                .map(|entry| (inner.clone(), entry.to_string()));
            let connect = inner.get("ContactId").map(|_| {
                let mut item = inner.clone();
                let attachments = item
                    .get("Attachments")
                    .map(Value::to_string)
                    .unwrap_or_else(|| ATTACHMENTS_SEED.to_string());
                item["Attachments"] = json!("@@ATTACHMENTS@@");
                (item.to_string(), attachments)
            });
            Seed {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                envelope,
                body,
                sns,
                eum,
                connect,
            }
        })
        .collect()
}

// -------------------------------------------------------------------------------------
// Byte-level mutation
// -------------------------------------------------------------------------------------

/// Bytes that matter to a JSON parser or to a UTF-8 decoder.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x08, 0x0a, 0x0d, 0x1f, b' ', b'"', b'\\', b'/', b'{', b'}', b'[', b']', b':',
    b',', b'-', b'+', b'.', b'0', b'9', b'e', b'E', b'n', b't', b'f', b'u', 0x7f, 0x80, 0xbf, 0xc0,
    0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xfe, 0xff,
];

/// Tokens a dictionary-driven fuzzer would insert: JSON syntax, odd numbers and escapes,
/// and the keys and values the decoders look for.
const TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "{}",
    "[]",
    "\"\"",
    "-0",
    "1e999",
    "-1e-999",
    "18446744073709551616",
    "-9223372036854775809",
    "0.1e1",
    "\\u0000",
    "\\ud800",
    "\\udfff\\ud800",
    "\\\"",
    "\u{202e}",
    "\u{feff}",
    "👍🏽",
    "[[[[[[[[[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":{\"a\":",
    "\"Type\":\"Notification\"",
    "\"Type\":\"SubscriptionConfirmation\"",
    "\"Message\":",
    "\"MessageAttributes\":{\"ContactId\":{\"Type\":\"String\",\"Value\":\"c\"}}",
    "\"whatsAppWebhookEntry\":",
    "\"changes\":",
    "\"field\":\"messages\"",
    "\"messages\":",
    "\"statuses\":",
    "\"metadata\":{\"phone_number_id\":\"111\"}",
    "\"type\":\"text\"",
    "\"timestamp\":\"1\"",
    "\"id\":\"wamid.X\"",
    "\"from\":\"1\"",
    "\"Attachments\":",
    "\"Status\":\"APPROVED\"",
    "\"ContentType\":\"audio/wav\"",
    "\"ParticipantRole\":\"CUSTOMER\"",
    "\"Type\":\"ATTACHMENT\"",
    "\"Type\":\"EVENT\"",
    "application/vnd.amazonaws.connect.event.chat.ended",
];

#[derive(Debug, Clone)]
enum Edit {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Interesting(Index, Index),
    Token(Index, Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Repeats a short range `times` times in place.
    Repeat(Index, usize, u8),
    Truncate(Index),
    /// Inserts a range of another seed's layer (crossover).
    Splice(Index, Index, Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Edit::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::SetByte(at, b)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(at, i)| Edit::Interesting(at, i)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(at, t)| Edit::Token(at, t)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, b)| Edit::Insert(at, b)),
        3 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (any::<Index>(), 1usize..32, 1u8..64).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..256)
            .prop_map(|(at, s, from, n)| Edit::Splice(at, s, from, n)),
    ]
}

/// Applies `edits` to `bytes`; `pool` is what splices take from.
fn mutate(mut bytes: Vec<u8>, edits: &[Edit], pool: &[Vec<u8>]) -> Vec<u8> {
    fn at(i: &Index, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            i.index(len + 1)
        }
    }
    for e in edits {
        let len = bytes.len();
        match e {
            Edit::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
            Edit::SetByte(i, b) if len > 0 => bytes[i.index(len)] = *b,
            Edit::Interesting(i, which) if len > 0 => {
                bytes[i.index(len)] = INTERESTING[which.index(INTERESTING.len())]
            }
            Edit::Token(i, which) => {
                let token = TOKENS[which.index(TOKENS.len())].as_bytes();
                let p = at(i, len);
                bytes.splice(p..p, token.iter().copied());
            }
            Edit::Insert(i, b) => {
                let p = at(i, len);
                bytes.splice(p..p, b.iter().copied());
            }
            Edit::Delete(i, n) if len > 0 => {
                let p = i.index(len);
                bytes.drain(p..(p + n).min(len));
            }
            Edit::Repeat(i, n, times) if len > 0 => {
                let p = i.index(len);
                let chunk = bytes[p..(p + n).min(len)].to_vec();
                for _ in 0..*times {
                    bytes.splice(p..p, chunk.iter().copied());
                }
            }
            Edit::Truncate(i) if len > 0 => bytes.truncate(i.index(len)),
            Edit::Splice(i, source, from, n) => {
                let source = &pool[source.index(pool.len())];
                if !source.is_empty() {
                    let f = from.index(source.len());
                    let piece = &source[f..(f + n).min(source.len())];
                    let p = at(i, len);
                    bytes.splice(p..p, piece.iter().copied());
                }
            }
            _ => {}
        }
    }
    bytes
}

/// Queue bodies are strings: what SQS hands over is UTF-8, so invalid sequences arrive
/// replaced (the decoders only ever see `&str`).
fn as_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn byte_mutations_of_every_fixture_layer_keep_every_invariant() {
    let seeds = seeds();
    let pool: Vec<Vec<u8>> = seeds
        .iter()
        .flat_map(|s| {
            s.layers()
                .into_iter()
                .map(|l| s.text(l).as_bytes().to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    // Unmutated, every seed satisfies the oracles too (and the marker is really planted).
    let marked = seeds.iter().filter(|s| s.body.contains(SECRET)).count();
    assert!(
        marked >= 8,
        "the marker is planted in the fixtures' texts ({marked})"
    );
    for s in &seeds {
        for layer in s.layers() {
            s.run(layer, s.text(layer));
        }
    }
    let strategy = (
        0..seeds.len(),
        any::<Index>(),
        prop::collection::vec(edit(), 1..6),
    );
    fuzz("byte_mutation", 6000, strategy, |(seed, layer, edits)| {
        let seed = &seeds[seed];
        let layers = seed.layers();
        let layer = layers[layer.index(layers.len())];
        let mutated = mutate(seed.text(layer).as_bytes().to_vec(), &edits, &pool);
        seed.run(layer, &as_text(&mutated));
    });
}

// -------------------------------------------------------------------------------------
// Structure-aware: EUM batches for the regroup splitter
// -------------------------------------------------------------------------------------

const BUSINESS: &str = "111";
const CUSTOMERS: [&str; 4] = [
    "5491100000001",
    "5491100000002",
    "5491100000003",
    "5491100000004",
];

fn message() -> impl Strategy<Value = Value> {
    let good = (
        prop::sample::select(CUSTOMERS.to_vec()),
        0u32..40,
        1_700_000_000i64..1_700_000_006,
        prop_oneof![Just("text"), Just("image"), Just("reaction")],
    )
        .prop_map(|(from, id, ts, kind)| {
            let mut m = json!({"from": from, "id": format!("wamid.{id}"), "timestamp": ts.to_string(), "type": kind});
            match kind {
                "text" => m["text"] = json!({"body": format!("{SECRET} {id}")}),
                "image" => {
                    m["image"] = json!({"id": id.to_string(), "mime_type": "image/jpeg", "caption": SECRET})
                }
                _ => m["reaction"] = json!({"message_id": "wamid.out", "emoji": "👍"}),
            }
            m
        });
    // Malformed messages: each must become a problem of its own piece, not a loss.
    let bad = prop_oneof![
        Just(
            json!({"from": "5491100000001", "id": "wamid.bad1", "timestamp": "1700000001", "type": "text", "text": 5})
        ),
        Just(
            json!({"id": "wamid.bad2", "timestamp": "1700000002", "type": "text", "text": {"body": SECRET}})
        ),
        Just(json!(SECRET)),
        Just(json!(null)),
        Just(json!([1, 2])),
    ];
    prop_oneof![8 => good, 1 => bad]
}

fn status() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(CUSTOMERS.to_vec()),
        0u32..10,
        prop::sample::select(vec!["sent", "delivered", "read", "failed"]),
        1_700_000_000i64..1_700_000_006,
    )
        .prop_map(|(to, id, status, ts)| {
            json!({"id": format!("wamid.out{id}"), "status": status, "timestamp": ts.to_string(),
                   "recipient_id": to, "errors": [{"code": 131047, "title": "Re-engagement message"}]})
        })
}

fn change() -> impl Strategy<Value = Value> {
    (
        prop_oneof![8 => Just(Some("messages")), 1 => Just(Some("message_template_status_update")), 1 => Just(None)],
        prop::collection::vec(message(), 0..6),
        prop::collection::vec(status(), 0..3),
        prop_oneof![9 => Just(BUSINESS), 1 => Just("999")],
        any::<bool>(),
    )
        .prop_map(|(field, messages, statuses, business, errors)| {
            let mut value = json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": business},
                "contacts": CUSTOMERS.iter().map(|c| json!({"profile": {"name": SECRET}, "wa_id": c})).collect::<Vec<_>>(),
            });
            if !messages.is_empty() {
                value["messages"] = json!(messages);
            }
            if !statuses.is_empty() {
                value["statuses"] = json!(statuses);
            }
            if errors {
                value["errors"] = json!([{"code": 131000, "title": "Something went wrong"}]);
            }
            let mut change = json!({"value": value});
            if let Some(f) = field {
                change["field"] = json!(f);
            }
            change
        })
}

fn eum_batch() -> impl Strategy<Value = String> {
    (prop::collection::vec(change(), 1..4), any::<bool>()).prop_map(|(changes, envelope)| {
        let entry = json!({"id": "waba", "changes": changes});
        let event = json!({
            "context": {"MetaWabaIds": [], "MetaPhoneNumberIds": [{"metaPhoneNumberId": BUSINESS,
                "arn": "arn:aws:social-messaging:us-east-1:111122223333:phone-number-id/0a1b2c"}]},
            "whatsAppWebhookEntry": entry.to_string(),
            "aws_account_id": "111122223333",
            "message_timestamp": "2026-01-01T00:00:00Z",
        });
        if envelope {
            json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                   "Message": event.to_string()})
            .to_string()
        } else {
            event.to_string()
        }
    })
}

#[test]
fn eum_batches_split_for_fifo_without_loss_duplicates_or_reordering() {
    fuzz("regroup_batches", 800, eum_batch(), |body| {
        if let Some(pieces) = oracles::regroup_split(&body) {
            oracles::check_groups_and_order(BUSINESS, &pieces);
        }
    });
}

// -------------------------------------------------------------------------------------
// Structure-aware: agent attachment lists
// -------------------------------------------------------------------------------------

fn attachment_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!("")),
        Just(json!(SECRET)),
        Just(json!(format!("{SECRET}\u{0}\u{202e}../../etc/passwd"))),
        Just(json!(SECRET.repeat(80))),
        Just(json!("APPROVED")),
        Just(json!("approved")),
        Just(json!("REJECTED")),
        Just(json!("IN_PROGRESS")),
        Just(json!("audio/wav")),
        Just(json!("image/png; charset=x")),
        Just(json!("application/pdf")),
        Just(json!("no-slash")),
        Just(json!("a1")),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!([])),
        Just(json!({"x": SECRET})),
    ]
}

fn attachment() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "AttachmentId",
        "AttachmentName",
        "ContentType",
        "Status",
        "attachmentId",
        "Extra",
    ]);
    prop_oneof![
        8 => prop::collection::vec((keys, attachment_value()), 0..6).prop_map(|fields| {
            Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        }),
        1 => attachment_value(),
    ]
}

fn attachments() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(attachment(), 0..5).prop_map(|a| Value::Array(a).to_string()),
        1 => attachment_value().prop_map(|v| v.to_string()),
    ]
}

#[test]
fn agent_attachment_lists_of_any_shape_keep_every_invariant() {
    let seeds = seeds();
    let seed = seeds
        .iter()
        .find(|s| s.name.starts_with("connect-attachment"))
        .expect("the attachment fixture");
    let (around, _) = seed.connect.as_ref().unwrap();
    fuzz("agent_attachments", 3000, attachments(), |json| {
        oracles::attachments_json(&json, around, &seed.sns);
    });
}

// -------------------------------------------------------------------------------------
// The content checker
// -------------------------------------------------------------------------------------

fn pe() -> Vec<u8> {
    let mut b = vec![0u8; 0x80];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c] = 0x40;
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b
}

fn elf() -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b
}

/// The starts of real files of every family the checker knows, and of programs.
fn magic_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"[..],
        b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0",
        b"GIF89a\x01\0\x01\0\x80\0\0",
        b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0",
        b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0",
        b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x13OpusHead",
        b"ID3\x04\0\0\0\0\0\x00",
        b"\xff\xfb\x90\x64\0\0\0\0",
        b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom",
        b"\0\0\0\x1cftyp3gp4\0\0\0\0",
        b"PK\x03\x04\x14\0\0\0\x08\0",
        b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0[Content_Types].xml",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0",
        b"{\\rtf1\\ansi hello}",
        b"name,amount\nana,12\n",
        b"\xfe\xed\xfa\xcf\x07\0\0\x01",
        b"\xcf\xfa\xed\xfe\x07\0\0\x01",
        b"\0asm\x01\0\0\0",
        b"dex\n035\0",
        b"\xca\xfe\xba\xbe\0\0\0\x34",
        b"#!/bin/sh\necho hi\n",
        b"MZ is a prefix, not a program",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    seeds.push(pe());
    seeds.push(elf());
    seeds
}

fn claimed_mime() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic",
            "audio/ogg; codecs=opus", "audio/mpeg", "audio/wav", "audio/mp4", "video/mp4",
            "video/3gpp", "text/plain", "text/csv", "application/rtf", "text/rtf",
            "application/msword", "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text", "application/zip",
            "application/octet-stream", "application/x-unknown", "",
        ]).prop_map(str::to_string),
        2 => (prop::sample::select(vec!["IMAGE/JPEG", " application/PDF ;x=y", "audio/", "/", ";", "text/plain;;;"]))
            .prop_map(str::to_string),
        1 => "[ -~]{0,40}".prop_map(|s| s),
        1 => Just(format!("image/{SECRET}")),
    ]
}

fn content_bytes() -> impl Strategy<Value = Vec<u8>> {
    let seeds = magic_seeds();
    let pool = seeds.clone();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..600),
        4 => (
            prop::sample::select(seeds),
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(edit(), 0..4),
        )
            .prop_map(move |(seed, tail, edits)| {
                let mut bytes = seed;
                bytes.extend(tail);
                bytes.extend_from_slice(SECRET.as_bytes());
                mutate(bytes, &edits, &pool)
            }),
    ]
}

#[test]
fn the_content_checker_refuses_programs_whatever_they_claim_and_never_quotes_bytes() {
    // The programs themselves, under every claimed type, unmutated.
    for mime in [
        "application/pdf",
        "image/jpeg",
        "text/plain",
        "audio/ogg",
        "application/x-unknown",
    ] {
        for program in [pe(), elf()] {
            assert!(oracles::is_program(&program));
            oracles::content(mime, &program);
        }
    }
    fuzz(
        "content_check",
        6000,
        (claimed_mime(), content_bytes()),
        |(mime, bytes)| oracles::content(&mime, &bytes),
    );
}
