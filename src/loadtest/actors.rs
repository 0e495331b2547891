//! `waconnect loadtest actor <name>`: one actor driven with in-memory ports.
//!
//! What "one message" is for each actor, and when it counts as done:
//!
//! | actor | message | done when |
//! |---|---|---|
//! | `connect_upload` | `Deliver` of one text to a customer's existing chat | SendMessage answered |
//! | `whatsapp_send` | `SendWhatsApp` of an agent reply, while `--ack-texts-per-sec` customer texts' acknowledgements (read, 👀, ✅) arrive | the reply is sent |
//! | `media_download` | `Download` of a `--media-bytes` image | its bytes are read back |
//! | `transcoder_pool` | `Transcode` of a 3 s OGG/Opus voice note to WAV (real ffmpeg; port latency does not apply) | WAV out |
//! | `conversation` | `Work::Inbound` text routed to one of `--customers` conversations with a chat | outcome Done |
//! | `inbound_intake` | an EUM text event (SNS envelope) on the inbound queue | the queue message is deleted |
//! | `connect_event_intake` | an agent chat item (SNS envelope) on the Connect queue | the queue message is deleted |
//!
//! The three last run the actor with the rest of the graph behind it (supervisor,
//! conversations, ConnectUpload, WhatsAppSend) on the same in-memory ports: an intake
//! alone does nothing measurable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use clap::Args;
use serde_json::json;
use tokio::sync::oneshot;

use super::measure::{status_bytes, Meter};
use super::ports::{Calls, Latency, MemConnect, MemMedia, MemQueue, MemStore, MemWhatsApp};
use super::{drive, ActorName, Load, PortLatency, Report};
use crate::actors::connect_upload::{ConnectUpload, Deliver};
use crate::actors::media_download::{Download, MediaDownload, MediaLocation};
use crate::actors::supervisor::{Adapters, Route, Stats, Supervisor};
use crate::actors::transcoder_pool::{Transcode, TranscoderConfig, TranscoderPool};
use crate::actors::whatsapp_send::{Acknowledge, SendWhatsApp, WhatsAppSend};
use crate::actors::{Outcome, Work};
use crate::adapters::http::HttpTransfer;
use crate::adapters::local::MemoryQueue;
use crate::app::AppError;
use crate::config::{Behaviour, BehaviourSettings};
use crate::delivery::Arrival;
use crate::domain::{reactions, text_message, Customer, CustomerMessage, MessageContent, Piece};
use crate::lifecycle::Lifecycle;
use crate::media::transcode::Profile;
use crate::ports::{Queue, Session, CHANNEL_WHATSAPP};
use crate::sim::{sns_envelope, SimIdentity};
use crate::supervision::Probe;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:waconnect-loadtest";
const BUSINESS_NUMBER_ID: &str = "phone-number-id-loadtest";

#[derive(Debug, Clone, Args)]
pub struct ActorArgs {
    /// The actor to drive.
    #[arg(value_enum)]
    pub name: ActorName,
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub ports: PortLatency,
    /// Customers the messages are spread over (each has a chat before the run).
    #[arg(long, default_value_t = 100)]
    pub customers: u64,
    /// whatsapp_send: customer texts per second whose acknowledgements (read mark, 👀,
    /// ✅: three sends each) compete with the replies for the number's rate.
    #[arg(long, default_value_t = 0.0)]
    pub ack_texts_per_sec: f64,
    /// whatsapp_send: SendWhatsAppMessage calls per second per business number.
    #[arg(long, default_value_t = 80)]
    pub whatsapp_rate: u32,
    /// media_download: size of each file.
    #[arg(long, default_value_t = 100_000)]
    pub media_bytes: u64,
}

pub async fn run(args: ActorArgs) -> Result<Report, AppError> {
    let latency = args.ports.latency();
    let calls = Arc::new(Calls::default());
    let name = args.name.as_str();
    let extra = match args.name {
        ActorName::ConnectUpload => connect_upload(&args, latency, &calls).await?,
        ActorName::WhatsappSend => whatsapp_send(&args, latency, &calls).await?,
        ActorName::MediaDownload => media_download(&args, latency, &calls).await?,
        ActorName::TranscoderPool => transcoder_pool(&args).await?,
        ActorName::Conversation | ActorName::InboundIntake | ActorName::ConnectEventIntake => {
            graph(&args, latency, &calls).await?
        }
    };
    let (meter, mut extra) = extra;
    let messages = meter
        .completed
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1) as f64;
    let per_message: serde_json::Map<String, serde_json::Value> = calls
        .snapshot()
        .into_iter()
        .map(|(op, n)| {
            (
                op.to_string(),
                json!((n as f64 / messages * 100.0).round() / 100.0),
            )
        })
        .collect();
    extra["port_calls_per_message"] = per_message.into();
    extra["port_latency_ms"] = json!(args.ports.port_latency_ms);
    extra["port_latency_distribution"] = json!(format!("{:?}", args.ports.latency_distribution));
    Ok(meter.report("actor", name, extra))
}

type Ran = (Arc<Meter>, serde_json::Value);

fn outstanding(actor: &'static str) -> impl FnMut(&Meter) {
    move |m: &Meter| m.depth(actor, m.outstanding())
}

fn customer(i: u64) -> Customer {
    Customer {
        customer_id: format!("549110000{i:04}"),
        name: format!("Load {i}"),
        business_number_id: BUSINESS_NUMBER_ID.into(),
    }
}

fn http() -> Result<HttpTransfer, AppError> {
    HttpTransfer::new(Default::default()).map_err(AppError::Other)
}

async fn connect_upload(
    args: &ActorArgs,
    latency: Latency,
    calls: &Arc<Calls>,
) -> Result<Ran, AppError> {
    let connect = Arc::new(MemConnect::new(latency, calls.clone()));
    let store = Arc::new(MemStore::new(latency, calls.clone()));
    let upload = ConnectUpload::new(
        connect,
        store,
        http()?,
        TOPIC,
        1440,
        Probe::new("connect_upload"),
    )
    .start();
    let customers = args.customers.max(1);
    let mut sessions = Vec::new();
    for i in 0..customers {
        let session = upload
            .send(Deliver {
                customer: customer(i),
                session: None,
                pieces: vec![Piece::Text("hola".into())],
                source_id: format!("warm-{i}"),
            })
            .await
            .map_err(|e| AppError::Other(e.to_string()))?
            .map_err(|e| AppError::Other(e.to_string()))?;
        sessions.push(session);
    }
    let sessions = Arc::new(sessions);
    calls.reset();
    let meter = Arc::new(Meter::new(None));
    let send = |n: u64| {
        let (upload, sessions) = (upload.clone(), sessions.clone());
        async move {
            let i = n % sessions.len() as u64;
            let started = Instant::now();
            upload
                .send(Deliver {
                    customer: customer(i),
                    session: Some(sessions[i as usize].clone()),
                    pieces: vec![Piece::Text(format!("lt-{n}"))],
                    source_id: format!("lt-{n}"),
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(started.elapsed())
        }
    };
    drive(
        &args.load,
        meter.clone(),
        send,
        outstanding("connect_upload"),
    )
    .await;
    Ok((meter, json!({"customers": customers})))
}

async fn whatsapp_send(
    args: &ActorArgs,
    latency: Latency,
    calls: &Arc<Calls>,
) -> Result<Ran, AppError> {
    let metrics = metrics_handle();
    let whatsapp = Arc::new(MemWhatsApp::new(latency, calls.clone(), 0));
    let sender = WhatsAppSend::new(
        whatsapp.clone(),
        args.whatsapp_rate,
        Probe::new("whatsapp_send"),
    )
    .start();
    let meter = Arc::new(Meter::new(None));
    // Customer texts' acknowledgements, as conversations hand them over: read + 👀 when
    // the text arrives, ✅ when it reached the agent (here right after).
    let acks = (args.ack_texts_per_sec > 0.0).then(|| {
        let sender = sender.clone();
        let (rate, until) = (args.ack_texts_per_sec, args.load.duration);
        let customers = args.customers.max(1);
        tokio::spawn(async move {
            let started = Instant::now();
            let every = Duration::from_secs_f64(1.0 / rate);
            let mut tick = tokio::time::interval(every);
            let mut n: u64 = 0;
            while started.elapsed() < until {
                tick.tick().await;
                let c = customer(n % customers);
                let ack = |reaction, mark_read| Acknowledge {
                    business_number_id: BUSINESS_NUMBER_ID.into(),
                    customer_id: c.customer_id.clone(),
                    wamid: format!("wamid.lt-{n}"),
                    mark_read,
                    reaction: Some(reaction),
                };
                sender.do_send(ack(reactions::SEEN, true));
                sender.do_send(ack(reactions::DONE, false));
                n += 1;
            }
            n
        })
    });
    let send = |n: u64| {
        let sender = sender.clone();
        async move {
            let started = Instant::now();
            sender
                .send(SendWhatsApp {
                    business_number_id: BUSINESS_NUMBER_ID.into(),
                    body: text_message(&customer(n % 100).customer_id, &format!("lt-r{n}"), None),
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(started.elapsed())
        }
    };
    drive(
        &args.load,
        meter.clone(),
        send,
        outstanding("whatsapp_send"),
    )
    .await;
    let texts = match acks {
        Some(task) => task.await.unwrap_or(0),
        None => 0,
    };
    let (most_per_sec, sends, acks_sent) = whatsapp.send_figures();
    let text = metrics.map(|h| h.render()).unwrap_or_default();
    let series_value = |series: String| {
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let acks = |outcome: &str| {
        series_value(format!(
            "{}{{outcome=\"{outcome}\"}} ",
            crate::metrics::WHATSAPP_ACKS
        ))
    };
    let pending = series_value(format!(
        "{}{{lane=\"ack\"}} ",
        crate::metrics::WHATSAPP_PENDING
    ));
    Ok((
        meter,
        json!({
            "whatsapp_rate": args.whatsapp_rate,
            "ack_texts": texts,
            "acks_handed_over": texts * 3,
            "acks_sent": acks_sent,
            "acks_merged": acks("merged"),
            "acks_dropped": acks("dropped"),
            "acks_pending_at_end": pending,
            "sends": sends,
            "most_sends_in_one_second": most_per_sec,
        }),
    ))
}

async fn media_download(
    args: &ActorArgs,
    latency: Latency,
    calls: &Arc<Calls>,
) -> Result<Ran, AppError> {
    let whatsapp = Arc::new(MemWhatsApp::new(latency, calls.clone(), args.media_bytes));
    let store = Arc::new(MemMedia {
        latency,
        calls: calls.clone(),
        size: args.media_bytes as usize,
    });
    let location = MediaLocation {
        bucket: "loadtest".into(),
        prefix: "media/".into(),
    };
    let download = MediaDownload::new(
        whatsapp,
        store,
        location,
        20 * 1024 * 1024,
        Probe::new("media_download"),
    )
    .start();
    let meter = Arc::new(Meter::new(None));
    let send = |n: u64| {
        let download = download.clone();
        async move {
            let started = Instant::now();
            let got = download
                .send(Download {
                    business_number_id: BUSINESS_NUMBER_ID.into(),
                    media_id: n.to_string(),
                    declared_mime: "image/jpeg".into(),
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if got.bytes.is_empty() {
                return Err("empty download".into());
            }
            Ok(started.elapsed())
        }
    };
    drive(
        &args.load,
        meter.clone(),
        send,
        outstanding("media_download"),
    )
    .await;
    Ok((meter, json!({"media_bytes": args.media_bytes})))
}

/// A 3 s OGG/Opus voice note (a tone), made with ffmpeg as WhatsApp would send it.
pub async fn voice_note(ffmpeg: &str) -> Result<Vec<u8>, AppError> {
    let out = tokio::process::Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            "-application",
            "voip",
            "-f",
            "ogg",
            "pipe:1",
        ])
        .output()
        .await
        .map_err(|e| AppError::Other(format!("cannot run {ffmpeg}: {e}")))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(AppError::Other(format!(
            "{ffmpeg} could not make a voice note: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

async fn transcoder_pool(args: &ActorArgs) -> Result<Ran, AppError> {
    let config = TranscoderConfig::default();
    let note = Arc::new(voice_note(&config.ffmpeg_path.to_string_lossy()).await?);
    let workers = config.workers;
    let pool = TranscoderPool::with_probe(config, Probe::new("transcoder_pool")).start();
    let meter = Arc::new(Meter::new(None));
    let send = |_: u64| {
        let (pool, note) = (pool.clone(), note.clone());
        async move {
            let started = Instant::now();
            let wav = pool
                .send(Transcode {
                    profile: Profile::VoiceToWav,
                    input_mime: "audio/ogg; codecs=opus".into(),
                    input: note.as_ref().clone(),
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if !wav.starts_with(b"RIFF") {
                return Err("not a WAV".into());
            }
            Ok(started.elapsed())
        }
    };
    let mut load = args.load.clone();
    load.concurrency = load.concurrency.or(Some(workers));
    drive(&load, meter.clone(), send, outstanding("transcoder_pool")).await;
    Ok((
        meter,
        json!({"workers": workers, "note_bytes": note.len(), "note_seconds": 3}),
    ))
}

/// Messages pushed on a queue and not yet settled: when each was pushed, and who waits.
type Waiting = Arc<Mutex<HashMap<String, (Instant, oneshot::Sender<bool>)>>>;

fn settle_watch(waiting: &Waiting) -> super::ports::OnDelete {
    let waiting = waiting.clone();
    Arc::new(move |id: &str, done: bool| {
        let entry = waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if let Some((_, tx)) = entry {
            let _ = tx.send(done);
        }
    })
}

/// Pushes `body` and waits until its queue message is settled.
async fn push_and_wait(
    queue: &MemoryQueue,
    waiting: &Waiting,
    body: String,
) -> Result<Duration, String> {
    let (tx, rx) = oneshot::channel();
    let started = Instant::now();
    {
        // Registered before the push, so a settle right after cannot be missed.
        let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
        let id = queue.push(body);
        w.insert(id, (started, tx));
    }
    match rx.await {
        Ok(true) => Ok(started.elapsed()),
        Ok(false) => Err("dead-lettered".into()),
        Err(_) => Err("never settled".into()),
    }
}

fn inbound_body(identity: &SimIdentity, i: u64, text: &str) -> String {
    let c = customer(i);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let message = json!({
        "from": c.customer_id,
        "id": format!("wamid.lt-{}", uuid::Uuid::new_v4().simple()),
        "timestamp": now.to_string(),
        "type": "text",
        "text": {"body": text},
    });
    let number = &identity.numbers()[0];
    let event = crate::sim::webhook_event(identity, number, &c.customer_id, &c.name, message);
    sns_envelope(crate::sim::DEFAULT_INBOUND_TOPIC_ARN, &event, &[])
}

fn contact_of(i: u64) -> String {
    format!("contact-lt-{i}")
}

fn chat_item_body(i: u64, text: &str) -> String {
    let contact = contact_of(i);
    let item = json!({
        "AbsoluteTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "Id": uuid::Uuid::new_v4().to_string(),
        "ParticipantId": "agent-lt",
        "DisplayName": "Agent",
        "ParticipantRole": "AGENT",
        "InitialContactId": contact,
        "ContactId": contact,
        "Type": "MESSAGE",
        "ContentType": "text/plain",
        "Content": text,
    });
    let attributes: Vec<(String, String)> = [
        ("InitialContactId", contact.as_str()),
        ("ContactId", contact.as_str()),
        ("ParticipantRole", "AGENT"),
        ("Type", "MESSAGE"),
        ("ContentType", "text/plain"),
        ("MessageVisibility", "ALL"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    sns_envelope(TOPIC, &item.to_string(), &attributes)
}

/// Samples the depth in front of each actor of a running graph every 100 ms.
pub fn sample_graph(
    meter: Arc<Meter>,
    supervisor: Addr<Supervisor>,
    queues: Vec<(&'static str, Arc<MemoryQueue>)>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut rendered = Instant::now();
        loop {
            tick.tick().await;
            if let Ok(stats) = supervisor.send(Stats).await {
                meter.depth("conversation", stats.mailbox_high_water as u64);
            }
            for (actor, queue) in &queues {
                let (visible, in_flight) = queue.depth();
                meter.depth(actor, (visible + in_flight) as u64);
            }
            // The exporter renders every series: keep it rare, it costs CPU.
            if let Some(handle) = metrics
                .as_ref()
                .filter(|_| rendered.elapsed() >= Duration::from_millis(500))
            {
                rendered = Instant::now();
                for (actor, value) in gauges(&handle.render()) {
                    meter.depth(actor, value);
                }
            }
        }
    })
}

/// The gauges that tell a depth in front of an actor, from `/metrics` text.
fn gauges(text: &str) -> Vec<(&'static str, u64)> {
    let mut whatsapp = 0.0;
    let mut ffmpeg = 0.0;
    for line in text.lines() {
        let value = || {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if line.starts_with(crate::metrics::WHATSAPP_PENDING) {
            whatsapp += value();
        } else if line.starts_with(crate::metrics::FFMPEG_QUEUED) {
            ffmpeg += value();
        }
    }
    vec![
        ("whatsapp_send", whatsapp as u64),
        ("transcoder_pool", ffmpeg as u64),
    ]
}

/// The router's metrics recorder, once per process (a load run measures their cost too).
pub fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| crate::metrics::install().ok())
        .clone()
}

async fn graph(args: &ActorArgs, latency: Latency, calls: &Arc<Calls>) -> Result<Ran, AppError> {
    let metrics = metrics_handle();
    let waiting: Waiting = Arc::default();
    let visibility = Duration::from_secs(30);
    let inbound = Arc::new(MemoryQueue::new("inbound", visibility));
    let connect_events = Arc::new(MemoryQueue::new("connect", visibility));
    let queue = |q: &Arc<MemoryQueue>| {
        Arc::new(MemQueue::new(
            q.clone(),
            latency,
            calls.clone(),
            settle_watch(&waiting),
        )) as Arc<dyn Queue>
    };
    let store = Arc::new(MemStore::new(latency, calls.clone()));
    let whatsapp = Arc::new(MemWhatsApp::new(latency, calls.clone(), 0));
    let adapters = Adapters {
        inbound_queue: queue(&inbound),
        connect_queue: queue(&connect_events),
        inbound_fifo: None,
        connect_fifo: None,
        sessions: store.clone(),
        dedupe: store.clone(),
        leases: store.clone(),
        connect: Arc::new(MemConnect::new(latency, calls.clone())),
        whatsapp,
        media: None,
        transcriber: None,
        http: http()?,
    };
    // The per-text path an agent's chat takes: no burst aggregation (a bot's chat joins
    // quick texts and sends them after a quiet gap; that would measure the gap).
    let behaviour = Behaviour::from_settings(&BehaviourSettings {
        aggregate: Some(false),
        ..BehaviourSettings::default()
    })?;
    let lifecycle = Arc::new(Lifecycle::default());
    let supervisor = Supervisor::new(adapters, behaviour, TOPIC.into(), lifecycle).start();
    let customers = args.customers.max(1);
    let identity = SimIdentity::default();
    let rss_before = status_bytes("self", "VmRSS").unwrap_or(0);
    let business_number_id = identity.phone_number_id();
    match args.name {
        ActorName::ConnectEventIntake => {
            for i in 0..customers {
                store.insert_session(Session {
                    contact_id: contact_of(i),
                    customer_id: customer(i).customer_id,
                    channel: CHANNEL_WHATSAPP.into(),
                    participant_token: format!("ptoken-{i}"),
                    connection_token: format!("conn-{i}"),
                    business_number_id: business_number_id.clone(),
                    name: customer(i).name,
                    expires_at: chrono::Utc::now().timestamp() + 86_400,
                    ended: false,
                    opened_by: None,
                    agent_joined: false,
                });
            }
        }
        _ => {
            // Every customer has a chat (and a conversation that cached it) before the run.
            let warm = (0..customers)
                .map(|i| push_and_wait(&inbound, &waiting, inbound_body(&identity, i, "hola")));
            for r in futures::future::join_all(warm).await {
                r.map_err(|e| AppError::Other(format!("warm-up: {e}")))?;
            }
        }
    }
    // Settle what the warm-up set off (acknowledgements) before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = status_bytes("self", "VmRSS").unwrap_or(0);
    calls.reset();
    let meter = Arc::new(Meter::new(None));
    let sampler = sample_graph(
        meter.clone(),
        supervisor.clone(),
        vec![
            ("inbound_intake", inbound.clone()),
            ("connect_event_intake", connect_events.clone()),
        ],
        metrics,
    );
    let name = args.name;
    let send = |n: u64| {
        let (inbound, connect_events, waiting, supervisor) = (
            inbound.clone(),
            connect_events.clone(),
            waiting.clone(),
            supervisor.clone(),
        );
        let identity = identity.clone();
        let business_number_id = business_number_id.clone();
        async move {
            let i = n % customers;
            match name {
                ActorName::InboundIntake => {
                    push_and_wait(
                        &inbound,
                        &waiting,
                        inbound_body(&identity, i, &format!("lt-{n}")),
                    )
                    .await
                }
                ActorName::ConnectEventIntake => {
                    push_and_wait(
                        &connect_events,
                        &waiting,
                        chat_item_body(i, &format!("lt-r{n}")),
                    )
                    .await
                }
                _ => {
                    let c = customer(i);
                    let (reply, answer) = oneshot::channel();
                    let started = Instant::now();
                    let work = Work::Inbound {
                        message: Box::new(CustomerMessage {
                            wamid: format!("wamid.lt-{n}-{}", uuid::Uuid::new_v4().simple()),
                            customer_id: c.customer_id.clone(),
                            customer_name: Some(c.name),
                            timestamp: chrono::Utc::now().timestamp(),
                            business_number_id,
                            reply_to: None,
                            content: MessageContent::Text {
                                body: format!("lt-{n}"),
                            },
                        }),
                        arrival: Arrival {
                            queue_message_id: format!("lt-{n}"),
                            receive_count: 1,
                            queued_at: Some(SystemTime::now()),
                            received_before: false,
                        },
                        reply,
                    };
                    supervisor
                        .send(Route {
                            customer_id: c.customer_id,
                            work,
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    match answer.await {
                        Ok(Outcome::Done) => Ok(started.elapsed()),
                        Ok(other) => Err(format!("outcome {}", other.label())),
                        Err(_) => Err("dropped".into()),
                    }
                }
            }
        }
    };
    drive(&args.load, meter.clone(), send, outstanding(name.as_str())).await;
    sampler.abort();
    let rss_end = status_bytes("self", "VmRSS").unwrap_or(0);
    let conversations = supervisor.send(Stats).await.map_or(0, |s| s.conversations);
    Ok((
        meter,
        json!({
            "customers": customers,
            "conversations_alive": conversations,
            "rss_bytes_before_customers": rss_before,
            "rss_bytes_with_idle_customers": rss_idle,
            "rss_bytes_at_end": rss_end,
            "rss_bytes_per_customer": rss_idle.saturating_sub(rss_before) / customers,
        }),
    ))
}
