use std::time::Duration;

use async_trait::async_trait;

use super::PortResult;

/// One message received from a queue, still owned by the queue until deleted.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// The queue's id for this message (SQS MessageId): what logs name.
    pub id: String,
    /// Handle for delete / visibility changes (SQS ReceiptHandle).
    pub receipt: String,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
    /// When the queue first accepted the message (SQS SentTimestamp), for end-to-end latency.
    pub sent_at: Option<std::time::SystemTime>,
}

/// An at-least-once work queue with visibility timeouts (SQS semantics).
///
/// A received message becomes invisible; unless deleted it comes back after its
/// visibility timeout. That is what makes "delete only when done" lossless.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Long-polls for up to `max` messages, waiting at most `wait` when the queue is empty.
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<QueueMessage>>;
    /// The work is done: remove the message for good.
    async fn delete(&self, receipt: &str) -> PortResult<()>;
    /// Hands the message back to the queue, visible again after `delay`.
    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()>;
    /// Moves the message to the dead-letter queue with a reason, then deletes it here.
    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()>;
    /// Cheap reachability check for readiness probes.
    async fn ping(&self) -> PortResult<()>;
}

/// Where the simulator puts what EUM would publish for a customer's WhatsApp event
/// (SNS topic, SQS queue, or an in-process queue in local mode).
#[async_trait]
pub trait InboundSink: Send + Sync + 'static {
    /// `eum_event` is the EUM event JSON (the SNS `Message`), delivered wrapped in an SNS
    /// envelope unless the sink is configured for raw delivery.
    async fn publish_event(&self, eum_event: &str) -> PortResult<()>;
    /// Enqueues `body` exactly as given (the SQS message body), for bad-input tests.
    async fn enqueue_raw(&self, body: &str) -> PortResult<()>;
}

/// Where the simulator streams chat items, as Amazon Connect does after
/// StartContactStreaming (an SNS topic, or an in-process queue in local mode).
#[async_trait]
pub trait ChatStreamSink: Send + Sync + 'static {
    /// `message` is the chat item JSON (the SNS `Message`); `attributes` become SNS
    /// string MessageAttributes (ContactId, InitialContactId, ParticipantRole, ...).
    async fn publish(
        &self,
        topic_arn: &str,
        message: &str,
        attributes: &[(String, String)],
    ) -> PortResult<()>;
}
