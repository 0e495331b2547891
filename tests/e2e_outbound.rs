//! Agent -> customer: Connect chat items reach the customer's WhatsApp (or, by design, don't).

mod common;

use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";

/// The customer opens a chat; returns its contact id.
async fn customer_opens_chat(w: &World, wa_id: &str) -> String {
    let wamid = w.customer_says(wa_id, "hola").await;
    let chat = contact_id(&w.expect_single_chat_with(wa_id, &["hola"]).await);
    // The chat shows "hola" once StartChatContact returns; the router joins it after that
    // (streaming, participant connection) and only then reacts ✅. A chat ended before
    // it is joined is replaced, so wait for the ✅ before a test ends it.
    let sim = &w.sim;
    wait_for("✅ on the opening message", FLOW_DEADLINE, async || {
        let reactions = inbox_reactions(&sim.inbox(wa_id).await);
        if reactions
            .iter()
            .any(|(id, emoji)| *id == wamid && emoji == "✅")
        {
            Ok(())
        } else {
            Err(format!("{reactions:?}"))
        }
    })
    .await;
    chat
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_bot_and_system_messages_reach_the_customer() {
    let w = World::start("outbound_agent_reply").await;
    let chat = customer_opens_chat(&w, ANA).await;

    w.sim.agent_says(&chat, "Hola Ana, ¿en qué te ayudo?").await;
    w.sim
        .agent_says_with(
            &chat,
            json!({"text": "Tu turno es el 3", "role": "SYSTEM", "visibility": "CUSTOMER"}),
        )
        .await;
    w.sim
        .agent_says_with(
            &chat,
            json!({"text": "Soy el asistente virtual", "role": "CUSTOM_BOT", "visibility": "ALL"}),
        )
        .await;

    for t in [
        "Hola Ana, ¿en qué te ayudo?",
        "Tu turno es el 3",
        "Soy el asistente virtual",
    ] {
        w.wait_for_inbox_text(ANA, t).await;
    }
    w.wait_connect_stream_drained().await;
    assert_eq!(
        sorted(inbox_texts(&w.sim.inbox(ANA).await)),
        sorted(vec![
            "Hola Ana, ¿en qué te ayudo?".into(),
            "Tu turno es el 3".into(),
            "Soy el asistente virtual".into(),
        ]),
        "each forwarded once, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_only_messages_are_not_forwarded() {
    let w = World::start("outbound_agent_only").await;
    let chat = customer_opens_chat(&w, ANA).await;

    w.sim
        .agent_says_with(
            &chat,
            json!({"text": "nota interna: cliente VIP", "visibility": "AGENT"}),
        )
        .await;
    w.sim.agent_says(&chat, "Ya lo reviso").await;

    w.wait_for_inbox_text(ANA, "Ya lo reviso").await;
    // Both stream items handled before we look for the one that must not be there.
    w.wait_connect_stream_drained().await;
    assert_eq!(
        inbox_texts(&w.sim.inbox(ANA).await),
        vec!["Ya lo reviso".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_own_messages_are_not_echoed_back() {
    let w = World::start("outbound_no_echo").await;
    let chat = customer_opens_chat(&w, ANA).await;
    w.sim.agent_says(&chat, "respuesta").await;
    w.wait_for_inbox_text(ANA, "respuesta").await;
    w.wait_connect_stream_drained().await;
    // The simulator streamed "hola" back with role CUSTOMER: not forwarded.
    assert_eq!(
        inbox_texts(&w.sim.inbox(ANA).await),
        vec!["respuesta".to_string()],
        "exactly one text: the agent's"
    );

    // The same with the documented wire payloads, injected on the streaming queue.
    w.res
        .enqueue_connect(&connect_event_from_fixture(
            "connect-customer-echo.sns.json",
            &chat,
            &chat,
            Some("eco del cliente"),
        ))
        .await;
    w.res
        .enqueue_connect(&connect_event_from_fixture(
            "connect-message.sns.json",
            &chat,
            &chat,
            Some("mensaje del agente (fixture)"),
        ))
        .await;
    w.wait_for_inbox_text(ANA, "mensaje del agente (fixture)")
        .await;
    w.wait_connect_stream_drained().await;
    assert_eq!(
        inbox_texts(&w.sim.inbox(ANA).await),
        vec![
            "respuesta".to_string(),
            "mensaje del agente (fixture)".to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_chat_ends_the_next_message_starts_a_new_chat() {
    let w = World::start("outbound_chat_ended").await;
    let first = customer_opens_chat(&w, ANA).await;

    w.sim.end_chat(&first).await;
    // The chat.ended event has been handled by the router.
    w.wait_connect_stream_drained().await;

    w.customer_says(ANA, "volví").await;
    let second = w.wait_for_new_chat_with(ANA, &first, "volví").await;

    w.customer_says(ANA, "¿siguen ahí?").await;
    let second = w.wait_for_lines_in(&contact_id(&second), 2).await;
    assert_eq!(customer_lines(&second), vec!["volví", "¿siguen ahí?"]);
    let old = w.sim.chat(&first).await.expect("first chat still listed");
    assert_eq!(old["state"], "ended");
    assert_eq!(
        customer_lines(&old),
        vec!["hola"],
        "nothing went to the ended chat"
    );
    assert_eq!(w.calls_of("StartChatContact").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_message_after_a_transfer_reaches_the_customer() {
    let w = World::start("outbound_transfer").await;
    let first = customer_opens_chat(&w, ANA).await;

    let transferred = w.sim.transfer_chat(&first).await;
    assert_ne!(transferred, first, "a transfer gives a new contact id");
    w.sim
        .agent_says(&transferred, "Hola, soy Pedro de facturación")
        .await;

    w.wait_for_inbox_text(ANA, "Hola, soy Pedro de facturación")
        .await;
    w.wait_connect_stream_drained().await;
    assert_eq!(
        inbox_texts(&w.sim.inbox(ANA).await),
        vec!["Hola, soy Pedro de facturación".to_string()]
    );
}
