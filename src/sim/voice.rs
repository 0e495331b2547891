//! Voice notes, as the WhatsApp app makes them: whatever the microphone recorded (a
//! browser's MediaRecorder gives WebM or Ogg; an uploaded file may be MP3, M4A, WAV...)
//! is encoded to OGG/Opus, mono, before it is sent.
//!
//! ffmpeg runs hardened as the router's TranscoderPool runs it
//! (`src/media/transcode.rs`): the input demuxer is forced from the declared MIME type,
//! only the `pipe` protocol is allowed, metadata is dropped, a timeout and an output cap
//! apply. A clip that is not what it claims to be fails as a 400, never as a surprise.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The MIME type every voice note gets.
pub const VOICE_NOTE_MIME: &str = "audio/ogg; codecs=opus";
/// Longest an encoding may take before ffmpeg is killed.
const TIMEOUT: Duration = Duration::from_secs(30);
/// WhatsApp's audio limit (16 MB): a larger voice note is refused.
const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// Why a clip could not become a voice note.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(
        "cannot make a voice note from {0:?}: give audio/webm, audio/ogg, audio/mpeg, \
         audio/mp4, audio/aac, audio/wav or audio/amr"
    )]
    Unsupported(String),
    #[error("voice notes need ffmpeg, which could not be started ({path}): {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("the clip could not be decoded as {mime}: {detail}")]
    Decode { mime: String, detail: String },
    #[error("encoding the voice note took over {0:?}")]
    Timeout(Duration),
    #[error("the voice note would be over {MAX_OUTPUT_BYTES} bytes")]
    TooLarge,
}

impl VoiceError {
    /// The control API status: the caller's clip (400) or the simulator's ffmpeg (500).
    pub fn status(&self) -> u16 {
        match self {
            VoiceError::Spawn { .. } => 500,
            _ => 400,
        }
    }
}

/// The ffmpeg demuxer for a recorded clip's MIME type (parameters and case ignored).
pub fn demuxer_for(mime: &str) -> Option<&'static str> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        // ffmpeg reads WebM with its Matroska demuxer (`webm` is a muxer only).
        "audio/webm" | "video/webm" => "matroska",
        "audio/ogg" | "audio/opus" | "application/ogg" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" | "video/mp4" => "mov",
        "audio/aac" => "aac",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/amr" => "amr",
        _ => return None,
    })
}

/// The ffmpeg arguments: `demuxer` in through stdin, OGG/Opus mono out through stdout.
pub fn ffmpeg_args(demuxer: &'static str) -> Vec<&'static str> {
    vec![
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "pipe",
        "-f",
        demuxer,
        "-i",
        "pipe:0",
        "-map",
        "0:a:0",
        "-map_metadata",
        "-1",
        "-protocol_whitelist",
        "pipe",
        "-c:a",
        "libopus",
        "-application",
        "voip",
        "-b:a",
        "24k",
        "-ac",
        "1",
        "-ar",
        "48000",
        "-f",
        "ogg",
        "pipe:1",
    ]
}

/// Encodes `clip` (of type `mime`) to an OGG/Opus voice note with the ffmpeg at `ffmpeg`.
pub async fn encode_voice_note(
    ffmpeg: &Path,
    mime: &str,
    clip: Vec<u8>,
) -> Result<Vec<u8>, VoiceError> {
    let demuxer = demuxer_for(mime).ok_or_else(|| VoiceError::Unsupported(mime.to_string()))?;
    let mut child = tokio::process::Command::new(ffmpeg)
        .args(ffmpeg_args(demuxer))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| VoiceError::Spawn {
            path: ffmpeg.display().to_string(),
            source,
        })?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(VoiceError::Decode {
            mime: mime.into(),
            detail: "ffmpeg's pipes were not set up".into(),
        });
    };
    // Feed stdin while stdout is read: ffmpeg stalls when either pipe fills.
    let feed = tokio::spawn(async move {
        // A write error means ffmpeg stopped reading; its exit status says why.
        let _ = stdin.write_all(&clip).await;
        let _ = stdin.shutdown().await;
    });
    let work = async {
        let mut output = Vec::new();
        let read = stdout
            .take(MAX_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut output)
            .await;
        let mut errors = Vec::new();
        let _ = stderr.read_to_end(&mut errors).await;
        let status = child.wait().await;
        (read, output, errors, status)
    };
    let (read, output, errors, status) = match tokio::time::timeout(TIMEOUT, work).await {
        Ok(done) => done,
        Err(_) => {
            feed.abort();
            // kill_on_drop ends the child.
            return Err(VoiceError::Timeout(TIMEOUT));
        }
    };
    feed.abort();
    if output.len() > MAX_OUTPUT_BYTES {
        return Err(VoiceError::TooLarge);
    }
    let decode = |detail: String| VoiceError::Decode {
        mime: mime.into(),
        detail,
    };
    let status = status.map_err(|e| decode(e.to_string()))?;
    read.map_err(|e| decode(e.to_string()))?;
    if !status.success() || !output.starts_with(b"OggS") {
        let said = String::from_utf8_lossy(&errors);
        let last = said
            .lines()
            .last()
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(decode(format!("ffmpeg {status}: {last}")));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_and_file_types_have_forced_demuxers() {
        assert_eq!(demuxer_for("audio/webm;codecs=opus"), Some("matroska"));
        assert_eq!(demuxer_for("audio/ogg; codecs=opus"), Some("ogg"));
        assert_eq!(demuxer_for("Audio/MPEG"), Some("mp3"));
        assert_eq!(demuxer_for("audio/x-m4a"), Some("mov"));
        for refused in ["", "audio", "text/html", "image/png", "audio/x-playlist"] {
            assert_eq!(demuxer_for(refused), None, "{refused}");
        }
    }

    #[test]
    fn only_pipes_and_the_forced_demuxer_reach_ffmpeg() {
        let args = ffmpeg_args("matroska");
        let forced = args.iter().position(|a| *a == "-f").unwrap();
        assert_eq!(args[forced + 1], "matroska");
        assert_eq!(args[forced + 2..forced + 4], ["-i", "pipe:0"]);
        assert_eq!(
            args.iter().filter(|a| **a == "-protocol_whitelist").count(),
            2
        );
        assert_eq!(args.last(), Some(&"pipe:1"));
    }

    #[tokio::test]
    async fn a_missing_ffmpeg_or_a_bad_type_is_a_clear_error() {
        let missing = encode_voice_note(Path::new("/nonexistent/ffmpeg"), "audio/ogg", vec![1])
            .await
            .unwrap_err();
        assert_eq!(missing.status(), 500);
        assert!(missing.to_string().contains("need ffmpeg"), "{missing}");
        let unsupported = encode_voice_note(Path::new("ffmpeg"), "text/html", vec![1])
            .await
            .unwrap_err();
        assert_eq!(unsupported.status(), 400);
    }
}
