use std::time::{Duration, SystemTime};

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
    pub sent_at: Option<SystemTime>,
    /// When the queue first handed it out (SQS ApproximateFirstReceiveTimestamp).
    pub first_received_at: Option<SystemTime>,
    /// The FIFO message group it belongs to (SQS MessageGroupId), on FIFO queues.
    pub group: Option<String>,
}

/// A message to put on a queue. On a FIFO queue both `group` and `dedupe_id` are set:
/// the queue hands a group to one consumer at a time, in order, and drops a second copy
/// with the same deduplication id sent within its deduplication window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub group: Option<String>,
    pub dedupe_id: Option<String>,
}

/// What the router needs to know about a queue, read once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    /// How long a received message stays invisible unless extended.
    pub visibility_timeout: Duration,
    /// The redrive policy's `maxReceiveCount`, if the queue has one.
    pub max_receive_count: Option<u32>,
    /// Whether it is a FIFO queue.
    pub fifo: bool,
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
    /// Deletes several messages in one call; answers the receipts that could not be
    /// deleted (they will be redelivered, which dedupe makes harmless).
    async fn delete_batch(&self, receipts: &[String]) -> PortResult<Vec<String>>;
    /// Makes a received message invisible for `timeout` from now: extends the time the
    /// work may take (heartbeat), or hands the message back to be offered again after
    /// `timeout` (zero: at once).
    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()>;
    /// Puts up to ten messages on the queue in one call. Fails as a whole if any of them
    /// was not accepted (a repeat is harmless: FIFO deduplication, durable dedupe).
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> PortResult<()>;
    /// Moves the message to the dead-letter queue with a reason, then deletes it here.
    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()>;
    /// Visibility timeout, redrive and FIFO settings.
    async fn info(&self) -> PortResult<QueueInfo>;
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
