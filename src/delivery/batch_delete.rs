//! Settling in batches: deletes of messages whose work is done are gathered for a few
//! milliseconds and sent as one DeleteMessageBatch of up to ten, instead of one
//! DeleteMessage each. What the batch could not delete is tried once more on its own;
//! what still fails stays in the queue and is redelivered, which dedupe makes harmless.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ports::{ErrorKind, PortError, PortResult, Queue};

/// How long the first delete waits for others to share its call.
pub const LINGER: Duration = Duration::from_millis(3);
/// SQS's limit of entries per DeleteMessageBatch.
pub const BATCH: usize = 10;

struct Pending {
    receipt: String,
    deleted: oneshot::Sender<PortResult<()>>,
}

/// Deletes messages of one queue in batches.
pub struct BatchDeleter {
    queue: Arc<dyn Queue>,
    /// Started on first use, inside the runtime.
    sender: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl BatchDeleter {
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        Self {
            queue,
            sender: OnceLock::new(),
        }
    }

    /// Deletes the message with `receipt`; returns once it is deleted (or failed).
    pub async fn delete(&self, receipt: &str) -> PortResult<()> {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.queue.clone(), rx));
            tx
        });
        let (deleted, answer) = oneshot::channel();
        let pending = Pending {
            receipt: receipt.to_string(),
            deleted,
        };
        if sender.send(pending).is_err() {
            return self.queue.delete(receipt).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(PortError::new(
                ErrorKind::Transient,
                "sqs",
                "DeleteMessageBatch",
                "the batch deleter stopped",
            ))
        })
    }
}

async fn run(queue: Arc<dyn Queue>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        // Batches run concurrently: a slow call does not hold back the next batch.
        tokio::spawn(flush(queue.clone(), batch));
    }
}

async fn flush(queue: Arc<dyn Queue>, batch: Vec<Pending>) {
    metrics::histogram!(crate::metrics::BATCH_SIZE, "operation" => "DeleteMessageBatch")
        .record(batch.len() as f64);
    let receipts: Vec<String> = batch.iter().map(|p| p.receipt.clone()).collect();
    let failed = match queue.delete_batch(&receipts).await {
        Ok(failed) => failed,
        // The whole call failed: try each on its own.
        Err(_) => receipts,
    };
    for pending in batch {
        let result = if failed.contains(&pending.receipt) {
            queue.delete(&pending.receipt).await
        } else {
            Ok(())
        };
        let _ = pending.deleted.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local::MemoryQueue;

    #[tokio::test]
    async fn concurrent_deletes_share_calls_and_all_happen() {
        let queue = Arc::new(MemoryQueue::new("q", Duration::from_secs(30)));
        for i in 0..25 {
            queue.push(format!("m{i}"));
        }
        let mut received = Vec::new();
        while received.len() < 25 {
            received.extend(queue.receive(10, Duration::ZERO).await.unwrap());
        }
        let deleter = Arc::new(BatchDeleter::new(queue.clone() as Arc<dyn Queue>));
        let deletes = received.iter().map(|m| {
            let (deleter, receipt) = (deleter.clone(), m.receipt.clone());
            tokio::spawn(async move { deleter.delete(&receipt).await })
        });
        for d in futures::future::join_all(deletes).await {
            d.unwrap().unwrap();
        }
        assert_eq!(queue.depth(), (0, 0), "every message deleted");
    }

    #[tokio::test]
    async fn a_stale_receipt_fails_alone() {
        let queue = Arc::new(MemoryQueue::new("q", Duration::from_secs(30)));
        queue.push("a");
        let m = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let deleter = BatchDeleter::new(queue.clone() as Arc<dyn Queue>);
        deleter.delete(&m.receipt).await.unwrap();
        assert!(deleter.delete(&m.receipt).await.is_err());
    }
}
