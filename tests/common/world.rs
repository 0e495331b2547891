//! Scenario-level helpers: a [`World`] (resources + simulator + router), readers for the
//! simulator's chats and inboxes, and builders of wire payloads from `tests/fixtures/`.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::{wait_for, Opts, QueueMessage, Resources, Router, Sim, FLOW_DEADLINE};

// ---------------------------------------------------------------------------------------------
// World
// ---------------------------------------------------------------------------------------------

/// Everything one scenario needs, torn down (processes killed) on drop.
/// Field order matters: the router is dropped before the simulator.
pub struct World {
    pub router: Router,
    pub sim: Sim,
    pub res: Resources,
}

impl World {
    /// Fresh resources, simulator and router for the test `name` (log folder name).
    pub async fn start(name: &str) -> World {
        World::start_with(name, Opts::default(), &[]).await
    }

    pub async fn start_with(name: &str, opts: Opts, router_env: &[(&str, &str)]) -> World {
        let res = Resources::provision(name, opts).await;
        let sim = Sim::start(&res).await;
        let router = Router::start(&res, &sim, router_env).await;
        World { router, sim, res }
    }

    /// For scenarios that must act before the router runs.
    pub fn from_parts(res: Resources, sim: Sim, router: Router) -> World {
        World { router, sim, res }
    }

    /// The customer sends a text; returns its wamid.
    pub async fn customer_says(&self, wa_id: &str, text: &str) -> String {
        self.sim.send_text(wa_id, text).await
    }

    /// Waits until the customer's messages in their chats add up to at least `expected.len()`
    /// lines, then asserts there is exactly one chat for the customer and its customer lines
    /// are exactly `expected` (in order, once each). Returns that chat.
    pub async fn expect_single_chat_with(&self, wa_id: &str, expected: &[&str]) -> Value {
        let sim = &self.sim;
        let n = expected.len();
        let chats = wait_for(
            &format!("{n} customer line(s) {expected:?} from {wa_id} in Connect"),
            FLOW_DEADLINE,
            async || {
                let chats = sim.chats_for(wa_id).await;
                let total: usize = chats.iter().map(|c| customer_lines(c).len()).sum();
                if total >= n {
                    Ok(chats)
                } else {
                    Err(describe_chats(&chats))
                }
            },
        )
        .await;
        assert_eq!(
            chats.len(),
            1,
            "expected exactly one chat for {wa_id}, got: {}",
            describe_chats(&chats)
        );
        assert_eq!(
            customer_lines(&chats[0]),
            expected,
            "customer lines of {wa_id}'s chat (in order, once each); chat: {}",
            describe_chats(&chats)
        );
        chats[0].clone()
    }

    /// Waits until the customer has a chat with at least one customer message; returns it.
    pub async fn wait_for_chat(&self, wa_id: &str) -> Value {
        let sim = &self.sim;
        wait_for(
            &format!("a chat for {wa_id} with a customer message"),
            FLOW_DEADLINE,
            async || {
                let chats = sim.chats_for(wa_id).await;
                chats
                    .iter()
                    .find(|c| !customer_messages(c).is_empty())
                    .cloned()
                    .ok_or_else(|| describe_chats(&chats))
            },
        )
        .await
    }

    /// Waits until a chat of `wa_id` other than `old_contact_id` has a customer line equal to
    /// `line`; returns that chat.
    pub async fn wait_for_new_chat_with(
        &self,
        wa_id: &str,
        old_contact_id: &str,
        line: &str,
    ) -> Value {
        let sim = &self.sim;
        wait_for(
            &format!("a new chat (not {old_contact_id}) for {wa_id} containing {line:?}"),
            FLOW_DEADLINE,
            async || {
                let chats = sim.chats_for(wa_id).await;
                chats
                    .iter()
                    .find(|c| {
                        contact_id(c) != old_contact_id
                            && customer_lines(c).iter().any(|l| l == line)
                    })
                    .cloned()
                    .ok_or_else(|| describe_chats(&chats))
            },
        )
        .await
    }

    /// Waits until the chat `contact_id` has at least `n` customer lines; returns the chat.
    pub async fn wait_for_lines_in(&self, contact: &str, n: usize) -> Value {
        let sim = &self.sim;
        wait_for(
            &format!("{n} customer line(s) in chat {contact}"),
            FLOW_DEADLINE,
            async || match sim.chat(contact).await {
                Some(c) if customer_lines(&c).len() >= n => Ok(c),
                Some(c) => Err(describe_chats(&[c])),
                None => Err(format!("no chat {contact}")),
            },
        )
        .await
    }

    /// Waits until the customer's inbox has a text message with exactly `text`.
    pub async fn wait_for_inbox_text(&self, wa_id: &str, text: &str) -> Vec<Value> {
        let sim = &self.sim;
        wait_for(
            &format!("text {text:?} in {wa_id}'s WhatsApp inbox"),
            FLOW_DEADLINE,
            async || {
                let inbox = sim.inbox(wa_id).await;
                if inbox_texts(&inbox).iter().any(|t| t == text) {
                    Ok(inbox)
                } else {
                    Err(format!("{inbox:?}"))
                }
            },
        )
        .await
    }

    /// Waits until `url` holds no message at all (visible or in flight): everything in it has
    /// been handled and deleted by the router.
    pub async fn wait_queue_drained(&self, url: &str) {
        let res = &self.res;
        wait_for(
            &format!("queue {url} to be drained"),
            FLOW_DEADLINE,
            async || {
                let (visible, in_flight) = res.queue_counts(url).await;
                if visible + in_flight == 0 {
                    Ok(())
                } else {
                    Err(format!("visible={visible} in_flight={in_flight}"))
                }
            },
        )
        .await
    }

    /// All Connect stream events handled (agent messages forwarded or filtered).
    pub async fn wait_connect_stream_drained(&self) {
        self.wait_queue_drained(&self.res.connect_queue_url).await;
    }

    /// Inbound queue drained (customer messages and delivery statuses acknowledged) and
    /// nothing dead-lettered.
    pub async fn expect_inbound_settled(&self) {
        self.wait_queue_drained(&self.res.inbound_queue_url).await;
        let dlq = self.res.dlq_messages(&self.res.inbound_dlq_url).await;
        assert!(
            dlq.is_empty(),
            "good inbound traffic must not be dead-lettered; inbound DLQ holds: {dlq:?}"
        );
    }

    /// Waits until a message of the inbound DLQ carries `original` (verbatim body, or a JSON
    /// body with a string field equal to it); returns it.
    pub async fn wait_dead_lettered(&self, original: &str) -> QueueMessage {
        let res = &self.res;
        wait_for(
            "the malformed message in the inbound DLQ",
            FLOW_DEADLINE,
            async || {
                let msgs = res.dlq_messages(&res.inbound_dlq_url).await;
                msgs.iter()
                    .find(|m| dead_letter_carries(m, original))
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "{} message(s): {:?}",
                            msgs.len(),
                            msgs.iter()
                                .map(|m| (
                                    &m.message_id,
                                    super::truncate(&m.body, 200),
                                    &m.attributes
                                ))
                                .collect::<Vec<_>>()
                        )
                    })
            },
        )
        .await
    }

    /// Number of calls the simulator served for `operation`.
    pub async fn calls_of(&self, operation: &str) -> usize {
        self.sim.count_calls(operation).await
    }
}

/// Whether a dead letter carries the original body (verbatim, or inside a JSON wrapper).
pub fn dead_letter_carries(m: &QueueMessage, original: &str) -> bool {
    if m.body == original {
        return true;
    }
    match serde_json::from_str::<Value>(&m.body) {
        Ok(v) => json_has_string(&v, original),
        Err(_) => false,
    }
}

/// Whether a dead letter says why: a message attribute, or a JSON wrapper around the original.
pub fn dead_letter_has_reason(m: &QueueMessage, original: &str) -> bool {
    !m.attributes.is_empty() || (m.body != original && dead_letter_carries(m, original))
}

fn json_has_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| json_has_string(x, s)),
        Value::Object(o) => o.values().any(|x| json_has_string(x, s)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading chats (GET /sim/chats) and inboxes (GET /sim/customers/{wa_id}/inbox)
// ---------------------------------------------------------------------------------------------

pub fn contact_id(chat: &Value) -> String {
    chat["contact_id"]
        .as_str()
        .unwrap_or_else(|| panic!("chat without contact_id: {chat}"))
        .to_string()
}

pub fn chat_items(chat: &Value) -> Vec<Value> {
    chat["items"].as_array().cloned().unwrap_or_default()
}

/// Contents of the chat's MESSAGE items written by the CUSTOMER (the initial message
/// included), in chat order.
pub fn customer_messages(chat: &Value) -> Vec<String> {
    chat_items(chat)
        .iter()
        .filter(|i| i["type"] == "MESSAGE" && i["participant_role"] == "CUSTOMER")
        .map(|i| i["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The customer's messages split into non-empty trimmed lines: the same whether the router
/// sends each WhatsApp text as its own chat message or joins a burst with newlines.
pub fn customer_lines(chat: &Value) -> Vec<String> {
    customer_messages(chat)
        .iter()
        .flat_map(|m| {
            m.lines()
                .map(str::trim)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// All customer text of a chat joined with newlines (for "contains" checks).
pub fn customer_text(chat: &Value) -> String {
    customer_messages(chat).join("\n")
}

/// Items of a given type (MESSAGE / EVENT / ATTACHMENT).
pub fn items_of_type(chat: &Value, kind: &str) -> Vec<Value> {
    chat_items(chat)
        .into_iter()
        .filter(|i| i["type"] == kind)
        .collect()
}

/// Short description of chats for failure messages.
pub fn describe_chats(chats: &[Value]) -> String {
    let parts: Vec<String> = chats
        .iter()
        .map(|c| {
            let items: Vec<String> = chat_items(c)
                .iter()
                .map(|i| {
                    format!(
                        "{}/{}:{}",
                        i["type"].as_str().unwrap_or("?"),
                        i["participant_role"].as_str().unwrap_or("?"),
                        super::truncate(
                            i["content"]
                                .as_str()
                                .or(i["content_type"].as_str())
                                .unwrap_or(""),
                            80
                        )
                    )
                })
                .collect();
            format!(
                "chat {} ({}) items {:?}",
                c["contact_id"].as_str().unwrap_or("?"),
                c["state"].as_str().unwrap_or("?"),
                items
            )
        })
        .collect();
    format!("{} chat(s): [{}]", chats.len(), parts.join("; "))
}

/// Bodies of the text messages the business sent (`type == "text"`), in order.
pub fn inbox_texts(inbox: &[Value]) -> Vec<String> {
    inbox
        .iter()
        .filter(|m| m["type"] == "text")
        .map(|m| {
            m["body"]["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Reactions the business sent: `(message_id, emoji)`, in order.
pub fn inbox_reactions(inbox: &[Value]) -> Vec<(String, String)> {
    inbox
        .iter()
        .filter(|m| m["type"] == "reaction")
        .map(|m| {
            (
                m["body"]["reaction"]["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["body"]["reaction"]["emoji"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Message ids the business marked as read, in order.
pub fn inbox_reads(inbox: &[Value]) -> Vec<String> {
    inbox
        .iter()
        .filter(|m| m["type"] == "read")
        .map(|m| {
            m["body"]["message_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Inbox id (wamid) of the business text message with exactly `text`.
pub fn inbox_id_of_text(inbox: &[Value], text: &str) -> Option<String> {
    inbox
        .iter()
        .find(|m| m["type"] == "text" && m["body"]["text"]["body"] == text)
        .and_then(|m| m["id"].as_str().map(str::to_string))
}

/// Collapses runs of whitespace: compares texts "modulo whitespace at split points".
pub fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Fixtures (tests/fixtures/, copied from the shared examples; tests never read outside the repo)
// ---------------------------------------------------------------------------------------------

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("parse fixture {name}: {e}"))
}

pub fn new_wamid() -> String {
    format!(
        "wamid.TEST{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    )
}

/// An SNS envelope (raw delivery off) of an EUM event holding one customer message, built from
/// `eum-text.sns.json`: `message` is a Meta message object; `from`, `id` (a fresh wamid, unless
/// `message` has one) and `timestamp` are filled in. Returns `(body, wamid)`.
pub fn eum_envelope_with_message(wa_id: &str, mut message: Value) -> (String, String) {
    let mut envelope = fixture_json("eum-text.sns.json");
    let mut event: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("EUM event");
    let mut entry: Value = serde_json::from_str(
        event["whatsAppWebhookEntry"]
            .as_str()
            .expect("whatsAppWebhookEntry"),
    )
    .expect("webhook entry");
    let wamid = message["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(new_wamid);
    message["from"] = json!(wa_id);
    message["id"] = json!(wamid);
    message["timestamp"] = json!(unix_now().to_string());
    let value = &mut entry["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(wa_id);
    value["messages"] = json!([message]);
    event["whatsAppWebhookEntry"] = json!(entry.to_string());
    envelope["Message"] = json!(event.to_string());
    envelope["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    (envelope.to_string(), wamid)
}

/// Same SNS envelope with a new SNS MessageId (what a re-publication of the same event gives).
pub fn with_new_sns_message_id(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).expect("SNS envelope");
    v["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    v.to_string()
}

/// A Connect streaming SNS envelope built from a `connect-*.sns.json` fixture, retargeted at a
/// real contact: ids in the message and in the MessageAttributes replaced, a fresh item Id,
/// and `content` (when given) as the item's Content.
pub fn connect_event_from_fixture(
    fixture_name: &str,
    contact_id: &str,
    initial_contact_id: &str,
    content: Option<&str>,
) -> String {
    let mut envelope = fixture_json(fixture_name);
    let mut msg: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("item");
    msg["ContactId"] = json!(contact_id);
    msg["InitialContactId"] = json!(initial_contact_id);
    msg["Id"] = json!(uuid::Uuid::new_v4().to_string());
    msg["AbsoluteTime"] = json!(iso_now());
    if let Some(c) = content {
        msg["Content"] = json!(c);
    }
    envelope["Message"] = json!(msg.to_string());
    envelope["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    if let Some(attrs) = envelope["MessageAttributes"].as_object_mut() {
        if attrs.contains_key("ContactId") {
            attrs["ContactId"]["Value"] = json!(contact_id);
        }
        if attrs.contains_key("InitialContactId") {
            attrs["InitialContactId"]["Value"] = json!(initial_contact_id);
        }
    }
    envelope.to_string()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn iso_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Short pause used only to let a burst be "rapid" relative to processing; never asserted on.
pub async fn pause_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
