//! How queue messages become delivered work, and what happens when work fails: the
//! plumbing both intakes and every conversation share.
//!
//! - [`poller`]: long-polls a queue within an in-flight budget, extends the visibility of
//!   messages whose work is still running, and settles each message from its outcomes
//!   ([`settle`]).
//! - [`retry`]: the one retry policy (backoff, attempts, when to dead-letter).
//! - [`dependency`]: whether a dependency is down for everyone (an outage) or failing
//!   for one message.
//! - [`gate`]: a customer's mailbox bound and the order rule for work handed back.
//! - [`retrying`]: runs a step under the policy.
//! - [`batch_delete`], [`dedupe`]: settling and dedupe records in batches, and dedupe
//!   answered from memory where it is safe, off the per-message hot path.
//! - [`send_lanes`]: WhatsAppSend's per-number lanes (replies before acknowledgements).

pub mod batch_delete;
pub mod chat_items;
pub mod dedupe;
pub mod dependency;
pub mod gate;
pub mod hold;
pub mod poller;
pub mod regroup;
pub mod retry;
pub mod retrying;
pub mod send_lanes;
pub mod settle;

use std::time::SystemTime;

/// Where a piece of work came from: what the retry policy and the latency metric need.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    /// The queue's id of the message carrying the work (logs).
    pub queue_message_id: String,
    /// How many times that message has been received, this time included.
    pub receive_count: u32,
    /// When the queue accepted it (end-to-end latency starts here).
    pub queued_at: Option<SystemTime>,
    /// An earlier stage had received this work before (the regroup stage's source
    /// message): it may have been delivered already even on this message's first receipt.
    pub received_before: bool,
}

impl Arrival {
    pub fn of(message: &crate::ports::QueueMessage) -> Self {
        Self {
            queue_message_id: message.id.clone(),
            receive_count: message.receive_count,
            queued_at: message.sent_at,
            received_before: false,
        }
    }

    /// Whether the work may have been delivered before: a redelivery of its queue
    /// message, or of the message an earlier stage received it in.
    pub fn maybe_seen(&self) -> bool {
        self.receive_count > 1 || self.received_before
    }
}
