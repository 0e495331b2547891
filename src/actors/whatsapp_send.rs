//! WhatsAppSend: every SendWhatsAppMessage goes through here, paced per business number
//! (Meta allows about 80 messages/s per number by default) so a burst of replies queues
//! here instead of being refused by Meta. The SDK's standard retry mode already retries
//! throttling and 5xx answers; what still fails goes back to the caller.
//!
//! Each number's sends wait in two lanes under its one rate (`delivery::send_lanes`):
//! replies (every send a caller waits for) take each free slot before acknowledgements,
//! and acknowledgements that back up are merged or, past a bound, dropped. A send whose
//! slot is free goes out at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt;
use metrics::{counter, gauge};
use tokio::sync::oneshot;

use crate::delivery::send_lanes::{Ack, AckPush, Lanes, Next, Slots};
use crate::domain::{mark_read, reaction};
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{PortError, WhatsApp};
use crate::supervision::{suffer, unavailable, Fault, Probe};

const METRICS: ActorMetrics = ActorMetrics::new("whatsapp_send");

/// Send one Meta Cloud API message body; answers EUM's message id.
#[derive(Message)]
#[rtype(result = "Result<String, PortError>")]
pub struct SendWhatsApp {
    pub business_number_id: String,
    pub body: serde_json::Value,
}

/// Fire-and-forget acknowledgement of a customer message (mark read, react): sent off the
/// path to the agent, failures only logged and counted.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Acknowledge {
    pub business_number_id: String,
    pub customer_id: String,
    pub wamid: String,
    pub mark_read: bool,
    pub reaction: Option<&'static str>,
}

/// Acknowledgements one number may have waiting: 30 s of sends at the default rate. Older
/// ones are dropped past this (counted in `waconnect_whatsapp_acks_total{outcome="dropped"}`).
const ACK_BACKLOG_SECS: u32 = 30;

/// A reply waiting for its slot, with where its answer goes.
struct PendingReply {
    body: serde_json::Value,
    answer: oneshot::Sender<Result<String, PortError>>,
}

/// One business number: its lanes and its send slots.
struct Number {
    lanes: Lanes<PendingReply>,
    slots: Slots,
    /// A wake-up is set for the next free slot.
    scheduled: bool,
}

pub struct WhatsAppSend {
    whatsapp: Arc<dyn WhatsApp>,
    interval: Duration,
    ack_capacity: usize,
    numbers: HashMap<String, Number>,
    probe: Arc<Probe>,
}

impl WhatsAppSend {
    pub fn new(whatsapp: Arc<dyn WhatsApp>, rate_per_sec: u32, probe: Arc<Probe>) -> Self {
        let rate = rate_per_sec.max(1);
        Self {
            probe,
            whatsapp,
            interval: Duration::from_secs(1) / rate,
            ack_capacity: (rate * ACK_BACKLOG_SECS) as usize,
            numbers: HashMap::new(),
        }
    }

    fn number(&mut self, business_number_id: &str) -> &mut Number {
        if !self.numbers.contains_key(business_number_id) {
            if self.numbers.len() > 10_000 {
                let now = Instant::now();
                self.numbers.retain(|_, n| {
                    !n.lanes.is_empty() || n.slots.next_free().is_some_and(|t| t > now)
                });
            }
            self.numbers.insert(
                business_number_id.to_string(),
                Number {
                    lanes: Lanes::new(self.ack_capacity),
                    slots: Slots::new(self.interval),
                    scheduled: false,
                },
            );
        }
        self.numbers
            .get_mut(business_number_id)
            .expect("inserted above")
    }

    /// Gives `business_number_id`'s free slots to its waiting sends, replies first; sets a
    /// wake-up for the next slot while sends still wait.
    fn pump(&mut self, business_number_id: &str, ctx: &mut Context<Self>) {
        let Some(number) = self.numbers.get_mut(business_number_id) else {
            return;
        };
        let now = Instant::now();
        let mut due = Vec::new();
        while !number.lanes.is_empty() && number.slots.take(now) {
            due.extend(number.lanes.pop());
        }
        for next in due {
            let send = match next {
                Next::Reply(reply) => self.send_reply(business_number_id, reply).boxed_local(),
                Next::Ack(ack) => self.send_ack(business_number_id, ack).boxed_local(),
            };
            actix::spawn(send);
        }
        let number = self
            .numbers
            .get_mut(business_number_id)
            .expect("looked up above");
        gauge!(m::WHATSAPP_PENDING, "lane" => "reply").set(number.lanes.replies_pending() as f64);
        gauge!(m::WHATSAPP_PENDING, "lane" => "ack").set(number.lanes.acks_pending() as f64);
        if !number.lanes.is_empty() && !number.scheduled {
            number.scheduled = true;
            let key = business_number_id.to_string();
            let wait = number
                .slots
                .next_free()
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
            ctx.run_later(wait, move |act, ctx| {
                if let Some(number) = act.numbers.get_mut(&key) {
                    number.scheduled = false;
                }
                act.pump(&key, ctx);
            });
        }
    }

    fn send_reply(
        &self,
        business_number_id: &str,
        reply: PendingReply,
    ) -> impl std::future::Future<Output = ()> + 'static {
        let send = self.tracked_send(business_number_id, reply.body);
        async move {
            let _ = reply.answer.send(send.await);
        }
    }

    fn send_ack(
        &self,
        business_number_id: &str,
        ack: Ack,
    ) -> impl std::future::Future<Output = ()> + 'static {
        let (body, wamid) = match &ack {
            Ack::Read { wamid, .. } => (mark_read(wamid), wamid.clone()),
            Ack::React {
                customer_id,
                wamid,
                emoji,
            } => (reaction(customer_id, wamid, emoji), wamid.clone()),
        };
        let send = self.tracked_send(business_number_id, body);
        async move {
            if let Err(e) = send.await {
                tracing::warn!(%wamid, error = %e, "acknowledgement to the customer failed");
            }
        }
    }

    /// One SendWhatsAppMessage, as a piece of this actor's work.
    fn tracked_send(
        &self,
        business_number_id: &str,
        body: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<String, PortError>> + 'static {
        let whatsapp = self.whatsapp.clone();
        let business_number_id = business_number_id.to_string();
        let send = async move {
            let started = Instant::now();
            let result = whatsapp.send(&business_number_id, &body).await;
            METRICS.finished(&result, started);
            result
        };
        self.probe.track(send, || {
            Err(unavailable("whatsapp_send", "restarted while the send ran"))
        })
    }
}

impl Actor for WhatsAppSend {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        METRICS.heartbeat();
    }
}

impl Handler<Fault> for WhatsAppSend {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

impl Handler<SendWhatsApp> for WhatsAppSend {
    type Result = ResponseFuture<Result<String, PortError>>;

    fn handle(&mut self, msg: SendWhatsApp, ctx: &mut Self::Context) -> Self::Result {
        let (answer, answered) = oneshot::channel();
        self.number(&msg.business_number_id)
            .lanes
            .push_reply(PendingReply {
                body: msg.body,
                answer,
            });
        self.pump(&msg.business_number_id, ctx);
        let probe = self.probe.clone();
        Box::pin(async move {
            // Waiting for a slot is a deliberate wait, not a stuck sender; the send itself
            // is tracked where it runs.
            let _waiting = probe.waiting();
            answered.await.unwrap_or_else(|_| {
                Err(unavailable(
                    "whatsapp_send",
                    "restarted while the send waited",
                ))
            })
        })
    }
}

impl Handler<Acknowledge> for WhatsAppSend {
    type Result = ();

    fn handle(&mut self, ack: Acknowledge, ctx: &mut Self::Context) {
        let mut acks = Vec::with_capacity(2);
        if ack.mark_read {
            acks.push(Ack::Read {
                customer_id: ack.customer_id.clone(),
                wamid: ack.wamid.clone(),
            });
        }
        if let Some(emoji) = ack.reaction {
            acks.push(Ack::React {
                customer_id: ack.customer_id,
                wamid: ack.wamid,
                emoji,
            });
        }
        let number = self.number(&ack.business_number_id);
        for a in acks {
            let outcome = match number.lanes.push_ack(a) {
                AckPush::Queued => "queued",
                AckPush::Merged => "merged",
                AckPush::DroppedOldest => "dropped",
            };
            counter!(m::WHATSAPP_ACKS, "outcome" => outcome).increment(1);
        }
        self.pump(&ack.business_number_id, ctx);
    }
}
