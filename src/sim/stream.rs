//! Contact streaming: each chat item becomes one SNS-style notification, published in the
//! order items were recorded.
//!
//! Items are queued while the state lock is held (so queue order is record order) and a
//! per-chat task publishes them one at a time, after the HTTP answer has been decided.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::state::Item;
use crate::ports::{ChatStreamSink, PortResult};

/// How often a failed publish is tried in all before it is given up (and logged).
const PUBLISH_ATTEMPTS: u32 = 4;

/// One notification waiting to be published.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub topic_arn: String,
    pub message: String,
    pub attributes: Vec<(String, String)>,
}

pub(crate) type StreamTx = mpsc::UnboundedSender<Outgoing>;

/// The chat item JSON Connect streams (the SNS `Message`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamedItem<'a> {
    absolute_time: &'a str,
    id: &'a str,
    participant_id: &'a str,
    display_name: &'a str,
    participant_role: &'a str,
    initial_contact_id: &'a str,
    contact_id: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    /// Absent on ATTACHMENT items: the type is the attachment's own `ContentType`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<[StreamedAttachment<'a>; 1]>,
}

/// One entry of an ATTACHMENT item's `Attachments`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamedAttachment<'a> {
    attachment_id: &'a str,
    attachment_name: &'a str,
    content_type: &'a str,
    status: &'a str,
}

/// What the chat contributes to every streamed item besides the item itself.
pub(crate) struct ChatContext<'a> {
    pub initial_contact_id: &'a str,
    pub instance_id: &'a str,
    pub account_id: &'a str,
}

/// Renders `item` as Connect would stream it to `topic_arn`: message JSON + attributes.
/// ATTACHMENT items carry `Attachments` instead of a `ContentType`; their `ContentType`
/// attribute is the file's type.
pub(crate) fn render(item: &Item, chat: &ChatContext<'_>, topic_arn: &str) -> Outgoing {
    let attachments = item.attachment.as_ref().map(|a| {
        [StreamedAttachment {
            attachment_id: &a.id,
            attachment_name: &a.name,
            content_type: &a.content_type,
            status: &a.status,
        }]
    });
    let message = StreamedItem {
        absolute_time: &item.absolute_time,
        id: &item.id,
        participant_id: &item.participant_id,
        display_name: &item.display_name,
        participant_role: &item.participant_role,
        initial_contact_id: chat.initial_contact_id,
        contact_id: &item.contact_id,
        kind: item.kind,
        content_type: attachments.is_none().then_some(item.content_type.as_str()),
        content: item.content.as_deref(),
        attachments,
    };
    let attributes = [
        ("InitialContactId", chat.initial_contact_id),
        ("ContactId", item.contact_id.as_str()),
        ("ParticipantRole", item.participant_role.as_str()),
        ("InstanceId", chat.instance_id),
        ("AccountId", chat.account_id),
        ("Type", item.kind),
        ("ContentType", item.content_type.as_str()),
        ("MessageVisibility", item.visibility.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Outgoing {
        topic_arn: topic_arn.to_string(),
        // Serializing a struct of strings cannot fail.
        message: serde_json::to_string(&message).unwrap_or_default(),
        attributes,
    }
}

/// Starts the task that publishes one chat's notifications in order; it ends when the
/// returned sender (kept in the chat) is dropped.
pub(crate) fn spawn_chat_streamer(sink: Arc<dyn ChatStreamSink>, contact_id: String) -> StreamTx {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let what = format!("stream item of contact {contact_id} to {}", out.topic_arn);
            publish_with_retries(&what, || {
                sink.publish(&out.topic_arn, &out.message, &out.attributes)
            })
            .await;
        }
    });
    tx
}

/// Runs `publish` until it succeeds or [`PUBLISH_ATTEMPTS`] are spent, logging failures.
/// Returns whether it was delivered.
pub(crate) async fn publish_with_retries<F, Fut>(what: &str, mut publish: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<()>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=PUBLISH_ATTEMPTS {
        match publish().await {
            Ok(()) => return true,
            Err(e) if attempt < PUBLISH_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "simulator: publishing {what} failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(error = %e, attempt, "simulator: giving up publishing {what}");
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ports::{ErrorKind, PortError};

    #[tokio::test]
    async fn publish_is_retried_until_it_succeeds() {
        let tries = AtomicU32::new(0);
        let delivered = publish_with_retries("x", || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(PortError::new(ErrorKind::Transient, "t", "p", "down"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(delivered);
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }
}
