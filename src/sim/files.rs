//! Routes that move file bytes: the upload and download URLs Connect would point at S3
//! (`/sim/upload/{id}`, `/sim/download/{id}`), the local media directory's links
//! (`/sim/media/{bucket}/{key}`), and the control API's view of a chat attachment.
//!
//! The S3 stand-ins answer errors as S3 does (XML `<Error><Code>`), since clients treat
//! them as S3; the control route answers `{"error"}` like the rest of `/sim`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use chrono::Utc;

use super::attachments::{MAX_ATTACHMENT_BYTES, SIM_SIGNED_HEADER};
use super::state::{Simulator, StoredFile};
use super::wire::ControlError;
use crate::ports::ErrorKind;

type Sim = State<Arc<Simulator>>;

/// The largest object `/sim/media` serves (WhatsApp's largest media, documents, 100 MB).
const MAX_SERVED_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route(
            "/sim/upload/{attachment_id}",
            // One byte over the largest attachment so an oversized body is still read
            // and answered as a size mismatch (400), like S3's IncompleteBody.
            put(upload).layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES as usize + 1)),
        )
        .route("/sim/download/{attachment_id}", get(download))
        .route("/sim/media/{bucket}/{*key}", get(media_object))
        .route(
            "/sim/chats/{contact_id}/attachments/{attachment_id}",
            get(chat_attachment),
        )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An S3-shaped error answer.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// The bytes with their content type (octet-stream if the stored type is not a valid
/// header value). Every file here is someone's upload and is served from the console's
/// origin, so it is never sniffed and, opened on its own, runs sandboxed: an HTML or SVG
/// "attachment" cannot script the control API.
pub(crate) fn file_response(bytes: Bytes, content_type: &str) -> Response {
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// What a PUT must carry besides the bytes; `None` if all is there.
fn missing_signed_headers(headers: &HeaderMap, content_type: &str) -> Option<String> {
    let has = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == want)
    };
    let mut missing = Vec::new();
    if !has("content-type", content_type) {
        missing.push(format!("Content-Type: {content_type}"));
    }
    if !has(SIM_SIGNED_HEADER.0, SIM_SIGNED_HEADER.1) {
        missing.push(format!("{}: {}", SIM_SIGNED_HEADER.0, SIM_SIGNED_HEADER.1));
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// `PUT /sim/upload/{attachment_id}`: the upload URL StartAttachmentUpload handed out.
/// Needs its HeadersToInclude (403 otherwise) and exactly AttachmentSizeInBytes bytes.
async fn upload(
    State(sim): Sim,
    Path(attachment_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let record = sim.lock().attachments.get(&attachment_id).map(|a| {
        (
            a.content_type.clone(),
            a.declared_size,
            a.upload_expires_at,
            a.completed,
        )
    });
    let Some((content_type, declared_size, expires_at, completed)) = record else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist.",
        );
    };
    if Utc::now() > expires_at {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    if completed {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "The upload was completed; this URL takes no more data.",
        );
    }
    if let Some(missing) = missing_signed_headers(&headers, &content_type) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            &format!("The request lacks signed header(s): {missing}"),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return s3_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            )
        }
        Err(rejection) => {
            return s3_error(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                &rejection.body_text(),
            )
        }
    };
    if body.len() as u64 != declared_size {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            &format!(
                "got {} bytes, AttachmentSizeInBytes was {declared_size}",
                body.len()
            ),
        );
    }
    let file = StoredFile::new(body);
    let etag = format!("\"{}\"", &file.sha256[..32]);
    if let Some(attachment) = sim.lock().attachments.get_mut(&attachment_id) {
        attachment.file = Some(file);
    }
    tracing::info!(%attachment_id, bytes = declared_size, "simulator: attachment uploaded");
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    (StatusCode::OK, [(header::ETAG, etag)]).into_response()
}

/// `GET /sim/download/{attachment_id}`: the URL GetAttachment handed out.
async fn download(State(sim): Sim, Path(attachment_id): Path<String>) -> Response {
    let found = sim
        .lock()
        .attachments
        .get(&attachment_id)
        .filter(|a| a.completed)
        .and_then(|a| Some((a.file.as_ref()?.bytes.clone(), a.content_type.clone())));
    match found {
        Some((bytes, content_type)) => file_response(bytes, &content_type),
        None => s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
    }
}

/// `GET /sim/media/{bucket}/{key}`: local mode's pre-signed links, read from the
/// simulator's [`LocalMediaDir`](crate::adapters::local::LocalMediaDir).
async fn media_object(State(sim): Sim, Path((bucket, key)): Path<(String, String)>) -> Response {
    let Some(dir) = sim.media_dir.as_ref() else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "This simulator serves no media directory.",
        );
    };
    match dir.read_object(&bucket, &key, MAX_SERVED_MEDIA_BYTES).await {
        Ok((bytes, content_type)) => file_response(Bytes::from(bytes), &content_type),
        Err(e) if e.kind == ErrorKind::NotFound => s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
        Err(e) if e.kind == ErrorKind::Invalid => {
            s3_error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.message)
        }
        Err(e) => {
            tracing::warn!(error = %e, "simulator: serving a media object failed");
            s3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &e.message,
            )
        }
    }
}

/// `GET /sim/chats/{contact_id}/attachments/{attachment_id}`: an attachment's bytes, for
/// tests to compare (uploaded ones too, before completion).
async fn chat_attachment(
    State(sim): Sim,
    Path((contact_id, attachment_id)): Path<(String, String)>,
) -> Result<Response, ControlError> {
    let state = sim.lock();
    let index = state
        .chat_by_contact(&contact_id)
        .ok_or_else(|| ControlError::not_found(format!("no chat with contact id {contact_id}")))?;
    let attachment = state
        .attachments
        .get(&attachment_id)
        .filter(|a| a.chat == index)
        .ok_or_else(|| {
            ControlError::not_found(format!(
                "chat {contact_id} has no attachment {attachment_id}"
            ))
        })?;
    let file = attachment.file.as_ref().ok_or_else(|| {
        ControlError::not_found(format!("attachment {attachment_id} was not uploaded"))
    })?;
    Ok(file_response(file.bytes.clone(), &attachment.content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_need_both_signed_headers_with_their_values() {
        let mut headers = HeaderMap::new();
        let missing = missing_signed_headers(&headers, "application/pdf").unwrap();
        assert!(missing.contains("Content-Type") && missing.contains("x-amz-meta-sim"));
        headers.insert("content-type", "application/pdf".parse().unwrap());
        headers.insert("x-amz-meta-sim", "1".parse().unwrap());
        assert_eq!(missing_signed_headers(&headers, "application/pdf"), None);
        assert!(missing_signed_headers(&headers, "image/png").is_some());
    }

    #[test]
    fn s3_errors_are_escaped_xml() {
        let response = s3_error(StatusCode::FORBIDDEN, "AccessDenied", "a <b> & c");
        assert_eq!(response.status(), 403);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/xml"
        );
    }
}
