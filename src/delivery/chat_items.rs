//! What becomes of a Connect chat item: forwarded to its customer, the end of its chat, or
//! settled at once (not for the customer, or its chat unknown). Shared by the connect
//! intake and the connect regroup stage, so both decide alike.

use std::sync::Arc;
use std::time::Duration;

use metrics::counter;

use crate::actors::Outcome;
use crate::domain::{ChatItem, ContentType, ItemType, ParticipantRole};
use crate::metrics as m;
use crate::ports::{PortResult, Session, SessionStore};

/// Receives of a forwardable item whose chat we cannot find before it is dead-lettered:
/// covers the short race between a chat starting and its session being stored.
pub const UNKNOWN_CHAT_ATTEMPTS: u32 = 5;

pub enum ItemRoute {
    /// Deliver to the customer of this session.
    Forward(Session),
    /// The chat ended for the customer.
    EndSession(Session),
    /// A human agent joined the customer's chat.
    AgentJoined(Session),
    /// Nothing to deliver: settle the queue message with this outcome.
    Settle(Outcome),
}

/// The session of the chat an item belongs to: by ContactId, else by InitialContactId
/// (Connect gives a transferred chat a new ContactId). Ended chats are found too, so an
/// agent's last messages still reach the customer.
pub async fn resolve(
    sessions: &Arc<dyn SessionStore>,
    item: &ChatItem,
) -> PortResult<Option<Session>> {
    if let Some(s) = sessions.find_by_contact(&item.contact_id).await? {
        return Ok(Some(s));
    }
    match item.initial_contact_id.as_deref() {
        Some(initial) if initial != item.contact_id => sessions.find_by_contact(initial).await,
        _ => Ok(None),
    }
}

fn ignored(reason: &'static str) -> ItemRoute {
    counter!(m::OUTBOUND_ITEMS, "outcome" => "ignored", "reason" => reason).increment(1);
    ItemRoute::Settle(Outcome::Ignored(reason))
}

/// Decides what to do with `item`, received `receive_count` times.
pub async fn route_item(
    sessions: &Arc<dyn SessionStore>,
    item: &ChatItem,
    receive_count: u32,
) -> ItemRoute {
    let ends = item.ends_session();
    let joined = item.agent_joined();
    // The agent typing: shown to the customer as WhatsApp's typing indicator.
    let typing = item.item_type == ItemType::Event
        && item.content_kind() == ContentType::Typing
        && item.participant_role == ParticipantRole::Agent;
    let forward = item.is_for_customer()
        && match item.item_type {
            ItemType::Message => true,
            // Still being scanned or rejected: Connect streams the approved one again.
            ItemType::Attachment => item.approved_attachments().next().is_some(),
            ItemType::Event => typing,
            _ => false,
        };
    if !ends && !forward && !joined {
        let reason = match (&item.item_type, item.participant_role.as_str()) {
            (_, "CUSTOMER") => "customer_echo",
            (ItemType::Message | ItemType::Attachment, _) if !item.is_for_customer() => {
                "not_visible_to_customer"
            }
            (ItemType::Attachment, _) => "attachment_not_approved",
            _ => "event",
        };
        tracing::debug!(item_id = %item.id, contact_id = %item.contact_id, reason, "chat item not forwarded");
        return ignored(reason);
    }
    let session = match resolve(sessions, item).await {
        Ok(s) => s,
        Err(e) => return ItemRoute::Settle(Outcome::retry(e.to_string(), Duration::from_secs(2))),
    };
    match session {
        Some(session) if ends => ItemRoute::EndSession(session),
        Some(session) if joined => ItemRoute::AgentJoined(session),
        Some(session) => ItemRoute::Forward(session),
        None if ends => ignored("unknown_chat_ended"),
        None if joined => ignored("unknown_chat_joined"),
        // Ephemeral: not worth a retry.
        None if typing => ignored("unknown_chat_typing"),
        None if receive_count < UNKNOWN_CHAT_ATTEMPTS => ItemRoute::Settle(Outcome::retry(
            "no session for this contact yet",
            Duration::from_secs(2),
        )),
        None => ItemRoute::Settle(Outcome::Reject {
            reason: format!("no WhatsApp session for contact {}", item.contact_id),
        }),
    }
}
