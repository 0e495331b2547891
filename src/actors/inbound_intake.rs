//! InboundIntake: long-polls the inbound queue (EUM -> SNS -> SQS), decodes each body
//! (SNS envelope or raw) into customer messages and delivery statuses, routes every
//! message to its customer's conversation in timestamp order (and every status of our
//! messages there too, for receipts), and settles the queue message once all of them
//! have reported.

use std::sync::Arc;

use actix::prelude::*;
use metrics::counter;
use tokio::sync::oneshot;

use super::supervisor::{Route, Supervisor};
use super::{Outcome, Work};
use crate::delivery::poller::Poller;
use crate::delivery::Arrival;
use crate::domain::{decode_eum_event, unwrap_sns, DeliveryStatus};
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{Queue, QueueMessage};
use crate::supervision::{suffer, Fault, Probe};

const METRICS: ActorMetrics = ActorMetrics::new("inbound_intake");

pub struct InboundIntake {
    poller: Arc<Poller>,
    supervisor: Addr<Supervisor>,
    probe: Arc<Probe>,
}

impl InboundIntake {
    pub fn new(
        queue: Arc<dyn Queue>,
        supervisor: Addr<Supervisor>,
        lifecycle: Arc<Lifecycle>,
        max_in_flight: usize,
        probe: Arc<Probe>,
    ) -> Self {
        Self {
            poller: Arc::new(Poller::new(
                queue,
                "inbound",
                lifecycle,
                METRICS,
                max_in_flight,
            )),
            supervisor,
            probe,
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl Actor for InboundIntake {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Poll);
    }
}

impl Handler<Fault> for InboundIntake {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

pub(crate) fn record_status(status: &DeliveryStatus) {
    let label = match status.status.as_str() {
        "sent" => "sent",
        "delivered" => "delivered",
        "read" => "read",
        "failed" => "failed",
        _ => "other",
    };
    counter!(m::WHATSAPP_STATUSES, "status" => label).increment(1);
    if status.window_closed() {
        tracing::warn!(message_id = %status.message_id,
            "WhatsApp refused a message: the 24-hour customer service window is closed (131047)");
    } else if label == "failed" {
        tracing::warn!(message_id = %status.message_id, errors = ?status.error_codes,
            "WhatsApp reports a message failed");
    }
}

/// Decodes one queue message and hands its work out; returns the receivers of the
/// outcomes and any problems found while decoding.
async fn dispatch(
    msg: &QueueMessage,
    supervisor: &Addr<Supervisor>,
) -> Result<(Vec<oneshot::Receiver<Outcome>>, Vec<String>), String> {
    let event = unwrap_sns(&msg.body)
        .and_then(|sns| decode_eum_event(&sns.message))
        .map_err(|e| e.reason())?;
    for status in &event.statuses {
        record_status(status);
        crate::actors::conversation::receipts::note_status(status);
    }
    let arrival = Arrival {
        received_before: event.received_before,
        ..Arrival::of(msg)
    };
    let mut messages = event.messages;
    let mut outcomes = Vec::with_capacity(messages.len() + event.statuses.len());
    // A status goes to the conversation of the customer it was sent to (receipts and
    // failure notices for the agent), in its own order there.
    for status in event.statuses {
        let Some(customer_id) = status.recipient_id.clone() else {
            tracing::debug!(message_id = %status.message_id, "status without a recipient: counted only");
            continue;
        };
        let (reply, rx) = oneshot::channel();
        let work = Work::Status {
            status: Box::new(status),
            arrival: arrival.clone(),
            reply,
        };
        let _ = supervisor.send(Route { customer_id, work }).await;
        outcomes.push(rx);
    }
    // One webhook may batch several messages; Meta's timestamps give the customer's order.
    messages.sort_by_key(|m| m.timestamp);
    let one_customer = messages
        .first()
        .is_some_and(|f| messages.iter().all(|m| m.customer_id == f.customer_id));
    let works: Vec<(String, Work, oneshot::Receiver<Outcome>)> = if event.burst && one_customer {
        // Texts the regroup stage held as one burst: one piece of work, one chat message.
        let (reply, rx) = oneshot::channel();
        let customer_id = messages[0].customer_id.clone();
        tracing::debug!(sqs_message_id = %msg.id, texts = messages.len(), "routing a burst of texts");
        let work = Work::InboundBurst {
            messages,
            arrival: arrival.clone(),
            reply,
        };
        vec![(customer_id, work, rx)]
    } else {
        messages
            .into_iter()
            .map(|message| {
                let (reply, rx) = oneshot::channel();
                tracing::debug!(sqs_message_id = %msg.id, wamid = %message.wamid, "routing customer message");
                let customer_id = message.customer_id.clone();
                let work = Work::Inbound {
                    message: Box::new(message),
                    arrival: arrival.clone(),
                    reply,
                };
                (customer_id, work, rx)
            })
            .collect()
    };
    for (customer_id, work, rx) in works {
        // If the supervisor is gone the reply sender is dropped: the receiver reads that
        // as "retry", so nothing is lost.
        let _ = supervisor.send(Route { customer_id, work }).await;
        outcomes.push(rx);
    }
    let problems = event
        .problems
        .into_iter()
        .map(|p| format!("undeliverable part: {p}"))
        .collect();
    Ok((outcomes, problems))
}

impl Handler<Poll> for InboundIntake {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Poll, _: &mut Self::Context) -> Self::Result {
        let poller = self.poller.clone();
        let supervisor = self.supervisor.clone();
        let probe = self.probe.clone();
        let fut = async move {
            let batch = {
                // Long-polling and waiting for in-flight room are deliberate waits.
                let _waiting = probe.waiting();
                poller.next_batch().await
            };
            let _busy = probe.busy();
            for (msg, guard) in batch {
                match dispatch(&msg, &supervisor).await {
                    Ok((outcomes, problems)) => poller.settle_later(msg, guard, outcomes, problems),
                    Err(reason) => {
                        METRICS.error("undecodable");
                        tracing::error!(sqs_message_id = %msg.id, %reason, "inbound message cannot be decoded");
                        poller.settle_now(msg, guard, Outcome::Reject { reason });
                    }
                }
            }
        };
        Box::pin(fut.into_actor(self).map(|_, _, ctx| ctx.notify(Poll)))
    }
}
