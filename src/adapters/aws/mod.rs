//! Port implementations on the official AWS SDK clients.

pub mod call;
mod connect;
mod dynamodb;
mod s3;
mod sqs;
mod transcribe;
mod whatsapp;

pub use connect::AwsConnect;
pub use dynamodb::{DynamoDedupeStore, DynamoSessionStore, CUSTOMER_INDEX};
pub use s3::S3MediaStore;
pub use sqs::SqsQueue;
pub use transcribe::{AwsTranscriber, TranscriberSetupError};
pub use whatsapp::EumWhatsApp;
