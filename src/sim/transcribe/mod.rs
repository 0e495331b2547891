//! Amazon Transcribe Streaming, simulated: StartStreamTranscription on the wire the SDK
//! uses (HTTP/2, event-stream frames; see [`stream`]) and its control API:
//!
//! - `PUT /sim/transcribe` `{"transcript", "language_code"?, "fail"?, "fail_with"?}` sets
//!   the answer of every later transcription;
//! - `GET /sim/transcribe` reads the setting back, with counters and the latest streams
//!   (bytes received, duration, how the audio ended, what was answered);
//! - `DELETE /sim/transcribe` restores the default answer and clears the record.

mod frames;
mod results;
mod stream;

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::Simulator;
use super::wire::{parse_control, ControlError};
use crate::ports::LanguageCode;

pub(crate) use stream::start_stream_transcription;

/// Streams kept for `GET /sim/transcribe` (oldest dropped first).
const MAX_RECORDS: usize = 200;

/// Longest configurable transcript.
const MAX_TRANSCRIPT: usize = 64 * 1024;

/// Exceptions `fail_with` may name: those StartStreamTranscription's result stream
/// models.
pub const STREAM_EXCEPTIONS: [&str; 5] = [
    "BadRequestException",
    "LimitExceededException",
    "InternalFailureException",
    "ConflictException",
    "ServiceUnavailableException",
];

/// What every later transcription answers (`PUT /sim/transcribe`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeSetting {
    /// The transcript (default: "simulated transcript of N.N seconds of audio"); an
    /// empty string plays silence: no results at all.
    #[serde(default)]
    pub transcript: Option<String>,
    /// The language identification answers, when it is one of the request's options
    /// (else the first option). A fixed-language request is answered in its language.
    #[serde(default)]
    pub language_code: Option<String>,
    /// Fail every transcription once its audio has ended (an exception in the result
    /// stream).
    #[serde(default)]
    pub fail: bool,
    /// The exception `fail` sends (default InternalFailureException).
    #[serde(default)]
    pub fail_with: Option<String>,
}

impl TranscribeSetting {
    fn check(&self) -> Result<(), ControlError> {
        if let Some(code) = &self.language_code {
            LanguageCode::parse(code).map_err(|e| ControlError::bad_request(e.to_string()))?;
        }
        if self
            .transcript
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TRANSCRIPT)
        {
            return Err(ControlError::bad_request(format!(
                "transcript over {MAX_TRANSCRIPT} bytes"
            )));
        }
        if let Some(code) = &self.fail_with {
            if !STREAM_EXCEPTIONS.contains(&code.as_str()) {
                return Err(ControlError::bad_request(format!(
                    "fail_with must be one of {STREAM_EXCEPTIONS:?}"
                )));
            }
        }
        Ok(())
    }
}

/// One StartStreamTranscription call as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRecord {
    pub id: u64,
    pub session_id: String,
    pub sample_rate: u32,
    pub media_encoding: String,
    pub language_code: Option<String>,
    pub identify_language: bool,
    pub language_options: Vec<String>,
    pub preferred_language: Option<String>,
    /// AudioEvents with audio in them.
    pub audio_events: u64,
    /// PCM bytes received (event payloads, not frames or headers).
    pub audio_bytes: u64,
    /// Largest AudioEvent payload.
    pub largest_chunk: u64,
    /// `audio_bytes / (2 * sample_rate)`.
    pub duration_seconds: f64,
    /// `empty_frame` (the SDK's signed empty frame), `empty_audio_event` or
    /// `end_of_body`; none while streaming or when the stream broke off.
    pub ended_by: Option<&'static str>,
    /// `streaming`, `transcribed`, `failed` (an exception was sent) or `aborted` (the
    /// client went away).
    pub outcome: &'static str,
    /// The exception sent, as `Code: message`.
    pub error: Option<String>,
    /// The language the results carry.
    pub answered_language: Option<String>,
    /// Final (non-partial) results sent, all after the audio ended.
    pub final_results: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// Totals over every stream since start-up (or the last `DELETE`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub streams: u64,
    pub transcribed: u64,
    pub failed: u64,
    pub aborted: u64,
    pub audio_bytes: u64,
}

#[derive(Default)]
pub(crate) struct TranscribeState {
    pub setting: TranscribeSetting,
    pub counters: Counters,
    next_id: u64,
    records: VecDeque<StreamRecord>,
}

impl TranscribeState {
    /// Files a new stream's record; answers its id.
    pub fn open(&mut self, mut record: StreamRecord) -> u64 {
        self.next_id += 1;
        record.id = self.next_id;
        self.counters.streams += 1;
        if self.records.len() >= MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(record);
        self.next_id
    }

    /// Updates a stream's record (if still kept).
    pub fn update(&mut self, id: u64, change: impl FnOnce(&mut StreamRecord)) {
        if let Some(record) = self.records.iter_mut().rev().find(|r| r.id == id) {
            change(record);
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Simulator>> {
    Router::new().route(
        "/sim/transcribe",
        get(get_setting).put(put_setting).delete(reset),
    )
}

fn view(state: &TranscribeState) -> serde_json::Value {
    json!({
        "transcript": state.setting.transcript,
        "language_code": state.setting.language_code,
        "fail": state.setting.fail,
        "fail_with": state.setting.fail_with,
        "counters": state.counters,
        "streams": state.records,
    })
}

/// `GET /sim/transcribe`.
async fn get_setting(State(sim): State<Arc<Simulator>>) -> Response {
    Json(view(&sim.lock().transcribe)).into_response()
}

/// `PUT /sim/transcribe`: replaces the setting (omitted fields take their defaults).
async fn put_setting(
    State(sim): State<Arc<Simulator>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ControlError> {
    let body = body.map_err(|r| ControlError::from_rejection(&r))?;
    let setting: TranscribeSetting = parse_control(&body)?;
    setting.check()?;
    tracing::info!(
        custom_transcript = setting.transcript.is_some(),
        language_code = ?setting.language_code,
        fail = setting.fail,
        "simulator: transcription answer set"
    );
    let mut state = sim.lock();
    state.transcribe.setting = setting;
    Ok(Json(view(&state.transcribe)).into_response())
}

/// `DELETE /sim/transcribe`: default answer, counters and records cleared.
async fn reset(State(sim): State<Arc<Simulator>>) -> Response {
    let mut state = sim.lock();
    // Ids keep counting, so a stream still running cannot be confused with a new one.
    let next_id = state.transcribe.next_id;
    state.transcribe = TranscribeState {
        next_id,
        ..TranscribeState::default()
    };
    Json(view(&state.transcribe)).into_response()
}
