//! Delivery guarantees: session renewal, ordering under load, redelivery, raw SNS delivery,
//! crash and restart. Every customer message reaches the agent exactly once, in order.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";
const OTHERS: [&str; 3] = ["5491155550201", "5491155550202", "5491155550203"];

/// All customer lines of `wa_id` over all their chats (any order of chats), for "exactly once".
async fn occurrences(w: &World, wa_id: &str, line: &str) -> usize {
    w.sim
        .chats_for(wa_id)
        .await
        .iter()
        .map(|c| customer_lines(c).iter().filter(|l| *l == line).count())
        .sum()
}

/// Scenario shared by both renewal tests: `break_session` makes the chat's token unusable,
/// then the next message must open a new chat, once, and land there exactly once.
async fn renewal_scenario(w: &World, break_session: impl AsyncFnOnce(&str)) {
    w.customer_says(ANA, "hola").await;
    let first = contact_id(&w.expect_single_chat_with(ANA, &["hola"]).await);
    // The router holds the chat only once the first message is settled.
    w.expect_inbound_settled().await;

    break_session(&first).await;
    w.customer_says(ANA, "segundo").await;
    let second = contact_id(&w.wait_for_new_chat_with(ANA, &first, "segundo").await);

    // Later messages use the renewed session.
    w.customer_says(ANA, "tercero").await;
    let renewed = w.wait_for_lines_in(&second, 2).await;
    assert_eq!(customer_lines(&renewed), vec!["segundo", "tercero"]);
    let old = w.sim.chat(&first).await.expect("first chat still listed");
    assert_eq!(customer_lines(&old), vec!["hola"], "old chat unchanged");
    assert_eq!(
        occurrences(w, ANA, "segundo").await,
        1,
        "resent exactly once"
    );
    assert_eq!(
        w.calls_of("StartChatContact").await,
        2,
        "one new chat, started once"
    );
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_send_starts_a_new_chat_and_resends_once() {
    let w = World::start("delivery_renew_on_fault").await;
    let sim = &w.sim;
    renewal_scenario(&w, async |_contact: &str| {
        sim.add_fault(
            json!({"operation": "SendMessage", "error": "AccessDeniedException",
                             "rate": 1.0, "latency_ms": 0, "count": 1}),
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_chat_is_renewed_and_the_message_resent_once() {
    let w = World::start("delivery_renew_on_expiry").await;
    let sim = &w.sim;
    renewal_scenario(&w, async |contact: &str| sim.expire_chat(contact).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_burst_keeps_customer_order_while_others_talk() {
    let w = World::start("delivery_burst_order").await;
    let ana: Vec<String> = (1..=30).map(|i| format!("ana-{i:02}")).collect();
    let others: Vec<Vec<String>> = OTHERS
        .iter()
        .map(|wa| (1..=8).map(|i| format!("{wa}-{i:02}")).collect())
        .collect();

    let sim = &w.sim;
    let send_all = async |wa: &str, texts: &[String]| {
        for t in texts {
            sim.send_text(wa, t).await;
        }
    };
    tokio::join!(
        send_all(ANA, &ana),
        send_all(OTHERS[0], &others[0]),
        send_all(OTHERS[1], &others[1]),
        send_all(OTHERS[2], &others[2]),
    );

    let expected: Vec<&str> = ana.iter().map(String::as_str).collect();
    w.expect_single_chat_with(ANA, &expected).await;
    for (wa, texts) in OTHERS.iter().zip(&others) {
        let expected: Vec<&str> = texts.iter().map(String::as_str).collect();
        w.expect_single_chat_with(wa, &expected).await;
    }
    assert_eq!(w.calls_of("StartChatContact").await, 4, "one chat each");
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_sns_message_reaches_the_agent_once() {
    // Capture the exact SNS envelope the simulator (as EUM) publishes, before a router runs.
    let res = Resources::provision("delivery_redelivery_dedupe", Opts::default()).await;
    let sim = Sim::start(&res).await;
    let wamid = sim.send_text(ANA, "hola, una sola vez").await;
    let envelope = res
        .take_message_containing(&res.inbound_queue_url, &wamid)
        .await;
    let router = Router::start(&res, &sim, &[]).await;
    let w = World::from_parts(res, sim, router);

    w.sim.send_raw(envelope.clone()).await;
    w.sim.send_raw(envelope.clone()).await;
    // The same event published again by SNS (new SNS MessageId, same wamid).
    w.sim.send_raw(with_new_sns_message_id(&envelope)).await;
    w.customer_says(ANA, "después").await;

    w.expect_single_chat_with(ANA, &["hola, una sola vez", "después"])
        .await;
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_delivery_subscription_works_too() {
    let w = World::start_with(
        "delivery_raw_subscription",
        Opts {
            raw_inbound_delivery: true,
            ..Default::default()
        },
        &[],
    )
    .await;
    assert_eq!(
        w.res
            .inbound_subscription_attribute("RawMessageDelivery")
            .await
            .as_deref(),
        Some("true"),
        "precondition: the inbound subscription delivers raw EUM events"
    );

    w.customer_says(ANA, "hola sin sobre").await;
    w.customer_says(ANA, "segundo").await;
    let chat = w
        .expect_single_chat_with(ANA, &["hola sin sobre", "segundo"])
        .await;
    w.sim.agent_says(&contact_id(&chat), "recibido").await;
    w.wait_for_inbox_text(ANA, "recibido").await;
    // Delivery statuses, also raw, are acknowledged rather than dead-lettered.
    w.expect_inbound_settled().await;
}

/// The customer sends k01..k12 while `slowed_operation` is slowed down; the router is
/// SIGKILLed with work in flight and restarted: every message arrives once, in order.
async fn crash_and_restart_scenario(name: &str, slowed_operation: &str) {
    let mut w = World::start(name).await;
    let texts: Vec<String> = (1..=12).map(|i| format!("k{i:02}")).collect();
    let expected: Vec<&str> = texts.iter().map(String::as_str).collect();

    w.customer_says(ANA, &texts[0]).await;
    w.expect_single_chat_with(ANA, &expected[..1]).await;

    // Slow the simulator down so that work is in flight when the router dies.
    w.sim
        .add_fault(
            json!({"operation": slowed_operation, "rate": 1.0, "latency_ms": 1500,
                          "count": 1000}),
        )
        .await;
    let mut wamids = Vec::new();
    for t in &texts[1..] {
        wamids.push((w.customer_says(ANA, t).await, t.clone()));
    }
    let sim = &w.sim;
    wait_for(
        "a couple of slowed-down messages to get through",
        FLOW_DEADLINE,
        async || {
            let n: usize = sim
                .chats_for(ANA)
                .await
                .iter()
                .map(|c| customer_lines(c).len())
                .sum();
            if n >= 3 {
                Ok(())
            } else {
                Err(format!("{n} line(s)"))
            }
        },
    )
    .await;
    // Best effort, not asserted: crash while a message is taken (marked read) but not yet in
    // the chat. If the router never shows that state, it is killed anyway.
    let positioned = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let inbox = sim.inbox(ANA).await;
            let reads = inbox_reads(&inbox);
            let lines: Vec<String> = sim
                .chats_for(ANA)
                .await
                .iter()
                .flat_map(customer_lines)
                .collect();
            if wamids
                .iter()
                .any(|(id, text)| reads.contains(id) && !lines.contains(text))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    eprintln!("{name}: killing the router (positioned between read and delivery: {positioned})");

    w.router.kill();
    w.sim.clear_faults().await;
    // Let the messages the dead router had received come back (visibility timeout), so the
    // new router sees the queue in its original order.
    let res = &w.res;
    wait_for(
        "messages held by the killed router to become visible again",
        Duration::from_secs(150),
        async || {
            let (visible, in_flight) = res.queue_counts(&res.inbound_queue_url).await;
            if in_flight == 0 {
                Ok(())
            } else {
                Err(format!("visible={visible} in_flight={in_flight}"))
            }
        },
    )
    .await;
    w.router.restart().await;

    w.expect_single_chat_with(ANA, &expected).await;
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_killed_during_connect_sends_delivers_everything_once_in_order() {
    crash_and_restart_scenario("delivery_crash_in_send", "SendMessage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_killed_during_whatsapp_calls_delivers_everything_once_in_order() {
    // Read receipts and 👀 go out before the text is sent to Connect: a crash there must not
    // lose the message (e.g. by recording it as done before it was delivered).
    crash_and_restart_scenario("delivery_crash_in_whatsapp", "SendWhatsAppMessage").await;
}
