//! The simulator driven by the real AWS SDK clients: proves paths, methods, headers, bodies
//! and error shapes are what aws-sdk-connect / -connectparticipant / -socialmessaging
//! send and parse. The control API is driven over HTTP as tests of the service will.

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

struct Harness {
    url: String,
    inbound: Arc<MemoryQueue>,
    streamed: Arc<MemoryQueue>,
    connect: aws_sdk_connect::Client,
    participant: aws_sdk_connectparticipant::Client,
    social: aws_sdk_socialmessaging::Client,
    http: reqwest::Client,
}

async fn harness() -> Harness {
    let inbound = Arc::new(MemoryQueue::new("inbound", Duration::from_secs(30)));
    let streamed = Arc::new(MemoryQueue::new("streamed", Duration::from_secs(30)));
    let simulator = Simulator::new(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: streamed.clone(),
        }),
        true,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
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

    /// Starts a chat with streaming and a customer connection, as the service does.
    /// Returns (contact id, connection token).
    async fn open_chat(&self, first_text: &str, client_token: &str) -> (String, String) {
        let started = self
            .connect
            .start_chat_contact()
            .instance_id("inst-1")
            .contact_flow_id("flow-1")
            .attributes("Channel", "Whatsapp")
            .attributes("customerId", CUSTOMER)
            .attributes("customerName", "Lucía")
            .attributes(
                "systemNumber",
                "phone-number-id-5a1b2c3d4e5f40718293a4b5c6d7e8f9",
            )
            .participant_details(
                ParticipantDetails::builder()
                    .display_name("Lucía")
                    .build()
                    .unwrap(),
            )
            .initial_message(
                ChatMessage::builder()
                    .content_type("text/plain")
                    .content(first_text)
                    .build()
                    .unwrap(),
            )
            .chat_duration_in_minutes(1440)
            .client_token(client_token)
            .send()
            .await
            .unwrap();
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
            .client_token(format!("stream-{client_token}"))
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
        let credentials = connection.connection_credentials().unwrap();
        assert!(credentials.expiry().is_some());
        (
            contact_id,
            credentials.connection_token().unwrap().to_string(),
        )
    }

    async fn send_text(
        &self,
        connection_token: &str,
        text: &str,
    ) -> Result<
        String,
        aws_sdk_connectparticipant::error::SdkError<
            aws_sdk_connectparticipant::operation::send_message::SendMessageError,
        >,
    > {
        let sent = self
            .participant
            .send_message()
            .connection_token(connection_token)
            .content_type("text/plain")
            .content(text)
            .send()
            .await?;
        Ok(sent.id().unwrap_or_default().to_string())
    }
}

/// Reads `want` bodies from `queue` (waiting up to a few seconds), parsed as JSON.
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

fn inner(envelope: &Value) -> Value {
    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn connect_chat_round_trip_with_the_sdk() {
    let h = harness().await;
    let (contact_id, token) = h.open_chat("Hola, necesito ayuda", "start-1").await;

    // Same ClientToken: the same chat, nothing new.
    let again = h
        .connect
        .start_chat_contact()
        .instance_id("inst-1")
        .contact_flow_id("flow-1")
        .participant_details(
            ParticipantDetails::builder()
                .display_name("Lucía")
                .build()
                .unwrap(),
        )
        .client_token("start-1")
        .send()
        .await
        .unwrap();
    assert_eq!(again.contact_id(), Some(contact_id.as_str()));

    let message_id = h.send_text(&token, "Mi pedido es el 1234").await.unwrap();
    assert!(!message_id.is_empty());

    let chats = h.get("/sim/chats").await;
    assert_eq!(chats["chats"].as_array().unwrap().len(), 1);
    let chat = &chats["chats"][0];
    assert_eq!(chat["contact_id"], contact_id.as_str());
    assert_eq!(chat["initial_contact_id"], contact_id.as_str());
    assert_eq!(chat["state"], "active");
    assert_eq!(chat["customer_id"], CUSTOMER);
    assert_eq!(chat["attributes"]["Channel"], "Whatsapp");
    let items = chat["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content"], "Hola, necesito ayuda");
    assert_eq!(items[1]["id"], message_id.as_str());
    assert_eq!(items[1]["type"], "MESSAGE");
    assert_eq!(items[1]["participant_role"], "CUSTOMER");
    assert_eq!(items[1]["content_type"], "text/plain");

    let (status, agent) = h
        .post(
            &format!("/sim/chats/{contact_id}/agent/messages"),
            json!({"text": "¿Me pasás el número?", "display_name": "Martina"}),
        )
        .await;
    assert_eq!(status, 200);

    // The initial message, the customer's message, then the agent's, in order.
    let streamed = take(&h.streamed, 3).await;
    assert_eq!(streamed.len(), 3);
    let contents: Vec<Value> = streamed
        .iter()
        .map(|e| inner(e)["Content"].clone())
        .collect();
    assert_eq!(
        contents,
        [
            json!("Hola, necesito ayuda"),
            json!("Mi pedido es el 1234"),
            json!("¿Me pasás el número?")
        ]
    );
    let agent_envelope = &streamed[2];
    assert_eq!(agent_envelope["Type"], "Notification");
    assert_eq!(agent_envelope["TopicArn"], TOPIC);
    let attributes = &agent_envelope["MessageAttributes"];
    assert_eq!(
        attributes["ParticipantRole"],
        json!({"Type": "String", "Value": "AGENT"})
    );
    assert_eq!(attributes["MessageVisibility"]["Value"], "ALL");
    assert_eq!(attributes["ContactId"]["Value"], contact_id.as_str());
    assert_eq!(attributes["InitialContactId"]["Value"], contact_id.as_str());
    assert_eq!(attributes["InstanceId"]["Value"], "inst-1");
    let agent_item = inner(agent_envelope);
    assert_eq!(agent_item["Id"], agent["id"]);
    assert_eq!(agent_item["DisplayName"], "Martina");
    assert_eq!(agent_item["Type"], "MESSAGE");

    // 1025 characters: a ValidationException the SDK recognizes.
    let too_long = h.send_text(&token, &"a".repeat(1025)).await.unwrap_err();
    assert!(too_long.into_service_error().is_validation_exception());

    // After the agent ends the chat the token is refused with AccessDeniedException.
    let (status, _) = h
        .post(&format!("/sim/chats/{contact_id}/end"), json!({}))
        .await;
    assert_eq!(status, 200);
    let denied = h.send_text(&token, "¿hola?").await.unwrap_err();
    assert!(denied.into_service_error().is_access_denied_exception());
    let ended = take(&h.streamed, 1).await;
    let ended_item = inner(&ended[0]);
    assert_eq!(ended_item["Type"], "EVENT");
    assert_eq!(
        ended_item["ContentType"],
        "application/vnd.amazonaws.connect.event.chat.ended"
    );
    assert_eq!(ended_item["ParticipantRole"], "SYSTEM");
    assert_eq!(
        h.get(&format!("/sim/chats/{contact_id}")).await["state"],
        "ended"
    );
}

#[tokio::test]
async fn whatsapp_messages_flow_both_ways() {
    let h = harness().await;
    let identity = SimIdentity::default();

    // The customer writes: an EUM event wrapped in an SNS envelope reaches the queue.
    let (status, injected) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/messages"),
            json!({"type": "text", "text": {"body": "Hola"}, "profile_name": "Lucía"}),
        )
        .await;
    assert_eq!(status, 200);
    let wamid = injected["wamid"].as_str().unwrap().to_string();
    assert!(wamid.starts_with("wamid."));
    let events = take(&h.inbound, 1).await;
    let event = inner(&events[0]);
    assert_eq!(
        event["context"]["MetaPhoneNumberIds"][0]["arn"],
        identity.phone_number_arn
    );
    let entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    let value = &entry["changes"][0]["value"];
    assert_eq!(value["contacts"][0]["wa_id"], CUSTOMER);
    assert_eq!(value["contacts"][0]["profile"]["name"], "Lucía");
    let message = &value["messages"][0];
    assert_eq!(message["id"], wamid.as_str());
    assert_eq!(message["from"], CUSTOMER);
    assert_eq!(message["text"]["body"], "Hola");
    assert!(message["timestamp"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());

    // The business answers and marks the message read, through the SDK.
    let text = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": format!("+{CUSTOMER}"), "type": "text", "text": {"preview_url": false, "body": "¡Hola Lucía!"}});
    let sent = h
        .social
        .send_whats_app_message()
        .origination_phone_number_id(identity.phone_number_id())
        .message(Blob::new(text.to_string()))
        .meta_api_version("v20.0")
        .send()
        .await
        .unwrap();
    let read = json!({"messaging_product": "whatsapp", "message_id": wamid, "status": "read"});
    h.social
        .send_whats_app_message()
        .origination_phone_number_id(&identity.phone_number_arn)
        .message(Blob::new(read.to_string()))
        .meta_api_version("v20.0")
        .send()
        .await
        .unwrap();

    let inbox = h.get(&format!("/sim/customers/{CUSTOMER}/inbox")).await;
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"].as_str(), sent.message_id());
    assert_eq!(messages[0]["type"], "text");
    assert_eq!(messages[0]["body"], text);
    assert_eq!(messages[1]["type"], "read");

    // Meta reports the text delivered.
    let statuses = take(&h.inbound, 1).await;
    let entry: Value = serde_json::from_str(
        inner(&statuses[0])["whatsAppWebhookEntry"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let status = &entry["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["id"].as_str(), sent.message_id());
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["recipient_id"], CUSTOMER);

    // Another business number does not exist.
    let err = h
        .social
        .send_whats_app_message()
        .origination_phone_number_id("phone-number-id-00000000000000000000000000000000")
        .message(Blob::new(text.to_string()))
        .meta_api_version("v20.0")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
    let long = json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "x".repeat(4097)}});
    let err = h
        .social
        .send_whats_app_message()
        .origination_phone_number_id(identity.phone_number_id())
        .message(Blob::new(long.to_string()))
        .meta_api_version("v20.0")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_invalid_parameters_exception());
}

#[tokio::test]
async fn faults_transfers_and_expiry() {
    let h = harness().await;
    let (contact_id, token) = h.open_chat("hola", "start-f").await;
    take(&h.streamed, 1).await;

    // One injected AccessDenied, then normal service; the call log shows both.
    let (status, _) = h
        .post(
            "/sim/faults",
            json!({"operation": "SendMessage", "error": "AccessDeniedException", "rate": 1.0, "latency_ms": 0, "count": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let denied = h.send_text(&token, "uno").await.unwrap_err();
    assert!(denied.into_service_error().is_access_denied_exception());
    h.send_text(&token, "dos").await.unwrap();
    let calls = h.get("/sim/calls").await;
    let send_calls: Vec<&Value> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["operation"] == "SendMessage")
        .collect();
    assert_eq!(send_calls.len(), 2);
    assert_eq!(
        (
            send_calls[0]["status"].as_u64(),
            send_calls[1]["status"].as_u64()
        ),
        (Some(403), Some(200))
    );
    let items = h.get(&format!("/sim/chats/{contact_id}")).await["items"].clone();
    assert_eq!(
        items.as_array().unwrap().len(),
        2,
        "the faulted call had no effect"
    );
    let (status, _) = h
        .control(reqwest::Method::DELETE, "/sim/faults", None)
        .await;
    assert_eq!(status, 200);

    // Transfer: a new ContactId on later items, the chat found by both ids.
    let (status, transferred) = h
        .post(&format!("/sim/chats/{contact_id}/transfer"), json!({}))
        .await;
    assert_eq!(status, 200);
    let new_id = transferred["contact_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, contact_id);
    h.post(
        &format!("/sim/chats/{new_id}/agent/messages"),
        json!({"text": "te transfirieron"}),
    )
    .await;
    let streamed = take(&h.streamed, 2).await;
    let last = inner(&streamed[1]);
    assert_eq!(last["ContactId"], new_id.as_str());
    assert_eq!(last["InitialContactId"], contact_id.as_str());
    assert_eq!(
        h.get(&format!("/sim/chats/{contact_id}")).await["contact_id"],
        new_id.as_str()
    );

    // Expiry: tokens refused, nothing streamed.
    let (status, _) = h
        .post(&format!("/sim/chats/{new_id}/expire"), json!({}))
        .await;
    assert_eq!(status, 200);
    let denied = h.send_text(&token, "¿sigue ahí?").await.unwrap_err();
    assert!(denied.into_service_error().is_access_denied_exception());
    let nothing = h
        .streamed
        .receive(1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(nothing.is_empty(), "expiry streams nothing");
    let (status, body) = h
        .post(
            &format!("/sim/chats/{new_id}/agent/messages"),
            json!({"text": "tarde"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn unknown_routes_and_bad_control_requests() {
    let h = harness().await;
    let response = h
        .http
        .post(format!("{}/participant/nope", h.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers().get("x-amzn-errortype").unwrap(),
        "UnknownOperationException"
    );
    let (status, body) = h
        .control(reqwest::Method::GET, "/sim/chats/nope", None)
        .await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, _) = h
        .post("/sim/chats/nope/agent/messages", json!({"text": "x"}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = h.post("/sim/faults", json!({"operation": "Nope"})).await;
    assert_eq!(status, 400);
    let (status, _) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/messages"),
            json!({"text": {"body": "no type"}}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .post(
            "/sim/customers/abc/messages",
            json!({"type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(status, 400);

    let big = "x".repeat(2 * 1024 * 1024);
    let response = h
        .http
        .post(format!("{}/sim/inbound/raw", h.url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = h
        .http
        .post(format!("{}/sim/inbound/raw", h.url))
        .body("not json at all")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let raw = h.inbound.receive(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(raw[0].body, "not json at all");
    assert_eq!(h.get("/sim/healthz").await["status"], "ok");
}

/// The SQS/SNS sinks against a real emulator (moto server), which `./scripts/test.sh`
/// starts and names in `WACONNECT_TEST_AWS_ENDPOINT`.
#[tokio::test]
async fn aws_sinks_deliver_through_sqs_and_sns() {
    use waconnect::ports::{ChatStreamSink, InboundSink};
    use waconnect::sim::{SnsChatStreamSink, SnsInboundSink, SqsInboundSink};

    let endpoint = std::env::var("WACONNECT_TEST_AWS_ENDPOINT")
        .expect("WACONNECT_TEST_AWS_ENDPOINT is unset: run ./scripts/test.sh, which starts moto");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("sim-in-{suffix}"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap();
    let topic_arn = sns
        .create_topic()
        .name(format!("sim-topic-{suffix}"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();
    let receive = || async {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(5)
            .send()
            .await
            .unwrap();
        let message = out.messages().first().cloned().unwrap();
        sqs.delete_message()
            .queue_url(&queue_url)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
        message.body().unwrap().to_string()
    };
    let event = r#"{"context":{},"whatsAppWebhookEntry":"{}"}"#;

    let wrapped = SqsInboundSink::new(sqs.clone(), queue_url.clone(), false);
    wrapped.publish_event(event).await.unwrap();
    let body: Value = serde_json::from_str(&receive().await).unwrap();
    assert_eq!(body["Type"], "Notification");
    assert_eq!(body["Message"], event);
    wrapped.enqueue_raw("raw body").await.unwrap();
    assert_eq!(receive().await, "raw body");

    let raw = SqsInboundSink::new(sqs.clone(), queue_url.clone(), true);
    raw.publish_event(event).await.unwrap();
    assert_eq!(receive().await, event);

    let via_topic = SnsInboundSink {
        client: sns.clone(),
        topic_arn: topic_arn.clone(),
        queue: Some(raw),
    };
    via_topic.publish_event(event).await.unwrap();
    let body: Value = serde_json::from_str(&receive().await).unwrap();
    assert_eq!(body["TopicArn"], topic_arn.as_str());
    assert_eq!(body["Message"], event);

    let stream = SnsChatStreamSink { client: sns };
    let attributes = vec![("ContactId".to_string(), "c-1".to_string())];
    stream
        .publish(&topic_arn, "{\"Type\":\"MESSAGE\"}", &attributes)
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&receive().await).unwrap();
    assert_eq!(body["MessageAttributes"]["ContactId"]["Value"], "c-1");
    assert_eq!(body["MessageAttributes"]["ContactId"]["Type"], "String");
}
