//! What an ffmpeg job is, as pure data: the conversion profiles, the ffmpeg input format
//! forced for each MIME type, the exact command line, and how the output is checked (and,
//! for WAV, repaired) before anyone gets it. No process is started here; the
//! [`TranscoderPool`](crate::actors::transcoder_pool::TranscoderPool) does that.
//!
//! Why the input format is forced (`-f`) instead of letting ffmpeg probe: the bytes come
//! from customers, and probing lets the content choose among every demuxer ffmpeg has
//! (playlists, image sequences, formats with a long CVE history). With `-f` only the
//! demuxer we expect for the declared MIME type ever sees the bytes; a file that is not
//! what it claims to be fails as a job, not as a surprise.

use std::fmt;
use std::time::Duration;

/// A conversion the pool knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Customer audio Connect refuses (voice notes and the other WhatsApp audio types) to
    /// WAV, PCM signed 16-bit little-endian, 16 kHz, mono: what Connect accepts and what
    /// speech analytics wants.
    VoiceToWav,
    /// A WhatsApp sticker (WebP) to PNG, which Connect's chat shows.
    WebpToPng,
    /// Agent audio (WAV or MP3) to OGG/Opus, the one audio format WhatsApp plays as a
    /// voice message.
    AudioToOpus,
}

impl Profile {
    pub const ALL: [Profile; 3] = [
        Profile::VoiceToWav,
        Profile::WebpToPng,
        Profile::AudioToOpus,
    ];

    /// Value of the `profile` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Profile::VoiceToWav => "voice_to_wav",
            Profile::WebpToPng => "webp_to_png",
            Profile::AudioToOpus => "audio_to_opus",
        }
    }

    /// MIME type of the output.
    pub fn output_mime(self) -> &'static str {
        match self {
            Profile::VoiceToWav => "audio/wav",
            Profile::WebpToPng => "image/png",
            Profile::AudioToOpus => "audio/ogg; codecs=opus",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The ffmpeg demuxer forced with `-f` for an input. Only this module makes one, so a
/// command line can never carry a demuxer name that came from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputFormat(&'static str);

impl InputFormat {
    pub const OGG: InputFormat = InputFormat("ogg");
    pub const AAC: InputFormat = InputFormat("aac");
    pub const AMR: InputFormat = InputFormat("amr");
    pub const MP3: InputFormat = InputFormat("mp3");
    /// MP4/M4A audio. ffmpeg's mov demuxer needs the `moov` atom before the media data
    /// when reading a pipe; a non-faststart file can fail, which is a job failure.
    pub const MOV: InputFormat = InputFormat("mov");
    pub const WAV: InputFormat = InputFormat("wav");
    /// `ffmpeg -demuxers` lists the WebP demuxer as `webp_pipe` (there is no `webp`).
    pub const WEBP: InputFormat = InputFormat("webp_pipe");

    /// The demuxer name, as passed to `-f`.
    pub fn demuxer(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The input format to force for `mime` under `profile`, or `None` when the profile does
/// not take that type (refused before any process runs). Parameters (`; codecs=opus`)
/// and case are ignored: WhatsApp sends `audio/ogg; codecs=opus` for voice notes.
pub fn input_format_for(profile: Profile, mime: &str) -> Option<InputFormat> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match (profile, essence.as_str()) {
        // The audio types WhatsApp delivers; Connect takes none of them as they are.
        (Profile::VoiceToWav, "audio/ogg") => Some(InputFormat::OGG),
        (Profile::VoiceToWav, "audio/aac") => Some(InputFormat::AAC),
        (Profile::VoiceToWav, "audio/amr") => Some(InputFormat::AMR),
        (Profile::VoiceToWav, "audio/mpeg") => Some(InputFormat::MP3),
        (Profile::VoiceToWav, "audio/mp4") => Some(InputFormat::MOV),
        (Profile::WebpToPng, "image/webp") => Some(InputFormat::WEBP),
        (Profile::AudioToOpus, "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave") => {
            Some(InputFormat::WAV)
        }
        (Profile::AudioToOpus, "audio/mpeg" | "audio/mp3") => Some(InputFormat::MP3),
        _ => None,
    }
}

/// The full ffmpeg argument list for a job. A function of (profile, input format) only,
/// never of the job's bytes, so a child can be spawned before its job exists.
///
/// Hardening, in order:
/// - `-nostdin`: ffmpeg does not treat stdin as an interactive console (no `q` to quit,
///   no terminal state changes); reading the input from `pipe:0` is unaffected (checked
///   with ffmpeg 5.1).
/// - `-loglevel error`: stderr carries errors only, so what callers see is the cause.
/// - `-protocol_whitelist pipe`, given for the input and again for the output: no
///   `file:`, `http:`, `tcp:`... even if a demuxer follows a reference inside the media.
/// - `-f <forced> -i pipe:0` and `... pipe:1`: bytes in through stdin, out through stdout.
/// - `-map_metadata -1`: the customer's tags (device names, locations) are not copied.
pub fn ffmpeg_args(profile: Profile, input: InputFormat) -> Vec<&'static str> {
    let mut args = vec![
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "pipe",
        "-f",
        input.demuxer(),
        "-i",
        "pipe:0",
    ];
    let output: &[&'static str] = match profile {
        Profile::VoiceToWav => &[
            "-map",
            "0:a:0",
            "-c:a",
            "pcm_s16le",
            "-ar",
            "16000",
            "-ac",
            "1",
            "-f",
            "wav",
        ],
        Profile::WebpToPng => &[
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-c:v",
            "png",
            "-f",
            "image2pipe",
        ],
        Profile::AudioToOpus => &[
            "-map", "0:a:0", "-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-ar", "48000", "-f",
            "ogg",
        ],
    };
    args.extend_from_slice(&["-map_metadata", "-1", "-protocol_whitelist", "pipe"]);
    args.extend_from_slice(output);
    args.push("pipe:1");
    args
}

/// The 8-byte PNG signature.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Checks that `output` is the profile's format and, for WAV, fixes its header sizes.
/// Answers why not when it is not (a crashed, confused or impostor ffmpeg). A zero-length
/// output, or a WAV without a single sample, is never accepted.
pub fn check_output(profile: Profile, output: &mut [u8]) -> Result<(), String> {
    if output.is_empty() {
        return Err("empty output".into());
    }
    match profile {
        Profile::VoiceToWav => {
            patch_wav_sizes(output)?;
            match wav_info(output) {
                None => Err("WAV without a readable PCM format".into()),
                // What ffmpeg writes, exiting 0, when the demuxer gave up before the
                // first packet (e.g. an MP4 whose index sits after the audio, unreadable
                // from a pipe): a header and no audio.
                Some(info) if info.duration.is_zero() => {
                    Err("WAV without audio: nothing was decoded".into())
                }
                Some(_) => Ok(()),
            }
        }
        Profile::WebpToPng if output.starts_with(&PNG_SIGNATURE) => Ok(()),
        Profile::WebpToPng => Err(format!("not PNG: starts {}", head_hex(output))),
        Profile::AudioToOpus if output.starts_with(b"OggS") => Ok(()),
        Profile::AudioToOpus => Err(format!("not OGG: starts {}", head_hex(output))),
    }
}

/// First bytes in hex, for error messages (never the content itself).
fn head_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One RIFF chunk: its id and where its body lies.
struct Chunk {
    id: [u8; 4],
    /// Offset of the 4-byte size field.
    size_at: usize,
    body: usize,
    /// Size as declared in the header (may be a placeholder).
    declared: u32,
}

/// Reads the chunk header at `pos`, if 8 bytes are there.
fn chunk_at(bytes: &[u8], pos: usize) -> Option<Chunk> {
    let header = bytes.get(pos..pos.checked_add(8)?)?;
    let mut id = [0u8; 4];
    id.copy_from_slice(&header[..4]);
    let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    Some(Chunk {
        id,
        size_at: pos + 4,
        body: pos + 8,
        declared,
    })
}

/// Offset of the chunk after `chunk` (bodies are padded to an even length).
fn next_chunk(chunk: &Chunk) -> Option<usize> {
    let size = usize::try_from(chunk.declared).ok()?;
    chunk.body.checked_add(size)?.checked_add(size & 1)
}

fn is_riff_wave(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

/// Writes the real RIFF and `data` chunk sizes into a WAV written to a pipe. ffmpeg
/// cannot seek back on a pipe, so it leaves placeholders (0xFFFFFFFF) that strict readers
/// reject or read as hours of audio. The `data` chunk runs to the end of the bytes (ffmpeg
/// writes it last); the chunks before it (`fmt `, `LIST`...) are walked, not assumed to
/// make a 44-byte header.
pub fn patch_wav_sizes(wav: &mut [u8]) -> Result<(), String> {
    if !is_riff_wave(wav) {
        return Err(format!("not RIFF/WAVE: starts {}", head_hex(wav)));
    }
    let total = u32::try_from(wav.len() - 8).map_err(|_| "WAV over 4 GiB".to_string())?;
    let mut pos = 12;
    loop {
        let chunk = chunk_at(wav, pos).ok_or("WAV without a data chunk")?;
        if &chunk.id == b"data" {
            // Both fit: the data length is below the total length checked above.
            let data_len = (wav.len() - chunk.body) as u32;
            wav[chunk.size_at..chunk.body].copy_from_slice(&data_len.to_le_bytes());
            wav[4..8].copy_from_slice(&total.to_le_bytes());
            return Ok(());
        }
        pos = next_chunk(&chunk)
            .filter(|&next| next <= wav.len())
            .ok_or_else(|| format!("WAV chunk {:?} runs past the end", chunk.id))?;
    }
}

/// What a WAV holds, read from its `fmt ` and `data` chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// From the `data` chunk's length (placeholder sizes are clamped to the bytes there).
    pub duration: Duration,
}

/// Reads a WAV's format and duration; `None` when it is not a WAV with a `fmt ` chunk
/// followed (eventually) by a `data` chunk.
pub fn wav_info(bytes: &[u8]) -> Option<WavInfo> {
    if !is_riff_wave(bytes) {
        return None;
    }
    let mut format: Option<(u16, u32, u16, u16)> = None;
    let mut pos = 12;
    loop {
        let chunk = chunk_at(bytes, pos)?;
        match &chunk.id {
            b"fmt " => {
                let f = bytes.get(chunk.body..chunk.body.checked_add(16)?)?;
                let channels = u16::from_le_bytes([f[2], f[3]]);
                let sample_rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                let block_align = u16::from_le_bytes([f[12], f[13]]);
                let bits = u16::from_le_bytes([f[14], f[15]]);
                format = Some((channels, sample_rate, block_align, bits));
            }
            b"data" => {
                let (channels, sample_rate, block_align, bits_per_sample) = format?;
                if sample_rate == 0 || block_align == 0 {
                    return None;
                }
                let available = bytes.len() - chunk.body;
                let declared = usize::try_from(chunk.declared).unwrap_or(usize::MAX);
                let frames = declared.min(available) / usize::from(block_align);
                return Some(WavInfo {
                    sample_rate,
                    channels,
                    bits_per_sample,
                    duration: Duration::from_secs_f64(frames as f64 / f64::from(sample_rate)),
                });
            }
            _ => {}
        }
        pos = next_chunk(&chunk)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV as ffmpeg writes it to a pipe: placeholder sizes and a LIST chunk (odd-sized,
    /// so padded) between `fmt ` and `data`, so the header is not 44 bytes.
    fn piped_wav(samples: usize) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&u32::MAX.to_le_bytes());
        w.extend_from_slice(b"WAVE");
        w.extend_from_slice(b"fmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes()); // PCM
        w.extend_from_slice(&1u16.to_le_bytes()); // mono
        w.extend_from_slice(&16_000u32.to_le_bytes());
        w.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
        w.extend_from_slice(&2u16.to_le_bytes()); // block align
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"LIST");
        w.extend_from_slice(&5u32.to_le_bytes());
        w.extend_from_slice(b"INFOx\0"); // 5 bytes + 1 pad byte
        w.extend_from_slice(b"data");
        w.extend_from_slice(&u32::MAX.to_le_bytes());
        w.extend(std::iter::repeat_n(0u8, samples * 2));
        w
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn patches_riff_and_data_sizes_past_a_list_chunk() {
        let mut wav = piped_wav(16_000);
        let data_size_at = 12 + 8 + 16 + 8 + 6 + 4;
        assert_eq!(le32(&wav, data_size_at), u32::MAX);
        patch_wav_sizes(&mut wav).unwrap();
        assert_eq!(le32(&wav, 4) as usize, wav.len() - 8);
        assert_eq!(le32(&wav, data_size_at), 32_000);
        let info = wav_info(&wav).unwrap();
        assert_eq!(info.sample_rate, 16_000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.bits_per_sample, 16);
        assert_eq!(info.duration, Duration::from_secs(1));
    }

    #[test]
    fn patching_is_idempotent_and_handles_an_empty_data_chunk() {
        let mut wav = piped_wav(0);
        patch_wav_sizes(&mut wav).unwrap();
        let once = wav.clone();
        patch_wav_sizes(&mut wav).unwrap();
        assert_eq!(wav, once);
        assert_eq!(wav_info(&wav).unwrap().duration, Duration::ZERO);
    }

    #[test]
    fn wav_info_clamps_placeholder_sizes() {
        let wav = piped_wav(8_000);
        assert_eq!(wav_info(&wav).unwrap().duration, Duration::from_millis(500));
    }

    #[test]
    fn refuses_what_is_not_a_complete_wav() {
        assert!(patch_wav_sizes(&mut b"OggS\0\0\0\0\0\0\0\0".to_vec()).is_err());
        assert!(patch_wav_sizes(&mut b"RIFF".to_vec()).is_err());
        // Header only, no data chunk.
        let mut no_data = piped_wav(0);
        no_data.truncate(12 + 8 + 16);
        assert!(patch_wav_sizes(&mut no_data).is_err());
        // A chunk claiming more bytes than there are.
        let mut truncated = piped_wav(0);
        truncated[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(patch_wav_sizes(&mut truncated).is_err());
        assert!(wav_info(&truncated).is_none());
    }

    #[test]
    fn checks_output_signatures() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(b"IHDR");
        assert!(check_output(Profile::WebpToPng, &mut png).is_ok());
        assert!(check_output(Profile::WebpToPng, &mut b"GIF89a..".to_vec()).is_err());
        assert!(check_output(Profile::AudioToOpus, &mut b"OggS\0\x02".to_vec()).is_ok());
        assert!(check_output(Profile::AudioToOpus, &mut b"RIFF".to_vec()).is_err());
        assert!(check_output(Profile::VoiceToWav, &mut piped_wav(10)).is_ok());
        let no_audio = check_output(Profile::VoiceToWav, &mut piped_wav(0));
        assert!(no_audio.unwrap_err().contains("without audio"));
        assert!(check_output(Profile::VoiceToWav, &mut png).is_err());
        for profile in Profile::ALL {
            assert_eq!(
                check_output(profile, &mut []),
                Err("empty output".to_string())
            );
        }
    }

    #[test]
    fn maps_mime_types_to_forced_demuxers() {
        use Profile::*;
        let cases = [
            (VoiceToWav, "audio/ogg", Some("ogg")),
            (VoiceToWav, "audio/ogg; codecs=opus", Some("ogg")),
            (VoiceToWav, " Audio/OGG;codecs=opus", Some("ogg")),
            (VoiceToWav, "audio/aac", Some("aac")),
            (VoiceToWav, "audio/amr", Some("amr")),
            (VoiceToWav, "audio/mpeg", Some("mp3")),
            (VoiceToWav, "audio/mp4", Some("mov")),
            (VoiceToWav, "audio/wav", None),
            (VoiceToWav, "image/webp", None),
            (VoiceToWav, "", None),
            (WebpToPng, "image/webp", Some("webp_pipe")),
            (WebpToPng, "image/png", None),
            (AudioToOpus, "audio/wav", Some("wav")),
            (AudioToOpus, "audio/x-wav", Some("wav")),
            (AudioToOpus, "audio/mpeg", Some("mp3")),
            (AudioToOpus, "audio/ogg", None),
            (AudioToOpus, "application/octet-stream", None),
        ];
        for (profile, mime, want) in cases {
            assert_eq!(
                input_format_for(profile, mime).map(InputFormat::demuxer),
                want,
                "{profile} {mime:?}"
            );
        }
    }

    #[test]
    fn args_are_hardened_and_pipe_only() {
        for profile in Profile::ALL {
            for format in [InputFormat::OGG, InputFormat::WEBP, InputFormat::WAV] {
                let args = ffmpeg_args(profile, format);
                let joined = args.join(" ");
                assert!(
                    joined.starts_with(&format!(
                        "-hide_banner -nostdin -loglevel error -protocol_whitelist pipe -f {} -i pipe:0 ",
                        format.demuxer()
                    )),
                    "{joined}"
                );
                assert_eq!(args.last(), Some(&"pipe:1"));
                assert_eq!(args.iter().filter(|a| **a == "-i").count(), 1);
                assert_eq!(
                    args.iter().filter(|a| **a == "-protocol_whitelist").count(),
                    2
                );
                assert!(!args
                    .iter()
                    .any(|a| a.contains("file") || a.contains("http")));
            }
        }
        let wav = ffmpeg_args(Profile::VoiceToWav, InputFormat::OGG).join(" ");
        assert!(wav.contains("-c:a pcm_s16le -ar 16000 -ac 1 -f wav pipe:1"));
        let png = ffmpeg_args(Profile::WebpToPng, InputFormat::WEBP).join(" ");
        assert!(png.contains("-frames:v 1 -c:v png -f image2pipe pipe:1"));
        let opus = ffmpeg_args(Profile::AudioToOpus, InputFormat::MP3).join(" ");
        assert!(opus.contains("-c:a libopus -b:a 32k -ac 1 -ar 48000 -f ogg pipe:1"));
    }
}
