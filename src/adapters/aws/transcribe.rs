//! [`Transcriber`] on Amazon Transcribe Streaming: StartStreamTranscription over HTTP/2,
//! the audio going up as signed event-stream AudioEvents (100 ms of PCM each) while the
//! TranscriptEvents come down, read to the end of the stream.
//!
//! Nothing a customer said or recorded is logged: only sizes, durations, the language
//! and the service's ids.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_sdk_transcribestreaming::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_transcribestreaming::primitives::event_stream::EventStreamSender;
use aws_sdk_transcribestreaming::primitives::Blob;
use aws_sdk_transcribestreaming::types::error::{AudioStreamError, TranscriptResultStreamError};
use aws_sdk_transcribestreaming::types::{
    AudioEvent, AudioStream, LanguageCode as AwsLanguageCode, MediaEncoding, TranscriptResultStream,
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use futures::StreamExt;

use super::call::{classify, kind_of_code, observe_with};
use crate::media::pcm::PcmAudio;
use crate::ports::transcribe::{CHUNK, OPERATION, SERVICE};
use crate::ports::{
    append_capped, ErrorKind, Language, PortError, TranscribeError, TranscribeRequest, Transcriber,
    Transcript,
};

/// Transcribe Streaming through the official SDK client.
pub struct AwsTranscriber {
    client: aws_sdk_transcribestreaming::Client,
    pacing: Option<f64>,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TranscriberSetupError {
    #[error("cannot read the Transcribe CA file {path}: {source}")]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Transcribe CA file {path} is unusable: {reason}")]
    BadCa { path: PathBuf, reason: String },
}

impl AwsTranscriber {
    pub fn new(client: aws_sdk_transcribestreaming::Client) -> Self {
        Self {
            client,
            pacing: None,
        }
    }

    /// A client from the shared AWS configuration (region, credentials, and the endpoint
    /// from `AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING` as usual). With `ca_file`, the
    /// certificates in that PEM file are trusted next to the system's roots: how the
    /// router reaches the simulator's TLS endpoint (its CA is made at start-up). Nothing
    /// else is relaxed: names and chains are checked as for any AWS endpoint.
    pub fn from_sdk_config(
        sdk: &aws_types::SdkConfig,
        ca_file: Option<&Path>,
    ) -> Result<Self, TranscriberSetupError> {
        let mut config = aws_sdk_transcribestreaming::config::Builder::from(sdk);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| TranscriberSetupError::ReadCa {
                path: path.to_path_buf(),
                source,
            })?;
            check_ca_pem(&pem).map_err(|reason| TranscriberSetupError::BadCa {
                path: path.to_path_buf(),
                reason,
            })?;
            let context = TlsContext::builder()
                .with_trust_store(TrustStore::default().with_pem_certificate(pem))
                .build()
                .map_err(|e| TranscriberSetupError::BadCa {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https();
            config = config.http_client(http);
        }
        Ok(Self::new(aws_sdk_transcribestreaming::Client::from_conf(
            config.build(),
        )))
    }

    /// Sends the audio at most `speed` times faster than it plays (AWS recommends close
    /// to real time; by default it is sent as fast as the connection takes it, which
    /// keeps a note's transcript right behind the note).
    pub fn with_pacing(mut self, speed: f64) -> Self {
        self.pacing = (speed.is_finite() && speed > 0.0).then_some(speed);
        self
    }

    async fn run(&self, request: &TranscribeRequest) -> Result<Transcript, TranscribeError> {
        let audio = request.audio();
        let sample_rate = i32::try_from(audio.sample_rate()).map_err(|_| {
            TranscribeError::Setting(format!("sample rate {}", audio.sample_rate()))
        })?;
        let mut call = self
            .client
            .start_stream_transcription()
            .media_encoding(MediaEncoding::Pcm)
            .media_sample_rate_hertz(sample_rate)
            .audio_stream(audio_events(audio, self.pacing));
        call = match request.language() {
            Language::Fixed(code) => call.language_code(AwsLanguageCode::from(code.as_str())),
            Language::Identify { options, preferred } => {
                let options: Vec<&str> = options.iter().map(|c| c.as_str()).collect();
                let call = call
                    .identify_language(true)
                    .language_options(options.join(","));
                match preferred {
                    Some(code) => call.preferred_language(AwsLanguageCode::from(code.as_str())),
                    None => call,
                }
            }
        };
        let mut output = call.send().await.map_err(|e| {
            let (kind, message) = classify(&e);
            service_error(kind, message)
        })?;
        let session_id = output.session_id().map(str::to_string);
        let header_language = output.language_code().map(|c| c.as_str().to_string());

        let mut text = String::new();
        let mut identified: Option<String> = None;
        let mut capped = false;
        while let Some(event) = output
            .transcript_result_stream
            .recv()
            .await
            .map_err(|e| stream_error(&e))?
        {
            let TranscriptResultStream::TranscriptEvent(event) = event else {
                continue;
            };
            let Some(transcript) = event.transcript() else {
                continue;
            };
            for result in transcript.results().iter().filter(|r| !r.is_partial()) {
                if let Some(code) = result.language_code() {
                    identified = Some(code.as_str().to_string());
                }
                let best = result.alternatives().first().and_then(|a| a.transcript());
                if let Some(piece) = best {
                    if !capped && !append_capped(&mut text, piece) {
                        capped = true;
                        tracing::warn!(?session_id, "transcript cut at its size cap");
                    }
                }
            }
        }
        let language_code = match request.language() {
            Language::Fixed(code) => Some(code.as_str().to_string()),
            Language::Identify { .. } => identified.or(header_language),
        };
        tracing::info!(
            ?session_id,
            audio_ms = audio.duration().as_millis() as u64,
            audio_bytes = audio.bytes().len(),
            sample_rate = audio.sample_rate(),
            truncated = request.is_truncated(),
            language = language_code.as_deref().unwrap_or("unidentified"),
            chars = text.chars().count(),
            "voice note transcribed"
        );
        Ok(Transcript {
            text,
            language_code,
            transcribed: audio.duration(),
            truncated: request.is_truncated(),
        })
    }
}

#[async_trait]
impl Transcriber for AwsTranscriber {
    async fn transcribe(&self, request: TranscribeRequest) -> Result<Transcript, TranscribeError> {
        let deadline = request.deadline();
        let result = observe_with(
            SERVICE,
            OPERATION,
            async {
                tokio::time::timeout(deadline, self.run(&request))
                    .await
                    .unwrap_or(Err(TranscribeError::Timeout(deadline)))
            },
            TranscribeError::kind,
        )
        .await;
        if let Err(error) = &result {
            tracing::warn!(
                kind = %error.kind(),
                %error,
                audio_ms = request.audio().duration().as_millis() as u64,
                "voice note not transcribed"
            );
        }
        result
    }
}

/// The audio as AudioEvents of [`CHUNK`] each, optionally paced. The SDK signs each one
/// and ends the stream with the signed empty frame Transcribe waits for.
fn audio_events(
    audio: &PcmAudio,
    pacing: Option<f64>,
) -> EventStreamSender<AudioStream, AudioStreamError> {
    let events = audio.chunks(CHUNK).map(|chunk| {
        Ok(AudioStream::AudioEvent(
            AudioEvent::builder()
                .audio_chunk(Blob::new(chunk.to_vec()))
                .build(),
        ))
    });
    match pacing {
        None => futures::stream::iter(events).into(),
        Some(speed) => {
            let step = CHUNK.div_f64(speed);
            let start = tokio::time::Instant::now();
            futures::stream::iter(events.zip(0u32..))
                .then(move |(event, i)| async move {
                    tokio::time::sleep_until(start + step * i).await;
                    event
                })
                .into()
        }
    }
}

fn service_error(kind: ErrorKind, message: String) -> TranscribeError {
    TranscribeError::Service(PortError::new(kind, SERVICE, OPERATION, message))
}

/// An error inside the result stream: the service's exceptions by type (their code
/// travels in the `:exception-type` header, not always in the payload), transport
/// failures and unreadable frames as transient.
fn stream_error<R>(error: &SdkError<TranscriptResultStreamError, R>) -> TranscribeError {
    let SdkError::ServiceError(context) = error else {
        let message = match error {
            SdkError::TimeoutError(_) => "result stream timed out".to_string(),
            SdkError::DispatchFailure(e) => format!("result stream broken: {e:?}"),
            _ => "unreadable result stream".to_string(),
        };
        return service_error(ErrorKind::Transient, message);
    };
    let e = context.err();
    let (code, kind) = match e {
        TranscriptResultStreamError::BadRequestException(_) => {
            ("BadRequestException", ErrorKind::Invalid)
        }
        TranscriptResultStreamError::LimitExceededException(_) => {
            ("LimitExceededException", ErrorKind::Throttled)
        }
        TranscriptResultStreamError::InternalFailureException(_) => {
            ("InternalFailureException", ErrorKind::Transient)
        }
        TranscriptResultStreamError::ServiceUnavailableException(_) => {
            ("ServiceUnavailableException", ErrorKind::Transient)
        }
        TranscriptResultStreamError::ConflictException(_) => {
            ("ConflictException", ErrorKind::Invalid)
        }
        other => {
            let code = other.code().unwrap_or("Unknown");
            return service_error(
                kind_of_code(code),
                format!("{code}: {}", other.message().unwrap_or("no message")),
            );
        }
    };
    service_error(
        kind,
        format!("{code}: {}", e.message().unwrap_or("no message")),
    )
}

/// Refuses a CA file the TLS layer would choke on later (it panics on bad PEM): at
/// least one certificate, every PEM block a parsable X.509 trust anchor.
fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("not a usable certificate: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_are_checked_before_use() {
        assert!(check_ca_pem(b"").is_err());
        assert!(check_ca_pem(b"hello").is_err());
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(check_ca_pem(garbage).is_err());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(check_ca_pem(cert.pem().as_bytes()).is_ok());
    }

    #[test]
    fn a_missing_or_bad_ca_file_is_a_setup_error() {
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let missing = AwsTranscriber::from_sdk_config(&sdk, Some(Path::new("/nonexistent/ca.pem")));
        assert!(matches!(missing, Err(TranscriberSetupError::ReadCa { .. })));
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let refused = AwsTranscriber::from_sdk_config(&sdk, Some(&bad));
        assert!(matches!(refused, Err(TranscriberSetupError::BadCa { .. })));
        assert!(AwsTranscriber::from_sdk_config(&sdk, None).is_ok());
    }
}
