//! The long-poll loop both intakes share: bounded in-flight work (backpressure that
//! leaves messages in the queue rather than in memory), a stop when draining, and
//! settling each message once its work has reported.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::settle::{apply, decide};
use super::Outcome;
use crate::lifecycle::Lifecycle;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{Queue, QueueMessage};

const BATCH: usize = 10;
const LONG_POLL: Duration = Duration::from_secs(20);

/// Holds one message's share of the in-flight budget until it is settled.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
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
            queue,
            queue_name,
            lifecycle,
            metrics,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            batch: BATCH.min(max_in_flight),
        }
    }

    /// Waits for room, then long-polls one batch. Empty when draining or on a receive
    /// error (after a pause, so a broken queue does not spin).
    pub async fn next_batch(&self) -> Vec<(QueueMessage, InFlight)> {
        self.metrics.heartbeat();
        if self.lifecycle.is_draining() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Vec::new();
        }
        let Ok(mut permits) = self
            .permits
            .clone()
            .acquire_many_owned(self.batch as u32)
            .await
        else {
            return Vec::new();
        };
        let received = self.queue.receive(self.batch, LONG_POLL).await;
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                self.metrics.error(e.kind.as_str());
                tracing::warn!(queue = self.queue_name, error = %e, "receive failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Vec::new();
            }
        };
        self.lifecycle.add_in_flight(messages.len());
        metrics::gauge!(m::QUEUE_IN_FLIGHT, "queue" => self.queue_name)
            .increment(messages.len() as f64);
        messages
            .into_iter()
            .filter_map(|msg| {
                let permit = permits.split(1)?;
                Some((
                    msg,
                    InFlight {
                        _permit: permit,
                        lifecycle: self.lifecycle.clone(),
                        queue_name: self.queue_name,
                    },
                ))
            })
            .collect()
    }

    /// Settles `msg` from its work's outcomes, then releases its in-flight share.
    pub fn settle_later(
        &self,
        msg: QueueMessage,
        guard: InFlight,
        outcomes: Vec<tokio::sync::oneshot::Receiver<Outcome>>,
        problems: Vec<String>,
    ) {
        let queue = self.queue.clone();
        let queue_name = self.queue_name;
        let metrics = self.metrics;
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut results = Vec::with_capacity(outcomes.len());
            for rx in outcomes {
                // A dropped sender means the conversation stopped before the work ran.
                results.push(rx.await.unwrap_or_else(|_| {
                    Outcome::retry("work was dropped before it ran", Duration::from_secs(1))
                }));
            }
            let settlement = decide(&results, &problems);
            apply(&queue, queue_name, &msg, settlement).await;
            metrics.handled("settled", started.elapsed());
            drop(guard);
        });
    }

    /// Settles a message whose fate is known without any work (undecodable, ignored).
    pub fn settle_now(&self, msg: QueueMessage, guard: InFlight, outcome: Outcome) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(outcome);
        self.settle_later(msg, guard, vec![rx], Vec::new());
    }
}
