//! The simulator: a protocol-faithful fake of Amazon Connect, Connect Participant, AWS
//! End User Messaging Social and Amazon Transcribe Streaming, answering the requests the
//! official AWS SDK clients send (REST-JSON; for Transcribe, event-stream frames over
//! HTTP/2), plus a JSON control API (`/sim/...`) with which tests play the customer and
//! the agent and set what transcriptions answer.
//!
//! Production adapters run unchanged against it (endpoint overridden the standard way),
//! so tests exercise the real wire format. HTTP/2 needs TLS with the SDK's client, so
//! [`serve_tls`] serves TLS (certificate made at start-up, [`SimTls`]) and plain HTTP on
//! one port. Customer events go out through an
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
mod tls;
mod transcribe;
mod voice;
mod webhook;
mod whatsapp;
mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::BehaviorVersion;

pub use attachments::{ALLOWED_EXTENSIONS, MAX_ATTACHMENT_BYTES};
pub use console::CONSOLE_CSP;
pub use events::names as event_names;
pub use faults::OPERATIONS;
pub use identity::{BusinessNumber, SimIdentity, MAX_BUSINESS_NUMBERS};
pub use media::{extension_for_mime, MAX_CUSTOMER_MEDIA_BYTES};
pub use routes::{AWS_BODY_LIMIT, CONTROL_BODY_LIMIT, MEDIA_BODY_LIMIT};
pub use sinks::{
    sns_envelope, MemoryChatStreamSink, MemoryInboundSink, SnsChatStreamSink, SnsInboundSink,
    SqsInboundSink, DEFAULT_INBOUND_TOPIC_ARN,
};
pub use state::{CallRecord, InboxEntry, Item, ItemAttachment, Simulator};
pub use tls::{SimConn, SimListener, SimTls, TlsSetupError};
pub use transcribe::{Counters, StreamRecord, TranscribeSetting, STREAM_EXCEPTIONS};
/// The EUM event of a customer message, as the simulator publishes it (load tests).
pub(crate) use webhook::customer_message_event as webhook_event;
pub use whatsapp::UNKNOWN_CUSTOMER;
pub use wire::{AwsError, ControlError};

use crate::adapters::aws::S3MediaStore;
use crate::ports::{ChatStreamSink, InboundSink};

/// AWS endpoints and the `/sim` control API on one router.
pub fn router(sim: Arc<Simulator>) -> axum::Router {
    routes::router(sim)
}

/// Serves the simulator on `listener` (plain HTTP only) until the server stops.
pub async fn serve(listener: tokio::net::TcpListener, sim: Arc<Simulator>) -> std::io::Result<()> {
    axum::serve(listener, router(sim)).await
}

/// Serves the simulator on `listener` with plain HTTP and TLS on the same port (HTTP/2
/// or HTTP/1.1 by ALPN; what Transcribe Streaming's client needs) until the server stops.
/// `GET /sim/tls/ca.pem` then answers the CA to trust.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    sim: Arc<Simulator>,
    tls: &SimTls,
) -> std::io::Result<()> {
    let listener = SimListener::new(listener, tls)?;
    let _ = sim.tls_ca.set(tls.ca_pem().to_string());
    axum::serve(listener, router(sim)).await
}

/// Where the router reaches the simulator's Transcribe Streaming endpoint, and the CA it
/// must trust for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscribeEndpoint {
    /// `https://<address>`: the value for `AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING`.
    pub url: String,
    /// PEM file holding the simulator's CA.
    pub ca_file: PathBuf,
}

/// Where local mode writes the simulator's CA, under its data directory.
pub const LOCAL_CA_FILE: &str = "sim-ca.pem";

/// Local mode's simulator: makes its certificate, writes the CA to `ca_file`, and serves
/// plain HTTP and TLS on `listener` in the background. Answers how to reach Transcribe.
pub fn spawn_local(
    listener: tokio::net::TcpListener,
    sim: Arc<Simulator>,
    ca_file: &Path,
) -> Result<TranscribeEndpoint, SimError> {
    let mut addr = listener.local_addr().map_err(SimError::Serve)?;
    // Listening on every interface: dial loopback, which the certificate names.
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        addr.set_ip(loopback);
    }
    let tls = SimTls::generate(&[])?;
    tls.write_ca(ca_file).map_err(|source| SimError::WriteCa {
        path: ca_file.to_path_buf(),
        source,
    })?;
    tokio::spawn(async move {
        if let Err(e) = serve_tls(listener, sim, &tls).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(TranscribeEndpoint {
        url: format!("https://{addr}"),
        ca_file: ca_file.to_path_buf(),
    })
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
    /// Write the CA certificate of the simulator's TLS endpoint here (PEM). TLS is served
    /// on the --listen port next to plain HTTP; Transcribe Streaming is reached at
    /// https://<listen address>, and the router trusts this file for it.
    #[arg(long, env = "WACONNECT_SIM_TLS_CA_OUT")]
    pub tls_ca_out: Option<PathBuf>,
    /// Extra DNS name or IP address for the TLS certificate, besides localhost,
    /// 127.0.0.1 and ::1 (repeatable).
    #[arg(long = "tls-name")]
    pub tls_names: Vec<String>,
    /// How many WhatsApp business numbers the simulated business owns
    /// (`GET /sim/business-numbers` lists them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_BUSINESS_NUMBERS as i64))]
    pub business_numbers: u16,
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
    #[error("simulator TLS: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("cannot write the simulator's CA to {path}: {source}")]
    WriteCa {
        path: PathBuf,
        source: std::io::Error,
    },
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
        SimIdentity {
            business_numbers: args.business_numbers.into(),
            ..SimIdentity::default()
        },
        inbound,
        stream,
        !args.no_statuses,
        media,
    );

    let tls = SimTls::generate(&args.tls_names)?;
    if let Some(path) = &args.tls_ca_out {
        tls.write_ca(path).map_err(|source| SimError::WriteCa {
            path: path.clone(),
            source,
        })?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(args.listen);
    let listener = SimListener::new(listener, &tls).map_err(SimError::Serve)?;
    let _ = sim.tls_ca.set(tls.ca_pem().to_string());
    tracing::info!(
        %addr,
        via_topic = args.inbound_topic_arn.is_some(),
        tls_ca = ?args.tls_ca_out,
        "simulator listening (plain HTTP and TLS; Transcribe Streaming at https://{addr})"
    );
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("simulator: ctrl-c, shutting down");
        })
        .await
        .map_err(SimError::Serve)
}
