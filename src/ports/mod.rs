//! Ports: the small async traits behind which every external system sits.
//!
//! Actors only see these traits, so the same actor code runs against AWS in production,
//! against moto + the simulator in tests, and against in-process adapters in local mode.

mod connect;
mod error;
mod media;
mod queue;
mod store;
pub mod transcribe;
mod whatsapp;

pub use connect::{AttachmentUpload, ConnectChat, NewChatRequest, StartedChat};
pub use error::{ErrorKind, PortError, PortResult};
pub use media::MediaStore;
pub use queue::{ChatStreamSink, InboundSink, OutgoingMessage, Queue, QueueInfo, QueueMessage};
pub use store::{
    Claim, DedupeStore, LeaseStore, Session, SessionStore, CHANNEL_WHATSAPP, ENDED_SESSION_KEEP,
};
pub use transcribe::{
    append_capped, Language, LanguageCode, TranscribeError, TranscribeRequest, Transcriber,
    Transcript,
};
pub use whatsapp::{MediaInfo, WhatsApp};
