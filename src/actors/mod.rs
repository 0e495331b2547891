//! The actor graph, one actor per file:
//!
//! ```text
//! SQS(in)  [-> Regroup -> SQS FIFO] -> InboundIntake      -> Supervisor (registry) -> Conversation[wa_id] -> ConnectUpload
//! SQS(out) [-> Regroup -> SQS FIFO] -> ConnectEventIntake -> Supervisor (registry) -> Conversation[wa_id] -> WhatsAppSend
//! ```
//!
//! Intakes own queue messages and delete them only when every piece of work in them has
//! reported an [`Outcome`]. Conversations are the unit of ordering: one step in flight per
//! customer, retried in place under the one retry policy (`delivery::retry`).
//! ConnectUpload, WhatsAppSend, MediaDownload and the TranscoderPool are shared executors
//! that run many customers' calls concurrently; the Supervisor restarts any of them that
//! dies or gets stuck, behind stable [`crate::supervision::Slot`]s.

pub mod connect_event_intake;
pub mod connect_upload;
pub mod conversation;
pub mod inbound_intake;
pub mod media_download;
pub mod regroup;
pub mod supervisor;
pub mod transcoder_pool;
pub mod whatsapp_send;

use std::time::Duration;

use tokio::sync::oneshot;

use crate::delivery::gate::Direction;
use crate::delivery::Arrival;
use crate::domain::{ChatItem, CustomerMessage, DeliveryStatus};
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
        arrival: Arrival,
        reply: Reply,
    },
    /// An agent's chat item, to the customer.
    Outbound {
        item: Box<ChatItem>,
        session: Box<Session>,
        arrival: Arrival,
        reply: Reply,
    },
    /// The chat with this contact id ended: forget it. `id` is the chat item that said so.
    SessionEnded {
        contact_id: String,
        id: String,
        reply: Reply,
    },
    /// A human agent joined the chat with this contact id: burst aggregation stops.
    AgentJoined {
        contact_id: String,
        id: String,
        reply: Reply,
    },
    /// Several texts of the customer that the regroup stage held as one burst: they go to
    /// the agent as one chat message.
    InboundBurst {
        messages: Vec<CustomerMessage>,
        arrival: Arrival,
        reply: Reply,
    },
    /// WhatsApp's status of a message we sent the customer (sent, delivered, read,
    /// failed): a receipt or a notice for the agent. Its own order
    /// ([`Direction::Status`]): never held back by, nor holding back, the customer's
    /// messages.
    Status {
        status: Box<DeliveryStatus>,
        arrival: Arrival,
        reply: Reply,
    },
}

impl Work {
    /// The id that orders this work among the customer's (wamid, chat item id).
    pub fn id(&self) -> &str {
        match self {
            Work::Inbound { message, .. } => &message.wamid,
            Work::InboundBurst { messages, .. } => {
                messages.first().map_or("", |m| m.wamid.as_str())
            }
            Work::Outbound { item, .. } => &item.id,
            Work::SessionEnded { id, .. } | Work::AgentJoined { id, .. } => id,
            Work::Status { status, .. } => &status.message_id,
        }
    }

    pub fn direction(&self) -> Direction {
        match self {
            Work::Inbound { .. } | Work::InboundBurst { .. } => Direction::Inbound,
            Work::Status { .. } => Direction::Status,
            Work::Outbound { .. } | Work::SessionEnded { .. } | Work::AgentJoined { .. } => {
                Direction::Outbound
            }
        }
    }

    /// Where the work's outcome goes.
    pub fn into_reply(self) -> Reply {
        match self {
            Work::Inbound { reply, .. }
            | Work::InboundBurst { reply, .. }
            | Work::Outbound { reply, .. }
            | Work::SessionEnded { reply, .. }
            | Work::AgentJoined { reply, .. }
            | Work::Status { reply, .. } => reply,
        }
    }

    /// Answers the work without doing it (e.g. the conversation's mailbox is full).
    pub fn refuse(self, outcome: Outcome) {
        let _ = self.into_reply().send(outcome);
    }
}
