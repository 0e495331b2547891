//! `POST /stream-transcription`: StartStreamTranscription as the SDK calls it. The
//! request's headers carry the settings (checked at once: a bad one is a 400
//! BadRequestException before any audio); its body is a stream of signed event-stream
//! frames, read as they arrive while the response streams back: empty TranscriptEvents
//! now and then while audio flows (as Transcribe sends), and the transcript only once
//! the client has ended its audio, then the end of the stream.
//!
//! Faults (`/sim/faults`, operation StartStreamTranscription) apply before anything
//! else, and the call is logged in `/sim/calls` with the status of its response headers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::frames::{self, FrameReader, Inbound};
use super::results::{answer_language, default_transcript, transcript_events};
use super::StreamRecord;
use crate::ports::LanguageCode;
use crate::sim::faults::{apply, random_unit};
use crate::sim::sinks::iso_millis;
use crate::sim::state::Simulator;
use crate::sim::wire::AwsError;

const OPERATION: &str = "StartStreamTranscription";

/// Transcribe ends a stream that sends no audio for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// After the client's end-of-audio frame, how long the simulator waits for the request
/// body to end before answering anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// An empty TranscriptEvent goes out after this many AudioEvents (about a second of
/// 100 ms chunks), as Transcribe keeps the result stream alive.
const EMPTY_EVENT_EVERY: u64 = 10;

/// The rate waconnect sends (the TranscoderPool writes 16 kHz) and the simulator takes.
const REQUIRED_SAMPLE_RATE: u32 = 16_000;

/// What the request's headers asked for.
#[derive(Debug, Clone)]
struct Params {
    sample_rate: u32,
    language_code: Option<String>,
    identify: bool,
    options: Vec<String>,
    preferred: Option<String>,
    session_id: String,
}

fn bad_request(message: impl Into<String>) -> AwsError {
    AwsError::new("BadRequestException", message)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AwsError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| bad_request(format!("{name} is not ASCII"))),
    }
}

fn language(code: &str, what: &str) -> Result<String, AwsError> {
    LanguageCode::parse(code)
        .map(|c| c.as_str().to_string())
        .map_err(|_| bad_request(format!("{what} {code:?} is not a valid language code")))
}

/// Checks the headers as Transcribe does (plus the simulator's own rule: 16 kHz PCM,
/// what waconnect sends).
fn params(version: Version, headers: &HeaderMap) -> Result<Params, AwsError> {
    if version != Version::HTTP_2 {
        return Err(bad_request(format!(
            "StartStreamTranscription needs HTTP/2 (got {version:?}): use the https:// endpoint"
        )));
    }
    if let Some(kind) = header(headers, "content-type")? {
        if kind != "application/vnd.amazon.eventstream" {
            return Err(bad_request(format!(
                "Content-Type {kind:?}: expected application/vnd.amazon.eventstream"
            )));
        }
    }
    let rate = header(headers, "x-amzn-transcribe-sample-rate")?
        .ok_or_else(|| bad_request("x-amzn-transcribe-sample-rate is required"))?;
    let sample_rate: u32 = rate
        .parse()
        .map_err(|_| bad_request(format!("sample rate {rate:?} is not a number")))?;
    if !(8_000..=48_000).contains(&sample_rate) {
        return Err(bad_request(format!(
            "sample rate {sample_rate} Hz is outside 8000..48000 for PCM"
        )));
    }
    if sample_rate != REQUIRED_SAMPLE_RATE {
        return Err(bad_request(format!(
            "sample rate {sample_rate} Hz: the simulator takes {REQUIRED_SAMPLE_RATE} Hz PCM"
        )));
    }
    match header(headers, "x-amzn-transcribe-media-encoding")? {
        Some("pcm") => {}
        Some(other) => {
            return Err(bad_request(format!(
                "media encoding {other:?}: the simulator takes pcm"
            )))
        }
        None => return Err(bad_request("x-amzn-transcribe-media-encoding is required")),
    }
    if header(headers, "x-amzn-transcribe-identify-multiple-languages")? == Some("true") {
        return Err(bad_request(
            "IdentifyMultipleLanguages is not simulated: use IdentifyLanguage",
        ));
    }
    let language_code = header(headers, "x-amzn-transcribe-language-code")?
        .map(|c| language(c, "LanguageCode"))
        .transpose()?;
    let identify = header(headers, "x-amzn-transcribe-identify-language")? == Some("true");
    let mut options = Vec::new();
    let mut preferred = None;
    match (&language_code, identify) {
        (Some(_), true) => {
            return Err(bad_request(
                "give either LanguageCode or IdentifyLanguage, not both",
            ))
        }
        (None, false) => {
            return Err(bad_request(
                "one of LanguageCode or IdentifyLanguage is required",
            ))
        }
        (Some(_), false) => {}
        (None, true) => {
            let list = header(headers, "x-amzn-transcribe-language-options")?
                .ok_or_else(|| bad_request("IdentifyLanguage needs LanguageOptions"))?;
            for code in list.split(',') {
                let code = language(code.trim(), "LanguageOptions entry")?;
                let prefix = code.split('-').next().unwrap_or_default().to_string();
                if options
                    .iter()
                    .any(|o: &String| o.split('-').next() == Some(&prefix))
                {
                    return Err(bad_request(format!(
                        "LanguageOptions may hold one dialect per language ({code})"
                    )));
                }
                options.push(code);
            }
            if options.len() < 2 {
                return Err(bad_request(
                    "LanguageOptions needs at least two language codes",
                ));
            }
            preferred = header(headers, "x-amzn-transcribe-preferred-language")?
                .map(|c| language(c, "PreferredLanguage"))
                .transpose()?;
            if preferred.as_ref().is_some_and(|p| !options.contains(p)) {
                return Err(bad_request(
                    "PreferredLanguage must be one of LanguageOptions",
                ));
            }
        }
    }
    let session_id = match header(headers, "x-amzn-transcribe-session-id")? {
        Some(id) if !id.is_empty() && id.len() <= 64 => id.to_string(),
        Some(_) => return Err(bad_request("SessionId must be 1..=64 characters")),
        None => uuid::Uuid::new_v4().to_string(),
    };
    Ok(Params {
        sample_rate,
        language_code,
        identify,
        options,
        preferred,
        session_id,
    })
}

/// The handler.
pub(crate) async fn start_stream_transcription(
    State(sim): State<Arc<Simulator>>,
    request: Request,
) -> Response {
    // The audio streams in later: a `match` fault sees the request line only.
    let outcome = apply(&mut sim.lock().faults, OPERATION, b"", random_unit);
    if !outcome.latency.is_zero() {
        tokio::time::sleep(outcome.latency).await;
    }
    let (parts, body) = request.into_parts();
    let answer = match outcome.error {
        Some(fault) => {
            tracing::info!(operation = OPERATION, code = %fault.code, "simulator: injected fault");
            Err(fault)
        }
        None => params(parts.version, &parts.headers),
    };
    let mut response = match answer {
        Ok(params) => open_stream(&sim, params, body),
        Err(error) => {
            tracing::debug!(operation = OPERATION, %error, "simulator: answering with an error");
            error.into_response()
        }
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert("x-amzn-requestid", id.clone());
        response.headers_mut().insert("x-amzn-request-id", id);
    }
    sim.lock()
        .record_call(OPERATION, response.status().as_u16());
    response
}

fn open_stream(sim: &Arc<Simulator>, params: Params, body: Body) -> Response {
    let record = StreamRecord {
        id: 0,
        session_id: params.session_id.clone(),
        sample_rate: params.sample_rate,
        media_encoding: "pcm".into(),
        language_code: params.language_code.clone(),
        identify_language: params.identify,
        language_options: params.options.clone(),
        preferred_language: params.preferred.clone(),
        audio_events: 0,
        audio_bytes: 0,
        largest_chunk: 0,
        duration_seconds: 0.0,
        ended_by: None,
        outcome: "streaming",
        error: None,
        answered_language: None,
        final_results: 0,
        started_at: iso_millis(chrono::Utc::now()),
        finished_at: None,
    };
    let id = sim.lock().transcribe.open(record);
    tracing::info!(
        stream = id,
        session_id = %params.session_id,
        identify = params.identify,
        "simulator: transcription stream opened"
    );
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let mut response_headers = vec![
        (
            "content-type",
            "application/vnd.amazon.eventstream".to_string(),
        ),
        ("x-amzn-transcribe-session-id", params.session_id.clone()),
        (
            "x-amzn-transcribe-sample-rate",
            params.sample_rate.to_string(),
        ),
        ("x-amzn-transcribe-media-encoding", "pcm".to_string()),
    ];
    match &params.language_code {
        Some(code) => response_headers.push(("x-amzn-transcribe-language-code", code.clone())),
        None => {
            response_headers.push(("x-amzn-transcribe-identify-language", "true".into()));
            response_headers.push((
                "x-amzn-transcribe-language-options",
                params.options.join(","),
            ));
            if let Some(code) = &params.preferred {
                response_headers.push(("x-amzn-transcribe-preferred-language", code.clone()));
            }
        }
    }
    let task = Stream {
        sim: sim.clone(),
        id,
        params,
        tx,
        tally: Tally::default(),
    };
    tokio::spawn(task.run(body));

    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, Infallible>(frame), rx))
    });
    let mut response = Response::new(Body::from_stream(events));
    for (name, value) in response_headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The audio received so far.
#[derive(Default)]
struct Tally {
    events: u64,
    bytes: u64,
    largest: u64,
}

impl Tally {
    fn add(&mut self, pcm: &[u8], sample_rate: u32) -> Result<(), String> {
        if self.events == 0 && pcm.starts_with(b"RIFF") {
            return Err(
                "the audio starts with a RIFF header: Transcribe takes raw PCM, \
                        so the WAV header must not be sent"
                    .into(),
            );
        }
        let one_second = u64::from(sample_rate) * 2;
        let len = pcm.len() as u64;
        if len > one_second {
            return Err(format!(
                "an AudioChunk of {len} bytes holds more than 1 second of audio ({one_second} bytes)"
            ));
        }
        self.events += 1;
        self.bytes += len;
        self.largest = self.largest.max(len);
        Ok(())
    }
}

/// How the client's audio ended.
type EndedBy = &'static str;

/// One stream being served.
struct Stream {
    sim: Arc<Simulator>,
    id: u64,
    params: Params,
    tx: mpsc::Sender<Bytes>,
    tally: Tally,
}

/// Why a stream stops early.
enum Stop {
    /// Answer with this exception and close.
    Refuse(&'static str, String),
    /// The client went away (its body broke off, or it stopped reading).
    Aborted(String),
}

impl Stream {
    async fn run(mut self, body: Body) {
        let mut frames = body.into_data_stream();
        let mut reader = FrameReader::default();
        let result = match self.receive(&mut frames, &mut reader).await {
            Ok(ended_by) => self.answer(ended_by).await,
            Err(stop) => Err(stop),
        };
        match result {
            Ok(()) => {}
            Err(Stop::Refuse(code, message)) => self.refuse(code, message).await,
            Err(Stop::Aborted(why)) => self.close("aborted", Some(why)),
        }
    }

    /// Reads the audio until the client ends it, then (bounded) until its body ends.
    async fn receive(
        &mut self,
        frames: &mut BodyDataStream,
        reader: &mut FrameReader,
    ) -> Result<EndedBy, Stop> {
        let mut next_empty_event = EMPTY_EVENT_EVERY;
        let ended_by = loop {
            let next = tokio::time::timeout(IDLE_TIMEOUT, frames.next())
                .await
                .map_err(|_| {
                    Stop::Refuse(
                        "BadRequestException",
                        "Your request timed out because no new audio was received for 15 seconds."
                            .into(),
                    )
                })?;
            match next {
                None => break "end_of_body",
                Some(Err(e)) => return Err(Stop::Aborted(format!("request body: {e}"))),
                Some(Ok(bytes)) => reader.push(&bytes),
            }
            if let Some(ended_by) = self.take_frames(reader)? {
                break ended_by;
            }
            self.publish_progress();
            if self.tally.events >= next_empty_event {
                next_empty_event = self.tally.events + EMPTY_EVENT_EVERY;
                self.send(frames::transcript_event(Vec::new())).await?;
            }
        };
        self.publish_progress();
        if ended_by != "end_of_body" {
            self.drain(frames, reader).await?;
        }
        if reader.pending() > 0 {
            return Err(Stop::Refuse(
                "BadRequestException",
                format!(
                    "the request ended inside an event-stream frame ({} bytes left)",
                    reader.pending()
                ),
            ));
        }
        Ok(ended_by)
    }

    /// Decodes the buffered frames; answers how the audio ended, once it has.
    fn take_frames(&mut self, reader: &mut FrameReader) -> Result<Option<EndedBy>, Stop> {
        let refuse = |message: String| Stop::Refuse("BadRequestException", message);
        while let Some(frame) = reader.next_frame().map_err(refuse)? {
            match frames::open(&frame).map_err(refuse)? {
                Inbound::End => return Ok(Some("empty_frame")),
                Inbound::Audio(pcm) if pcm.is_empty() => return Ok(Some("empty_audio_event")),
                Inbound::Audio(pcm) => self
                    .tally
                    .add(&pcm, self.params.sample_rate)
                    .map_err(refuse)?,
                Inbound::Configuration => {}
            }
        }
        Ok(None)
    }

    /// After the end of the audio only more end markers may come, then the end of the
    /// body (the SDK sends its signed empty frame and closes its side).
    async fn drain(
        &mut self,
        frames: &mut BodyDataStream,
        reader: &mut FrameReader,
    ) -> Result<(), Stop> {
        let refuse = |message: String| Stop::Refuse("BadRequestException", message);
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        loop {
            while let Some(frame) = reader.next_frame().map_err(refuse)? {
                match frames::open(&frame).map_err(refuse)? {
                    Inbound::End | Inbound::Configuration => {}
                    Inbound::Audio(pcm) if pcm.is_empty() => {}
                    Inbound::Audio(_) => {
                        return Err(refuse("audio after the end of the audio stream".into()))
                    }
                }
            }
            match tokio::time::timeout_at(deadline, frames.next()).await {
                // The client keeps its side open: answer all the same.
                Err(_) => return Ok(()),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(Stop::Aborted(format!("request body: {e}"))),
                Ok(Some(Ok(bytes))) => reader.push(&bytes),
            }
        }
    }

    fn seconds(&self) -> f64 {
        self.tally.bytes as f64 / (2.0 * f64::from(self.params.sample_rate))
    }

    fn publish_progress(&self) {
        let (events, bytes, largest, seconds) = (
            self.tally.events,
            self.tally.bytes,
            self.tally.largest,
            self.seconds(),
        );
        self.sim.lock().transcribe.update(self.id, |r| {
            r.audio_events = events;
            r.audio_bytes = bytes;
            r.largest_chunk = largest;
            r.duration_seconds = seconds;
        });
    }

    async fn send(&self, frame: Bytes) -> Result<(), Stop> {
        self.tx
            .send(frame)
            .await
            .map_err(|_| Stop::Aborted("client stopped reading results".into()))
    }

    /// The audio has ended: the configured answer.
    async fn answer(&mut self, ended_by: EndedBy) -> Result<(), Stop> {
        self.sim
            .lock()
            .transcribe
            .update(self.id, |r| r.ended_by = Some(ended_by));
        if !self.tally.bytes.is_multiple_of(2) {
            return Err(Stop::Refuse(
                "BadRequestException",
                format!(
                    "{} bytes of audio are not whole 16-bit samples",
                    self.tally.bytes
                ),
            ));
        }
        let setting = self.sim.lock().transcribe.setting.clone();
        if setting.fail {
            let code = setting
                .fail_with
                .as_deref()
                .and_then(|c| super::STREAM_EXCEPTIONS.iter().find(|k| **k == c))
                .copied()
                .unwrap_or("InternalFailureException");
            return Err(Stop::Refuse(
                code,
                "A problem occurred while processing the audio (simulated failure).".into(),
            ));
        }
        let seconds = self.seconds();
        let language = answer_language(
            &setting,
            self.params.language_code.as_deref(),
            &self.params.options,
        );
        // Scores list the chosen language first.
        let identified: Vec<String> = match (&language, self.params.identify) {
            (Some(chosen), true) => std::iter::once(chosen.clone())
                .chain(self.params.options.iter().filter(|o| *o != chosen).cloned())
                .collect(),
            _ => Vec::new(),
        };
        let text = if self.tally.bytes == 0 {
            String::new()
        } else {
            setting
                .transcript
                .unwrap_or_else(|| default_transcript(seconds))
        };
        let (events, finals) = transcript_events(&text, seconds, language.as_deref(), &identified);
        for event in events {
            self.send(event).await?;
        }
        self.sim.lock().transcribe.update(self.id, |r| {
            r.answered_language = language;
            r.final_results = finals;
        });
        self.close("transcribed", None);
        Ok(())
    }

    async fn refuse(&self, code: &'static str, message: String) {
        let sent = self.send(frames::exception(code, &message)).await.is_ok();
        let error = format!("{code}: {message}");
        if sent {
            self.close("failed", Some(error));
        } else {
            self.close("aborted", Some(error));
        }
    }

    /// Files the outcome. Dropping `self` afterwards ends the response stream.
    fn close(&self, outcome: &'static str, error: Option<String>) {
        let seconds = self.seconds();
        let bytes = self.tally.bytes;
        {
            let mut state = self.sim.lock();
            let transcribe = &mut state.transcribe;
            transcribe.counters.audio_bytes += bytes;
            match outcome {
                "transcribed" => transcribe.counters.transcribed += 1,
                "failed" => transcribe.counters.failed += 1,
                _ => transcribe.counters.aborted += 1,
            }
            transcribe.update(self.id, |r| {
                r.outcome = outcome;
                r.error = error.clone();
                r.audio_events = self.tally.events;
                r.audio_bytes = bytes;
                r.largest_chunk = self.tally.largest;
                r.duration_seconds = seconds;
                r.finished_at = Some(iso_millis(chrono::Utc::now()));
            });
        }
        tracing::info!(
            stream = self.id,
            outcome,
            audio_bytes = bytes,
            seconds,
            error = error.as_deref().unwrap_or(""),
            "simulator: transcription stream closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const BASE: [(&str, &str); 3] = [
        ("content-type", "application/vnd.amazon.eventstream"),
        ("x-amzn-transcribe-sample-rate", "16000"),
        ("x-amzn-transcribe-media-encoding", "pcm"),
    ];

    fn with(extra: &[(&'static str, &str)]) -> HeaderMap {
        let mut pairs: Vec<(&'static str, &str)> = BASE.to_vec();
        pairs.extend_from_slice(extra);
        headers(&pairs)
    }

    #[test]
    fn fixed_language_and_identification_are_read_from_headers() {
        let fixed = params(
            Version::HTTP_2,
            &with(&[("x-amzn-transcribe-language-code", "en-US")]),
        )
        .unwrap();
        assert_eq!(fixed.language_code.as_deref(), Some("en-US"));
        let identify = params(
            Version::HTTP_2,
            &with(&[
                ("x-amzn-transcribe-identify-language", "true"),
                ("x-amzn-transcribe-language-options", "es-US,en-US,pt-BR"),
                ("x-amzn-transcribe-preferred-language", "pt-BR"),
            ]),
        )
        .unwrap();
        assert_eq!(identify.options, vec!["es-US", "en-US", "pt-BR"]);
        assert_eq!(identify.preferred.as_deref(), Some("pt-BR"));
    }

    #[test]
    fn bad_headers_are_bad_requests() {
        let cases: Vec<(Version, HeaderMap)> = vec![
            (
                Version::HTTP_11,
                with(&[("x-amzn-transcribe-language-code", "en-US")]),
            ),
            (Version::HTTP_2, with(&[])),
            (
                Version::HTTP_2,
                headers(&[
                    ("x-amzn-transcribe-sample-rate", "8000"),
                    ("x-amzn-transcribe-media-encoding", "pcm"),
                    ("x-amzn-transcribe-language-code", "en-US"),
                ]),
            ),
            (
                Version::HTTP_2,
                headers(&[
                    ("x-amzn-transcribe-sample-rate", "16000"),
                    ("x-amzn-transcribe-media-encoding", "ogg-opus"),
                    ("x-amzn-transcribe-language-code", "en-US"),
                ]),
            ),
            (
                Version::HTTP_2,
                with(&[
                    ("x-amzn-transcribe-identify-language", "true"),
                    ("x-amzn-transcribe-language-options", "en-US"),
                ]),
            ),
            (
                Version::HTTP_2,
                with(&[
                    ("x-amzn-transcribe-identify-language", "true"),
                    ("x-amzn-transcribe-language-options", "en-US,en-GB"),
                ]),
            ),
            (
                Version::HTTP_2,
                with(&[
                    ("x-amzn-transcribe-identify-language", "true"),
                    ("x-amzn-transcribe-language-code", "en-US"),
                    ("x-amzn-transcribe-language-options", "en-US,es-US"),
                ]),
            ),
            (
                Version::HTTP_2,
                with(&[("x-amzn-transcribe-language-code", "english")]),
            ),
        ];
        for (i, (version, headers)) in cases.into_iter().enumerate() {
            let error = params(version, &headers).unwrap_err();
            assert_eq!(error.code, "BadRequestException", "case {i}");
            assert_eq!(error.status, 400, "case {i}");
        }
    }

    #[test]
    fn the_tally_refuses_wav_headers_and_chunks_over_a_second() {
        let mut tally = Tally::default();
        assert!(tally.add(b"RIFF\x24\0\0\0WAVE", 16_000).is_err());
        assert!(tally.add(&[0; 32_002], 16_000).is_err());
        tally.add(&[0; 3_200], 16_000).unwrap();
        tally.add(b"RIFF", 16_000).unwrap(); // only the first chunk is a header
        assert_eq!(
            (tally.events, tally.bytes, tally.largest),
            (2, 3_204, 3_200)
        );
    }
}
