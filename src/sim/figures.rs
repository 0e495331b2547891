//! The router's live figures for the console. In local mode the simulator scrapes the
//! router's Prometheus `/metrics` every [`SCRAPE_EVERY`] and publishes a `figures` event
//! when they changed: per actor messages handled, errors, mailbox depth and restarts, the
//! ffmpeg pool, conversations, sessions, queue messages in flight and dead letters
//! (docs/simulator.md lists which series each figure sums).
//!
//! Only the `waconnect_*` series named in `src/metrics.rs` are read; the text format is
//! parsed here because a few lines of it is all that is needed.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::events::names;
use super::sinks::iso_millis;
use super::state::Simulator;
use crate::metrics as m;

/// How often the router's `/metrics` is read.
pub const SCRAPE_EVERY: Duration = Duration::from_secs(2);
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// A larger `/metrics` answer is not read (the router's is a few tens of KiB).
const MAX_METRICS_BYTES: usize = 4 * 1024 * 1024;

impl Simulator {
    /// Local mode: reads the router's Prometheus endpoint `metrics_url` every
    /// [`SCRAPE_EVERY`] and publishes its figures to the console. Stops with the
    /// simulator.
    pub fn watch_router_metrics(self: &Arc<Self>, metrics_url: String) {
        let sim = Arc::downgrade(self);
        tokio::spawn(scrape_loop(sim, metrics_url));
    }

    /// The ffmpeg that encodes customers' voice notes (default: `ffmpeg` on the PATH).
    pub fn set_voice_ffmpeg(&self, path: PathBuf) {
        self.lock().console.ffmpeg = Some(path);
    }
}

async fn scrape_loop(sim: Weak<Simulator>, url: String) {
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(SCRAPE_TIMEOUT)
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "simulator: no HTTP client for the router's metrics");
            return;
        }
    };
    let mut tick = tokio::time::interval(SCRAPE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Value> = None;
    loop {
        tick.tick().await;
        let figures = match scrape(&http, &url).await {
            Ok(text) => figures(&parse(&text)),
            Err(error) => json!({ "router": "down", "error": error }),
        };
        let Some(sim) = sim.upgrade() else { return };
        if last.as_ref() == Some(&figures) {
            continue;
        }
        last = Some(figures.clone());
        let mut published = figures;
        published["at"] = json!(iso_millis(chrono::Utc::now()));
        let mut state = sim.lock();
        state.console.events.publish(names::FIGURES, &published);
        state.console.figures = Some(published);
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http.get(url).send().await.map_err(|e| {
        // The bare kind: reqwest's message names the URL, which the console shows anyway.
        if e.is_connect() {
            "the router's admin address refuses connections".to_string()
        } else if e.is_timeout() {
            "the router's /metrics did not answer in time".to_string()
        } else {
            format!("reading the router's /metrics: {e}")
        }
    })?;
    if !response.status().is_success() {
        return Err(format!(
            "the router's /metrics answered {}",
            response.status()
        ));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_METRICS_BYTES as u64)
    {
        return Err("the router's /metrics answer is too large".into());
    }
    let text = response.text().await.map_err(|e| e.to_string())?;
    if text.len() > MAX_METRICS_BYTES {
        return Err("the router's /metrics answer is too large".into());
    }
    Ok(text)
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a Prometheus text exposition whose names start `waconnect_`; other
/// lines, comments and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("waconnect_"))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"}` -> the pairs and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = text.split_once('=')?;
        let mut chars = after_key.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim().to_string(), value));
        text = &after_key[1 + end + 1..];
    }
}

/// The sum of the matching samples: a JSON integer when it is one (counters, gauges of
/// whole things), so the console shows `3`, not `3.0`.
fn sum(samples: &[Sample], name: &str, filter: impl Fn(&Sample) -> bool) -> Value {
    // Start from +0.0: an empty f64 sum is -0.0.
    let total = samples
        .iter()
        .filter(|s| s.name == name && filter(s))
        .fold(0.0, |acc, s| acc + s.value);
    if total.is_finite() && total.fract() == 0.0 && total.abs() < 9e15 {
        json!(total as i64)
    } else {
        json!(total)
    }
}

/// The console's figures from the router's samples (`"router": "up"`).
pub fn figures(samples: &[Sample]) -> Value {
    let mut actors: Vec<String> = m::ACTORS.iter().map(|a| a.to_string()).collect();
    for sample in samples {
        if let Some(actor) = sample.label("actor") {
            if !actors.iter().any(|a| a == actor) {
                actors.push(actor.to_string());
            }
        }
    }
    let per_actor: Vec<Value> = actors
        .iter()
        .map(|actor| {
            let of = |s: &Sample| s.label("actor") == Some(actor);
            json!({
                "actor": actor,
                "messages": sum(samples, m::ACTOR_MESSAGES, of),
                "errors": sum(samples, m::ACTOR_ERRORS, of),
                "mailbox": sum(samples, m::ACTOR_MAILBOX_DEPTH, of),
                "restarts": sum(samples, m::ACTOR_RESTARTS, of),
            })
        })
        .collect();
    let all = |_: &Sample| true;
    let mut ffmpeg = Map::new();
    for (key, name) in [
        ("warm", m::FFMPEG_POOL_SIZE),
        ("busy", m::FFMPEG_BUSY),
        ("queued", m::FFMPEG_QUEUED),
        ("restarts", m::FFMPEG_CHILD_RESTARTS),
    ] {
        ffmpeg.insert(key.into(), sum(samples, name, all));
    }
    ffmpeg.insert("jobs".into(), sum(samples, m::FFMPEG_JOBS, all));
    ffmpeg.insert(
        "failed".into(),
        sum(samples, m::FFMPEG_JOBS, |s| {
            s.label("outcome") != Some("ok")
        }),
    );
    json!({
        "router": "up",
        "actors": per_actor,
        "ffmpeg": ffmpeg,
        "conversations": sum(samples, m::CONVERSATIONS_ACTIVE, all),
        "sessions": sum(samples, m::SESSIONS_ACTIVE, all),
        "in_flight": sum(samples, m::QUEUE_IN_FLIGHT, all),
        "dead_letters": sum(samples, m::DEAD_LETTERS, all),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP waconnect_actor_messages_total Messages an actor handled, by outcome.
# TYPE waconnect_actor_messages_total counter
waconnect_actor_messages_total{actor="conversation",outcome="ok"} 7
waconnect_actor_messages_total{actor="conversation",outcome="error"} 1
waconnect_actor_messages_total{actor="whatsapp_send",outcome="ok"} 3
waconnect_actor_errors_total{actor="conversation",kind="transient"} 1
waconnect_actor_mailbox_depth{actor="conversation"} 2
waconnect_actor_restarts_total{actor="new_actor"} 1
waconnect_ffmpeg_pool_size 2
waconnect_ffmpeg_busy 1
waconnect_ffmpeg_jobs_total{profile="voice_to_wav",outcome="ok"} 4
waconnect_ffmpeg_jobs_total{profile="voice_to_wav",outcome="timeout"} 1
waconnect_actor_handle_duration_seconds_bucket{actor="conversation",le="+Inf"} 8
waconnect_conversations_active 1
waconnect_dead_letters_total{queue="inbound"} 0
process_cpu_seconds_total 3.5
waconnect_odd{path="a\"b\\c,d}"} 5 1700000000000
waconnect_broken{actor="x" 1
"#;

    #[test]
    fn parses_waconnect_samples_only() {
        let samples = parse(EXPOSITION);
        assert!(samples.iter().all(|s| s.name.starts_with("waconnect_")));
        let odd = samples.iter().find(|s| s.name == "waconnect_odd").unwrap();
        assert_eq!(odd.labels, vec![("path".into(), "a\"b\\c,d}".into())]);
        assert_eq!(odd.value, 5.0);
        assert!(samples.iter().all(|s| s.name != "waconnect_broken"));
        let inf = samples
            .iter()
            .find(|s| s.name.ends_with("_bucket"))
            .unwrap();
        assert_eq!(inf.label("le"), Some("+Inf"));
    }

    #[test]
    fn figures_sum_per_actor_and_the_ffmpeg_pool() {
        let f = figures(&parse(EXPOSITION));
        assert_eq!(f["router"], "up");
        let actor = |name: &str| {
            f["actors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["actor"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(actor("conversation")["messages"], 8);
        assert_eq!(actor("conversation")["errors"], 1);
        assert_eq!(actor("conversation")["mailbox"], 2);
        assert_eq!(actor("whatsapp_send")["messages"], 3);
        assert_eq!(actor("inbound_intake")["messages"].to_string(), "0");
        // An actor the console does not know yet still shows up.
        assert_eq!(actor("new_actor")["restarts"], 1);
        assert_eq!(f["ffmpeg"]["warm"], 2);
        assert_eq!(f["ffmpeg"]["busy"], 1);
        assert_eq!(f["ffmpeg"]["jobs"], 5);
        assert_eq!(f["ffmpeg"]["failed"], 1);
        assert_eq!(f["conversations"], 1);
        assert_eq!(sum(&[], "x", |_| true).to_string(), "0");
    }
}
