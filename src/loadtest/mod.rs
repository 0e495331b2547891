//! `waconnect loadtest`: per-actor and end-to-end load runs for sizing a deployment.
//!
//! - `loadtest actor <name>` drives one actor with in-memory ports ([`ports`]) whose
//!   latency is configurable ([`actors`]);
//! - `loadtest e2e` drives the whole graph through the simulator's control API, embedded
//!   (in-process queues and store, as `waconnect local`) or an external one ([`e2e`]).
//!
//! Both send at `--rate` per second or as fast as `--concurrency` allows, stop after
//! `--duration` or `--messages`, wait for what is still in flight, and print msgs/s,
//! latency percentiles (HdrHistogram), CPU seconds per 1,000 messages and peak RSS of the
//! process measured, and the high-water marks of the queues in front of the actors
//! ([`measure`]). Everything they talk to is on loopback. docs/performance.md has the
//! figures and the commands that produced them.

pub mod actors;
pub mod e2e;
pub mod measure;
pub mod ports;

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::app::AppError;
pub use measure::{Meter, Report};
use ports::{Distribution, Latency};

/// Longest a run waits, after it stopped sending, for what is still in flight.
const DRAIN: Duration = Duration::from_secs(10);
/// Most messages sent and not answered at once when sending at a rate (a run whose target
/// falls that far behind measures the backlog, not the target).
const MAX_OUTSTANDING: usize = 50_000;

#[derive(Debug, Args)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum Target {
    /// Drive one actor alone with in-memory ports: inbound_intake, conversation,
    /// connect_upload, whatsapp_send, connect_event_intake, media_download,
    /// transcoder_pool.
    Actor(actors::ActorArgs),
    /// Drive the whole graph through the simulator (embedded, or `--sim URL`).
    E2e(e2e::E2eArgs),
}

/// How much to send, how fast, for how long; shared by every mode.
#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Messages per second; without it, open loop: as fast as `--concurrency` allows.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send (humantime: `30s`, `2m`, `1m 30s`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Stop after this many messages (whichever of this and `--duration` comes first).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Messages in flight at once in open loop (default 64; transcoder_pool: its
    /// workers, so what is in flight is what runs).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Print one JSON object (the last line of standard output) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Latency of the in-memory ports (`loadtest actor`).
#[derive(Debug, Clone, Args)]
pub struct PortLatency {
    /// Mean latency of every in-memory port call, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub port_latency_ms: f64,
    /// How port latencies spread around the mean.
    #[arg(long, value_enum, default_value_t = Distribution::Exponential)]
    pub latency_distribution: Distribution,
}

impl PortLatency {
    pub fn latency(&self) -> Latency {
        Latency {
            mean: Duration::from_secs_f64(self.port_latency_ms.max(0.0) / 1000.0),
            distribution: self.latency_distribution,
        }
    }
}

/// The actors `loadtest actor` can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ActorName {
    InboundIntake,
    Conversation,
    ConnectUpload,
    WhatsappSend,
    ConnectEventIntake,
    MediaDownload,
    TranscoderPool,
}

impl ActorName {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorName::InboundIntake => "inbound_intake",
            ActorName::Conversation => "conversation",
            ActorName::ConnectUpload => "connect_upload",
            ActorName::WhatsappSend => "whatsapp_send",
            ActorName::ConnectEventIntake => "connect_event_intake",
            ActorName::MediaDownload => "media_download",
            ActorName::TranscoderPool => "transcoder_pool",
        }
    }
}

/// `waconnect loadtest ...`
pub async fn run(args: LoadtestArgs) -> Result<(), AppError> {
    let (report, json) = match args.target {
        Target::Actor(a) => {
            let json = a.load.json;
            (actors::run(a).await?, json)
        }
        Target::E2e(a) => {
            let json = a.load.json;
            (e2e::run(a).await?, json)
        }
    };
    if json {
        let line = serde_json::to_string(&report).map_err(|e| AppError::Other(e.to_string()))?;
        println!("{line}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// A live progress line on a terminal (standard error); hidden otherwise.
fn progress(load: &Load) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(load.duration.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Sends `load` worth of messages with `send(n)` (each resolves when message `n` is
/// done, with `Ok(latency)`, or failed), recording into `meter`; `watch` is called every
/// 100 ms (high-water marks). Returns once everything sent has answered or [`DRAIN`]
/// passed.
pub async fn drive<F, Fut>(load: &Load, meter: Arc<Meter>, send: F, mut watch: impl FnMut(&Meter))
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Duration, String>> + Send + 'static,
{
    let bar = progress(load);
    let started = Instant::now();
    let limit = load.messages.unwrap_or(u64::MAX);
    let in_flight = Arc::new(Semaphore::new(match load.rate {
        Some(_) => MAX_OUTSTANDING,
        None => load.concurrency.unwrap_or(64).max(1),
    }));
    let interval = load
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next_at = tokio::time::Instant::now();
    let mut last_watch = Instant::now();
    let mut n = 0;
    let mut failures_logged = 0;
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    while n < limit && started.elapsed() < load.duration {
        if let Some(interval) = interval {
            tokio::time::sleep_until(next_at).await;
            next_at += interval;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        meter.sent();
        let fut = send(n);
        let (meter2, errors2) = (meter.clone(), errors.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match fut.await {
                Ok(took) => meter2.completed(took),
                Err(e) => {
                    meter2.failed();
                    errors2.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                }
            }
        });
        n += 1;
        if last_watch.elapsed() >= Duration::from_millis(100) {
            last_watch = Instant::now();
            watch(&meter);
            bar.set_message(format!(
                "{} sent, {} done, {} failed, {} in flight, {:.0} msgs/s",
                n,
                meter.completed.load(std::sync::atomic::Ordering::Relaxed),
                meter.failed.load(std::sync::atomic::Ordering::Relaxed),
                meter.outstanding(),
                meter.completed.load(std::sync::atomic::Ordering::Relaxed) as f64
                    / started.elapsed().as_secs_f64().max(0.001),
            ));
        }
    }
    let drain_until = Instant::now() + DRAIN;
    while meter.outstanding() > 0 && Instant::now() < drain_until {
        watch(&meter);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch(&meter);
    bar.finish_and_clear();
    for e in errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        if failures_logged < 5 {
            tracing::warn!(error = %e, "load test message failed");
            failures_logged += 1;
        }
    }
}

/// Refuses an address that is not on loopback: load runs never leave the machine.
pub fn ensure_loopback(url: &str) -> Result<(), AppError> {
    let parsed = url::Url::parse(url).map_err(|e| AppError::Other(format!("{url}: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(AppError::Other(format!(
            "{url} is not a loopback address: load tests only talk to this machine (127.0.0.0/8, ::1, localhost)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        for ok in [
            "http://127.0.0.1:4566",
            "http://127.1.2.3",
            "http://[::1]:80/x",
            "http://localhost:8080",
        ] {
            assert!(ensure_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1",
            "http://192.168.1.2:80",
            "https://example.com",
            "http://0.0.0.0:80",
        ] {
            assert!(ensure_loopback(bad).is_err(), "{bad}");
        }
    }
}
