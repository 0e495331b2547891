//! [`Queue`] on Amazon SQS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use super::call::{malformed, observe};
use crate::ports::{
    ErrorKind, OutgoingMessage, PortError, PortResult, Queue, QueueInfo, QueueMessage,
};

const SERVICE: &str = "sqs";
/// SQS caps one receive at 10 messages and a long poll at 20 s.
const MAX_BATCH: usize = 10;
const MAX_WAIT: Duration = Duration::from_secs(20);
/// SQS caps a visibility timeout at 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// One SQS queue and the dead-letter queue its refused messages go to.
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
    dead_letter_fifo: bool,
}

impl SqsQueue {
    pub fn new(client: Client, url: String, dead_letter_url: String) -> Self {
        Self {
            client,
            url,
            dead_letter_fifo: dead_letter_url.ends_with(".fifo"),
            dead_letter_url,
        }
    }
}

fn string_attribute(value: &str) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::new(ErrorKind::Other, SERVICE, "SendMessage", e.to_string()))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<QueueMessage>> {
        let out = observe(
            SERVICE,
            "ReceiveMessage",
            self.client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
                .wait_time_seconds(wait.min(MAX_WAIT).as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(
                    MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                )
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .send(),
        )
        .await?;
        let mut messages = Vec::new();
        for m in out.messages() {
            let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                return Err(malformed(
                    SERVICE,
                    "ReceiveMessage",
                    "MessageId/ReceiptHandle",
                ));
            };
            let attrs = m.attributes();
            let text = |name: MessageSystemAttributeName| attrs.and_then(|a| a.get(&name));
            let attr = |name| text(name).and_then(|v| v.parse::<u64>().ok());
            let millis = |name| attr(name).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
            messages.push(QueueMessage {
                id: id.to_string(),
                receipt: receipt.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1) as u32,
                sent_at: millis(MessageSystemAttributeName::SentTimestamp),
                first_received_at: millis(
                    MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                ),
                group: text(MessageSystemAttributeName::MessageGroupId).cloned(),
            });
        }
        Ok(messages)
    }

    async fn delete(&self, receipt: &str) -> PortResult<()> {
        observe(
            SERVICE,
            "DeleteMessage",
            self.client
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn delete_batch(&self, receipts: &[String]) -> PortResult<Vec<String>> {
        let mut failed = Vec::new();
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .map_err(|e| {
                            PortError::new(
                                ErrorKind::Invalid,
                                SERVICE,
                                "DeleteMessageBatch",
                                e.to_string(),
                            )
                        })
                })
                .collect::<PortResult<Vec<_>>>()?;
            let out = observe(
                SERVICE,
                "DeleteMessageBatch",
                self.client
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send(),
            )
            .await?;
            for entry in out.failed() {
                if let Some(receipt) = entry.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    failed.push(receipt.clone());
                }
            }
        }
        Ok(failed)
    }

    async fn send_batch(&self, messages: &[OutgoingMessage]) -> PortResult<()> {
        const OP: &str = "SendMessageBatch";
        for chunk in messages.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .set_message_group_id(m.group.clone())
                        .set_message_deduplication_id(m.dedupe_id.clone())
                        .build()
                        .map_err(|e| PortError::new(ErrorKind::Invalid, SERVICE, OP, e.to_string()))
                })
                .collect::<PortResult<Vec<_>>>()?;
            let out = observe(
                SERVICE,
                OP,
                self.client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send(),
            )
            .await?;
            if let Some(entry) = out.failed().first() {
                // A sender fault (e.g. a body over the size limit) will never be accepted.
                let kind = if entry.sender_fault() {
                    ErrorKind::Invalid
                } else {
                    ErrorKind::Transient
                };
                return Err(PortError::new(
                    kind,
                    SERVICE,
                    OP,
                    format!(
                        "{} of {} entries refused; first: {}: {}",
                        out.failed().len(),
                        chunk.len(),
                        entry.code(),
                        entry.message().unwrap_or("no message")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, delay: Duration) -> PortResult<()> {
        observe(
            SERVICE,
            "ChangeMessageVisibility",
            self.client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .visibility_timeout(delay.min(MAX_VISIBILITY).as_secs() as i32)
                .send(),
        )
        .await
        .map(|_| ())
    }

    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()> {
        // SQS attribute values are capped; the reason is ours and short, but be safe.
        let reason: String = reason.chars().take(1000).collect();
        let failed_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        observe(
            SERVICE,
            "SendMessage",
            self.client
                .send_message()
                .queue_url(&self.dead_letter_url)
                .message_body(&message.body)
                .message_attributes("waconnect_reason", string_attribute(&reason)?)
                .message_attributes(
                    "waconnect_source_message_id",
                    string_attribute(&message.id)?,
                )
                .message_attributes("waconnect_source_queue", string_attribute(&self.url)?)
                .message_attributes(
                    "waconnect_failed_at",
                    string_attribute(&failed_at.to_string())?,
                )
                // A FIFO dead-letter queue needs a group; keep the customer's, and let the
                // source message id make a repeated dead-lettering a no-op.
                .set_message_group_id(self.dead_letter_fifo.then(|| {
                    message
                        .group
                        .clone()
                        .unwrap_or_else(|| "dead-letters".to_string())
                }))
                .set_message_deduplication_id(self.dead_letter_fifo.then(|| message.id.clone()))
                .send(),
        )
        .await?;
        self.delete(&message.receipt).await
    }

    async fn info(&self) -> PortResult<QueueInfo> {
        const OP: &str = "GetQueueAttributes";
        let out = observe(
            SERVICE,
            OP,
            self.client
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::VisibilityTimeout)
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .attribute_names(QueueAttributeName::FifoQueue)
                .send(),
        )
        .await?;
        let attrs = out.attributes();
        let get = |name: QueueAttributeName| attrs.and_then(|a| a.get(&name)).cloned();
        let visibility_timeout = get(QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| malformed(SERVICE, OP, "VisibilityTimeout"))?;
        // {"deadLetterTargetArn": "...", "maxReceiveCount": 10} (a number or a string).
        let max_receive_count = get(QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|p| {
                let v = p.get("maxReceiveCount")?;
                v.as_u64().or_else(|| v.as_str()?.parse().ok())
            })
            .map(|n| n.min(u64::from(u32::MAX)) as u32);
        Ok(QueueInfo {
            visibility_timeout,
            max_receive_count,
            fifo: get(QueueAttributeName::FifoQueue).is_some_and(|v| v == "true"),
        })
    }

    async fn ping(&self) -> PortResult<()> {
        observe(
            SERVICE,
            "GetQueueAttributes",
            self.client
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send(),
        )
        .await
        .map(|_| ())
    }
}
