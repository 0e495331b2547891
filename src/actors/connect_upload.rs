//! ConnectUpload: everything the customer side of a Connect chat does. Ensures the
//! customer has a chat (StartChatContact, StartContactStreaming,
//! CreateParticipantConnection, stored in the session table), sends text, and renews the
//! chat once when Connect answers AccessDenied (expired or ended chat).
//!
//! It keeps no per-customer state: the calling Conversation passes its cached session in
//! and gets the session in use back, so many customers' calls run here concurrently.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use metrics::counter;

use crate::domain::client_token;
use crate::metrics::{self as m, ActorMetrics};
use crate::ports::{
    ConnectChat, ErrorKind, NewChatRequest, PortError, Session, SessionStore, CHANNEL_WHATSAPP,
};

const METRICS: ActorMetrics = ActorMetrics::new("connect_upload");

/// Who the chat is for.
#[derive(Debug, Clone)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    /// EUM phone number id the customer wrote to.
    pub system_number: String,
}

/// Deliver ordered text parts of one customer message to the customer's chat.
#[derive(Message)]
#[rtype(result = "Result<Session, PortError>")]
pub struct DeliverText {
    pub customer: Customer,
    /// The conversation's cached session, if any.
    pub session: Option<Session>,
    /// Non-empty parts, each within Connect's 1024-character limit.
    pub parts: Vec<String>,
    /// Stable id of the source message (wamid): every ClientToken derives from it, so a
    /// redelivered message repeats the same tokens and Connect does not repeat the work.
    pub source_id: String,
}

pub struct ConnectUpload {
    connect: Arc<dyn ConnectChat>,
    sessions: Arc<dyn SessionStore>,
    streaming_topic_arn: Arc<str>,
    chat_duration_secs: i64,
}

impl ConnectUpload {
    pub fn new(
        connect: Arc<dyn ConnectChat>,
        sessions: Arc<dyn SessionStore>,
        streaming_topic_arn: &str,
        chat_duration_minutes: u32,
    ) -> Self {
        Self {
            connect,
            sessions,
            streaming_topic_arn: streaming_topic_arn.into(),
            chat_duration_secs: i64::from(chat_duration_minutes) * 60,
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

impl Supervised for ConnectUpload {
    fn restarting(&mut self, _: &mut Self::Context) {
        METRICS.restarted();
    }
}

/// The shared, cloneable part an in-flight delivery needs.
#[derive(Clone)]
struct Chats {
    connect: Arc<dyn ConnectChat>,
    sessions: Arc<dyn SessionStore>,
    streaming_topic_arn: Arc<str>,
    chat_duration_secs: i64,
}

impl Chats {
    /// Opens a chat whose first message is `initial_text`, and stores it.
    async fn start(
        &self,
        customer: &Customer,
        initial_text: &str,
        token_parts: &[&str],
        reason: &'static str,
    ) -> Result<Session, PortError> {
        let started = self
            .connect
            .start_chat_contact(&NewChatRequest {
                customer_id: customer.customer_id.clone(),
                display_name: customer.name.clone(),
                system_number: customer.system_number.clone(),
                initial_text: initial_text.to_string(),
                client_token: client_token(token_parts),
            })
            .await?;
        self.connect
            .start_contact_streaming(
                &started.contact_id,
                &self.streaming_topic_arn,
                &client_token(&["stream", &started.contact_id]),
            )
            .await?;
        let connection_token = self
            .connect
            .create_participant_connection(&started.participant_token)
            .await?;
        let session = Session {
            contact_id: started.contact_id,
            customer_id: customer.customer_id.clone(),
            channel: CHANNEL_WHATSAPP.to_string(),
            participant_token: started.participant_token,
            connection_token,
            system_number: customer.system_number.clone(),
            name: customer.name.clone(),
            expires_at: chrono::Utc::now().timestamp() + self.chat_duration_secs,
        };
        self.sessions.put(&session).await?;
        counter!(m::SESSIONS_STARTED, "reason" => reason).increment(1);
        tracing::info!(contact_id = %session.contact_id, reason, "started Connect chat");
        Ok(session)
    }

    async fn deliver(&self, req: DeliverText) -> Result<Session, PortError> {
        let DeliverText {
            customer,
            session,
            parts,
            source_id,
        } = req;
        let Some(first) = parts.first() else {
            return Err(PortError::new(
                ErrorKind::Invalid,
                "connect",
                "SendMessage",
                "nothing to send",
            ));
        };
        let found = match session {
            Some(s) => Some(s),
            None => {
                self.sessions
                    .find_by_customer(&customer.customer_id)
                    .await?
            }
        };
        let (mut session, mut index) = match found {
            Some(s) => (s, 0),
            None => (
                self.start(&customer, first, &["start", &source_id], "new")
                    .await?,
                1,
            ),
        };
        let mut renewed = false;
        while index < parts.len() {
            let part_no = index.to_string();
            let sent = self
                .connect
                .send_message(
                    &session.connection_token,
                    "text/plain",
                    &parts[index],
                    &client_token(&["send", &source_id, &part_no]),
                )
                .await;
            match sent {
                Ok(_) => index += 1,
                Err(e) if e.kind == ErrorKind::AccessDenied && !renewed => {
                    // The chat expired or ended without us hearing of it: open a new one
                    // with this part as its first message, once per customer message.
                    renewed = true;
                    tracing::info!(contact_id = %session.contact_id, wamid = %source_id,
                        "chat no longer accepts messages; starting a new one");
                    if let Err(e) = self.sessions.delete(&session.contact_id).await {
                        tracing::warn!(contact_id = %session.contact_id, error = %e, "could not delete stale session");
                    }
                    session = self
                        .start(
                            &customer,
                            &parts[index],
                            &["renew", &source_id, &part_no],
                            "renewed",
                        )
                        .await?;
                    index += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(session)
    }
}

impl Handler<DeliverText> for ConnectUpload {
    type Result = ResponseFuture<Result<Session, PortError>>;

    fn handle(&mut self, msg: DeliverText, _: &mut Self::Context) -> Self::Result {
        let chats = Chats {
            connect: self.connect.clone(),
            sessions: self.sessions.clone(),
            streaming_topic_arn: self.streaming_topic_arn.clone(),
            chat_duration_secs: self.chat_duration_secs,
        };
        Box::pin(async move {
            let started = Instant::now();
            let result = chats.deliver(msg).await;
            match &result {
                Ok(_) => METRICS.handled("ok", started.elapsed()),
                Err(e) => {
                    METRICS.error(e.kind.as_str());
                    METRICS.handled("error", started.elapsed());
                }
            }
            result
        })
    }
}
