//! An in-process queue with SQS semantics (visibility timeout, receive count, dead
//! letters), used by local mode in place of SQS.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::ports::{ErrorKind, PortError, PortResult, Queue, QueueMessage};

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    receive_count: u32,
    sent_at: std::time::SystemTime,
}

/// A message moved aside with the reason it could not be handled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub reason: String,
}

#[derive(Default)]
struct State {
    visible: VecDeque<Stored>,
    /// receipt -> (message, visible again at)
    in_flight: HashMap<String, (Stored, Instant)>,
    dead: Vec<DeadLetter>,
    next_receipt: u64,
}

/// See the module docs. Cheap to share behind an `Arc`.
pub struct MemoryQueue {
    name: String,
    visibility_timeout: Duration,
    state: Mutex<State>,
    arrived: Notify,
}

impl MemoryQueue {
    pub fn new(name: impl Into<String>, visibility_timeout: Duration) -> Self {
        Self {
            name: name.into(),
            visibility_timeout,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a message; returns its id.
    pub fn push(&self, body: impl Into<String>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.lock().visible.push_back(Stored {
            id: id.clone(),
            body: body.into(),
            receive_count: 0,
            sent_at: std::time::SystemTime::now(),
        });
        self.arrived.notify_waiters();
        id
    }

    /// Messages dead-lettered so far, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    /// (visible, in flight) message counts.
    pub fn depth(&self) -> (usize, usize) {
        let state = self.lock();
        (state.visible.len(), state.in_flight.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns expired in-flight messages to the visible queue and takes up to `max`.
    fn take(&self, max: usize) -> Vec<QueueMessage> {
        let mut state = self.lock();
        let now = Instant::now();
        let expired: Vec<String> = state
            .in_flight
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for receipt in expired {
            if let Some((msg, _)) = state.in_flight.remove(&receipt) {
                state.visible.push_front(msg);
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut msg) = state.visible.pop_front() else {
                break;
            };
            msg.receive_count += 1;
            state.next_receipt += 1;
            let receipt = format!("{}-{}", msg.id, state.next_receipt);
            out.push(QueueMessage {
                id: msg.id.clone(),
                receipt: receipt.clone(),
                body: msg.body.clone(),
                receive_count: msg.receive_count,
                sent_at: Some(msg.sent_at),
            });
            state
                .in_flight
                .insert(receipt, (msg, now + self.visibility_timeout));
        }
        out
    }

    fn unknown(&self, operation: &'static str, receipt: &str) -> PortError {
        PortError::new(
            ErrorKind::Invalid,
            "memory-queue",
            operation,
            format!("queue {}: unknown receipt {receipt}", self.name),
        )
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<QueueMessage>> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            let batch = self.take(max.max(1));
            if !batch.is_empty() {
                return Ok(batch);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // Wake on a push, or soon enough to notice visibility timeouts expiring.
            let nap = (deadline - now).min(Duration::from_millis(200));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn delete(&self, receipt: &str) -> PortResult<()> {
        match self.lock().in_flight.remove(receipt) {
            Some(_) => Ok(()),
            None => Err(self.unknown("DeleteMessage", receipt)),
        }
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()> {
        let mut state = self.lock();
        match state.in_flight.get_mut(receipt) {
            Some((_, at)) => {
                *at = Instant::now() + delay;
                Ok(())
            }
            None => Err(self.unknown("ChangeMessageVisibility", receipt)),
        }
    }

    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()> {
        let mut state = self.lock();
        if state.in_flight.remove(&message.receipt).is_none() {
            return Err(self.unknown("DeadLetter", &message.receipt));
        }
        state.dead.push(DeadLetter {
            id: message.id.clone(),
            body: message.body.clone(),
            reason: reason.to_string(),
        });
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn undeleted_message_comes_back_after_visibility_timeout() {
        let q = MemoryQueue::new("t", Duration::from_millis(50));
        q.push("a");
        let first = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
        let again = q.receive(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(again[0].body, "a");
        assert_eq!(again[0].receive_count, 2);
        q.delete(&again[0].receipt).await.unwrap();
        assert!(q.delete(&again[0].receipt).await.is_err());
    }

    #[tokio::test]
    async fn dead_letter_removes_and_records_reason() {
        let q = MemoryQueue::new("t", Duration::from_secs(30));
        q.push("bad");
        let m = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
        q.dead_letter(&m, "not json").await.unwrap();
        assert_eq!(q.depth(), (0, 0));
        assert_eq!(q.dead_letters()[0].reason, "not json");
    }
}
