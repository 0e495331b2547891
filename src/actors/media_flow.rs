//! The media steps of a conversation: a customer's file to the agent (download, check,
//! convert, upload, caption) and an agent's attachment to the customer (by link, or
//! converted to OGG/Opus when WhatsApp cannot play it). Runs inside the customer's
//! Conversation, so files keep their place among the texts.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use super::connect_upload::{AttachmentUrl, ConnectUpload, Customer, Deliver, FileUpload, Piece};
use super::media_download::{Download, DownloadError, MediaDownload, MediaLocation};
use super::transcoder_pool::{Transcode, TranscodeError, TranscoderPool};
use super::whatsapp_send::{SendWhatsApp, WhatsAppSend};
use super::{backoff, Outcome};
use crate::adapters::http::{redact, HttpTransfer};
use crate::domain::{
    human_size, media_by_link, media_kind_for_mime, plan_upload, split_text, AttachmentRef,
    AttachmentRules, Conversion, Media, MediaKind, Refusal, CONNECT_MESSAGE_MAX_CHARS,
};
use crate::media::transcode::Profile;
use crate::ports::{ErrorKind, MediaStore, PortError, Session};

/// How long an agent audio link stays valid: WhatsApp fetches it within seconds.
const OUTBOUND_LINK_TTL: Duration = Duration::from_secs(3600);
/// Agent audio WhatsApp can play as is (Meta: aac, amr, mpeg, mp4, ogg/opus).
const WHATSAPP_AUDIO: [&str; 6] = [
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "audio/opus",
];

/// What the media steps need; absent when no media bucket is configured.
#[derive(Clone)]
pub struct MediaDeps {
    pub download: Addr<MediaDownload>,
    pub transcoder: Addr<TranscoderPool>,
    pub store: Arc<dyn MediaStore>,
    pub location: MediaLocation,
    pub http: HttpTransfer,
    pub rules: AttachmentRules,
}

/// What became of a customer's file.
pub struct InboundResult {
    pub outcome: Outcome,
    pub session: Option<Session>,
    /// Reaction for the customer: 📎 delivered, ❌ failed; None when retrying.
    pub delivered: Option<bool>,
    /// A short text for the customer (why a file could not be delivered).
    pub customer_notice: Option<String>,
}

fn retry(e: impl std::fmt::Display) -> Outcome {
    Outcome::retry(e.to_string(), backoff(1))
}

fn describe(media: &Media) -> &'static str {
    match media.kind {
        MediaKind::Audio if media.voice => "voice note",
        MediaKind::Audio => "audio file",
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Document => "document",
        MediaKind::Sticker => "sticker",
    }
}

fn profile_for(conversion: Conversion) -> Profile {
    match conversion {
        Conversion::AudioToWav => Profile::VoiceToWav,
        Conversion::WebpToPng => Profile::WebpToPng,
    }
}

fn text_pieces(text: &str) -> Vec<Piece> {
    split_text(text, CONNECT_MESSAGE_MAX_CHARS)
        .into_iter()
        .map(Piece::Text)
        .collect()
}

/// Sends `pieces` to the agent; a failure to even tell the agent is a retry.
async fn tell_agent(
    upload: &Addr<ConnectUpload>,
    customer: &Customer,
    session: Option<Session>,
    pieces: Vec<Piece>,
    source_id: String,
) -> Result<Session, Outcome> {
    match upload
        .send(Deliver {
            customer: customer.clone(),
            session,
            pieces,
            source_id,
        })
        .await
    {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.kind == ErrorKind::Invalid => Err(Outcome::Reject {
            reason: e.to_string(),
        }),
        Ok(Err(e)) => Err(retry(e)),
        Err(e) => Err(retry(format!("connect upload unavailable: {e}"))),
    }
}

/// One customer media message on its way to the agent.
pub struct InboundFile<'a> {
    pub upload: &'a Addr<ConnectUpload>,
    pub customer: Customer,
    pub wamid: &'a str,
    pub system_number: &'a str,
    pub media: &'a Media,
    /// Agent text that follows the file (the caption, reply marker included).
    pub caption: Option<String>,
}

/// A file the agent cannot receive: the customer hears why, the agent what it was.
async fn refuse(
    file: &InboundFile<'_>,
    session: Option<Session>,
    name: &str,
    mime: &str,
    refusal: Refusal,
) -> InboundResult {
    let (upload, customer, wamid, media) = (file.upload, &file.customer, file.wamid, file.media);
    let (customer_notice, why) = match &refusal {
        Refusal::Type { extension } => (
            format!(
                "Sorry, we can't deliver files of this type ({}) to our agents. Please send a PDF, an image or a text instead.",
                if extension.is_empty() { "no extension".to_string() } else { format!(".{extension}") }
            ),
            "its type is not accepted by the chat".to_string(),
        ),
        Refusal::Size { bytes, max } => (
            format!(
                "Sorry, this file is too large to deliver ({}; the limit is {}).",
                human_size(*bytes),
                human_size(*max)
            ),
            format!("it is over the {} limit", human_size(*max)),
        ),
    };
    let size = match refusal {
        Refusal::Size { bytes, .. } => human_size(bytes),
        Refusal::Type { .. } => String::new(),
    };
    let agent = format!(
        "⚠️ The customer sent a {} that could not be delivered because {why}: {name} ({mime}{}{size}).",
        describe(media),
        if size.is_empty() { "" } else { ", " }
    );
    match tell_agent(
        upload,
        customer,
        session,
        text_pieces(&agent),
        format!("{wamid}:refused"),
    )
    .await
    {
        Ok(s) => InboundResult {
            outcome: Outcome::Done,
            session: Some(s),
            delivered: Some(false),
            customer_notice: Some(customer_notice),
        },
        Err(outcome) => InboundResult {
            outcome,
            session: None,
            delivered: None,
            customer_notice: None,
        },
    }
}

/// A file that failed for good (conversion, a refused request): ❌ and the agent is told.
async fn failed(file: &InboundFile<'_>, session: Option<Session>, reason: &str) -> InboundResult {
    let (upload, customer, wamid, media) = (file.upload, &file.customer, file.wamid, file.media);
    tracing::warn!(wamid, %reason, "customer file could not be delivered");
    let agent = format!(
        "⚠️ The customer sent a {} that could not be delivered ({reason}).",
        describe(media)
    );
    match tell_agent(
        upload,
        customer,
        session,
        text_pieces(&agent),
        format!("{wamid}:failed"),
    )
    .await
    {
        Ok(s) => InboundResult {
            outcome: Outcome::Done,
            session: Some(s),
            delivered: Some(false),
            customer_notice: None,
        },
        Err(outcome) => InboundResult {
            outcome,
            session: None,
            delivered: None,
            customer_notice: None,
        },
    }
}

/// A customer's media message to the agent: the file, then its caption.
pub async fn deliver_inbound_media(
    deps: &MediaDeps,
    file_in: InboundFile<'_>,
    session: Option<Session>,
) -> InboundResult {
    let f = &file_in;
    let (upload, media) = (f.upload, f.media);
    let pending = |outcome| InboundResult {
        outcome,
        session: None,
        delivered: None,
        customer_notice: None,
    };
    let downloaded = deps
        .download
        .send(Download {
            system_number: f.system_number.to_string(),
            media_id: media.media_id.clone(),
            declared_mime: media.mime_type.clone(),
        })
        .await;
    let file = match downloaded {
        Ok(Ok(file)) => file,
        Ok(Err(DownloadError::TooLarge { size, max, mime })) => {
            let plan = plan_upload(media, &mime);
            let refusal = Refusal::Size { bytes: size, max };
            return refuse(f, session, &plan.name, &mime, refusal).await;
        }
        Ok(Err(DownloadError::Port(e))) if e.kind.is_retryable() => return pending(retry(e)),
        Ok(Err(DownloadError::Port(e))) => {
            return failed(f, session, &format!("download failed: {}", e.message)).await
        }
        Err(e) => return pending(retry(format!("media download unavailable: {e}"))),
    };
    let plan = plan_upload(media, &file.mime);
    if plan.conversion.is_none() {
        if let Err(refusal) = deps.rules.check(&plan.name, file.bytes.len() as u64) {
            return refuse(f, session, &plan.name, &file.mime, refusal).await;
        }
    }
    let bytes = match plan.conversion {
        None => file.bytes,
        Some(conversion) => {
            let converted = deps
                .transcoder
                .send(Transcode {
                    profile: profile_for(conversion),
                    input_mime: file.mime.clone(),
                    input: file.bytes,
                })
                .await;
            match converted {
                Ok(Ok(out)) => out,
                Ok(Err(TranscodeError::Busy)) => return pending(retry("transcoder busy")),
                Ok(Err(e)) => return failed(f, session, &format!("conversion failed: {e}")).await,
                Err(e) => return pending(retry(format!("transcoder unavailable: {e}"))),
            }
        }
    };
    if let Err(refusal) = deps.rules.check(&plan.name, bytes.len() as u64) {
        return refuse(f, session, &plan.name, &plan.content_type, refusal).await;
    }
    let mut pieces = vec![Piece::File(FileUpload {
        name: plan.name,
        content_type: plan.content_type,
        bytes: Arc::new(bytes),
    })];
    if let Some(caption) = f.caption.as_ref().filter(|c| !c.trim().is_empty()) {
        pieces.extend(text_pieces(caption));
    }
    match upload
        .send(Deliver {
            customer: f.customer.clone(),
            session: session.clone(),
            pieces,
            source_id: f.wamid.to_string(),
        })
        .await
    {
        Ok(Ok(s)) => InboundResult {
            outcome: Outcome::Done,
            session: Some(s),
            delivered: Some(true),
            customer_notice: None,
        },
        Ok(Err(e)) if e.kind.is_retryable() => pending(retry(e)),
        Ok(Err(e)) => failed(f, None, &format!("upload refused: {}", e.message)).await,
        Err(e) => pending(retry(format!("connect upload unavailable: {e}"))),
    }
}

fn port_outcome(e: PortError) -> Outcome {
    if e.kind.is_retryable() {
        retry(e)
    } else {
        Outcome::Reject {
            reason: e.to_string(),
        }
    }
}

/// An agent's approved attachment to the customer, by link.
pub async fn deliver_outbound_attachment(
    deps: Option<&MediaDeps>,
    upload: &Addr<ConnectUpload>,
    whatsapp: &Addr<WhatsAppSend>,
    session: &Session,
    item_id: &str,
    attachment: &AttachmentRef,
) -> Outcome {
    let url = match upload
        .send(AttachmentUrl {
            connection_token: session.connection_token.clone(),
            attachment_id: attachment.attachment_id.clone(),
        })
        .await
    {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => return port_outcome(e),
        Err(e) => return retry(format!("connect upload unavailable: {e}")),
    };
    let essence = attachment
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut kind = media_kind_for_mime(&essence);
    let mut link = url.clone();
    if kind == MediaKind::Audio && !WHATSAPP_AUDIO.contains(&essence.as_str()) {
        // WhatsApp cannot play WAV (the audio Connect allows): convert and send our copy.
        let Some(deps) = deps else {
            return Outcome::Reject {
                reason: "agent audio needs conversion but no media bucket is configured".into(),
            };
        };
        match convert_agent_audio(deps, &url, &essence, item_id, &attachment.attachment_id).await {
            Ok(converted) => link = converted,
            Err(outcome) => return outcome,
        }
    } else if !deps.is_none_or(|d| d.http_allows(&url)) {
        return Outcome::Reject {
            reason: format!("attachment URL not in the allowlist: {}", redact(&url)),
        };
    }
    if kind == MediaKind::Sticker {
        kind = MediaKind::Image;
    }
    let filename = (kind == MediaKind::Document).then_some(attachment.name.as_str());
    let body = media_by_link(&session.customer_id, kind, &link, None, filename);
    match whatsapp
        .send(SendWhatsApp {
            system_number: session.system_number.clone(),
            body,
        })
        .await
    {
        Ok(Ok(_)) => Outcome::Done,
        Ok(Err(e)) => port_outcome(e),
        Err(e) => retry(format!("whatsapp sender unavailable: {e}")),
    }
}

impl MediaDeps {
    fn http_allows(&self, url: &str) -> bool {
        self.http.allows(url)
    }
}

async fn convert_agent_audio(
    deps: &MediaDeps,
    url: &str,
    mime: &str,
    item_id: &str,
    attachment_id: &str,
) -> Result<String, Outcome> {
    let bytes = deps
        .http
        .get(url, deps.rules.max_bytes)
        .await
        .map_err(port_outcome)?;
    let ogg = match deps
        .transcoder
        .send(Transcode {
            profile: Profile::AudioToOpus,
            input_mime: mime.to_string(),
            input: bytes,
        })
        .await
    {
        Ok(Ok(out)) => out,
        Ok(Err(TranscodeError::Busy)) => return Err(retry("transcoder busy")),
        Ok(Err(e)) => {
            return Err(Outcome::Reject {
                reason: format!("agent audio conversion failed: {e}"),
            })
        }
        Err(e) => return Err(retry(format!("transcoder unavailable: {e}"))),
    };
    let key = format!(
        "{}outbound/{item_id}-{attachment_id}.ogg",
        deps.location.prefix
    );
    deps.store
        .put(&deps.location.bucket, &key, ogg, "audio/ogg")
        .await
        .map_err(port_outcome)?;
    deps.store
        .presign_get(&deps.location.bucket, &key, OUTBOUND_LINK_TTL)
        .await
        .map_err(port_outcome)
}
