//! The router's admin HTTP server: `/metrics` (Prometheus), `/healthz` (liveness: the
//! supervisor is checking its children and no actor is past its restart budget) and
//! `/readyz` (every actor running, queues and session store reachable, not draining).
//!
//! With `WACONNECT_FAULT_HOOKS=1` (tests only) it also serves
//! `POST /debug/actors/{actor}/panic` and `POST /debug/actors/{actor}/hang`, which make a
//! supervised actor die or get stuck for real, so supervision can be tested end to end.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Recipient;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::supervisor::InjectFault;
use crate::lifecycle::Lifecycle;
use crate::ports::{Queue, SessionStore};
use crate::supervision::Fault;

/// Where the test fault hooks reach the supervisor (set once it has started).
pub type FaultHooks = Arc<OnceLock<Recipient<InjectFault>>>;

/// What `/readyz` and `/healthz` check.
#[derive(Clone)]
pub struct Readiness {
    pub lifecycle: Arc<Lifecycle>,
    pub queues: Vec<(&'static str, Arc<dyn Queue>)>,
    pub sessions: Arc<dyn SessionStore>,
    /// Present only when the test fault hooks are enabled.
    pub fault_hooks: Option<FaultHooks>,
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The supervisor checks every 500 ms; silence this long means it is gone or blocked.
const SUPERVISOR_SILENCE_NOT_READY: Duration = Duration::from_secs(5);
const SUPERVISOR_SILENCE_UNHEALTHY: Duration = Duration::from_secs(15);

async fn render_metrics(State(state): State<AdminState>) -> String {
    state.metrics.render()
}

fn unavailable(why: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", why.into()))
}

async fn healthz(State(state): State<AdminState>) -> (StatusCode, String) {
    let lifecycle = &state.readiness.lifecycle;
    match lifecycle.since_supervisor_beat() {
        None => return (StatusCode::OK, "starting\n".into()),
        Some(silence) if silence > SUPERVISOR_SILENCE_UNHEALTHY => {
            return unavailable(format!(
                "the supervisor has not checked its actors for {}s",
                silence.as_secs()
            ))
        }
        Some(_) => {}
    }
    match lifecycle.unhealthy() {
        Some(why) => unavailable(why),
        None => (StatusCode::OK, "ok\n".into()),
    }
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    let r = &state.readiness;
    if r.lifecycle.is_draining() {
        return unavailable("draining");
    }
    match r.lifecycle.since_supervisor_beat() {
        Some(silence) if silence <= SUPERVISOR_SILENCE_NOT_READY => {}
        _ => return unavailable("supervisor not running"),
    }
    if !r.lifecycle.graph_whole() {
        return unavailable("an actor is being restarted");
    }
    for (name, queue) in &r.queues {
        match tokio::time::timeout(CHECK_TIMEOUT, queue.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return unavailable(format!("{name} queue: {e}")),
            Err(_) => return unavailable(format!("{name} queue: timed out")),
        }
    }
    match tokio::time::timeout(CHECK_TIMEOUT, r.sessions.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(e)) => unavailable(format!("session store: {e}")),
        Err(_) => unavailable("session store: timed out"),
    }
}

async fn inject(
    State(state): State<AdminState>,
    Path((actor, fault)): Path<(String, String)>,
) -> (StatusCode, String) {
    let Some(hooks) = &state.readiness.fault_hooks else {
        return (StatusCode::NOT_FOUND, "fault hooks are disabled\n".into());
    };
    let fault = match fault.as_str() {
        "panic" => Fault::Panic,
        "hang" => Fault::Hang,
        _ => return (StatusCode::NOT_FOUND, "faults: panic, hang\n".into()),
    };
    let Some(supervisor) = hooks.get() else {
        return unavailable("supervisor not started");
    };
    match supervisor.send(InjectFault { actor, fault }).await {
        Ok(true) => (StatusCode::ACCEPTED, "injected\n".into()),
        Ok(false) => (StatusCode::NOT_FOUND, "no such actor\n".into()),
        Err(e) => unavailable(format!("supervisor: {e}")),
    }
}

/// Binds the admin server; the returned future serves until the process ends.
pub async fn bind(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    readiness: Readiness,
) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // Histograms and gauges need periodic upkeep by the exporter.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/debug/actors/{actor}/{fault}", post(inject))
        .with_state(AdminState { metrics, readiness });
    Ok(async move { axum::serve(listener, app).await })
}
