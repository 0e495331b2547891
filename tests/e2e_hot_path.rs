//! The text path to an existing chat, counted through the real clients (moto + the
//! simulator): one remote call before the agent sees the text (SendMessage: no dedupe
//! read, no session lookup), and the rest batched after it (docs/delivery.md, "Dedupe on
//! the hot path").

mod common;

use std::collections::BTreeMap;

use common::*;

const ANA: &str = "5491155550123";

/// `waconnect_aws_calls_total` summed by `service.operation`.
fn aws_calls(metrics: &str) -> BTreeMap<String, f64> {
    let mut calls = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("waconnect_aws_calls_total{"))
    {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *calls
            .entry(format!("{}.{}", label("service"), label("operation")))
            .or_insert(0.0) += value;
    }
    calls
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_to_a_cached_chat_costs_one_remote_call_before_the_agent_sees_it() {
    let w = World::start("hot_path_one_call").await;
    w.customer_says(ANA, "hola").await;
    w.expect_single_chat_with(ANA, &["hola"]).await;
    // Everything the first message set off has settled (its acknowledgements included).
    let sim = &w.sim;
    wait_for(
        "👀 and ✅ on the first message",
        FLOW_DEADLINE,
        async || {
            let reactions = inbox_reactions(&sim.inbox(ANA).await);
            if reactions.len() >= 2 {
                Ok(())
            } else {
                Err(format!("{reactions:?}"))
            }
        },
    )
    .await;
    w.expect_inbound_settled().await;
    let metrics_before = w.router.metrics().await;
    let before = aws_calls(&metrics_before);
    let sim_calls_before = w.sim.calls().await.len();

    w.customer_says(ANA, "segundo").await;
    w.expect_single_chat_with(ANA, &["hola", "segundo"]).await;
    w.expect_inbound_settled().await;
    let metrics_after = w.router.metrics().await;
    let after = aws_calls(&metrics_after);

    // On the path: SendMessage only. The dedupe check answered from memory (a first
    // receipt this process never handled), the session came from the conversation.
    assert_eq!(
        delta(&after, &before, "connectparticipant.SendMessage"),
        1.0
    );
    assert_eq!(
        delta(&after, &before, "dynamodb.GetItem"),
        0.0,
        "no dedupe read: {after:?}"
    );
    assert_eq!(
        delta(&after, &before, "dynamodb.Query"),
        0.0,
        "no session lookup: {after:?}"
    );
    let checks = "waconnect_dedupe_checks_total{answered_by=\"first_receipt\"}";
    assert_eq!(
        counter(&metrics_after, checks) - counter(&metrics_before, checks),
        1.0,
        "the check was answered without a remote call"
    );
    // After it, off the path: the durable dedupe record, in a batch, then the delete.
    assert_eq!(
        delta(&after, &before, "dynamodb.BatchWriteItem"),
        1.0,
        "{after:?}"
    );
    assert_eq!(delta(&after, &before, "dynamodb.PutItem"), 0.0, "{after:?}");
    assert!(
        delta(&after, &before, "sqs.DeleteMessageBatch") >= 1.0,
        "{after:?}"
    );
    assert_eq!(
        delta(&after, &before, "sqs.DeleteMessage"),
        0.0,
        "{after:?}"
    );

    // The simulator saw, of Connect's side, exactly that one SendMessage for this text.
    let calls = w.sim.calls().await;
    let connect_calls: Vec<&str> = calls[sim_calls_before..]
        .iter()
        .filter_map(|c| c["operation"].as_str())
        .filter(|op| *op != "SendWhatsAppMessage")
        .collect();
    assert_eq!(connect_calls, ["SendMessage"], "{calls:?}");
}
