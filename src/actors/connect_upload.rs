//! ConnectUpload: everything the customer side of a Connect chat does. Ensures the
//! customer has a chat (StartChatContact, StartContactStreaming,
//! CreateParticipantConnection, stored in the session table), sends text, uploads
//! attachments (StartAttachmentUpload, PUT to the allowlisted URL,
//! CompleteAttachmentUpload), and renews the chat once when Connect answers AccessDenied
//! (expired or ended chat).
//!
//! It keeps no per-customer state: the calling Conversation passes its cached session in
//! and gets the session in use back, so many customers' calls run here concurrently.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use metrics::counter;

use crate::adapters::http::HttpTransfer;
use crate::domain::client_token;
use crate::domain::interactive::CONNECT_INTERACTIVE_RESPONSE;
pub use crate::domain::{Customer, FileUpload, Piece, OPENING_TEXT_FOR_FILE};
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{
    Claim, ConnectChat, ErrorKind, NewChatRequest, PortError, Session, SessionStore, StartedChat,
    CHANNEL_WHATSAPP,
};
use crate::supervision::{suffer, unavailable, Fault, Probe};

/// How long a claim to start a customer's chat holds: longer than the three Connect calls
/// and the store write take, short enough that a crash blocks the customer only briefly.
const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// What a session records about the piece that opened its chat.
fn opened_by(source_id: &str, piece: usize) -> String {
    format!("{source_id}:{piece}")
}

/// Where to resume delivering `pieces` of message `source_id` into `session`: after the
/// piece that became the chat's initial message, if this very message opened the chat
/// (its first delivery stored the chat, then stopped before recording it was done).
fn resume_at(session: &Session, source_id: &str, pieces: &[Piece]) -> Option<usize> {
    let piece: usize = session
        .opened_by
        .as_deref()?
        .strip_prefix(source_id)?
        .strip_prefix(':')?
        .parse()
        .ok()?;
    match pieces.get(piece)? {
        Piece::Text(_) | Piece::Interactive { .. } => Some(piece + 1),
        Piece::File(_) => Some(piece),
    }
}

/// Why a chat is being opened for a message.
enum Opening<'a> {
    /// The customer has no chat.
    New,
    /// The chat `dead` stopped accepting messages at piece `step` of this message.
    Renewal { dead: &'a str, step: &'a str },
}

/// A chat for the customer: one we started, or one another replica had started.
enum Opened {
    Started(Session),
    Existing(Session),
}

mod chat_calls;
pub use chat_calls::{ChatCall, ChatCallKind, ChatCallOutcome};

const METRICS: ActorMetrics = ActorMetrics::new("connect_upload");

/// Deliver the ordered pieces of one customer message to the customer's chat.
#[derive(Message)]
#[rtype(result = "Result<Session, PortError>")]
pub struct Deliver {
    pub customer: Customer,
    /// The conversation's cached session, if any.
    pub session: Option<Session>,
    pub pieces: Vec<Piece>,
    /// Stable id of the source message (wamid): every ClientToken derives from it, so a
    /// redelivered message repeats the same tokens and Connect does not repeat the work.
    pub source_id: String,
}

/// A download URL for an attachment of the customer's chat.
#[derive(Message)]
#[rtype(result = "Result<String, PortError>")]
pub struct AttachmentUrl {
    pub connection_token: String,
    pub attachment_id: String,
}

pub struct ConnectUpload {
    chats: Chats,
    probe: Arc<Probe>,
}

impl ConnectUpload {
    pub fn new(
        connect: Arc<dyn ConnectChat>,
        sessions: Arc<dyn SessionStore>,
        http: HttpTransfer,
        streaming_topic_arn: &str,
        chat_duration_minutes: u32,
        probe: Arc<Probe>,
    ) -> Self {
        Self {
            probe,
            chats: Chats {
                connect,
                sessions,
                http,
                claimant: uuid::Uuid::new_v4().to_string().into(),
                streaming_topic_arn: streaming_topic_arn.into(),
                chat_duration_secs: i64::from(chat_duration_minutes) * 60,
            },
        }
    }
}

impl Actor for ConnectUpload {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        METRICS.heartbeat();
    }
}

impl Handler<Fault> for ConnectUpload {
    type Result = ();

    fn handle(&mut self, fault: Fault, ctx: &mut Self::Context) {
        let probe = self.probe.clone();
        suffer(fault, &probe, self, ctx);
    }
}

fn cancelled<T>() -> Result<T, PortError> {
    Err(unavailable(
        "connect_upload",
        "restarted while the call ran",
    ))
}

/// The shared, cloneable part an in-flight delivery needs.
#[derive(Clone)]
struct Chats {
    connect: Arc<dyn ConnectChat>,
    sessions: Arc<dyn SessionStore>,
    http: HttpTransfer,
    /// Who claims new chats (see `SessionStore::claim_chat`): unique per incarnation.
    claimant: Arc<str>,
    streaming_topic_arn: Arc<str>,
    chat_duration_secs: i64,
}

impl Chats {
    /// Streams a started chat to our topic and joins it; answers the ConnectionToken.
    async fn connect_to(&self, started: &StartedChat) -> Result<String, PortError> {
        self.connect
            .start_contact_streaming(
                &started.instance_id,
                &started.contact_id,
                &self.streaming_topic_arn,
                &client_token(&["stream", &started.contact_id]),
            )
            .await?;
        self.connect
            .create_participant_connection(&started.participant_token)
            .await
    }

    /// Opens a chat whose first message is `initial_text`, and stores it, unless another
    /// replica holds or started the customer's chat: then that chat is used instead.
    async fn start(
        &self,
        customer: &Customer,
        initial_text: &str,
        token_parts: &[&str],
        reason: &'static str,
        replacing: Option<&str>,
        opened_by: String,
    ) -> Result<Opened, PortError> {
        let claim = self
            .sessions
            .claim_chat(
                &customer.business_number_id,
                &customer.customer_id,
                replacing,
                &self.claimant,
                CLAIM_TTL,
            )
            .await?;
        if claim == Claim::Taken {
            if let Some(live) = self
                .sessions
                .find_by_customer(&customer.business_number_id, &customer.customer_id)
                .await?
            {
                tracing::info!(contact_id = %live.contact_id, "the customer's chat was started elsewhere; using it");
                return Ok(Opened::Existing(live));
            }
            return Err(PortError::new(
                ErrorKind::Conflict,
                "sessions",
                "ClaimChat",
                "another replica is starting this customer's chat",
            ));
        }
        let request = |client_token: String| NewChatRequest {
            customer_id: customer.customer_id.clone(),
            display_name: customer.name.clone(),
            business_number_id: customer.business_number_id.clone(),
            initial_text: initial_text.to_string(),
            client_token,
        };
        let mut started = self
            .connect
            .start_chat_contact(&request(client_token(token_parts)))
            .await?;
        let connection_token = match self.connect_to(&started).await {
            Err(e) if e.kind == ErrorKind::AccessDenied => {
                // The chat this ClientToken names ended before we joined it (or, on a
                // retry, ended since): the same token would keep returning that dead chat,
                // so this one attempt gets a fresh token and a new chat.
                tracing::info!(contact_id = %started.contact_id,
                    "new chat ended before it was joined; starting another");
                let fresh = uuid::Uuid::new_v4().to_string();
                started = self
                    .connect
                    .start_chat_contact(&request(client_token(&[&fresh])))
                    .await?;
                self.connect_to(&started).await?
            }
            other => other?,
        };
        let session = Session {
            contact_id: started.contact_id,
            customer_id: customer.customer_id.clone(),
            channel: CHANNEL_WHATSAPP.to_string(),
            participant_token: started.participant_token,
            connection_token,
            business_number_id: customer.business_number_id.clone(),
            name: customer.name.clone(),
            expires_at: chrono::Utc::now().timestamp() + self.chat_duration_secs,
            ended: false,
            opened_by: Some(opened_by),
            agent_joined: false,
        };
        if let Err(e) = self.sessions.create(&session, &self.claimant).await {
            if e.kind == ErrorKind::Conflict {
                // Too slow: the claim expired and another replica started the customer's
                // chat. Leave ours so it does not wait for an agent; the retry finds theirs.
                tracing::warn!(contact_id = %session.contact_id, "claim lost; leaving the chat just started");
                let token = client_token(&["orphan", &session.contact_id]);
                if let Err(e) = self
                    .connect
                    .disconnect_participant(&session.connection_token, &token)
                    .await
                {
                    tracing::warn!(contact_id = %session.contact_id, error = %e, "could not leave the orphaned chat");
                }
            }
            return Err(e);
        }
        counter!(m::SESSIONS_STARTED, "reason" => reason).increment(1);
        tracing::info!(contact_id = %session.contact_id, reason, "started Connect chat");
        Ok(Opened::Started(session))
    }

    /// Puts one piece in the chat; `step` makes its ClientTokens unique within the message.
    async fn put_piece(
        &self,
        session: &Session,
        piece: &Piece,
        source_id: &str,
        step: &str,
    ) -> Result<(), PortError> {
        let token = &session.connection_token;
        match piece {
            Piece::Text(text) => self
                .connect
                .send_message(
                    token,
                    "text/plain",
                    text,
                    &client_token(&["send", source_id, step]),
                )
                .await
                .map(|_| ()),
            Piece::Interactive { content, .. } => self
                .connect
                .send_message(
                    token,
                    CONNECT_INTERACTIVE_RESPONSE,
                    content,
                    &client_token(&["send", source_id, step]),
                )
                .await
                .map(|_| ()),
            Piece::File(file) => {
                let upload = self
                    .connect
                    .start_attachment_upload(
                        token,
                        &file.content_type,
                        file.bytes.len() as u64,
                        &file.name,
                        &client_token(&["upload", source_id, step, &session.contact_id]),
                    )
                    .await?;
                self.http
                    .put(&upload.url, &upload.headers, file.bytes.as_ref().clone())
                    .await?;
                self.connect
                    .complete_attachment_upload(
                        token,
                        &upload.attachment_id,
                        &client_token(&["complete", source_id, step, &session.contact_id]),
                    )
                    .await
            }
        }
    }

    /// Opens a chat for `pieces[index]`: a text piece becomes the chat's initial message
    /// (and is consumed), a file needs an opening text first. Returns the next index.
    async fn open(
        &self,
        customer: &Customer,
        pieces: &[Piece],
        index: usize,
        source_id: &str,
        opening: Opening<'_>,
    ) -> Result<(Session, usize), PortError> {
        let (token_parts, reason, replacing): (Vec<&str>, _, _) = match opening {
            Opening::New => (vec!["start", source_id], "new", None),
            Opening::Renewal { dead, step } => {
                (vec!["renew", source_id, step], "renewed", Some(dead))
            }
        };
        let (initial, consumed) = match &pieces[index] {
            Piece::Text(text) | Piece::Interactive { text, .. } => (text.as_str(), 1),
            Piece::File(_) => (OPENING_TEXT_FOR_FILE, 0),
        };
        let opened_by = opened_by(source_id, index);
        match self
            .start(
                customer,
                initial,
                &token_parts,
                reason,
                replacing,
                opened_by,
            )
            .await?
        {
            Opened::Started(session) => Ok((session, index + consumed)),
            Opened::Existing(session) => {
                let next = resume_at(&session, source_id, pieces).unwrap_or(index);
                Ok((session, next))
            }
        }
    }

    async fn deliver(&self, req: Deliver) -> Result<Session, PortError> {
        let Deliver {
            customer,
            session,
            pieces,
            source_id,
        } = req;
        if pieces.is_empty() {
            return Err(PortError::new(
                ErrorKind::Invalid,
                "connect",
                "SendMessage",
                "nothing to send",
            ));
        }
        let found = match session {
            Some(s) => Some(s),
            None => {
                self.sessions
                    .find_by_customer(&customer.business_number_id, &customer.customer_id)
                    .await?
            }
        };
        let (mut session, mut index) = match found {
            Some(s) => {
                let next = resume_at(&s, &source_id, &pieces).unwrap_or(0);
                (s, next)
            }
            None => {
                self.open(&customer, &pieces, 0, &source_id, Opening::New)
                    .await?
            }
        };
        let mut renewed = false;
        while index < pieces.len() {
            let step = index.to_string();
            match self
                .put_piece(&session, &pieces[index], &source_id, &step)
                .await
            {
                Ok(()) => index += 1,
                Err(e) if e.kind == ErrorKind::AccessDenied && !renewed => {
                    // The chat expired or ended without us hearing of it: open a new one
                    // and carry on there, once per customer message.
                    renewed = true;
                    tracing::info!(contact_id = %session.contact_id, wamid = %source_id,
                        "chat no longer accepts messages; starting a new one");
                    if let Err(e) = self.sessions.end(&session.contact_id).await {
                        tracing::warn!(contact_id = %session.contact_id, error = %e, "could not close the stale session");
                    }
                    let dead = session.contact_id.clone();
                    (session, index) = self
                        .open(
                            &customer,
                            &pieces,
                            index,
                            &source_id,
                            Opening::Renewal {
                                dead: &dead,
                                step: &step,
                            },
                        )
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(session)
    }
}

impl Handler<Deliver> for ConnectUpload {
    type Result = ResponseFuture<Result<Session, PortError>>;

    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) -> Self::Result {
        let chats = self.chats.clone();
        let work = async move {
            let started = Instant::now();
            let result = chats.deliver(msg).await;
            METRICS.finished(&result, started);
            result
        };
        Box::pin(self.probe.track(work, cancelled))
    }
}

impl Handler<AttachmentUrl> for ConnectUpload {
    type Result = ResponseFuture<Result<String, PortError>>;

    fn handle(&mut self, msg: AttachmentUrl, _: &mut Self::Context) -> Self::Result {
        let connect = self.chats.connect.clone();
        let work = async move {
            connect
                .get_attachment(&msg.connection_token, &msg.attachment_id)
                .await
        };
        Box::pin(self.probe.track(work, cancelled))
    }
}
