//! The media steps of a conversation: a customer's file to the agent (download, check,
//! convert, upload, caption) and an agent's attachment to the customer (by link, or
//! converted to OGG/Opus when WhatsApp cannot play it). They run inside the customer's
//! Conversation, so files keep their place among the texts, and every remote call runs
//! under the one retry policy.

use std::sync::Arc;
use std::time::Duration;

use super::ConversationDeps;
use crate::actors::connect_upload::{AttachmentUrl, ConnectUpload, Deliver};
use crate::actors::media_download::{
    Download, DownloadError, Downloaded, MediaDownload, MediaLocation,
};
use crate::actors::transcoder_pool::{Transcode, TranscodeError, TranscoderPool};
use crate::actors::Outcome;
use crate::adapters::http::{redact, HttpTransfer};
use crate::delivery::retrying::{retrying, RetryContext};
use crate::delivery::Arrival;
use crate::domain::content_check::{check_content, Mismatch};
use crate::domain::{
    human_size, media_by_link, media_kind_for_mime, plan_upload, split_text, AttachmentRef,
    AttachmentRules, Conversion, Customer, FileUpload, Media, MediaKind, Piece, Refusal,
    CONNECT_MESSAGE_MAX_CHARS,
};
use crate::media::transcode::Profile;
use crate::ports::{ErrorKind, MediaStore, PortError, Session};
use crate::supervision::{unavailable, Slot};

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
    pub download: Slot<MediaDownload>,
    pub transcoder: Slot<TranscoderPool>,
    pub store: Arc<dyn MediaStore>,
    pub location: MediaLocation,
    pub http: HttpTransfer,
    pub rules: AttachmentRules,
    /// Voice-note transcription, when switched on.
    pub transcription: Option<super::Transcription>,
}

impl MediaDeps {
    async fn download(
        &self,
        request: Download,
    ) -> Result<Result<Downloaded, (u64, u64, String)>, PortError> {
        let actor = self.download.get()?;
        match actor
            .send(request)
            .await
            .map_err(|e| unavailable("media_download", e))?
        {
            Ok(file) => Ok(Ok(file)),
            Err(DownloadError::TooLarge { size, max, mime }) => Ok(Err((size, max, mime))),
            Err(DownloadError::Port(e)) => Err(e),
        }
    }

    /// Converts with the pool; only "busy" and an unavailable pool are worth a retry.
    async fn transcode(
        &self,
        request: Transcode,
    ) -> Result<Result<Vec<u8>, TranscodeError>, PortError> {
        let pool = self.transcoder.get()?;
        match pool
            .send(request)
            .await
            .map_err(|e| unavailable("transcoder_pool", e))?
        {
            Err(TranscodeError::Busy) => Err(PortError::new(
                ErrorKind::Throttled,
                "ffmpeg",
                "Transcode",
                "all ffmpeg workers busy",
            )),
            other => Ok(other),
        }
    }
}

/// What became of a customer's file.
pub struct InboundResult {
    pub outcome: Outcome,
    pub session: Option<Session>,
    /// Reaction for the customer: 📎 delivered, ❌ failed; None when not settled.
    pub delivered: Option<bool>,
    /// A short text for the customer (why a file could not be delivered).
    pub customer_notice: Option<String>,
}

impl InboundResult {
    fn pending(outcome: Outcome) -> Self {
        Self {
            outcome,
            session: None,
            delivered: None,
            customer_notice: None,
        }
    }
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

/// Puts a notice in the chat (as the customer participant: the customer never sees it,
/// since items by the customer are not echoed back). `source_id` keeps its ClientTokens
/// apart from the message's own.
async fn tell_agent(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    customer: &Customer,
    session: Option<Session>,
    text: &str,
    source_id: String,
) -> Result<Session, Outcome> {
    let pieces = text_pieces(text);
    retrying(ctx, "notice to agent", &source_id, || {
        deps.deliver(Deliver {
            customer: customer.clone(),
            session: session.clone(),
            pieces: pieces.clone(),
            source_id: source_id.clone(),
        })
    })
    .await
}

/// One customer media message on its way to the agent.
pub struct InboundFile<'a> {
    pub customer: Customer,
    pub wamid: &'a str,
    pub business_number_id: &'a str,
    pub media: &'a Media,
    /// Agent text that follows the file (the caption, reply marker included).
    pub caption: Option<String>,
}

/// A file the agent must not receive: the customer hears why, the agent what it was.
async fn refuse(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    file: &InboundFile<'_>,
    session: Option<Session>,
    customer_notice: String,
    agent_notice: String,
) -> InboundResult {
    match tell_agent(
        deps,
        ctx,
        &file.customer,
        session,
        &agent_notice,
        format!("{}:refused", file.wamid),
    )
    .await
    {
        Ok(s) => InboundResult {
            outcome: Outcome::Done,
            session: Some(s),
            delivered: Some(false),
            customer_notice: Some(customer_notice),
        },
        Err(outcome) => InboundResult::pending(outcome),
    }
}

/// A file Connect would refuse (type, size): the two notices.
async fn refuse_by_rules(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    file: &InboundFile<'_>,
    session: Option<Session>,
    name: &str,
    mime: &str,
    refusal: Refusal,
) -> InboundResult {
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
        describe(file.media),
        if size.is_empty() { "" } else { ", " }
    );
    refuse(deps, ctx, file, session, customer_notice, agent).await
}

/// A file whose content is not what it claims (an executable named invoice.pdf).
async fn refuse_content(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    file: &InboundFile<'_>,
    session: Option<Session>,
    name: &str,
    mismatch: Mismatch,
) -> InboundResult {
    tracing::warn!(wamid = file.wamid, %mismatch, "customer file refused: content does not match its type");
    let customer = "Sorry, we couldn't deliver this file: its content does not match its file type. Please send it again as a PDF, an image or a text.".to_string();
    let agent = format!(
        "⚠️ The customer sent a {} that was not delivered because {mismatch}: {name}.",
        describe(file.media)
    );
    refuse(deps, ctx, file, session, customer, agent).await
}

/// A file that failed for good: ❌ and the agent is told what failed, in words (never a
/// tool's output: ffmpeg's stderr stays in the logs).
async fn failed(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    file: &InboundFile<'_>,
    session: Option<Session>,
    what: &str,
) -> InboundResult {
    tracing::warn!(
        wamid = file.wamid,
        what,
        "customer file could not be delivered"
    );
    let agent = format!(
        "⚠️ The customer sent a {} that could not be delivered ({what}).",
        describe(file.media)
    );
    match tell_agent(
        deps,
        ctx,
        &file.customer,
        session,
        &agent,
        format!("{}:failed", file.wamid),
    )
    .await
    {
        Ok(s) => InboundResult {
            outcome: Outcome::Done,
            session: Some(s),
            delivered: Some(false),
            customer_notice: None,
        },
        Err(outcome) => InboundResult::pending(outcome),
    }
}

/// A customer's media message to the agent: the file, then its caption.
pub async fn deliver_inbound_media(
    deps: &ConversationDeps,
    media_deps: &MediaDeps,
    arrival: &Arrival,
    f: InboundFile<'_>,
    session: Option<Session>,
) -> InboundResult {
    let ctx = deps.retry_context(arrival);
    let media = f.media;
    let downloaded = retrying(&ctx, "download media", f.wamid, || {
        media_deps.download(Download {
            business_number_id: f.business_number_id.to_string(),
            media_id: media.media_id.clone(),
            declared_mime: media.mime_type.clone(),
        })
    })
    .await;
    let file = match downloaded {
        Ok(Ok(file)) => file,
        Ok(Err((size, max, mime))) => {
            let plan = plan_upload(media, &mime);
            let refusal = Refusal::Size { bytes: size, max };
            return refuse_by_rules(deps, &ctx, &f, session, &plan.name, &mime, refusal).await;
        }
        Err(Outcome::Reject { reason }) => {
            tracing::warn!(wamid = f.wamid, %reason, "media download refused");
            return failed(deps, &ctx, &f, session, "the file could not be downloaded").await;
        }
        Err(outcome) => return InboundResult::pending(outcome),
    };
    let plan = plan_upload(media, &file.mime);
    if let Err(mismatch) = check_content(&file.mime, &file.bytes) {
        return refuse_content(deps, &ctx, &f, session, &plan.name, mismatch).await;
    }
    if plan.conversion.is_none() {
        if let Err(refusal) = media_deps.rules.check(&plan.name, file.bytes.len() as u64) {
            return refuse_by_rules(deps, &ctx, &f, session, &plan.name, &file.mime, refusal).await;
        }
    }
    let bytes = match plan.conversion {
        None => file.bytes,
        Some(conversion) => {
            let converted = retrying(&ctx, "convert media", f.wamid, || {
                media_deps.transcode(Transcode {
                    profile: profile_for(conversion),
                    input_mime: file.mime.clone(),
                    input: file.bytes.clone(),
                })
            })
            .await;
            match converted {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => {
                    tracing::warn!(wamid = f.wamid, error = %e, "conversion failed");
                    let what = format!("its {} could not be converted", describe(media));
                    return failed(deps, &ctx, &f, session, &what).await;
                }
                Err(outcome) => return InboundResult::pending(outcome),
            }
        }
    };
    if let Err(refusal) = media_deps.rules.check(&plan.name, bytes.len() as u64) {
        return refuse_by_rules(
            deps,
            &ctx,
            &f,
            session,
            &plan.name,
            &plan.content_type,
            refusal,
        )
        .await;
    }
    // A voice note is transcribed while its audio uploads.
    let transcription = media_deps
        .transcription
        .as_ref()
        .filter(|_| media.kind == MediaKind::Audio && media.voice);
    let wav = transcription.map(|_| bytes::Bytes::from(bytes.clone()));
    let mut pieces = vec![Piece::File(FileUpload {
        name: plan.name,
        content_type: plan.content_type,
        bytes: Arc::new(bytes),
    })];
    if let Some(caption) = f.caption.as_ref().filter(|c| !c.trim().is_empty()) {
        pieces.extend(text_pieces(caption));
    }
    let upload = retrying(&ctx, "upload to agent", f.wamid, || {
        deps.deliver(Deliver {
            customer: f.customer.clone(),
            session: session.clone(),
            pieces: pieces.clone(),
            source_id: f.wamid.to_string(),
        })
    });
    let (uploaded, transcript) = match (transcription, wav) {
        (Some(t), Some(wav)) => {
            let (uploaded, transcript) = futures::join!(upload, t.run(wav));
            (uploaded, Some((t, transcript)))
        }
        _ => (upload.await, None),
    };
    match uploaded {
        Ok(s) => {
            let session = match transcript {
                Some((t, result)) => {
                    let customer = &f.customer;
                    match super::transcript::deliver(deps, &ctx, t, customer, f.wamid, s, result)
                        .await
                    {
                        Ok(s) => s,
                        Err(outcome) => return InboundResult::pending(outcome),
                    }
                }
                None => s,
            };
            InboundResult {
                outcome: Outcome::Done,
                session: Some(session),
                delivered: Some(true),
                customer_notice: None,
            }
        }
        Err(Outcome::Reject { reason }) => {
            tracing::warn!(wamid = f.wamid, %reason, "upload refused by the chat");
            failed(deps, &ctx, &f, None, "the chat refused the upload").await
        }
        Err(outcome) => InboundResult::pending(outcome),
    }
}

/// The customer a session is for, to post a notice in its chat.
fn customer_of(session: &Session) -> Customer {
    Customer {
        customer_id: session.customer_id.clone(),
        name: session.name.clone(),
        business_number_id: session.business_number_id.clone(),
    }
}

/// An agent's approved attachment to the customer, by link.
pub async fn deliver_outbound_attachment(
    deps: &ConversationDeps,
    arrival: &Arrival,
    session: &Session,
    item_id: &str,
    part: usize,
    attachment: &AttachmentRef,
) -> Outcome {
    let ctx = deps.retry_context(arrival);
    let url = match retrying(&ctx, "attachment URL", item_id, || {
        attachment_url(&deps.connect_upload, session, &attachment.attachment_id)
    })
    .await
    {
        Ok(url) => url,
        Err(outcome) => return outcome,
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
        let Some(media) = &deps.media else {
            return Outcome::Reject {
                reason: "agent audio needs conversion but no media bucket is configured".into(),
            };
        };
        match convert_agent_audio(
            media,
            &ctx,
            &url,
            &essence,
            item_id,
            &attachment.attachment_id,
        )
        .await
        {
            Ok(converted) => link = converted,
            Err(outcome) => return outcome,
        }
    } else if !deps.media.as_ref().is_none_or(|d| d.http.allows(&url)) {
        let reason = format!("attachment URL not in the allowlist: {}", redact(&url));
        let notice = format!(
            "⚠️ Your file {} could not be sent to the customer: its download address is not in waconnect's URL allowlist. Please tell your administrator.",
            attachment.name
        );
        if let Err(outcome) = tell_agent(
            deps,
            &ctx,
            &customer_of(session),
            Some(session.clone()),
            &notice,
            format!("{item_id}:refused"),
        )
        .await
        {
            tracing::warn!(
                item_id,
                ?outcome,
                "could not tell the agent their file was refused"
            );
        }
        return Outcome::Reject { reason };
    }
    if kind == MediaKind::Sticker {
        kind = MediaKind::Image;
    }
    let filename = (kind == MediaKind::Document).then_some(attachment.name.as_str());
    let body = media_by_link(&session.customer_id, kind, &link, None, filename);
    match super::receipts::send_agent_message(deps, &ctx, session, item_id, part, body).await {
        Ok(_) => Outcome::Done,
        Err(outcome) => outcome,
    }
}

async fn attachment_url(
    upload: &Slot<ConnectUpload>,
    session: &Session,
    attachment_id: &str,
) -> Result<String, PortError> {
    upload
        .get()?
        .send(AttachmentUrl {
            connection_token: session.connection_token.clone(),
            attachment_id: attachment_id.to_string(),
        })
        .await
        .map_err(|e| unavailable("connect_upload", e))?
}

async fn convert_agent_audio(
    deps: &MediaDeps,
    ctx: &RetryContext,
    url: &str,
    mime: &str,
    item_id: &str,
    attachment_id: &str,
) -> Result<String, Outcome> {
    let bytes = retrying(ctx, "fetch agent audio", item_id, || {
        deps.http.get(url, deps.rules.max_bytes)
    })
    .await?;
    let converted = retrying(ctx, "convert agent audio", item_id, || {
        deps.transcode(Transcode {
            profile: Profile::AudioToOpus,
            input_mime: mime.to_string(),
            input: bytes.clone(),
        })
    })
    .await?;
    let ogg = converted.map_err(|e| {
        tracing::warn!(item_id, error = %e, "agent audio conversion failed");
        Outcome::Reject {
            reason: format!("agent audio could not be converted ({})", e.outcome()),
        }
    })?;
    let key = format!(
        "{}outbound/{item_id}-{attachment_id}.ogg",
        deps.location.prefix
    );
    retrying(ctx, "store agent audio", item_id, || {
        deps.store
            .put(&deps.location.bucket, &key, ogg.clone(), "audio/ogg")
    })
    .await?;
    retrying(ctx, "presign agent audio", item_id, || {
        deps.store
            .presign_get(&deps.location.bucket, &key, OUTBOUND_LINK_TTL)
    })
    .await
}
