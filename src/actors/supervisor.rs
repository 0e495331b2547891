//! Supervisor: starts the actor graph, keeps every shared actor alive behind a stable
//! [`Slot`], and owns the registry of per-customer [`Conversation`]s.
//!
//! Every [`CHECK_EVERY`] it looks at each child, as quickwit's supervisor does:
//!
//! - **dead** (it panicked: its address no longer connects): a new incarnation is started
//!   in its slot, so every holder of the slot reaches it on the next send; work that was in
//!   the dead one's mailbox fails with a mailbox error and is retried by the policy;
//! - **stuck** (it has work outside a protected zone and its progress counter has not moved
//!   for `stuck_after`): its task is aborted, its in-flight work cancelled, and a new
//!   incarnation started the same way.
//!
//! Each restart is counted (`waconnect_actor_restarts_total`, and
//! `waconnect_actor_stuck_total` for stuck ones) and logged. An actor restarted more than
//! `restart_budget` times within ten minutes makes `/healthz` fail, so Kubernetes restarts
//! the pod; `/readyz` fails while any slot is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::{AbortHandle, Abortable};
use metrics::{counter, gauge};

use super::connect_event_intake::ConnectEventIntake;
use super::connect_upload::ConnectUpload;
use super::conversation::{self, Conversation, ConversationDeps, MediaDeps, Transcription};
use super::inbound_intake::InboundIntake;
use super::media_download::{MediaDownload, MediaLocation};
use super::regroup::{Regroup, Splitter};
use super::transcoder_pool::{TranscoderConfig, TranscoderPool};
use super::whatsapp_send::WhatsAppSend;
use super::{Outcome, Work};
use crate::adapters::http::HttpTransfer;
use crate::config::{Behaviour, RESTART_WINDOW};
use crate::delivery::dedupe::RecentDedupe;
use crate::delivery::gate::Gate;
use crate::delivery::hold::BurstHold;
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{
    ConnectChat, DedupeStore, LeaseStore, MediaStore, Queue, SessionStore, Transcriber, WhatsApp,
};
use crate::supervision::{Fault, Probe, Slot};

/// How often the supervisor looks at its children.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Mailbox of the shared executors: their work is bounded upstream (in-flight budget,
/// per-customer gates); this only has to be large enough never to be the limit.
const EXECUTOR_MAILBOX: usize = 4096;

/// The adapters the graph is built from (one per external system).
#[derive(Clone)]
pub struct Adapters {
    pub inbound_queue: Arc<dyn Queue>,
    pub connect_queue: Arc<dyn Queue>,
    /// The FIFO stage of each direction, when configured: the standard queue is then
    /// regrouped into it and conversations are fed from it.
    pub inbound_fifo: Option<Arc<dyn Queue>>,
    pub connect_fifo: Option<Arc<dyn Queue>>,
    pub sessions: Arc<dyn SessionStore>,
    pub dedupe: Arc<dyn DedupeStore>,
    /// Where the regroup stages take turns (only one replica regroups a direction).
    pub leases: Arc<dyn LeaseStore>,
    pub connect: Arc<dyn ConnectChat>,
    pub whatsapp: Arc<dyn WhatsApp>,
    /// Media objects (customer files, converted agent audio); None disables file transfer.
    pub media: Option<Arc<dyn MediaStore>>,
    /// Transfers to and from pre-signed URLs, within the URL allowlist.
    pub http: HttpTransfer,
    /// Amazon Transcribe Streaming, when voice-note transcription is on.
    pub transcriber: Option<Arc<dyn Transcriber>>,
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

/// What the supervisor has seen (for tests and diagnostics).
#[derive(Message)]
#[rtype(result = "SupervisorStats")]
pub struct Stats;

#[derive(Debug, Clone, Default, MessageResponse)]
pub struct SupervisorStats {
    /// Live conversation actors.
    pub conversations: usize,
    /// The most work ever waiting at once in one customer's mailbox.
    pub mailbox_high_water: usize,
    /// Work refused because a customer's mailbox was full.
    pub refusals: u64,
    /// Restarts per shared actor since start, and how many of them were for being stuck.
    pub restarts: HashMap<&'static str, (u64, u64)>,
}

/// Make a shared actor suffer a fault (test hooks only). Answers whether it exists.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct InjectFault {
    pub actor: String,
    pub fault: Fault,
}

/// One supervised child: its slot, probe, how to make it, and its restart history.
struct Child<A: Actor<Context = Context<A>>> {
    slot: Slot<A>,
    probe: Arc<Probe>,
    make: Box<dyn Fn(Arc<Probe>) -> A>,
    abort: Option<AbortHandle>,
    restarts: VecDeque<Instant>,
    /// Restarts since start, and how many were for being stuck.
    restarted: (u64, u64),
    /// The progress counter when it last moved (or the actor had no work), and when.
    seen: (u64, Instant),
}

impl<A> Child<A>
where
    A: Actor<Context = Context<A>> + Handler<Fault>,
{
    fn new(slot: Slot<A>, make: impl Fn(Arc<Probe>) -> A + 'static) -> Self {
        Self {
            probe: Probe::new(slot.name()),
            slot,
            make: Box::new(make),
            abort: None,
            restarts: VecDeque::new(),
            restarted: (0, 0),
            seen: (0, Instant::now()),
        }
    }

    fn name(&self) -> &'static str {
        self.slot.name()
    }

    /// Starts an incarnation in its own abortable task and puts it in the slot.
    fn spawn(&mut self) {
        let actor = (self.make)(self.probe.clone());
        let mut ctx = Context::<A>::new();
        ctx.set_mailbox_capacity(EXECUTOR_MAILBOX);
        let addr = ctx.address();
        let (handle, registration) = AbortHandle::new_pair();
        let run = Abortable::new(ctx.into_future(actor), registration);
        actix::spawn(async move {
            let _ = run.await;
        });
        self.abort = Some(handle);
        self.slot.set(addr);
        self.seen = (self.probe.progress(), Instant::now());
    }

    /// Kills the current incarnation (if any) and starts a new one.
    fn restart(&mut self, why: &'static str) {
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
        self.probe.cancel_all();
        let actor = self.name();
        ActorMetrics::new(actor).restarted();
        self.restarted.0 += 1;
        if why == "stuck" {
            self.restarted.1 += 1;
            counter!(m::ACTOR_STUCK, "actor" => actor).increment(1);
        }
        tracing::error!(actor, why, "restarting actor");
        self.restarts.push_back(Instant::now());
        self.spawn();
    }

    /// Looks at the child; restarts it if dead or stuck. Answers whether it is running
    /// and, if it used up its restart budget, why the process is unhealthy.
    fn check(&mut self, stuck_after: Duration, budget: u32) -> (bool, Option<String>) {
        if self.abort.is_none() {
            self.spawn();
        } else if !self.slot.is_alive() {
            self.restart("died");
        } else {
            let progress = self.probe.progress();
            if progress != self.seen.0 || self.probe.unprotected_work() == 0 {
                self.seen = (progress, Instant::now());
            } else if self.seen.1.elapsed() >= stuck_after {
                tracing::error!(
                    actor = self.name(),
                    busy = self.probe.busy_count(),
                    stalled_secs = self.seen.1.elapsed().as_secs(),
                    "actor has work but makes no progress"
                );
                self.restart("stuck");
            }
        }
        while self
            .restarts
            .front()
            .is_some_and(|at| at.elapsed() > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        let unhealthy = (self.restarts.len() as u32 > budget).then(|| {
            format!(
                "{} restarted {} times in the last {} minutes",
                self.name(),
                self.restarts.len(),
                RESTART_WINDOW.as_secs() / 60
            )
        });
        (self.slot.is_alive(), unhealthy)
    }

    fn inject(&self, fault: Fault) {
        if let Ok(addr) = self.slot.get() {
            addr.do_send(fault);
        }
    }
}

/// The checks the supervisor runs over its children, whatever their actor type.
trait Supervised {
    fn name(&self) -> &'static str;
    fn restarted(&self) -> (u64, u64);
    fn check(&mut self, stuck_after: Duration, budget: u32) -> (bool, Option<String>);
    fn inject(&self, fault: Fault);
}

impl<A> Supervised for Child<A>
where
    A: Actor<Context = Context<A>> + Handler<Fault>,
{
    fn name(&self) -> &'static str {
        Child::name(self)
    }
    fn restarted(&self) -> (u64, u64) {
        self.restarted
    }
    fn check(&mut self, stuck_after: Duration, budget: u32) -> (bool, Option<String>) {
        Child::check(self, stuck_after, budget)
    }
    fn inject(&self, fault: Fault) {
        Child::inject(self, fault)
    }
}

/// A customer's conversation and its gate. The gate outlives the actor: it keeps the
/// order rule while handed-back work is away.
struct Entry {
    addr: Addr<Conversation>,
    gate: Arc<Gate>,
}

pub struct Supervisor {
    adapters: Adapters,
    behaviour: Arc<Behaviour>,
    streaming_topic_arn: String,
    lifecycle: Arc<Lifecycle>,
    conversations: HashMap<String, Entry>,
    high_water: usize,
    refusals: u64,
    connect_upload: Slot<ConnectUpload>,
    whatsapp: Slot<WhatsAppSend>,
    media_download: Slot<MediaDownload>,
    transcoder: Slot<TranscoderPool>,
    children: Vec<Box<dyn Supervised>>,
}

impl Supervisor {
    pub fn new(
        mut adapters: Adapters,
        behaviour: Behaviour,
        streaming_topic_arn: String,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        // Dedupe answered from memory where safe, records written in batches.
        adapters.dedupe = Arc::new(RecentDedupe::new(adapters.dedupe));
        Self {
            adapters,
            behaviour: Arc::new(behaviour),
            streaming_topic_arn,
            lifecycle,
            conversations: HashMap::new(),
            high_water: 0,
            refusals: 0,
            connect_upload: Slot::empty("connect_upload"),
            whatsapp: Slot::empty("whatsapp_send"),
            media_download: Slot::empty("media_download"),
            transcoder: Slot::empty("transcoder_pool"),
            children: Vec::new(),
        }
    }

    fn conversation_deps(&self, ctx: &Context<Self>) -> ConversationDeps {
        ConversationDeps {
            dedupe: self.adapters.dedupe.clone(),
            connect_upload: self.connect_upload.clone(),
            whatsapp: self.whatsapp.clone(),
            supervisor: ctx.address(),
            behaviour: self.behaviour.clone(),
            lifecycle: self.lifecycle.clone(),
            media: self.media_deps(),
            sessions: self.adapters.sessions.clone(),
            // With the FIFO stage the regroup stage holds bursts (a FIFO queue would not
            // hand over a customer's next text while one waits here).
            aggregation: self
                .behaviour
                .aggregation
                .filter(|_| self.adapters.inbound_fifo.is_none()),
            single_attempt: false,
        }
    }

    fn media_deps(&self) -> Option<MediaDeps> {
        let settings = &self.behaviour.media;
        Some(MediaDeps {
            download: self.media_download.clone(),
            transcoder: self.transcoder.clone(),
            store: self.adapters.media.clone()?,
            location: MediaLocation {
                bucket: settings.bucket.clone()?,
                prefix: settings.prefix.clone(),
            },
            http: self.adapters.http.clone(),
            rules: settings.rules.clone(),
            transcription: self
                .adapters
                .transcriber
                .clone()
                .zip(self.behaviour.transcription.clone())
                .map(|(port, settings)| Transcription { port, settings }),
        })
    }

    /// Builds the children (not started: the first check starts them).
    fn build_children(&mut self, ctx: &Context<Self>) {
        let a = self.adapters.clone();
        let b = self.behaviour.clone();
        let topic = self.streaming_topic_arn.clone();
        let upload = Child::new(self.connect_upload.clone(), {
            let (connect, sessions, http, b) = (
                a.connect.clone(),
                a.sessions.clone(),
                a.http.clone(),
                b.clone(),
            );
            move |probe| {
                ConnectUpload::new(
                    connect.clone(),
                    sessions.clone(),
                    http.clone(),
                    &topic,
                    b.chat_duration_minutes,
                    probe,
                )
            }
        });
        self.children.push(Box::new(upload));

        let send = Child::new(self.whatsapp.clone(), {
            let (whatsapp, rate) = (a.whatsapp.clone(), b.whatsapp_rate_per_sec);
            move |probe| WhatsAppSend::new(whatsapp.clone(), rate, probe)
        });
        self.children.push(Box::new(send));

        if let (Some(store), Some(bucket)) = (&a.media, &b.media.bucket) {
            let location = MediaLocation {
                bucket: bucket.clone(),
                prefix: b.media.prefix.clone(),
            };
            let download = Child::new(self.media_download.clone(), {
                let (whatsapp, store, max) =
                    (a.whatsapp.clone(), store.clone(), b.media.rules.max_bytes);
                move |probe| {
                    MediaDownload::new(
                        whatsapp.clone(),
                        store.clone(),
                        location.clone(),
                        max,
                        probe,
                    )
                }
            });
            self.children.push(Box::new(download));

            let config = TranscoderConfig {
                ffmpeg_path: b.media.ffmpeg_path.clone(),
                workers: b.media.transcoder_workers,
                job_timeout: b.media.transcode_timeout,
                ..TranscoderConfig::default()
            };
            let pool = Child::new(self.transcoder.clone(), move |probe| {
                TranscoderPool::with_probe(config.clone(), probe)
            });
            self.children.push(Box::new(pool));
        }

        let me = ctx.address();
        let lifecycle = self.lifecycle.clone();
        let max = b.max_in_flight;
        // Conversations read the FIFO queue when there is one; the standard queue then
        // feeds it through a Regroup stage.
        let inbound_work = a.inbound_fifo.clone().unwrap_or(a.inbound_queue.clone());
        self.children
            .push(Box::new(Child::new(Slot::empty("inbound_intake"), {
                let (me, lifecycle) = (me.clone(), lifecycle.clone());
                move |probe| {
                    InboundIntake::new(
                        inbound_work.clone(),
                        me.clone(),
                        lifecycle.clone(),
                        max,
                        probe,
                    )
                }
            })));
        let connect_work = a.connect_fifo.clone().unwrap_or(a.connect_queue.clone());
        self.children
            .push(Box::new(Child::new(Slot::empty("connect_event_intake"), {
                let (me, lifecycle, sessions) = (me.clone(), lifecycle.clone(), a.sessions.clone());
                move |probe| {
                    ConnectEventIntake::new(
                        connect_work.clone(),
                        sessions.clone(),
                        me.clone(),
                        lifecycle.clone(),
                        max,
                        probe,
                    )
                }
            })));
        // One lease owner per process: a restarted regrouper takes its lease back at once.
        let owner = uuid::Uuid::new_v4().to_string();
        if let Some(fifo) = a.inbound_fifo.clone() {
            let (source, lifecycle) = (a.inbound_queue.clone(), lifecycle.clone());
            let policy = b.retry.clone();
            let (leases, owner) = (a.leases.clone(), owner.clone());
            let (aggregation, sessions) = (b.aggregation, a.sessions.clone());
            self.children.push(Box::new(Child::new(
                Slot::empty("inbound_regroup"),
                move |probe| {
                    Regroup::new(
                        source.clone(),
                        fifo.clone(),
                        Splitter::Inbound {
                            hold: aggregation
                                .map(|policy| BurstHold::new(policy, sessions.clone())),
                        },
                        lifecycle.clone(),
                        max,
                        policy.clone(),
                        leases.clone(),
                        owner.clone(),
                        probe,
                    )
                },
            )));
        }
        if let Some(fifo) = a.connect_fifo.clone() {
            let (source, lifecycle) = (a.connect_queue.clone(), lifecycle.clone());
            let policy = b.retry.clone();
            let sessions = a.sessions.clone();
            let (leases, owner) = (a.leases.clone(), owner.clone());
            self.children.push(Box::new(Child::new(
                Slot::empty("connect_regroup"),
                move |probe| {
                    Regroup::new(
                        source.clone(),
                        fifo.clone(),
                        Splitter::connect(sessions.clone()),
                        lifecycle.clone(),
                        max,
                        policy.clone(),
                        leases.clone(),
                        owner.clone(),
                        probe,
                    )
                },
            )));
        }
    }

    /// One supervision round over the children and the conversations.
    fn check_children(&mut self) {
        let settings = &self.behaviour.supervision;
        let mut whole = true;
        let mut unhealthy = None;
        for child in &mut self.children {
            let (alive, why) = child.check(settings.stuck_after, settings.restart_budget);
            whole &= alive;
            if why.is_some() {
                unhealthy = why;
            }
        }
        self.lifecycle.set_graph_whole(whole);
        self.lifecycle.set_unhealthy(unhealthy);
        self.lifecycle.supervisor_beat();
        // A conversation that died (a panic) loses its mailbox: what was in it went back
        // to the queue, so its gate holds later work until that comes back.
        for (customer, entry) in &self.conversations {
            if !entry.addr.connected() && entry.gate.pending() > 0 {
                tracing::error!(%customer, "conversation died with work in its mailbox");
                entry.gate.abandon(Duration::from_secs(1));
            }
        }
        self.conversations
            .retain(|_, e| e.addr.connected() || e.gate.is_blocked());
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.build_children(ctx);
        self.check_children();
        ctx.run_interval(CHECK_EVERY, |act, _| act.check_children());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.lifecycle.set_graph_whole(false);
    }
}

impl Handler<Route> for Supervisor {
    type Result = bool;

    fn handle(&mut self, route: Route, ctx: &mut Self::Context) -> bool {
        let deps = self.conversation_deps(ctx);
        let behaviour = self.behaviour.clone();
        let entry = self
            .conversations
            .entry(route.customer_id.clone())
            .or_insert_with(|| {
                let gate = Arc::new(Gate::new(
                    behaviour.mailbox_capacity,
                    Duration::from_secs(2),
                ));
                let addr = Conversation::new(route.customer_id.clone(), deps.clone(), gate.clone())
                    .start();
                Entry { addr, gate }
            });
        if !entry.addr.connected() {
            if entry.gate.pending() > 0 {
                entry.gate.abandon(Duration::from_secs(1));
            }
            entry.addr =
                Conversation::new(route.customer_id.clone(), deps, entry.gate.clone()).start();
        }
        let (direction, id) = (route.work.direction(), route.work.id().to_string());
        if let Err(refusal) = entry.gate.admit(direction, &id) {
            // Backpressure: the customer already has a full mailbox; the queue keeps the
            // message and offers it again shortly, and later work waits behind it.
            counter!(m::MAILBOX_REFUSALS, "direction" => direction.as_str()).increment(1);
            self.refusals += 1;
            conversation::METRICS.error("mailbox_full");
            route
                .work
                .refuse(Outcome::retry(refusal.reason, refusal.after));
            return false;
        }
        let depth = entry.gate.pending();
        if depth > self.high_water {
            self.high_water = depth;
            gauge!(m::MAILBOX_HIGH_WATER).set(depth as f64);
        }
        conversation::METRICS.enqueued();
        entry.addr.do_send(route.work);
        true
    }
}

impl Handler<ConversationIdle> for Supervisor {
    type Result = ();

    fn handle(&mut self, idle: ConversationIdle, _: &mut Self::Context) {
        let same = self
            .conversations
            .get(&idle.customer_id)
            .is_some_and(|e| e.addr == idle.addr && !e.gate.is_blocked());
        if same {
            self.conversations.remove(&idle.customer_id);
        }
    }
}

impl Handler<Stats> for Supervisor {
    type Result = SupervisorStats;

    fn handle(&mut self, _: Stats, _: &mut Self::Context) -> SupervisorStats {
        SupervisorStats {
            conversations: self
                .conversations
                .values()
                .filter(|e| e.addr.connected())
                .count(),
            mailbox_high_water: self.high_water,
            refusals: self.refusals,
            restarts: self
                .children
                .iter()
                .map(|c| (c.name(), c.restarted()))
                .collect(),
        }
    }
}

impl Handler<InjectFault> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: InjectFault, _: &mut Self::Context) -> bool {
        match self.children.iter().find(|c| c.name() == msg.actor) {
            Some(child) => {
                child.inject(msg.fault);
                true
            }
            None => false,
        }
    }
}
