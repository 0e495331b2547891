//! The simulator driven by the real AWS SDK clients: proves paths, methods, headers, bodies
//! and error shapes are what aws-sdk-connect / -connectparticipant / -socialmessaging
//! send and parse. The control API is driven over HTTP as tests of the service will.
//! Media goes to a [`LocalMediaDir`] in a temporary directory. (The AWS adapters against
//! moto are in `aws_adapters.rs`.)

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_connect::types::{ChatMessage, ChatStreamingConfiguration, ParticipantDetails};
use aws_sdk_connectparticipant::types::ConnectionType;
use aws_sdk_socialmessaging::primitives::Blob;
use serde_json::{json, Value};

use waconnect::adapters::local::{LocalMediaDir, MemoryQueue};
use waconnect::ports::{MediaStore, Queue};
use waconnect::sim::{self, MemoryChatStreamSink, MemoryInboundSink, SimIdentity, Simulator};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:waconnect-connect-out";
const CUSTOMER: &str = "5491155550123";

struct Harness {
    url: String,
    /// The simulator's media store (what GetWhatsAppMessageMedia writes into).
    media: Arc<LocalMediaDir>,
    _media_root: tempfile::TempDir,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let media_root = tempfile::tempdir().unwrap();
    let media = Arc::new(LocalMediaDir::new(media_root.path().join("media"), &url));
    let simulator = Simulator::with_local_media(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: streamed.clone(),
        }),
        true,
        media.clone(),
    );
    tokio::spawn(sim::serve(listener, simulator));

    let config = sdk_config(&url).await;
    Harness {
        connect: aws_sdk_connect::Client::new(&config),
        participant: aws_sdk_connectparticipant::Client::new(&config),
        social: aws_sdk_socialmessaging::Client::new(&config),
        http: reqwest::Client::new(),
        url,
        media,
        _media_root: media_root,
        inbound,
        streamed,
    }
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
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

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The Meta message object inside an inbound SNS envelope.
fn customer_message_of(envelope: &Value) -> Value {
    let entry: Value =
        serde_json::from_str(inner(envelope)["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    entry["changes"][0]["value"]["messages"][0].clone()
}

impl Harness {
    /// The customer sends `body` (with its `"media"`); returns the Meta message as
    /// the business receives it.
    async fn customer_sends(&self, body: Value) -> Value {
        let (status, answer) = self
            .post(&format!("/sim/customers/{CUSTOMER}/messages"), body)
            .await;
        assert_eq!(status, 200, "{answer}");
        customer_message_of(&take(&self.inbound, 1).await[0])
    }

    async fn start_upload(
        &self,
        token: &str,
        name: &str,
        content_type: &str,
        size: usize,
        client_token: &str,
    ) -> Result<
        aws_sdk_connectparticipant::operation::start_attachment_upload::StartAttachmentUploadOutput,
        aws_sdk_connectparticipant::error::SdkError<
            aws_sdk_connectparticipant::operation::start_attachment_upload::StartAttachmentUploadError,
        >,
    >{
        self.participant
            .start_attachment_upload()
            .connection_token(token)
            .content_type(content_type)
            .attachment_size_in_bytes(size as i64)
            .attachment_name(name)
            .client_token(client_token)
            .send()
            .await
    }

    /// PUTs `bytes` to an upload URL with `headers`; returns the HTTP status.
    async fn put_upload(&self, url: &str, headers: &[(String, String)], bytes: &[u8]) -> u16 {
        let mut request = self.http.put(url).body(bytes.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// GETs a URL; returns (status, content type, bytes).
    async fn download(&self, url: &str) -> (u16, String, Vec<u8>) {
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            status,
            content_type,
            response.bytes().await.unwrap().to_vec(),
        )
    }
}

fn upload_headers(
    output: &aws_sdk_connectparticipant::operation::start_attachment_upload::StartAttachmentUploadOutput,
) -> (String, Vec<(String, String)>) {
    let metadata = output.upload_metadata().unwrap();
    let headers = metadata
        .headers_to_include()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (metadata.url().unwrap().to_string(), headers)
}

#[tokio::test]
async fn customer_media_is_fetched_with_get_whatsapp_message_media() {
    use aws_sdk_socialmessaging::types::{S3File, S3PresignedUrl};

    let h = harness().await;
    let identity = SimIdentity::default();
    let voice = b"OggS\x00\x02 a voice note".to_vec();
    let message = h
        .customer_sends(json!({
            "type": "audio", "audio": {"voice": true},
            "media": {"content_base64": b64(&voice), "mime_type": "audio/ogg; codecs=opus"},
        }))
        .await;
    let audio = &message["audio"];
    let media_id = audio["id"].as_str().unwrap().to_string();
    assert_eq!(audio["mime_type"], "audio/ogg; codecs=opus");
    assert_eq!(audio["voice"], true);
    {
        use sha2::Digest as _;
        assert_eq!(audio["sha256"], b64(&sha2::Sha256::digest(&voice)));
    }
    assert!(message.get("media").is_none());

    let fetched = h
        .social
        .get_whats_app_message_media()
        .media_id(&media_id)
        .origination_phone_number_id(identity.phone_number_id())
        .destination_s3_file(
            S3File::builder()
                .bucket_name("wa-media")
                .key("inbound/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.mime_type(), Some("audio/ogg; codecs=opus"));
    assert_eq!(fetched.file_size(), Some(voice.len() as i64));
    // The documented layout: <key><mediaId>.<MIME subtype without parameters>.
    let stored = h
        .media
        .get("wa-media", &format!("inbound/{media_id}.ogg"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(stored, voice);

    // metadataOnly answers without writing anything.
    let metadata = h
        .social
        .get_whats_app_message_media()
        .media_id(&media_id)
        .origination_phone_number_id(&identity.phone_number_arn)
        .metadata_only(true)
        .destination_s3_file(
            S3File::builder()
                .bucket_name("elsewhere")
                .key("x/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.file_size(), Some(voice.len() as i64));
    assert!(h
        .media
        .get("elsewhere", &format!("x/{media_id}.ogg"), 1 << 20)
        .await
        .is_err());

    let unknown = h
        .social
        .get_whats_app_message_media()
        .media_id("000")
        .origination_phone_number_id(identity.phone_number_id())
        .destination_s3_file(
            S3File::builder()
                .bucket_name("wa-media")
                .key("inbound/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(unknown
        .into_service_error()
        .is_resource_not_found_exception());

    // A document, delivered to a pre-signed URL: Connect's own upload URL, so the file
    // goes from WhatsApp to the chat without passing through the business.
    let pdf = b"%PDF-1.7 invoice 0042".to_vec();
    let document = h
        .customer_sends(json!({
            "type": "document", "document": {"caption": "invoice"},
            "media": {"content_base64": b64(&pdf), "mime_type": "application/pdf", "filename": "inv.pdf"},
        }))
        .await;
    assert_eq!(document["document"]["filename"], "inv.pdf");
    assert_eq!(document["document"]["caption"], "invoice");
    assert_eq!(document["document"]["mime_type"], "application/pdf");
    let (contact_id, token) = h.open_chat("invoice", "start-doc").await;
    let upload = h
        .start_upload(&token, "inv.pdf", "application/pdf", pdf.len(), "up-doc")
        .await
        .unwrap();
    let (url, headers) = upload_headers(&upload);
    let mut presigned = S3PresignedUrl::builder().url(url);
    for (name, value) in &headers {
        presigned = presigned.headers(name, value);
    }
    let delivered = h
        .social
        .get_whats_app_message_media()
        .media_id(document["document"]["id"].as_str().unwrap())
        .origination_phone_number_id(identity.phone_number_id())
        .destination_s3_presigned_url(presigned.build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.mime_type(), Some("application/pdf"));
    let attachment_id = upload.attachment_id().unwrap();
    let (status, content_type, bytes) = h
        .download(&format!(
            "{}/sim/chats/{contact_id}/attachments/{attachment_id}",
            h.url
        ))
        .await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    assert_eq!(bytes, pdf);

    // Over 25 MiB of media is refused by the control API.
    let (status, body) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/messages"),
            json!({"type": "video", "media": {"content_base64": b64(&vec![0u8; 25 * 1024 * 1024 + 1]), "mime_type": "video/mp4"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = h
        .post(
            &format!("/sim/customers/{CUSTOMER}/messages"),
            json!({"type": "text", "text": {"body": "x"}, "media": {"content_base64": "eA==", "mime_type": "image/png"}}),
        )
        .await;
    assert_eq!(status, 400, "media needs a media type");
}

#[tokio::test]
async fn get_whatsapp_message_media_without_a_media_store_is_an_internal_error() {
    let inbound = Arc::new(MemoryQueue::new("inbound", Duration::from_secs(30)));
    let simulator = Simulator::new(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: inbound.clone(),
        }),
        false,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim::serve(listener, simulator));
    let social = aws_sdk_socialmessaging::Client::new(&sdk_config(&url).await);
    let response = reqwest::Client::new()
        .post(format!("{url}/sim/customers/{CUSTOMER}/messages"))
        .json(&json!({"type": "image", "media": {"content_base64": b64(b"\xff\xd8"), "mime_type": "image/jpeg"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message = customer_message_of(&take(&inbound, 1).await[0]);
    let err = social
        .get_whats_app_message_media()
        .media_id(message["image"]["id"].as_str().unwrap())
        .origination_phone_number_id(SimIdentity::default().phone_number_id())
        .destination_s3_file(
            aws_sdk_socialmessaging::types::S3File::builder()
                .bucket_name("b")
                .key("k/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_internal_service_exception(), "{err:?}");
    assert!(err.to_string().contains("no media store"), "{err}");
}

#[tokio::test]
async fn customer_attachments_upload_complete_and_stream() {
    use aws_sdk_connectparticipant::error::ProvideErrorMetadata as _;

    let h = harness().await;
    let (contact_id, token) = h.open_chat("hola", "start-a").await;
    take(&h.streamed, 1).await;
    let pdf = b"%PDF-1.4 factura".to_vec();
    let started = h
        .start_upload(&token, "factura.pdf", "application/pdf", pdf.len(), "up-1")
        .await
        .unwrap();
    let again = h
        .start_upload(&token, "factura.pdf", "application/pdf", pdf.len(), "up-1")
        .await
        .unwrap();
    assert_eq!(started.attachment_id(), again.attachment_id());
    let attachment_id = started.attachment_id().unwrap().to_string();
    let (url, headers) = upload_headers(&started);
    assert_eq!(url, format!("{}/sim/upload/{attachment_id}", h.url));
    assert!(started.upload_metadata().unwrap().url_expiry().is_some());
    assert!(headers.contains(&("Content-Type".into(), "application/pdf".into())));

    // S3 would refuse a PUT without the signed headers, or with a different size.
    assert_eq!(h.put_upload(&url, &[], &pdf).await, 403);
    let content_type_only = vec![("Content-Type".to_string(), "application/pdf".to_string())];
    assert_eq!(h.put_upload(&url, &content_type_only, &pdf).await, 403);
    assert_eq!(h.put_upload(&url, &headers, &pdf[..5]).await, 400);
    let not_uploaded = h
        .participant
        .complete_attachment_upload()
        .connection_token(&token)
        .attachment_ids(&attachment_id)
        .client_token("done-0")
        .send()
        .await
        .unwrap_err();
    assert!(not_uploaded.into_service_error().is_validation_exception());
    assert_eq!(h.put_upload(&url, &headers, &pdf).await, 200);

    for _ in 0..2 {
        h.participant
            .complete_attachment_upload()
            .connection_token(&token)
            .attachment_ids(&attachment_id)
            .client_token("done-1")
            .send()
            .await
            .unwrap();
    }
    let streamed = take(&h.streamed, 1).await;
    let attributes = &streamed[0]["MessageAttributes"];
    assert_eq!(attributes["Type"]["Value"], "ATTACHMENT");
    assert_eq!(attributes["ContentType"]["Value"], "application/pdf");
    assert_eq!(attributes["ParticipantRole"]["Value"], "CUSTOMER");
    assert_eq!(attributes["MessageVisibility"]["Value"], "ALL");
    let item = inner(&streamed[0]);
    assert_eq!(item["Type"], "ATTACHMENT");
    assert_eq!(item["ContactId"], contact_id.as_str());
    assert_eq!(
        item["Attachments"],
        json!([{"AttachmentId": attachment_id, "AttachmentName": "factura.pdf",
                "ContentType": "application/pdf", "Status": "APPROVED"}])
    );
    let nothing = h
        .streamed
        .receive(1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        nothing.is_empty(),
        "the repeated completion recorded nothing"
    );

    let chat = h.get(&format!("/sim/chats/{contact_id}")).await;
    let last = chat["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "ATTACHMENT");
    assert_eq!(
        last["attachment"],
        json!({"id": attachment_id, "name": "factura.pdf", "content_type": "application/pdf",
               "size": pdf.len(), "sha256": sha256_hex(&pdf), "status": "APPROVED"})
    );

    // The business can read the customer's file back through GetAttachment.
    let got = h
        .participant
        .get_attachment()
        .connection_token(&token)
        .attachment_id(&attachment_id)
        .send()
        .await
        .unwrap();
    assert_eq!(got.attachment_size_in_bytes(), pdf.len() as i64);
    let (status, _, bytes) = h.download(got.url().unwrap()).await;
    assert_eq!((status, bytes), (200, pdf.clone()));
    // After completion the upload URL takes nothing more.
    assert_eq!(h.put_upload(&url, &headers, &pdf).await, 403);

    // Connect refuses voice notes (.ogg), oversized and empty files.
    let ogg = h
        .start_upload(&token, "nota.ogg", "audio/ogg", 10, "up-ogg")
        .await
        .unwrap_err()
        .into_service_error();
    assert!(ogg.is_validation_exception());
    assert!(ogg
        .message()
        .unwrap_or_default()
        .contains("unsupported attachment type"));
    for size in [0, 20 * 1024 * 1024 + 1] {
        let err = h
            .start_upload(
                &token,
                "big.pdf",
                "application/pdf",
                size,
                &format!("up-{size}"),
            )
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_validation_exception());
    }
}

#[tokio::test]
async fn agent_attachments_download_through_get_attachment() {
    use aws_sdk_connectparticipant::error::ProvideErrorMetadata as _;

    let h = harness().await;
    let (contact_id, token) = h.open_chat("hola", "start-g").await;
    take(&h.streamed, 1).await;
    let png = b"\x89PNG\r\n\x1a\n plano".to_vec();
    let path = format!("/sim/chats/{contact_id}/agent/messages");
    let (status, answer) = h
        .post(
            &path,
            json!({"attachment": {"name": "plano.png", "content_type": "image/png", "content_base64": b64(&png)},
                   "display_name": "Martina"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let attachment_id = answer["attachment_id"].as_str().unwrap().to_string();
    let streamed = take(&h.streamed, 1).await;
    assert_eq!(
        streamed[0]["MessageAttributes"]["ParticipantRole"]["Value"],
        "AGENT"
    );
    assert_eq!(
        streamed[0]["MessageAttributes"]["ContentType"]["Value"],
        "image/png"
    );
    let item = inner(&streamed[0]);
    assert_eq!(item["Id"], answer["id"]);
    assert_eq!(item["DisplayName"], "Martina");
    assert_eq!(
        item["Attachments"][0]["AttachmentId"],
        attachment_id.as_str()
    );
    assert_eq!(item["Attachments"][0]["Status"], "APPROVED");

    let got = h
        .participant
        .get_attachment()
        .connection_token(&token)
        .attachment_id(&attachment_id)
        .send()
        .await
        .unwrap();
    assert!(got.url_expiry().is_some());
    let (status, content_type, bytes) = h.download(got.url().unwrap()).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(bytes, png);

    // Scan results other than APPROVED are streamed as given, for filtering tests.
    for (body, want) in [
        (
            json!({"attachment": {"name": "a.pdf", "content_type": "application/pdf", "content_base64": "eA=="}, "status": "IN_PROGRESS"}),
            "IN_PROGRESS",
        ),
        (
            json!({"attachment": {"name": "b.pdf", "content_type": "application/pdf", "content_base64": "eA==", "status": "REJECTED"}, "visibility": "AGENT"}),
            "REJECTED",
        ),
    ] {
        let (status, _) = h.post(&path, body).await;
        assert_eq!(status, 200);
        let streamed = take(&h.streamed, 1).await;
        assert_eq!(inner(&streamed[0])["Attachments"][0]["Status"], want);
    }

    for bad in [
        json!({"attachment": {"name": "sticker.webp", "content_type": "image/webp", "content_base64": "eA=="}}),
        json!({"attachment": {"name": "a.pdf", "content_type": "application/pdf", "content_base64": ""}}),
        json!({"attachment": {"name": "a.pdf", "content_type": "application/pdf", "content_base64": "***"}}),
        json!({"attachment": {"name": "a.pdf", "content_type": "application/pdf", "content_base64": "eA=="}, "status": "MAYBE"}),
        json!({"text": "both", "attachment": {"name": "a.pdf", "content_type": "application/pdf", "content_base64": "eA=="}}),
        json!({}),
    ] {
        let (status, body) = h.post(&path, bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
    }

    let unknown = h
        .participant
        .get_attachment()
        .connection_token(&token)
        .attachment_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        unknown.raw_response().map(|r| r.status().as_u16()),
        Some(404)
    );
    assert_eq!(
        unknown.into_service_error().code(),
        Some("ResourceNotFoundException")
    );

    h.post(&format!("/sim/chats/{contact_id}/end"), json!({}))
        .await;
    let ended = h
        .participant
        .get_attachment()
        .connection_token(&token)
        .attachment_id(&attachment_id)
        .send()
        .await
        .unwrap_err();
    assert!(ended.into_service_error().is_access_denied_exception());
}

#[tokio::test]
async fn media_operations_can_be_faulted() {
    let h = harness().await;
    let (_, token) = h.open_chat("hola", "start-faults").await;
    // Without SDK retries, so one injected fault is one failed call.
    let config = sdk_config(&h.url)
        .await
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let participant = aws_sdk_connectparticipant::Client::new(&config);
    let social = aws_sdk_socialmessaging::Client::new(&config);
    for (operation, error) in [
        ("StartAttachmentUpload", "ThrottlingException"),
        ("CompleteAttachmentUpload", "InternalServerException"),
        ("GetAttachment", "ThrottlingException"),
        ("GetWhatsAppMessageMedia", "ThrottledRequestException"),
    ] {
        let (status, body) = h
            .post(
                "/sim/faults",
                json!({"operation": operation, "error": error, "count": 1}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let start = || {
        participant
            .start_attachment_upload()
            .connection_token(&token)
            .content_type("application/pdf")
            .attachment_size_in_bytes(1)
            .attachment_name("a.pdf")
            .client_token("f-1")
            .send()
    };
    assert!(start()
        .await
        .unwrap_err()
        .into_service_error()
        .is_throttling_exception());
    let started = start().await.unwrap();
    let (url, headers) = upload_headers(&started);
    assert_eq!(h.put_upload(&url, &headers, b"x").await, 200);
    let id = started.attachment_id().unwrap();
    let complete = || {
        participant
            .complete_attachment_upload()
            .connection_token(&token)
            .attachment_ids(id)
            .client_token("f-done")
            .send()
    };
    assert!(complete()
        .await
        .unwrap_err()
        .into_service_error()
        .is_internal_server_exception());
    complete().await.unwrap();
    let get = || {
        participant
            .get_attachment()
            .connection_token(&token)
            .attachment_id(id)
            .send()
    };
    assert!(get()
        .await
        .unwrap_err()
        .into_service_error()
        .is_throttling_exception());
    get().await.unwrap();

    let message = h
        .customer_sends(
            json!({"type": "image", "media": {"content_base64": "eA==", "mime_type": "image/png"}}),
        )
        .await;
    let fetch = || {
        social
            .get_whats_app_message_media()
            .media_id(message["image"]["id"].as_str().unwrap())
            .origination_phone_number_id(SimIdentity::default().phone_number_id())
            .metadata_only(true)
            .send()
    };
    assert!(fetch()
        .await
        .unwrap_err()
        .into_service_error()
        .is_throttled_request_exception());
    assert_eq!(fetch().await.unwrap().file_size(), Some(1));
    let calls = h.get("/sim/calls").await;
    let media_calls: Vec<u64> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["operation"] == "GetWhatsAppMessageMedia")
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(media_calls, [429, 200]);
}

#[tokio::test]
async fn local_media_links_are_served_by_the_simulator() {
    let h = harness().await;
    let wav = b"RIFF....WAVEfmt ".to_vec();
    h.media
        .put("out", "voz/nota 1.wav", wav.clone(), "audio/wav")
        .await
        .unwrap();
    let link = h
        .media
        .presign_get("out", "voz/nota 1.wav", Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(link, format!("{}/sim/media/out/voz/nota%201.wav", h.url));
    let (status, content_type, bytes) = h.download(&link).await;
    assert_eq!(
        (status, content_type.as_str(), bytes),
        (200, "audio/wav", wav)
    );
    let (status, _, _) = h
        .download(&format!("{}/sim/media/out/missing.wav", h.url))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = h
        .download(&format!("{}/sim/media/out/..%2Fescape", h.url))
        .await;
    assert_eq!(status, 400);

    // The business sends the link; the simulator records it and fetches nothing.
    let audio = json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "audio", "audio": {"link": link}});
    h.social
        .send_whats_app_message()
        .origination_phone_number_id(SimIdentity::default().phone_number_id())
        .message(Blob::new(audio.to_string()))
        .meta_api_version("v20.0")
        .send()
        .await
        .unwrap();
    let inbox = h.get(&format!("/sim/customers/{CUSTOMER}/inbox")).await;
    assert_eq!(inbox["messages"][0]["type"], "audio");
    assert_eq!(inbox["messages"][0]["body"]["audio"]["link"], link.as_str());
}
