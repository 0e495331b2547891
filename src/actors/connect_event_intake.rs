//! ConnectEventIntake: long-polls the Connect streaming queue (Connect -> SNS -> SQS),
//! keeps the items meant for the customer (visibility CUSTOMER or ALL, from anyone but
//! the customer), resolves the chat to its customer, and routes them to that customer's
//! conversation; chat.ended and the customer leaving end the stored session.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::supervisor::{Route, Supervisor};
use super::{Outcome, Work};
use crate::delivery::chat_items::{route_item, ItemRoute};
use crate::delivery::poller::Poller;
use crate::delivery::Arrival;
use crate::domain::{decode_chat_item, unwrap_sns};
use crate::lifecycle::Lifecycle;
use crate::metrics::ActorMetrics;
use crate::ports::{Queue, QueueMessage, SessionStore};
use crate::supervision::{suffer, Fault, Probe};

const METRICS: ActorMetrics = ActorMetrics::new("connect_event_intake");

pub struct ConnectEventIntake {
    poller: Arc<Poller>,
    sessions: Arc<dyn SessionStore>,
    supervisor: Addr<Supervisor>,
    probe: Arc<Probe>,
}

impl ConnectEventIntake {
    pub fn new(
        queue: Arc<dyn Queue>,
        sessions: Arc<dyn SessionStore>,
        supervisor: Addr<Supervisor>,
        lifecycle: Arc<Lifecycle>,
        max_in_flight: usize,
        probe: Arc<Probe>,
    ) -> Self {
        Self {
            poller: Arc::new(Poller::new(
                queue,
                "connect",
                lifecycle,
                METRICS,
                max_in_flight,
            )),
            sessions,
            supervisor,
            probe,
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl Actor for ConnectEventIntake {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Poll);
    }
}

impl Handler<Fault> for ConnectEventIntake {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

enum Step {
    Settle(Outcome),
    Routed(oneshot::Receiver<Outcome>),
}

async fn handle_item(
    msg: &QueueMessage,
    sessions: &Arc<dyn SessionStore>,
    supervisor: &Addr<Supervisor>,
) -> Step {
    let item = match unwrap_sns(&msg.body).and_then(|sns| decode_chat_item(&sns)) {
        Ok(item) => item,
        Err(e) => {
            METRICS.error("undecodable");
            tracing::error!(sqs_message_id = %msg.id, reason = %e.reason(), "chat item cannot be decoded");
            return Step::Settle(Outcome::Reject { reason: e.reason() });
        }
    };
    let (session, ends) = match route_item(sessions, &item, msg.receive_count).await {
        ItemRoute::Settle(outcome) => return Step::Settle(outcome),
        ItemRoute::Forward(session) => (session, false),
        ItemRoute::EndSession(session) => (session, true),
        ItemRoute::AgentJoined(session) => {
            // Stored first, so a replica regrouping the customer's texts sees it too.
            if let Err(e) = sessions.mark_agent_joined(&session.contact_id).await {
                return Step::Settle(Outcome::retry(e.to_string(), Duration::from_secs(2)));
            }
            tracing::info!(contact_id = %session.contact_id, item_id = %item.id, "an agent joined the chat");
            let (reply, rx) = oneshot::channel();
            let work = Work::AgentJoined {
                contact_id: session.contact_id.clone(),
                id: item.id.clone(),
                reply,
            };
            let _ = supervisor
                .send(Route {
                    customer_id: session.customer_id,
                    work,
                })
                .await;
            return Step::Routed(rx);
        }
    };
    let (reply, rx) = oneshot::channel();
    let work = if ends {
        if let Err(e) = sessions.end(&session.contact_id).await {
            return Step::Settle(Outcome::retry(e.to_string(), Duration::from_secs(2)));
        }
        tracing::info!(contact_id = %session.contact_id, item_id = %item.id, "chat ended; session closed");
        Work::SessionEnded {
            contact_id: session.contact_id.clone(),
            id: item.id.clone(),
            reply,
        }
    } else {
        Work::Outbound {
            item: Box::new(item),
            session: Box::new(session.clone()),
            arrival: Arrival::of(msg),
            reply,
        }
    };
    let _ = supervisor
        .send(Route {
            customer_id: session.customer_id,
            work,
        })
        .await;
    Step::Routed(rx)
}

impl Handler<Poll> for ConnectEventIntake {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Poll, _: &mut Self::Context) -> Self::Result {
        let poller = self.poller.clone();
        let sessions = self.sessions.clone();
        let supervisor = self.supervisor.clone();
        let probe = self.probe.clone();
        let fut = async move {
            let batch = {
                let _waiting = probe.waiting();
                poller.next_batch().await
            };
            let _busy = probe.busy();
            for (msg, guard) in batch {
                match handle_item(&msg, &sessions, &supervisor).await {
                    Step::Settle(outcome) => poller.settle_now(msg, guard, outcome),
                    Step::Routed(rx) => poller.settle_later(msg, guard, vec![rx], Vec::new()),
                }
            }
        };
        Box::pin(fut.into_actor(self).map(|_, _, ctx| ctx.notify(Poll)))
    }
}
