//! Operating the router: graceful shutdown on SIGTERM, readiness, metrics, and what its
//! logs must never contain.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";

/// SIGTERM mid-burst: readiness turns off, in-flight work finishes, the process exits 0,
/// and what it did not take stays in SQS for the next replica: nothing lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_work_and_exits_zero() {
    let mut w = World::start_with(
        "ops_sigterm",
        Opts::default(),
        &[("WACONNECT_SHUTDOWN_GRACE_SECS", "20")],
    )
    .await;
    w.sim
        .add_fault(json!({"operation": "SendMessage", "latency_ms": 300, "count": 1000}))
        .await;
    w.customer_says(ANA, "mensaje 0").await;
    w.wait_for_chat(ANA).await;
    let mut sent = vec!["mensaje 0".to_string()];
    for i in 1..8 {
        let text = format!("mensaje {i}");
        w.customer_says(ANA, &text).await;
        sent.push(text);
    }
    // Let the router take some of them, then stop it as Kubernetes does.
    pause_ms(700).await;
    w.router.terminate();
    let mut saw_not_ready = false;
    for _ in 0..20 {
        match w.router.readyz().await {
            0 => break,
            503 => {
                saw_not_ready = true;
                break;
            }
            _ => pause_ms(25).await,
        }
    }
    let status = w.router.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "graceful exit");
    assert!(saw_not_ready, "/readyz answers 503 while draining");
    assert!(w.router.log_text().contains("drain"), "the drain is logged");

    w.sim.clear_faults().await;
    w.router.start_again().await;
    let chat = w
        .wait_for_lines_in(&contact_id(&w.wait_for_chat(ANA).await), sent.len())
        .await;
    assert_eq!(customer_lines(&chat), sent, "every message once, in order");
}

/// A known participant token, connection token and message body appear nowhere in the
/// router's logs (debug level), nor in JSON logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_ids_but_never_tokens_or_bodies() {
    let w = World::start_with(
        "ops_log_hygiene",
        Opts::default(),
        &[("WACONNECT_LOG_FORMAT", "json")],
    )
    .await;
    let secret_body = "mi tarjeta termina en 4242 y mi clave es girasol";
    let wamid = w.customer_says(ANA, secret_body).await;
    let chat = w.wait_for_chat(ANA).await;
    let contact = contact_id(&chat);
    let agent_body = "por favor no compartas tu clave girasol";
    w.sim.agent_says(&contact, agent_body).await;
    w.wait_for_inbox_text(ANA, agent_body).await;

    let item = w
        .res
        .ddb
        .get_item()
        .table_name(&w.res.sessions_table)
        .key(
            "contactId",
            aws_sdk_dynamodb::types::AttributeValue::S(contact.clone()),
        )
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("session stored");
    let token = |k: &str| item[k].as_s().expect("token attribute").to_string();
    let (participant, connection) = (token("participantToken"), token("connectionToken"));
    assert!(participant.len() > 8 && connection.len() > 8);

    let log = w.router.log_text();
    for (what, secret) in [
        ("participant token", participant.as_str()),
        ("connection token", connection.as_str()),
        ("customer message body", "girasol"),
        ("customer message body", "tarjeta termina"),
        ("agent message body", "no compartas"),
    ] {
        assert!(!log.contains(secret), "the router log contains a {what}");
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines");
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains(&wamid) && l.to_string().contains(&contact)),
        "a line about the message names its wamid and contact id"
    );
}

/// The admin endpoints answer and every actor's series is exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exported_per_actor() {
    let w = World::start("ops_metrics").await;
    w.customer_says(ANA, "hola").await;
    w.wait_for_chat(ANA).await;
    let text = w.router.metrics().await;
    for actor in [
        "inbound_intake",
        "conversation",
        "connect_upload",
        "whatsapp_send",
        "connect_event_intake",
    ] {
        assert!(
            text.contains(&format!(
                "waconnect_actor_restarts_total{{actor=\"{actor}\"}}"
            )),
            "restarts series for {actor}"
        );
    }
    for name in [
        "waconnect_e2e_latency_seconds_bucket",
        "waconnect_aws_calls_total",
        "waconnect_dedupe_hits_total",
        "waconnect_dead_letters_total",
        "waconnect_conversations_active",
    ] {
        assert!(text.contains(name), "{name} exported");
    }
    assert!(!text.contains(ANA), "no label carries a phone number");
}
