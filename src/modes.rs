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
    let metrics = install_metrics()?;
    let graph = local_graph(
        args.listen,
        &args.data_dir,
        &args.behaviour,
        args.business_numbers,
    )
    .await?;
    // The console's figures: the router's /metrics.
    graph
        .simulator
        .watch_router_metrics(format!("http://{}/metrics", args.admin_listen));
    tracing::info!(simulator = %graph.sim_url, "local mode: console at {}/ (control API under /sim)", graph.sim_url);
    app::run_router(
        graph.adapters,
        graph.behaviour,
        graph.target.streaming_topic_arn,
        args.admin_listen,
        metrics,
    )
    .await
}

/// Router and simulator in one process, ready to start: what `waconnect local` runs and
/// `waconnect loadtest e2e` drives.
pub struct LocalGraph {
    pub adapters: Adapters,
    pub behaviour: Behaviour,
    pub target: ConnectTarget,
    pub simulator: Arc<Simulator>,
    /// `http://<address the simulator listens on>`.
    pub sim_url: String,
    /// The in-process queues the simulator delivers to (before the FIFO stage).
    pub inbound: Arc<MemoryQueue>,
    pub connect_events: Arc<MemoryQueue>,
}

/// Starts the simulator on `listen` (plain HTTP and TLS) and builds the router's adapters
/// on in-process queues, the embedded store under `data_dir` and the production SDK
/// clients pointed at the simulator.
pub async fn local_graph(
    listen: std::net::SocketAddr,
    data_dir: &Path,
    settings: &crate::config::BehaviourSettings,
    business_numbers: u16,
) -> Result<LocalGraph, AppError> {
    let mut behaviour = Behaviour::from_settings(settings)?;
    // Local media lives under the data dir ("bucket" = a folder) and every URL is the
    // simulator's, on loopback http.
    if behaviour.media.bucket.is_none() {
        behaviour.media.bucket = Some(LOCAL_MEDIA_BUCKET.into());
    }
    if settings.url_allowlist.is_none() {
        behaviour.media.url_allowlist = UrlAllowlist::parse(LOCAL_URL_ALLOWLIST)
            .map_err(|e| AppError::Other(format!("local allowlist: {e}")))?;
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        AppError::Other(format!(
            "cannot create data dir {}: {e}",
            data_dir.display()
        ))
    })?;
    let store = EmbeddedStore::open(&data_dir.join("waconnect.redb"))
        .map_err(|e| AppError::Other(e.to_string()))?;

    // The same stages as production with FIFO queues: what the simulator delivers is
    // regrouped per customer into in-process FIFO queues, served one group at a time.
    let inbound = Arc::new(MemoryQueue::new("inbound", LOCAL_VISIBILITY_TIMEOUT));
    let connect_events = Arc::new(MemoryQueue::new("connect", LOCAL_VISIBILITY_TIMEOUT));
    let inbound_fifo = Arc::new(MemoryQueue::fifo("inbound.fifo", LOCAL_VISIBILITY_TIMEOUT));
    let connect_fifo = Arc::new(MemoryQueue::fifo("connect.fifo", LOCAL_VISIBILITY_TIMEOUT));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let sim_url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| AppError::Other(e.to_string()))?
    );
    let media_dir = local_media_store(data_dir, &sim_url);
    let simulator = Simulator::with_local_media(
        SimIdentity {
            business_numbers: business_numbers.into(),
            ..SimIdentity::default()
        },
        Arc::new(sim::sinks::MemoryInboundSink::new(inbound.clone())),
        Arc::new(sim::sinks::MemoryChatStreamSink::new(
            connect_events.clone(),
        )),
        true,
        media_dir.clone(),
    );
    // The console (GET /): voice notes through the router's ffmpeg.
    simulator.set_voice_ffmpeg(behaviour.media.ffmpeg_path.clone());
    // Plain HTTP and TLS on one port; the Transcriber reaches `transcribe.url` trusting
    // `transcribe.ca_file`.
    let ca_file = data_dir.join(sim::LOCAL_CA_FILE);
    let transcribe = sim::spawn_local(listener, simulator.clone(), &ca_file)
        .map_err(|e| AppError::Other(e.to_string()))?;

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
        inbound_queue: inbound.clone(),
        connect_queue: connect_events.clone(),
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
        // Transcribe Streaming is the simulator's too, over TLS with the CA it just made.
        transcriber: {
            if let Some(t) = behaviour.transcription.as_mut() {
                t.ca_file.get_or_insert(transcribe.ca_file.clone());
            }
            let transcribe_sdk = sdk.to_builder().endpoint_url(&transcribe.url).build();
            app::transcriber(&transcribe_sdk, &behaviour)?
        },
        http: app::http_transfer(&behaviour)?,
    };
    Ok(LocalGraph {
        adapters,
        behaviour,
        target,
        simulator,
        sim_url,
        inbound,
        connect_events,
    })
}
