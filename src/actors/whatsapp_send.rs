//! WhatsAppSend: every SendWhatsAppMessage goes through here, paced per business number
//! (Meta allows about 80 messages/s per number by default) so a burst of replies queues
//! here instead of being refused by Meta. The SDK's standard retry mode already retries
//! throttling and 5xx answers; what still fails goes back to the caller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::domain::{mark_read, reaction};
use crate::metrics::ActorMetrics;
use crate::ports::{PortError, WhatsApp};
use crate::supervision::{suffer, unavailable, Fault, Probe};

const METRICS: ActorMetrics = ActorMetrics::new("whatsapp_send");

/// Send one Meta Cloud API message body; answers EUM's message id.
#[derive(Message)]
#[rtype(result = "Result<String, PortError>")]
pub struct SendWhatsApp {
    pub system_number: String,
    pub body: serde_json::Value,
}

/// Fire-and-forget acknowledgement of a customer message (mark read, react): sent off the
/// path to the agent, failures only logged and counted.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Acknowledge {
    pub system_number: String,
    pub customer_id: String,
    pub wamid: String,
    pub mark_read: bool,
    pub reaction: Option<&'static str>,
}

pub struct WhatsAppSend {
    whatsapp: Arc<dyn WhatsApp>,
    interval: Duration,
    /// Next free send slot per business number.
    next_slot: HashMap<String, Instant>,
    probe: Arc<Probe>,
}

impl WhatsAppSend {
    pub fn new(whatsapp: Arc<dyn WhatsApp>, rate_per_sec: u32, probe: Arc<Probe>) -> Self {
        Self {
            probe,
            whatsapp,
            interval: Duration::from_secs(1) / rate_per_sec.max(1),
            next_slot: HashMap::new(),
        }
    }

    /// Reserves the next send slot for `number`; returns when it starts.
    fn reserve(&mut self, number: &str) -> Instant {
        let now = Instant::now();
        let slot = self.next_slot.entry(number.to_string()).or_insert(now);
        let at = (*slot).max(now);
        *slot = at + self.interval;
        if self.next_slot.len() > 10_000 {
            self.next_slot.retain(|_, t| *t > now);
        }
        at
    }

    fn paced_send(
        &mut self,
        system_number: String,
        body: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<String, PortError>> + 'static {
        let at = self.reserve(&system_number);
        let whatsapp = self.whatsapp.clone();
        let probe = self.probe.clone();
        async move {
            {
                // Pacing is a deliberate wait, not a stuck sender.
                let _waiting = probe.waiting();
                tokio::time::sleep_until(at.into()).await;
            }
            let started = Instant::now();
            let result = whatsapp.send(&system_number, &body).await;
            METRICS.finished(&result, started);
            result
        }
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

    fn handle(&mut self, msg: SendWhatsApp, _: &mut Self::Context) -> Self::Result {
        let send = self.paced_send(msg.system_number, msg.body);
        Box::pin(self.probe.track(send, || {
            Err(unavailable("whatsapp_send", "restarted while the send ran"))
        }))
    }
}

impl Handler<Acknowledge> for WhatsAppSend {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, ack: Acknowledge, _: &mut Self::Context) -> Self::Result {
        let read = ack
            .mark_read
            .then(|| self.paced_send(ack.system_number.clone(), mark_read(&ack.wamid)));
        let react = ack.reaction.map(|emoji| {
            self.paced_send(
                ack.system_number.clone(),
                reaction(&ack.customer_id, &ack.wamid, emoji),
            )
        });
        let work = async move {
            // Concurrent: neither waits for the other, and the agent waits for neither.
            let (read, react) = futures::join!(
                async {
                    match read {
                        Some(f) => f.await.map(|_| ()),
                        None => Ok(()),
                    }
                },
                async {
                    match react {
                        Some(f) => f.await.map(|_| ()),
                        None => Ok(()),
                    }
                }
            );
            for e in [read.err(), react.err()].into_iter().flatten() {
                tracing::warn!(wamid = %ack.wamid, error = %e, "acknowledgement to the customer failed");
            }
        };
        Box::pin(self.probe.track(work, || ()))
    }
}
