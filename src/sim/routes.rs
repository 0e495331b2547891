//! One HTTP router for everything: the AWS endpoints (as the SDKs call them) and the
//! `/sim` control API. Every AWS call passes through [`run_aws`]: faults first, then the
//! operation, then the call log.

use std::future::Future;
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
use super::{
    attachments, connect, console, control, files, media, participant, transcribe, whatsapp,
};

/// Largest AWS request body accepted (413 beyond).
pub const AWS_BODY_LIMIT: usize = 256 * 1024;
/// Largest control API request body accepted (413 beyond), except the two that carry
/// files ([`MEDIA_BODY_LIMIT`]).
pub const CONTROL_BODY_LIMIT: usize = 1024 * 1024;
/// Largest body of a control request carrying a file as base64 (customer media up to
/// 25 MiB, agent attachments up to 20 MiB), so a file over its limit is a 400 that says
/// so rather than a bare 413.
pub const MEDIA_BODY_LIMIT: usize = 40 * 1024 * 1024;

/// An operation's logic: it runs under no fault, decides the answer synchronously and
/// queues any streaming for later.
type Operation = fn(&Simulator, &HeaderMap, &[u8]) -> Result<Value, AwsError>;
/// An operation that must wait on I/O (writing media to S3 or to a pre-signed URL).
/// It never holds the state lock across an `.await`.
pub(crate) type AsyncOperation = fn(
    Arc<Simulator>,
    HeaderMap,
    Bytes,
)
    -> futures::future::BoxFuture<'static, Result<Value, AwsError>>;

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
            "/participant/start-attachment-upload",
            aws(
                M::POST,
                "StartAttachmentUpload",
                attachments::start_attachment_upload,
            ),
        )
        .route(
            "/participant/complete-attachment-upload",
            aws(
                M::POST,
                "CompleteAttachmentUpload",
                attachments::complete_attachment_upload,
            ),
        )
        .route(
            "/participant/attachment",
            aws(M::POST, "GetAttachment", attachments::get_attachment),
        )
        .route(
            "/v1/whatsapp/send",
            aws(
                M::POST,
                "SendWhatsAppMessage",
                whatsapp::send_whatsapp_message,
            ),
        )
        .route(
            "/v1/whatsapp/media/get",
            aws_async(
                M::POST,
                "GetWhatsAppMessageMedia",
                media::get_whatsapp_message_media,
            ),
        )
        .layer(DefaultBodyLimit::max(AWS_BODY_LIMIT));
    // Streamed both ways, frame by frame: no body limit applies, the frames have theirs.
    let streaming = Router::new().route(
        "/stream-transcription",
        on(M::POST, transcribe::start_stream_transcription).fallback(unknown_route),
    );
    let control = control::routes()
        .merge(transcribe::routes())
        .layer(DefaultBodyLimit::max(CONTROL_BODY_LIMIT));
    aws.merge(streaming)
        .merge(control)
        .merge(files::routes())
        .merge(console::routes().layer(DefaultBodyLimit::max(CONTROL_BODY_LIMIT)))
        .fallback(unknown_route)
        .with_state(sim)
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
            let run = |body: Bytes| std::future::ready(logic(&sim, &headers, &body));
            run_aws(&sim, operation, body, run).await
        },
    )
    .fallback(unknown_route)
}

/// [`aws`] for an operation that awaits I/O.
fn aws_async(
    method: MethodFilter,
    operation: &'static str,
    logic: AsyncOperation,
) -> MethodRouter<Arc<Simulator>> {
    on(
        method,
        move |State(sim): State<Arc<Simulator>>,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| async move {
            let run = |body: Bytes| logic(sim.clone(), headers, body);
            run_aws(&sim, operation, body, run).await
        },
    )
    .fallback(unknown_route)
}

async fn run_aws<F, Fut>(
    sim: &Simulator,
    operation: &'static str,
    body: Result<Bytes, BytesRejection>,
    logic: F,
) -> Response
where
    F: FnOnce(Bytes) -> Fut,
    Fut: Future<Output = Result<Value, AwsError>>,
{
    let request = body.as_ref().map(|b| &b[..]).unwrap_or_default();
    let outcome = apply(&mut sim.lock().faults, operation, request, random_unit);
    if !outcome.latency.is_zero() {
        tokio::time::sleep(outcome.latency).await;
    }
    let result = match (outcome.error, body) {
        (Some(fault), _) => {
            tracing::info!(operation, code = %fault.code, "simulator: injected fault");
            Err(fault)
        }
        (None, Err(rejection)) => Err(AwsError::from_rejection(&rejection)),
        (None, Ok(body)) => logic(body).await,
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
