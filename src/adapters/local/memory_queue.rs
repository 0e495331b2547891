//! An in-process queue with SQS semantics (visibility timeout, receive count, dead
//! letters), used by local mode in place of SQS. A FIFO queue ([`MemoryQueue::fifo`])
//! behaves as an SQS FIFO queue does: messages of one group are handed out in order and
//! never to two consumers at once (a group with a message in flight is held back), and a
//! message whose deduplication id was seen within five minutes is dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::ports::{
    ErrorKind, OutgoingMessage, PortError, PortResult, Queue, QueueInfo, QueueMessage,
};

/// SQS FIFO's deduplication window.
const DEDUPE_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    group: Option<String>,
    receive_count: u32,
    sent_at: SystemTime,
    first_received_at: Option<SystemTime>,
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
    /// Visible messages by arrival sequence: a message that comes back takes its old place.
    visible: BTreeMap<u64, Stored>,
    /// receipt -> (sequence, message, visible again at)
    in_flight: HashMap<String, (u64, Stored, Instant)>,
    dead: Vec<DeadLetter>,
    seen_dedupe_ids: HashMap<String, Instant>,
    next_seq: u64,
    receives: u64,
    next_receipt: u64,
}

/// See the module docs. Cheap to share behind an `Arc`.
pub struct MemoryQueue {
    name: String,
    visibility_timeout: Duration,
    fifo: bool,
    state: Mutex<State>,
    arrived: Notify,
}

impl MemoryQueue {
    pub fn new(name: impl Into<String>, visibility_timeout: Duration) -> Self {
        Self {
            name: name.into(),
            visibility_timeout,
            fifo: false,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        }
    }

    /// A FIFO queue: see the module docs.
    pub fn fifo(name: impl Into<String>, visibility_timeout: Duration) -> Self {
        Self {
            fifo: true,
            ..Self::new(name, visibility_timeout)
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a message; returns its id.
    pub fn push(&self, body: impl Into<String>) -> String {
        self.push_message(body.into(), None)
    }

    fn push_message(&self, body: String, group: Option<String>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.visible.insert(
                seq,
                Stored {
                    id: id.clone(),
                    body,
                    group,
                    receive_count: 0,
                    sent_at: SystemTime::now(),
                    first_received_at: None,
                },
            );
        }
        self.arrived.notify_waiters();
        id
    }

    /// Messages dead-lettered so far, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    /// Messages handed out so far, redeliveries included.
    pub fn total_receives(&self) -> u64 {
        self.lock().receives
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

    /// Returns expired in-flight messages to their place and takes up to `max`.
    fn take(&self, max: usize) -> Vec<QueueMessage> {
        let mut state = self.lock();
        let now = Instant::now();
        let expired: Vec<String> = state
            .in_flight
            .iter()
            .filter(|(_, (_, _, at))| *at <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for receipt in expired {
            if let Some((seq, msg, _)) = state.in_flight.remove(&receipt) {
                state.visible.insert(seq, msg);
            }
        }
        // FIFO: a group with a message in flight is not handed out again until it is done.
        let held: HashSet<String> = if self.fifo {
            state
                .in_flight
                .values()
                .filter_map(|(_, m, _)| m.group.clone())
                .collect()
        } else {
            HashSet::new()
        };
        let chosen: Vec<u64> = state
            .visible
            .iter()
            .filter(|(_, m)| m.group.as_ref().is_none_or(|g| !held.contains(g)))
            .map(|(seq, _)| *seq)
            .take(max)
            .collect();
        let mut out = Vec::with_capacity(chosen.len());
        for seq in chosen {
            let Some(mut msg) = state.visible.remove(&seq) else {
                continue;
            };
            msg.receive_count += 1;
            state.receives += 1;
            let first = *msg.first_received_at.get_or_insert_with(SystemTime::now);
            state.next_receipt += 1;
            let receipt = format!("{}-{}", msg.id, state.next_receipt);
            out.push(QueueMessage {
                id: msg.id.clone(),
                receipt: receipt.clone(),
                body: msg.body.clone(),
                receive_count: msg.receive_count,
                sent_at: Some(msg.sent_at),
                first_received_at: Some(first),
                group: msg.group.clone(),
            });
            state
                .in_flight
                .insert(receipt, (seq, msg, now + self.visibility_timeout));
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
            let nap = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn delete(&self, receipt: &str) -> PortResult<()> {
        let removed = self.lock().in_flight.remove(receipt);
        match removed {
            Some(_) => {
                // A FIFO group may be free again.
                self.arrived.notify_waiters();
                Ok(())
            }
            None => Err(self.unknown("DeleteMessage", receipt)),
        }
    }

    async fn delete_batch(&self, receipts: &[String]) -> PortResult<Vec<String>> {
        let mut failed = Vec::new();
        for receipt in receipts {
            if self.delete(receipt).await.is_err() {
                failed.push(receipt.clone());
            }
        }
        Ok(failed)
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()> {
        {
            let mut state = self.lock();
            match state.in_flight.get_mut(receipt) {
                Some((_, _, at)) => *at = Instant::now() + timeout,
                None => return Err(self.unknown("ChangeMessageVisibility", receipt)),
            }
        }
        if timeout.is_zero() {
            self.arrived.notify_waiters();
        }
        Ok(())
    }

    async fn send_batch(&self, messages: &[OutgoingMessage]) -> PortResult<()> {
        for m in messages {
            if self.fifo {
                let (Some(group), Some(dedupe_id)) = (&m.group, &m.dedupe_id) else {
                    return Err(PortError::new(
                        ErrorKind::Invalid,
                        "memory-queue",
                        "SendMessageBatch",
                        format!(
                            "queue {}: FIFO messages need a group and a dedupe id",
                            self.name
                        ),
                    ));
                };
                let now = Instant::now();
                let mut state = self.lock();
                state
                    .seen_dedupe_ids
                    .retain(|_, at| now.duration_since(*at) < DEDUPE_WINDOW);
                if state.seen_dedupe_ids.contains_key(dedupe_id) {
                    continue;
                }
                state.seen_dedupe_ids.insert(dedupe_id.clone(), now);
                drop(state);
                self.push_message(m.body.clone(), Some(group.clone()));
            } else {
                self.push_message(m.body.clone(), None);
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()> {
        {
            let mut state = self.lock();
            if state.in_flight.remove(&message.receipt).is_none() {
                return Err(self.unknown("DeadLetter", &message.receipt));
            }
            state.dead.push(DeadLetter {
                id: message.id.clone(),
                body: message.body.clone(),
                reason: reason.to_string(),
            });
        }
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn info(&self) -> PortResult<QueueInfo> {
        Ok(QueueInfo {
            visibility_timeout: self.visibility_timeout,
            max_receive_count: None,
            fifo: self.fifo,
        })
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo_message(group: &str, body: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: body.into(),
            group: Some(group.into()),
            dedupe_id: Some(body.into()),
        }
    }

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

    #[tokio::test]
    async fn fifo_holds_a_group_back_while_one_of_its_messages_is_in_flight() {
        let q = MemoryQueue::fifo("f", Duration::from_secs(30));
        q.send_batch(&[
            fifo_message("g1", "a1"),
            fifo_message("g2", "b1"),
            fifo_message("g1", "a2"),
        ])
        .await
        .unwrap();
        let first = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(first[0].body, "a1");
        // g1 is in flight: only g2 is offered.
        let second = q.receive(10, Duration::ZERO).await.unwrap();
        let bodies: Vec<&str> = second.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["b1"]);
        // Handing a1 back makes g1 available again, a1 first.
        q.set_visibility(&first[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        let third = q.receive(10, Duration::ZERO).await.unwrap();
        let bodies: Vec<&str> = third.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a1", "a2"]);
        assert_eq!(third[0].receive_count, 2);
    }

    #[tokio::test]
    async fn fifo_drops_a_repeated_dedupe_id() {
        let q = MemoryQueue::fifo("f", Duration::from_secs(30));
        q.send_batch(&[fifo_message("g", "x"), fifo_message("g", "x")])
            .await
            .unwrap();
        assert_eq!(q.depth(), (1, 0));
    }
}
