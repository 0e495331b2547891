//! Transcribe Streaming's event-stream messages as the simulator reads and writes them
//! (`application/vnd.amazon.eventstream`, through `aws-smithy-eventstream`, the crate
//! the SDK uses).
//!
//! Client to service, every frame is a SigV4 envelope (headers `:date` and
//! `:chunk-signature`) whose payload is the real message (`AudioEvent` with the PCM as
//! its payload, or `ConfigurationEvent`); an envelope with an empty payload ends the
//! audio. Service to client, messages are plain: `TranscriptEvent`s (JSON) or one
//! exception (`:message-type: exception`, `:exception-type: <code>`).

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

/// Largest frame accepted: an AudioChunk is at most 1 s (32 000 bytes at 16 kHz), so
/// anything near this is not audio from an honest client.
pub const MAX_FRAME: usize = 256 * 1024;

/// Event-stream prelude (total length, headers length, prelude CRC) plus message CRC.
const MIN_FRAME: usize = 16;

/// What one client frame carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// PCM bytes (empty: the client's "end of audio" AudioEvent).
    Audio(Bytes),
    /// A ConfigurationEvent (channel settings); nothing to do for mono audio.
    Configuration,
    /// The signed empty frame: no more audio.
    End,
}

/// Collects body bytes and cuts them into frames.
#[derive(Default)]
pub struct FrameReader {
    buffer: BytesMut,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole frame, decoded; `Ok(None)` until enough bytes are in. A frame
    /// declaring a size outside 16..=[`MAX_FRAME`] is refused from its first 4 bytes,
    /// before it is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Message>, String> {
        let Some(prelude) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
            return Err(format!(
                "event-stream frame of {total} bytes (allowed: {MIN_FRAME}..={MAX_FRAME})"
            ));
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let frame = self.buffer.split_to(total).freeze();
        read_message_from(frame)
            .map(Some)
            .map_err(|e| format!("malformed event-stream frame: {e}"))
    }
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a HeaderValue> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .map(|h| h.value())
}

fn string_header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    header(message, name)
        .and_then(|v| v.as_string().ok())
        .map(|s| s.as_str())
}

/// Opens a client frame: checks the signature envelope is there (the signature itself
/// is not verified: the simulator holds no secrets) and reads the message inside.
pub fn open(envelope: &Message) -> Result<Inbound, String> {
    let signed = header(envelope, ":chunk-signature").is_some_and(|v| v.as_byte_array().is_ok())
        && header(envelope, ":date").is_some_and(|v| v.as_timestamp().is_ok());
    if !signed {
        return Err("event-stream frame without :chunk-signature and :date (unsigned)".into());
    }
    if envelope.payload().is_empty() {
        return Ok(Inbound::End);
    }
    let inner = read_message_from(envelope.payload().clone())
        .map_err(|e| format!("malformed message inside a signed frame: {e}"))?;
    match string_header(&inner, ":message-type") {
        Some("event") => {}
        other => return Err(format!("unexpected :message-type {other:?}")),
    }
    match string_header(&inner, ":event-type") {
        Some("AudioEvent") => {
            match string_header(&inner, ":content-type") {
                None | Some("application/octet-stream") => {}
                Some(other) => return Err(format!("AudioEvent with :content-type {other:?}")),
            }
            Ok(Inbound::Audio(inner.payload().clone()))
        }
        Some("ConfigurationEvent") => Ok(Inbound::Configuration),
        other => Err(format!("unexpected :event-type {other:?}")),
    }
}

fn encode(message: &Message) -> Bytes {
    let mut buffer = Vec::with_capacity(message.payload().len() + 128);
    // Only fails on headers over the format's limits, which ours never are.
    if let Err(e) = write_message_to(message, &mut buffer) {
        tracing::error!(error = %e, "simulator: cannot encode an event-stream message");
    }
    Bytes::from(buffer)
}

fn string(value: &str) -> HeaderValue {
    HeaderValue::String(value.to_string().into())
}

/// A TranscriptEvent frame carrying `results` (Transcribe's `Result` objects).
pub fn transcript_event(results: Vec<Value>) -> Bytes {
    let payload = json!({ "Transcript": { "Results": results } }).to_string();
    encode(
        &Message::new(payload)
            .add_header(Header::new(":message-type", string("event")))
            .add_header(Header::new(":event-type", string("TranscriptEvent")))
            .add_header(Header::new(":content-type", string("application/json"))),
    )
}

/// An exception frame: the stream's last.
pub fn exception(code: &str, message: &str) -> Bytes {
    let payload = json!({ "Message": message }).to_string();
    encode(
        &Message::new(payload)
            .add_header(Header::new(":message-type", string("exception")))
            .add_header(Header::new(":exception-type", string(code)))
            .add_header(Header::new(":content-type", string("application/json"))),
    )
}

/// A client frame as the SDK writes one: `inner` wrapped in a (fake-)signed envelope.
/// For the simulator's own tests.
#[cfg(test)]
pub fn signed(inner: Option<&Message>) -> Bytes {
    let payload = inner.map(encode).unwrap_or_default();
    encode(
        &Message::new(payload)
            .add_header(Header::new(
                ":chunk-signature",
                HeaderValue::ByteArray(Bytes::from_static(&[0xab; 32])),
            ))
            .add_header(Header::new(
                ":date",
                HeaderValue::Timestamp(aws_smithy_types::DateTime::from_secs(1_700_000_000)),
            )),
    )
}

/// An AudioEvent message as the SDK marshals one.
#[cfg(test)]
pub fn audio_event(pcm: &[u8]) -> Message {
    Message::new(Bytes::copy_from_slice(pcm))
        .add_header(Header::new(":message-type", string("event")))
        .add_header(Header::new(":event-type", string("AudioEvent")))
        .add_header(Header::new(
            ":content-type",
            string("application/octet-stream"),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], split: usize) -> Vec<Result<Inbound, String>> {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        for piece in bytes.chunks(split) {
            reader.push(piece);
            while let Some(frame) = reader.next_frame().unwrap() {
                out.push(open(&frame));
            }
        }
        assert_eq!(reader.pending(), 0);
        out
    }

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut body = Vec::new();
        body.extend_from_slice(&signed(Some(&audio_event(&[1, 2, 3, 4]))));
        body.extend_from_slice(&signed(Some(&audio_event(&[]))));
        body.extend_from_slice(&signed(None));
        for split in [1, 3, 7, 64, body.len()] {
            let got = read_all(&body, split);
            assert_eq!(
                got,
                vec![
                    Ok(Inbound::Audio(Bytes::from_static(&[1, 2, 3, 4]))),
                    Ok(Inbound::Audio(Bytes::new())),
                    Ok(Inbound::End),
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn unsigned_and_foreign_messages_are_refused() {
        let unsigned = encode(&audio_event(&[1, 2]));
        let mut reader = FrameReader::default();
        reader.push(&unsigned);
        assert!(open(&reader.next_frame().unwrap().unwrap()).is_err());

        let other = Message::new(Bytes::new())
            .add_header(Header::new(":message-type", string("event")))
            .add_header(Header::new(":event-type", string("VideoEvent")));
        reader.push(&signed(Some(&other)));
        let err = open(&reader.next_frame().unwrap().unwrap()).unwrap_err();
        assert!(err.contains("VideoEvent"), "{err}");
    }

    #[test]
    fn oversized_and_corrupt_frames_are_errors_not_buffers() {
        let mut reader = FrameReader::default();
        reader.push(&(64u32 * 1024 * 1024).to_be_bytes());
        assert!(reader.next_frame().unwrap_err().contains("bytes"));

        let mut frame = signed(Some(&audio_event(&[9; 10]))).to_vec();
        let last = frame.len() - 1;
        frame[last] ^= 0xff; // message CRC
        let mut reader = FrameReader::default();
        reader.push(&frame);
        assert!(reader.next_frame().is_err());
    }

    #[test]
    fn answers_decode_as_the_sdk_expects() {
        let event = transcript_event(vec![json!({"ResultId": "r", "IsPartial": false})]);
        let message = read_message_from(event).unwrap();
        assert_eq!(
            string_header(&message, ":event-type"),
            Some("TranscriptEvent")
        );
        let body: Value = serde_json::from_slice(message.payload()).unwrap();
        assert_eq!(body["Transcript"]["Results"][0]["ResultId"], "r");

        let error = read_message_from(exception("BadRequestException", "no")).unwrap();
        assert_eq!(string_header(&error, ":message-type"), Some("exception"));
        assert_eq!(
            string_header(&error, ":exception-type"),
            Some("BadRequestException")
        );
    }
}
