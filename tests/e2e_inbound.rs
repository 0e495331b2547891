//! Customer -> agent: WhatsApp messages reach the Amazon Connect chat.

mod common;

use common::*;
use serde_json::json;

const ANA: &str = "5491155550123";
const BRUNO: &str = "5491155550456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_starts_a_chat_with_it_as_the_initial_message() {
    let w = World::start("inbound_new_chat").await;

    w.customer_says(ANA, "Hola, necesito ayuda con mi pedido")
        .await;

    let chat = w
        .expect_single_chat_with(ANA, &["Hola, necesito ayuda con mi pedido"])
        .await;
    assert_eq!(chat["state"], "active");
    assert_eq!(chat["attributes"]["customerId"], ANA);

    // StartChatContact, then StartContactStreaming, once each (read once the message is
    // settled: the chat shows up as soon as StartChatContact returns).
    w.expect_inbound_settled().await;
    let calls = w.sim.calls().await;
    let ops: Vec<&str> = calls
        .iter()
        .filter_map(|c| c["operation"].as_str())
        .collect();
    for op in ["StartChatContact", "StartContactStreaming"] {
        assert_eq!(
            ops.iter().filter(|o| **o == op).count(),
            1,
            "{op} once; calls: {ops:?}"
        );
    }
    let pos = |op: &str| ops.iter().position(|o| *o == op);
    assert!(
        pos("StartChatContact") < pos("StartContactStreaming"),
        "the chat is started before it is streamed; calls: {ops:?}"
    );

    w.expect_inbound_settled().await;
    let metrics = w.router.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| !l.starts_with('#') && l.starts_with("waconnect_")),
        "/metrics exposes waconnect_* series:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_messages_reuse_the_customers_chat() {
    let w = World::start("inbound_reuse_chat").await;

    w.customer_says(ANA, "hola").await;
    w.expect_single_chat_with(ANA, &["hola"]).await;
    let more = [
        "mi pedido no llegó",
        "es el 4321",
        "lo pedí el lunes",
        "¿me ayudan?",
    ];
    for t in more {
        w.customer_says(ANA, t).await;
    }
    w.customer_says(BRUNO, "buenas").await;

    let mut expected = vec!["hola"];
    expected.extend(more);
    let ana = w.expect_single_chat_with(ANA, &expected).await;
    let bruno = w.expect_single_chat_with(BRUNO, &["buenas"]).await;
    assert_ne!(
        contact_id(&ana),
        contact_id(&bruno),
        "one chat per customer"
    );
    assert_eq!(w.calls_of("StartChatContact").await, 2);
    // A participant connection per chat (made at start or on first use), reused for every
    // later message: Ana's 4 follow-ups need one, and not one each.
    let connections = w.calls_of("CreateParticipantConnection").await;
    assert!(
        (1..=2).contains(&connections),
        "CreateParticipantConnection called {connections} times for 2 chats; calls: {:?}",
        w.sim.calls().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_is_split_in_order_at_whitespace() {
    let w = World::start("inbound_long_text").await;
    // ~3.4k characters, numbered words so that order matters, some multi-byte characters.
    let long: String = (1..=400)
        .map(|i| format!("ñandú{i:03}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(long.chars().count() > 3 * 1024);

    w.customer_says(ANA, &long).await;
    w.customer_says(ANA, "fin").await;

    let sim = &w.sim;
    let chat = wait_for(
        "the long text and the marker after it in the chat",
        FLOW_DEADLINE,
        async || {
            let chats = sim.chats_for(ANA).await;
            match chats
                .iter()
                .find(|c| customer_lines(c).last().map(String::as_str) == Some("fin"))
            {
                Some(c) => Ok(c.clone()),
                None => Err(describe_chats(&chats)),
            }
        },
    )
    .await;
    assert_eq!(sim.chats_for(ANA).await.len(), 1, "one chat");

    let parts = customer_messages(&chat);
    assert!(
        parts.len() >= 4,
        "3.4k characters + a marker need at least 4 chat messages, got {}",
        parts.len()
    );
    for p in &parts {
        assert!(
            p.chars().count() <= 1024,
            "a chat message longer than Connect's 1024 characters: {} chars",
            p.chars().count()
        );
    }
    // In order, nothing lost or duplicated, no word cut in two.
    assert_eq!(
        normalize_ws(&parts.join(" ")),
        normalize_ws(&format!("{long} fin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_messages_reach_the_agent_as_readable_text() {
    let w = World::start("inbound_rich_types").await;

    let sent = [
        json!({"type": "location", "location": {
            "latitude": -34.603722, "longitude": -58.381592,
            "name": "Obelisco", "address": "Av. 9 de Julio s/n"}}),
        json!({"type": "contacts", "contacts": [{
            "name": {"formatted_name": "Juan Pérez", "first_name": "Juan", "last_name": "Pérez"},
            "phones": [{"phone": "+54 9 11 5555-0199", "type": "CELL", "wa_id": "5491155550199"}]}]}),
        json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": "opt_yes", "title": "Sí, confirmar"}}}),
        json!({"type": "interactive", "interactive": {"type": "list_reply",
            "list_reply": {"id": "row_2", "title": "Envío a domicilio",
                           "description": "Llega en 48 h"}}}),
        json!({"type": "button", "button": {"text": "Quiero saber más", "payload": "MORE_INFO"}}),
    ];
    for m in sent {
        w.sim.send_message(ANA, m).await;
    }
    w.customer_says(ANA, "listo").await;

    let chat = w.wait_for_chat(ANA).await;
    let cid = contact_id(&chat);
    let sim = &w.sim;
    let chat = wait_for(
        "the marker text after the rich messages",
        FLOW_DEADLINE,
        async || match sim.chat(&cid).await {
            Some(c) if customer_lines(&c).iter().any(|l| l == "listo") => Ok(c),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let messages = customer_messages(&chat);
    let text = customer_text(&chat);

    // Each one is in the chat, readable, in the customer's order.
    let index_of = |what: &str, pred: &dyn Fn(&str) -> bool| -> usize {
        messages.iter().position(|m| pred(m)).unwrap_or_else(|| {
            panic!("{what} not readable in the chat; customer messages: {messages:?}")
        })
    };
    let location = index_of("location coordinates", &|m| {
        m.contains("-34.6037") && m.contains("-58.3815")
    });
    let contact = index_of("shared contact name and phone", &|m| {
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        m.contains("Juan Pérez") && digits.contains("5491155550199")
    });
    let button_reply = index_of("button reply title", &|m| m.contains("Sí, confirmar"));
    let list_reply = index_of("list reply title", &|m| m.contains("Envío a domicilio"));
    let button = index_of("template quick-reply text", &|m| {
        m.contains("Quiero saber más")
    });
    let marker = index_of("marker", &|m| {
        m.trim() == "listo" || m.lines().any(|l| l.trim() == "listo")
    });
    let order = [location, contact, button_reply, list_reply, button, marker];
    assert!(
        order.windows(2).all(|p| p[0] <= p[1]),
        "customer order kept; positions {order:?} in {messages:?}"
    );
    assert!(
        !text.contains("{\""),
        "no raw JSON handed to the agent: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_an_agent_message_reaches_the_agent_readably() {
    let w = World::start("inbound_reply_context").await;

    w.customer_says(ANA, "hola").await;
    let chat = w.expect_single_chat_with(ANA, &["hola"]).await;
    w.sim
        .agent_says(&contact_id(&chat), "¿Cuál es el número de pedido?")
        .await;
    let inbox = w
        .wait_for_inbox_text(ANA, "¿Cuál es el número de pedido?")
        .await;
    let quoted = inbox_id_of_text(&inbox, "¿Cuál es el número de pedido?")
        .expect("the agent's message has an id in the inbox");

    w.sim
        .send_message(
            ANA,
            json!({"type": "text", "text": {"body": "Es el 4321"}, "context": {"id": quoted}}),
        )
        .await;

    let cid = contact_id(&chat);
    let chat = w.wait_for_lines_in(&cid, 2).await;
    let messages = customer_messages(&chat);
    assert!(
        messages.iter().any(|m| m.contains("Es el 4321")),
        "the reply reaches the agent: {messages:?}"
    );
    assert!(
        !customer_text(&chat).contains(&quoted),
        "no raw wamid handed to the agent: {messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_and_stickers_are_ignored_by_default() {
    let w = World::start("inbound_reactions_ignored").await;

    let hola = w.customer_says(ANA, "hola").await;
    w.sim
        .send_message(
            ANA,
            json!({"type": "reaction", "reaction": {"message_id": hola, "emoji": "❤️"}}),
        )
        .await;
    w.sim
        .send_message(
            ANA,
            json!({"type": "sticker", "sticker": {"id": "7788990011", "mime_type": "image/webp",
                "sha256": "3b1f8c1e9a0d4c7e2f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e",
                "animated": false}}),
        )
        .await;
    w.customer_says(ANA, "chau").await;

    let chat = w.expect_single_chat_with(ANA, &["hola", "chau"]).await;
    assert!(
        items_of_type(&chat, "ATTACHMENT").is_empty(),
        "no sticker attachment: {}",
        describe_chats(std::slice::from_ref(&chat))
    );
    assert!(!customer_text(&chat).contains('❤'), "no reaction text");
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_sees_read_then_eyes_then_check_mark() {
    let w = World::start("inbound_read_and_reactions").await;

    let wamid = w.customer_says(ANA, "¿hay alguien?").await;
    w.expect_single_chat_with(ANA, &["¿hay alguien?"]).await;

    let sim = &w.sim;
    let wm = wamid.as_str();
    let inbox = wait_for(
        "read receipt, 👀 and ✅ on the customer's message",
        FLOW_DEADLINE,
        async || {
            let inbox = sim.inbox(ANA).await;
            let reacted: Vec<String> = inbox_reactions(&inbox)
                .into_iter()
                .filter(|(id, _)| id == wm)
                .map(|(_, e)| e)
                .collect();
            if inbox_reads(&inbox).iter().any(|id| id == wm)
                && reacted.iter().any(|e| e == "👀")
                && reacted.iter().any(|e| e == "✅")
            {
                Ok(inbox)
            } else {
                Err(format!("{inbox:?}"))
            }
        },
    )
    .await;
    let emojis: Vec<String> = inbox_reactions(&inbox)
        .into_iter()
        .filter(|(id, _)| *id == wamid)
        .map(|(_, e)| e)
        .collect();
    let eyes = emojis.iter().position(|e| e == "👀").unwrap();
    let done = emojis.iter().rposition(|e| e == "✅").unwrap();
    assert!(eyes < done, "👀 comes before ✅: {emojis:?}");
    assert_eq!(
        inbox_reads(&inbox)
            .iter()
            .filter(|id| **id == wamid)
            .count(),
        1,
        "marked read once: {inbox:?}"
    );
    assert!(
        inbox_texts(&inbox).is_empty(),
        "no text was sent to the customer: {inbox:?}"
    );
}
