//! Voice-note transcription: the WAV the ffmpeg pool made for the agent is streamed to
//! Amazon Transcribe while the audio uploads; once the audio is in the chat, the
//! transcript follows it (labelled as one) and goes back to the customer quoted under
//! their voice note (🔊), as the reference sample does. A failure or a timeout never
//! holds the audio back: it is in the chat already, and the agent reads that no transcript
//! is available and why, in words.

use std::sync::Arc;

use bytes::Bytes;
use metrics::counter;

use super::ConversationDeps;
use crate::actors::connect_upload::Deliver;
use crate::actors::whatsapp_send::SendWhatsApp;
use crate::actors::Outcome;
use crate::config::TranscriptionSettings;
use crate::delivery::retrying::{retrying, RetryContext};
use crate::domain::{split_text, text_message, Customer, Piece, CONNECT_MESSAGE_MAX_CHARS};
use crate::metrics as m;
use crate::ports::{Session, TranscribeError, TranscribeRequest, Transcriber, Transcript};

/// Transcription as the conversations use it.
#[derive(Clone)]
pub struct Transcription {
    pub port: Arc<dyn Transcriber>,
    pub settings: TranscriptionSettings,
}

impl Transcription {
    /// Transcribes a voice note's WAV within the configured limits.
    pub async fn run(&self, wav: Bytes) -> Result<Transcript, TranscribeError> {
        let s = &self.settings;
        let request =
            TranscribeRequest::from_wav(wav, s.language.clone(), s.max_audio, s.deadline)?;
        self.port.transcribe(request).await
    }
}

/// What the agent reads after the audio.
fn agent_text(result: &Result<Transcript, TranscribeError>, max_audio_secs: u64) -> String {
    match result {
        Ok(t) if t.is_empty() => "📝 No speech was recognised in this voice note.".to_string(),
        Ok(t) => {
            let language = t
                .language_code
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let part = if t.truncated {
                format!(", first {max_audio_secs} seconds")
            } else {
                String::new()
            };
            format!(
                "📝 Transcript of the voice note{language}{part}: {}",
                t.text
            )
        }
        Err(e) => {
            let why = match e {
                TranscribeError::Timeout(_) => "the transcription took too long",
                TranscribeError::Audio(_) => "the audio could not be read",
                TranscribeError::Setting(_) => "transcription is not set up correctly",
                TranscribeError::Service(_) => "the transcription service failed",
            };
            format!("📝 No transcript is available for this voice note ({why}).")
        }
    }
}

fn outcome_label(result: &Result<Transcript, TranscribeError>) -> &'static str {
    match result {
        Ok(t) if t.is_empty() => "empty",
        Ok(_) => "ok",
        Err(TranscribeError::Timeout(_)) => "timeout",
        Err(_) => "failed",
    }
}

/// Puts the transcript (or why there is none) in the chat after the voice note, and
/// quotes it back to the customer. Answers the session in use; a failure to tell the
/// agent is the step's outcome (a retry repeats the audio's idempotent upload first).
pub async fn deliver(
    deps: &ConversationDeps,
    ctx: &RetryContext,
    transcription: &Transcription,
    customer: &Customer,
    wamid: &str,
    session: Session,
    result: Result<Transcript, TranscribeError>,
) -> Result<Session, Outcome> {
    counter!(m::TRANSCRIPTIONS, "outcome" => outcome_label(&result)).increment(1);
    match &result {
        Ok(t) => tracing::info!(%wamid, contact_id = %session.contact_id,
            seconds = t.transcribed.as_secs_f64(), language = ?t.language_code, "voice note transcribed"),
        Err(e) => tracing::warn!(%wamid, contact_id = %session.contact_id, error = %e,
            "voice note not transcribed; the agent is told"),
    }
    let text = agent_text(&result, transcription.settings.max_audio.as_secs());
    let pieces: Vec<Piece> = split_text(&text, CONNECT_MESSAGE_MAX_CHARS)
        .into_iter()
        .map(Piece::Text)
        .collect();
    let source_id = format!("{wamid}:transcript");
    let session = retrying(ctx, "transcript to agent", &source_id, || {
        deps.deliver(Deliver {
            customer: customer.clone(),
            session: Some(session.clone()),
            pieces: pieces.clone(),
            source_id: source_id.clone(),
        })
    })
    .await?;
    if let Some(t) = result.as_ref().ok().filter(|t| !t.is_empty()) {
        let quoted = format!("🔊 _{}_", t.text);
        let reply = deps
            .send_whatsapp(SendWhatsApp {
                business_number_id: customer.business_number_id.clone(),
                body: text_message(&customer.customer_id, &quoted, Some(wamid)),
            })
            .await;
        if let Err(e) = reply {
            tracing::warn!(%wamid, error = %e, "could not quote the transcript back to the customer");
        }
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_agent_reads_a_label_or_why_there_is_no_transcript_never_an_error_dump() {
        let ok = Ok(Transcript {
            text: "hola necesito ayuda".into(),
            language_code: Some("es-US".into()),
            transcribed: Duration::from_secs(3),
            truncated: false,
        });
        assert_eq!(
            agent_text(&ok, 120),
            "📝 Transcript of the voice note (es-US): hola necesito ayuda"
        );
        let timeout = Err(TranscribeError::Timeout(Duration::from_secs(30)));
        assert!(agent_text(&timeout, 120).contains("No transcript is available"));
        let failed = Err(TranscribeError::Service(crate::ports::PortError::new(
            crate::ports::ErrorKind::Transient,
            "transcribe",
            "StartStreamTranscription",
            "InternalFailureException: stack trace 0x7ffd",
        )));
        let text = agent_text(&failed, 120);
        assert!(
            !text.contains("0x7ffd") && !text.contains("Internal"),
            "{text}"
        );
    }
}
