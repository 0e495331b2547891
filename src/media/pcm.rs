//! Raw PCM out of a WAV file, cut into chunks for a streaming speech service.
//!
//! Amazon Transcribe Streaming takes PCM (signed 16-bit little-endian), not WAV: the RIFF
//! header must not reach it as audio. The header is walked chunk by chunk (`fmt `, then
//! whatever ffmpeg or another writer put before `data`: `LIST`, `fact`, ...) rather than
//! assumed to be 44 bytes. The bytes come from customers (through ffmpeg, but still):
//! every size is checked against what is really there, and a file that is not what it
//! claims gives a [`WavError`] saying why, never a panic.

use std::time::Duration;

use bytes::Bytes;

/// Lowest and highest sample rates Transcribe Streaming accepts for PCM.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 48_000;

/// Chunks walked before `data` at most; real files have two or three.
const MAX_CHUNKS: usize = 64;

/// The `data` size a writer leaves when it cannot seek back (ffmpeg on a pipe): "runs to
/// the end of the file".
const SIZE_UNKNOWN: u32 = u32::MAX;

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why a WAV cannot be streamed as PCM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file (starts {0})")]
    NotWave(String),
    #[error("WAV chunk {id:?} at byte {at} declares {declared} bytes but only {available} follow")]
    ChunkOverrun {
        id: String,
        at: usize,
        declared: u64,
        available: u64,
    },
    #[error("WAV header cut short at byte {0}")]
    Truncated(usize),
    #[error("WAV has no \"fmt \" chunk before its audio")]
    NoFormat,
    #[error("WAV has no \"data\" chunk")]
    NoData,
    #[error("WAV has more than {MAX_CHUNKS} chunks before its audio")]
    TooManyChunks,
    #[error("WAV format not supported: {0} (need PCM, 16-bit, mono, 8-48 kHz)")]
    Unsupported(String),
    #[error("WAV holds no audio")]
    Empty,
}

/// Mono 16-bit little-endian PCM samples and their rate. Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PcmAudio {
    samples: Bytes,
    sample_rate: u32,
}

// The samples are a customer's voice: never print them.
impl std::fmt::Debug for PcmAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcmAudio")
            .field("bytes", &self.samples.len())
            .field("sample_rate", &self.sample_rate)
            .finish()
    }
}

/// What the `fmt ` chunk says, as far as streaming cares.
struct Format {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    bits: u16,
}

impl PcmAudio {
    /// The PCM inside `wav`, without copying it. Only mono 16-bit PCM at 8-48 kHz is
    /// accepted (what the TranscoderPool writes: 16 kHz). A trailing half sample is
    /// dropped; a `data` size of 0xFFFFFFFF (a writer that could not seek back) means
    /// "to the end of the file".
    pub fn from_wav(wav: Bytes) -> Result<Self, WavError> {
        if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
            return Err(WavError::NotWave(head_hex(&wav)));
        }
        let mut format: Option<Format> = None;
        let mut pos = 12usize;
        for _ in 0..MAX_CHUNKS {
            let header = wav
                .get(pos..pos.saturating_add(8))
                .ok_or(if format.is_some() {
                    WavError::NoData
                } else {
                    WavError::NoFormat
                })?;
            let id = [header[0], header[1], header[2], header[3]];
            let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let body = pos + 8;
            let available = wav.len() - body;
            if &id == b"data" {
                let format = format.ok_or(WavError::NoFormat)?;
                let len = if declared == SIZE_UNKNOWN {
                    available
                } else if declared as usize > available {
                    return Err(overrun(id, pos, declared, available));
                } else {
                    declared as usize
                };
                return Self::from_data(wav.slice(body..body + len), &format);
            }
            if declared as usize > available {
                return Err(overrun(id, pos, declared, available));
            }
            if &id == b"fmt " {
                format = Some(read_format(&wav[body..body + declared as usize], body)?);
            }
            // Chunk bodies are padded to an even length.
            pos = body + declared as usize + (declared as usize & 1);
        }
        Err(WavError::TooManyChunks)
    }

    fn from_data(data: Bytes, format: &Format) -> Result<Self, WavError> {
        let pcm = format.tag == FORMAT_PCM || format.tag == FORMAT_EXTENSIBLE;
        if !pcm || format.bits != 16 || format.channels != 1 || format.block_align != 2 {
            return Err(WavError::Unsupported(format!(
                "format tag {:#06x}, {} bits, {} channel(s), block align {}",
                format.tag, format.bits, format.channels, format.block_align
            )));
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&format.sample_rate) {
            return Err(WavError::Unsupported(format!(
                "sample rate {} Hz",
                format.sample_rate
            )));
        }
        let whole = data.len() - data.len() % 2;
        if whole == 0 {
            return Err(WavError::Empty);
        }
        Ok(Self {
            samples: data.slice(..whole),
            sample_rate: format.sample_rate,
        })
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The PCM bytes (2 per sample).
    pub fn bytes(&self) -> &Bytes {
        &self.samples
    }

    /// How long the audio plays.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / self.bytes_per_second() as f64)
    }

    fn bytes_per_second(&self) -> u64 {
        u64::from(self.sample_rate) * 2
    }

    /// Bytes of whole samples in `duration` of audio, at least one sample.
    fn bytes_for(&self, duration: Duration) -> usize {
        let samples = (duration.as_secs_f64() * f64::from(self.sample_rate)).floor() as usize;
        samples.max(1).saturating_mul(2)
    }

    /// The first `max` of the audio, and whether anything was cut off.
    pub fn truncated(&self, max: Duration) -> (PcmAudio, bool) {
        let keep = self.bytes_for(max).min(self.samples.len());
        let cut = keep < self.samples.len();
        let audio = PcmAudio {
            samples: self.samples.slice(..keep),
            sample_rate: self.sample_rate,
        };
        (audio, cut)
    }

    /// The audio in consecutive chunks of `each` (the last one shorter), sharing the
    /// bytes. Every chunk holds whole samples.
    pub fn chunks(&self, each: Duration) -> impl Iterator<Item = Bytes> + Send + Sync + 'static {
        let size = self.bytes_for(each);
        let samples = self.samples.clone();
        (0..samples.len())
            .step_by(size)
            .map(move |start| samples.slice(start..(start + size).min(samples.len())))
    }
}

fn overrun(id: [u8; 4], at: usize, declared: u32, available: usize) -> WavError {
    WavError::ChunkOverrun {
        id: String::from_utf8_lossy(&id).into_owned(),
        at,
        declared: u64::from(declared),
        available: available as u64,
    }
}

fn read_format(body: &[u8], at: usize) -> Result<Format, WavError> {
    if body.len() < 16 {
        return Err(WavError::Truncated(at + body.len()));
    }
    let le16 = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
    let mut tag = le16(0);
    if tag == FORMAT_EXTENSIBLE {
        // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the
        // SubFormat GUID, 24 bytes into the extension.
        if body.len() < 40 {
            return Err(WavError::Truncated(at + body.len()));
        }
        if le16(24) != FORMAT_PCM {
            return Err(WavError::Unsupported(format!(
                "extensible format with sub-format {:#06x}",
                le16(24)
            )));
        }
        tag = FORMAT_PCM;
    }
    Ok(Format {
        tag,
        channels: le16(2),
        sample_rate: u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
        block_align: le16(12),
        bits: le16(14),
    })
}

/// First bytes in hex, for error messages (never the content itself).
fn head_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A WAV of `samples` mono 16-bit samples at `rate`, for tests: a `LIST` chunk (odd
/// size, so padded) sits between `fmt ` and `data`, as ffmpeg writes it.
#[doc(hidden)]
pub fn test_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let mut w = Vec::new();
    let data_len = (samples.len() * 2) as u32;
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(4 + 24 + 14 + 8 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVE");
    w.extend_from_slice(b"fmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"LIST");
    w.extend_from_slice(&5u32.to_le_bytes());
    w.extend_from_slice(b"INFOx\0");
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, n: usize) -> Vec<u8> {
        let samples: Vec<i16> = (0..n).map(|i| (i % 3000) as i16 - 1500).collect();
        test_wav(rate, &samples)
    }

    fn parse(bytes: Vec<u8>) -> Result<PcmAudio, WavError> {
        PcmAudio::from_wav(Bytes::from(bytes))
    }

    /// Where the `data` chunk's body starts in [`test_wav`]'s layout.
    const DATA_AT: usize = 12 + 24 + 14 + 8;

    #[test]
    fn skips_every_chunk_before_the_samples() {
        let bytes = wav(16_000, 16_000);
        let audio = parse(bytes.clone()).unwrap();
        assert_eq!(audio.sample_rate(), 16_000);
        assert_eq!(audio.bytes().len(), 32_000);
        assert_eq!(&audio.bytes()[..], &bytes[DATA_AT..]);
        assert_eq!(audio.duration(), Duration::from_secs(1));
    }

    #[test]
    fn chunks_are_100_ms_of_whole_samples_and_cover_everything_once() {
        let audio = parse(wav(16_000, 16_000 + 1)).unwrap();
        let chunks: Vec<Bytes> = audio.chunks(Duration::from_millis(100)).collect();
        assert_eq!(chunks.len(), 11);
        assert!(chunks[..10].iter().all(|c| c.len() == 3_200));
        assert_eq!(chunks[10].len(), 2);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(&joined[..], &audio.bytes()[..]);
        // At 8 kHz, 100 ms is 1600 bytes.
        let narrow = parse(wav(8_000, 8_000)).unwrap();
        assert!(narrow
            .chunks(Duration::from_millis(100))
            .all(|c| c.len() == 1_600));
    }

    #[test]
    fn truncation_keeps_the_first_seconds() {
        let audio = parse(wav(16_000, 16_000 * 3)).unwrap();
        let (first, cut) = audio.truncated(Duration::from_secs(2));
        assert!(cut);
        assert_eq!(first.duration(), Duration::from_secs(2));
        assert_eq!(&first.bytes()[..], &audio.bytes()[..64_000]);
        let (all, cut) = audio.truncated(Duration::from_secs(10));
        assert!(!cut);
        assert_eq!(all, audio);
    }

    #[test]
    fn placeholder_data_size_runs_to_the_end_and_half_samples_are_dropped() {
        let mut bytes = wav(16_000, 100);
        bytes[DATA_AT - 4..DATA_AT].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes.push(0x7f); // half a sample
        let audio = parse(bytes).unwrap();
        assert_eq!(audio.bytes().len(), 200);
    }

    #[test]
    fn extensible_pcm_is_accepted_and_other_sub_formats_are_not() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        bytes.extend_from_slice(&40u32.to_le_bytes());
        let mut fmt = vec![0u8; 40];
        fmt[0..2].copy_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        fmt[2..4].copy_from_slice(&1u16.to_le_bytes());
        fmt[4..8].copy_from_slice(&16_000u32.to_le_bytes());
        fmt[12..14].copy_from_slice(&2u16.to_le_bytes());
        fmt[14..16].copy_from_slice(&16u16.to_le_bytes());
        fmt[24..26].copy_from_slice(&FORMAT_PCM.to_le_bytes());
        bytes.extend_from_slice(&fmt);
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 0, 2, 0]);
        assert_eq!(parse(bytes.clone()).unwrap().bytes().len(), 4);
        bytes[20 + 24] = 3; // IEEE float
        assert!(matches!(parse(bytes), Err(WavError::Unsupported(_))));
    }

    #[test]
    fn hostile_headers_are_clear_errors() {
        let good = wav(16_000, 10);
        type Case = (&'static str, Vec<u8>, fn(&WavError) -> bool);
        let cases: Vec<Case> = vec![
            ("empty", vec![], |e| matches!(e, WavError::NotWave(_))),
            ("ogg", b"OggS\0\x02\0\0\0\0\0\0".to_vec(), |e| {
                matches!(e, WavError::NotWave(_))
            }),
            ("riff only", good[..12].to_vec(), |e| {
                matches!(e, WavError::NoFormat)
            }),
            ("fmt cut", good[..30].to_vec(), |e| {
                matches!(e, WavError::ChunkOverrun { .. })
            }),
            ("no data", good[..DATA_AT - 8].to_vec(), |e| {
                matches!(e, WavError::NoData)
            }),
            ("header only", wav(16_000, 0), |e| {
                matches!(e, WavError::Empty)
            }),
            ("data cut", good[..DATA_AT + 3].to_vec(), |e| {
                matches!(e, WavError::ChunkOverrun { .. })
            }),
            (
                "huge data size",
                {
                    let mut b = good.clone();
                    b[DATA_AT - 4..DATA_AT].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
                    b
                },
                |e| {
                    matches!(
                        e,
                        WavError::ChunkOverrun {
                            declared: 0x7fff_fff0,
                            ..
                        }
                    )
                },
            ),
            (
                "huge LIST size",
                {
                    let mut b = good.clone();
                    b[40..44].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
                    b
                },
                |e| matches!(e, WavError::ChunkOverrun { .. }),
            ),
            (
                "short fmt",
                {
                    let mut b = good.clone();
                    b[16..20].copy_from_slice(&8u32.to_le_bytes());
                    b
                },
                |e| matches!(e, WavError::Truncated(_)),
            ),
            ("stereo", set16(&good, 22, 2), |e| {
                matches!(e, WavError::Unsupported(_))
            }),
            ("8-bit", set16(&good, 34, 8), |e| {
                matches!(e, WavError::Unsupported(_))
            }),
            ("a-law", set16(&good, 20, 6), |e| {
                matches!(e, WavError::Unsupported(_))
            }),
            ("96 kHz", set32(&good, 24, 96_000), |e| {
                matches!(e, WavError::Unsupported(_))
            }),
            ("0 Hz", set32(&good, 24, 0), |e| {
                matches!(e, WavError::Unsupported(_))
            }),
            ("data before fmt", data_first(), |e| {
                matches!(e, WavError::NoFormat)
            }),
            ("endless chunks", endless_chunks(), |e| {
                matches!(e, WavError::TooManyChunks)
            }),
        ];
        for (name, bytes, expected) in cases {
            match parse(bytes) {
                Ok(audio) => panic!("{name}: accepted as {audio:?}"),
                Err(e) => {
                    assert!(expected(&e), "{name}: unexpected error {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    fn set16(b: &[u8], at: usize, v: u16) -> Vec<u8> {
        let mut b = b.to_vec();
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        b
    }

    fn set32(b: &[u8], at: usize, v: u32) -> Vec<u8> {
        let mut b = b.to_vec();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    }

    fn data_first() -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEdata".to_vec();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b
    }

    fn endless_chunks() -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        for _ in 0..100 {
            b.extend_from_slice(b"junk\0\0\0\0");
        }
        b
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every prefix and a byte flip at every header position.
        let good = wav(16_000, 20);
        for end in 0..good.len() {
            let _ = parse(good[..end].to_vec());
        }
        for at in 0..DATA_AT {
            for value in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = value;
                let _ = parse(b);
            }
        }
    }
}
