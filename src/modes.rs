//! The three ways to run waconnect: `run` (AWS), `sim` (simulator alone) and `local`
//! (router + simulator in one process, in-process queues, embedded store).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

use crate::actors::supervisor::Adapters;
use crate::adapters::aws::{AwsConnect, EumWhatsApp};
use crate::adapters::local::{EmbeddedStore, LocalMediaDir, MemoryQueue};
use crate::app::{self, AppError};
use crate::cli::{LocalArgs, RunArgs};
use crate::config::{Behaviour, ConnectTarget};
use crate::domain::UrlAllowlist;
use crate::sim::{self, SimArgs, SimIdentity, Simulator};

/// Local mode's fixed Connect identifiers: the simulator accepts any.
const LOCAL_INSTANCE_ID: &str = "00000000-0000-4000-8000-00000000c0de";
const LOCAL_FLOW_ID: &str = "00000000-0000-4000-8000-0000000f1000";
const LOCAL_STREAMING_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:waconnect-local-stream";
/// Local mode's media "bucket": a folder under `<data_dir>/media`.
const LOCAL_MEDIA_BUCKET: &str = "local";
/// Local mode's allowlist: the embedded simulator serves every URL on loopback.
const LOCAL_URL_ALLOWLIST: &str = "http://127.0.0.1:*,http://localhost:*,http://[::1]:*";
/// In-process queues redeliver unfinished messages after this long, as SQS would.
const LOCAL_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// Local mode's media store: `<data_dir>/media`, linked through the simulator at
/// `sim_url`. The simulator and the router must share this one instance, so the links
/// the router presigns are the files the simulator serves (and GetWhatsAppMessageMedia
/// writes where the router reads).
pub fn local_media_store(data_dir: &Path, sim_url: &str) -> Arc<LocalMediaDir> {
    Arc::new(LocalMediaDir::new(data_dir.join("media"), sim_url))
}

fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, AppError> {
    crate::metrics::install().map_err(|e| AppError::Other(format!("metrics: {e}")))
}

pub async fn run(args: RunArgs) -> Result<(), AppError> {
    let settings = args.settings.merged_with_file(args.config.as_deref())?;
    let (resources, target, behaviour) = settings.resolve()?;
    let metrics = install_metrics()?;
    crate::config::label_business_numbers(&target.business_numbers);
    let sdk = app::load_aws_config().await;
    if sdk.region().is_none() {
        return Err(AppError::Other(
            "missing setting AWS region: set AWS_REGION (or a profile with a region)".into(),
        ));
    }
    let adapters = app::aws_adapters(&sdk, &resources, &target, &behaviour)?;
    app::run_router(
        adapters,
        behaviour,
        target.streaming_topic_arn,
        args.admin_listen,
        metrics,
    )
    .await
}

pub async fn sim(args: SimArgs) -> Result<(), AppError> {
    sim::run_standalone(args)
        .await
        .map_err(|e| AppError::Other(e.to_string()))
}

pub async fn local(args: LocalArgs) -> Result<(), AppError> {
    let mut behaviour = Behaviour::from_settings(&args.behaviour)?;
    // Local media lives under the data dir ("bucket" = a folder) and every URL is the
    // simulator's, on loopback http.
    if behaviour.media.bucket.is_none() {
        behaviour.media.bucket = Some(LOCAL_MEDIA_BUCKET.into());
    }
    if args.behaviour.url_allowlist.is_none() {
        behaviour.media.url_allowlist = UrlAllowlist::parse(LOCAL_URL_ALLOWLIST)
            .map_err(|e| AppError::Other(format!("local allowlist: {e}")))?;
    }
    let metrics = install_metrics()?;
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        AppError::Other(format!(
            "cannot create data dir {}: {e}",
            args.data_dir.display()
        ))
    })?;
    let store = EmbeddedStore::open(&args.data_dir.join("waconnect.redb"))
        .map_err(|e| AppError::Other(e.to_string()))?;

    // The same stages as production with FIFO queues: what the simulator delivers is
    // regrouped per customer into in-process FIFO queues, served one group at a time.
    let inbound = Arc::new(MemoryQueue::new("inbound", LOCAL_VISIBILITY_TIMEOUT));
    let connect_events = Arc::new(MemoryQueue::new("connect", LOCAL_VISIBILITY_TIMEOUT));
    let inbound_fifo = Arc::new(MemoryQueue::fifo("inbound.fifo", LOCAL_VISIBILITY_TIMEOUT));
    let connect_fifo = Arc::new(MemoryQueue::fifo("connect.fifo", LOCAL_VISIBILITY_TIMEOUT));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: args.listen.to_string(),
            source,
        })?;
    let sim_url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| AppError::Other(e.to_string()))?
    );
    let media_dir = local_media_store(&args.data_dir, &sim_url);
    let simulator = Simulator::with_local_media(
        SimIdentity {
            business_numbers: args.business_numbers.into(),
            ..SimIdentity::default()
        },
        Arc::new(sim::sinks::MemoryInboundSink::new(inbound.clone())),
        Arc::new(sim::sinks::MemoryChatStreamSink::new(
            connect_events.clone(),
        )),
        true,
        media_dir.clone(),
    );
    // The console (GET /): voice notes through the router's ffmpeg, the router's figures.
    simulator.set_voice_ffmpeg(behaviour.media.ffmpeg_path.clone());
    simulator.watch_router_metrics(format!("http://{}/metrics", args.admin_listen));
    // Plain HTTP and TLS on one port; the Transcriber reaches `transcribe.url` trusting
    // `transcribe.ca_file`.
    let ca_file = args.data_dir.join(sim::LOCAL_CA_FILE);
    let _transcribe = sim::spawn_local(listener, simulator, &ca_file)
        .map_err(|e| AppError::Other(e.to_string()))?;
    tracing::info!(simulator = %sim_url, "local mode: console at {sim_url}/ (control API under /sim)");

    // The production SDK clients, pointed at the embedded simulator.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&sim_url)
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "waconnect-local",
        ))
        .timeout_config(app::api_timeouts())
        .load()
        .await;
    let target = ConnectTarget::single(LOCAL_INSTANCE_ID, LOCAL_FLOW_ID, LOCAL_STREAMING_TOPIC);
    let store = Arc::new(store);
    let adapters = Adapters {
        inbound_queue: inbound,
        connect_queue: connect_events,
        inbound_fifo: Some(inbound_fifo),
        connect_fifo: Some(connect_fifo),
        sessions: store.clone(),
        dedupe: store.clone(),
        leases: store,
        connect: Arc::new(AwsConnect::new(
            aws_sdk_connect::Client::new(&sdk),
            aws_sdk_connectparticipant::Client::new(&sdk),
            target.clone(),
            &behaviour,
        )),
        whatsapp: Arc::new(EumWhatsApp::new(
            app::whatsapp_client(&sdk),
            behaviour.meta_api_version.clone(),
        )),
        media: Some(media_dir as Arc<dyn crate::ports::MediaStore>),
        http: app::http_transfer(&behaviour)?,
    };
    app::run_router(
        adapters,
        behaviour,
        target.streaming_topic_arn,
        args.admin_listen,
        metrics,
    )
    .await
}
