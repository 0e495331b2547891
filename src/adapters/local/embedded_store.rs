//! File-backed [`SessionStore`] and [`DedupeStore`] for local mode, on redb (an embedded,
//! crash-safe key-value store), so a restarted `waconnect local` keeps its chats and
//! still refuses duplicates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ports::LeaseStore;
use crate::ports::{
    Claim, DedupeStore, ErrorKind, PortError, PortResult, Session, SessionStore, CHANNEL_WHATSAPP,
    ENDED_SESSION_KEEP,
};

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// [`customer_key`] -> contact id of the customer's live chat with that business number.
const BY_CUSTOMER: TableDefinition<&str, &str> = TableDefinition::new("sessions_by_customer");
/// [`customer_key`] -> (claimant, claim expiry in unix seconds), see
/// `SessionStore::claim_chat`.
const CLAIMS: TableDefinition<&str, (&str, i64)> = TableDefinition::new("chat_claims");
/// key -> (value, expiry in unix seconds), see `DedupeStore::put_value`.
const VALUES: TableDefinition<&str, (&str, i64)> = TableDefinition::new("values");
/// lease name -> (owner, expiry in unix seconds).
const LEASES: TableDefinition<&str, (&str, i64)> = TableDefinition::new("leases");
/// dedupe key -> expiry (unix seconds).
const DONE: TableDefinition<&str, i64> = TableDefinition::new("done");

const SERVICE: &str = "embedded-store";

/// A customer of a business number: chats are per (business number, customer).
fn customer_key(business_number_id: &str, customer_id: &str) -> String {
    format!("{business_number_id}#{customer_id}")
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    contact_id: String,
    customer_id: String,
    channel: String,
    participant_token: String,
    connection_token: String,
    // The name data files written before the rename carry.
    #[serde(rename = "system_number")]
    business_number_id: String,
    name: String,
    expires_at: i64,
    #[serde(default)]
    ended: bool,
    #[serde(default)]
    opened_by: Option<String>,
    #[serde(default)]
    agent_joined: bool,
}

impl From<&Session> for StoredSession {
    fn from(s: &Session) -> Self {
        Self {
            contact_id: s.contact_id.clone(),
            customer_id: s.customer_id.clone(),
            channel: s.channel.clone(),
            participant_token: s.participant_token.clone(),
            connection_token: s.connection_token.clone(),
            business_number_id: s.business_number_id.clone(),
            name: s.name.clone(),
            expires_at: s.expires_at,
            ended: s.ended,
            opened_by: s.opened_by.clone(),
            agent_joined: s.agent_joined,
        }
    }
}

impl From<StoredSession> for Session {
    fn from(s: StoredSession) -> Self {
        Self {
            contact_id: s.contact_id,
            customer_id: s.customer_id,
            channel: s.channel,
            participant_token: s.participant_token,
            connection_token: s.connection_token,
            business_number_id: s.business_number_id,
            name: s.name,
            expires_at: s.expires_at,
            ended: s.ended,
            opened_by: s.opened_by,
            agent_joined: s.agent_joined,
        }
    }
}

fn fail(operation: &'static str) -> impl Fn(String) -> PortError {
    move |message| PortError::new(ErrorKind::Other, SERVICE, operation, message)
}

/// One redb file holding sessions and dedupe markers.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> Result<Self, PortError> {
        let err = fail("Open");
        let db = Database::create(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        {
            tx.open_table(SESSIONS).map_err(|e| err(e.to_string()))?;
            tx.open_table(BY_CUSTOMER).map_err(|e| err(e.to_string()))?;
            tx.open_table(CLAIMS).map_err(|e| err(e.to_string()))?;
            tx.open_table(LEASES).map_err(|e| err(e.to_string()))?;
            tx.open_table(DONE).map_err(|e| err(e.to_string()))?;
            tx.open_table(VALUES).map_err(|e| err(e.to_string()))?;
        }
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs a blocking redb transaction off the async threads.
    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, String> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(fail(operation))
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn read_session(db: &Database, contact_id: &str) -> Result<Option<Session>, String> {
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let table = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
    let Some(bytes) = table.get(contact_id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let stored: StoredSession = serde_json::from_slice(bytes.value()).map_err(|e| e.to_string())?;
    Ok(Some(stored.into()))
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn find_by_customer(
        &self,
        business_number_id: &str,
        customer_id: &str,
    ) -> PortResult<Option<Session>> {
        let key = customer_key(business_number_id, customer_id);
        self.blocking("FindByCustomer", move |db| {
            let contact_id = {
                let tx = db.begin_read().map_err(|e| e.to_string())?;
                let index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                let found = index.get(key.as_str()).map_err(|e| e.to_string())?;
                match found {
                    Some(c) => c.value().to_string(),
                    None => return Ok(None),
                }
            };
            Ok(read_session(db, &contact_id)?
                .filter(|s| s.expires_at > now_secs() && !s.ended && s.channel == CHANNEL_WHATSAPP))
        })
        .await
    }

    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>> {
        let contact_id = contact_id.to_string();
        self.blocking("FindByContact", move |db| read_session(db, &contact_id))
            .await
    }

    async fn claim_chat(
        &self,
        business_number_id: &str,
        customer_id: &str,
        replacing: Option<&str>,
        claimant: &str,
        ttl: Duration,
    ) -> PortResult<Claim> {
        let (customer_id, replacing, claimant) = (
            customer_key(business_number_id, customer_id),
            replacing.map(str::to_string),
            claimant.to_string(),
        );
        self.blocking("ClaimChat", move |db| {
            let now = now_secs();
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            let granted = {
                let index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                let live = match index.get(customer_id.as_str()).map_err(|e| e.to_string())? {
                    Some(contact) => {
                        let contact = contact.value().to_string();
                        let session = {
                            let sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                            let bytes = sessions
                                .get(contact.as_str())
                                .map_err(|e| e.to_string())?
                                .map(|b| b.value().to_vec());
                            bytes
                                .map(|b| serde_json::from_slice::<StoredSession>(&b))
                                .transpose()
                                .map_err(|e| e.to_string())?
                        };
                        session
                            .filter(|s| s.expires_at > now && !s.ended)
                            .is_some_and(|_| replacing.as_deref() != Some(contact.as_str()))
                    }
                    None => false,
                };
                let mut claims = tx.open_table(CLAIMS).map_err(|e| e.to_string())?;
                let held_by_other = claims
                    .get(customer_id.as_str())
                    .map_err(|e| e.to_string())?
                    .is_some_and(|c| {
                        let (holder, expires) = c.value();
                        holder != claimant && expires >= now
                    });
                let granted = !live && !held_by_other;
                if granted {
                    claims
                        .insert(
                            customer_id.as_str(),
                            (claimant.as_str(), now + ttl.as_secs() as i64),
                        )
                        .map_err(|e| e.to_string())?;
                }
                granted
            };
            tx.commit().map_err(|e| e.to_string())?;
            Ok(if granted {
                Claim::Granted
            } else {
                Claim::Taken
            })
        })
        .await
    }

    async fn create(&self, session: &Session, claimant: &str) -> PortResult<()> {
        let stored = StoredSession::from(session);
        let key = customer_key(&session.business_number_id, &session.customer_id);
        let claimant = claimant.to_string();
        let lost = self
            .blocking("Create", move |db| {
                let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
                let tx = db.begin_write().map_err(|e| e.to_string())?;
                {
                    let mut claims = tx.open_table(CLAIMS).map_err(|e| e.to_string())?;
                    let mine = claims
                        .get(key.as_str())
                        .map_err(|e| e.to_string())?
                        .is_some_and(|c| c.value().0 == claimant);
                    if !mine {
                        return Ok(true);
                    }
                    claims.remove(key.as_str()).map_err(|e| e.to_string())?;
                    let mut sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                    sessions
                        .insert(stored.contact_id.as_str(), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                    let mut index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                    index
                        .insert(key.as_str(), stored.contact_id.as_str())
                        .map_err(|e| e.to_string())?;
                }
                tx.commit().map_err(|e| e.to_string())?;
                Ok(false)
            })
            .await?;
        if lost {
            return Err(PortError::new(
                ErrorKind::Conflict,
                SERVICE,
                "Create",
                "claim to start the customer's chat lost",
            ));
        }
        Ok(())
    }

    async fn end(&self, contact_id: &str) -> PortResult<()> {
        let contact_id = contact_id.to_string();
        self.blocking("End", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                let current = sessions
                    .get(contact_id.as_str())
                    .map_err(|e| e.to_string())?
                    .map(|v| v.value().to_vec());
                if let Some(bytes) = current {
                    let mut stored: StoredSession =
                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                    stored.ended = true;
                    stored.expires_at = stored
                        .expires_at
                        .min(now_secs() + ENDED_SESSION_KEEP.as_secs() as i64);
                    let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
                    sessions
                        .insert(contact_id.as_str(), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                    let mut index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                    let key = customer_key(&stored.business_number_id, &stored.customer_id);
                    let points_here = index
                        .get(key.as_str())
                        .map_err(|e| e.to_string())?
                        .is_some_and(|c| c.value() == contact_id);
                    if points_here {
                        index.remove(key.as_str()).map_err(|e| e.to_string())?;
                    }
                }
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    async fn mark_agent_joined(&self, contact_id: &str) -> PortResult<()> {
        let contact_id = contact_id.to_string();
        self.blocking("MarkAgentJoined", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                let current = sessions
                    .get(contact_id.as_str())
                    .map_err(|e| e.to_string())?
                    .map(|v| v.value().to_vec());
                if let Some(bytes) = current {
                    let mut stored: StoredSession =
                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                    stored.agent_joined = true;
                    let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
                    sessions
                        .insert(contact_id.as_str(), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[async_trait]
impl DedupeStore for EmbeddedStore {
    async fn is_done(&self, key: &str) -> PortResult<bool> {
        let key = key.to_string();
        self.blocking("IsDone", move |db| {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let table = tx.open_table(DONE).map_err(|e| e.to_string())?;
            let expires = table.get(key.as_str()).map_err(|e| e.to_string())?;
            Ok(expires.is_some_and(|e| e.value() > now_secs()))
        })
        .await
    }

    async fn mark_done(&self, key: &str, ttl: Duration) -> PortResult<()> {
        let key = key.to_string();
        let expires = now_secs() + ttl.as_secs() as i64;
        self.blocking("MarkDone", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = tx.open_table(DONE).map_err(|e| e.to_string())?;
                table
                    .insert(key.as_str(), expires)
                    .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    /// One write transaction for the whole batch (one commit instead of one per key).
    async fn mark_done_many(&self, keys: &[String], ttl: Duration) -> PortResult<()> {
        let keys = keys.to_vec();
        let expires = now_secs() + ttl.as_secs() as i64;
        self.blocking("MarkDone", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = tx.open_table(DONE).map_err(|e| e.to_string())?;
                for key in &keys {
                    table
                        .insert(key.as_str(), expires)
                        .map_err(|e| e.to_string())?;
                }
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    async fn put_value(&self, key: &str, value: &str, ttl: Duration) -> PortResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        let expires = now_secs() + ttl.as_secs() as i64;
        self.blocking("PutValue", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = tx.open_table(VALUES).map_err(|e| e.to_string())?;
                table
                    .insert(key.as_str(), (value.as_str(), expires))
                    .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    async fn get_value(&self, key: &str) -> PortResult<Option<String>> {
        let key = key.to_string();
        self.blocking("GetValue", move |db| {
            let tx = db.begin_read().map_err(|e| e.to_string())?;
            let table = tx.open_table(VALUES).map_err(|e| e.to_string())?;
            let found = table.get(key.as_str()).map_err(|e| e.to_string())?;
            Ok(found.and_then(|v| {
                let (value, expires) = v.value();
                (expires > now_secs()).then(|| value.to_string())
            }))
        })
        .await
    }
}

#[async_trait]
impl LeaseStore for EmbeddedStore {
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> PortResult<bool> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.blocking("AcquireLease", move |db| {
            let now = now_secs();
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            let granted = {
                let mut leases = tx.open_table(LEASES).map_err(|e| e.to_string())?;
                let free = leases
                    .get(name.as_str())
                    .map_err(|e| e.to_string())?
                    .is_none_or(|l| {
                        let (holder, expires) = l.value();
                        holder == owner || expires < now
                    });
                if free {
                    leases
                        .insert(name.as_str(), (owner.as_str(), now + ttl.as_secs() as i64))
                        .map_err(|e| e.to_string())?;
                }
                free
            };
            tx.commit().map_err(|e| e.to_string())?;
            Ok(granted)
        })
        .await
    }

    async fn release(&self, name: &str, owner: &str) -> PortResult<()> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.blocking("ReleaseLease", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut leases = tx.open_table(LEASES).map_err(|e| e.to_string())?;
                let mine = leases
                    .get(name.as_str())
                    .map_err(|e| e.to_string())?
                    .is_some_and(|l| l.value().0 == owner);
                if mine {
                    leases.remove(name.as_str()).map_err(|e| e.to_string())?;
                }
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(contact: &str, customer: &str) -> Session {
        Session {
            contact_id: contact.into(),
            customer_id: customer.into(),
            channel: CHANNEL_WHATSAPP.into(),
            participant_token: "pt".into(),
            connection_token: "ct".into(),
            business_number_id: "phone-number-id-x".into(),
            name: "Ana".into(),
            expires_at: now_secs() + 3600,
            ended: false,
            opened_by: None,
            agent_joined: false,
        }
    }

    #[tokio::test]
    async fn a_lease_has_one_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("l.redb")).unwrap();
        let ttl = Duration::from_secs(30);
        assert!(store.acquire("regroup", "a", ttl).await.unwrap());
        assert!(!store.acquire("regroup", "b", ttl).await.unwrap());
        assert!(store.acquire("regroup", "a", ttl).await.unwrap(), "renewal");
        store.release("regroup", "b").await.unwrap();
        assert!(
            !store.acquire("regroup", "b", ttl).await.unwrap(),
            "not b's to release"
        );
        store.release("regroup", "a").await.unwrap();
        assert!(store.acquire("regroup", "b", ttl).await.unwrap());
    }

    async fn start(store: &EmbeddedStore, contact: &str, replacing: Option<&str>) {
        let ttl = Duration::from_secs(30);
        assert_eq!(
            store
                .claim_chat("phone-number-id-x", "549", replacing, "me", ttl)
                .await
                .unwrap(),
            Claim::Granted
        );
        store.create(&session(contact, "549"), "me").await.unwrap();
    }

    #[tokio::test]
    async fn sessions_survive_reopen_and_one_chat_is_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            start(&store, "c1", None).await;
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let found = store
            .find_by_customer("phone-number-id-x", "549")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.contact_id, "c1");
        // A second chat needs the live one to be named as replaced.
        let ttl = Duration::from_secs(30);
        assert_eq!(
            store
                .claim_chat("phone-number-id-x", "549", None, "other", ttl)
                .await
                .unwrap(),
            Claim::Taken
        );
        start(&store, "c2", Some("c1")).await;
        assert_eq!(
            store
                .find_by_customer("phone-number-id-x", "549")
                .await
                .unwrap()
                .unwrap()
                .contact_id,
            "c2"
        );
        // Ending an older chat must not unlink the customer's newer one.
        store.end("c1").await.unwrap();
        assert!(store
            .find_by_customer("phone-number-id-x", "549")
            .await
            .unwrap()
            .is_some());
        store.end("c2").await.unwrap();
        assert!(store
            .find_by_customer("phone-number-id-x", "549")
            .await
            .unwrap()
            .is_none());
        // An ended chat is still found by its contact, marked ended.
        assert!(store.find_by_contact("c2").await.unwrap().unwrap().ended);
    }

    #[tokio::test]
    async fn a_lost_claim_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("c.redb")).unwrap();
        let short = Duration::ZERO;
        assert_eq!(
            store
                .claim_chat("phone-number-id-x", "549", None, "slow", short)
                .await
                .unwrap(),
            Claim::Granted
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // The slow claim expired: another replica claims and starts the chat.
        start(&store, "fast", None).await;
        let err = store
            .create(&session("slow-chat", "549"), "slow")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert_eq!(
            store
                .find_by_customer("phone-number-id-x", "549")
                .await
                .unwrap()
                .unwrap()
                .contact_id,
            "fast"
        );
    }

    #[tokio::test]
    async fn one_customer_has_one_chat_per_business_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("n.redb")).unwrap();
        let ttl = Duration::from_secs(30);
        start(&store, "c1", None).await;
        // Another number: its own claim and chat, the first one untouched.
        assert_eq!(
            store
                .claim_chat("phone-number-id-y", "549", None, "me", ttl)
                .await
                .unwrap(),
            Claim::Granted
        );
        let mut other = session("c2", "549");
        other.business_number_id = "phone-number-id-y".into();
        store.create(&other, "me").await.unwrap();
        let found = async |n: &str| {
            store
                .find_by_customer(n, "549")
                .await
                .unwrap()
                .map(|s| s.contact_id)
        };
        assert_eq!(found("phone-number-id-x").await.as_deref(), Some("c1"));
        assert_eq!(found("phone-number-id-y").await.as_deref(), Some("c2"));
        store.end("c2").await.unwrap();
        assert_eq!(found("phone-number-id-x").await.as_deref(), Some("c1"));
        assert_eq!(found("phone-number-id-y").await, None);
    }

    #[tokio::test]
    async fn values_are_kept_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("v.redb")).unwrap();
        assert_eq!(store.get_value("wamsg#1").await.unwrap(), None);
        store
            .put_value("wamsg#1", "c|i", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.get_value("wamsg#1").await.unwrap().as_deref(),
            Some("c|i")
        );
        store
            .put_value("wamsg#2", "x", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(store.get_value("wamsg#2").await.unwrap(), None);
        // Values and done-markers do not mix.
        assert!(!store.is_done("wamsg#1").await.unwrap());
    }

    #[tokio::test]
    async fn dedupe_marks_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("d.redb")).unwrap();
        assert!(!store.is_done("wa:1").await.unwrap());
        store
            .mark_done("wa:1", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(store.is_done("wa:1").await.unwrap());
        store.mark_done("wa:2", Duration::ZERO).await.unwrap();
        assert!(!store.is_done("wa:2").await.unwrap());
    }
}
