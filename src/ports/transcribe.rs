//! Speech to text for customers' voice notes: Amazon Transcribe Streaming in production
//! and tests (the simulator plays it), anything else behind the same trait.
//!
//! The caller holds the WAV the TranscoderPool wrote (RIFF header + PCM s16le, mono,
//! 16 kHz) and wants the final transcript, or a typed error, within a deadline. A
//! [`TranscribeRequest`] checks everything that can be checked without I/O (the WAV, the
//! language setting) before any call, and cuts audio longer than the maximum: the first
//! `max_audio` is transcribed and the answer says so ([`Transcript::truncated`]), because
//! part of a long note is more use to an agent than nothing, at a bounded cost.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ErrorKind, PortError};
use crate::media::pcm::{PcmAudio, WavError};

/// What [`PortError`]s of transcription name as their service and operation.
pub const SERVICE: &str = "transcribe";
pub const OPERATION: &str = "StartStreamTranscription";

/// Audio per AudioEvent: Transcribe recommends 50-200 ms chunks (at most 1 s).
pub const CHUNK: Duration = Duration::from_millis(100);

/// Longest audio sent by default; the rest of a longer note is not transcribed.
pub const DEFAULT_MAX_AUDIO: Duration = Duration::from_secs(120);

/// Time allowed by default from the first byte sent to the final transcript.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Longest transcript kept (bytes, cut at a character boundary): a guard against a
/// runaway answer, far above what two minutes of speech produce.
pub const MAX_TRANSCRIPT_BYTES: usize = 64 * 1024;

/// A Transcribe language code such as `en-US` or `pt-BR` (language, dash, region).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LanguageCode(String);

impl LanguageCode {
    /// Checks the shape (`ll-RR` or `lll-RR`), not that Transcribe supports it: the
    /// service answers that, and new languages need no release here.
    pub fn parse(code: &str) -> Result<Self, TranscribeError> {
        let code = code.trim();
        let valid = match code.split_once('-') {
            Some((language, region)) => {
                (2..=3).contains(&language.len())
                    && language.bytes().all(|b| b.is_ascii_lowercase())
                    && region.len() == 2
                    && region.bytes().all(|b| b.is_ascii_uppercase())
            }
            None => false,
        };
        if valid {
            Ok(Self(code.to_string()))
        } else {
            Err(TranscribeError::Setting(format!(
                "{code:?} is not a language code like en-US"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the dash (`es` of `es-US`).
    fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }
}

impl std::fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which language the speech is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Language {
    /// Known in advance (`--transcribe-language`).
    Fixed(LanguageCode),
    /// Identified by the service among `options` (Transcribe's IdentifyLanguage +
    /// LanguageOptions); `preferred`, one of them, speeds up identification of short
    /// clips.
    Identify {
        options: Vec<LanguageCode>,
        preferred: Option<LanguageCode>,
    },
}

impl Language {
    /// A fixed language, e.g. `Language::fixed("en-US")`.
    pub fn fixed(code: &str) -> Result<Self, TranscribeError> {
        LanguageCode::parse(code).map(Language::Fixed)
    }

    /// Identification among `options` (at least two, one dialect per language, as
    /// Transcribe requires), e.g. from `--transcribe-languages es-US,en-US,pt-BR`.
    pub fn identify<S: AsRef<str>>(
        options: &[S],
        preferred: Option<&str>,
    ) -> Result<Self, TranscribeError> {
        let options = options
            .iter()
            .map(|o| LanguageCode::parse(o.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if options.len() < 2 {
            return Err(TranscribeError::Setting(
                "language identification needs at least two language options".into(),
            ));
        }
        for (i, a) in options.iter().enumerate() {
            if let Some(b) = options[..i].iter().find(|b| b.language() == a.language()) {
                return Err(TranscribeError::Setting(format!(
                    "{b} and {a} are dialects of one language: Transcribe takes one per language"
                )));
            }
        }
        let preferred = match preferred {
            Some(code) => {
                let code = LanguageCode::parse(code)?;
                if !options.contains(&code) {
                    return Err(TranscribeError::Setting(format!(
                        "preferred language {code} is not among the options"
                    )));
                }
                Some(code)
            }
            None => None,
        };
        Ok(Language::Identify { options, preferred })
    }
}

/// One transcription to run: validated audio, language and limits.
#[derive(Debug, Clone)]
pub struct TranscribeRequest {
    audio: PcmAudio,
    original: Duration,
    truncated: bool,
    language: Language,
    deadline: Duration,
}

impl TranscribeRequest {
    /// Takes the PCM out of `wav` (see [`PcmAudio::from_wav`]) and keeps at most
    /// `max_audio` of it. `deadline` bounds the whole transcription.
    pub fn from_wav(
        wav: Bytes,
        language: Language,
        max_audio: Duration,
        deadline: Duration,
    ) -> Result<Self, TranscribeError> {
        if max_audio.is_zero() || deadline.is_zero() {
            return Err(TranscribeError::Setting(
                "max_audio and deadline must be positive".into(),
            ));
        }
        let audio = PcmAudio::from_wav(wav)?;
        let original = audio.duration();
        let (audio, truncated) = audio.truncated(max_audio);
        Ok(Self {
            audio,
            original,
            truncated,
            language,
            deadline,
        })
    }

    /// The audio to send (already cut to the maximum).
    pub fn audio(&self) -> &PcmAudio {
        &self.audio
    }

    /// How long the whole note is, cut or not.
    pub fn original_duration(&self) -> Duration {
        self.original
    }

    /// Whether only the first part of the note will be transcribed.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub fn language(&self) -> &Language {
        &self.language
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

/// The final transcript of a note.
#[derive(Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The final (non-partial) results joined with spaces; empty when no speech was
    /// recognised.
    pub text: String,
    /// The language transcribed: the fixed one, or the one identified (`None` when
    /// identification had nothing to go on, e.g. silence).
    pub language_code: Option<String>,
    /// How much audio was sent.
    pub transcribed: Duration,
    /// Only the first `transcribed` of a longer note was sent.
    pub truncated: bool,
}

impl Transcript {
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }
}

// The text is what the customer said: keep it out of every Debug print and so out of logs.
impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("chars", &self.text.chars().count())
            .field("language_code", &self.language_code)
            .field("transcribed", &self.transcribed)
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Why there is no transcript.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TranscribeError {
    /// The WAV cannot be streamed (not PCM 16-bit mono, broken header, no audio).
    #[error("audio not transcribable: {0}")]
    Audio(#[from] WavError),
    /// A language setting or limit is unusable.
    #[error("transcription setting: {0}")]
    Setting(String),
    /// No final transcript within the request's deadline.
    #[error("no transcript within {0:?}")]
    Timeout(Duration),
    /// The service refused or failed (kind from its error code, as for every AWS call).
    #[error(transparent)]
    Service(PortError),
}

impl TranscribeError {
    /// What the retry policy acts on: bad audio or settings are [`ErrorKind::Invalid`]
    /// (the same request cannot succeed), a timeout [`ErrorKind::Transient`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            TranscribeError::Audio(_) | TranscribeError::Setting(_) => ErrorKind::Invalid,
            TranscribeError::Timeout(_) => ErrorKind::Transient,
            TranscribeError::Service(e) => e.kind,
        }
    }
}

impl From<TranscribeError> for PortError {
    fn from(error: TranscribeError) -> Self {
        match error {
            TranscribeError::Service(e) => e,
            other => PortError::new(other.kind(), SERVICE, OPERATION, other.to_string()),
        }
    }
}

/// Turns speech into text.
#[async_trait]
pub trait Transcriber: Send + Sync + 'static {
    /// Streams the request's audio and answers the final transcript, or why not, within
    /// the request's deadline.
    async fn transcribe(&self, request: TranscribeRequest) -> Result<Transcript, TranscribeError>;
}

/// Appends `piece` to `text` (space-separated) without growing past
/// [`MAX_TRANSCRIPT_BYTES`]; answers false once the cap is reached.
pub fn append_capped(text: &mut String, piece: &str) -> bool {
    let piece = piece.trim();
    if piece.is_empty() {
        return true;
    }
    let sep = usize::from(!text.is_empty());
    let room = MAX_TRANSCRIPT_BYTES.saturating_sub(text.len() + sep);
    if room == 0 {
        return false;
    }
    if sep == 1 {
        text.push(' ');
    }
    if piece.len() <= room {
        text.push_str(piece);
        return true;
    }
    let mut end = room;
    while !piece.is_char_boundary(end) {
        end -= 1;
    }
    text.push_str(&piece[..end]);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pcm::test_wav;

    #[test]
    fn language_codes_are_checked_for_shape() {
        for good in ["en-US", "pt-BR", "es-US", "yue-HK", " fr-CA "] {
            assert!(LanguageCode::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "en",
            "EN-us",
            "en_US",
            "en-USA",
            "e-US",
            "en-U1",
            "en-US\r\nx: y",
        ] {
            assert!(LanguageCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identification_needs_two_languages_one_dialect_each() {
        let ok = Language::identify(&["es-US", "en-US", "pt-BR"], Some("es-US")).unwrap();
        assert!(matches!(ok, Language::Identify { ref options, .. } if options.len() == 3));
        assert!(Language::identify(&["es-US"], None).is_err());
        assert!(Language::identify(&["en-US", "en-GB"], None).is_err());
        assert!(Language::identify(&["en-US", "es-US"], Some("pt-BR")).is_err());
        assert!(Language::identify(&["en-US", "bogus"], None).is_err());
    }

    #[test]
    fn requests_cut_long_audio_and_refuse_bad_wavs() {
        let wav = Bytes::from(test_wav(16_000, &vec![7i16; 16_000 * 3]));
        let language = Language::fixed("en-US").unwrap();
        let request = TranscribeRequest::from_wav(
            wav.clone(),
            language.clone(),
            Duration::from_secs(2),
            DEFAULT_DEADLINE,
        )
        .unwrap();
        assert!(request.is_truncated());
        assert_eq!(request.original_duration(), Duration::from_secs(3));
        assert_eq!(request.audio().duration(), Duration::from_secs(2));
        let whole =
            TranscribeRequest::from_wav(wav, language.clone(), DEFAULT_MAX_AUDIO, DEFAULT_DEADLINE)
                .unwrap();
        assert!(!whole.is_truncated());

        let bad = TranscribeRequest::from_wav(
            Bytes::from_static(b"OggS...."),
            language,
            DEFAULT_MAX_AUDIO,
            DEFAULT_DEADLINE,
        )
        .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
        let port: PortError = bad.into();
        assert_eq!(
            (port.service, port.operation, port.kind),
            (SERVICE, OPERATION, ErrorKind::Invalid)
        );
    }

    #[test]
    fn errors_map_to_the_kinds_the_retry_policy_reads() {
        assert_eq!(
            TranscribeError::Timeout(Duration::from_secs(1)).kind(),
            ErrorKind::Transient
        );
        let throttled = PortError::new(ErrorKind::Throttled, SERVICE, OPERATION, "x");
        assert_eq!(
            TranscribeError::Service(throttled).kind(),
            ErrorKind::Throttled
        );
    }

    #[test]
    fn transcript_debug_hides_the_words() {
        let t = Transcript {
            text: "mi número es 1234".into(),
            language_code: Some("es-US".into()),
            transcribed: Duration::from_secs(2),
            truncated: false,
        };
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("1234") && debug.contains("chars: 17"),
            "{debug}"
        );
    }

    #[test]
    fn appending_stops_at_the_cap_on_a_char_boundary() {
        let mut text = String::new();
        assert!(append_capped(&mut text, "hola"));
        assert!(append_capped(&mut text, "  "));
        assert!(append_capped(&mut text, "qué tal"));
        assert_eq!(text, "hola qué tal");
        let big = "é".repeat(MAX_TRANSCRIPT_BYTES);
        assert!(!append_capped(&mut text, &big));
        assert!(text.len() <= MAX_TRANSCRIPT_BYTES);
        assert!(!append_capped(&mut text, "más"));
    }
}
