//! docs/metrics.md against what `/metrics` really exports after traffic through the real
//! clients (moto, the simulator, real ffmpeg): every exported metric is in the index with
//! its type and labels, every metric of the index is exported, and every AWS operation the
//! router called is in the operations table. Generic on purpose: a metric added to the
//! router without a line in docs/metrics.md fails here, and the failure lists it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";

/// One metric family as `/metrics` renders it.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// Families by name from the Prometheus text format (`# TYPE` lines and samples).
fn exported(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            families.entry(name.to_string()).or_default().kind = kind.to_string();
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let sample = &line[..name_end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| sample.strip_suffix(s))
                .filter(|base| families.get(*base).is_some_and(|f| f.kind == "histogram"))
                .unwrap_or(sample);
            let entry = families.entry(family.to_string()).or_default();
            if let Some(labels) = line[name_end..].strip_prefix('{') {
                let labels = &labels[..labels.rfind('}').unwrap_or(labels.len())];
                for pair in split_labels(labels) {
                    if let Some((key, _)) = pair.split_once('=') {
                        if key != "le" {
                            entry.labels.insert(key.to_string());
                        }
                    }
                }
            }
        }
    }
    families
}

/// `a="x",b="y,z"` -> [`a="x"`, `b="y,z"`] (commas inside quoted values stay).
fn split_labels(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// The index of docs/metrics.md: `| [`name`](#..) | type | labels |` rows.
fn documented(doc: &str) -> BTreeMap<String, Family> {
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with("[`waconnect_") {
            continue;
        }
        let name = cells[1].trim_start_matches("[`").split('`').next().unwrap();
        let labels = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        out.insert(
            name.to_string(),
            Family {
                kind: cells[2].to_string(),
                labels,
            },
        );
    }
    out
}

/// The AWS operations table of docs/metrics.md: `| `service` | `Op`, `Op` ... |`.
fn documented_operations(doc: &str) -> BTreeSet<(String, String)> {
    let section = doc
        .split("### waconnect_aws_calls_total")
        .nth(1)
        .expect("docs/metrics.md has a waconnect_aws_calls_total section");
    let section = section.split("\n### ").next().unwrap();
    let mut out = BTreeSet::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let service = cells[1].trim_matches('`');
        for op in cells[2].split('`').skip(1).step_by(2) {
            out.insert((service.to_string(), op.to_string()));
        }
    }
    out
}

/// `(service, operation)` of every exported `waconnect_aws_calls_total` sample.
fn exported_operations(text: &str) -> BTreeSet<(String, String)> {
    let label = |line: &str, key: &str| {
        let start = line.find(&format!("{key}=\""))? + key.len() + 2;
        Some(line[start..start + line[start..].find('"')?].to_string())
    };
    text.lines()
        .filter(|l| l.starts_with("waconnect_aws_calls_total{"))
        .filter_map(|l| Some((label(l, "service")?, label(l, "operation")?)))
        .collect()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PNG, and a spoken WAV with its OGG/Opus voice-note encoding (espeak-ng, ffmpeg).
fn media(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let ffmpeg = |args: &[&str], out: &str| {
        let path = dir.join(out);
        run(Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&path));
        std::fs::read(path).unwrap()
    };
    let png = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=48x48",
            "-frames:v",
            "1",
        ],
        "x.png",
    );
    let wav_path = dir.join("spoken.wav");
    run(Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav_path)
        .arg("Hola, necesito ayuda"));
    let wav = std::fs::read(&wav_path).unwrap();
    let ogg = ffmpeg(
        &["-i", wav_path.to_str().unwrap(), "-c:a", "libopus"],
        "voice.ogg",
    );
    (png, wav, ogg)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_metrics_md_lists_exactly_what_metrics_exports_after_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (png, wav, ogg) = media(dir.path());
    let w = World::start("metrics_doc").await;

    // Both directions, files both ways (S3, EUM media, ffmpeg), and a broken message.
    w.customer_says(ANA, "hola").await;
    let contact = contact_id(&w.wait_for_chat(ANA).await);
    for (kind, mime, bytes) in [
        ("image", "image/png", &png),
        ("audio", "audio/ogg; codecs=opus", &ogg),
    ] {
        let mut body = json!({});
        if kind == "audio" {
            body["voice"] = json!(true);
        }
        w.sim
            .send_message(
                ANA,
                json!({"type": kind, kind: body, "profile_name": "Ana",
                       "media": {"content_base64": b64(bytes), "mime_type": mime}}),
            )
            .await;
    }
    w.sim.agent_says(&contact, "¿En qué te ayudo?").await;
    w.sim
        .agent_says_with(
            &contact,
            json!({"attachment": {"name": "nota.wav", "content_type": "audio/wav",
                   "content_base64": b64(&wav)}}),
        )
        .await;
    let broken = "not json at all";
    w.sim.send_raw(broken).await;

    let sim = &w.sim;
    wait_for("two attachments in the chat", FLOW_DEADLINE, async || {
        let chat = sim.chat(&contact).await.unwrap_or_default();
        let n = items_of_type(&chat, "ATTACHMENT").len();
        (n >= 2).then_some(()).ok_or(format!("{n} attachment(s)"))
    })
    .await;
    wait_for(
        "the agent's audio and text in the inbox",
        FLOW_DEADLINE,
        async || {
            let inbox = sim.inbox(ANA).await;
            let audio = inbox.iter().any(|m| m["type"] == "audio");
            let text = inbox_texts(&inbox).iter().any(|t| t.contains("te ayudo"));
            (audio && text).then_some(()).ok_or(format!("{inbox:?}"))
        },
    )
    .await;
    w.wait_dead_lettered(broken).await;
    w.wait_queue_drained(&w.res.inbound_queue_url).await;
    w.wait_connect_stream_drained().await;

    let text = w.router.metrics().await;
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .expect("docs/metrics.md");
    let (got, want) = (exported(&text), documented(&doc));
    let ours: BTreeMap<_, _> = got
        .iter()
        .filter(|(name, _)| name.starts_with("waconnect_"))
        .collect();
    assert!(ours.len() > 10, "too few waconnect_* metrics: {text}");

    let mut problems = Vec::new();
    for (name, family) in &ours {
        match want.get(*name) {
            None => problems.push(format!(
                "exported but not in docs/metrics.md's index: {name} ({}, labels {:?})",
                family.kind, family.labels
            )),
            Some(doc) => {
                if !doc.kind.starts_with(&family.kind) {
                    problems.push(format!(
                        "{name}: exported as a {}, documented as a {}",
                        family.kind, doc.kind
                    ));
                }
                let undocumented: Vec<_> = family.labels.difference(&doc.labels).collect();
                if !undocumented.is_empty() {
                    problems.push(format!(
                        "{name}: labels {undocumented:?} exported but not documented (index lists {:?})",
                        doc.labels
                    ));
                }
            }
        }
    }
    for name in want.keys() {
        if !ours.contains_key(name) {
            problems.push(format!(
                "in docs/metrics.md's index but never exported: {name}"
            ));
        }
    }
    let documented_ops = documented_operations(&doc);
    for (service, op) in exported_operations(&text) {
        if !documented_ops.contains(&(service.clone(), op.clone())) {
            problems.push(format!(
                "AWS operation {service} {op} called but not in docs/metrics.md's operations table"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/metrics.md and /metrics disagree:\n  {}",
        problems.join("\n  ")
    );
}
