//! [`Sim`]: the simulator (`waconnect sim`) as a child process, and a client of its
//! control API (customers, agents, chats, inboxes, faults).

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

/// Deadline for the simulator to answer `/sim/healthz`.
pub const SIM_START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Sim {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:43121` (also the Connect/Participant/EUM endpoint).
    pub url: String,
    pub log_path: PathBuf,
    /// The CA of the simulator's TLS side (Transcribe Streaming), written at start-up.
    pub ca_file: PathBuf,
    http: reqwest::Client,
}

impl Sim {
    /// `waconnect sim --listen 127.0.0.1:PORT --inbound-queue-url .. --inbound-topic-arn ..
    /// --tls-ca-out <log dir>/sim-ca.pem`
    pub async fn start(res: &Resources) -> Sim {
        Sim::start_with(res, &[]).await
    }

    /// [`Sim::start`] with more flags, e.g. `["--business-numbers", "2"]`.
    pub async fn start_with(res: &Resources, extra_args: &[&str]) -> Sim {
        let port = free_port();
        let log_path = res.log_dir.join("sim.log");
        let ca_file = res.log_dir.join("sim-ca.pem");
        let args: Vec<String> = [
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--inbound-queue-url",
            &res.inbound_queue_url,
            "--inbound-topic-arn",
            &res.eum_inbound_topic_arn,
            "--tls-ca-out",
            ca_file.to_str().expect("utf-8 log dir"),
        ]
        .iter()
        .chain(extra_args)
        .map(|s| s.to_string())
        .collect();
        let mut env = res.aws_env();
        env.push(("RUST_LOG".into(), "info,waconnect=debug".into()));
        let mut child = spawn_waconnect(&args, &env, &log_path);
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(
            "simulator",
            &mut child,
            &format!("{url}/sim/healthz"),
            SIM_START_DEADLINE,
            &log_path,
        )
        .await;
        Sim {
            child: Some(child),
            url,
            log_path,
            ca_file,
            http: http_client(),
        }
    }

    /// Where the simulator serves Transcribe Streaming (TLS, same port).
    pub fn transcribe_url(&self) -> String {
        self.url.replacen("http://", "https://", 1)
    }

    /// `PUT /sim/transcribe`: what every later transcription answers.
    pub async fn set_transcription(&self, setting: Value) {
        self.call(reqwest::Method::PUT, "/sim/transcribe", Some(setting))
            .await;
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log_path)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator {method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            panic!(
                "simulator {method} {path} with {} answered {status}: {}",
                body.map(|b| truncate(&b.to_string(), 300))
                    .unwrap_or_default(),
                truncate(&text, 500)
            );
        }
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// The customer `wa_id` sends a text; returns its wamid.
    pub async fn send_text(&self, wa_id: &str, text: &str) -> String {
        self.send_message(wa_id, json!({"type": "text", "text": {"body": text}}))
            .await
    }

    /// The customer `wa_id` sends a Meta message object (without from/id/timestamp; may carry
    /// `profile_name` and `context`). Returns the wamid the simulator gave it.
    pub async fn send_message(&self, wa_id: &str, message: Value) -> String {
        let out = self
            .post(&format!("/sim/customers/{wa_id}/messages"), message)
            .await;
        out["wamid"]
            .as_str()
            .unwrap_or_else(|| panic!("simulator answered no wamid: {out}"))
            .to_string()
    }

    /// Enqueues `body` verbatim into the inbound SQS queue. Returns the simulator's answer.
    pub async fn send_raw(&self, body: impl Into<String>) -> Value {
        let url = format!("{}/sim/inbound/raw", self.url);
        let resp = self
            .http
            .post(&url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator POST /sim/inbound/raw: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "simulator POST /sim/inbound/raw answered {status}: {}",
            truncate(&text, 500)
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// What the business sent to `wa_id`, in order: `[{"id","type","body"}]`.
    pub async fn inbox(&self, wa_id: &str) -> Vec<Value> {
        let out = self.get(&format!("/sim/customers/{wa_id}/inbox")).await;
        out["messages"].as_array().cloned().unwrap_or_default()
    }

    /// All chats the simulated Connect knows.
    pub async fn chats(&self) -> Vec<Value> {
        let out = self.get("/sim/chats").await;
        out["chats"].as_array().cloned().unwrap_or_default()
    }

    /// Chats whose `attributes.customerId` is `wa_id`, in the simulator's order.
    pub async fn chats_for(&self, wa_id: &str) -> Vec<Value> {
        self.chats()
            .await
            .into_iter()
            .filter(|c| c["attributes"]["customerId"].as_str() == Some(wa_id))
            .collect()
    }

    /// The customer's chat: the last active one, else the last one.
    pub async fn chat_for(&self, wa_id: &str) -> Option<Value> {
        let chats = self.chats_for(wa_id).await;
        chats
            .iter()
            .rev()
            .find(|c| c["state"] == "active")
            .or_else(|| chats.last())
            .cloned()
    }

    /// The chat with this contact id.
    pub async fn chat(&self, contact_id: &str) -> Option<Value> {
        self.chats()
            .await
            .into_iter()
            .find(|c| c["contact_id"].as_str() == Some(contact_id))
    }

    /// The agent writes `text` (visibility ALL, role AGENT). Returns the item id.
    pub async fn agent_says(&self, contact_id: &str, text: &str) -> String {
        self.agent_says_with(contact_id, json!({"text": text}))
            .await
    }

    /// `{"text", "visibility"?: ALL|AGENT|CUSTOMER, "role"?: AGENT|SYSTEM|CUSTOM_BOT}`.
    pub async fn agent_says_with(&self, contact_id: &str, body: Value) -> String {
        let out = self
            .post(&format!("/sim/chats/{contact_id}/agent/messages"), body)
            .await;
        out["id"].as_str().unwrap_or_default().to_string()
    }

    pub async fn end_chat(&self, contact_id: &str) {
        self.post(&format!("/sim/chats/{contact_id}/end"), json!({}))
            .await;
    }

    /// The chat's tokens stop working silently (AccessDenied on the next participant call).
    pub async fn expire_chat(&self, contact_id: &str) {
        self.post(&format!("/sim/chats/{contact_id}/expire"), json!({}))
            .await;
    }

    /// Transfers the contact; returns the new contact id.
    pub async fn transfer_chat(&self, contact_id: &str) -> String {
        let out = self
            .post(&format!("/sim/chats/{contact_id}/transfer"), json!({}))
            .await;
        out["contact_id"]
            .as_str()
            .unwrap_or_else(|| panic!("transfer answered no contact_id: {out}"))
            .to_string()
    }

    /// `{"operation","error"?,"rate","latency_ms","count"}`.
    pub async fn add_fault(&self, fault: Value) {
        self.post("/sim/faults", fault).await;
    }

    pub async fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/sim/faults", None)
            .await;
    }

    /// The customer reads the business message `message_id` (a `read` status follows).
    pub async fn customer_reads(&self, wa_id: &str, message_id: &str) {
        self.post(
            &format!("/sim/customers/{wa_id}/read"),
            json!({ "message_id": message_id }),
        )
        .await;
    }

    /// Opens or closes the customer's 24-hour window.
    pub async fn set_window(&self, wa_id: &str, open: bool) {
        self.post(
            &format!("/sim/customers/{wa_id}/window"),
            json!({ "open": open }),
        )
        .await;
    }

    /// The agent types in the chat. Returns the event's item id.
    pub async fn agent_typing(&self, contact_id: &str) -> String {
        let out = self
            .post(&format!("/sim/chats/{contact_id}/agent/typing"), json!({}))
            .await;
        out["id"].as_str().unwrap_or_default().to_string()
    }

    /// An agent joins the chat.
    pub async fn agent_joins(&self, contact_id: &str, display_name: &str) {
        self.post(
            &format!("/sim/chats/{contact_id}/agent/join"),
            json!({ "display_name": display_name }),
        )
        .await;
    }

    /// The business numbers: `[{"phone_number_id","display_phone_number","meta_phone_number_id"}]`.
    pub async fn business_numbers(&self) -> Vec<Value> {
        let out = self.get("/sim/business-numbers").await;
        out["numbers"].as_array().cloned().unwrap_or_default()
    }

    /// API calls the simulator served: `[{"operation","status","at"}]`.
    pub async fn calls(&self) -> Vec<Value> {
        let out = self.get("/sim/calls").await;
        out["calls"].as_array().cloned().unwrap_or_default()
    }

    /// How many calls of `operation` the simulator served (whatever their outcome).
    pub async fn count_calls(&self, operation: &str) -> usize {
        self.calls()
            .await
            .iter()
            .filter(|c| c["operation"] == operation)
            .count()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}
