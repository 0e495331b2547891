//! File-backed [`SessionStore`] and [`DedupeStore`] for local mode, on redb (an embedded,
//! crash-safe key-value store), so a restarted `waconnect local` keeps its chats and
//! still refuses duplicates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ports::{
    DedupeStore, ErrorKind, PortError, PortResult, Session, SessionStore, CHANNEL_WHATSAPP,
};

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// customer id -> contact id of the customer's newest session.
const BY_CUSTOMER: TableDefinition<&str, &str> = TableDefinition::new("sessions_by_customer");
/// dedupe key -> expiry (unix seconds).
const DONE: TableDefinition<&str, i64> = TableDefinition::new("done");

const SERVICE: &str = "embedded-store";

#[derive(Serialize, Deserialize)]
struct StoredSession {
    contact_id: String,
    customer_id: String,
    channel: String,
    participant_token: String,
    connection_token: String,
    system_number: String,
    name: String,
    expires_at: i64,
}

impl From<&Session> for StoredSession {
    fn from(s: &Session) -> Self {
        Self {
            contact_id: s.contact_id.clone(),
            customer_id: s.customer_id.clone(),
            channel: s.channel.clone(),
            participant_token: s.participant_token.clone(),
            connection_token: s.connection_token.clone(),
            system_number: s.system_number.clone(),
            name: s.name.clone(),
            expires_at: s.expires_at,
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
            system_number: s.system_number,
            name: s.name,
            expires_at: s.expires_at,
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
            tx.open_table(DONE).map_err(|e| err(e.to_string()))?;
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
    async fn find_by_customer(&self, customer_id: &str) -> PortResult<Option<Session>> {
        let customer_id = customer_id.to_string();
        self.blocking("FindByCustomer", move |db| {
            let contact_id = {
                let tx = db.begin_read().map_err(|e| e.to_string())?;
                let index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                let found = index.get(customer_id.as_str()).map_err(|e| e.to_string())?;
                match found {
                    Some(c) => c.value().to_string(),
                    None => return Ok(None),
                }
            };
            Ok(read_session(db, &contact_id)?
                .filter(|s| s.expires_at > now_secs() && s.channel == CHANNEL_WHATSAPP))
        })
        .await
    }

    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>> {
        let contact_id = contact_id.to_string();
        self.blocking("FindByContact", move |db| read_session(db, &contact_id))
            .await
    }

    async fn put(&self, session: &Session) -> PortResult<()> {
        let stored = StoredSession::from(session);
        self.blocking("Put", move |db| {
            let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                sessions
                    .insert(stored.contact_id.as_str(), bytes.as_slice())
                    .map_err(|e| e.to_string())?;
                let mut index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                index
                    .insert(stored.customer_id.as_str(), stored.contact_id.as_str())
                    .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }

    async fn delete(&self, contact_id: &str) -> PortResult<()> {
        let contact_id = contact_id.to_string();
        self.blocking("Delete", move |db| {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut sessions = tx.open_table(SESSIONS).map_err(|e| e.to_string())?;
                let removed = sessions
                    .remove(contact_id.as_str())
                    .map_err(|e| e.to_string())?
                    .map(|v| v.value().to_vec());
                if let Some(bytes) = removed {
                    let stored: StoredSession =
                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                    let mut index = tx.open_table(BY_CUSTOMER).map_err(|e| e.to_string())?;
                    let points_here = index
                        .get(stored.customer_id.as_str())
                        .map_err(|e| e.to_string())?
                        .is_some_and(|c| c.value() == contact_id);
                    if points_here {
                        index
                            .remove(stored.customer_id.as_str())
                            .map_err(|e| e.to_string())?;
                    }
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
            system_number: "phone-number-id-x".into(),
            name: "Ana".into(),
            expires_at: now_secs() + 3600,
        }
    }

    #[tokio::test]
    async fn sessions_survive_reopen_and_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            store.put(&session("c1", "549")).await.unwrap();
            store.put(&session("c2", "549")).await.unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let found = store.find_by_customer("549").await.unwrap().unwrap();
        assert_eq!(found.contact_id, "c2");
        assert!(store.find_by_contact("c1").await.unwrap().is_some());
        store.delete("c2").await.unwrap();
        assert!(store.find_by_customer("549").await.unwrap().is_none());
        // Deleting an older session must not unlink the customer's newer one.
        store.put(&session("c3", "549")).await.unwrap();
        store.delete("c1").await.unwrap();
        assert_eq!(
            store
                .find_by_customer("549")
                .await
                .unwrap()
                .unwrap()
                .contact_id,
            "c3"
        );
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
