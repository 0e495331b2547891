//! Regroup: the first stage of each direction when per-customer order must hold across
//! replicas. It long-polls the standard queue SNS delivers to, splits each message into
//! one FIFO message per customer event (`delivery::regroup`), sends them to the FIFO queue
//! grouped by customer and deduplicated by event id, and deletes the original once the
//! FIFO queue has them. SQS then hands each customer's group to one consumer at a time, in
//! order, whichever replica polls: that is the guarantee, not a protocol of our own.
//!
//! Chat items are grouped by the customer of their chat, found through the session table
//! (cached: a contact id always belongs to the same customer).
//!
//! One regrouper per direction runs at a time, on whichever replica holds its lease: two
//! regroupers would race, and a customer's messages received by different replicas a few
//! milliseconds apart would enter the FIFO queue in whichever order their sends finished.
//! Alone, a regrouper passes messages on in the order the queue hands them over (each
//! batch sorted by arrival time), one batch after the other. The lease outlasts the
//! queue's visibility timeout, so whatever a crashed leader held is visible again, and
//! first in line, by the time another replica takes over. One regrouper moves several
//! hundred messages per second (docs/performance.md); the lease costs one conditional
//! write every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use actix::prelude::*;
use metrics::counter;

use super::Outcome;
use crate::delivery::chat_items::{route_item, ItemRoute};
use crate::delivery::hold::{BurstHold, HeldBurst};
use crate::delivery::poller::{InFlight, Poller};
use crate::delivery::regroup::{customer_group, dedupe_id, split_units};
use crate::delivery::retry::RetryPolicy;
use crate::domain::{decode_chat_item, unwrap_sns};
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{LeaseStore, OutgoingMessage, Queue, QueueMessage, SessionStore};
use crate::supervision::{suffer, Fault, Probe};

/// Contact ids remembered per process before the cache starts over (a few MB at most).
const CACHE_LIMIT: usize = 100_000;
/// SQS takes at most ten messages per batch.
const SEND_BATCH: usize = 10;
/// The shortest lease; it is also kept above the queue's visibility timeout.
const MIN_LEASE: Duration = Duration::from_secs(10);
/// How long a replica that does not lead waits before looking again.
const FOLLOWER_NAP: Duration = Duration::from_millis(500);
/// The longest receive when no burst is held.
const LONG_POLL: Duration = Duration::from_secs(20);

/// How a direction's messages become FIFO messages.
pub enum Splitter {
    /// EUM events: one FIFO message per customer message or status; with a hold, a
    /// customer's texts wait for burst aggregation (see `delivery::hold`).
    Inbound { hold: Option<BurstHold> },
    /// Connect chat items: one each, grouped by the customer of their chat.
    Connect {
        sessions: Arc<dyn SessionStore>,
        /// contact id -> group id.
        groups: Mutex<HashMap<String, String>>,
    },
}

impl Splitter {
    pub fn connect(sessions: Arc<dyn SessionStore>) -> Self {
        Splitter::Connect {
            sessions,
            groups: Mutex::new(HashMap::new()),
        }
    }

    fn name(&self) -> (&'static str, ActorMetrics) {
        match self {
            Splitter::Inbound { .. } => ("inbound", ActorMetrics::new("inbound_regroup")),
            Splitter::Connect { .. } => ("connect", ActorMetrics::new("connect_regroup")),
        }
    }

    fn lease_name(&self) -> &'static str {
        match self {
            Splitter::Inbound { .. } => "regroup-inbound",
            Splitter::Connect { .. } => "regroup-connect",
        }
    }

    fn hold(&self) -> Option<&BurstHold> {
        match self {
            Splitter::Inbound { hold } => hold.as_ref(),
            Splitter::Connect { .. } => None,
        }
    }

    /// What becomes of `msg`: FIFO messages to send (after held bursts that must go
    /// first), held for a burst, or settled without any.
    async fn split(&self, msg: &QueueMessage) -> Result<Passed, Outcome> {
        match self {
            Splitter::Inbound { hold } => {
                let mut split = match split_units(&msg.body) {
                    Ok(Ok(split)) => split,
                    Ok(Err(whole)) => return Ok(Passed::Send(Vec::new(), vec![whole])),
                    Err(e) => return Err(Outcome::Reject { reason: e.reason() }),
                };
                if msg.receive_count > 1 {
                    split.received_before();
                }
                if let Some(acks) = split.take_acknowledgement_statuses() {
                    count_acknowledgement_statuses(&acks);
                }
                if split.units.is_empty() {
                    return Ok(Passed::Send(Vec::new(), Vec::new()));
                }
                let Some(hold) = hold else {
                    let out = split.units.iter().map(|u| split.message(&[u])).collect();
                    return Ok(Passed::Send(Vec::new(), out));
                };
                if hold.wants(&split).await {
                    return Ok(Passed::Hold(split));
                }
                // Whatever else a customer sends follows their held texts.
                let first: Vec<HeldBurst> = split
                    .units
                    .iter()
                    .filter_map(|u| hold.take(&u.group))
                    .collect();
                let out = split.units.iter().map(|u| split.message(&[u])).collect();
                Ok(Passed::Send(first, out))
            }
            Splitter::Connect { sessions, groups } => {
                let item = unwrap_sns(&msg.body)
                    .and_then(|sns| decode_chat_item(&sns))
                    .map_err(|e| Outcome::Reject { reason: e.reason() })?;
                let cached = lock(groups).get(&item.contact_id).cloned();
                let group = match cached {
                    Some(group) if !item.ends_session() && !item.agent_joined() => group,
                    _ => match route_item(sessions, &item, msg.receive_count).await {
                        ItemRoute::Settle(outcome) => return Err(outcome),
                        ItemRoute::Forward(s)
                        | ItemRoute::EndSession(s)
                        | ItemRoute::AgentJoined(s) => {
                            let group = customer_group(&s.business_number_id, &s.customer_id);
                            let mut groups = lock(groups);
                            if groups.len() >= CACHE_LIMIT {
                                groups.clear();
                            }
                            groups.insert(item.contact_id.clone(), group.clone());
                            group
                        }
                    },
                };
                Ok(Passed::Send(
                    Vec::new(),
                    vec![OutgoingMessage {
                        body: msg.body.clone(),
                        group: Some(group),
                        dedupe_id: Some(dedupe_id("cx", &item.id)),
                    }],
                ))
            }
        }
    }
}

/// Counts (and logs, when failed) the statuses of our acknowledgements as the intake and
/// the conversation would have.
fn count_acknowledgement_statuses(event: &str) {
    match crate::domain::decode_eum_event(event) {
        Ok(decoded) => {
            for status in &decoded.statuses {
                crate::actors::inbound_intake::record_status(status);
                crate::actors::conversation::receipts::count_acknowledgement_status(status);
            }
        }
        Err(e) => {
            tracing::debug!(reason = %e.reason(), "acknowledgement statuses not decoded; dropped")
        }
    }
}

/// What the splitter made of a queue message.
enum Passed {
    /// Send these held bursts, then these FIFO messages (none: nothing to deliver).
    Send(Vec<HeldBurst>, Vec<OutgoingMessage>),
    /// A text held for a burst.
    Hold(crate::delivery::regroup::Split),
}

/// One thing to pass on to the FIFO queue, in order.
enum Forward {
    Message {
        msg: QueueMessage,
        guard: InFlight,
        out: Vec<OutgoingMessage>,
    },
    Burst(HeldBurst),
}

impl Forward {
    fn messages(&self) -> Vec<OutgoingMessage> {
        match self {
            Forward::Message { out, .. } => out.clone(),
            Forward::Burst(burst) => vec![burst.message()],
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Regroup {
    poller: Arc<Poller>,
    target: Arc<dyn Queue>,
    splitter: Arc<Splitter>,
    policy: RetryPolicy,
    probe: Arc<Probe>,
    lease: Arc<Lease>,
}

/// This replica's hold on the regroup lease of one direction.
struct Lease {
    store: Arc<dyn LeaseStore>,
    name: &'static str,
    owner: String,
    /// Until when the lease is surely ours (the last successful renewal plus its length,
    /// minus a margin); None while another replica holds it.
    until: Mutex<Option<Instant>>,
}

impl Lease {
    fn held(&self) -> bool {
        lock(&self.until).is_some_and(|until| Instant::now() < until)
    }

    /// Takes or renews the lease; logs when leadership changes hands.
    async fn renew(&self, ttl: Duration) {
        let was = self.held();
        let asked = Instant::now();
        match self.store.acquire(self.name, &self.owner, ttl).await {
            Ok(true) => *lock(&self.until) = Some(asked + ttl - ttl / 4),
            Ok(false) => *lock(&self.until) = None,
            Err(e) => tracing::warn!(lease = self.name, error = %e, "could not renew the lease"),
        }
        match (was, self.held()) {
            (false, true) => tracing::info!(lease = self.name, "this replica regroups now"),
            (true, false) => tracing::info!(lease = self.name, "another replica regroups now"),
            _ => {}
        }
    }

    async fn release(&self) {
        if lock(&self.until).take().is_some() {
            if let Err(e) = self.store.release(self.name, &self.owner).await {
                tracing::warn!(lease = self.name, error = %e, "could not release the lease; it runs out by itself");
            }
        }
    }
}

impl Regroup {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Arc<dyn Queue>,
        target: Arc<dyn Queue>,
        splitter: Splitter,
        lifecycle: Arc<Lifecycle>,
        max_in_flight: usize,
        policy: RetryPolicy,
        leases: Arc<dyn LeaseStore>,
        owner: String,
        probe: Arc<Probe>,
    ) -> Self {
        let (queue_name, metrics) = splitter.name();
        let lease = Arc::new(Lease {
            store: leases,
            name: splitter.lease_name(),
            owner,
            until: Mutex::new(None),
        });
        Self {
            lease,
            poller: Arc::new(Poller::new(
                source,
                queue_name,
                lifecycle,
                metrics,
                max_in_flight,
            )),
            target,
            splitter: Arc::new(splitter),
            policy,
            probe,
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl Actor for Regroup {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Renewing runs apart from the poll loop: a long poll must not outlast the lease.
        let (lease, poller) = (self.lease.clone(), self.poller.clone());
        actix::spawn(async move {
            let ttl = poller
                .visibility()
                .await
                .max(MIN_LEASE - Duration::from_secs(2))
                + Duration::from_secs(2);
            let mut every = tokio::time::interval(ttl / 5);
            loop {
                every.tick().await;
                if poller.lifecycle.is_draining() {
                    lease.release().await;
                    return;
                }
                lease.renew(ttl).await;
            }
        });
        ctx.notify(Poll);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // A killed incarnation stops leading at once; its lease runs out by itself.
        lock(&self.lease.until).take();
    }
}

impl Handler<Fault> for Regroup {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

/// Sends the FIFO messages of several queue messages in as few batches as possible, never
/// splitting one queue message's messages across batches it could share; answers, per
/// queue message, whether all of its FIFO messages were accepted.
async fn forward(
    target: &Arc<dyn Queue>,
    pending: &[Vec<OutgoingMessage>],
) -> Vec<Result<(), String>> {
    let mut results = vec![Ok(()); pending.len()];
    let mut start = 0;
    while start < pending.len() {
        // Fill one batch with whole queue messages (a message with more than ten
        // entries goes alone, in several calls).
        let mut end = start;
        let mut size = 0;
        while end < pending.len() && (end == start || size + pending[end].len() <= SEND_BATCH) {
            size += pending[end].len();
            end += 1;
        }
        let batch: Vec<OutgoingMessage> = pending[start..end].iter().flatten().cloned().collect();
        if let Err(e) = target.send_batch(&batch).await {
            for r in &mut results[start..end] {
                *r = Err(e.to_string());
            }
        }
        start = end;
    }
    results
}

impl Handler<Poll> for Regroup {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Poll, _: &mut Self::Context) -> Self::Result {
        let poller = self.poller.clone();
        let target = self.target.clone();
        let splitter = self.splitter.clone();
        let policy = self.policy.clone();
        let probe = self.probe.clone();
        let lease = self.lease.clone();
        let fut = async move {
            let mut pending: Vec<Forward> = Vec::new();
            // Held bursts whose time has come go first (all of them when draining).
            if let Some(hold) = splitter.hold() {
                let draining = poller.lifecycle.is_draining();
                for burst in hold.take_due(Instant::now(), draining || !lease.held()) {
                    pending.push(Forward::Burst(burst));
                }
            }
            if !lease.held() {
                forward_all(&poller, &target, &policy, pending).await;
                let _waiting = probe.waiting();
                tokio::time::sleep(FOLLOWER_NAP).await;
                return;
            }
            let wait = splitter
                .hold()
                .and_then(BurstHold::next_due)
                .map_or(LONG_POLL, |due| {
                    due.saturating_duration_since(Instant::now()).min(LONG_POLL)
                });
            let mut batch = {
                let _waiting = probe.waiting();
                if pending.is_empty() {
                    poller.next_batch_within(wait).await
                } else {
                    Vec::new()
                }
            };
            if !lease.held() && !batch.is_empty() {
                // Lost the lease during the poll: the new leader passes these on.
                for (msg, guard) in batch {
                    poller.settle_now(
                        msg,
                        guard,
                        Outcome::retry("regroup lease moved", Duration::ZERO),
                    );
                }
                forward_all(&poller, &target, &policy, pending).await;
                return;
            }
            // SQS hands a batch over in no particular order: pass it on in arrival order.
            batch.sort_by_key(|(msg, _)| msg.sent_at);
            let _busy = probe.busy();
            for (msg, guard) in batch {
                match splitter.split(&msg).await {
                    Ok(Passed::Send(first, out)) => {
                        pending.extend(first.into_iter().map(Forward::Burst));
                        if out.is_empty() {
                            poller.settle_now(msg, guard, Outcome::Ignored("nothing to deliver"));
                        } else {
                            pending.push(Forward::Message { msg, guard, out });
                        }
                    }
                    Ok(Passed::Hold(split)) => {
                        // The queue message stays received (its visibility extended) until
                        // the burst is passed on.
                        let (done, outcome) = oneshot::channel();
                        poller.settle_later(msg, guard, vec![outcome], Vec::new());
                        if let Some(full) = splitter.hold().and_then(|h| h.keep(split, done)) {
                            pending.push(Forward::Burst(full));
                        }
                    }
                    Err(outcome) => {
                        if let Outcome::Reject { reason } = &outcome {
                            poller.metrics.error("undecodable");
                            tracing::error!(queue = poller.queue_name, sqs_message_id = %msg.id, %reason,
                                "message cannot be decoded");
                        }
                        poller.settle_now(msg, guard, outcome)
                    }
                }
            }
            forward_all(&poller, &target, &policy, pending).await;
        };
        Box::pin(fut.into_actor(self).map(|_, _, ctx| ctx.notify(Poll)))
    }
}

/// Passes `pending` on to the FIFO queue in order and settles each source.
async fn forward_all(
    poller: &Poller,
    target: &Arc<dyn Queue>,
    policy: &RetryPolicy,
    pending: Vec<Forward>,
) {
    if pending.is_empty() {
        return;
    }
    let batches: Vec<Vec<OutgoingMessage>> = pending.iter().map(Forward::messages).collect();
    let results = forward(target, &batches).await;
    for (item, result) in pending.into_iter().zip(results) {
        let count = match &item {
            Forward::Message { out, .. } => out.len(),
            Forward::Burst(burst) => burst.len(),
        };
        let outcome = match result {
            Ok(()) => {
                counter!(m::REGROUPED, "queue" => poller.queue_name).increment(count as u64);
                Outcome::Done
            }
            Err(reason) => {
                tracing::warn!(queue = poller.queue_name, %reason,
                    "could not pass messages to the FIFO queue; they stay in the queue");
                Outcome::retry(reason, policy.backoff(1))
            }
        };
        match item {
            Forward::Message { msg, guard, .. } => {
                let outcome = match outcome {
                    Outcome::Retry { reason, .. } => {
                        Outcome::retry(reason, policy.backoff(msg.receive_count))
                    }
                    other => other,
                };
                poller.settle_now(msg, guard, outcome)
            }
            Forward::Burst(burst) => burst.settle(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local::MemoryQueue;
    use std::time::Duration;

    fn entries(n: usize, tag: &str) -> Vec<OutgoingMessage> {
        (0..n)
            .map(|i| OutgoingMessage {
                body: format!("{tag}{i}"),
                group: Some("g".into()),
                dedupe_id: Some(format!("{tag}{i}")),
            })
            .collect()
    }

    #[tokio::test]
    async fn queue_messages_share_batches_and_all_arrive_in_order() {
        let fifo: Arc<dyn Queue> = Arc::new(MemoryQueue::fifo("f", Duration::from_secs(30)));
        let pending = vec![entries(3, "a"), entries(12, "b"), entries(4, "c")];
        let results = forward(&fifo, &pending).await;
        assert!(results.iter().all(Result::is_ok));
        let mut bodies = Vec::new();
        loop {
            let got = fifo.receive(10, Duration::ZERO).await.unwrap();
            if got.is_empty() {
                break;
            }
            for m in got {
                bodies.push(m.body.clone());
                fifo.delete(&m.receipt).await.unwrap();
            }
        }
        let expected: Vec<String> = pending.iter().flatten().map(|m| m.body.clone()).collect();
        assert_eq!(bodies, expected);
    }
}
