//! The long-poll loop both intakes share: bounded in-flight work (backpressure that
//! leaves messages in the queue rather than in memory), visibility heartbeats while work
//! runs, a clean stop when draining, and settling each message once its work has
//! reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::batch_delete::BatchDeleter;
use super::settle::{apply, decide};
use crate::actors::Outcome;
use crate::lifecycle::{HeldMessage, Lifecycle};
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{Queue, QueueMessage};

const BATCH: usize = 10;
const LONG_POLL: Duration = Duration::from_secs(20);
/// Visibility assumed when the queue cannot tell (SQS's own default).
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// Holds one message's share of the in-flight budget until it is settled, and keeps it
/// on the list of messages to release if the process stops first.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    _held: HeldMessage,
    lifecycle: Arc<Lifecycle>,
    queue_name: &'static str,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.lifecycle.done_in_flight(1);
        metrics::gauge!(m::QUEUE_IN_FLIGHT, "queue" => self.queue_name).decrement(1.0);
    }
}

pub struct Poller {
    pub queue: Arc<dyn Queue>,
    pub queue_name: &'static str,
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: ActorMetrics,
    permits: Arc<Semaphore>,
    batch: usize,
    /// Deletes of settled messages, batched.
    deleter: Arc<BatchDeleter>,
    /// The queue's visibility timeout, read from the queue on first use: held messages
    /// are extended by this much every third of it.
    visibility: tokio::sync::OnceCell<Duration>,
}

impl Poller {
    pub fn new(
        queue: Arc<dyn Queue>,
        queue_name: &'static str,
        lifecycle: Arc<Lifecycle>,
        metrics: ActorMetrics,
        max_in_flight: usize,
    ) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            deleter: Arc::new(BatchDeleter::new(queue.clone())),
            queue,
            queue_name,
            lifecycle,
            metrics,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            batch: BATCH.min(max_in_flight),
            visibility: tokio::sync::OnceCell::new(),
        }
    }

    /// The queue's visibility timeout, read from the queue once.
    pub async fn visibility(&self) -> Duration {
        *self
            .visibility
            .get_or_init(|| async {
                match self.queue.info().await {
                    Ok(info) => info.visibility_timeout,
                    Err(e) => {
                        tracing::warn!(queue = self.queue_name, error = %e,
                            "cannot read the visibility timeout; assuming SQS's default");
                        DEFAULT_VISIBILITY
                    }
                }
            })
            .await
    }

    /// Waits for room, then long-polls one batch. Empty when draining or on a receive
    /// error (after a pause, so a broken queue does not spin).
    ///
    /// A long poll cannot be cancelled (an abandoned one can still be handed messages),
    /// so a drain lets the poll in progress return, then hands back at once whatever it
    /// brought instead of starting it.
    pub async fn next_batch(&self) -> Vec<(QueueMessage, InFlight)> {
        self.next_batch_within(LONG_POLL).await
    }

    /// [`Poller::next_batch`], giving up after `wait` (waiting for room included), for a
    /// caller that has something else to do by then.
    pub async fn next_batch_within(&self, wait: Duration) -> Vec<(QueueMessage, InFlight)> {
        self.metrics.heartbeat();
        self.visibility().await;
        if self.lifecycle.is_draining() {
            tokio::time::sleep(Duration::from_millis(200).min(wait)).await;
            return Vec::new();
        }
        let deadline = tokio::time::Instant::now() + wait;
        let room = self.permits.clone().acquire_many_owned(self.batch as u32);
        let Ok(Ok(mut permits)) = tokio::time::timeout_at(deadline, room).await else {
            return Vec::new();
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let received = {
            let _receiving = self.lifecycle.receiving();
            self.queue.receive(self.batch, left.min(LONG_POLL)).await
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                self.metrics.error(e.kind.as_str());
                tracing::warn!(queue = self.queue_name, error = %e, "receive failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Vec::new();
            }
        };
        if self.lifecycle.is_draining() && !messages.is_empty() {
            self.release(&messages).await;
            return Vec::new();
        }
        self.lifecycle.add_in_flight(messages.len());
        metrics::gauge!(m::QUEUE_IN_FLIGHT, "queue" => self.queue_name)
            .increment(messages.len() as f64);
        messages
            .into_iter()
            .filter_map(|msg| {
                let permit = permits.split(1)?;
                let held = self.lifecycle.hold(self.queue.clone(), msg.receipt.clone());
                Some((
                    msg,
                    InFlight {
                        _permit: permit,
                        _held: held,
                        lifecycle: self.lifecycle.clone(),
                        queue_name: self.queue_name,
                    },
                ))
            })
            .collect()
    }

    /// Hands messages received during a drain straight back (visible at once).
    async fn release(&self, messages: &[QueueMessage]) {
        for msg in messages {
            if let Err(e) = self
                .queue
                .set_visibility(&msg.receipt, Duration::ZERO)
                .await
            {
                tracing::warn!(queue = self.queue_name, sqs_message_id = %msg.id, error = %e,
                    "could not hand back a message received while draining; it returns after its visibility timeout");
            }
        }
        tracing::info!(
            queue = self.queue_name,
            count = messages.len(),
            "draining: handed back messages from the last receive"
        );
    }

    /// Settles `msg` from its work's outcomes, then releases its in-flight share. While
    /// the work runs, the message's visibility is extended so that no other consumer is
    /// handed it: work longer than the visibility timeout is not redelivered while it runs.
    pub fn settle_later(
        &self,
        msg: QueueMessage,
        guard: InFlight,
        outcomes: Vec<oneshot::Receiver<Outcome>>,
        problems: Vec<String>,
    ) {
        let queue = self.queue.clone();
        let deleter = self.deleter.clone();
        let queue_name = self.queue_name;
        let metrics = self.metrics;
        let visibility = self.visibility.get().copied().unwrap_or(DEFAULT_VISIBILITY);
        tokio::spawn(async move {
            let started = Instant::now();
            let all = join_all(outcomes.into_iter().map(|rx| async {
                // A dropped sender means the work was dropped before it ran (its actor
                // stopped or was restarted): it goes back to the queue.
                rx.await.unwrap_or_else(|_| {
                    Outcome::retry("work was dropped before it ran", Duration::from_secs(1))
                })
            }));
            let results = heartbeat_while(all, &queue, &msg, queue_name, visibility).await;
            let settlement = decide(&results, &problems);
            apply(&queue, &deleter, queue_name, &msg, settlement).await;
            metrics.handled("settled", started.elapsed());
            drop(guard);
        });
    }

    /// Settles a message whose fate is known without any work (undecodable, ignored).
    pub fn settle_now(&self, msg: QueueMessage, guard: InFlight, outcome: Outcome) {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(outcome);
        self.settle_later(msg, guard, vec![rx], Vec::new());
    }
}

/// Awaits `work`, extending `msg`'s visibility by `visibility` every third of it.
async fn heartbeat_while<T>(
    work: impl std::future::Future<Output = T>,
    queue: &Arc<dyn Queue>,
    msg: &QueueMessage,
    queue_name: &'static str,
    visibility: Duration,
) -> T {
    tokio::pin!(work);
    let every = (visibility / 3).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut extending = true;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = tick.tick(), if extending => {
                match queue.set_visibility(&msg.receipt, visibility).await {
                    Ok(()) => metrics::counter!(m::VISIBILITY_EXTENSIONS, "queue" => queue_name).increment(1),
                    Err(e) => {
                        // Past SQS's 12-hour limit or the receipt is stale: the message
                        // may be redelivered; dedupe and ClientTokens keep that harmless.
                        tracing::warn!(queue = queue_name, sqs_message_id = %msg.id, error = %e,
                            "could not extend the message's visibility");
                        extending = false;
                    }
                }
            }
        }
    }
}
