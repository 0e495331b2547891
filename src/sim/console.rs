//! The browser console (`GET /`): a customer's WhatsApp phone beside the agent's Connect
//! chat, with the router's figures and the AWS calls. Plain HTML, CSS and JavaScript
//! compiled into the binary (`src/console/`), served under a strict Content-Security-Policy
//! (no inline script, nothing from elsewhere).
//!
//! Besides the page, the routes the console needs beyond the rest of the control API:
//! the event stream (`sse.rs`), a customer's own media, and agent events (typing).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::files::file_response;
use super::sse;
use super::state::{NewItem, Simulator};
use super::wire::{parse_control, ControlError};

type Sim = State<Arc<Simulator>>;

/// The page's policy: its own scripts, styles and connections only. Images and audio may
/// also come from loopback on any port, where local mode's media links point (the page
/// may be opened as `localhost` while links say `127.0.0.1`); `blob:` is the preview of a
/// recording or a file about to be sent.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: http://127.0.0.1:* http://localhost:*; \
     media-src 'self' blob: http://127.0.0.1:* http://localhost:*; \
     connect-src 'self'; manifest-src 'none'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

const EVENT_PREFIX: &str = "application/vnd.amazonaws.connect.event.";

/// (path, content type, bytes) of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../console/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../console/icon.svg"),
    ),
];

pub(crate) fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
        .route("/sim/events", get(sse::events))
        .route(
            "/sim/customers/{wa_id}/media/{media_id}",
            get(customer_media),
        )
        .route("/sim/chats/{contact_id}/agent/events", post(agent_event))
}

fn serve(name: &str) -> Option<Response> {
    let (_, content_type, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        *body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The assets change with the binary; never keep a stale copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

async fn index() -> Response {
    serve("index.html").unwrap_or_else(not_found)
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file).unwrap_or_else(not_found)
}

fn not_found() -> Response {
    ControlError::not_found("no such console file").into_response()
}

/// `GET /sim/customers/{wa_id}/media/{media_id}`: a file the customer sent, with its
/// type (what their phone shows). 404 for media that customer did not send.
async fn customer_media(
    State(sim): Sim,
    Path((wa_id, media_id)): Path<(String, String)>,
) -> Response {
    let wa_id = wa_id.trim_start_matches('+');
    let found = {
        let state = sim.lock();
        state
            .console
            .sent_media(wa_id, &media_id)
            .then(|| state.media.get(&media_id).cloned())
            .flatten()
    };
    match found {
        Some(media) => file_response(media.bytes, &media.mime_type),
        None => ControlError::not_found(format!("customer {wa_id} sent no media {media_id}"))
            .into_response(),
    }
}

/// `POST /sim/chats/{contact_id}/agent/events` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEvent {
    content_type: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default = "agent")]
    role: String,
    #[serde(default = "agent_name")]
    display_name: String,
}

fn agent() -> String {
    "AGENT".into()
}
fn agent_name() -> String {
    "Agent".into()
}

/// `POST /sim/chats/{contact_id}/agent/events`: the agent (or a bot, or the system)
/// sends a Connect event (typing, read receipt, ...): recorded as an `EVENT` item and
/// streamed. Answers `{"id"}`; 409 if the chat ended.
async fn agent_event(
    State(sim): Sim,
    Path(contact_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ControlError> {
    let body = body.map_err(|r| ControlError::from_rejection(&r))?;
    let input: AgentEvent = parse_control(&body)?;
    if !input.content_type.starts_with(EVENT_PREFIX)
        || input.content_type.len() == EVENT_PREFIX.len()
    {
        return Err(ControlError::bad_request(format!(
            "content_type must be a Connect event type ({EVENT_PREFIX}...), e.g. \
             {EVENT_PREFIX}typing"
        )));
    }
    if !["AGENT", "SYSTEM", "CUSTOM_BOT"].contains(&input.role.as_str()) {
        return Err(ControlError::bad_request(
            "role must be AGENT, SYSTEM or CUSTOM_BOT",
        ));
    }
    if let Some(content) = &input.content {
        let chars = content.chars().count();
        if !(1..=1024).contains(&chars) {
            return Err(ControlError::bad_request(
                "content must be 1 to 1024 characters",
            ));
        }
    }
    let mut state = sim.lock();
    let index = state
        .chat_by_contact(&contact_id)
        .ok_or_else(|| ControlError::not_found(format!("no chat with contact id {contact_id}")))?;
    let chat = &mut state.chats[index];
    if !chat.is_open() {
        return Err(ControlError::conflict(format!(
            "chat {contact_id} has ended"
        )));
    }
    let item = chat.record(
        NewItem {
            kind: "EVENT",
            role: &input.role,
            display_name: &input.display_name,
            content_type: &input.content_type,
            content: input.content.as_deref(),
            visibility: "ALL",
            attachment: None,
        },
        &sim.identity.account_id,
    );
    tracing::debug!(%contact_id, content_type = %input.content_type, "simulator: agent event");
    Ok(Json(json!({ "id": item.id })).into_response())
}
