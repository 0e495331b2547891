use std::time::Duration;

use async_trait::async_trait;

use super::PortResult;

/// The `channel` attribute value the reference sample stores (session table GSI sort key).
pub const CHANNEL_WHATSAPP: &str = "Whatsapp";

/// A customer's live Connect chat, as stored in the session table (reference.md section 5).
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The contact id the chat was started with (primary key; InitialContactId after transfers).
    pub contact_id: String,
    /// The customer's WhatsApp id (digits, no `+`).
    pub customer_id: String,
    pub channel: String,
    pub participant_token: String,
    pub connection_token: String,
    /// The EUM phone number id the customer wrote to (`phone-number-id-...`).
    pub system_number: String,
    /// The customer's WhatsApp profile name.
    pub name: String,
    /// TTL attribute `date`: epoch seconds after which the item may be deleted.
    pub expires_at: i64,
}

// Tokens are credentials: keep them out of every Debug print and so out of logs.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("contact_id", &self.contact_id)
            .field("channel", &self.channel)
            .field("system_number", &self.system_number)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The session table: one item per chat, found by contact (outbound) or customer (inbound).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The newest unexpired session of this customer on the WhatsApp channel.
    async fn find_by_customer(&self, customer_id: &str) -> PortResult<Option<Session>>;
    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>>;
    async fn put(&self, session: &Session) -> PortResult<()>;
    async fn delete(&self, contact_id: &str) -> PortResult<()>;
    async fn ping(&self) -> PortResult<()>;
}

/// Durable record of work already done, so redelivered queue messages are not repeated.
#[async_trait]
pub trait DedupeStore: Send + Sync + 'static {
    async fn is_done(&self, key: &str) -> PortResult<bool>;
    /// Records `key` as done; the record may be forgotten after `ttl`.
    async fn mark_done(&self, key: &str, ttl: Duration) -> PortResult<()>;
}
