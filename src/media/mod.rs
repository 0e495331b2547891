//! Media handling that does not talk to AWS: what ffmpeg is asked to do with customer and
//! agent media, how its output is checked, and the PCM inside a WAV for transcription.
//! The processes themselves are supervised by [`crate::actors::transcoder_pool`].

pub mod pcm;
pub mod transcode;
