//! Media handling that does not talk to AWS: what ffmpeg is asked to do with customer and
//! agent media, and how its output is checked. The processes themselves are supervised by
//! [`crate::actors::transcoder_pool`].

pub mod transcode;
