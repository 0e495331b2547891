//! The fault suite: `waconnect run` + moto + the simulator under faults, each scenario
//! sized to prove its point, each printing one summary line
//! (`FAULT-SUITE scenario=... sent= delivered= duplicated= out_of_order= dead_lettered=`);
//! docs/reliability.md collects the figures.
//!
//! - 10% of every simulator operation throttled or failing, plus latency spikes;
//! - the same with faults on the AWS side too (the tests' own proxy in front of moto);
//! - a Connect outage of two minutes, then recovery;
//! - the router SIGKILLed mid-load, then restarted;
//! - hung and crashing ffmpeg children during the load;
//! - a poison message;
//! - actors made to panic and hang for real (test fault hooks), and a drain;
//! - answers of WhatsApp sends lost on the way back (suspected duplicates counted).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::fault_proxy::{FaultProxy, FaultRule};
use common::traffic::*;
use common::*;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(300);

/// Test-time retry policy: the production curve, compressed.
const FAST_RETRIES: [(&str, &str); 2] = [
    ("WACONNECT_RETRY_BASE_MS", "100"),
    ("WACONNECT_RETRY_MAX_DELAY_MS", "2000"),
];

async fn world(name: &str, fifo: bool, env: &[(&str, &str)]) -> World {
    let mut all: Vec<(&str, &str)> = FAST_RETRIES.to_vec();
    all.extend_from_slice(env);
    World::start_with(
        name,
        Opts {
            fifo,
            ..Default::default()
        },
        &all,
    )
    .await
}

/// 10% of every simulator operation answers throttling or a 5xx, 2% wait 1.5 s.
async fn flaky_simulator(sim: &Sim) {
    for fault in [
        json!({"operation": "*", "error": "ThrottlingException", "rate": 0.05}),
        json!({"operation": "*", "error": "InternalServerException", "rate": 0.05}),
        json!({"operation": "*", "latency_ms": 1500, "rate": 0.02}),
    ] {
        sim.add_fault(fault).await;
    }
}

/// A 1x1 PNG.
fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A spoken WhatsApp voice note (espeak-ng, then OGG/Opus).
fn voice_note(dir: &Path) -> Vec<u8> {
    let wav = dir.join("spoken.wav");
    let ogg = dir.join("voice.ogg");
    let ok = Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("hola necesito ayuda")
        .status()
        .expect("espeak-ng")
        .success()
        && Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(&wav)
            .args(["-c:a", "libopus", "-b:a", "24k"])
            .arg(&ogg)
            .status()
            .expect("ffmpeg")
            .success();
    assert!(ok, "could not make a voice note");
    std::fs::read(ogg).unwrap()
}

/// Customers `0..n` send texts `0..per` (customers listed in `with_image` send an image
/// captioned with their text number `per / 2` instead of that text).
async fn load(sim: &Sim, customers: &[String], per: usize, with_image: &[String]) -> Sent {
    let image = png();
    let sends = customers.iter().map(|c| {
        let image = &image;
        async move {
            let mut lines = Vec::new();
            for seq in 0..per {
                let text = numbered(c, seq);
                if seq == per / 2 && with_image.contains(c) {
                    sim.send_message(
                        c,
                        json!({"type": "image", "image": {"caption": text},
                               "media": {"content_base64": b64(image), "mime_type": "image/png"}}),
                    )
                    .await;
                } else {
                    sim.send_text(c, &text).await;
                }
                lines.push(text);
            }
            (c.clone(), lines)
        }
    });
    Sent {
        lines: futures::future::join_all(sends).await.into_iter().collect(),
    }
}

fn check(scenario: &str, tally: &Tally, problems: &[String], dead: &[QueueMessage]) {
    println!("{}", tally.summary(scenario, dead.len()));
    for p in problems.iter().take(20) {
        println!("  {p}");
    }
    assert_eq!(tally.missing, 0, "{scenario}: lost messages");
    assert_eq!(tally.duplicated, 0, "{scenario}: duplicates: {problems:?}");
    assert_eq!(tally.out_of_order, 0, "{scenario}: order: {problems:?}");
    assert!(dead.is_empty(), "{scenario}: dead-lettered: {dead:?}");
}

async fn attachments_in_chats(sim: &Sim) -> usize {
    sim.chats()
        .await
        .iter()
        .map(|c| items_of_type(c, "ATTACHMENT").len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_simulator_loses_duplicates_and_reorders_nothing() {
    let w = world("faults_flaky_simulator", true, &[]).await;
    flaky_simulator(&w.sim).await;
    let customers: Vec<String> = (0..50).map(|i| customer(10, i)).collect();
    let sent = load(&w.sim, &customers, 10, &customers[..10]).await;
    let (tally, problems) = wait_inbound(&w.sim, &sent, DEADLINE).await;
    let replies = agents_reply(&w.sim, &customers[..20], 0, 3).await;
    let (out, out_problems) = wait_outbound(&w.sim, &replies, DEADLINE).await;
    wait_for("the ten images", DEADLINE, async || {
        attachments_in_chats(&w.sim).await >= 10
    })
    .await;
    let dead = dead_letters(&w.res).await;
    check("flaky_simulator_inbound", &tally, &problems, &dead);
    check("flaky_simulator_outbound", &out, &out_problems, &dead);
    assert_eq!(attachments_in_chats(&w.sim).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_on_the_aws_side_too_lose_nothing() {
    let endpoint = aws_endpoint();
    let proxy = FaultProxy::start(&endpoint).await;
    // Resets before forwarding, 5xx and delays everywhere; answers lost after the call
    // took effect only where that is not a receive (a lost ReceiveMessage answer hides its
    // messages for the visibility timeout, which no client can tell from a crash).
    proxy.set_rules(vec![
        FaultRule {
            matches: "AmazonSQS.ReceiveMessage".into(),
            error_rate: 0.03,
            reset_rate: 0.03,
            delay_rate: 0.05,
            delay: Duration::from_millis(800),
            ..Default::default()
        },
        FaultRule {
            matches: String::new(),
            error_rate: 0.03,
            reset_rate: 0.03,
            drop_answer_rate: 0.02,
            delay_rate: 0.05,
            delay: Duration::from_millis(800),
        },
    ]);
    let w = world(
        "faults_aws_side",
        true,
        &[
            ("AWS_ENDPOINT_URL_SQS", &proxy.url),
            ("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url),
        ],
    )
    .await;
    flaky_simulator(&w.sim).await;
    let customers: Vec<String> = (0..50).map(|i| customer(11, i)).collect();
    let sent = load(&w.sim, &customers, 10, &customers[..10]).await;
    let (tally, problems) = wait_inbound(&w.sim, &sent, DEADLINE).await;
    let replies = agents_reply(&w.sim, &customers[..20], 0, 3).await;
    let (out, out_problems) = wait_outbound(&w.sim, &replies, DEADLINE).await;
    let dead = dead_letters(&w.res).await;
    println!("  proxy: {}", proxy.counts.summary());
    check("aws_side_inbound", &tally, &problems, &dead);
    check("aws_side_outbound", &out, &out_problems, &dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_minute_connect_outage_ends_with_everything_delivered_in_order() {
    let w = world(
        "faults_connect_outage",
        true,
        &[("WACONNECT_RETRY_MAX_DELAY_MS", "5000")],
    )
    .await;
    let customers: Vec<String> = (0..20).map(|i| customer(12, i)).collect();
    // Their chats exist before the outage: the outage hits sends to live chats.
    let mut sent = load(&w.sim, &customers, 1, &[]).await;
    wait_inbound(&w.sim, &sent, DEADLINE).await;
    for operation in [
        "StartChatContact",
        "StartContactStreaming",
        "CreateParticipantConnection",
        "SendMessage",
        "SendEvent",
        "StartAttachmentUpload",
        "CompleteAttachmentUpload",
        "GetAttachment",
    ] {
        w.sim
            .add_fault(json!({"operation": operation, "error": "InternalServerException"}))
            .await;
    }
    let outage = Instant::now();
    sent.merge(customers_send(&w.sim, &customers, 1, 6, Duration::from_millis(200)).await);
    wait_for("the outage to be noticed", DEADLINE, async || {
        w.router
            .metrics()
            .await
            .contains("waconnect_dependency_up{service=\"connectparticipant\"} 0")
    })
    .await;
    let remaining = Duration::from_secs(120).saturating_sub(outage.elapsed());
    tokio::time::sleep(remaining).await;
    let dead_during = dead_letters(&w.res).await;
    assert!(
        dead_during.is_empty(),
        "an outage is not the messages' fault: {dead_during:?}"
    );
    w.sim.clear_faults().await;
    let recovered = Instant::now();
    let (tally, problems) = wait_inbound(&w.sim, &sent, DEADLINE).await;
    println!(
        "  outage {}s, everything delivered {:.1}s after recovery",
        outage.elapsed().as_secs() - recovered.elapsed().as_secs(),
        recovered.elapsed().as_secs_f64()
    );
    check(
        "connect_outage",
        &tally,
        &problems,
        &dead_letters(&w.res).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_router_killed_mid_load_delivers_everything_once_in_order() {
    let mut w = world("faults_sigkill_mid_load", true, &[]).await;
    let customers: Vec<String> = (0..20).map(|i| customer(13, i)).collect();
    let mut sent = load(&w.sim, &customers, 1, &[]).await;
    // Their chats exist, so agents can answer while customers keep writing.
    wait_inbound(&w.sim, &sent, DEADLINE).await;
    sent.merge(customers_send(&w.sim, &customers, 1, 5, Duration::ZERO).await);
    let mut replies = agents_reply(&w.sim, &customers, 0, 2).await;
    w.router.kill();
    sent.merge(customers_send(&w.sim, &customers, 5, 10, Duration::ZERO).await);
    replies.merge(agents_reply(&w.sim, &customers, 2, 5).await);
    w.router.start_again().await;
    let (tally, problems) = wait_inbound(&w.sim, &sent, DEADLINE).await;
    let (out, out_problems) = wait_outbound(&w.sim, &replies, DEADLINE).await;
    let dead = dead_letters(&w.res).await;
    check("sigkill_inbound", &tally, &problems, &dead);
    check("sigkill_outbound", &out, &out_problems, &dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_and_crashing_ffmpeg_children_leave_nobody_stuck() {
    let dir = tempfile::tempdir().unwrap();
    // Every third child hangs, every third crashes, the rest are the real ffmpeg.
    let counter = dir.path().join("spawned");
    let wrapper = dir.path().join("ffmpeg-faulty");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             case $((n % 3)) in\n  0) exec sleep 3600;;\n  1) echo 'crashed at 0x7ffd5e8a' >&2; exit 1;;\n  *) exec ffmpeg \"$@\";;\nesac\n",
            c = counter.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let w = world(
        "faults_ffmpeg_children",
        true,
        &[
            ("WACONNECT_FFMPEG_PATH", wrapper.to_str().unwrap()),
            ("WACONNECT_TRANSCODER_WORKERS", "2"),
            ("WACONNECT_TRANSCODE_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let note = voice_note(dir.path());
    let customers: Vec<String> = (0..8).map(|i| customer(14, i)).collect();
    let sends = customers.iter().map(|c| {
        let (sim, note) = (&w.sim, &note);
        async move {
            let mut lines = Vec::new();
            for seq in 0..6 {
                if seq % 2 == 1 {
                    sim.send_message(
                        c,
                        json!({"type": "audio", "audio": {"voice": true},
                               "media": {"content_base64": b64(note), "mime_type": "audio/ogg; codecs=opus"}}),
                    )
                    .await;
                } else {
                    let text = numbered(c, seq);
                    sim.send_text(c, &text).await;
                    lines.push(text);
                }
            }
            (c.clone(), lines)
        }
    });
    let sent = Sent {
        lines: futures::future::join_all(sends).await.into_iter().collect(),
    };
    // Every text after a voice note arrives: no conversation is stuck behind ffmpeg.
    let (tally, problems) = wait_inbound(&w.sim, &sent, DEADLINE).await;
    // Every voice note either arrived as a WAV or the agent was told it could not be.
    let notes = customers.len() * 3;
    let outcome = wait_for("an outcome for every voice note", DEADLINE, async || {
        let chats = w.sim.chats().await;
        let wavs = chats
            .iter()
            .map(|c| items_of_type(c, "ATTACHMENT").len())
            .sum::<usize>();
        let notices: Vec<String> = chats
            .iter()
            .flat_map(customer_messages)
            .filter(|m| m.contains("could not be delivered"))
            .collect();
        if wavs + notices.len() >= notes {
            Ok((wavs, notices))
        } else {
            Err(format!("{wavs} WAVs, {} notices", notices.len()))
        }
    })
    .await;
    let (wavs, notices) = outcome;
    println!(
        "{} (voice notes: {wavs} delivered, {} told as not delivered)",
        tally.summary("ffmpeg_children", dead_letters(&w.res).await.len()),
        notices.len()
    );
    assert!(wavs > 0 && !notices.is_empty(), "both paths exercised");
    for notice in &notices {
        assert!(
            !notice.contains("0x") && !notice.contains("crashed") && !notice.contains("ffmpeg"),
            "the agent never sees tool output: {notice}"
        );
    }
    check(
        "ffmpeg_children",
        &tally,
        &problems,
        &dead_letters(&w.res).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_is_dead_lettered_with_its_reason_and_blocks_no_longer_than_the_policy() {
    let w = world(
        "faults_poison",
        true,
        &[
            ("WACONNECT_RETRY_BASE_MS", "200"),
            ("WACONNECT_RETRY_MAX_DELAY_MS", "1000"),
            ("WACONNECT_RETRY_MAX_ATTEMPTS", "6"),
        ],
    )
    .await;
    let victim = customer(15, 0);
    let others: Vec<String> = (1..6).map(|i| customer(15, i)).collect();
    w.customer_says(&victim, "before").await;
    w.wait_for_chat(&victim).await;
    w.sim
        .add_fault(json!({"operation": "SendMessage", "error": "InternalServerException", "match": "POISON"}))
        .await;
    let poisoned_at = Instant::now();
    w.customer_says(&victim, "POISON pill").await;
    w.customer_says(&victim, "after").await;
    // Other customers keep talking: the service is up, only this message fails.
    let traffic = customers_send(&w.sim, &others, 0, 8, Duration::from_millis(300));
    let dead = async {
        wait_for("the poison in the DLQ", DEADLINE, async || {
            let dead = dead_letters(&w.res).await;
            dead.into_iter().find(|m| m.body.contains("POISON"))
        })
        .await
    };
    let (traffic, dead) = futures::join!(traffic, dead);
    let reason = dead
        .attributes
        .iter()
        .find(|(k, _)| k == "waconnect_reason")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("6 attempts"),
        "reason names the attempts: {reason}"
    );
    w.expect_single_chat_with(&victim, &["before", "after"])
        .await;
    let blocked = poisoned_at.elapsed();
    let (tally, problems) = wait_inbound(&w.sim, &traffic, DEADLINE).await;
    println!(
        "{} (poison dead-lettered; the message behind it followed {:.1}s after the poison was sent: 6 attempts, each one SendMessage call of up to 3 SDK tries, with 0.2+0.4+0.8+1+1 s of backoff between them; when the regroup stage joined the two texts in a burst, one more attempt of each on its own)",
        tally.summary("poison", 1),
        blocked.as_secs_f64()
    );
    assert_eq!(
        (tally.duplicated, tally.out_of_order, tally.missing),
        (0, 0, 0),
        "{problems:?}"
    );
}

/// The admin fault hooks make an actor panic or hang for real.
async fn inject(w: &World, actor: &str, fault: &str) {
    let status = http_client()
        .post(format!("{}/debug/actors/{actor}/{fault}", w.router.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202, "inject {fault} into {actor}");
}

fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn healthz(w: &World) -> u16 {
    http_client()
        .get(format!("{}/healthz", w.router.url))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actors_that_panic_or_hang_are_restarted_in_place_and_counted() {
    let w = world(
        "faults_supervision",
        false,
        &[
            ("WACONNECT_FAULT_HOOKS", "1"),
            ("WACONNECT_STUCK_AFTER_SECS", "2"),
            ("WACONNECT_RESTART_BUDGET", "2"),
        ],
    )
    .await;
    let c = customer(16, 0);
    w.customer_says(&c, "one").await;
    let chat = w.wait_for_chat(&c).await;
    let contact = contact_id(&chat);

    // A panic: the sender dies; the reply still reaches the customer through its successor.
    inject(&w, "whatsapp_send", "panic").await;
    w.sim.agent_says(&contact, "after a panic").await;
    w.wait_for_inbox_text(&c, "after a panic").await;
    let m = w.router.metrics().await;
    assert_eq!(
        metric(
            &m,
            "waconnect_actor_restarts_total{actor=\"whatsapp_send\"}"
        ),
        1.0
    );
    assert_eq!(healthz(&w).await, 200, "within its restart budget");

    // A hang: the uploader takes work and never finishes; it is found stuck and replaced.
    inject(&w, "connect_upload", "hang").await;
    w.customer_says(&c, "two").await;
    w.expect_single_chat_with(&c, &["one", "two"]).await;
    let m = w.router.metrics().await;
    assert_eq!(
        metric(&m, "waconnect_actor_stuck_total{actor=\"connect_upload\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "waconnect_actor_restarts_total{actor=\"connect_upload\"}"
        ),
        1.0
    );

    // Past its budget (two restarts in ten minutes), the process asks to be restarted.
    inject(&w, "whatsapp_send", "panic").await;
    wait_for("a second restart", DEADLINE, async || {
        metric(
            &w.router.metrics().await,
            "waconnect_actor_restarts_total{actor=\"whatsapp_send\"}",
        ) == 2.0
    })
    .await;
    assert_eq!(healthz(&w).await, 200, "at the budget");
    inject(&w, "whatsapp_send", "panic").await;
    wait_for("/healthz failing past the budget", DEADLINE, async || {
        healthz(&w).await == 503
    })
    .await;
    let log = w.router.log_text();
    assert!(
        log.contains("actor has work but makes no progress"),
        "stuck detection is logged"
    );
    assert!(log.contains("restarting actor"), "restarts are logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_leaves_no_message_received_but_unhandled() {
    let mut w = world("faults_drain", false, &[]).await;
    let c = customer(17, 0);
    w.customer_says(&c, "before").await;
    w.wait_for_chat(&c).await;
    w.expect_inbound_settled().await;
    // The router sits in a 20 s long poll; a message arrives while it drains.
    w.router.terminate();
    w.customer_says(&c, "during the drain").await;
    let status = w.router.wait_exit(Duration::from_secs(40)).await;
    assert!(status.success(), "exit 0 after the drain: {status}");
    let (visible, in_flight) = w.res.queue_counts(&w.res.inbound_queue_url).await;
    assert_eq!(
        in_flight, 0,
        "whatever the last long poll brought was handed back at once (visible={visible})"
    );
    w.router.start_again().await;
    w.expect_single_chat_with(&c, &["before", "during the drain"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_answers_of_whatsapp_sends_are_counted_as_suspected_duplicates() {
    let w0_res = Resources::provision("faults_lost_answers", Opts::default()).await;
    let sim = Sim::start(&w0_res).await;
    let proxy = FaultProxy::start(&sim.url).await;
    proxy.set_rules(vec![FaultRule {
        matches: "/v1/whatsapp/send".into(),
        drop_answer_rate: 0.03,
        ..Default::default()
    }]);
    let mut env: Vec<(&str, &str)> = FAST_RETRIES.to_vec();
    env.push(("AWS_ENDPOINT_URL_SOCIALMESSAGING", &proxy.url));
    let router = Router::start(&w0_res, &sim, &env).await;
    let w = World::from_parts(w0_res, sim, router);
    let customers: Vec<String> = (0..20).map(|i| customer(18, i)).collect();
    let opened = load(&w.sim, &customers, 1, &[]).await;
    wait_inbound(&w.sim, &opened, DEADLINE).await;
    let replies = agents_reply(&w.sim, &customers, 0, 25).await;
    let (tally, problems) = wait_outbound(&w.sim, &replies, DEADLINE).await;
    let suspected = metric(
        &w.router.metrics().await,
        "waconnect_whatsapp_suspected_duplicates_total",
    );
    let avoided = metric(
        &w.router.metrics().await,
        "waconnect_whatsapp_resends_avoided_total",
    );
    println!(
        "{} (answers dropped: {}; resends avoided: {avoided}; suspected duplicates counted: {suspected})",
        tally.summary("lost_send_answers", dead_letters(&w.res).await.len()),
        proxy
            .counts
            .dropped_answers
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    for p in problems.iter().take(10) {
        println!("  {p}");
    }
    assert_eq!(tally.missing, 0, "nothing lost");
    assert!(
        tally.duplicated as f64 <= suspected,
        "every duplicate the customer got was counted ({} > {suspected})",
        tally.duplicated
    );
    assert!(tally.sent >= 500);
    assert!(
        avoided > 0.0,
        "a lost answer's message whose status came was not sent again"
    );
}

/// Keeps `Value` in use for helpers shared with other files.
#[allow(dead_code)]
fn _value(_: Value) {}
