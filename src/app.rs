//! Wiring: builds the ports for a mode, starts the actor graph and the admin server, and
//! runs until SIGTERM/SIGINT, then drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::supervisor::{Ports, Supervisor};
use crate::adapters::aws::{
    AwsConnect, DynamoDedupeStore, DynamoSessionStore, EumWhatsApp, S3MediaStore, SqsQueue,
};
use crate::adapters::http::HttpTransfer;
use crate::admin::{self, Readiness};
use crate::config::{AwsResources, Behaviour, ConnectTarget};
use crate::lifecycle::Lifecycle;

/// Fatal start-up or run errors, printed by `main`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Timeouts for calls that are not long polls: a hung Connect or EUM call must fail and
/// be retried rather than hold a customer's conversation forever.
pub fn api_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// SQS long polls wait up to 20 s, so their attempts need more room.
fn queue_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build()
}

/// Loads the standard AWS configuration chain (env, profile, IRSA web identity, ...),
/// including `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` overrides.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Builds every port on AWS SDK clients.
pub fn aws_ports(
    sdk: &SdkConfig,
    resources: &AwsResources,
    target: &ConnectTarget,
    behaviour: &Behaviour,
) -> Result<Ports, AppError> {
    let sqs_config = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(queue_timeouts())
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(sqs_config);
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(api_timeouts())
            .build(),
    );
    let connect = aws_sdk_connect::Client::from_conf(
        aws_sdk_connect::config::Builder::from(sdk)
            .timeout_config(api_timeouts())
            .build(),
    );
    let participant = aws_sdk_connectparticipant::Client::from_conf(
        aws_sdk_connectparticipant::config::Builder::from(sdk)
            .timeout_config(api_timeouts())
            .build(),
    );
    let social = aws_sdk_socialmessaging::Client::from_conf(
        aws_sdk_socialmessaging::config::Builder::from(sdk)
            .timeout_config(api_timeouts())
            .build(),
    );
    let media = behaviour.media.bucket.as_ref().map(|_| {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .timeout_config(api_timeouts())
                // Emulators on an IP address cannot serve virtual-host-style bucket names.
                .force_path_style(
                    sdk.endpoint_url().is_some()
                        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
                )
                .build(),
        );
        Arc::new(S3MediaStore::new(s3)) as Arc<dyn crate::ports::MediaStore>
    });
    if media.is_none() {
        tracing::warn!("no media bucket configured (WACONNECT_MEDIA_BUCKET): files reach agents as a text notice only");
    }
    Ok(Ports {
        inbound_queue: Arc::new(SqsQueue::new(
            sqs.clone(),
            resources.inbound_queue_url.clone(),
            resources.inbound_dlq_url.clone(),
        )),
        connect_queue: Arc::new(SqsQueue::new(
            sqs,
            resources.connect_queue_url.clone(),
            resources.connect_dlq_url.clone(),
        )),
        sessions: Arc::new(DynamoSessionStore::new(
            dynamo.clone(),
            resources.sessions_table.clone(),
        )),
        dedupe: Arc::new(DynamoDedupeStore::new(
            dynamo,
            resources.dedupe_table.clone(),
        )),
        connect: Arc::new(AwsConnect::new(
            connect,
            participant,
            target.clone(),
            behaviour,
        )),
        whatsapp: Arc::new(EumWhatsApp::new(social, behaviour.meta_api_version.clone())),
        media,
        http: http_transfer(behaviour)?,
    })
}

/// The HTTP client for pre-signed URLs, bound to the configured allowlist.
pub fn http_transfer(behaviour: &Behaviour) -> Result<HttpTransfer, AppError> {
    HttpTransfer::new(behaviour.media.url_allowlist.clone())
        .map_err(|e| AppError::Other(format!("cannot build the HTTP client: {e}")))
}

/// Starts the graph and the admin server, waits for a stop signal, drains, and returns.
pub async fn run_router(
    ports: Ports,
    behaviour: Behaviour,
    streaming_topic_arn: String,
    admin_listen: SocketAddr,
    metrics: PrometheusHandle,
) -> Result<(), AppError> {
    let lifecycle = Arc::new(Lifecycle::default());
    let readiness = Readiness {
        lifecycle: lifecycle.clone(),
        queues: vec![
            ("inbound", ports.inbound_queue.clone()),
            ("connect", ports.connect_queue.clone()),
        ],
        sessions: ports.sessions.clone(),
    };
    let admin = admin::bind(admin_listen, metrics, readiness)
        .await
        .map_err(|source| AppError::Listen {
            addr: admin_listen.to_string(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = admin.await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    let grace = behaviour.shutdown_grace;
    let supervisor =
        Supervisor::new(ports, behaviour, streaming_topic_arn, lifecycle.clone()).start();
    tracing::info!(%admin_listen, "waconnect router started");
    wait_for_stop_signal().await;
    drain(&lifecycle, grace).await;
    drop(supervisor);
    Ok(())
}

async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the router");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Stops taking new work and gives in-flight work `grace` to finish. What is not
/// finished stays in its queue (never deleted) and is redelivered to another replica.
async fn drain(lifecycle: &Lifecycle, grace: Duration) {
    lifecycle.start_draining();
    tracing::info!(
        in_flight = lifecycle.in_flight(),
        grace_secs = grace.as_secs(),
        "draining"
    );
    let deadline = Instant::now() + grace;
    while lifecycle.in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = lifecycle.in_flight();
    if left > 0 {
        tracing::warn!(
            left,
            "grace period over; unfinished messages stay in their queues"
        );
    } else {
        tracing::info!("drained; exiting");
    }
}
