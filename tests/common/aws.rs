//! AWS side of a test: moto's endpoint and credentials, and [`Resources`]: the queues,
//! dead-letter queues, topics, subscriptions and tables of one test, with readers of what
//! is in them.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::json;

use super::*;

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// The AWS emulator endpoint (moto server). Tests fail, never skip, when it is missing.
pub fn aws_endpoint() -> String {
    match std::env::var("WACONNECT_TEST_AWS_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "WACONNECT_TEST_AWS_ENDPOINT is not set: the end-to-end tests need a moto server. \
             Run them with ./scripts/test.sh (it installs and starts moto), or see docs/testing.md \
             to rerun one test against a moto server that is already up."
        ),
    }
}

/// SDK configuration pointed at moto with static test credentials.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(aws_endpoint())
        .credentials_provider(aws_credential_types::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "waconnect-tests",
        ))
        .load()
        .await
}

/// Unwraps an SDK result, panicking with the full error chain.
pub fn sdk<T, E: std::error::Error>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!(
            "{what} failed: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        ),
    }
}

pub(crate) fn sanitize(prefix: &str) -> String {
    let s: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.chars().take(28).collect()
}

/// Options of [`Resources::provision`].
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// Subscribe the `inbound` queue to the `eum-inbound` topic with raw message delivery ON
    /// (bodies are then the EUM event itself instead of the SNS envelope). Default OFF.
    pub raw_inbound_delivery: bool,
    /// Also create the FIFO stage (two FIFO queues and their FIFO DLQs, visibility 5 s,
    /// maxReceiveCount 10) and give it to every router started on these resources.
    pub fifo: bool,
}

/// The FIFO stage's queues (`Opts::fifo`).
#[derive(Clone, Debug)]
pub struct FifoQueues {
    pub inbound_url: String,
    pub inbound_dlq_url: String,
    pub connect_url: String,
    pub connect_dlq_url: String,
}

/// The AWS resources of one test. Names carry a uuid suffix so tests never share anything.
pub struct Resources {
    /// Test name: also the log folder `.test-logs/<name>/`.
    pub name: String,
    pub endpoint: String,
    pub log_dir: PathBuf,
    pub inbound_queue_url: String,
    pub inbound_queue_arn: String,
    pub inbound_dlq_url: String,
    pub inbound_dlq_arn: String,
    pub connect_queue_url: String,
    pub connect_queue_arn: String,
    pub connect_dlq_url: String,
    pub connect_dlq_arn: String,
    /// Connect contact streaming destination (StartContactStreaming), delivers to `connect`.
    pub connect_stream_topic_arn: String,
    /// EUM event destination, delivers to `inbound`.
    pub eum_inbound_topic_arn: String,
    pub inbound_subscription_arn: String,
    pub connect_subscription_arn: String,
    pub sessions_table: String,
    pub dedupe_table: String,
    pub fifo: Option<FifoQueues>,
    /// S3 bucket EUM writes customer media to (GetWhatsAppMessageMedia) and the router
    /// stores converted agent audio in.
    pub media_bucket: String,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub ddb: aws_sdk_dynamodb::Client,
}

/// One message read from a queue by [`Resources::peek_messages`].
#[derive(Clone, Debug)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// Message attributes (string/number values; binary values as base64).
    pub attributes: Vec<(String, String)>,
    pub receive_count: u32,
}

impl Resources {
    /// Creates the full set of resources for the test `prefix` (also its log folder name).
    pub async fn provision(prefix: &str, opts: Opts) -> Resources {
        let endpoint = aws_endpoint();
        let conf = aws_config().await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let sns = aws_sdk_sns::Client::new(&conf);
        let ddb = aws_sdk_dynamodb::Client::new(&conf);

        let log_dir = test_logs_root().join(prefix);
        let _ = fs::remove_dir_all(&log_dir);
        fs::create_dir_all(&log_dir).expect("create test log dir");

        let base = format!(
            "wc-{}-{}",
            sanitize(prefix),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );

        let (inbound_dlq_url, inbound_dlq_arn) =
            create_queue(&sqs, &format!("{base}-inbound-dlq"), None).await;
        let (inbound_queue_url, inbound_queue_arn) =
            create_queue(&sqs, &format!("{base}-inbound"), Some(&inbound_dlq_arn)).await;
        let (connect_dlq_url, connect_dlq_arn) =
            create_queue(&sqs, &format!("{base}-connect-dlq"), None).await;
        let (connect_queue_url, connect_queue_arn) =
            create_queue(&sqs, &format!("{base}-connect"), Some(&connect_dlq_arn)).await;

        let connect_stream_topic_arn = create_topic(&sns, &format!("{base}-connect-stream")).await;
        let eum_inbound_topic_arn = create_topic(&sns, &format!("{base}-eum-inbound")).await;

        let connect_subscription_arn = subscribe(
            &sqs,
            &sns,
            &connect_stream_topic_arn,
            &connect_queue_url,
            &connect_queue_arn,
            false,
        )
        .await;
        let inbound_subscription_arn = subscribe(
            &sqs,
            &sns,
            &eum_inbound_topic_arn,
            &inbound_queue_url,
            &inbound_queue_arn,
            opts.raw_inbound_delivery,
        )
        .await;

        let fifo = if opts.fifo {
            let fifo_queue = |name: String, dlq: Option<String>| {
                let sqs = sqs.clone();
                async move { create_fifo_queue(&sqs, &name, dlq.as_deref()).await }
            };
            let (inbound_dlq_url, inbound_dlq_arn) =
                fifo_queue(format!("{base}-in-dlq.fifo"), None).await;
            let (inbound_url, _) =
                fifo_queue(format!("{base}-in.fifo"), Some(inbound_dlq_arn)).await;
            let (connect_dlq_url, connect_dlq_arn) =
                fifo_queue(format!("{base}-cx-dlq.fifo"), None).await;
            let (connect_url, _) =
                fifo_queue(format!("{base}-cx.fifo"), Some(connect_dlq_arn)).await;
            Some(FifoQueues {
                inbound_url,
                inbound_dlq_url,
                connect_url,
                connect_dlq_url,
            })
        } else {
            None
        };

        let sessions_table = format!("{base}-sessions");
        let dedupe_table = format!("{base}-dedupe");
        create_sessions_table(&ddb, &sessions_table).await;
        create_dedupe_table(&ddb, &dedupe_table).await;

        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        );
        // Bucket names are short and lowercase: not derived from the (long) test name.
        let media_bucket = format!(
            "wc-media-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        s3.create_bucket()
            .bucket(&media_bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket({media_bucket}) failed: {e:?}"));

        let res = Resources {
            name: prefix.to_string(),
            endpoint,
            log_dir,
            inbound_queue_url,
            inbound_queue_arn,
            inbound_dlq_url,
            inbound_dlq_arn,
            connect_queue_url,
            connect_queue_arn,
            connect_dlq_url,
            connect_dlq_arn,
            connect_stream_topic_arn,
            eum_inbound_topic_arn,
            inbound_subscription_arn,
            connect_subscription_arn,
            sessions_table,
            dedupe_table,
            fifo,
            media_bucket,
            s3,
            sqs,
            sns,
            ddb,
        };
        let _ = fs::write(res.log_dir.join("resources.txt"), res.describe());
        res
    }

    /// Human-readable list of the resources (also written to `resources.txt` in the log dir).
    pub fn describe(&self) -> String {
        format!(
            "endpoint               {}\ninbound queue          {}\ninbound dlq            {}\n\
             connect queue          {}\nconnect dlq            {}\nconnect-stream topic   {}\n\
             eum-inbound topic      {}\nsessions table         {}\ndedupe table           {}\n",
            self.endpoint,
            self.inbound_queue_url,
            self.inbound_dlq_url,
            self.connect_queue_url,
            self.connect_dlq_url,
            self.connect_stream_topic_arn,
            self.eum_inbound_topic_arn,
            self.sessions_table,
            self.dedupe_table
        )
    }

    /// Environment shared by the simulator and the router: AWS endpoint, region, credentials.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// `(visible, in flight)`: ApproximateNumberOfMessages and ...NotVisible.
    pub async fn queue_counts(&self, url: &str) -> (u64, u64) {
        let out = sdk(
            "GetQueueAttributes",
            self.sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await,
        );
        let attrs = out.attributes().cloned().unwrap_or_default();
        let get = |k: &QueueAttributeName| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (
            get(&QueueAttributeName::ApproximateNumberOfMessages),
            get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        let (v, nv) = self.queue_counts(url).await;
        v + nv
    }

    /// Every message currently visible in the queue, left in place: they are received with a
    /// short visibility timeout and made visible again at once.
    pub async fn peek_messages(&self, url: &str) -> Vec<QueueMessage> {
        let mut seen: Vec<QueueMessage> = Vec::new();
        let mut handles: Vec<(String, String)> = Vec::new();
        for _ in 0..100 {
            let out = sdk(
                "ReceiveMessage",
                self.sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(5)
                    .wait_time_seconds(0)
                    .message_attribute_names("All")
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send()
                    .await,
            );
            let msgs = out.messages();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let id = m.message_id().unwrap_or_default().to_string();
                if let Some(h) = m.receipt_handle() {
                    handles.push((id.clone(), h.to_string()));
                }
                if seen.iter().any(|s| s.message_id == id) {
                    continue;
                }
                let mut attributes: Vec<(String, String)> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                let val = v
                                    .string_value()
                                    .map(str::to_string)
                                    .or_else(|| {
                                        v.binary_value().map(|b| {
                                            use base64::Engine;
                                            base64::engine::general_purpose::STANDARD
                                                .encode(b.as_ref())
                                        })
                                    })
                                    .unwrap_or_default();
                                (k.clone(), val)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                attributes.sort();
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                seen.push(QueueMessage {
                    message_id: id,
                    body: m.body().unwrap_or_default().to_string(),
                    attributes,
                    receive_count,
                });
            }
        }
        // Make everything visible again (batches of 10).
        for chunk in handles.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, (_, h))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(h)
                        .visibility_timeout(0)
                        .build()
                        .expect("visibility entry")
                })
                .collect();
            let _ = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
        }
        seen
    }

    /// Messages in a dead-letter queue (left in place).
    pub async fn dlq_messages(&self, url: &str) -> Vec<QueueMessage> {
        self.peek_messages(url).await
    }

    /// Sends `body` verbatim to the inbound queue with the SDK; returns the SQS message id.
    /// (Same effect as the simulator's `/sim/inbound/raw`, but we learn the message id.)
    pub async fn enqueue_inbound(&self, body: &str) -> String {
        let out = sdk(
            "SendMessage(inbound)",
            self.sqs
                .send_message()
                .queue_url(&self.inbound_queue_url)
                .message_body(body)
                .send()
                .await,
        );
        out.message_id().unwrap_or_default().to_string()
    }

    /// Sends `body` verbatim to the Connect streaming queue (as if SNS had delivered it).
    pub async fn enqueue_connect(&self, body: &str) -> String {
        let out = sdk(
            "SendMessage(connect)",
            self.sqs
                .send_message()
                .queue_url(&self.connect_queue_url)
                .message_body(body)
                .send()
                .await,
        );
        out.message_id().unwrap_or_default().to_string()
    }

    /// Receives (and deletes) the first message of `url` whose body contains `needle`.
    /// Only meaningful while no router consumes that queue.
    pub async fn take_message_containing(&self, url: &str, needle: &str) -> String {
        let sqs = &self.sqs;
        wait_for(
            &format!("a message containing {needle:?} in {url}"),
            Duration::from_secs(20),
            async || {
                let out = sdk(
                    "ReceiveMessage",
                    sqs.receive_message()
                        .queue_url(url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await,
                );
                let mut bodies = Vec::new();
                let mut found = None;
                for m in out.messages() {
                    let body = m.body().unwrap_or_default();
                    if found.is_none() && body.contains(needle) {
                        sdk(
                            "DeleteMessage",
                            sqs.delete_message()
                                .queue_url(url)
                                .receipt_handle(m.receipt_handle().unwrap_or_default())
                                .send()
                                .await,
                        );
                        found = Some(body.to_string());
                    } else {
                        bodies.push(truncate(body, 200));
                        // Leave the others for whoever comes next.
                        let _ = sqs
                            .change_message_visibility()
                            .queue_url(url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .visibility_timeout(0)
                            .send()
                            .await;
                    }
                }
                found.ok_or_else(|| format!("received instead: {bodies:?}"))
            },
        )
        .await
    }

    /// Subscription attributes of the inbound queue's subscription (e.g. RawMessageDelivery).
    pub async fn inbound_subscription_attribute(&self, name: &str) -> Option<String> {
        let out = sdk(
            "GetSubscriptionAttributes",
            self.sns
                .get_subscription_attributes()
                .subscription_arn(&self.inbound_subscription_arn)
                .send()
                .await,
        );
        out.attributes().and_then(|a| a.get(name).cloned())
    }
}

pub(crate) async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sdk(
        "GetQueueAttributes(QueueArn)",
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await,
    );
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_else(|| panic!("no QueueArn for {url}"))
}

/// Creates a queue; with `dlq_arn`, VisibilityTimeout 10 s and a RedrivePolicy
/// (maxReceiveCount 5) to that dead-letter queue. Returns (url, arn).
pub(crate) async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq_arn: Option<&str>,
) -> (String, String) {
    let mut req = sqs.create_queue().queue_name(name);
    if let Some(dlq) = dlq_arn {
        req = req
            .attributes(QueueAttributeName::VisibilityTimeout, "10")
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq, "maxReceiveCount": "5"}).to_string(),
            );
    }
    let out = sdk(&format!("CreateQueue({name})"), req.send().await);
    let url = out
        .queue_url()
        .unwrap_or_else(|| panic!("CreateQueue({name}) returned no url"))
        .to_string();
    let arn = queue_arn(sqs, &url).await;
    (url, arn)
}

/// Creates a FIFO queue (high-throughput mode, visibility 5 s); with `dlq_arn`, a redrive
/// policy (maxReceiveCount 10) to that FIFO dead-letter queue. Returns (url, arn).
async fn create_fifo_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq_arn: Option<&str>,
) -> (String, String) {
    let mut req = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .attributes(QueueAttributeName::VisibilityTimeout, "5");
    if let Some(dlq) = dlq_arn {
        req = req.attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq, "maxReceiveCount": "10"}).to_string(),
        );
    }
    let out = sdk(&format!("CreateQueue({name})"), req.send().await);
    let url = out
        .queue_url()
        .unwrap_or_else(|| panic!("CreateQueue({name}) returned no url"))
        .to_string();
    let arn = queue_arn(sqs, &url).await;
    (url, arn)
}

pub(crate) async fn create_topic(sns: &aws_sdk_sns::Client, name: &str) -> String {
    let out = sdk(
        &format!("CreateTopic({name})"),
        sns.create_topic().name(name).send().await,
    );
    out.topic_arn()
        .unwrap_or_else(|| panic!("CreateTopic({name}) returned no arn"))
        .to_string()
}

/// Subscribes the queue to the topic (with the queue policy real SNS would need).
pub(crate) async fn subscribe(
    sqs: &aws_sdk_sqs::Client,
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_url: &str,
    queue_arn: &str,
    raw: bool,
) -> String {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}
        }]
    });
    sdk(
        "SetQueueAttributes(Policy)",
        sqs.set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await,
    );
    let out = sdk(
        "Subscribe",
        sns.subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", if raw { "true" } else { "false" })
            .return_subscription_arn(true)
            .send()
            .await,
    );
    out.subscription_arn().unwrap_or_default().to_string()
}

pub(crate) fn attr_def(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

pub(crate) fn key(name: &str, kt: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kt)
        .build()
        .expect("key schema element")
}

pub(crate) async fn enable_ttl(ddb: &aws_sdk_dynamodb::Client, table: &str, attribute: &str) {
    sdk(
        &format!("UpdateTimeToLive({table})"),
        ddb.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()
                    .expect("ttl spec"),
            )
            .send()
            .await,
    );
}

/// Session table, compatible with the reference sample: hash key `contactId`, GSI
/// `customerId-index` (customerId, channel), TTL attribute `date`.
pub(crate) async fn create_sessions_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    sdk(
        &format!("CreateTable({table})"),
        ddb.create_table()
            .table_name(table)
            .attribute_definitions(attr_def("contactId"))
            .attribute_definitions(attr_def("customerId"))
            .attribute_definitions(attr_def("channel"))
            .key_schema(key("contactId", KeyType::Hash))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("customerId-index")
                    .key_schema(key("customerId", KeyType::Hash))
                    .key_schema(key("channel", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("gsi"),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    enable_ttl(ddb, table, "date").await;
}

/// Dedupe table: hash key `id`, TTL attribute `expires`.
pub(crate) async fn create_dedupe_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    sdk(
        &format!("CreateTable({table})"),
        ddb.create_table()
            .table_name(table)
            .attribute_definitions(attr_def("id"))
            .key_schema(key("id", KeyType::Hash))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await,
    );
    enable_ttl(ddb, table, "expires").await;
}
