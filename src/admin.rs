//! The router's admin HTTP server: `/metrics` (Prometheus), `/healthz` (the process
//! answers) and `/readyz` (actors running, queues and session store reachable, not
//! draining).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::lifecycle::Lifecycle;
use crate::ports::{Queue, SessionStore};

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pub lifecycle: Arc<Lifecycle>,
    pub queues: Vec<(&'static str, Arc<dyn Queue>)>,
    pub sessions: Arc<dyn SessionStore>,
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn render_metrics(State(state): State<AdminState>) -> String {
    state.metrics.render()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    let r = &state.readiness;
    if r.lifecycle.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into());
    }
    if !r.lifecycle.actors_running() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "actors not running\n".into(),
        );
    }
    for (name, queue) in &r.queues {
        match tokio::time::timeout(CHECK_TIMEOUT, queue.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{name} queue: {e}\n"),
                )
            }
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{name} queue: timed out\n"),
                )
            }
        }
    }
    match tokio::time::timeout(CHECK_TIMEOUT, r.sessions.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("session store: {e}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "session store: timed out\n".into(),
        ),
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
        .with_state(AdminState { metrics, readiness });
    Ok(async move { axum::serve(listener, app).await })
}
