//! The simulator: a protocol-faithful fake of Amazon Connect, Connect Participant and AWS
//! End User Messaging Social, answering the REST-JSON requests the official AWS SDK
//! clients send, plus a JSON control API (`/sim/...`) with which tests play the customer
//! and the agent.
//!
//! Production adapters run unchanged against it (endpoint overridden the standard way),
//! so tests exercise the real wire format. Customer events go out through an
//! [`InboundSink`]; chat items are streamed through a [`ChatStreamSink`], as Connect's
//! contact streaming does.
//!
//! Every change (customer messages, what the business sent, chat items and state, AWS
//! calls, the router's figures in local mode) is also published on an event bus that
//! `GET /sim/events` streams as Server-Sent Events, and that the browser console at `/`
//! (`src/console/`) shows.

mod attachments;
mod connect;
mod console;
mod control;
mod events;
mod faults;
mod figures;
mod files;
mod identity;
mod media;
mod participant;
mod routes;
pub mod sinks;
mod sse;
mod state;
mod stream;
mod voice;
mod webhook;
mod whatsapp;
mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::BehaviorVersion;

pub use attachments::{ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES};
pub use console::CONSOLE_CSP;
pub use events::names as event_names;
pub use faults::OPERATIONS;
pub use identity::SimIdentity;
pub use media::{extension_for_mime, MAX_CUSTOMER_MEDIA_BYTES};
pub use routes::{AWS_BODY_LIMIT, CONTROL_BODY_LIMIT, MEDIA_BODY_LIMIT};
pub use sinks::{
    sns_envelope, MemoryChatStreamSink, MemoryInboundSink, SnsChatStreamSink, SnsInboundSink,
    SqsInboundSink, DEFAULT_INBOUND_TOPIC_ARN,
};
pub use state::{CallRecord, InboxEntry, Item, ItemAttachment, Simulator};
pub use whatsapp::UNKNOWN_CUSTOMER;
pub use wire::{AwsError, ControlError};

use crate::adapters::aws::S3MediaStore;
use crate::ports::{ChatStreamSink, InboundSink};

/// AWS endpoints and the `/sim` control API on one router.
pub fn router(sim: Arc<Simulator>) -> axum::Router {
    routes::router(sim)
}

/// Serves the simulator on `listener` until the server stops.
pub async fn serve(listener: tokio::net::TcpListener, sim: Arc<Simulator>) -> std::io::Result<()> {
    axum::serve(listener, router(sim)).await
}

/// `waconnect sim`: the simulator as its own process, delivering through SQS/SNS.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (AWS endpoints and /sim control API).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQS queue that receives customer WhatsApp events (what EUM -> SNS -> SQS delivers).
    #[arg(long, env = "WACONNECT_SIM_INBOUND_QUEUE_URL")]
    pub inbound_queue_url: String,
    /// Publish customer events to this SNS topic instead (its subscription wraps them);
    /// raw bodies still go to the queue.
    #[arg(long, env = "WACONNECT_SIM_INBOUND_TOPIC_ARN")]
    pub inbound_topic_arn: Option<String>,
    /// Put EUM events on the queue without the SNS envelope (SNS raw message delivery).
    /// Only used without --inbound-topic-arn.
    #[arg(long, env = "WACONNECT_SIM_RAW_DELIVERY")]
    pub raw_delivery: bool,
    /// Do not report business messages as delivered.
    #[arg(long)]
    pub no_statuses: bool,
}

/// Why the standalone simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator server failed: {0}")]
    Serve(std::io::Error),
}

/// Runs the simulator with SDK clients from the standard AWS configuration (endpoints from
/// `AWS_ENDPOINT_URL` as usual; S3 then by path) until ctrl-c.
pub async fn run_standalone(args: SimArgs) -> Result<(), SimError> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let queue = SqsInboundSink::new(
        aws_sdk_sqs::Client::new(&config),
        args.inbound_queue_url.clone(),
        args.raw_delivery,
    );
    let sns = aws_sdk_sns::Client::new(&config);
    let inbound: Arc<dyn InboundSink> = match args.inbound_topic_arn.clone() {
        Some(topic_arn) => Arc::new(SnsInboundSink {
            client: sns.clone(),
            topic_arn,
            queue: Some(queue),
        }),
        None => Arc::new(queue),
    };
    let stream: Arc<dyn ChatStreamSink> = Arc::new(SnsChatStreamSink { client: sns });
    // GetWhatsAppMessageMedia writes customer media into the caller's S3 bucket.
    let media = Arc::new(S3MediaStore::from_sdk_config(&config));
    let sim = Simulator::with_media(
        SimIdentity::default(),
        inbound,
        stream,
        !args.no_statuses,
        media,
    );

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(%addr, via_topic = args.inbound_topic_arn.is_some(), "simulator listening");
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("simulator: ctrl-c, shutting down");
        })
        .await
        .map_err(SimError::Serve)
}
