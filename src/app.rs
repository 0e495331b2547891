//! Wiring: builds the ports for a mode, starts the actor graph and the admin server, and
//! runs until SIGTERM/SIGINT, then drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::supervisor::{Adapters, InjectFault, Supervisor};
use crate::adapters::aws::{
    AwsConnect, DynamoDedupeStore, DynamoSessionStore, EumWhatsApp, S3MediaStore, SqsQueue,
};
use crate::adapters::http::HttpTransfer;
use crate::admin::{self, Readiness};
use crate::config::{AwsResources, Behaviour, ConnectTarget};
use crate::lifecycle::Lifecycle;
use crate::ports::{Queue, QueueInfo};

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

/// Builds every adapter on AWS SDK clients.
pub fn aws_adapters(
    sdk: &SdkConfig,
    resources: &AwsResources,
    target: &ConnectTarget,
    behaviour: &Behaviour,
) -> Result<Adapters, AppError> {
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
    let social = whatsapp_client(sdk);
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
    let dedupe = Arc::new(DynamoDedupeStore::new(
        dynamo.clone(),
        resources.dedupe_table.clone(),
    ));
    let fifo = |queue: &Option<String>, dlq: &Option<String>| {
        queue.as_ref().zip(dlq.as_ref()).map(|(queue, dlq)| {
            Arc::new(SqsQueue::new(sqs.clone(), queue.clone(), dlq.clone())) as Arc<dyn Queue>
        })
    };
    let transcriber = transcriber(sdk, behaviour)?;
    Ok(Adapters {
        transcriber,
        inbound_fifo: fifo(
            &resources.inbound_fifo_queue_url,
            &resources.inbound_fifo_dlq_url,
        ),
        connect_fifo: fifo(
            &resources.connect_fifo_queue_url,
            &resources.connect_fifo_dlq_url,
        ),
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
        dedupe: dedupe.clone(),
        leases: dedupe,
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

/// The EUM client. Its SDK retries are off: SendWhatsAppMessage has no idempotency token,
/// so a retry after a lost answer can give the customer a second copy. The retry policy
/// decides instead, and counts every send repeated after such a failure.
pub fn whatsapp_client(sdk: &SdkConfig) -> aws_sdk_socialmessaging::Client {
    aws_sdk_socialmessaging::Client::from_conf(
        aws_sdk_socialmessaging::config::Builder::from(sdk)
            .timeout_config(api_timeouts())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// Amazon Transcribe Streaming, when transcription is on (endpoint from the standard AWS
/// configuration, e.g. `AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING`; an extra CA to trust from
/// `transcribe_ca_file`).
pub fn transcriber(
    sdk: &SdkConfig,
    behaviour: &Behaviour,
) -> Result<Option<Arc<dyn crate::ports::Transcriber>>, AppError> {
    let Some(settings) = &behaviour.transcription else {
        return Ok(None);
    };
    let transcriber =
        crate::adapters::aws::AwsTranscriber::from_sdk_config(sdk, settings.ca_file.as_deref())
            .map_err(|e| AppError::Other(e.to_string()))?;
    Ok(Some(Arc::new(transcriber)))
}

/// The HTTP client for pre-signed URLs, bound to the configured allowlist.
pub fn http_transfer(behaviour: &Behaviour) -> Result<HttpTransfer, AppError> {
    HttpTransfer::new(behaviour.media.url_allowlist.clone())
        .map_err(|e| AppError::Other(format!("cannot build the HTTP client: {e}")))
}

/// Reads a queue's settings; a queue that cannot be read gets the defaults (and a warning):
/// its own calls will fail and be retried the usual way.
async fn queue_info(name: &str, queue: &Arc<dyn Queue>) -> Option<QueueInfo> {
    match queue.info().await {
        Ok(info) => Some(info),
        Err(e) => {
            tracing::warn!(queue = name, error = %e, "cannot read the queue's settings; assuming defaults");
            None
        }
    }
}

/// Warns where a queue's redrive policy disagrees with the retry policy.
async fn check_queue_settings(adapters: &Adapters, behaviour: &Behaviour) {
    let mut queues = vec![
        ("inbound", adapters.inbound_queue.clone()),
        ("connect", adapters.connect_queue.clone()),
    ];
    queues.extend(adapters.inbound_fifo.clone().map(|q| ("inbound_fifo", q)));
    queues.extend(adapters.connect_fifo.clone().map(|q| ("connect_fifo", q)));
    let limit = behaviour.retry.dead_letter_after_receives;
    for (name, queue) in queues {
        match queue_info(name, &queue).await.and_then(|i| i.max_receive_count) {
            Some(max) if max <= limit => tracing::warn!(
                queue = name,
                max_receive_count = max,
                dead_letter_after_receives = limit,
                "the queue's redrive maxReceiveCount is not above dead_letter_after_receives: SQS may dead-letter messages without a reason before waconnect gives up"
            ),
            _ => {}
        }
    }
}

/// Starts the graph and the admin server, waits for a stop signal, drains, and returns.
pub async fn run_router(
    adapters: Adapters,
    behaviour: Behaviour,
    streaming_topic_arn: String,
    admin_listen: SocketAddr,
    metrics: PrometheusHandle,
) -> Result<(), AppError> {
    let lifecycle = Arc::new(Lifecycle::default());
    let fault_hooks: admin::FaultHooks = Arc::new(std::sync::OnceLock::new());
    let readiness = Readiness {
        lifecycle: lifecycle.clone(),
        queues: vec![
            ("inbound", adapters.inbound_queue.clone()),
            ("connect", adapters.connect_queue.clone()),
        ],
        sessions: adapters.sessions.clone(),
        fault_hooks: behaviour
            .supervision
            .fault_hooks
            .then(|| fault_hooks.clone()),
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
    if behaviour.supervision.fault_hooks {
        tracing::warn!(
            "WACONNECT_FAULT_HOOKS=1: test fault hooks are enabled; never use this in production"
        );
    }
    if adapters.inbound_fifo.is_none() || adapters.connect_fifo.is_none() {
        tracing::warn!("no FIFO queue configured for one direction: per-customer order holds within this replica only (see docs/delivery.md)");
    }
    let grace = behaviour.shutdown_grace;
    check_queue_settings(&adapters, &behaviour).await;
    let supervisor =
        Supervisor::new(adapters, behaviour, streaming_topic_arn, lifecycle.clone()).start();
    let _ = fault_hooks.set(supervisor.clone().recipient::<InjectFault>());
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

/// Stops taking new work and gives in-flight work `grace` to finish. Long polls in
/// progress are let return (what they bring is handed straight back); whatever is still
/// unfinished at the end is handed back to its queue, visible at once, so another replica
/// takes it now rather than after its visibility timeout.
async fn drain(lifecycle: &Lifecycle, grace: Duration) {
    lifecycle.start_draining();
    tracing::info!(
        in_flight = lifecycle.in_flight(),
        grace_secs = grace.as_secs(),
        "draining"
    );
    let deadline = Instant::now() + grace;
    while (lifecycle.in_flight() > 0 || lifecycle.receives_in_progress() > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = lifecycle.in_flight();
    if left > 0 {
        let released = lifecycle.release_held().await;
        tracing::warn!(
            left,
            released,
            "grace period over; unfinished messages handed back to their queues"
        );
    } else {
        tracing::info!("drained; exiting");
    }
}
