//! Supervisor: starts the actor graph, restarts an actor that died (a panic stops an
//! actix actor; its address then reports disconnected), exports liveness, and owns the
//! registry of per-customer [`Conversation`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::connect_event_intake::ConnectEventIntake;
use super::connect_upload::ConnectUpload;
use super::conversation::{self, Conversation, ConversationDeps};
use super::inbound_intake::InboundIntake;
use super::media_download::{MediaDownload, MediaLocation};
use super::media_flow::MediaDeps;
use super::transcoder_pool::{TranscoderConfig, TranscoderPool};
use super::whatsapp_send::WhatsAppSend;
use super::{Outcome, Work};
use crate::adapters::http::HttpTransfer;
use crate::config::Behaviour;
use crate::lifecycle::Lifecycle;
use crate::metrics::ActorMetrics;
use crate::ports::{ConnectChat, DedupeStore, MediaStore, Queue, SessionStore, WhatsApp};

/// How often the supervisor looks at its children.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Everything the graph is built from.
#[derive(Clone)]
pub struct Ports {
    pub inbound_queue: Arc<dyn Queue>,
    pub connect_queue: Arc<dyn Queue>,
    pub sessions: Arc<dyn SessionStore>,
    pub dedupe: Arc<dyn DedupeStore>,
    pub connect: Arc<dyn ConnectChat>,
    pub whatsapp: Arc<dyn WhatsApp>,
    /// Media objects (customer files, converted agent audio); None disables file transfer.
    pub media: Option<Arc<dyn MediaStore>>,
    /// Transfers to and from pre-signed URLs, within the URL allowlist.
    pub http: HttpTransfer,
}

/// Route work to a customer's conversation, creating it if needed. Answers whether the
/// conversation took it; if not, the work was already answered with a retry.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Route {
    pub customer_id: String,
    pub work: Work,
}

/// A conversation stopped for lack of work; forget it unless it was already replaced.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConversationIdle {
    pub customer_id: String,
    pub addr: Addr<Conversation>,
}

/// Number of live conversations (for tests and diagnostics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ConversationCount;

pub struct Supervisor {
    ports: Ports,
    behaviour: Arc<Behaviour>,
    streaming_topic_arn: String,
    lifecycle: Arc<Lifecycle>,
    conversations: HashMap<String, Addr<Conversation>>,
    connect_upload: Option<Addr<ConnectUpload>>,
    whatsapp: Option<Addr<WhatsAppSend>>,
    inbound: Option<Addr<InboundIntake>>,
    connect_events: Option<Addr<ConnectEventIntake>>,
    media_download: Option<Addr<MediaDownload>>,
    transcoder: Option<Addr<TranscoderPool>>,
}

impl Supervisor {
    pub fn new(
        ports: Ports,
        behaviour: Behaviour,
        streaming_topic_arn: String,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        Self {
            ports,
            behaviour: Arc::new(behaviour),
            streaming_topic_arn,
            lifecycle,
            conversations: HashMap::new(),
            connect_upload: None,
            whatsapp: None,
            inbound: None,
            connect_events: None,
            media_download: None,
            transcoder: None,
        }
    }

    fn conversation_deps(&self, ctx: &Context<Self>) -> Option<ConversationDeps> {
        Some(ConversationDeps {
            dedupe: self.ports.dedupe.clone(),
            connect_upload: self.connect_upload.clone()?,
            whatsapp: self.whatsapp.clone()?,
            supervisor: ctx.address(),
            behaviour: self.behaviour.clone(),
            media: self.media_deps(),
        })
    }

    fn media_deps(&self) -> Option<MediaDeps> {
        let settings = &self.behaviour.media;
        Some(MediaDeps {
            download: self.media_download.clone()?,
            transcoder: self.transcoder.clone()?,
            store: self.ports.media.clone()?,
            location: MediaLocation {
                bucket: settings.bucket.clone()?,
                prefix: settings.prefix.clone(),
            },
            http: self.ports.http.clone(),
            rules: settings.rules.clone(),
        })
    }

    /// Starts every child that is not running; counts a restart for those that were.
    fn ensure_children(&mut self, ctx: &mut Context<Self>) {
        fn dead<A: Actor>(addr: &Option<Addr<A>>) -> bool {
            addr.as_ref().is_none_or(|a| !a.connected())
        }
        fn note_restart<A: Actor>(addr: &Option<Addr<A>>, actor: &'static str) {
            if addr.is_some() {
                ActorMetrics::new(actor).restarted();
                tracing::error!(actor, "actor died; restarting it");
            }
        }
        if dead(&self.connect_upload) {
            note_restart(&self.connect_upload, "connect_upload");
            let (connect, sessions) = (self.ports.connect.clone(), self.ports.sessions.clone());
            let http = self.ports.http.clone();
            let (topic, minutes) = (
                self.streaming_topic_arn.clone(),
                self.behaviour.chat_duration_minutes,
            );
            self.connect_upload = Some(actix::Supervisor::start(move |_| {
                ConnectUpload::new(
                    connect.clone(),
                    sessions.clone(),
                    http.clone(),
                    &topic,
                    minutes,
                )
            }));
        }
        if dead(&self.whatsapp) {
            note_restart(&self.whatsapp, "whatsapp_send");
            let (whatsapp, rate) = (
                self.ports.whatsapp.clone(),
                self.behaviour.whatsapp_rate_per_sec,
            );
            self.whatsapp = Some(actix::Supervisor::start(move |_| {
                WhatsAppSend::new(whatsapp.clone(), rate)
            }));
        }
        if let (Some(store), Some(bucket)) = (&self.ports.media, &self.behaviour.media.bucket) {
            if dead(&self.media_download) {
                note_restart(&self.media_download, "media_download");
                let (whatsapp, store) = (self.ports.whatsapp.clone(), store.clone());
                let location = MediaLocation {
                    bucket: bucket.clone(),
                    prefix: self.behaviour.media.prefix.clone(),
                };
                let max = self.behaviour.media.rules.max_bytes;
                self.media_download = Some(actix::Supervisor::start(move |_| {
                    MediaDownload::new(whatsapp.clone(), store.clone(), location.clone(), max)
                }));
            }
            if dead(&self.transcoder) {
                note_restart(&self.transcoder, "transcoder_pool");
                let settings = &self.behaviour.media;
                let config = TranscoderConfig {
                    ffmpeg_path: settings.ffmpeg_path.clone(),
                    workers: settings.transcoder_workers,
                    job_timeout: settings.transcode_timeout,
                    ..TranscoderConfig::default()
                };
                self.transcoder = Some(actix::Supervisor::start(move |_| {
                    TranscoderPool::new(config.clone())
                }));
            }
        }
        if dead(&self.inbound) {
            note_restart(&self.inbound, "inbound_intake");
            self.inbound = Some(
                InboundIntake::new(
                    self.ports.inbound_queue.clone(),
                    ctx.address(),
                    self.lifecycle.clone(),
                    self.behaviour.max_in_flight,
                )
                .start(),
            );
        }
        if dead(&self.connect_events) {
            note_restart(&self.connect_events, "connect_event_intake");
            self.connect_events = Some(
                ConnectEventIntake::new(
                    self.ports.connect_queue.clone(),
                    self.ports.sessions.clone(),
                    ctx.address(),
                    self.lifecycle.clone(),
                    self.behaviour.max_in_flight,
                )
                .start(),
            );
        }
        self.lifecycle.set_actors_running(true);
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.ensure_children(ctx);
        ctx.run_interval(CHECK_EVERY, |act, ctx| {
            act.conversations.retain(|_, addr| addr.connected());
            act.ensure_children(ctx);
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.lifecycle.set_actors_running(false);
    }
}

impl Handler<Route> for Supervisor {
    type Result = bool;

    fn handle(&mut self, route: Route, ctx: &mut Self::Context) -> bool {
        let Some(deps) = self.conversation_deps(ctx) else {
            route.work.refuse(Outcome::retry(
                "actors are starting",
                Duration::from_secs(1),
            ));
            return false;
        };
        let mut work = route.work;
        // Two tries: the cached address may belong to a conversation that just stopped.
        for _ in 0..2 {
            let addr = self
                .conversations
                .entry(route.customer_id.clone())
                .or_insert_with(|| {
                    Conversation::new(route.customer_id.clone(), deps.clone()).start()
                })
                .clone();
            match addr.try_send(work) {
                Ok(()) => {
                    conversation::METRICS.enqueued();
                    return true;
                }
                Err(SendError::Full(w)) => {
                    // Backpressure: the customer already has a full mailbox; the queue
                    // keeps the message and offers it again shortly.
                    w.refuse(Outcome::retry(
                        "conversation mailbox full",
                        Duration::from_secs(2),
                    ));
                    conversation::METRICS.error("mailbox_full");
                    return false;
                }
                Err(SendError::Closed(w)) => {
                    self.conversations.remove(&route.customer_id);
                    work = w;
                }
            }
        }
        work.refuse(Outcome::retry(
            "conversation unavailable",
            Duration::from_secs(1),
        ));
        false
    }
}

impl Handler<ConversationIdle> for Supervisor {
    type Result = ();

    fn handle(&mut self, idle: ConversationIdle, _: &mut Self::Context) {
        if self.conversations.get(&idle.customer_id) == Some(&idle.addr) {
            self.conversations.remove(&idle.customer_id);
        }
    }
}

impl Handler<ConversationCount> for Supervisor {
    type Result = usize;

    fn handle(&mut self, _: ConversationCount, _: &mut Self::Context) -> usize {
        self.conversations.len()
    }
}
