//! Customer media, as Meta and EUM handle it: a customer message carries only a media id
//! (with MIME type and hash); GetWhatsAppMessageMedia copies the file into S3 (or to a
//! pre-signed URL) for the business to read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::state::{CustomerMedia, Simulator};
use super::wire::{parse_aws, AwsError};
use crate::ports::ErrorKind;

const INVALID: &str = "InvalidParametersException";

/// The largest file a simulated customer may send (Meta's largest media limit for
/// audio/video is 16 MB, documents 100 MB; 25 MiB covers what tests need).
pub const MAX_CUSTOMER_MEDIA_BYTES: usize = 25 * 1024 * 1024;

/// Meta message types whose body object names a media file.
pub const MEDIA_TYPES: &[&str] = &["image", "audio", "video", "document", "sticker"];

/// The `"media"` field of `POST /sim/customers/{wa_id}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MediaSpec {
    pub content_base64: String,
    pub mime_type: String,
    #[serde(default)]
    pub filename: Option<String>,
    /// Encode the clip to an OGG/Opus voice note first, as the WhatsApp app does
    /// (`control.rs`, `voice.rs`).
    #[serde(default)]
    pub voice_note: bool,
}

/// Why a customer's media cannot be accepted (a 400 of the control API).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum MediaError {
    #[error("\"media\" needs a message type among {MEDIA_TYPES:?}, not {0:?}")]
    NotAMediaType(String),
    #[error("\"{0}\" must be an object")]
    BodyNotAnObject(String),
    #[error("media.content_base64 is not base64: {0}")]
    NotBase64(String),
    #[error("media is {0} bytes; it must be 1 to {MAX_CUSTOMER_MEDIA_BYTES}")]
    Size(usize),
    #[error("media.mime_type must look like type/subtype, got {0:?}")]
    MimeType(String),
}

/// A fresh numeric media id, as Meta's look.
fn new_media_id() -> String {
    let n = (uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000) as u64;
    (1_000_000_000_000_000 + n).to_string()
}

/// Decodes the media of a customer message and fills the message's `<type>` object as
/// Meta does (`id`, `mime_type`, `sha256` as base64, `filename` for documents), keeping
/// what the caller put there (`caption`, `voice`, ...). Returns the media id and what
/// to keep for GetWhatsAppMessageMedia. Heavy work (decoding, hashing) happens here,
/// outside the state lock.
pub(crate) fn attach_customer_media(
    message: &mut Map<String, Value>,
    spec: MediaSpec,
) -> Result<(String, CustomerMedia), MediaError> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !MEDIA_TYPES.contains(&kind.as_str()) {
        return Err(MediaError::NotAMediaType(kind));
    }
    let mime_type = spec.mime_type.trim().to_string();
    if extension_for_mime(&mime_type).is_none() {
        return Err(MediaError::MimeType(spec.mime_type));
    }
    // Refuse oversized content from its encoded length before decoding it.
    if spec.content_base64.len() / 4 * 3 > MAX_CUSTOMER_MEDIA_BYTES + 2 {
        return Err(MediaError::Size(spec.content_base64.len() / 4 * 3));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(spec.content_base64.trim())
        .map_err(|e| MediaError::NotBase64(e.to_string()))?;
    if !(1..=MAX_CUSTOMER_MEDIA_BYTES).contains(&bytes.len()) {
        return Err(MediaError::Size(bytes.len()));
    }
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
    let media_id = new_media_id();
    let body = message
        .entry(kind.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(body) = body else {
        return Err(MediaError::BodyNotAnObject(kind));
    };
    body.insert("id".into(), json!(media_id));
    body.insert("mime_type".into(), json!(mime_type));
    body.insert("sha256".into(), json!(sha256));
    if let (Some(filename), "document") = (spec.filename, kind.as_str()) {
        body.insert("filename".into(), json!(filename));
    }
    let media = CustomerMedia {
        mime_type,
        bytes: Bytes::from(bytes),
    };
    Ok((media_id, media))
}

/// The extension GetWhatsAppMessageMedia gives an object: the MIME subtype without
/// parameters, lowercased (`audio/ogg; codecs=opus` -> `ogg`, `image/jpeg` -> `jpeg`).
/// `None` for something that is not `type/subtype`.
pub fn extension_for_mime(mime_type: &str) -> Option<String> {
    let essence = mime_type.split(';').next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
    };
    (plain(kind) && plain(subtype)).then(|| subtype.to_ascii_lowercase())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetMediaInput {
    media_id: String,
    origination_phone_number_id: String,
    #[serde(default)]
    metadata_only: bool,
    destination_s3_file: Option<S3File>,
    destination_s3_presigned_url: Option<PresignedUrl>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3File {
    bucket_name: String,
    key: String,
}

#[derive(Deserialize)]
struct PresignedUrl {
    url: String,
    #[serde(default)]
    headers: std::collections::HashMap<String, String>,
}

/// `POST /v1/whatsapp/media/get`.
pub(crate) fn get_whatsapp_message_media(
    sim: Arc<Simulator>,
    _headers: HeaderMap,
    body: Bytes,
) -> BoxFuture<'static, Result<Value, AwsError>> {
    async move { get_media(&sim, &body).await }.boxed()
}

async fn get_media(sim: &Simulator, body: &[u8]) -> Result<Value, AwsError> {
    let input: GetMediaInput = parse_aws(body, "ValidationException")?;
    sim.identity
        .check_phone_number(&input.origination_phone_number_id)?;
    let media = sim
        .lock()
        .media
        .get(&input.media_id)
        .cloned()
        .ok_or_else(|| {
            AwsError::new(
                "ResourceNotFoundException",
                format!("Media {} not found", input.media_id),
            )
        })?;
    let answer = json!({ "mimeType": media.mime_type, "fileSize": media.bytes.len() });
    if input.metadata_only {
        return Ok(answer);
    }
    match (
        input.destination_s3_file,
        input.destination_s3_presigned_url,
    ) {
        (Some(file), None) => write_s3_file(sim, &input.media_id, &media, file).await?,
        (None, Some(url)) => put_presigned(sim, &media, url).await?,
        _ => {
            return Err(AwsError::new(
                INVALID,
                "give exactly one of destinationS3File and destinationS3PresignedUrl \
                 (or metadataOnly)",
            ))
        }
    }
    tracing::info!(media_id = %input.media_id, bytes = media.bytes.len(), "simulator: media delivered");
    Ok(answer)
}

/// Writes to `<bucketName>/<key><mediaId>.<ext>`, the layout the reference sample reads
/// back (docs/simulator.md).
async fn write_s3_file(
    sim: &Simulator,
    media_id: &str,
    media: &CustomerMedia,
    file: S3File,
) -> Result<(), AwsError> {
    let store = sim.media.as_ref().ok_or_else(|| {
        AwsError::new(
            "InternalServiceException",
            "the simulator has no media store configured, so destinationS3File cannot be \
             written (give it one: Simulator::with_media / with_local_media)",
        )
    })?;
    if file.bucket_name.is_empty() {
        return Err(AwsError::new(INVALID, "bucketName is required"));
    }
    let ext = extension_for_mime(&media.mime_type).unwrap_or_else(|| "bin".into());
    let key = format!("{}{media_id}.{ext}", file.key);
    store
        .put(
            &file.bucket_name,
            &key,
            media.bytes.to_vec(),
            &media.mime_type,
        )
        .await
        .map_err(|e| {
            let code = match e.kind {
                ErrorKind::Invalid | ErrorKind::NotFound => INVALID,
                _ => "InternalServiceException",
            };
            AwsError::new(
                code,
                format!("writing s3://{}/{key}: {e}", file.bucket_name),
            )
        })
}

/// PUTs the bytes to the caller's pre-signed URL with the headers it names.
async fn put_presigned(
    sim: &Simulator,
    media: &CustomerMedia,
    target: PresignedUrl,
) -> Result<(), AwsError> {
    let mut request = sim.http.put(&target.url).body(media.bytes.clone());
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| AwsError::new("DependencyException", format!("PUT {}: {e}", target.url)))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(AwsError::new(
            INVALID,
            format!("the pre-signed URL answered {status}: {text}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn spec(bytes: &[u8], mime: &str, filename: Option<&str>) -> MediaSpec {
        MediaSpec {
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            mime_type: mime.into(),
            filename: filename.map(str::to_string),
            voice_note: false,
        }
    }

    #[test]
    fn extensions_are_the_mime_subtype() {
        assert_eq!(
            extension_for_mime("audio/ogg; codecs=opus").as_deref(),
            Some("ogg")
        );
        assert_eq!(extension_for_mime("image/jpeg").as_deref(), Some("jpeg"));
        assert_eq!(
            extension_for_mime("application/PDF").as_deref(),
            Some("pdf")
        );
        assert_eq!(
            extension_for_mime("image/svg+xml").as_deref(),
            Some("svg+xml")
        );
        for bad in ["", "jpeg", "image/", "/x", "a/b/c", "image/../x"] {
            assert_eq!(extension_for_mime(bad), None, "{bad}");
        }
    }

    #[test]
    fn voice_notes_get_id_mime_and_base64_sha256_and_keep_voice() {
        let mut m = message(json!({"type": "audio", "audio": {"voice": true}}));
        let (id, media) =
            attach_customer_media(&mut m, spec(b"OggS", "audio/ogg; codecs=opus", None)).unwrap();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_digit()),
            "{id}"
        );
        let audio = &m["audio"];
        assert_eq!(audio["id"], id.as_str());
        assert_eq!(audio["mime_type"], "audio/ogg; codecs=opus");
        assert_eq!(audio["voice"], true);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"OggS"));
        assert_eq!(audio["sha256"], expected.as_str());
        assert_eq!(&media.bytes[..], b"OggS");
    }

    #[test]
    fn documents_get_their_filename_and_keep_the_caption() {
        let mut m = message(json!({"type": "document", "document": {"caption": "invoice"}}));
        attach_customer_media(&mut m, spec(b"%PDF", "application/pdf", Some("inv.pdf"))).unwrap();
        assert_eq!(m["document"]["filename"], "inv.pdf");
        assert_eq!(m["document"]["caption"], "invoice");
        let mut image = message(json!({"type": "image"}));
        attach_customer_media(&mut image, spec(b"\xff\xd8", "image/jpeg", Some("x.jpg"))).unwrap();
        assert!(image["image"].get("filename").is_none());
        assert_eq!(image["image"]["mime_type"], "image/jpeg");
    }

    #[test]
    fn bad_media_is_refused() {
        let mut text = message(json!({"type": "text", "text": {"body": "x"}}));
        assert!(matches!(
            attach_customer_media(&mut text, spec(b"x", "image/png", None)),
            Err(MediaError::NotAMediaType(_))
        ));
        let mut image = message(json!({"type": "image"}));
        assert_eq!(
            attach_customer_media(&mut image, spec(b"", "image/png", None)).unwrap_err(),
            MediaError::Size(0)
        );
        let not_base64 = MediaSpec {
            content_base64: "***".into(),
            mime_type: "image/png".into(),
            filename: None,
            voice_note: false,
        };
        assert!(matches!(
            attach_customer_media(&mut image, not_base64),
            Err(MediaError::NotBase64(_))
        ));
        assert!(matches!(
            attach_customer_media(&mut image, spec(b"x", "png", None)),
            Err(MediaError::MimeType(_))
        ));
        let big = vec![0u8; MAX_CUSTOMER_MEDIA_BYTES + 1];
        assert!(matches!(
            attach_customer_media(&mut image, spec(&big, "image/png", None)),
            Err(MediaError::Size(_))
        ));
        let mut string_body = message(json!({"type": "image", "image": "x"}));
        assert!(matches!(
            attach_customer_media(&mut string_body, spec(b"x", "image/png", None)),
            Err(MediaError::BodyNotAnObject(_))
        ));
    }
}
