//! `waconnect loadtest e2e`: the whole graph, driven as a person would through the
//! simulator's control API (customers write, agents answer), with completion read from
//! its event stream (`GET /sim/events`):
//!
//! - a customer text (`text`, or `new` for a customer without a chat) is done when the
//!   chat has it (an `item` event of role CUSTOMER with its text);
//! - a voice note (`voice`) when the chat has the customer's converted attachment;
//! - an agent reply (`reply`) when the customer's inbox has it (an `inbox` event).
//!
//! Embedded (default): simulator, router and driver in this process, on in-process queues
//! and the embedded store, as `waconnect local` runs; CPU and RSS are the whole process's.
//! With `--sim URL` the driver only talks to that simulator (a router runs elsewhere,
//! e.g. `waconnect run` against moto); `--router-pid` measures that router's CPU and RSS
//! and `--router-metrics` counts its AWS calls per message.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use base64::Engine as _;
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::actors::{metrics_handle, sample_graph, voice_note};
use super::measure::{status_bytes, Meter};
use super::{drive, ensure_loopback, Load, Report};
use crate::actors::supervisor::Supervisor;
use crate::app::AppError;
use crate::config::BehaviourSettings;
use crate::lifecycle::Lifecycle;

#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub load: Load,
    /// Drive this simulator (loopback only) instead of the embedded graph.
    #[arg(long)]
    pub sim: Option<String>,
    /// With `--sim`: the router's process id, whose CPU and peak RSS are measured.
    #[arg(long)]
    pub router_pid: Option<u32>,
    /// With `--sim`: the router's /metrics URL (loopback), read before and after the run
    /// for its AWS calls per message.
    #[arg(long)]
    pub router_metrics: Option<String>,
    /// Customers with a chat before the run; texts, voice notes and replies go to them.
    #[arg(long, default_value_t = 20)]
    pub customers: u64,
    /// What the messages are, as weights: `text=80,new=5,voice=5,reply=10`.
    #[arg(long, default_value = "text=100")]
    pub mix: Mix,
}

/// Kinds of message in a run and their weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(Vec<(Kind, u32)>, Vec<Kind>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    New,
    Voice,
    Reply,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part}: expected kind=weight"))?;
            let kind = match name.trim() {
                "text" => Kind::Text,
                "new" => Kind::New,
                "voice" => Kind::Voice,
                "reply" => Kind::Reply,
                other => return Err(format!("unknown kind {other} (text, new, voice, reply)")),
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part}: weight must be a whole number"))?;
            if weight > 0 {
                parts.push((kind, weight));
            }
        }
        if parts.is_empty() {
            return Err("the mix needs at least one kind with a weight above 0".into());
        }
        let total: u32 = parts.iter().map(|(_, w)| w).sum();
        if total > 10_000 {
            return Err("the weights add up to more than 10000".into());
        }
        // One cycle of `total` messages, each kind spread evenly: the next is the kind
        // furthest behind its share.
        let mut given = vec![0u32; parts.len()];
        let mut schedule = Vec::with_capacity(total as usize);
        for p in 1..=total {
            let (i, _) = parts
                .iter()
                .enumerate()
                .map(|(i, (_, w))| {
                    (
                        i,
                        f64::from(*w) * f64::from(p) / f64::from(total) - f64::from(given[i]),
                    )
                })
                .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best });
            given[i] += 1;
            schedule.push(parts[i].0);
        }
        Ok(Mix(parts, schedule))
    }
}

impl Mix {
    /// The kind of message `n`.
    pub fn kind(&self, n: u64) -> Kind {
        self.1[(n % self.1.len() as u64) as usize]
    }

    fn label(&self) -> String {
        self.0
            .iter()
            .map(|(k, w)| format!("{}={w}", format!("{k:?}").to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Completion of what the driver sent, keyed by what the simulator will show.
#[derive(Default)]
struct Expect {
    /// Text content -> who waits for it in a chat.
    chat_texts: HashMap<String, oneshot::Sender<()>>,
    /// Text content -> who waits for it in a customer's inbox.
    inbox_texts: HashMap<String, oneshot::Sender<()>>,
    /// Customer -> voice notes waiting for their attachment, in order.
    attachments: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// Customer -> their chat's contact id.
    contacts: HashMap<String, String>,
}

type Shared = Arc<Mutex<Expect>>;

fn lock(e: &Shared) -> std::sync::MutexGuard<'_, Expect> {
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the simulator's event stream and completes what waits for each event.
async fn follow_events(
    client: reqwest::Client,
    sim: String,
    expect: Shared,
    ready: oneshot::Sender<()>,
) {
    let response = match client.get(format!("{sim}/sim/events")).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the simulator's events");
            return;
        }
    };
    let _ = ready.send(());
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::<u8>::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut name = "";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if name == "item" || name == "inbox" {
                if let Ok(value) = serde_json::from_str::<Value>(&data) {
                    on_event(name, &value, &expect);
                }
            }
        }
    }
}

fn on_event(name: &str, data: &Value, expect: &Shared) {
    let mut e = lock(expect);
    if name == "item" {
        let item = &data["item"];
        if item["participant_role"] != "CUSTOMER" {
            return;
        }
        let customer = data["customer_id"].as_str().unwrap_or_default().to_string();
        if let Some(contact) = data["contact_id"].as_str() {
            e.contacts.insert(customer.clone(), contact.to_string());
        }
        if item["type"] == "ATTACHMENT" {
            if let Some(tx) = e
                .attachments
                .get_mut(&customer)
                .and_then(VecDeque::pop_front)
            {
                let _ = tx.send(());
            }
        } else if let Some(tx) = item["content"]
            .as_str()
            .and_then(|c| e.chat_texts.remove(c))
        {
            let _ = tx.send(());
        }
    } else if let Some(body) = data["entry"]["body"]["text"]["body"].as_str() {
        if let Some(tx) = e.inbox_texts.remove(body) {
            let _ = tx.send(());
        }
    }
}

/// The control API calls of one run.
#[derive(Clone)]
struct Driver {
    client: reqwest::Client,
    sim: String,
    expect: Shared,
    voice: Arc<String>,
    run: String,
}

fn wa_id(i: u64) -> String {
    format!("5491188{i:07}")
}

impl Driver {
    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path}: {status} {value}"));
        }
        Ok(value)
    }

    /// The customer writes `text`; resolves when the chat has it.
    async fn text(&self, customer: &str, text: String) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        lock(&self.expect).chat_texts.insert(text.clone(), tx);
        self.post(
            &format!("/sim/customers/{customer}/messages"),
            json!({"type": "text", "text": {"body": text}, "profile_name": "Load test"}),
        )
        .await?;
        rx.await.map_err(|_| "the event stream ended".to_string())
    }

    async fn voice(&self, customer: &str) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        lock(&self.expect)
            .attachments
            .entry(customer.to_string())
            .or_default()
            .push_back(tx);
        self.post(
            &format!("/sim/customers/{customer}/messages"),
            json!({"type": "audio", "audio": {"voice": true},
                   "media": {"content_base64": *self.voice, "mime_type": "audio/ogg; codecs=opus"}}),
        )
        .await?;
        rx.await.map_err(|_| "the event stream ended".to_string())
    }

    async fn reply(&self, customer: &str, text: String) -> Result<(), String> {
        let contact = lock(&self.expect)
            .contacts
            .get(customer)
            .cloned()
            .ok_or_else(|| format!("no chat for {customer}"))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.expect).inbox_texts.insert(text.clone(), tx);
        self.post(
            &format!("/sim/chats/{contact}/agent/messages"),
            json!({"text": text}),
        )
        .await?;
        rx.await.map_err(|_| "the event stream ended".to_string())
    }

    async fn one(&self, kind: Kind, n: u64, customers: u64) -> Result<Duration, String> {
        let started = Instant::now();
        let customer = wa_id(n % customers);
        match kind {
            Kind::Text => self.text(&customer, format!("lt-{}-{n}", self.run)).await?,
            Kind::New => {
                self.text(&wa_id(customers + n), format!("lt-{}-{n}", self.run))
                    .await?
            }
            Kind::Voice => self.voice(&customer).await?,
            Kind::Reply => {
                self.reply(&customer, format!("lt-r-{}-{n}", self.run))
                    .await?
            }
        }
        Ok(started.elapsed())
    }
}

/// `waconnect_aws_calls_total` by operation, from `/metrics` text.
fn aws_calls(text: &str) -> HashMap<String, f64> {
    let mut calls = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(crate::metrics::AWS_CALLS))
    {
        let Some(op) = line
            .split("operation=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *calls.entry(op.to_string()).or_insert(0.0) += value;
    }
    calls
}

pub async fn run(args: E2eArgs) -> Result<Report, AppError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| AppError::Other(e.to_string()))?;
    let mut embedded = None;
    let metrics = if args.sim.is_none() {
        metrics_handle()
    } else {
        None
    };
    let sim = match &args.sim {
        Some(url) => {
            ensure_loopback(url)?;
            url.trim_end_matches('/').to_string()
        }
        None => {
            let dir =
                std::env::temp_dir().join(format!("waconnect-loadtest-{}", std::process::id()));
            let graph = crate::modes::local_graph(
                "127.0.0.1:0".parse().expect("a socket address"),
                &dir,
                // Every text its own chat item, counted as it arrives: no burst
                // aggregation (a bot's chat joins quick texts; the load is an agent's).
                &BehaviourSettings {
                    aggregate: Some(false),
                    ..BehaviourSettings::default()
                },
                1,
            )
            .await?;
            let sim_url = graph.sim_url.clone();
            let queues = vec![
                ("inbound_intake", graph.inbound.clone()),
                ("connect_event_intake", graph.connect_events.clone()),
            ];
            let supervisor = Supervisor::new(
                graph.adapters,
                graph.behaviour,
                graph.target.streaming_topic_arn,
                Arc::new(Lifecycle::default()),
            )
            .start();
            embedded = Some((supervisor, queues, dir));
            sim_url
        }
    };
    let router_metrics = match &args.router_metrics {
        Some(url) => {
            ensure_loopback(url)?;
            Some(url.clone())
        }
        None => None,
    };
    let read_calls = || {
        let (client, url, metrics) = (client.clone(), router_metrics.clone(), metrics.clone());
        async move {
            match (url, metrics) {
                (Some(url), _) => match client.get(url).send().await {
                    Ok(r) => aws_calls(&r.text().await.unwrap_or_default()),
                    Err(_) => HashMap::new(),
                },
                (None, Some(handle)) => aws_calls(&handle.render()),
                (None, None) => HashMap::new(),
            }
        }
    };

    let expect: Shared = Arc::default();
    let (ready, is_ready) = oneshot::channel();
    let events = tokio::spawn(follow_events(
        client.clone(),
        sim.clone(),
        expect.clone(),
        ready,
    ));
    is_ready
        .await
        .map_err(|_| AppError::Other(format!("cannot read the event stream of {sim}")))?;
    let voice = if args.mix.0.iter().any(|(k, _)| *k == Kind::Voice) {
        base64::engine::general_purpose::STANDARD.encode(voice_note("ffmpeg").await?)
    } else {
        String::new()
    };
    let driver = Driver {
        client: client.clone(),
        sim: sim.clone(),
        expect,
        voice: Arc::new(voice),
        run: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    };
    let customers = args.customers.max(1);
    let rss_before = status_bytes("self", "VmRSS").unwrap_or(0);
    // Every customer has a chat before the run (not measured).
    let warm = (0..customers).map(|i| {
        let driver = driver.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(60),
                driver.text(&wa_id(i), format!("lt-{}-warm-{i}", driver.run)),
            )
            .await
            .map_err(|_| "warm-up timed out".to_string())?
        }
    });
    for r in futures::future::join_all(warm).await {
        r.map_err(|e| AppError::Other(format!("warm-up: {e}")))?;
    }
    // What the warm-up set off after its texts reached the chats (the acknowledgements,
    // joining the new chats) is not counted in the run.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_warm = status_bytes("self", "VmRSS").unwrap_or(0);
    let calls_before = read_calls().await;

    let meter = Arc::new(Meter::new(args.router_pid.filter(|_| args.sim.is_some())));
    let sampler = embedded.as_ref().map(|(supervisor, queues, _)| {
        sample_graph(
            meter.clone(),
            supervisor.clone(),
            queues.clone(),
            metrics.clone(),
        )
    });
    let mix = args.mix.clone();
    let send = |n: u64| {
        let (driver, kind) = (driver.clone(), mix.kind(n));
        async move {
            tokio::time::timeout(Duration::from_secs(30), driver.one(kind, n, customers))
                .await
                .map_err(|_| format!("{kind:?} {n} not done within 30 s"))?
        }
    };
    drive(&args.load, meter.clone(), send, |_| {}).await;
    if let Some(s) = sampler {
        s.abort();
    }
    let calls_after = read_calls().await;
    events.abort();
    let done = meter
        .completed
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1) as f64;
    let mut per_message: Vec<(String, f64)> = calls_after
        .iter()
        .map(|(op, after)| {
            (
                op.clone(),
                after - calls_before.get(op).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, n)| *n > 0.0)
        .map(|(op, n)| (op, (n / done * 100.0).round() / 100.0))
        .collect();
    per_message.sort_by(|a, b| a.0.cmp(&b.0));
    let total: f64 = per_message.iter().map(|(_, n)| n).sum();
    let mut extra = json!({
        "mix": args.mix.label(),
        "customers": customers,
        "simulator": if args.sim.is_some() { "external" } else { "embedded" },
        "aws_calls_per_message": per_message.into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
        "aws_calls_per_message_total": (total * 100.0).round() / 100.0,
    });
    if args.sim.is_none() {
        extra["rss_bytes_before_customers"] = json!(rss_before);
        extra["rss_bytes_with_idle_customers"] = json!(rss_warm);
        extra["rss_bytes_per_idle_customer"] =
            json!(rss_warm.saturating_sub(rss_before) / customers);
    }
    let report = meter.report("e2e", &args.mix.label(), extra);
    if let Some((_, _, dir)) = embedded {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_spreads_each_kind_by_its_weight() {
        let mix: Mix = "text=80,new=5,voice=5,reply=10".parse().unwrap();
        let mut counts = HashMap::new();
        for n in 0..100 {
            *counts.entry(format!("{:?}", mix.kind(n))).or_insert(0) += 1;
        }
        assert_eq!(counts["Text"], 80);
        assert_eq!(counts["Reply"], 10);
        assert_eq!(counts["New"], 5);
        assert_eq!(counts["Voice"], 5);
        assert!("text=0".parse::<Mix>().is_err());
        assert!("chat=1".parse::<Mix>().is_err());
    }

    #[test]
    fn aws_calls_are_summed_by_operation() {
        let text = "waconnect_aws_calls_total{service=\"sqs\",operation=\"ReceiveMessage\",outcome=\"ok\"} 3\n\
                    waconnect_aws_calls_total{service=\"sqs\",operation=\"ReceiveMessage\",outcome=\"transient\"} 1\n\
                    other 5\n";
        assert_eq!(aws_calls(text)["ReceiveMessage"], 4.0);
    }
}
