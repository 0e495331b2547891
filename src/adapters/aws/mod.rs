//! Port implementations on the official AWS SDK clients.

pub mod call;
mod connect;
mod dynamodb;
mod sqs;
mod whatsapp;

pub use connect::AwsConnect;
pub use dynamodb::{DynamoDedupeStore, DynamoSessionStore, CUSTOMER_INDEX};
pub use sqs::SqsQueue;
pub use whatsapp::EumWhatsApp;
