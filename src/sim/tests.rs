//! Behaviour of the simulated operations, called directly (no HTTP): idempotency,
//! validation, ended chats, streaming order and inbox filing.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use serde_json::{json, Value};

use super::state::Simulator;
use super::state::StoredFile;
use super::wire::AwsError;
use super::{
    attachments, connect, participant, whatsapp, MemoryChatStreamSink, MemoryInboundSink,
    SimIdentity,
};
use crate::adapters::local::MemoryQueue;
use crate::ports::Queue;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:connect-out";

type Operation = fn(&Simulator, &HeaderMap, &[u8]) -> Result<Value, AwsError>;

struct Fixture {
    sim: Arc<Simulator>,
    inbound: Arc<MemoryQueue>,
    streamed: Arc<MemoryQueue>,
}

fn fixture() -> Fixture {
    let inbound = Arc::new(MemoryQueue::new("inbound", Duration::from_secs(30)));
    let streamed = Arc::new(MemoryQueue::new("stream", Duration::from_secs(30)));
    let sim = Simulator::new(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: streamed.clone(),
        }),
        true,
    );
    Fixture {
        sim,
        inbound,
        streamed,
    }
}

fn call(
    op: Operation,
    sim: &Simulator,
    bearer: Option<&str>,
    body: Value,
) -> Result<Value, AwsError> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("sim.test:4566"));
    if let Some(token) = bearer {
        headers.insert("x-amz-bearer", HeaderValue::from_str(token).unwrap());
    }
    op(sim, &headers, body.to_string().as_bytes())
}

fn start_chat(sim: &Simulator, client_token: &str) -> Value {
    call(
        connect::start_chat_contact,
        sim,
        None,
        json!({
            "InstanceId": "i-1", "ContactFlowId": "f-1",
            "Attributes": {"customerId": "5491100000000", "Channel": "Whatsapp"},
            "ParticipantDetails": {"DisplayName": "Ana"},
            "InitialMessage": {"ContentType": "text/plain", "Content": "hola"},
            "ClientToken": client_token,
        }),
    )
    .unwrap()
}

/// Starts a chat and connects the customer; returns (contact id, connection token).
fn connected_chat(sim: &Simulator) -> (String, String) {
    let started = start_chat(sim, "start-1");
    let connection = call(
        participant::create_participant_connection,
        sim,
        started["ParticipantToken"].as_str(),
        json!({"Type": ["CONNECTION_CREDENTIALS"], "ConnectParticipant": true}),
    )
    .unwrap();
    (
        started["ContactId"].as_str().unwrap().to_string(),
        connection["ConnectionCredentials"]["ConnectionToken"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn send_text(
    sim: &Simulator,
    token: &str,
    text: &str,
    client_token: &str,
) -> Result<Value, AwsError> {
    call(
        participant::send_message,
        sim,
        Some(token),
        json!({"ContentType": "text/plain", "Content": text, "ClientToken": client_token}),
    )
}

async fn drain(queue: &MemoryQueue, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < want {
        let batch = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            got.push(serde_json::from_str(&m.body).unwrap());
            queue.delete(&m.receipt).await.unwrap();
        }
    }
    got
}

fn message_of(envelope: &Value) -> Value {
    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
}

#[test]
fn start_chat_contact_is_idempotent_and_records_the_initial_message() {
    let f = fixture();
    let first = start_chat(&f.sim, "token-a");
    let again = start_chat(&f.sim, "token-a");
    assert_eq!(first, again);
    let other = start_chat(&f.sim, "token-b");
    assert_ne!(first["ContactId"], other["ContactId"]);

    let state = f.sim.lock();
    assert_eq!(state.chats.len(), 2);
    let items = &state.chats[0].items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, "MESSAGE");
    assert_eq!(items[0].participant_role, "CUSTOMER");
    assert_eq!(items[0].display_name, "Ana");
    assert_eq!(items[0].content.as_deref(), Some("hola"));
}

#[test]
fn send_message_checks_length_in_characters() {
    let f = fixture();
    let (_, token) = connected_chat(&f.sim);
    assert!(send_text(&f.sim, &token, &"ñ".repeat(1024), "a").is_ok());
    let too_long = send_text(&f.sim, &token, &"ñ".repeat(1025), "b").unwrap_err();
    assert_eq!(
        (too_long.status, too_long.code.as_str()),
        (400, "ValidationException")
    );
    assert_eq!(send_text(&f.sim, &token, "", "c").unwrap_err().status, 400);
    let html = call(
        participant::send_message,
        &f.sim,
        Some(&token),
        json!({"ContentType": "text/html", "Content": "x"}),
    );
    assert_eq!(html.unwrap_err().code, "ValidationException");
}

#[test]
fn send_message_with_a_seen_client_token_records_nothing_new() {
    let f = fixture();
    let (_, token) = connected_chat(&f.sim);
    let first = send_text(&f.sim, &token, "uno", "same").unwrap();
    let again = send_text(&f.sim, &token, "uno", "same").unwrap();
    assert_eq!(first, again);
    assert_eq!(f.sim.lock().chats[0].items.len(), 2); // initial message + one
}

#[test]
fn ended_or_unknown_chats_answer_access_denied() {
    let f = fixture();
    let (_, token) = connected_chat(&f.sim);
    call(
        participant::disconnect_participant,
        &f.sim,
        Some(&token),
        json!({}),
    )
    .unwrap();
    {
        let state = f.sim.lock();
        let last = state.chats[0].items.last().unwrap();
        assert_eq!(
            last.content_type,
            "application/vnd.amazonaws.connect.event.participant.left"
        );
        assert_eq!(last.participant_role, "CUSTOMER");
    }
    for result in [
        send_text(&f.sim, &token, "hola?", "x"),
        call(
            participant::disconnect_participant,
            &f.sim,
            Some(&token),
            json!({}),
        ),
        send_text(&f.sim, "not-a-token", "hola?", "y"),
        call(
            participant::send_message,
            &f.sim,
            None,
            json!({"ContentType": "text/plain", "Content": "x"}),
        ),
    ] {
        let err = result.unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (403, "AccessDeniedException")
        );
    }
    let participant_token = start_chat(&f.sim, "start-1")["ParticipantToken"].clone();
    let reconnect = call(
        participant::create_participant_connection,
        &f.sim,
        participant_token.as_str(),
        json!({"Type": ["CONNECTION_CREDENTIALS"]}),
    );
    assert_eq!(reconnect.unwrap_err().status, 403);
}

#[tokio::test]
async fn streaming_sends_earlier_items_first_then_new_ones_in_order() {
    let f = fixture();
    let (contact_id, token) = connected_chat(&f.sim);
    send_text(&f.sim, &token, "before streaming", "m1").unwrap();
    let streaming = json!({
        "InstanceId": "i-1", "ContactId": contact_id,
        "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC}, "ClientToken": "s1",
    });
    let first = call(
        connect::start_contact_streaming,
        &f.sim,
        None,
        streaming.clone(),
    )
    .unwrap();
    let again = call(connect::start_contact_streaming, &f.sim, None, streaming).unwrap();
    assert_eq!(first, again);
    for n in 0..5 {
        send_text(&f.sim, &token, &format!("after {n}"), &format!("n{n}")).unwrap();
    }
    let envelopes = drain(&f.streamed, 7).await;
    let contents: Vec<String> = envelopes
        .iter()
        .map(|e| message_of(e)["Content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        contents,
        [
            "hola",
            "before streaming",
            "after 0",
            "after 1",
            "after 2",
            "after 3",
            "after 4"
        ]
    );
    let first = &envelopes[0];
    assert_eq!(first["TopicArn"], TOPIC);
    assert_eq!(
        first["MessageAttributes"]["ContactId"]["Value"],
        contact_id.as_str()
    );
    assert_eq!(
        first["MessageAttributes"]["ParticipantRole"]["Value"],
        "CUSTOMER"
    );
    assert_eq!(
        first["MessageAttributes"]["MessageVisibility"]["Value"],
        "ALL"
    );
    assert_eq!(first["MessageAttributes"]["InstanceId"]["Value"], "i-1");
    assert_eq!(
        first["MessageAttributes"]["AccountId"]["Value"],
        "123456789012"
    );
    let message = message_of(first);
    assert_eq!(message["Type"], "MESSAGE");
    assert_eq!(message["InitialContactId"], contact_id.as_str());
    assert_eq!(message["DisplayName"], "Ana");
}

#[tokio::test]
async fn streaming_unknown_contact_is_not_found() {
    let f = fixture();
    let err = call(
        connect::start_contact_streaming,
        &f.sim,
        None,
        json!({"InstanceId": "i", "ContactId": "nope", "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC}}),
    )
    .unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (404, "ResourceNotFoundException")
    );
}

fn whatsapp_send(sim: &Simulator, origination: &str, message: Value) -> Result<Value, AwsError> {
    call(
        whatsapp::send_whatsapp_message,
        sim,
        None,
        json!({
            "originationPhoneNumberId": origination,
            "message": base64::engine::general_purpose::STANDARD.encode(message.to_string()),
            "metaApiVersion": "v20.0",
        }),
    )
}

#[tokio::test]
async fn whatsapp_messages_are_filed_by_recipient_and_read_receipts_by_wamid() {
    let f = fixture();
    let id = f.sim.identity().clone();
    f.sim
        .lock()
        .wamid_owner
        .insert("wamid.IN".into(), "5491100000000".into());
    let text = json!({"messaging_product": "whatsapp", "to": "+5491100000000", "type": "text", "text": {"body": "hola"}});
    let sent = whatsapp_send(&f.sim, &id.phone_number_id(), text).unwrap();
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"});
    whatsapp_send(&f.sim, &id.phone_number_arn, read).unwrap();
    let reaction = json!({"messaging_product": "whatsapp", "to": "5491100000000", "type": "reaction", "reaction": {"message_id": "wamid.IN", "emoji": "👀"}});
    whatsapp_send(&f.sim, &id.phone_number_id(), reaction).unwrap();

    let inbox = f.sim.lock().inboxes["5491100000000"].clone();
    let kinds: Vec<&str> = inbox.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["text", "read", "reaction"]);
    assert_eq!(inbox[0].id, sent["messageId"].as_str().unwrap());
    assert_eq!(inbox[0].body["text"]["body"], "hola");

    // Two messages had a recipient: two delivered statuses.
    let events = drain(&f.inbound, 2).await;
    assert_eq!(events.len(), 2);
    let event = message_of(&events[0]);
    let entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    let status = &entry["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["recipient_id"], "5491100000000");
    assert!(events.iter().any(|e| message_of(e)["whatsAppWebhookEntry"]
        .as_str()
        .unwrap()
        .contains(sent["messageId"].as_str().unwrap())));
}

#[test]
fn whatsapp_send_rejects_unknown_numbers_and_bad_messages() {
    let f = fixture();
    let text = json!({"to": "1", "type": "text", "text": {"body": "x"}});
    let err = whatsapp_send(&f.sim, "phone-number-id-other", text).unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (404, "ResourceNotFoundException")
    );
    let long = json!({"to": "1", "type": "text", "text": {"body": "a".repeat(4097)}});
    let err = whatsapp_send(&f.sim, &f.sim.identity().phone_number_id(), long).unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (400, "InvalidParametersException")
    );
    let no_recipient = json!({"type": "text", "text": {"body": "x"}});
    assert!(whatsapp_send(&f.sim, &f.sim.identity().phone_number_id(), no_recipient).is_err());
    assert!(f.sim.lock().inboxes.is_empty());
}

#[test]
fn whatsapp_statuses_can_be_turned_off() {
    let inbound = Arc::new(MemoryQueue::new("in", Duration::from_secs(30)));
    let sim = Simulator::new(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: inbound.clone(),
        }),
        false,
    );
    // No runtime here: with statuses off nothing may be spawned.
    let text = json!({"to": "1", "type": "text", "text": {"body": "x"}});
    whatsapp_send(&sim, &sim.identity().phone_number_id(), text).unwrap();
    assert_eq!(inbound.depth(), (0, 0));
}

fn start_upload(
    sim: &Simulator,
    token: &str,
    name: &str,
    size: u64,
    client_token: &str,
) -> Result<Value, AwsError> {
    call(
        attachments::start_attachment_upload,
        sim,
        Some(token),
        json!({"ContentType": "application/pdf", "AttachmentSizeInBytes": size,
               "AttachmentName": name, "ClientToken": client_token}),
    )
}

fn complete_upload(
    sim: &Simulator,
    token: &str,
    id: &str,
    client_token: &str,
) -> Result<Value, AwsError> {
    call(
        attachments::complete_attachment_upload,
        sim,
        Some(token),
        json!({"AttachmentIds": [id], "ClientToken": client_token}),
    )
}

/// What the upload URL's PUT does, without HTTP.
fn put_bytes(sim: &Simulator, id: &str, bytes: &[u8]) {
    let file = StoredFile::new(axum::body::Bytes::copy_from_slice(bytes));
    sim.lock().attachments.get_mut(id).unwrap().file = Some(file);
}

#[tokio::test]
async fn attachment_upload_is_idempotent_checked_and_streamed() {
    let f = fixture();
    let (contact_id, token) = connected_chat(&f.sim);
    call(
        connect::start_contact_streaming,
        &f.sim,
        None,
        json!({"InstanceId": "i-1", "ContactId": contact_id,
               "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC}}),
    )
    .unwrap();
    drain(&f.streamed, 1).await;

    let first = start_upload(&f.sim, &token, "factura.pdf", 4, "up-1").unwrap();
    assert_eq!(
        first,
        start_upload(&f.sim, &token, "factura.pdf", 4, "up-1").unwrap()
    );
    let id = first["AttachmentId"].as_str().unwrap().to_string();
    let metadata = &first["UploadMetadata"];
    assert_eq!(
        metadata["Url"],
        format!("http://sim.test:4566/sim/upload/{id}")
    );
    assert_eq!(
        metadata["HeadersToInclude"]["Content-Type"],
        "application/pdf"
    );
    assert_eq!(metadata["HeadersToInclude"]["x-amz-meta-sim"], "1");

    for (name, size) in [
        ("voz.ogg", 4),
        ("factura.pdf", 0),
        ("factura.pdf", 20 * 1024 * 1024 + 1),
    ] {
        let err =
            start_upload(&f.sim, &token, name, size, &format!("bad-{name}-{size}")).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "ValidationException"),
            "{name} {size}"
        );
    }

    let not_uploaded = complete_upload(&f.sim, &token, &id, "c-0").unwrap_err();
    assert_eq!(
        (not_uploaded.status, not_uploaded.code.as_str()),
        (400, "ValidationException")
    );
    let unknown = complete_upload(&f.sim, &token, "nope", "c-x").unwrap_err();
    assert_eq!(unknown.status, 400);
    put_bytes(&f.sim, &id, b"%PDF");
    complete_upload(&f.sim, &token, &id, "c-1").unwrap();
    complete_upload(&f.sim, &token, &id, "c-1").unwrap();
    let conflict = complete_upload(&f.sim, &token, &id, "c-2").unwrap_err();
    assert_eq!(conflict.code, "ConflictException");
    assert_eq!(
        f.sim.lock().chats[0].items.len(),
        2,
        "one ATTACHMENT item after the initial message"
    );

    let streamed = drain(&f.streamed, 1).await;
    assert_eq!(streamed.len(), 1);
    let attrs = &streamed[0]["MessageAttributes"];
    assert_eq!(attrs["Type"]["Value"], "ATTACHMENT");
    assert_eq!(attrs["ContentType"]["Value"], "application/pdf");
    assert_eq!(attrs["ParticipantRole"]["Value"], "CUSTOMER");
    let item = message_of(&streamed[0]);
    assert_eq!(item["Type"], "ATTACHMENT");
    assert!(item.get("ContentType").is_none());
    assert_eq!(
        item["Attachments"],
        json!([{"AttachmentId": id, "AttachmentName": "factura.pdf",
                "ContentType": "application/pdf", "Status": "APPROVED"}])
    );

    let got = call(
        attachments::get_attachment,
        &f.sim,
        Some(&token),
        json!({"AttachmentId": id}),
    )
    .unwrap();
    assert_eq!(
        got["Url"],
        format!("http://sim.test:4566/sim/download/{id}")
    );
    assert_eq!(got["AttachmentSizeInBytes"], 4);
    let missing = call(
        attachments::get_attachment,
        &f.sim,
        Some(&token),
        json!({"AttachmentId": "nope"}),
    )
    .unwrap_err();
    assert_eq!(
        (missing.status, missing.code.as_str()),
        (404, "ResourceNotFoundException")
    );

    // Another chat's connection cannot see this attachment.
    let other = start_chat(&f.sim, "start-2");
    let other_token = call(
        participant::create_participant_connection,
        &f.sim,
        other["ParticipantToken"].as_str(),
        json!({"Type": ["CONNECTION_CREDENTIALS"]}),
    )
    .unwrap()["ConnectionCredentials"]["ConnectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = call(
        attachments::get_attachment,
        &f.sim,
        Some(&other_token),
        json!({"AttachmentId": id}),
    )
    .unwrap_err();
    assert_eq!(foreign.status, 404);

    // Ended chats refuse every participant call.
    call(
        participant::disconnect_participant,
        &f.sim,
        Some(&token),
        json!({}),
    )
    .unwrap();
    for err in [
        call(
            attachments::get_attachment,
            &f.sim,
            Some(&token),
            json!({"AttachmentId": id}),
        )
        .unwrap_err(),
        start_upload(&f.sim, &token, "b.pdf", 1, "up-2").unwrap_err(),
        complete_upload(&f.sim, &token, &id, "c-3").unwrap_err(),
    ] {
        assert_eq!(
            (err.status, err.code.as_str()),
            (403, "AccessDeniedException")
        );
    }
}

#[test]
fn sim_args_parse_flags_and_environment() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: super::SimArgs,
    }

    let cli =
        Cli::try_parse_from(["sim", "--inbound-queue-url", "http://q", "--no-statuses"]).unwrap();
    assert_eq!(cli.sim.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cli.sim.inbound_queue_url, "http://q");
    assert!(cli.sim.no_statuses);
    assert!(!cli.sim.raw_delivery);
    assert!(cli.sim.inbound_topic_arn.is_none());
    if std::env::var_os("WACONNECT_SIM_INBOUND_QUEUE_URL").is_none() {
        assert!(
            Cli::try_parse_from(["sim"]).is_err(),
            "the queue URL is required"
        );
    }

    // The only test touching these variables, so no other test races with it.
    std::env::set_var("WACONNECT_SIM_RAW_DELIVERY", "true");
    std::env::set_var("WACONNECT_SIM_INBOUND_TOPIC_ARN", TOPIC);
    let cli = Cli::try_parse_from([
        "sim",
        "--inbound-queue-url",
        "http://q",
        "--listen",
        "0.0.0.0:9",
    ])
    .unwrap();
    assert!(cli.sim.raw_delivery);
    assert_eq!(cli.sim.inbound_topic_arn.as_deref(), Some(TOPIC));
    assert_eq!(cli.sim.listen.port(), 9);
    std::env::set_var("WACONNECT_SIM_RAW_DELIVERY", "false");
    let cli = Cli::try_parse_from(["sim", "--inbound-queue-url", "http://q"]).unwrap();
    assert!(!cli.sim.raw_delivery);
    std::env::remove_var("WACONNECT_SIM_RAW_DELIVERY");
    std::env::remove_var("WACONNECT_SIM_INBOUND_TOPIC_ARN");
}
