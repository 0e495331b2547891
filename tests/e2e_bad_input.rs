//! Malformed inbound queue messages: the router survives, logs them with the SQS message id,
//! dead-letters them with a reason, and keeps serving good traffic.

mod common;

use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";

/// Puts each bad body on the inbound queue, then a good message from a customer, and checks
/// the whole contract for malformed input.
async fn bad_input_scenario(name: &str, bad_bodies: &[String]) {
    let mut w = World::start(name).await;

    let mut sqs_ids = Vec::new();
    for body in bad_bodies {
        sqs_ids.push(w.res.enqueue_inbound(body).await);
    }
    w.customer_says(ANA, "sigo acá").await;

    // Later good messages still flow.
    let chat = w.expect_single_chat_with(ANA, &["sigo acá"]).await;
    w.sim.agent_says(&contact_id(&chat), "te leo").await;
    w.wait_for_inbox_text(ANA, "te leo").await;

    // Each bad message is dead-lettered with a reason, not lost and not retried forever.
    for body in bad_bodies {
        let dead = w.wait_dead_lettered(body).await;
        assert!(
            dead_letter_has_reason(&dead, body),
            "dead letter carries a reason (message attribute or wrapper field): attributes {:?}",
            dead.attributes
        );
    }
    w.wait_queue_drained(&w.res.inbound_queue_url).await;
    let dlq = w.res.dlq_messages(&w.res.inbound_dlq_url).await;
    assert_eq!(
        dlq.len(),
        bad_bodies.len(),
        "only the bad messages are dead-lettered (not the good ones nor delivery statuses): {:?}",
        dlq.iter()
            .map(|m| m.body.chars().take(200).collect::<String>())
            .collect::<Vec<_>>()
    );

    // The router did not crash and says so.
    assert!(w.router.is_running(), "router process still alive");
    assert_eq!(w.router.readyz().await, 200, "/readyz stays 200");
    let log = w.router.log_text();
    for id in &sqs_ids {
        assert!(
            log.contains(id.as_str()),
            "router log mentions the SQS message id {id} of the malformed message"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_is_not_json_is_dead_lettered() {
    bad_input_scenario(
        "bad_input_not_json",
        &["this is not json {{{ \u{1F4A5}".to_string()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_of_the_wrong_shape_is_dead_lettered() {
    let envelope_with_bad_event = json!({
        "Type": "Notification",
        "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:eum-inbound",
        "Message": json!({"context": {}, "whatsAppWebhookEntry": 42}).to_string(),
        "Timestamp": "2026-11-20T14:03:11.601Z",
    });
    bad_input_scenario(
        "bad_input_wrong_shape",
        &[
            json!({"hello": "world"}).to_string(),
            envelope_with_bad_event.to_string(),
        ],
    )
    .await;
}

/// A well-formed event with a message type we do not know is not malformed: the agent is
/// told the customer sent something WhatsApp could not deliver (Connect's own channel and
/// the reference sample drop it silently), and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_reaches_the_agent_as_a_notice() {
    let mut w = World::start("bad_input_unknown_type").await;
    let (body, wamid) = eum_envelope_with_message(
        ANA,
        json!({"type": "hologram", "hologram": {"id": "1", "frames": 3}}),
    );
    w.res.enqueue_inbound(&body).await;
    let chat = w.wait_for_chat(ANA).await;
    let text = customer_text(&chat);
    assert!(
        text.contains("hologram") && text.contains("could not deliver"),
        "the agent reads what arrived: {text:?}"
    );
    assert!(
        !text.contains("frames"),
        "no raw payload reaches the agent: {text:?}"
    );
    w.wait_queue_drained(&w.res.inbound_queue_url).await;
    assert!(
        w.res.dlq_messages(&w.res.inbound_dlq_url).await.is_empty(),
        "nothing dead-lettered"
    );
    assert!(w.router.is_running(), "router process still alive");
    assert!(
        w.router.log_text().contains(&wamid),
        "the router log names the message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_300_kb_body_is_dead_lettered() {
    let junk = "A".repeat(300 * 1024);
    let body = json!({"Type": "Notification", "Message": junk}).to_string();
    assert!(body.len() > 300 * 1024);
    bad_input_scenario("bad_input_oversized", &[body]).await;
}
