//! End-to-end test harness shared by every `tests/e2e_*.rs` file.
//!
//! * AWS side (SQS, SNS, DynamoDB) is a real moto server started by `./scripts/test.sh`
//!   and reached through the real AWS SDK clients ([`Resources`]).
//! * The simulator (`waconnect sim`, playing Connect, Connect Participant, EUM Social, the
//!   customers and the agents) and the router (`waconnect run`) are the real binary, spawned
//!   as child processes ([`Sim`], [`Router`]) and killed on drop.
//! * Logs of each test go to `.test-logs/<test name>/{sim,router}.log`.
//!
//! Scenario-level helpers (a whole [`World`], chat/inbox readers, fixtures) are in `world.rs`.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod traffic;
mod world;
pub use world::*;

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
pub const CONNECT_INSTANCE_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CONTACT_FLOW_ID: &str = "66666666-7777-8888-9999-000000000000";

/// Deadline for the simulator to answer `/sim/healthz`.
pub const SIM_START_DEADLINE: Duration = Duration::from_secs(30);
/// Deadline for the router to answer `/readyz` with 200.
pub const ROUTER_START_DEADLINE: Duration = Duration::from_secs(60);
/// Default deadline for "something eventually happens" waits in scenarios.
pub const FLOW_DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

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

/// `<repo>/.test-logs`
pub fn test_logs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".test-logs")
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

fn sanitize(prefix: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Resources: queues, topics and tables of one test, in moto
// ---------------------------------------------------------------------------------------------

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

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
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
async fn create_queue(
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

async fn create_topic(sns: &aws_sdk_sns::Client, name: &str) -> String {
    let out = sdk(
        &format!("CreateTopic({name})"),
        sns.create_topic().name(name).send().await,
    );
    out.topic_arn()
        .unwrap_or_else(|| panic!("CreateTopic({name}) returned no arn"))
        .to_string()
}

/// Subscribes the queue to the topic (with the queue policy real SNS would need).
async fn subscribe(
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

fn attr_def(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

fn key(name: &str, kt: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kt)
        .build()
        .expect("key schema element")
}

async fn enable_ttl(ddb: &aws_sdk_dynamodb::Client, table: &str, attribute: &str) {
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
async fn create_sessions_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
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
async fn create_dedupe_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
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

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free loopback port")
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open log {}: {e}", path.display()))
}

/// Spawns the real `waconnect` binary with `args` and `env`, output appended to `log`.
/// Inherited AWS endpoint / WACONNECT_* variables are removed so only ours apply.
fn spawn_waconnect(args: &[String], env: &[(String, String)], log: &Path) -> Child {
    let mut f = open_log(log);
    let _ = writeln!(f, "=== harness: spawning waconnect {} ===", args.join(" "));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_waconnect"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(f.try_clone().expect("clone log handle")))
        .stderr(Stdio::from(f));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_ENDPOINT_URL") || k.starts_with("WACONNECT_") || k == "AWS_PROFILE" {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "spawn {} {}: {e}",
            env!("CARGO_BIN_EXE_waconnect"),
            args.join(" ")
        )
    })
}

fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = read_log(path);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Waits until GET `url` answers 200; panics early if the child exits.
async fn wait_http_ok(what: &str, child: &mut Child, url: &str, deadline: Duration, log: &Path) {
    let http = http_client();
    let start = Instant::now();
    let mut last: String;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited during start-up ({status}); last lines of {}:\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        match http.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().as_u16() == 200 => return,
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = format!("{e}"),
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} not ready: GET {url} did not answer 200 within {deadline:?} (last: {last}); \
                 last lines of {}:\n{}",
                log.display(),
                log_tail(log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill(); // SIGKILL on Unix
        let _ = c.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Simulator (`waconnect sim`) and its control API
// ---------------------------------------------------------------------------------------------

pub struct Sim {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:43121` (also the Connect/Participant/EUM endpoint).
    pub url: String,
    pub log_path: PathBuf,
    http: reqwest::Client,
}

impl Sim {
    /// `waconnect sim --listen 127.0.0.1:PORT --inbound-queue-url .. --inbound-topic-arn ..`
    pub async fn start(res: &Resources) -> Sim {
        let port = free_port();
        let log_path = res.log_dir.join("sim.log");
        let args: Vec<String> = [
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--inbound-queue-url",
            &res.inbound_queue_url,
            "--inbound-topic-arn",
            &res.eum_inbound_topic_arn,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut env = res.aws_env();
        env.push(("RUST_LOG".into(), "info,waconnect=debug".into()));
        let mut child = spawn_waconnect(&args, &env, &log_path);
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(
            "simulator",
            &mut child,
            &format!("{url}/sim/healthz"),
            SIM_START_DEADLINE,
            &log_path,
        )
        .await;
        Sim {
            child: Some(child),
            url,
            log_path,
            http: http_client(),
        }
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log_path)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator {method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            panic!(
                "simulator {method} {path} with {} answered {status}: {}",
                body.map(|b| truncate(&b.to_string(), 300))
                    .unwrap_or_default(),
                truncate(&text, 500)
            );
        }
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// The customer `wa_id` sends a text; returns its wamid.
    pub async fn send_text(&self, wa_id: &str, text: &str) -> String {
        self.send_message(wa_id, json!({"type": "text", "text": {"body": text}}))
            .await
    }

    /// The customer `wa_id` sends a Meta message object (without from/id/timestamp; may carry
    /// `profile_name` and `context`). Returns the wamid the simulator gave it.
    pub async fn send_message(&self, wa_id: &str, message: Value) -> String {
        let out = self
            .post(&format!("/sim/customers/{wa_id}/messages"), message)
            .await;
        out["wamid"]
            .as_str()
            .unwrap_or_else(|| panic!("simulator answered no wamid: {out}"))
            .to_string()
    }

    /// Enqueues `body` verbatim into the inbound SQS queue. Returns the simulator's answer.
    pub async fn send_raw(&self, body: impl Into<String>) -> Value {
        let url = format!("{}/sim/inbound/raw", self.url);
        let resp = self
            .http
            .post(&url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("simulator POST /sim/inbound/raw: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "simulator POST /sim/inbound/raw answered {status}: {}",
            truncate(&text, 500)
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// What the business sent to `wa_id`, in order: `[{"id","type","body"}]`.
    pub async fn inbox(&self, wa_id: &str) -> Vec<Value> {
        let out = self.get(&format!("/sim/customers/{wa_id}/inbox")).await;
        out["messages"].as_array().cloned().unwrap_or_default()
    }

    /// All chats the simulated Connect knows.
    pub async fn chats(&self) -> Vec<Value> {
        let out = self.get("/sim/chats").await;
        out["chats"].as_array().cloned().unwrap_or_default()
    }

    /// Chats whose `attributes.customerId` is `wa_id`, in the simulator's order.
    pub async fn chats_for(&self, wa_id: &str) -> Vec<Value> {
        self.chats()
            .await
            .into_iter()
            .filter(|c| c["attributes"]["customerId"].as_str() == Some(wa_id))
            .collect()
    }

    /// The customer's chat: the last active one, else the last one.
    pub async fn chat_for(&self, wa_id: &str) -> Option<Value> {
        let chats = self.chats_for(wa_id).await;
        chats
            .iter()
            .rev()
            .find(|c| c["state"] == "active")
            .or_else(|| chats.last())
            .cloned()
    }

    /// The chat with this contact id.
    pub async fn chat(&self, contact_id: &str) -> Option<Value> {
        self.chats()
            .await
            .into_iter()
            .find(|c| c["contact_id"].as_str() == Some(contact_id))
    }

    /// The agent writes `text` (visibility ALL, role AGENT). Returns the item id.
    pub async fn agent_says(&self, contact_id: &str, text: &str) -> String {
        self.agent_says_with(contact_id, json!({"text": text}))
            .await
    }

    /// `{"text", "visibility"?: ALL|AGENT|CUSTOMER, "role"?: AGENT|SYSTEM|CUSTOM_BOT}`.
    pub async fn agent_says_with(&self, contact_id: &str, body: Value) -> String {
        let out = self
            .post(&format!("/sim/chats/{contact_id}/agent/messages"), body)
            .await;
        out["id"].as_str().unwrap_or_default().to_string()
    }

    pub async fn end_chat(&self, contact_id: &str) {
        self.post(&format!("/sim/chats/{contact_id}/end"), json!({}))
            .await;
    }

    /// The chat's tokens stop working silently (AccessDenied on the next participant call).
    pub async fn expire_chat(&self, contact_id: &str) {
        self.post(&format!("/sim/chats/{contact_id}/expire"), json!({}))
            .await;
    }

    /// Transfers the contact; returns the new contact id.
    pub async fn transfer_chat(&self, contact_id: &str) -> String {
        let out = self
            .post(&format!("/sim/chats/{contact_id}/transfer"), json!({}))
            .await;
        out["contact_id"]
            .as_str()
            .unwrap_or_else(|| panic!("transfer answered no contact_id: {out}"))
            .to_string()
    }

    /// `{"operation","error"?,"rate","latency_ms","count"}`.
    pub async fn add_fault(&self, fault: Value) {
        self.post("/sim/faults", fault).await;
    }

    pub async fn clear_faults(&self) {
        self.call(reqwest::Method::DELETE, "/sim/faults", None)
            .await;
    }

    /// API calls the simulator served: `[{"operation","status","at"}]`.
    pub async fn calls(&self) -> Vec<Value> {
        let out = self.get("/sim/calls").await;
        out["calls"].as_array().cloned().unwrap_or_default()
    }

    /// How many calls of `operation` the simulator served (whatever their outcome).
    pub async fn count_calls(&self, operation: &str) -> usize {
        self.calls()
            .await
            .iter()
            .filter(|c| c["operation"] == operation)
            .count()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// Router (`waconnect run`)
// ---------------------------------------------------------------------------------------------

pub struct Router {
    child: Option<Child>,
    /// Admin base URL (`/readyz`, `/metrics`); changes on restart.
    pub url: String,
    pub log_path: PathBuf,
    env: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Router {
    /// `waconnect run --admin-listen 127.0.0.1:PORT` wired to `res` and `sim`; `extra_env`
    /// overrides or adds variables. Waits for `/readyz` == 200.
    pub async fn start(res: &Resources, sim: &Sim, extra_env: &[(&str, &str)]) -> Router {
        Router::start_named(res, sim, "router", extra_env).await
    }

    /// [`Router::start`] with its own log file `<name>.log`: for several routers (replicas)
    /// on the same resources.
    pub async fn start_named(
        res: &Resources,
        sim: &Sim,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> Router {
        let mut env = res.aws_env();
        if let Some(f) = &res.fifo {
            for (k, v) in [
                ("WACONNECT_INBOUND_FIFO_QUEUE_URL", &f.inbound_url),
                ("WACONNECT_INBOUND_FIFO_DLQ_URL", &f.inbound_dlq_url),
                ("WACONNECT_CONNECT_FIFO_QUEUE_URL", &f.connect_url),
                ("WACONNECT_CONNECT_FIFO_DLQ_URL", &f.connect_dlq_url),
            ] {
                env.push((k.to_string(), v.clone()));
            }
        }
        let sim_url = sim.url.as_str();
        for (k, v) in [
            (
                "WACONNECT_INBOUND_QUEUE_URL",
                res.inbound_queue_url.as_str(),
            ),
            ("WACONNECT_INBOUND_DLQ_URL", res.inbound_dlq_url.as_str()),
            (
                "WACONNECT_CONNECT_QUEUE_URL",
                res.connect_queue_url.as_str(),
            ),
            ("WACONNECT_CONNECT_DLQ_URL", res.connect_dlq_url.as_str()),
            ("WACONNECT_SESSIONS_TABLE", res.sessions_table.as_str()),
            ("WACONNECT_DEDUPE_TABLE", res.dedupe_table.as_str()),
            ("WACONNECT_CONNECT_INSTANCE_ID", CONNECT_INSTANCE_ID),
            ("WACONNECT_CONTACT_FLOW_ID", CONTACT_FLOW_ID),
            (
                "WACONNECT_STREAMING_TOPIC_ARN",
                res.connect_stream_topic_arn.as_str(),
            ),
            ("AWS_ENDPOINT_URL_CONNECT", sim_url),
            ("AWS_ENDPOINT_URL_CONNECTPARTICIPANT", sim_url),
            ("AWS_ENDPOINT_URL_SOCIALMESSAGING", sim_url),
            ("WACONNECT_MEDIA_BUCKET", res.media_bucket.as_str()),
            // The simulator serves attachment URLs on loopback http.
            ("WACONNECT_URL_ALLOWLIST", "http://127.0.0.1:*"),
            ("RUST_LOG", "info,waconnect=debug"),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        for (k, v) in extra_env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut router = Router {
            child: None,
            url: String::new(),
            log_path: res.log_dir.join(format!("{name}.log")),
            env,
            http: http_client(),
        };
        router.spawn().await;
        router
    }

    async fn spawn(&mut self) {
        let port = free_port();
        let args = vec![
            "run".to_string(),
            "--admin-listen".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        let mut child = spawn_waconnect(&args, &self.env, &self.log_path);
        self.url = format!("http://127.0.0.1:{port}");
        wait_http_ok(
            "router",
            &mut child,
            &format!("{}/readyz", self.url),
            ROUTER_START_DEADLINE,
            &self.log_path,
        )
        .await;
        self.child = Some(child);
    }

    /// SIGKILL: a crash, no graceful shutdown.
    pub fn kill(&mut self) {
        if self.child.is_some() {
            let mut f = open_log(&self.log_path);
            let _ = writeln!(f, "=== harness: SIGKILL ===");
        }
        kill_child(&mut self.child);
    }

    /// SIGTERM, as Kubernetes stops a pod: returns the process once the signal is sent, so
    /// the caller can watch the drain; see [`Router::wait_exit`].
    pub fn terminate(&mut self) {
        if let Some(child) = self.child.as_ref() {
            let mut f = open_log(&self.log_path);
            let _ = writeln!(f, "=== harness: SIGTERM ===");
            let pid = child.id().to_string();
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM {pid}");
        }
    }

    /// Waits for the process to exit; its exit status.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("router was started");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "router did not exit within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the router again (after an exit) with the same environment.
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Kills the router if it runs, then starts it again with the same environment
    /// (new admin port) and waits for readiness.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log_path)
    }

    /// HTTP status of GET /readyz (0 when it does not answer).
    pub async fn readyz(&self) -> u16 {
        match self.http.get(format!("{}/readyz", self.url)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The Prometheus text of GET /metrics.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("GET /metrics");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "GET /metrics answered {status}: {}",
            truncate(&text, 300)
        );
        text
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// What a [`wait_for`] condition may return: `true`/`Some(v)`/`Ok(v)` = done; otherwise the
/// observed state (`Err(description)` gives the best failure message).
pub trait Probe {
    type Out;
    fn into_outcome(self) -> Result<Self::Out, String>;
}

impl Probe for bool {
    type Out = ();
    fn into_outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".into())
        }
    }
}

impl<T> Probe for Option<T> {
    type Out = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T> Probe for Result<T, String> {
    type Out = T;
    fn into_outcome(self) -> Result<T, String> {
        self
    }
}

/// Polls `f` every 100 ms until it yields true/Some/Ok; on `deadline` panics naming `what`
/// and the last observed state. A waiting deadline, not a timing assertion.
pub async fn wait_for<P, F>(what: &str, deadline: Duration, mut f: F) -> P::Out
where
    P: Probe,
    F: AsyncFnMut() -> P,
{
    let start = Instant::now();
    loop {
        match f().await.into_outcome() {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() >= deadline {
                    panic!(
                        "timed out after {deadline:?} waiting for {what}; last observed: {}",
                        truncate(&state, 4000)
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a future with a deadline, panicking with `what` on timeout.
pub async fn within<T>(what: &str, deadline: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {deadline:?}: {what}"),
    }
}
