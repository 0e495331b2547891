//! Where the simulator delivers what AWS would publish: customer WhatsApp events (EUM ->
//! SNS -> SQS) and streamed chat items (Connect -> SNS -> SQS).
//!
//! The SQS and in-process sinks build the SNS envelope themselves with [`sns_envelope`], so
//! the consumer sees exactly what an SQS queue subscribed to SNS would hold.

use std::sync::Arc;

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::adapters::local::MemoryQueue;
use crate::ports::{ChatStreamSink, ErrorKind, InboundSink, PortError, PortResult};

/// The topic ARN put in envelopes when no real topic sits in between.
pub const DEFAULT_INBOUND_TOPIC_ARN: &str =
    "arn:aws:sns:us-east-1:123456789012:waconnect-sim-inbound";

/// ISO-8601 UTC with milliseconds, the format SNS and Connect use for timestamps.
pub(crate) fn iso_millis(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The SQS message body SNS delivers with raw message delivery off.
///
/// `attributes` become `MessageAttributes` (`{"Type":"String","Value":...}` each), which
/// SNS only includes when the publish carried any.
pub fn sns_envelope(topic_arn: &str, message: &str, attributes: &[(String, String)]) -> String {
    let message_id = uuid::Uuid::new_v4().to_string();
    let region = topic_arn.split(':').nth(3).unwrap_or("us-east-1");
    // Not a real signature: nobody can verify it without AWS's key, so a stable digest
    // of the content is enough to look the part.
    let signature = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(
        format!("{message_id}\n{message}").as_bytes(),
    ));
    let mut envelope = serde_json::json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": iso_millis(chrono::Utc::now()),
        "SignatureVersion": "1",
        "Signature": signature,
        "SigningCertURL": format!("https://sns.{region}.amazonaws.com/SimpleNotificationService-sim.pem"),
        "UnsubscribeURL": format!(
            "https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:{}",
            uuid::Uuid::new_v4()
        ),
    });
    if !attributes.is_empty() {
        let attrs: serde_json::Map<String, serde_json::Value> = attributes
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    serde_json::json!({"Type": "String", "Value": value}),
                )
            })
            .collect();
        envelope["MessageAttributes"] = serde_json::Value::Object(attrs);
    }
    envelope.to_string()
}

/// Maps an SDK failure to a port error, keeping the full error chain in the message.
fn sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    err: aws_sdk_sqs::error::SdkError<E, R>,
) -> PortError
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let kind = match err.as_service_error().and_then(|e| e.code()) {
        Some(code) if code.contains("Throttl") => ErrorKind::Throttled,
        Some(code) if code.contains("NotFound") || code.contains("NonExistent") => {
            ErrorKind::NotFound
        }
        Some(_) => ErrorKind::Other,
        None => ErrorKind::Transient,
    };
    PortError::new(
        kind,
        service,
        operation,
        DisplayErrorContext(&err).to_string(),
    )
}

/// Customer events to an SQS queue, as EUM -> SNS -> SQS would deliver them.
#[derive(Clone, Debug)]
pub struct SqsInboundSink {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// SNS raw message delivery: the body is the EUM event itself, without envelope.
    pub raw_delivery: bool,
    /// The `TopicArn` written into envelopes.
    pub topic_arn: String,
}

impl SqsInboundSink {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, raw_delivery: bool) -> Self {
        Self {
            client,
            queue_url,
            raw_delivery,
            topic_arn: DEFAULT_INBOUND_TOPIC_ARN.to_string(),
        }
    }

    async fn send(&self, body: String) -> PortResult<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk_error("sqs", "SendMessage", e))?;
        Ok(())
    }
}

#[async_trait]
impl InboundSink for SqsInboundSink {
    async fn publish_event(&self, eum_event: &str) -> PortResult<()> {
        let body = if self.raw_delivery {
            eum_event.to_string()
        } else {
            sns_envelope(&self.topic_arn, eum_event, &[])
        };
        self.send(body).await
    }

    async fn enqueue_raw(&self, body: &str) -> PortResult<()> {
        self.send(body.to_string()).await
    }
}

/// Customer events published to a real SNS topic; its SQS subscription does the wrapping.
#[derive(Clone, Debug)]
pub struct SnsInboundSink {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
    /// Raw bodies cannot go through SNS unchanged, so they need the queue directly.
    pub queue: Option<SqsInboundSink>,
}

#[async_trait]
impl InboundSink for SnsInboundSink {
    async fn publish_event(&self, eum_event: &str) -> PortResult<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(eum_event)
            .send()
            .await
            .map_err(|e| sdk_error("sns", "Publish", e))?;
        Ok(())
    }

    async fn enqueue_raw(&self, body: &str) -> PortResult<()> {
        match &self.queue {
            Some(queue) => queue.enqueue_raw(body).await,
            None => Err(PortError::new(
                ErrorKind::Other,
                "sns",
                "EnqueueRaw",
                "raw bodies need the inbound queue URL (no SQS sink configured)",
            )),
        }
    }
}

/// Streamed chat items to the SNS topic StartContactStreaming named, as Connect does.
#[derive(Clone, Debug)]
pub struct SnsChatStreamSink {
    pub client: aws_sdk_sns::Client,
}

#[async_trait]
impl ChatStreamSink for SnsChatStreamSink {
    async fn publish(
        &self,
        topic_arn: &str,
        message: &str,
        attributes: &[(String, String)],
    ) -> PortResult<()> {
        let mut request = self.client.publish().topic_arn(topic_arn).message(message);
        for (name, value) in attributes {
            let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PortError::new(ErrorKind::Invalid, "sns", "Publish", e.to_string()))?;
            request = request.message_attributes(name, value);
        }
        request
            .send()
            .await
            .map_err(|e| sdk_error("sns", "Publish", e))?;
        Ok(())
    }
}

/// Customer events into an in-process queue (local mode), wrapped as SNS would.
pub struct MemoryInboundSink {
    pub queue: Arc<MemoryQueue>,
}

impl MemoryInboundSink {
    pub fn new(queue: Arc<MemoryQueue>) -> Self {
        Self { queue }
    }
}

#[async_trait]
impl InboundSink for MemoryInboundSink {
    async fn publish_event(&self, eum_event: &str) -> PortResult<()> {
        self.queue
            .push(sns_envelope(DEFAULT_INBOUND_TOPIC_ARN, eum_event, &[]));
        Ok(())
    }

    async fn enqueue_raw(&self, body: &str) -> PortResult<()> {
        self.queue.push(body);
        Ok(())
    }
}

/// Streamed chat items into an in-process queue (local mode), wrapped as SNS would with
/// raw delivery off, attributes included.
pub struct MemoryChatStreamSink {
    pub queue: Arc<MemoryQueue>,
}

impl MemoryChatStreamSink {
    pub fn new(queue: Arc<MemoryQueue>) -> Self {
        Self { queue }
    }
}

#[async_trait]
impl ChatStreamSink for MemoryChatStreamSink {
    async fn publish(
        &self,
        topic_arn: &str,
        message: &str,
        attributes: &[(String, String)],
    ) -> PortResult<()> {
        self.queue
            .push(sns_envelope(topic_arn, message, attributes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ports::Queue;

    #[test]
    fn envelope_has_the_sns_shape() {
        let attrs = vec![("ContactId".to_string(), "c-1".to_string())];
        let body = sns_envelope("arn:aws:sns:eu-west-1:1:t", r#"{"a":1}"#, &attrs);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Type"], "Notification");
        assert_eq!(v["TopicArn"], "arn:aws:sns:eu-west-1:1:t");
        assert_eq!(v["Message"], r#"{"a":1}"#);
        assert_eq!(v["SignatureVersion"], "1");
        assert!(uuid::Uuid::parse_str(v["MessageId"].as_str().unwrap()).is_ok());
        let ts = v["Timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok());
        assert_eq!(ts.len(), "2026-11-20T14:03:11.601Z".len());
        assert!(v["SigningCertURL"]
            .as_str()
            .unwrap()
            .starts_with("https://sns.eu-west-1.amazonaws.com/"));
        assert!(v["UnsubscribeURL"]
            .as_str()
            .unwrap()
            .contains("Unsubscribe"));
        assert!(!v["Signature"].as_str().unwrap().is_empty());
        assert_eq!(
            v["MessageAttributes"]["ContactId"],
            serde_json::json!({"Type": "String", "Value": "c-1"})
        );
    }

    #[test]
    fn envelope_without_attributes_has_no_message_attributes() {
        let v: serde_json::Value =
            serde_json::from_str(&sns_envelope(DEFAULT_INBOUND_TOPIC_ARN, "{}", &[])).unwrap();
        assert!(v.get("MessageAttributes").is_none());
    }

    #[tokio::test]
    async fn memory_sinks_wrap_events_and_pass_raw_bodies() {
        let queue = Arc::new(MemoryQueue::new("in", Duration::from_secs(30)));
        let sink = MemoryInboundSink {
            queue: queue.clone(),
        };
        sink.publish_event(r#"{"x":1}"#).await.unwrap();
        sink.enqueue_raw("not json").await.unwrap();
        let got = queue.receive(10, Duration::ZERO).await.unwrap();
        let first: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(first["Message"], r#"{"x":1}"#);
        assert_eq!(first["TopicArn"], DEFAULT_INBOUND_TOPIC_ARN);
        assert_eq!(got[1].body, "not json");
    }
}
