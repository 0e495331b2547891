//! The conversation both sides expect (issue 11), end to end through moto, the simulator
//! and `waconnect run`: receipts, typing, failed sends told to the agent, bot menus, and
//! several business numbers routed to their own contact flows.

mod common;

use common::*;
use serde_json::{json, Value};

const ANA: &str = "5491155550123";
const BETO: &str = "5491155550456";
const INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
const RESPONSE: &str = "application/vnd.amazonaws.connect.message.interactive.response";
const DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
const READ: &str = "application/vnd.amazonaws.connect.event.message.read";

/// The customer opens a chat; returns its contact id.
async fn customer_opens_chat(w: &World, wa_id: &str, text: &str) -> String {
    w.customer_says(wa_id, text).await;
    contact_id(&w.expect_single_chat_with(wa_id, &[text]).await)
}

/// The receipt events of a chat, in order: (content type, message id).
fn receipts(chat: &Value) -> Vec<(String, String)> {
    chat_items(chat)
        .iter()
        .filter(|i| {
            i["type"] == "EVENT" && (i["content_type"] == DELIVERED || i["content_type"] == READ)
        })
        .map(|i| {
            (
                i["content_type"].as_str().unwrap_or_default().to_string(),
                i["message_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until the chat `contact` satisfies `check`; returns it.
async fn wait_chat(w: &World, contact: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let sim = &w.sim;
    wait_for(what, FLOW_DEADLINE, async || {
        match sim.chat(contact).await {
            Some(c) if check(&c) => Ok(c),
            Some(c) => Err(describe_chats(&[c])),
            None => Err(format!("no chat {contact}")),
        }
    })
    .await
}

/// Waits until the customer's inbox has an entry satisfying `check`; returns it.
async fn wait_inbox(w: &World, wa_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let sim = &w.sim;
    wait_for(what, FLOW_DEADLINE, async || {
        let inbox = sim.inbox(wa_id).await;
        inbox
            .iter()
            .find(|m| check(m))
            .cloned()
            .ok_or_else(|| format!("{inbox:?}"))
    })
    .await
}

/// Messages the customer side put in the chat that are not the customer's own words:
/// waconnect's notices for the agent.
fn notices(chat: &Value) -> Vec<String> {
    customer_messages(chat)
        .into_iter()
        .filter(|m| m.starts_with("⚠️ waconnect:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_show_delivered_then_read_and_typing_reaches_the_customer() {
    let w = World::start("conversation_receipts_typing").await;
    let chat = customer_opens_chat(&w, ANA, "hola").await;
    let latest = w.customer_says(ANA, "¿hay alguien?").await;
    w.wait_for_lines_in(&chat, 2).await;

    // The agent types: WhatsApp's indicator on the customer's latest message, once per
    // interval however often the agent's app reports typing.
    w.sim.agent_typing(&chat).await;
    w.sim.agent_typing(&chat).await;
    let typing = wait_inbox(&w, ANA, "a typing indicator", |m| {
        m["type"] == "read" && m["body"]["typing_indicator"]["type"] == "text"
    })
    .await;
    assert_eq!(
        typing["body"]["message_id"].as_str(),
        Some(latest.as_str()),
        "tied to the customer's latest message"
    );
    w.wait_connect_stream_drained().await;
    let indicators = w
        .sim
        .inbox(ANA)
        .await
        .iter()
        .filter(|m| m["body"].get("typing_indicator").is_some())
        .count();
    assert_eq!(
        indicators, 1,
        "the second typing event came within the interval"
    );

    // The agent replies; WhatsApp delivers; the customer reads it.
    let item = w
        .sim
        .agent_says(&chat, "¡Hola Ana! ¿En qué te ayudo?")
        .await;
    let inbox = w
        .wait_for_inbox_text(ANA, "¡Hola Ana! ¿En qué te ayudo?")
        .await;
    let wamid = inbox_id_of_text(&inbox, "¡Hola Ana! ¿En qué te ayudo?").unwrap();
    wait_chat(&w, &chat, "message.delivered for the reply", |c| {
        receipts(c).contains(&(DELIVERED.to_string(), item.clone()))
    })
    .await;
    w.sim.customer_reads(ANA, &wamid).await;
    let chat_now = wait_chat(&w, &chat, "message.read for the reply", |c| {
        receipts(c).contains(&(READ.to_string(), item.clone()))
    })
    .await;
    assert_eq!(
        receipts(&chat_now),
        vec![
            (DELIVERED.to_string(), item.clone()),
            (READ.to_string(), item.clone())
        ],
        "delivered then read, once each, for the agent's item"
    );

    // A status without callback data (another webhook client, an older message) is
    // matched through the recorded link from WhatsApp message to chat item.
    let item2 = w.sim.agent_says(&chat, "Te paso el enlace").await;
    let inbox = w.wait_for_inbox_text(ANA, "Te paso el enlace").await;
    let wamid2 = inbox_id_of_text(&inbox, "Te paso el enlace").unwrap();
    wait_chat(&w, &chat, "message.delivered for the second reply", |c| {
        receipts(c).contains(&(DELIVERED.to_string(), item2.clone()))
    })
    .await;
    w.res
        .enqueue_inbound(&status_without_callback_data(&wamid2, "read"))
        .await;
    wait_chat(&w, &chat, "message.read for the second reply", |c| {
        receipts(c).contains(&(READ.to_string(), item2.clone()))
    })
    .await;

    // Both replies are recorded as having reached WhatsApp (what a retry checks before
    // sending again after a lost answer); an item never sent is not.
    let dedupe = waconnect::adapters::aws::DynamoDedupeStore::new(
        aws_sdk_dynamodb::Client::new(&aws_config().await),
        w.res.dedupe_table.clone(),
    );
    use waconnect::actors::conversation::receipts::reached_whatsapp;
    for (id, wamid) in [(&item, &wamid), (&item2, &wamid2)] {
        assert_eq!(
            reached_whatsapp(&dedupe, id, 0).await.unwrap().as_deref(),
            Some(wamid.as_str())
        );
    }
    assert_eq!(
        reached_whatsapp(&dedupe, "never-sent", 0).await.unwrap(),
        None
    );

    w.expect_inbound_settled().await;
    let metrics = w.router.metrics().await;
    assert!(
        metrics.contains(r#"waconnect_receipts_total{status="read",outcome="shown"} 2"#),
        "{}",
        metrics_lines(&metrics, "waconnect_receipts_total")
    );
}

/// An SNS envelope of an EUM event with one status of `wamid`, without
/// `biz_opaque_callback_data`, built from `eum-status-failed.sns.json`.
fn status_without_callback_data(wamid: &str, status: &str) -> String {
    let mut envelope = fixture_json("eum-status-failed.sns.json");
    let mut event: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    let mut entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    let s = &mut entry["changes"][0]["value"]["statuses"][0];
    s["id"] = json!(wamid);
    s["status"] = json!(status);
    s["recipient_id"] = json!(ANA);
    s["timestamp"] = json!(unix_now().to_string());
    if let Some(o) = s.as_object_mut() {
        o.remove("errors");
    }
    event["whatsAppWebhookEntry"] = json!(entry.to_string());
    envelope["Message"] = json!(event.to_string());
    envelope["MessageId"] = json!(uuid::Uuid::new_v4().to_string());
    envelope.to_string()
}

fn metrics_lines(text: &str, name: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with(name))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_told_to_the_agent_and_counted() {
    let w = World::start("conversation_failed_sends").await;
    let chat = customer_opens_chat(&w, ANA, "hola").await;

    // More than 24 hours later, as far as WhatsApp is concerned.
    w.sim.set_window(ANA, false).await;
    w.sim.agent_says(&chat, "¿Pudiste resolverlo?").await;
    let told = wait_chat(&w, &chat, "a notice about the closed window", |c| {
        !notices(c).is_empty()
    })
    .await;
    assert_eq!(
        notices(&told),
        vec![
            "⚠️ waconnect: The customer's 24-hour window is closed: WhatsApp only allows \
             template messages now. The customer did not receive your message."
                .to_string()
        ]
    );
    assert!(
        inbox_texts(&w.sim.inbox(ANA).await).is_empty(),
        "the customer got nothing"
    );
    w.expect_inbound_settled().await;
    let metrics = w.router.metrics().await;
    assert!(
        metrics.contains(
            r#"waconnect_whatsapp_send_failures_total{code_class="window_closed",number="default"} 1"#
        ),
        "{}",
        metrics_lines(&metrics, "waconnect_whatsapp_send_failures_total")
    );

    // A send EUM refuses outright is told the same way. (Nothing else is being sent now,
    // so the next SendWhatsAppMessage is the agent's; the message blob is base64, so a
    // fault cannot match its text.)
    w.sim.set_window(ANA, true).await;
    w.sim
        .add_fault(
            json!({"operation": "SendWhatsAppMessage", "error": "InvalidParametersException",
                          "status": 400, "count": 1}),
        )
        .await;
    w.sim.agent_says(&chat, "rechazame por favor").await;
    let told = wait_chat(&w, &chat, "a notice about the refused send", |c| {
        notices(c).len() == 2
    })
    .await;
    assert!(
        notices(&told)[1].starts_with("⚠️ waconnect: WhatsApp refused the message ("),
        "{:?}",
        notices(&told)
    );
    // The next reply goes out as usual, and no notice reached the customer.
    w.sim.agent_says(&chat, "Ahora sí").await;
    w.wait_for_inbox_text(ANA, "Ahora sí").await;
    assert_eq!(
        inbox_texts(&w.sim.inbox(ANA).await),
        vec!["Ahora sí".to_string()]
    );
    let metrics = w.router.metrics().await;
    assert!(
        metrics.contains(
            r#"waconnect_whatsapp_send_failures_total{code_class="refused",number="default"} 1"#
        ),
        "{}",
        metrics_lines(&metrics, "waconnect_whatsapp_send_failures_total")
    );
}

fn list_picker(title: &str, options: &[&str]) -> String {
    let elements: Vec<Value> = options
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"title": t, "subtitle": format!("opción {}", i + 1)}))
        .collect();
    json!({"templateType": "ListPicker", "version": "1.0",
           "data": {"replyMessage": {"title": "¡Gracias!"},
                    "content": {"title": title, "subtitle": "Tocá para elegir", "elements": elements}}})
    .to_string()
}

/// The bot (a contact flow's Lex bot: SYSTEM, display name BOT) sends a template.
async fn bot_sends(w: &World, chat: &str, template: String) {
    w.sim
        .agent_says_with(
            chat,
            json!({"text": template, "content_type": INTERACTIVE, "role": "SYSTEM", "display_name": "BOT"}),
        )
        .await;
}

/// The customer's interactive responses in the chat, as (title, selectedIndex).
fn responses(chat: &Value) -> Vec<(String, u64)> {
    chat_items(chat)
        .iter()
        .filter(|i| i["participant_role"] == "CUSTOMER" && i["content_type"] == RESPONSE)
        .map(|i| {
            let v: Value = serde_json::from_str(i["content"].as_str().unwrap_or("{}")).unwrap();
            (
                v["data"]["content"]["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["data"]["content"]["selectedIndex"]
                    .as_u64()
                    .unwrap_or(999),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_menus_reach_whatsapp_and_choices_come_back_as_interactive_responses() {
    let w = World::start("conversation_bot_menus").await;
    let chat = customer_opens_chat(&w, ANA, "hola").await;

    let fruits = ["Manzana", "Naranja", "Banana", "Pera", "Uva"];
    bot_sends(&w, &chat, list_picker("¿Qué fruta querés?", &fruits)).await;
    let list = wait_inbox(&w, ANA, "a list message", |m| {
        m["type"] == "interactive" && m["body"]["interactive"]["type"] == "list"
    })
    .await;
    let interactive = &list["body"]["interactive"];
    let rows = interactive["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .clone();
    let titles: Vec<&str> = rows.iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, fruits);
    // Meta's limits: at most 10 rows, titles 24, descriptions 72, header 60, button 20.
    assert!(rows.len() <= 10);
    for r in &rows {
        assert!(r["title"].as_str().unwrap().chars().count() <= 24);
        assert!(r["description"].as_str().unwrap().chars().count() <= 72);
        assert!(r["id"].as_str().unwrap().chars().count() <= 200);
    }
    assert!(
        interactive["header"]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 60
    );
    assert!(
        interactive["action"]["button"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 20
    );
    assert_eq!(interactive["header"]["text"], "¿Qué fruta querés?");

    let quick = json!({"templateType": "QuickReply", "version": "1.0",
        "data": {"content": {"title": "¿Te ayudo con algo más?",
                             "elements": [{"title": "Sí"}, {"title": "No, gracias"}]}}});
    bot_sends(&w, &chat, quick.to_string()).await;
    let buttons = wait_inbox(&w, ANA, "a button message", |m| {
        m["type"] == "interactive" && m["body"]["interactive"]["type"] == "button"
    })
    .await;
    let buttons = buttons["body"]["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap()
        .clone();
    let titles: Vec<&str> = buttons
        .iter()
        .map(|b| b["reply"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Sí", "No, gracias"]);
    assert!(buttons.len() <= 3 && titles.iter().all(|t| t.chars().count() <= 20));

    // The customer picks Pera from the list, as WhatsApp reports it.
    let pera = rows[3].clone();
    w.sim
        .send_message(
            ANA,
            json!({"type": "interactive", "context": {"id": list["id"]},
                   "interactive": {"type": "list_reply", "list_reply": {
                       "id": pera["id"], "title": pera["title"], "description": pera["description"]}}}),
        )
        .await;
    let with_choice = wait_chat(&w, &chat, "the customer's list choice", |c| {
        !responses(c).is_empty()
    })
    .await;
    assert_eq!(responses(&with_choice), vec![("Pera".to_string(), 3)]);

    // Fifteen options do not fit a list: a numbered text menu, answered by number.
    let many: Vec<String> = (1..=15).map(|n| format!("Sucursal {n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    bot_sends(&w, &chat, list_picker("¿Qué sucursal?", &many)).await;
    let menu = wait_inbox(&w, ANA, "a numbered text menu", |m| {
        m["type"] == "text"
            && m["body"]["text"]["body"]
                .as_str()
                .is_some_and(|t| t.contains("15. Sucursal 15"))
    })
    .await;
    let text = menu["body"]["text"]["body"].as_str().unwrap();
    assert!(
        text.starts_with("¿Qué sucursal?\nTocá para elegir\n\n1. Sucursal 1 (opción 1)\n"),
        "{text}"
    );
    // The menu is remembered once the bot's item is handled.
    w.wait_connect_stream_drained().await;
    w.customer_says(ANA, "3").await;
    let with_number = wait_chat(&w, &chat, "the customer's numbered choice", |c| {
        responses(c).len() == 2
    })
    .await;
    assert_eq!(
        responses(&with_number),
        vec![("Pera".to_string(), 3), ("Sucursal 3".to_string(), 2)]
    );
    w.expect_inbound_settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_business_numbers_start_chats_in_their_own_flows_and_replies_leave_from_them() {
    const FLOW_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
    const FLOW_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
    let res = Resources::provision("conversation_business_numbers", Opts::default()).await;
    let sim = Sim::start_with(&res, &["--business-numbers", "2"]).await;
    let numbers = sim.business_numbers().await;
    assert_eq!(numbers.len(), 2);
    let (a, b) = (
        numbers[0]["phone_number_id"].as_str().unwrap().to_string(),
        numbers[1]["phone_number_id"].as_str().unwrap().to_string(),
    );
    let config = res.log_dir.join("router.toml");
    std::fs::write(
        &config,
        format!(
            "[[business_numbers]]\nphone_number_id = \"{a}\"\ncontact_flow_id = \"{FLOW_A}\"\n\n\
             [[business_numbers]]\nphone_number_id = \"{b}\"\ncontact_flow_id = \"{FLOW_B}\"\n\
             attributes = {{ brand = \"B\" }}\n"
        ),
    )
    .unwrap();
    let router = Router::start(
        &res,
        &sim,
        &[("WACONNECT_CONFIG", config.to_str().unwrap())],
    )
    .await;
    let w = World::from_parts(res, sim, router);

    let write = |wa_id: &'static str, number: &str, text: &'static str| {
        let body =
            json!({"type": "text", "text": {"body": text}, "business_phone_number_id": number});
        let sim = &w.sim;
        async move { sim.send_message(wa_id, body).await }
    };
    write(ANA, &a, "hola A").await;
    write(BETO, &b, "hola B").await;
    // Ana writes to the second number too: a chat of its own, in B's flow.
    write(ANA, &b, "hola también B").await;

    let chat_with = async |wa_id: &str, line: &str| {
        let sim = &w.sim;
        wait_for(
            &format!("{wa_id}'s chat with {line:?}"),
            FLOW_DEADLINE,
            async || {
                let chats = sim.chats_for(wa_id).await;
                chats
                    .iter()
                    .find(|c| customer_lines(c).iter().any(|l| l == line))
                    .cloned()
                    .ok_or_else(|| describe_chats(&chats))
            },
        )
        .await
    };
    let ana_a = chat_with(ANA, "hola A").await;
    let beto_b = chat_with(BETO, "hola B").await;
    let ana_b = chat_with(ANA, "hola también B").await;
    for (chat, flow, number) in [
        (&ana_a, FLOW_A, &a),
        (&beto_b, FLOW_B, &b),
        (&ana_b, FLOW_B, &b),
    ] {
        assert_eq!(
            chat["contact_flow_id"],
            flow,
            "{}",
            describe_chats(std::slice::from_ref(chat))
        );
        assert_eq!(chat["attributes"]["systemNumber"], number.as_str());
        assert_eq!(chat["instance_id"], CONNECT_INSTANCE_ID);
    }
    assert_eq!(beto_b["attributes"]["brand"], "B");
    assert!(ana_a["attributes"].get("brand").is_none());
    assert_ne!(contact_id(&ana_a), contact_id(&ana_b));
    assert_eq!(
        customer_lines(&ana_a),
        vec!["hola A"],
        "nothing crossed between Ana's chats"
    );

    // Replies leave from the number each customer wrote to.
    w.sim
        .agent_says(&contact_id(&ana_a), "respuesta desde A")
        .await;
    w.sim
        .agent_says(&contact_id(&beto_b), "respuesta desde B")
        .await;
    w.sim.agent_says(&contact_id(&ana_b), "otra desde B").await;
    let from = |inbox: &[Value], text: &str| {
        inbox
            .iter()
            .find(|m| m["type"] == "text" && m["body"]["text"]["body"] == text)
            .and_then(|m| m["from"].as_str().map(str::to_string))
    };
    let ana = w.wait_for_inbox_text(ANA, "otra desde B").await;
    let ana = if from(&ana, "respuesta desde A").is_some() {
        ana
    } else {
        w.wait_for_inbox_text(ANA, "respuesta desde A").await
    };
    assert_eq!(from(&ana, "respuesta desde A").as_deref(), Some(a.as_str()));
    assert_eq!(from(&ana, "otra desde B").as_deref(), Some(b.as_str()));
    let beto = w.wait_for_inbox_text(BETO, "respuesta desde B").await;
    assert_eq!(
        from(&beto, "respuesta desde B").as_deref(),
        Some(b.as_str())
    );
    // The acknowledgements too (read marks and reactions come from the number written to).
    assert!(beto.iter().all(|m| m["from"] == b.as_str()), "{beto:?}");
    w.expect_inbound_settled().await;
}
