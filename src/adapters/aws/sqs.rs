//! [`Queue`] on Amazon SQS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;

use super::call::{malformed, observe};
use crate::ports::{ErrorKind, PortError, PortResult, Queue, QueueMessage};

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
}

impl SqsQueue {
    pub fn new(client: Client, url: String, dead_letter_url: String) -> Self {
        Self {
            client,
            url,
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
            let attr = |name: MessageSystemAttributeName| {
                attrs
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            messages.push(QueueMessage {
                id: id.to_string(),
                receipt: receipt.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1) as u32,
                sent_at: attr(MessageSystemAttributeName::SentTimestamp)
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
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

    async fn retry_later(&self, receipt: &str, delay: Duration) -> PortResult<()> {
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
                .send(),
        )
        .await?;
        self.delete(&message.receipt).await
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
