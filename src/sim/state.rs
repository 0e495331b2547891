//! The simulator's memory: chats (Connect), customer inboxes (WhatsApp), transcriptions
//! (Transcribe Streaming), faults and the call log. Everything sits behind one mutex
//! that is never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::Bytes;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest as _;

use super::events::{call_event, item_event, ConsoleState, EventBus};
use super::faults::Fault;
use super::identity::SimIdentity;
use super::sinks::iso_millis;
use super::stream::{render, spawn_chat_streamer, ChatContext, StreamTx};
use super::transcribe::TranscribeState;
use crate::adapters::local::LocalMediaDir;
use crate::ports::{ChatStreamSink, InboundSink, MediaStore};

/// How many call records `GET /sim/calls` keeps (oldest dropped first).
const MAX_CALLS: usize = 10_000;

/// Connect's default chat duration when StartChatContact names none (25 hours).
pub(crate) const DEFAULT_CHAT_MINUTES: i64 = 1500;

/// How long GetWhatsAppMessageMedia's PUT to a `destinationS3PresignedUrl` may take.
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The fake Amazon Connect + Connect Participant + EUM Social. Share it as `Arc<Simulator>`.
pub struct Simulator {
    pub(crate) identity: SimIdentity,
    pub(crate) inbound: Arc<dyn InboundSink>,
    pub(crate) stream: Arc<dyn ChatStreamSink>,
    /// Whether a `delivered` status follows each business message, as Meta sends one.
    pub(crate) emit_statuses: bool,
    /// Where GetWhatsAppMessageMedia writes `destinationS3File` objects (S3 standalone,
    /// a local directory in local mode); without one that destination is a 500.
    pub(crate) media: Option<Arc<dyn MediaStore>>,
    /// The directory `/sim/media/{bucket}/{key}` serves: local mode's "pre-signed" links.
    pub(crate) media_dir: Option<Arc<LocalMediaDir>>,
    /// For PUTs to `destinationS3PresignedUrl`.
    pub(crate) http: reqwest::Client,
    /// The CA of the TLS endpoint, once one serves (`GET /sim/tls/ca.pem`).
    pub(crate) tls_ca: OnceLock<String>,
    state: Mutex<State>,
}

impl Simulator {
    /// A simulator without a media store: everything but GetWhatsAppMessageMedia into
    /// an S3 file works.
    pub fn new(
        identity: SimIdentity,
        inbound: Arc<dyn InboundSink>,
        stream: Arc<dyn ChatStreamSink>,
        emit_statuses: bool,
    ) -> Arc<Self> {
        Arc::new(Self::build(identity, inbound, stream, emit_statuses, None))
    }

    /// A simulator whose GetWhatsAppMessageMedia writes `destinationS3File` objects into
    /// `media` (standalone: S3).
    pub fn with_media(
        identity: SimIdentity,
        inbound: Arc<dyn InboundSink>,
        stream: Arc<dyn ChatStreamSink>,
        emit_statuses: bool,
        media: Arc<dyn MediaStore>,
    ) -> Arc<Self> {
        Arc::new(Self::build(
            identity,
            inbound,
            stream,
            emit_statuses,
            Some(media),
        ))
    }

    /// Local mode: media objects go to `dir`, and the simulator serves `dir`'s links
    /// (`/sim/media/{bucket}/{key}`, what [`LocalMediaDir`] presigns).
    pub fn with_local_media(
        identity: SimIdentity,
        inbound: Arc<dyn InboundSink>,
        stream: Arc<dyn ChatStreamSink>,
        emit_statuses: bool,
        dir: Arc<LocalMediaDir>,
    ) -> Arc<Self> {
        let mut sim = Self::build(identity, inbound, stream, emit_statuses, Some(dir.clone()));
        sim.media_dir = Some(dir);
        Arc::new(sim)
    }

    fn build(
        identity: SimIdentity,
        inbound: Arc<dyn InboundSink>,
        stream: Arc<dyn ChatStreamSink>,
        emit_statuses: bool,
        media: Option<Arc<dyn MediaStore>>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            identity,
            inbound,
            stream,
            emit_statuses,
            media,
            media_dir: None,
            http,
            tls_ca: OnceLock::new(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn identity(&self) -> &SimIdentity {
        &self.identity
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic mid-update of plain data; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One AWS call as answered, for `GET /sim/calls`.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub operation: String,
    pub status: u16,
    pub at: String,
}

/// One message the business sent to a customer (`GET /sim/customers/{id}/inbox`).
#[derive(Debug, Clone, Serialize)]
pub struct InboxEntry {
    /// The messageId SendWhatsAppMessage returned.
    pub id: String,
    /// The Meta message `type` (`text`, `reaction`, ...) or `read` for mark-as-read.
    #[serde(rename = "type")]
    pub kind: String,
    /// The Meta message JSON as sent.
    pub body: serde_json::Value,
    /// The EUM phone number id of the business number that sent it.
    pub from: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub chats: Vec<Chat>,
    /// Every contact id a chat has had (initial and after transfers) -> chat index.
    pub by_contact: HashMap<String, usize>,
    pub by_participant_token: HashMap<String, usize>,
    pub by_connection_token: HashMap<String, usize>,
    /// StartChatContact ClientToken -> chat index.
    pub by_start_token: HashMap<String, usize>,
    /// Customer wa_id (no `+`) -> what the business sent them, in order.
    pub inboxes: HashMap<String, Vec<InboxEntry>>,
    /// wamid of a customer message -> the customer, to file mark-as-read bodies.
    pub wamid_owner: HashMap<String, String>,
    /// Customers whose 24-hour window is closed (`/sim/customers/{id}/window`): business
    /// messages other than templates fail with 131047 until they write again.
    pub closed_windows: HashSet<String>,
    /// Media id -> what a customer sent (GetWhatsAppMessageMedia reads it).
    pub media: HashMap<String, CustomerMedia>,
    /// Attachment id -> attachment, customer uploads and agent files alike.
    pub attachments: HashMap<String, Attachment>,
    pub faults: Vec<Fault>,
    pub next_fault_id: u64,
    pub calls: VecDeque<CallRecord>,
    /// The event stream, customer phones and router figures the console shows.
    pub console: ConsoleState,
    /// Transcribe Streaming: the configured answer and what the streams received.
    pub transcribe: TranscribeState,
}

/// A media file a customer sent (the bytes behind a Meta media id).
#[derive(Debug, Clone)]
pub(crate) struct CustomerMedia {
    pub mime_type: String,
    pub bytes: Bytes,
}

/// Bytes with their hex SHA-256, computed once, outside the state lock.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub bytes: Bytes,
    pub sha256: String,
}

impl StoredFile {
    pub fn new(bytes: Bytes) -> Self {
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        Self { bytes, sha256 }
    }
}

/// A chat attachment: started by StartAttachmentUpload (bytes arrive by PUT) or written
/// by the agent through the control API (complete from the start).
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub id: String,
    /// Index of the chat it belongs to.
    pub chat: usize,
    pub name: String,
    pub content_type: String,
    /// AttachmentSizeInBytes as announced; the PUT must match it.
    pub declared_size: u64,
    /// The bytes, once uploaded.
    pub file: Option<StoredFile>,
    /// `APPROVED`, `IN_PROGRESS` or `REJECTED`, as streamed.
    pub status: String,
    /// CompleteAttachmentUpload done (or an agent attachment): downloadable.
    pub completed: bool,
    /// The upload URL's expiry (UploadMetadata.UrlExpiry).
    pub upload_expires_at: DateTime<Utc>,
}

impl State {
    pub fn record_call(&mut self, operation: &str, status: u16) {
        if self.calls.len() >= MAX_CALLS {
            self.calls.pop_front();
        }
        let call = CallRecord {
            operation: operation.to_string(),
            status,
            at: iso_millis(Utc::now()),
        };
        call_event(&self.console.events, &call);
        self.calls.push_back(call);
    }

    /// Files what the business sent `customer` in their inbox.
    pub fn deliver(&mut self, customer: String, entry: InboxEntry) {
        self.console.delivered(&customer, &entry);
        self.inboxes.entry(customer).or_default().push(entry);
    }

    pub fn chat_by_contact(&self, contact_id: &str) -> Option<usize> {
        self.by_contact.get(contact_id).copied()
    }
}

/// A chat item: a message or event as Connect records it in the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    /// `MESSAGE`, `EVENT` or `ATTACHMENT`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub participant_role: String,
    pub participant_id: String,
    pub display_name: String,
    pub content_type: String,
    pub content: Option<String>,
    /// `ALL`, `AGENT` or `CUSTOMER`: who sees the item (MessageVisibility).
    pub visibility: String,
    pub absolute_time: String,
    /// The ContactId at the time the item was recorded (transfers change it).
    pub contact_id: String,
    /// The file of an `ATTACHMENT` item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<ItemAttachment>,
    /// The item a `message.delivered` / `message.read` event acknowledges (its content's
    /// `messageId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Content types of the receipts Connect shows on an item.
const RECEIPT_EVENTS: [&str; 2] = [
    "application/vnd.amazonaws.connect.event.message.delivered",
    "application/vnd.amazonaws.connect.event.message.read",
];

/// The `messageId` a receipt event's content names.
pub(crate) fn receipt_message_id(content_type: &str, content: Option<&str>) -> Option<String> {
    if !RECEIPT_EVENTS.contains(&content_type) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(content?).ok()?;
    v.get("messageId")?.as_str().map(str::to_string)
}

/// The file an `ATTACHMENT` item carries, as `GET /sim/chats` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemAttachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes, so tests can compare files without downloading them.
    pub sha256: String,
    /// `APPROVED`, `IN_PROGRESS` or `REJECTED` (Connect's scan result).
    pub status: String,
}

/// What a new item says; the chat fills in ids, time and participant.
pub(crate) struct NewItem<'a> {
    pub kind: &'static str,
    pub role: &'a str,
    pub display_name: &'a str,
    pub content_type: &'a str,
    pub content: Option<&'a str>,
    pub visibility: &'a str,
    pub attachment: Option<ItemAttachment>,
}

/// A StartContactStreaming registration.
#[derive(Debug, Clone)]
pub(crate) struct StreamTarget {
    pub topic_arn: String,
    pub streaming_id: String,
    pub client_token: Option<String>,
}

/// One Connect chat contact.
pub(crate) struct Chat {
    pub contact_id: String,
    pub initial_contact_id: String,
    pub instance_id: String,
    /// The contact flow StartChatContact named.
    pub contact_flow_id: String,
    pub attributes: BTreeMap<String, String>,
    pub customer_participant_id: String,
    pub customer_display_name: String,
    pub participant_token: String,
    pub connection_token: Option<String>,
    pub ended: bool,
    /// Ended silently by `/sim/chats/{id}/expire` (no event streamed).
    pub expired: bool,
    pub expires_at: DateTime<Utc>,
    /// Participant ids of the non-customer roles, made on first use.
    pub participants: HashMap<String, String>,
    pub streams: Vec<StreamTarget>,
    pub items: Vec<Item>,
    /// StartChatContact's SupportedMessagingContentTypes (`text/plain` when not given).
    pub supported_content_types: Vec<String>,
    /// The display name of the agent who joined (`/sim/chats/{id}/agent/join`), if one did.
    pub agent: Option<String>,
    /// "<operation>:<ClientToken>" -> (item id, AbsoluteTime) for idempotent retries.
    pub sent: HashMap<String, (String, String)>,
    stream_tx: Option<StreamTx>,
    /// Where items and state changes are published (the simulator's bus).
    pub(crate) events: EventBus,
}

impl Chat {
    /// A new chat; the caller fills in what else StartChatContact said, then announces
    /// it ([`Chat::announce`]) before recording its first item.
    pub fn new(
        instance_id: String,
        attributes: BTreeMap<String, String>,
        customer_display_name: String,
        duration_minutes: i64,
        events: EventBus,
    ) -> Self {
        let contact_id = uuid::Uuid::new_v4().to_string();
        Self {
            initial_contact_id: contact_id.clone(),
            contact_id,
            instance_id,
            contact_flow_id: String::new(),
            attributes,
            customer_participant_id: uuid::Uuid::new_v4().to_string(),
            customer_display_name,
            participant_token: new_token(),
            connection_token: None,
            ended: false,
            expired: false,
            expires_at: Utc::now() + chrono::Duration::minutes(duration_minutes),
            participants: HashMap::new(),
            streams: Vec::new(),
            items: Vec::new(),
            supported_content_types: vec!["text/plain".into()],
            agent: None,
            sent: HashMap::new(),
            stream_tx: None,
            events,
        }
    }

    /// Whether participant calls may still use the chat's tokens.
    pub fn is_open(&self) -> bool {
        !self.ended && Utc::now() < self.expires_at
    }

    fn participant_id(&mut self, role: &str) -> String {
        if role == "CUSTOMER" {
            return self.customer_participant_id.clone();
        }
        self.participants
            .entry(role.to_string())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }

    /// Appends an item and queues it for every streaming topic; returns a copy.
    pub fn record(&mut self, new: NewItem<'_>, account_id: &str) -> Item {
        let item = Item {
            id: uuid::Uuid::new_v4().to_string(),
            kind: new.kind,
            participant_role: new.role.to_string(),
            participant_id: self.participant_id(new.role),
            display_name: new.display_name.to_string(),
            content_type: new.content_type.to_string(),
            content: new.content.map(str::to_string),
            visibility: new.visibility.to_string(),
            absolute_time: iso_millis(Utc::now()),
            contact_id: self.contact_id.clone(),
            message_id: receipt_message_id(new.content_type, new.content),
            attachment: new.attachment,
        };
        let topics: Vec<String> = self.streams.iter().map(|s| s.topic_arn.clone()).collect();
        for topic in &topics {
            self.enqueue(&item, topic, account_id);
        }
        item_event(&self.events, self, &item);
        self.items.push(item.clone());
        item
    }

    /// Registers a streaming topic and queues the chat's earlier items to it: Connect
    /// streams the whole chat, the initial message included.
    pub fn add_stream(
        &mut self,
        target: StreamTarget,
        sink: &Arc<dyn ChatStreamSink>,
        account_id: &str,
    ) {
        if self.stream_tx.is_none() {
            self.stream_tx = Some(spawn_chat_streamer(
                sink.clone(),
                self.initial_contact_id.clone(),
            ));
        }
        let topic = target.topic_arn.clone();
        self.streams.push(target);
        let earlier = self.items.clone();
        for item in &earlier {
            self.enqueue(item, &topic, account_id);
        }
    }

    fn enqueue(&self, item: &Item, topic: &str, account_id: &str) {
        let Some(tx) = &self.stream_tx else { return };
        let context = ChatContext {
            initial_contact_id: &self.initial_contact_id,
            instance_id: &self.instance_id,
            account_id,
        };
        if tx.send(render(item, &context, topic)).is_err() {
            tracing::error!(contact_id = %self.contact_id, "simulator: chat streamer is gone");
        }
    }

    /// The chat as the control API shows it (tokens left out on purpose).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "contact_id": self.contact_id,
            "initial_contact_id": self.initial_contact_id,
            "state": if self.is_open() { "active" } else { "ended" },
            "expired": self.expired,
            "instance_id": self.instance_id,
            "contact_flow_id": self.contact_flow_id,
            "customer_id": self.attributes.get("customerId"),
            "customer_display_name": self.customer_display_name,
            "attributes": self.attributes,
            "streaming_topics": self.streams.iter().map(|s| &s.topic_arn).collect::<Vec<_>>(),
            "supported_content_types": self.supported_content_types,
            "agent_joined": self.agent.is_some(),
            "agent_display_name": self.agent,
            "items": self.items,
        })
    }
}

/// An opaque bearer token, like Connect's participant and connection tokens.
pub(crate) fn new_token() -> String {
    let mut bytes = Vec::with_capacity(48);
    for _ in 0..3 {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
