//! In-memory ports for driving actors alone: Connect, WhatsApp, media, sessions, dedupe
//! and queues that answer after a configurable latency and count their calls. They keep
//! just enough state for the actors' logic to run as it does in production (chats by
//! ClientToken, sessions by customer and contact, done keys).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::ValueEnum;
use rand::Rng;

use crate::adapters::local::MemoryQueue;
use crate::ports::{
    AttachmentUpload, Claim, ConnectChat, DedupeStore, ErrorKind, LeaseStore, MediaInfo,
    MediaStore, NewChatRequest, OutgoingMessage, PortError, PortResult, Queue, QueueInfo,
    QueueMessage, Session, SessionStore, StartedChat, WhatsApp,
};

/// How port latencies are drawn around their mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    /// Always the mean.
    Fixed,
    /// Uniform between 0 and twice the mean.
    Uniform,
    /// Exponential with that mean (a long tail).
    Exponential,
}

/// The latency every in-memory port call waits before answering.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub mean: Duration,
    pub distribution: Distribution,
}

impl Latency {
    pub const ZERO: Latency = Latency {
        mean: Duration::ZERO,
        distribution: Distribution::Fixed,
    };

    fn draw(&self) -> Duration {
        if self.mean.is_zero() {
            return Duration::ZERO;
        }
        let mean = self.mean.as_secs_f64();
        let secs = match self.distribution {
            Distribution::Fixed => mean,
            Distribution::Uniform => rand::rng().random_range(0.0..2.0 * mean),
            Distribution::Exponential => {
                let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
                -mean * u.ln()
            }
        };
        Duration::from_secs_f64(secs.min(60.0))
    }

    pub async fn wait(&self) {
        let d = self.draw();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// Calls per operation, for "calls per message".
#[derive(Default)]
pub struct Calls(Mutex<BTreeMap<&'static str, u64>>);

impl Calls {
    fn add(&self, operation: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation)
            .or_insert(0) += 1;
    }

    /// Forgets the calls so far (those of a warm-up).
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Connect and Connect Participant: chats by ClientToken, messages counted.
pub struct MemConnect {
    pub latency: Latency,
    pub calls: Arc<Calls>,
    chats: Mutex<HashMap<String, String>>,
    next: AtomicU64,
}

impl MemConnect {
    pub fn new(latency: Latency, calls: Arc<Calls>) -> Self {
        Self {
            latency,
            calls,
            chats: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    async fn call(&self, operation: &'static str) {
        self.calls.add(operation);
        self.latency.wait().await;
    }
}

#[async_trait]
impl ConnectChat for MemConnect {
    async fn start_chat_contact(&self, request: &NewChatRequest) -> PortResult<StartedChat> {
        self.call("StartChatContact").await;
        let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
        let contact_id = chats
            .entry(request.client_token.clone())
            .or_insert_with(|| format!("contact-{}", self.next.fetch_add(1, Ordering::Relaxed)))
            .clone();
        Ok(StartedChat {
            instance_id: "instance-lt".into(),
            participant_id: format!("participant-{contact_id}"),
            participant_token: format!("ptoken-{contact_id}"),
            contact_id,
        })
    }
    async fn start_contact_streaming(&self, _: &str, _: &str, _: &str, _: &str) -> PortResult<()> {
        self.call("StartContactStreaming").await;
        Ok(())
    }
    async fn create_participant_connection(&self, participant_token: &str) -> PortResult<String> {
        self.call("CreateParticipantConnection").await;
        Ok(format!("conn-{participant_token}"))
    }
    async fn send_message(&self, _: &str, _: &str, _: &str, token: &str) -> PortResult<String> {
        self.call("SendMessage").await;
        Ok(format!("item-{token}"))
    }
    async fn send_event(&self, _: &str, _: &str, _: Option<&str>, _: &str) -> PortResult<()> {
        self.call("SendEvent").await;
        Ok(())
    }
    async fn disconnect_participant(&self, _: &str, _: &str) -> PortResult<()> {
        self.call("DisconnectParticipant").await;
        Ok(())
    }
    async fn start_attachment_upload(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: &str,
        token: &str,
    ) -> PortResult<AttachmentUpload> {
        self.call("StartAttachmentUpload").await;
        Err(PortError::new(
            ErrorKind::Invalid,
            "connectparticipant",
            "StartAttachmentUpload",
            format!("the load test's Connect takes no attachments ({token})"),
        ))
    }
    async fn complete_attachment_upload(&self, _: &str, _: &str, _: &str) -> PortResult<()> {
        self.call("CompleteAttachmentUpload").await;
        Ok(())
    }
    async fn get_attachment(&self, _: &str, _: &str) -> PortResult<String> {
        self.call("GetAttachment").await;
        Ok("http://127.0.0.1:9/none".into())
    }
}

/// EUM Social: sends counted (with their times, to check the pacing), media described.
pub struct MemWhatsApp {
    pub latency: Latency,
    pub calls: Arc<Calls>,
    /// When each send reached the port, and whether it was an acknowledgement.
    sends: Mutex<Vec<(Instant, bool)>>,
    pub media_bytes: u64,
}

impl MemWhatsApp {
    pub fn new(latency: Latency, calls: Arc<Calls>, media_bytes: u64) -> Self {
        Self {
            latency,
            calls,
            sends: Mutex::new(Vec::new()),
            media_bytes,
        }
    }

    /// The most sends that reached the port within any one second, and the
    /// acknowledgements among all sends.
    pub fn send_figures(&self) -> (usize, usize, usize) {
        let sends = self.sends.lock().unwrap_or_else(|e| e.into_inner());
        let mut most = 0;
        let mut start = 0;
        for end in 0..sends.len() {
            while sends[end].0.duration_since(sends[start].0) >= Duration::from_secs(1) {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        let acks = sends.iter().filter(|(_, ack)| *ack).count();
        (most, sends.len(), acks)
    }
}

#[async_trait]
impl WhatsApp for MemWhatsApp {
    async fn send(&self, _: &str, message: &serde_json::Value) -> PortResult<String> {
        let ack = message.get("status").is_some() || message.get("reaction").is_some();
        self.sends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), ack));
        self.calls.add("SendWhatsAppMessage");
        self.latency.wait().await;
        Ok(uuid::Uuid::new_v4().to_string())
    }
    async fn get_media(&self, _: &str, _: &str, _: &str, _: &str) -> PortResult<MediaInfo> {
        self.calls.add("GetWhatsAppMessageMedia");
        self.latency.wait().await;
        Ok(MediaInfo {
            mime_type: "image/jpeg".into(),
            size: self.media_bytes,
        })
    }
}

/// S3: every object is `size` bytes of zeros.
pub struct MemMedia {
    pub latency: Latency,
    pub calls: Arc<Calls>,
    pub size: usize,
}

#[async_trait]
impl MediaStore for MemMedia {
    async fn put(&self, _: &str, _: &str, _: Vec<u8>, _: &str) -> PortResult<()> {
        self.calls.add("PutObject");
        self.latency.wait().await;
        Ok(())
    }
    async fn get(&self, _: &str, _: &str, _: u64) -> PortResult<Vec<u8>> {
        self.calls.add("GetObject");
        self.latency.wait().await;
        Ok(vec![0; self.size])
    }
    async fn presign_get(&self, _: &str, key: &str, _: Duration) -> PortResult<String> {
        Ok(format!("http://127.0.0.1:9/{key}"))
    }
}

#[derive(Default)]
struct StoreState {
    sessions: HashMap<String, Session>,
    live: HashMap<String, String>,
    claims: HashMap<String, String>,
    done: HashSet<String>,
    values: HashMap<String, String>,
    leases: HashMap<String, String>,
}

/// Sessions are per (business number, customer), as in the real store.
fn chat_key(business_number_id: &str, customer_id: &str) -> String {
    format!("{business_number_id}#{customer_id}")
}

/// DynamoDB: sessions, claims, done keys and leases in maps.
pub struct MemStore {
    pub latency: Latency,
    pub calls: Arc<Calls>,
    state: Mutex<StoreState>,
}

impl MemStore {
    pub fn new(latency: Latency, calls: Arc<Calls>) -> Self {
        Self {
            latency,
            calls,
            state: Mutex::new(StoreState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn call(&self, operation: &'static str) {
        self.calls.add(operation);
        self.latency.wait().await;
    }

    /// Stores a live session directly (set-up, not measured).
    pub fn insert_session(&self, session: Session) {
        let mut state = self.state();
        state.live.insert(
            chat_key(&session.business_number_id, &session.customer_id),
            session.contact_id.clone(),
        );
        state.sessions.insert(session.contact_id.clone(), session);
    }
}

#[async_trait]
impl SessionStore for MemStore {
    async fn find_by_customer(
        &self,
        business_number_id: &str,
        customer_id: &str,
    ) -> PortResult<Option<Session>> {
        self.call("Query").await;
        let state = self.state();
        Ok(state
            .live
            .get(&chat_key(business_number_id, customer_id))
            .and_then(|c| state.sessions.get(c))
            .filter(|s| !s.ended)
            .cloned())
    }
    async fn find_by_contact(&self, contact_id: &str) -> PortResult<Option<Session>> {
        self.call("GetItem").await;
        Ok(self.state().sessions.get(contact_id).cloned())
    }
    async fn claim_chat(
        &self,
        business_number_id: &str,
        customer_id: &str,
        replacing: Option<&str>,
        claimant: &str,
        _: Duration,
    ) -> PortResult<Claim> {
        self.call("TransactWriteItems").await;
        let key = chat_key(business_number_id, customer_id);
        let mut state = self.state();
        let live = state.live.get(&key).cloned();
        if live.is_some() && live.as_deref() != replacing {
            return Ok(Claim::Taken);
        }
        match state.claims.get(&key) {
            Some(holder) if holder != claimant => Ok(Claim::Taken),
            _ => {
                state.claims.insert(key, claimant.to_string());
                Ok(Claim::Granted)
            }
        }
    }
    async fn create(&self, session: &Session, claimant: &str) -> PortResult<()> {
        self.call("TransactWriteItems").await;
        let key = chat_key(&session.business_number_id, &session.customer_id);
        let mut state = self.state();
        if state.claims.get(&key).map(String::as_str) != Some(claimant) {
            return Err(PortError::new(
                ErrorKind::Conflict,
                "dynamodb",
                "TransactWriteItems",
                "claim lost",
            ));
        }
        state.claims.remove(&key);
        state.live.insert(key, session.contact_id.clone());
        state
            .sessions
            .insert(session.contact_id.clone(), session.clone());
        Ok(())
    }
    async fn end(&self, contact_id: &str) -> PortResult<()> {
        self.call("TransactWriteItems").await;
        let mut state = self.state();
        if let Some(s) = state.sessions.get_mut(contact_id) {
            s.ended = true;
            let key = chat_key(&s.business_number_id, &s.customer_id);
            state.live.remove(&key);
        }
        Ok(())
    }
    async fn mark_agent_joined(&self, contact_id: &str) -> PortResult<()> {
        self.call("UpdateItem").await;
        if let Some(s) = self.state().sessions.get_mut(contact_id) {
            s.agent_joined = true;
        }
        Ok(())
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[async_trait]
impl DedupeStore for MemStore {
    async fn is_done(&self, key: &str) -> PortResult<bool> {
        self.call("GetItem").await;
        Ok(self.state().done.contains(key))
    }
    async fn mark_done(&self, key: &str, _: Duration) -> PortResult<()> {
        self.call("PutItem").await;
        self.state().done.insert(key.to_string());
        Ok(())
    }
    async fn mark_done_many(&self, keys: &[String], _: Duration) -> PortResult<()> {
        self.call("BatchWriteItem").await;
        self.state().done.extend(keys.iter().cloned());
        Ok(())
    }
    async fn put_value(&self, key: &str, value: &str, _: Duration) -> PortResult<()> {
        self.call("PutItem").await;
        self.state()
            .values
            .insert(key.to_string(), value.to_string());
        Ok(())
    }
    async fn get_value(&self, key: &str) -> PortResult<Option<String>> {
        self.call("GetItem").await;
        Ok(self.state().values.get(key).cloned())
    }
}

#[async_trait]
impl LeaseStore for MemStore {
    async fn acquire(&self, name: &str, owner: &str, _: Duration) -> PortResult<bool> {
        let mut state = self.state();
        let holder = state
            .leases
            .entry(name.to_string())
            .or_insert_with(|| owner.to_string());
        Ok(holder == owner)
    }
    async fn release(&self, name: &str, owner: &str) -> PortResult<()> {
        let mut state = self.state();
        if state.leases.get(name).map(String::as_str) == Some(owner) {
            state.leases.remove(name);
        }
        Ok(())
    }
}

/// Called with the queue's message id when a message leaves the queue: deleted (its work
/// done, `true`) or dead-lettered (`false`).
pub type OnDelete = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// An in-process queue whose calls wait `latency` (long polls excepted while empty), and
/// that reports each deletion.
pub struct MemQueue {
    pub inner: Arc<MemoryQueue>,
    pub latency: Latency,
    pub calls: Arc<Calls>,
    receipts: Mutex<HashMap<String, String>>,
    on_delete: OnDelete,
}

impl MemQueue {
    pub fn new(
        inner: Arc<MemoryQueue>,
        latency: Latency,
        calls: Arc<Calls>,
        on_delete: OnDelete,
    ) -> Self {
        Self {
            inner,
            latency,
            calls,
            receipts: Mutex::new(HashMap::new()),
            on_delete,
        }
    }

    fn deleted(&self, receipt: &str, done: bool) {
        let id = self
            .receipts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(receipt);
        if let Some(id) = id {
            (self.on_delete)(&id, done);
        }
    }
}

#[async_trait]
impl Queue for MemQueue {
    async fn receive(&self, max: usize, wait: Duration) -> PortResult<Vec<QueueMessage>> {
        let messages = self.inner.receive(max, wait).await?;
        if !messages.is_empty() {
            self.calls.add("ReceiveMessage");
            self.latency.wait().await;
            let mut receipts = self.receipts.lock().unwrap_or_else(|e| e.into_inner());
            for m in &messages {
                receipts.insert(m.receipt.clone(), m.id.clone());
            }
        }
        Ok(messages)
    }
    async fn delete(&self, receipt: &str) -> PortResult<()> {
        self.calls.add("DeleteMessage");
        self.latency.wait().await;
        self.inner.delete(receipt).await?;
        self.deleted(receipt, true);
        Ok(())
    }
    async fn delete_batch(&self, receipts: &[String]) -> PortResult<Vec<String>> {
        self.calls.add("DeleteMessageBatch");
        self.latency.wait().await;
        let failed = self.inner.delete_batch(receipts).await?;
        for r in receipts.iter().filter(|r| !failed.contains(r)) {
            self.deleted(r, true);
        }
        Ok(failed)
    }
    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> PortResult<()> {
        self.calls.add("ChangeMessageVisibility");
        self.latency.wait().await;
        self.inner.set_visibility(receipt, timeout).await
    }
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> PortResult<()> {
        self.calls.add("SendMessageBatch");
        self.latency.wait().await;
        self.inner.send_batch(messages).await
    }
    async fn dead_letter(&self, message: &QueueMessage, reason: &str) -> PortResult<()> {
        self.calls.add("DeadLetter");
        self.latency.wait().await;
        self.inner.dead_letter(message, reason).await?;
        self.deleted(&message.receipt, false);
        Ok(())
    }
    async fn info(&self) -> PortResult<QueueInfo> {
        self.inner.info().await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}
