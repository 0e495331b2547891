//! The simulator's conversation features through the real AWS SDK clients and its control
//! API over HTTP: receipts (`/read`, SendEvent naming items), the 24-hour window (131047),
//! agent typing and joining, interactive messages both ways, several business numbers.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_connect::types::{ChatMessage, ChatStreamingConfiguration, ParticipantDetails};
use aws_sdk_connectparticipant::types::ConnectionType;
use aws_sdk_socialmessaging::primitives::Blob;
use serde_json::{json, Value};

use waconnect::adapters::local::MemoryQueue;
use waconnect::ports::Queue;
use waconnect::sim::{self, MemoryChatStreamSink, MemoryInboundSink, SimIdentity, Simulator};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:waconnect-connect-out";
const CUSTOMER: &str = "5491155550123";
const INTERACTIVE: &str = "application/vnd.amazonaws.connect.message.interactive";
const RESPONSE: &str = "application/vnd.amazonaws.connect.message.interactive.response";
const DELIVERED: &str = "application/vnd.amazonaws.connect.event.message.delivered";
const READ: &str = "application/vnd.amazonaws.connect.event.message.read";

struct Harness {
    url: String,
    identity: SimIdentity,
    inbound: Arc<MemoryQueue>,
    streamed: Arc<MemoryQueue>,
    connect: aws_sdk_connect::Client,
    participant: aws_sdk_connectparticipant::Client,
    social: aws_sdk_socialmessaging::Client,
    http: reqwest::Client,
}

async fn harness(numbers: usize) -> Harness {
    let inbound = Arc::new(MemoryQueue::new("inbound", Duration::from_secs(30)));
    let streamed = Arc::new(MemoryQueue::new("streamed", Duration::from_secs(30)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let identity = SimIdentity {
        business_numbers: numbers,
        ..SimIdentity::default()
    };
    let simulator = Simulator::new(
        identity.clone(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: streamed.clone(),
        }),
        true,
    );
    tokio::spawn(sim::serve(listener, simulator));
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    Harness {
        connect: aws_sdk_connect::Client::new(&config),
        participant: aws_sdk_connectparticipant::Client::new(&config),
        social: aws_sdk_socialmessaging::Client::new(&config),
        http: reqwest::Client::new(),
        url,
        identity,
        inbound,
        streamed,
    }
}

impl Harness {
    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.control(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }

    /// A chat as the router starts one (with `supported` content types when given).
    /// Returns (contact id, connection token).
    async fn open_chat(&self, token: &str, supported: &[&str]) -> (String, String) {
        let mut start = self
            .connect
            .start_chat_contact()
            .instance_id("inst-1")
            .contact_flow_id("flow-1")
            .attributes("customerId", CUSTOMER)
            .participant_details(
                ParticipantDetails::builder()
                    .display_name("Lucía")
                    .build()
                    .unwrap(),
            )
            .initial_message(
                ChatMessage::builder()
                    .content_type("text/plain")
                    .content("hola")
                    .build()
                    .unwrap(),
            )
            .client_token(token);
        for t in supported {
            start = start.supported_messaging_content_types(*t);
        }
        let started = start.send().await.unwrap();
        let contact_id = started.contact_id().unwrap().to_string();
        self.connect
            .start_contact_streaming()
            .instance_id("inst-1")
            .contact_id(&contact_id)
            .chat_streaming_configuration(
                ChatStreamingConfiguration::builder()
                    .streaming_endpoint_arn(TOPIC)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let connection = self
            .participant
            .create_participant_connection()
            .participant_token(started.participant_token().unwrap())
            .r#type(ConnectionType::ConnectionCredentials)
            .connect_participant(true)
            .send()
            .await
            .unwrap();
        let token = connection
            .connection_credentials()
            .unwrap()
            .connection_token()
            .unwrap()
            .to_string();
        (contact_id, token)
    }

    /// SendWhatsAppMessage from `number` (id or ARN); answers the message id.
    async fn whatsapp(&self, number: &str, message: Value) -> Result<String, String> {
        self.social
            .send_whats_app_message()
            .origination_phone_number_id(number)
            .message(Blob::new(message.to_string()))
            .meta_api_version("v20.0")
            .send()
            .await
            .map(|out| out.message_id().unwrap().to_string())
            .map_err(|e| format!("{:?}", e.into_service_error()))
    }

    async fn chat(&self, contact_id: &str) -> Value {
        self.get(&format!("/sim/chats/{contact_id}")).await
    }
}

/// Reads `want` bodies from `queue` (waiting a few seconds at most), parsed as JSON.
async fn take(queue: &MemoryQueue, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < want {
        let batch = queue.receive(10, Duration::from_secs(3)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            got.push(serde_json::from_str(&message.body).unwrap());
            queue.delete(&message.receipt).await.unwrap();
        }
    }
    got
}

/// The webhook value of an inbound SNS envelope.
fn webhook_value(envelope: &Value) -> Value {
    let event: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    let entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    let mut value = entry["changes"][0]["value"].clone();
    value["_context"] = event["context"].clone();
    value
}

/// Statuses on the inbound path, as (id, status, callback data, first error code).
async fn statuses(h: &Harness, want: usize) -> Vec<(String, String, Option<String>, Option<i64>)> {
    take(&h.inbound, want)
        .await
        .iter()
        .map(webhook_value)
        .flat_map(|v| v["statuses"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["biz_opaque_callback_data"].as_str().map(str::to_string),
                s["errors"][0]["code"].as_i64(),
            )
        })
        .collect()
}

fn text_to(customer: &str, body: &str, callback: Option<&str>) -> Value {
    let mut v = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": format!("+{customer}"), "type": "text", "text": {"body": body}});
    if let Some(c) = callback {
        v["biz_opaque_callback_data"] = json!(c);
    }
    v
}

#[tokio::test]
async fn the_customer_reads_and_receipts_name_the_items_they_acknowledge() {
    let h = harness(1).await;
    let (contact, token) = h.open_chat("start", &["text/plain"]).await;
    let item = h
        .post_ok(
            &format!("/sim/chats/{contact}/agent/messages"),
            json!({"text": "¿Algo más?"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let number = h.identity.phone_number_id();
    let data = format!("{contact}|{item}");
    let wamid = h
        .whatsapp(&number, text_to(CUSTOMER, "¿Algo más?", Some(&data)))
        .await
        .unwrap();
    // Meta's delivered status echoes the callback data.
    assert_eq!(
        statuses(&h, 1).await,
        vec![(wamid.clone(), "delivered".into(), Some(data.clone()), None)]
    );
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/read"),
        json!({"message_id": wamid}),
    )
    .await;
    assert_eq!(
        statuses(&h, 1).await,
        vec![(wamid.clone(), "read".into(), Some(data.clone()), None)]
    );
    // Only business messages the customer received can be read.
    let (status, _) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/read"),
            json!({"message_id": "wamid.nope"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/read"),
            json!({"id": wamid}),
        )
        .await;
    assert_eq!(status, 400);

    for event in [DELIVERED, READ] {
        h.participant
            .send_event()
            .connection_token(&token)
            .content_type(event)
            .content(json!({"messageId": item}).to_string())
            .send()
            .await
            .unwrap();
    }
    let chat = h.chat(&contact).await;
    let receipts: Vec<(String, String)> = chat["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "EVENT")
        .map(|i| {
            (
                i["content_type"].as_str().unwrap().to_string(),
                i["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        vec![
            (DELIVERED.to_string(), item.clone()),
            (READ.to_string(), item.clone())
        ]
    );
    // A receipt must name an item of the chat.
    for content in [
        json!({"messageId": "not-an-item"}).to_string(),
        "{}".to_string(),
    ] {
        let err = h
            .participant
            .send_event()
            .connection_token(&token)
            .content_type(READ)
            .content(content)
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_validation_exception());
    }
    // Callback data over Meta's 512 characters is refused.
    let long = "x".repeat(513);
    let err = h
        .whatsapp(&number, text_to(CUSTOMER, "x", Some(&long)))
        .await
        .unwrap_err();
    assert!(err.contains("InvalidParameters"), "{err}");
}

#[tokio::test]
async fn a_closed_window_accepts_then_fails_free_form_messages_with_131047() {
    let h = harness(1).await;
    let number = h.identity.phone_number_id();
    let (status, answer) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/window"),
            json!({"open": false}),
        )
        .await;
    assert_eq!((status, answer), (200, json!({"open": false})));

    let wamid = h
        .whatsapp(&number, text_to(CUSTOMER, "¿Seguís ahí?", Some("c|i")))
        .await
        .expect("accepted by SendWhatsAppMessage");
    assert_eq!(
        statuses(&h, 1).await,
        vec![(wamid, "failed".into(), Some("c|i".into()), Some(131047))]
    );
    // Templates still go out.
    let template = json!({"messaging_product": "whatsapp", "to": format!("+{CUSTOMER}"),
        "type": "template", "template": {"name": "hello", "language": {"code": "es"}}});
    let t = h.whatsapp(&number, template).await.unwrap();
    assert_eq!(statuses(&h, 1).await[0].1, "delivered");
    let inbox = h.get(&format!("/sim/customers/{CUSTOMER}/inbox")).await;
    let ids: Vec<&str> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [t.as_str()],
        "the refused text never reached the customer"
    );

    // The customer writing opens the window again; so does {"open": true}.
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/messages"),
        json!({"type": "text", "text": {"body": "acá estoy"}}),
    )
    .await;
    take(&h.inbound, 1).await;
    h.whatsapp(&number, text_to(CUSTOMER, "¡Hola!", None))
        .await
        .unwrap();
    assert_eq!(statuses(&h, 1).await[0].1, "delivered");
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/window"),
        json!({"open": false}),
    )
    .await;
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/window"),
        json!({"open": true}),
    )
    .await;
    h.whatsapp(&number, text_to(CUSTOMER, "otra", None))
        .await
        .unwrap();
    assert_eq!(statuses(&h, 1).await[0].1, "delivered");
    let (status, _) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/window"),
            json!({"open": "no"}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn agent_typing_and_joining_are_streamed_as_connect_does() {
    let h = harness(1).await;
    let (contact, _) = h.open_chat("start", &["text/plain"]).await;
    assert_eq!(h.chat(&contact).await["agent_joined"], false);
    h.post_ok(
        &format!("/sim/chats/{contact}/agent/join"),
        json!({"display_name": "Martina"}),
    )
    .await;
    // An empty body is fine too.
    let typing = h
        .control(
            reqwest::Method::POST,
            &format!("/sim/chats/{contact}/agent/typing"),
            None,
        )
        .await;
    assert_eq!(typing.0, 200, "{}", typing.1);
    let chat = h.chat(&contact).await;
    assert_eq!(chat["agent_joined"], true);
    assert_eq!(chat["agent_display_name"], "Martina");

    // The initial message, then the two events, with Connect's attributes.
    let streamed = take(&h.streamed, 3).await;
    let events: Vec<(String, String, String)> = streamed[1..]
        .iter()
        .map(|e| {
            let item: Value = serde_json::from_str(e["Message"].as_str().unwrap()).unwrap();
            (
                item["Type"].as_str().unwrap().to_string(),
                item["ContentType"].as_str().unwrap().to_string(),
                e["MessageAttributes"]["ParticipantRole"]["Value"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (
                "EVENT".into(),
                "application/vnd.amazonaws.connect.event.participant.joined".into(),
                "AGENT".into()
            ),
            (
                "EVENT".into(),
                "application/vnd.amazonaws.connect.event.typing".into(),
                "AGENT".into()
            ),
        ]
    );
    let (status, _) = h
        .post(
            &format!("/sim/chats/{contact}/agent/join"),
            json!({"display_name": ""}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = h.post("/sim/chats/nope/agent/typing", json!({})).await;
    assert_eq!(status, 404);
    h.post_ok(&format!("/sim/chats/{contact}/end"), json!({}))
        .await;
    let (status, _) = h
        .post(&format!("/sim/chats/{contact}/agent/typing"), json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn interactive_messages_both_ways() {
    let h = harness(1).await;
    let (contact, token) = h.open_chat("start", &["text/plain", RESPONSE]).await;
    let template = json!({"templateType": "QuickReply", "version": "1.0",
        "data": {"content": {"title": "¿Seguimos?", "elements": [{"title": "Sí"}, {"title": "No"}]}}});
    h.post_ok(
        &format!("/sim/chats/{contact}/agent/messages"),
        json!({"content_type": INTERACTIVE, "text": template.to_string(), "role": "SYSTEM"}),
    )
    .await;
    let streamed = take(&h.streamed, 2).await;
    let item: Value = serde_json::from_str(streamed[1]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(item["ContentType"], INTERACTIVE);
    assert_eq!(
        serde_json::from_str::<Value>(item["Content"].as_str().unwrap()).unwrap(),
        template
    );
    for bad in ["not json", r#"{"data": {}}"#] {
        let (status, _) = h
            .post(
                &format!("/sim/chats/{contact}/agent/messages"),
                json!({"content_type": INTERACTIVE, "text": bad}),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }

    // The customer's answer, as the chat declared it supports.
    let response = json!({"templateType": "QuickReply", "version": "1.0",
        "data": {"content": {"title": "Sí", "selectedIndex": 0}}});
    h.participant
        .send_message()
        .connection_token(&token)
        .content_type(RESPONSE)
        .content(response.to_string())
        .send()
        .await
        .unwrap();
    let chat = h.chat(&contact).await;
    let last = chat["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content_type"], RESPONSE);
    assert_eq!(last["participant_role"], "CUSTOMER");
    assert_eq!(
        chat["supported_content_types"],
        json!(["text/plain", RESPONSE])
    );
    // Not JSON: refused. A chat that did not declare the type: refused.
    let err = h
        .participant
        .send_message()
        .connection_token(&token)
        .content_type(RESPONSE)
        .content("Sí")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
    let (_, plain_token) = h.open_chat("other", &[]).await;
    let err = h
        .participant
        .send_message()
        .connection_token(&plain_token)
        .content_type(RESPONSE)
        .content(response.to_string())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());

    // WhatsApp side: Meta's limits hold.
    let number = h.identity.phone_number_id();
    let buttons = |titles: &[&str]| {
        let buttons: Vec<Value> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": t}}))
            .collect();
        json!({"messaging_product": "whatsapp", "to": format!("+{CUSTOMER}"), "type": "interactive",
               "interactive": {"type": "button", "body": {"text": "¿Seguimos?"},
                               "action": {"buttons": buttons}}})
    };
    h.whatsapp(&number, buttons(&["Sí", "No"])).await.unwrap();
    let err = h
        .whatsapp(&number, buttons(&["a", "b", "c", "d"]))
        .await
        .unwrap_err();
    assert!(err.contains("InvalidParameters"), "{err}");
    let err = h
        .whatsapp(&number, buttons(&["un título demasiado largo"]))
        .await
        .unwrap_err();
    assert!(err.contains("InvalidParameters"), "{err}");
    let inbox = h.get(&format!("/sim/customers/{CUSTOMER}/inbox")).await;
    assert_eq!(inbox["messages"].as_array().unwrap().len(), 1);
    assert_eq!(inbox["messages"][0]["type"], "interactive");
}

#[tokio::test]
async fn several_business_numbers() {
    let h = harness(3).await;
    let listed = h.get("/sim/business-numbers").await;
    let numbers = listed["numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 3);
    assert_eq!(
        numbers[0]["phone_number_id"],
        h.identity.phone_number_id().as_str()
    );
    assert_eq!(numbers[0]["display_phone_number"], "15550783881");
    assert_eq!(numbers[0]["meta_phone_number_id"], "106540352242922");
    let second = numbers[1]["phone_number_id"].as_str().unwrap().to_string();
    assert_ne!(second, h.identity.phone_number_id());

    // A customer writes to the second number: the event says so, context and metadata.
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/messages"),
        json!({"type": "text", "text": {"body": "hola B"}, "business_phone_number_id": second}),
    )
    .await;
    let value = webhook_value(&take(&h.inbound, 1).await[0]);
    assert_eq!(
        value["metadata"]["phone_number_id"],
        numbers[1]["meta_phone_number_id"]
    );
    assert_eq!(
        value["metadata"]["display_phone_number"],
        numbers[1]["display_phone_number"]
    );
    let arn = value["_context"]["MetaPhoneNumberIds"][0]["arn"]
        .as_str()
        .unwrap();
    assert_eq!(
        waconnect::domain::eum_phone_number_id_from_arn(arn).as_deref(),
        Some(second.as_str())
    );
    assert!(value["messages"][0]
        .get("business_phone_number_id")
        .is_none());
    // Without the field: the first number.
    h.post_ok(
        &format!("/sim/customers/{CUSTOMER}/messages"),
        json!({"type": "text", "text": {"body": "hola A"}}),
    )
    .await;
    let value = webhook_value(&take(&h.inbound, 1).await[0]);
    assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
    let (status, answer) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/messages"),
            json!({"type": "text", "text": {"body": "x"}, "business_phone_number_id": "phone-number-id-zzz"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    // Replies: the inbox names the number that sent each, the status comes from it.
    h.whatsapp(&second, text_to(CUSTOMER, "desde B", None))
        .await
        .unwrap();
    // The third by its ARN, as EUM accepts either.
    h.whatsapp(
        &numbers[2]["phone_number_id"].as_str().unwrap().replace(
            "phone-number-id-",
            "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/",
        ),
        text_to(CUSTOMER, "desde C", None),
    )
    .await
    .unwrap();
    let inbox = h.get(&format!("/sim/customers/{CUSTOMER}/inbox")).await;
    let from: Vec<(&str, &str)> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["body"]["text"]["body"].as_str().unwrap(),
                m["from"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        from,
        [
            ("desde B", second.as_str()),
            ("desde C", numbers[2]["phone_number_id"].as_str().unwrap())
        ]
    );
    let statuses: Vec<Value> = take(&h.inbound, 2)
        .await
        .iter()
        .map(webhook_value)
        .collect();
    // Each status is published on its own: any order.
    let mut senders: Vec<String> = statuses
        .iter()
        .map(|v| {
            v["metadata"]["phone_number_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    senders.sort();
    assert_eq!(
        senders,
        [
            numbers[1]["meta_phone_number_id"].as_str().unwrap(),
            numbers[2]["meta_phone_number_id"].as_str().unwrap()
        ]
    );
    // A number the business does not own: EUM's ResourceNotFoundException.
    let err = h
        .whatsapp("phone-number-id-zzz", text_to(CUSTOMER, "x", None))
        .await
        .unwrap_err();
    assert!(err.contains("ResourceNotFound"), "{err}");
}
