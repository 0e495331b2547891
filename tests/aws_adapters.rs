//! The AWS adapters against moto (S3, SQS, SNS), which `./scripts/test.sh` starts and names
//! in `WACONNECT_TEST_AWS_ENDPOINT`: the simulator's SQS/SNS sinks and the S3 media store,
//! through the real AWS SDK clients.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use serde_json::{json, Value};

use waconnect::adapters::local::MemoryQueue;
use waconnect::ports::{MediaStore, Queue};
use waconnect::sim::{self, MemoryChatStreamSink, MemoryInboundSink, SimIdentity, Simulator};

const CUSTOMER: &str = "5491155550123";

/// SDK configuration pointed at an in-process simulator.
async fn sim_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

/// Takes up to `want` JSON messages off an in-process queue.
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

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Meta message object inside an inbound SNS envelope.
fn customer_message_of(envelope: &Value) -> Value {
    let event: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    let entry: Value =
        serde_json::from_str(event["whatsAppWebhookEntry"].as_str().unwrap()).unwrap();
    entry["changes"][0]["value"]["messages"][0].clone()
}

/// The simulator's SQS/SNS sinks through moto: SNS envelopes, raw delivery, topics and
/// message attributes as the router will read them.
#[tokio::test]
async fn aws_sinks_deliver_through_sqs_and_sns() {
    use waconnect::ports::{ChatStreamSink, InboundSink};
    use waconnect::sim::{SnsChatStreamSink, SnsInboundSink, SqsInboundSink};

    let config = common::aws_config().await;
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

/// [`S3MediaStore`] against moto: put, get, the size refusal, not-found and a
/// pre-signed link fetched over HTTP; then the standalone simulator's shape, with
/// GetWhatsAppMessageMedia writing customer media into S3.
#[tokio::test]
async fn s3_media_store_against_moto() {
    use waconnect::adapters::aws::S3MediaStore;
    use waconnect::ports::ErrorKind;

    let store = Arc::new(S3MediaStore::from_sdk_config(&common::aws_config().await));
    let bucket = format!("media-{}", uuid::Uuid::new_v4().simple());
    store
        .client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    store
        .put(&bucket, "in/nota 1.ogg", bytes.clone(), "audio/ogg")
        .await
        .unwrap();
    assert_eq!(
        store.get(&bucket, "in/nota 1.ogg", 1 << 20).await.unwrap(),
        bytes
    );
    assert_eq!(
        store
            .get(&bucket, "in/nota 1.ogg", bytes.len() as u64)
            .await
            .unwrap()
            .len(),
        bytes.len()
    );
    let too_large = store.get(&bucket, "in/nota 1.ogg", 1000).await.unwrap_err();
    assert_eq!(too_large.kind, ErrorKind::Invalid);
    assert!(
        too_large
            .message
            .starts_with("too large: 200000 bytes > max 1000"),
        "{too_large}"
    );
    let missing = store.get(&bucket, "in/none", 10).await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");

    let link = store
        .presign_get(&bucket, "in/nota 1.ogg", Duration::from_secs(300))
        .await
        .unwrap();
    let response = reqwest::get(&link).await.unwrap();
    assert_eq!(response.status(), 200, "{link}");
    assert_eq!(response.headers().get("content-type").unwrap(), "audio/ogg");
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);

    // `waconnect sim` standalone: GetWhatsAppMessageMedia writes into S3.
    let inbound = Arc::new(MemoryQueue::new("inbound", Duration::from_secs(30)));
    let simulator = Simulator::with_media(
        SimIdentity::default(),
        Arc::new(MemoryInboundSink {
            queue: inbound.clone(),
        }),
        Arc::new(MemoryChatStreamSink {
            queue: inbound.clone(),
        }),
        false,
        store.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim::serve(listener, simulator));
    let photo = b"\xff\xd8\xff\xe0 photo".to_vec();
    let response = reqwest::Client::new()
        .post(format!("{url}/sim/customers/{CUSTOMER}/messages"))
        .json(&json!({"type": "image", "image": {"caption": "la caja"},
                      "media": {"content_base64": b64(&photo), "mime_type": "image/jpeg"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message = customer_message_of(&take(&inbound, 1).await[0]);
    let media_id = message["image"]["id"].as_str().unwrap().to_string();
    let social = aws_sdk_socialmessaging::Client::new(&sim_sdk_config(&url).await);
    let out = social
        .get_whats_app_message_media()
        .media_id(&media_id)
        .origination_phone_number_id(SimIdentity::default().phone_number_id())
        .destination_s3_file(
            aws_sdk_socialmessaging::types::S3File::builder()
                .bucket_name(&bucket)
                .key("wa/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.file_size(), Some(photo.len() as i64));
    assert_eq!(
        store
            .get(&bucket, &format!("wa/{media_id}.jpeg"), 1 << 20)
            .await
            .unwrap(),
        photo
    );
}
