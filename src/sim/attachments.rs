//! Connect Participant attachments: StartAttachmentUpload hands out an upload URL (served
//! by the simulator itself, standing in for S3), CompleteAttachmentUpload turns the
//! uploaded file into an ATTACHMENT chat item, GetAttachment hands out a download URL.
//!
//! URLs are built on the request's `Host`: whoever reached the AWS endpoints reaches the
//! upload and download routes the same way.

use axum::http::HeaderMap;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::participant::{bearer, open_chat};
use super::sinks::iso_millis;
use super::state::{Attachment, Item, ItemAttachment, NewItem, Simulator, State};
use super::wire::{parse_aws, AwsError};

const INVALID: &str = "ValidationException";

/// Connect's attachment size limit (20 MB in the admin guide).
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// File extensions Connect chat accepts (admin guide, feature specifications). Voice
/// notes (.ogg), stickers (.webp), .mp3, .aac, .amr, .3gp, .zip are refused.
pub const ALLOWED_EXTENSIONS: &[&str] = &[
    "csv", "doc", "docx", "heic", "jfif", "jpeg", "jpg", "mov", "mp4", "pdf", "png", "ppt", "pptx",
    "rtf", "txt", "wav", "xls", "xlsx",
];

/// The header the upload URL's "signature" requires besides Content-Type, so a client
/// that drops HeadersToInclude fails as it would against S3.
pub const SIM_SIGNED_HEADER: (&str, &str) = ("x-amz-meta-sim", "1");

/// How long upload URLs stay valid.
const UPLOAD_URL_MINUTES: i64 = 5;
/// GetAttachment's UrlExpiryInSeconds range and default.
const DOWNLOAD_EXPIRY_SECONDS: std::ops::RangeInclusive<i64> = 5..=300;
const DEFAULT_DOWNLOAD_EXPIRY_SECONDS: i64 = 300;

pub const APPROVED: &str = "APPROVED";
/// Scan results an attachment may carry.
pub const STATUSES: &[&str] = &[APPROVED, "IN_PROGRESS", "REJECTED"];

/// Why Connect refuses an attachment name; `None` if it is accepted.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if !(1..=256).contains(&chars) {
        return Some(format!(
            "AttachmentName must be 1 to 256 characters, got {chars}"
        ));
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if !ALLOWED_EXTENSIONS.contains(&extension.as_str()) {
        return Some(format!(
            "unsupported attachment type {extension:?} ({name}); allowed: {}",
            ALLOWED_EXTENSIONS.join(", ")
        ));
    }
    None
}

/// Why Connect refuses an attachment size; `None` if it is accepted.
pub(crate) fn size_problem(size: u64) -> Option<String> {
    (!(1..=MAX_ATTACHMENT_BYTES).contains(&size))
        .then(|| format!("attachment size must be 1 to {MAX_ATTACHMENT_BYTES} bytes, got {size}"))
}

/// `http://<Host>`: the simulator as the caller reached it.
fn base_url(headers: &HeaderMap) -> Result<String, AwsError> {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(|host| format!("http://{host}"))
        .ok_or_else(|| {
            AwsError::new(
                "InternalServerException",
                "no Host header to build the attachment URL on",
            )
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartInput {
    content_type: String,
    attachment_size_in_bytes: i64,
    attachment_name: String,
    client_token: Option<String>,
}

fn upload_answer(base: &str, attachment: &Attachment) -> Value {
    json!({
        "AttachmentId": attachment.id,
        "UploadMetadata": {
            "Url": format!("{base}/sim/upload/{}", attachment.id),
            "UrlExpiry": iso_millis(attachment.upload_expires_at),
            "HeadersToInclude": {
                "Content-Type": attachment.content_type,
                SIM_SIGNED_HEADER.0: SIM_SIGNED_HEADER.1,
            },
        },
    })
}

/// `POST /participant/start-attachment-upload`. The same ClientToken on the same chat
/// returns the first answer.
pub(crate) fn start_attachment_upload(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let input: StartInput = parse_aws(body, INVALID)?;
    if let Some(problem) = name_problem(&input.attachment_name) {
        return Err(AwsError::new(INVALID, problem));
    }
    if input.content_type.trim().is_empty() {
        return Err(AwsError::new(INVALID, "ContentType is required"));
    }
    let size = u64::try_from(input.attachment_size_in_bytes).unwrap_or(0);
    if let Some(problem) = size_problem(size) {
        return Err(AwsError::new(INVALID, problem));
    }
    let base = base_url(headers)?;

    let mut state = sim.lock();
    let index = open_chat(&state, &state.by_connection_token, token)?;
    let key = input
        .client_token
        .map(|t| format!("StartAttachmentUpload:{t}"));
    let seen = key
        .as_ref()
        .and_then(|k| state.chats[index].sent.get(k))
        .and_then(|(id, _)| state.attachments.get(id));
    if let Some(attachment) = seen {
        return Ok(upload_answer(&base, attachment));
    }
    let attachment = Attachment {
        id: uuid::Uuid::new_v4().to_string(),
        chat: index,
        name: input.attachment_name,
        content_type: input.content_type,
        declared_size: size,
        file: None,
        status: APPROVED.to_string(),
        completed: false,
        upload_expires_at: Utc::now() + chrono::Duration::minutes(UPLOAD_URL_MINUTES),
    };
    let answer = upload_answer(&base, &attachment);
    if let Some(key) = key {
        let expiry = iso_millis(attachment.upload_expires_at);
        state.chats[index]
            .sent
            .insert(key, (attachment.id.clone(), expiry));
    }
    tracing::info!(attachment_id = %attachment.id, size, "simulator: attachment upload started");
    state.attachments.insert(attachment.id.clone(), attachment);
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteInput {
    attachment_ids: Vec<String>,
    client_token: Option<String>,
}

/// Who an ATTACHMENT item is written by.
pub(crate) struct Author<'a> {
    pub role: &'a str,
    pub display_name: &'a str,
    pub visibility: &'a str,
}

/// Records the (uploaded) attachment `attachment_id` as an ATTACHMENT item of its chat,
/// which streams it. `None` if the attachment or its bytes are missing.
pub(crate) fn record_attachment_item(
    state: &mut State,
    attachment_id: &str,
    author: Author<'_>,
    account_id: &str,
) -> Option<Item> {
    let attachment = state.attachments.get(attachment_id)?;
    let file = attachment.file.as_ref()?;
    let described = ItemAttachment {
        id: attachment.id.clone(),
        name: attachment.name.clone(),
        content_type: attachment.content_type.clone(),
        size: file.bytes.len() as u64,
        sha256: file.sha256.clone(),
        status: attachment.status.clone(),
    };
    let chat = state.chats.get_mut(attachment.chat)?;
    let content_type = described.content_type.clone();
    Some(chat.record(
        NewItem {
            kind: "ATTACHMENT",
            role: author.role,
            display_name: author.display_name,
            content_type: &content_type,
            content: None,
            visibility: author.visibility,
            attachment: Some(described),
        },
        account_id,
    ))
}

/// `POST /participant/complete-attachment-upload`: the uploaded file becomes a CUSTOMER
/// ATTACHMENT item (approved at once). A seen ClientToken records nothing new.
pub(crate) fn complete_attachment_upload(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let input: CompleteInput = parse_aws(body, INVALID)?;
    // Connect's model: "Array Members: Fixed number of 1 item".
    let [attachment_id] = input.attachment_ids.as_slice() else {
        return Err(AwsError::new(
            INVALID,
            format!(
                "AttachmentIds must hold exactly 1 id, got {}",
                input.attachment_ids.len()
            ),
        ));
    };
    let mut state = sim.lock();
    let index = open_chat(&state, &state.by_connection_token, token)?;
    let key = input
        .client_token
        .map(|t| format!("CompleteAttachmentUpload:{t}"));
    if key
        .as_ref()
        .is_some_and(|k| state.chats[index].sent.contains_key(k))
    {
        return Ok(json!({}));
    }
    let attachment = state
        .attachments
        .get_mut(attachment_id)
        .filter(|a| a.chat == index)
        .ok_or_else(|| {
            AwsError::new(
                INVALID,
                format!("attachment {attachment_id} was not started on this chat"),
            )
        })?;
    if attachment.completed {
        return Err(AwsError::new(
            "ConflictException",
            format!("attachment {attachment_id} is already complete"),
        ));
    }
    if attachment.file.is_none() {
        return Err(AwsError::new(
            INVALID,
            format!("attachment {attachment_id} was not uploaded"),
        ));
    }
    attachment.completed = true;
    let display_name = state.chats[index].customer_display_name.clone();
    let author = Author {
        role: "CUSTOMER",
        display_name: &display_name,
        visibility: "ALL",
    };
    let item = record_attachment_item(&mut state, attachment_id, author, &sim.identity.account_id)
        .ok_or_else(|| AwsError::new("InternalServerException", "attachment vanished"))?;
    if let Some(key) = key {
        state.chats[index]
            .sent
            .insert(key, (item.id.clone(), item.absolute_time.clone()));
    }
    tracing::info!(%attachment_id, item_id = %item.id, "simulator: attachment upload completed");
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetInput {
    attachment_id: String,
    url_expiry_in_seconds: Option<i64>,
}

/// `POST /participant/attachment`: a download URL for a complete attachment of the
/// caller's chat (unknown ids, and other chats' ids, are ResourceNotFound).
pub(crate) fn get_attachment(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, AwsError> {
    let token = bearer(headers)?;
    let input: GetInput = parse_aws(body, INVALID)?;
    let seconds = input
        .url_expiry_in_seconds
        .unwrap_or(DEFAULT_DOWNLOAD_EXPIRY_SECONDS);
    if !DOWNLOAD_EXPIRY_SECONDS.contains(&seconds) {
        return Err(AwsError::new(
            INVALID,
            "UrlExpiryInSeconds must be within 5..=300",
        ));
    }
    let base = base_url(headers)?;
    let state = sim.lock();
    let index = open_chat(&state, &state.by_connection_token, token)?;
    let attachment = state
        .attachments
        .get(&input.attachment_id)
        .filter(|a| a.chat == index)
        .ok_or_else(|| {
            AwsError::new(
                "ResourceNotFoundException",
                format!("Attachment {} not found", input.attachment_id),
            )
        })?;
    let size = match (&attachment.file, attachment.completed) {
        (Some(file), true) => file.bytes.len(),
        _ => {
            return Err(AwsError::new(
                INVALID,
                format!("attachment {} is not complete", attachment.id),
            ))
        }
    };
    Ok(json!({
        "Url": format!("{base}/sim/download/{}", attachment.id),
        "UrlExpiry": iso_millis(Utc::now() + chrono::Duration::seconds(seconds)),
        "AttachmentSizeInBytes": size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_an_allowed_extension() {
        assert_eq!(name_problem("voice.wav"), None);
        assert_eq!(name_problem("Factura.PDF"), None);
        assert_eq!(name_problem("a.b.xlsx"), None);
        for refused in [
            "voice.ogg",
            "sticker.webp",
            "song.mp3",
            "noextension",
            "x.",
            "",
        ] {
            assert!(name_problem(refused).is_some(), "{refused}");
        }
        assert!(name_problem("voice.ogg")
            .unwrap()
            .starts_with("unsupported attachment type"));
        assert!(name_problem(&format!("{}.pdf", "a".repeat(253))).is_some());
    }

    #[test]
    fn sizes_are_1_to_20_mib() {
        assert_eq!(size_problem(1), None);
        assert_eq!(size_problem(MAX_ATTACHMENT_BYTES), None);
        assert!(size_problem(0).is_some());
        assert!(size_problem(MAX_ATTACHMENT_BYTES + 1).is_some());
    }

    #[test]
    fn urls_are_built_on_the_host_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            base_url(&headers).unwrap_err().code,
            "InternalServerException"
        );
        headers.insert("host", "127.0.0.1:4566".parse().unwrap());
        assert_eq!(base_url(&headers).unwrap(), "http://127.0.0.1:4566");
    }
}
