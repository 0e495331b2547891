//! The actor graph, one actor per file:
//!
//! ```text
//! SQS(in)  -> InboundIntake      -> Supervisor (registry) -> Conversation[wa_id] -> ConnectUpload
//! SQS(out) -> ConnectEventIntake -> Supervisor (registry) -> Conversation[wa_id] -> WhatsAppSend
//! ```
//!
//! Intakes own queue messages and delete them only when every piece of work in them has
//! reported an [`Outcome`]. Conversations are the unit of ordering: one step in flight per
//! customer. ConnectUpload and WhatsAppSend are shared executors that run many customers'
//! calls concurrently.

pub mod connect_event_intake;
pub mod connect_upload;
pub mod conversation;
pub mod inbound_intake;
pub mod media_download;
mod media_flow;
mod poller;
mod settle;
pub mod supervisor;
pub mod transcoder_pool;
pub mod whatsapp_send;

use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use crate::domain::{ChatItem, CustomerMessage};
use crate::ports::Session;

/// How one piece of work ended, reported to the intake that owns its queue message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered.
    Done,
    /// Already delivered earlier (a redelivery); nothing was sent again.
    Duplicate,
    /// Deliberately not forwarded (by configuration or because it is not for the customer).
    Ignored(&'static str),
    /// Not done now; the queue message should come back after `after`.
    Retry { reason: String, after: Duration },
    /// Can never succeed as it is; the queue message goes to the dead-letter queue.
    Reject { reason: String },
}

impl Outcome {
    pub fn retry(reason: impl Into<String>, after: Duration) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after,
        }
    }

    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored(_) => "ignored",
            Outcome::Retry { .. } => "retry",
            Outcome::Reject { .. } => "rejected",
        }
    }
}

/// Where a conversation sends an [`Outcome`].
pub type Reply = oneshot::Sender<Outcome>;

/// Work for one customer's conversation.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub enum Work {
    /// A customer's WhatsApp message, to the agent.
    Inbound {
        message: Box<CustomerMessage>,
        queued_at: Option<SystemTime>,
        reply: Reply,
    },
    /// An agent's chat item, to the customer.
    Outbound {
        item: Box<ChatItem>,
        session: Box<Session>,
        queued_at: Option<SystemTime>,
        reply: Reply,
    },
    /// The chat with this contact id ended: forget it.
    SessionEnded { contact_id: String, reply: Reply },
}

impl Work {
    /// Answers the work without doing it (e.g. the conversation's mailbox is full).
    pub fn refuse(self, outcome: Outcome) {
        let reply = match self {
            Work::Inbound { reply, .. }
            | Work::Outbound { reply, .. }
            | Work::SessionEnded { reply, .. } => reply,
        };
        let _ = reply.send(outcome);
    }
}

/// Backoff for redelivery: grows with the receive count, capped at five minutes.
pub fn backoff(receive_count: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(receive_count.min(9)).min(300))
}
