//! Calls into one known chat that must never open another: receipts (SendEvent
//! `message.delivered` / `message.read`) and notices for the agent (SendMessage by the
//! customer participant). Unlike [`super::Deliver`], a chat that has ended is not renewed:
//! a receipt or a notice for a finished chat has nobody to read it, so the call is
//! dropped ([`ChatCallOutcome::ChatGone`]).

use std::time::Instant;

use actix::prelude::*;

use super::{cancelled, ConnectUpload, METRICS};
use crate::ports::{ErrorKind, PortError, Session};

/// What to put in the chat.
#[derive(Debug, Clone)]
pub enum ChatCallKind {
    /// SendEvent (`application/vnd.amazonaws.connect.event.*`).
    Event {
        content_type: &'static str,
        content: String,
    },
    /// SendMessage.
    Message {
        content_type: &'static str,
        content: String,
    },
}

/// One call into the chat whose session is stored under `contact_id`.
#[derive(Message)]
#[rtype(result = "Result<ChatCallOutcome, PortError>")]
pub struct ChatCall {
    /// The contact id the chat's session is stored under.
    pub contact_id: String,
    /// The caller's cached session; used when it is that chat (saves a read).
    pub session: Option<Session>,
    pub kind: ChatCallKind,
    /// Idempotency token: the same call repeated (a redelivered status) is made once.
    pub client_token: String,
}

/// How a [`ChatCall`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatCallOutcome {
    Done,
    /// The chat is unknown or has ended: nothing was put in it.
    ChatGone,
}

impl Handler<ChatCall> for ConnectUpload {
    type Result = ResponseFuture<Result<ChatCallOutcome, PortError>>;

    fn handle(&mut self, call: ChatCall, _: &mut Self::Context) -> Self::Result {
        let chats = self.chats.clone();
        let work = async move {
            let started = Instant::now();
            let session = match call.session.filter(|s| s.contact_id == call.contact_id) {
                Some(s) => Some(s),
                None => chats.sessions.find_by_contact(&call.contact_id).await?,
            };
            let Some(session) = session.filter(|s| !s.ended) else {
                return Ok(ChatCallOutcome::ChatGone);
            };
            let token = &session.connection_token;
            let result = match &call.kind {
                ChatCallKind::Event {
                    content_type,
                    content,
                } => {
                    chats
                        .connect
                        .send_event(token, content_type, Some(content), &call.client_token)
                        .await
                }
                ChatCallKind::Message {
                    content_type,
                    content,
                } => chats
                    .connect
                    .send_message(token, content_type, content, &call.client_token)
                    .await
                    .map(|_| ()),
            };
            let result = match result {
                Ok(()) => Ok(ChatCallOutcome::Done),
                // Expired or ended without us hearing of it yet.
                Err(e) if e.kind == ErrorKind::AccessDenied => Ok(ChatCallOutcome::ChatGone),
                Err(e) => Err(e),
            };
            METRICS.finished(&result, started);
            result
        };
        Box::pin(self.probe.track(work, cancelled))
    }
}
