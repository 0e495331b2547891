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
    pub business_number_id: String,
    /// The customer's WhatsApp profile name.
    pub name: String,
    /// TTL attribute `date`: epoch seconds after which the item may be deleted.
    pub expires_at: i64,
    /// The chat ended: the session is kept a while so that agent messages still in flight
    /// reach the customer, but it is no longer the customer's live chat.
    pub ended: bool,
    /// `<source id>:<piece>`: the message piece that became the chat's initial message, so
    /// a redelivery of that message (its first delivery crashed after the chat was stored)
    /// does not send the piece a second time.
    pub opened_by: Option<String>,
    /// A human agent joined the chat (Connect's `participant.joined` by an AGENT): burst
    /// aggregation, which only serves the contact flow's bots, stops.
    pub agent_joined: bool,
}

// Tokens are credentials: keep them out of every Debug print and so out of logs.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("contact_id", &self.contact_id)
            .field("channel", &self.channel)
            .field("business_number_id", &self.business_number_id)
            .field("expires_at", &self.expires_at)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// How long an ended session is kept for agent messages still in flight.
pub const ENDED_SESSION_KEEP: Duration = Duration::from_secs(3600);

/// The answer to [`SessionStore::claim_chat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller may start the customer's chat (and store it with `create`).
    Granted,
    /// Another chat is live, or another caller is starting one: look it up again later.
    Taken,
}

/// The session table: one item per chat, found by contact (outbound) or customer (inbound).
///
/// One chat per customer (and business number) is enforced here, not only by the callers' ordering: starting a
/// chat needs a claim ([`SessionStore::claim_chat`]), granted only while the customer has
/// no live chat (or the caller names the dead one it replaces) and no one else holds an
/// unexpired claim; the chat is stored with [`SessionStore::create`] only if the claim is
/// still the caller's.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The customer's live chat with the business number `business_number_id` (EUM phone
    /// number id) on the WhatsApp channel: unexpired and not ended. A customer writing to
    /// two numbers has two chats.
    async fn find_by_customer(
        &self,
        business_number_id: &str,
        customer_id: &str,
    ) -> PortResult<Option<Session>>;
    /// A chat by contact id, ended ones included (see [`Session::ended`]).
    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>>;
    /// Claims the right to start the customer's next chat with business number
    /// `business_number_id` for `ttl`. `replacing` names the chat the caller found dead (a
    /// renewal); None for a customer with no chat.
    async fn claim_chat(
        &self,
        business_number_id: &str,
        customer_id: &str,
        replacing: Option<&str>,
        claimant: &str,
        ttl: Duration,
    ) -> PortResult<Claim>;
    /// Stores a chat started under the caller's claim and makes it the customer's live
    /// chat. Fails (`ErrorKind::Conflict`) if the claim is no longer the caller's.
    async fn create(&self, session: &Session, claimant: &str) -> PortResult<()>;
    /// The chat ended: no longer the customer's live chat, kept for
    /// [`ENDED_SESSION_KEEP`] for messages still in flight.
    async fn end(&self, contact_id: &str) -> PortResult<()>;
    /// A human agent joined the chat (see [`Session::agent_joined`]).
    async fn mark_agent_joined(&self, contact_id: &str) -> PortResult<()>;
    async fn ping(&self) -> PortResult<()>;
}

/// Named leases: at most one holder at a time, until it lets go or its lease runs out.
/// For work that must run on one replica only (the regroup stage, whose order is the
/// order messages are passed on).
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes or renews the lease `name` for `owner` for `ttl`; false if another owner
    /// holds an unexpired one.
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> PortResult<bool>;
    /// Lets go of the lease if `owner` holds it.
    async fn release(&self, name: &str, owner: &str) -> PortResult<()>;
}

/// Durable record of work already done, so redelivered queue messages are not repeated.
#[async_trait]
pub trait DedupeStore: Send + Sync + 'static {
    async fn is_done(&self, key: &str) -> PortResult<bool>;
    /// Records `key` as done; the record may be forgotten after `ttl`.
    async fn mark_done(&self, key: &str, ttl: Duration) -> PortResult<()>;
    /// [`DedupeStore::is_done`] for work whose queue message is received for the first
    /// time. A store that remembers what this process did may answer from memory alone
    /// here (`delivery::dedupe`, docs/delivery.md "Dedupe on the hot path"); the
    /// default asks the store.
    async fn is_done_on_first_receipt(&self, key: &str) -> PortResult<bool> {
        self.is_done(key).await
    }
    /// Records several keys at once (DynamoDB: BatchWriteItem). Fails as a whole if any
    /// of them could not be recorded; recording one again is harmless.
    async fn mark_done_many(&self, keys: &[String], ttl: Duration) -> PortResult<()> {
        for key in keys {
            self.mark_done(key, ttl).await?;
        }
        Ok(())
    }
    /// Remembers a short `value` under `key` (a different key space than `mark_done`'s
    /// keys by convention: `wamsg#...`, `wa-sent#...`); it may be forgotten after `ttl`.
    async fn put_value(&self, key: &str, value: &str, ttl: Duration) -> PortResult<()>;
    /// The unexpired value under `key`, if any.
    async fn get_value(&self, key: &str) -> PortResult<Option<String>>;
}
