//! One HTTP router for everything: the AWS endpoints (as the SDKs call them) and the
//! `/sim` control API. Every AWS call passes through [`run_aws`]: faults first, then the
//! operation, then the call log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use serde_json::Value;

use super::faults::{apply, random_unit};
use super::state::Simulator;
use super::wire::{AwsError, ControlError};
use super::{connect, control, participant, whatsapp};

/// Largest AWS request body accepted (413 beyond).
pub const AWS_BODY_LIMIT: usize = 256 * 1024;
/// Largest control API request body accepted (413 beyond).
pub const CONTROL_BODY_LIMIT: usize = 1024 * 1024;

/// An operation's logic: it runs under no fault, decides the answer synchronously and
/// queues any streaming for later.
type Operation = fn(&Simulator, &HeaderMap, &[u8]) -> Result<Value, AwsError>;

pub(crate) fn router(sim: Arc<Simulator>) -> Router {
    use MethodFilter as M;
    let aws = Router::new()
        .route(
            "/contact/chat",
            aws(M::PUT, "StartChatContact", connect::start_chat_contact),
        )
        .route(
            "/contact/start-streaming",
            aws(
                M::POST,
                "StartContactStreaming",
                connect::start_contact_streaming,
            ),
        )
        .route(
            "/participant/connection",
            aws(
                M::POST,
                "CreateParticipantConnection",
                participant::create_participant_connection,
            ),
        )
        .route(
            "/participant/message",
            aws(M::POST, "SendMessage", participant::send_message),
        )
        .route(
            "/participant/event",
            aws(M::POST, "SendEvent", participant::send_event),
        )
        .route(
            "/participant/disconnect",
            aws(
                M::POST,
                "DisconnectParticipant",
                participant::disconnect_participant,
            ),
        )
        .route(
            "/v1/whatsapp/send",
            aws(
                M::POST,
                "SendWhatsAppMessage",
                whatsapp::send_whatsapp_message,
            ),
        )
        .layer(DefaultBodyLimit::max(AWS_BODY_LIMIT));
    let control = control::routes().layer(DefaultBodyLimit::max(CONTROL_BODY_LIMIT));
    aws.merge(control).fallback(unknown_route).with_state(sim)
}

/// Routes one AWS operation; other methods on its path get an AWS-shaped 404 too.
fn aws(
    method: MethodFilter,
    operation: &'static str,
    logic: Operation,
) -> MethodRouter<Arc<Simulator>> {
    on(
        method,
        move |State(sim): State<Arc<Simulator>>,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| async move {
            run_aws(&sim, operation, logic, &headers, body).await
        },
    )
    .fallback(unknown_route)
}

async fn run_aws(
    sim: &Simulator,
    operation: &'static str,
    logic: Operation,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = apply(&mut sim.lock().faults, operation, random_unit);
    if !outcome.latency.is_zero() {
        tokio::time::sleep(outcome.latency).await;
    }
    let result = match (outcome.error, body) {
        (Some(fault), _) => {
            tracing::info!(operation, code = %fault.code, "simulator: injected fault");
            Err(fault)
        }
        (None, Err(rejection)) => Err(AwsError::from_rejection(&rejection)),
        (None, Ok(body)) => logic(sim, headers, &body),
    };
    let mut response = match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            if error.status >= 500 || error.code == "AccessDeniedException" {
                tracing::debug!(operation, %error, "simulator: answering with an error");
            }
            error.into_response()
        }
    };
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    sim.lock()
        .record_call(operation, response.status().as_u16());
    response
}

/// Anything unrouted: `{"error"}` under `/sim`, an AWS-shaped 404 elsewhere.
async fn unknown_route(uri: Uri) -> Response {
    if uri.path().starts_with("/sim/") || uri.path() == "/sim" {
        return ControlError::not_found(format!("no control route {}", uri.path())).into_response();
    }
    AwsError::new(
        "UnknownOperationException",
        format!("The simulator does not implement {}", uri.path()),
    )
    .into_response()
}
