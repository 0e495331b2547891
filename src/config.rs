//! Router configuration: command-line flags, environment variables and an optional TOML
//! file, merged in that order of precedence, then validated into [`RouterConfig`].
//!
//! Every setting has one name in three spellings: the flag `--inbound-queue-url`, the
//! variable `WACONNECT_INBOUND_QUEUE_URL` and the file key `inbound_queue_url`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::delivery::retry::RetryPolicy;
use crate::domain::{
    AttachmentRules, UrlAllowlist, CONNECT_DEFAULT_EXTENSIONS, DEFAULT_URL_ALLOWLIST,
};
use serde::{Deserialize, Serialize};

/// A setting is missing or wrong; start-up stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing setting {key}: set --{flag} or {env}{hint}")]
    Missing {
        key: &'static str,
        flag: String,
        env: String,
        hint: &'static str,
    },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Settings of the router's behaviour, shared by `run` and `local`.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct BehaviourSettings {
    /// Forward customer reactions to the agent as text [default: false].
    #[arg(long, env = "WACONNECT_FORWARD_REACTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_reactions: Option<bool>,
    /// Forward customer stickers to the agent [default: false].
    #[arg(long, env = "WACONNECT_FORWARD_STICKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_stickers: Option<bool>,
    /// Mark customer messages read and react 👀 / ✅ as the reference sample [default: true].
    #[arg(long, env = "WACONNECT_ACKNOWLEDGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<bool>,
    /// Meta Cloud API version sent with SendWhatsAppMessage [default: v20.0].
    #[arg(long, env = "WACONNECT_META_API_VERSION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_api_version: Option<String>,
    /// ChatDurationInMinutes of new chats, 60..=10080 [default: 1440].
    #[arg(long, env = "WACONNECT_CHAT_DURATION_MINUTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_duration_minutes: Option<u32>,
    /// Pending work items per customer before new work is left in the queue [default: 64].
    #[arg(long, env = "WACONNECT_MAILBOX_CAPACITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox_capacity: Option<usize>,
    /// Queue messages each intake holds in flight at most [default: 200].
    #[arg(long, env = "WACONNECT_MAX_IN_FLIGHT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// How long a handled message id is remembered against redelivery [default: 1209600,
    /// SQS's longest retention, so no message can outlive its record].
    #[arg(long, env = "WACONNECT_DEDUPE_TTL_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe_ttl_secs: Option<u64>,
    /// A customer's conversation actor stops after this long without work [default: 300].
    #[arg(long, env = "WACONNECT_CONVERSATION_IDLE_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_idle_secs: Option<u64>,
    /// SendWhatsAppMessage calls per second per business number [default: 80, Meta's default].
    #[arg(long, env = "WACONNECT_WHATSAPP_RATE_PER_SEC")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_rate_per_sec: Option<u32>,
    /// On SIGTERM, how long in-flight work may take before exit [default: 25].
    #[arg(long, env = "WACONNECT_SHUTDOWN_GRACE_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_secs: Option<u64>,
    /// S3 bucket EUM writes customer media to and agent audio is converted into. Without
    /// it, files reach the agent as a text notice only.
    #[arg(long, env = "WACONNECT_MEDIA_BUCKET")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_bucket: Option<String>,
    /// Key prefix for media objects [default: waconnect/media/].
    #[arg(long, env = "WACONNECT_MEDIA_PREFIX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_prefix: Option<String>,
    /// Origins attachments may be uploaded to or fetched from, comma-separated
    /// `scheme://host[:port]`, `*.` and `:*` wildcards [default: https://*.amazonaws.com].
    #[arg(long, env = "WACONNECT_URL_ALLOWLIST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_allowlist: Option<String>,
    /// File extensions Connect accepts as chat attachments, comma-separated
    /// [default: Connect's list: csv,doc,docx,heic,jfif,jpeg,jpg,mov,mp4,pdf,png,ppt,pptx,rtf,txt,wav,xls,xlsx].
    #[arg(long, env = "WACONNECT_ATTACHMENT_EXTENSIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_extensions: Option<String>,
    /// Largest attachment in bytes, both ways; larger customer files are refused from
    /// their reported size, before download [default: 20971520, Connect's 20 MB].
    #[arg(long, env = "WACONNECT_ATTACHMENT_MAX_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_max_bytes: Option<u64>,
    /// The ffmpeg binary [default: ffmpeg].
    #[arg(long, env = "WACONNECT_FFMPEG_PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffmpeg_path: Option<String>,
    /// ffmpeg processes kept ready and run at once [default: the CPU count].
    #[arg(long, env = "WACONNECT_TRANSCODER_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcoder_workers: Option<usize>,
    /// Longest one conversion may take before ffmpeg is killed [default: 30].
    #[arg(long, env = "WACONNECT_TRANSCODE_TIMEOUT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcode_timeout_secs: Option<u64>,
    /// First wait before a failed step is tried again; each retry doubles it [default: 500].
    #[arg(long, env = "WACONNECT_RETRY_BASE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_base_ms: Option<u64>,
    /// Longest wait between two tries of a failed step [default: 60000].
    #[arg(long, env = "WACONNECT_RETRY_MAX_DELAY_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_delay_ms: Option<u64>,
    /// Failures of one message (while its dependency answers others) before it is
    /// dead-lettered [default: 8].
    #[arg(long, env = "WACONNECT_RETRY_MAX_ATTEMPTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_attempts: Option<u32>,
    /// Longest a step holds its queue message through an outage before handing it back
    /// [default: 3600].
    #[arg(long, env = "WACONNECT_RETRY_HOLD_MAX_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_hold_max_secs: Option<u64>,
    /// A message received more often than this is dead-lettered on its next failure; keep
    /// it below the queue's maxReceiveCount [default: 9].
    #[arg(long, env = "WACONNECT_DEAD_LETTER_AFTER_RECEIVES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_after_receives: Option<u32>,
    /// An actor with work and no progress for this long is killed and restarted
    /// [default: 120].
    #[arg(long, env = "WACONNECT_STUCK_AFTER_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_after_secs: Option<u64>,
    /// Restarts of one actor within 10 minutes after which /healthz fails [default: 5].
    #[arg(long, env = "WACONNECT_RESTART_BUDGET")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_budget: Option<u32>,
}

/// Where the router's AWS resources are (`waconnect run`).
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct AwsSettings {
    /// SQS queue subscribed to the EUM event destination topic.
    #[arg(long, env = "WACONNECT_INBOUND_QUEUE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_queue_url: Option<String>,
    /// Dead-letter queue for inbound messages that cannot be handled.
    #[arg(long, env = "WACONNECT_INBOUND_DLQ_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_dlq_url: Option<String>,
    /// SQS queue subscribed to the Connect chat streaming topic.
    #[arg(long, env = "WACONNECT_CONNECT_QUEUE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_queue_url: Option<String>,
    /// Dead-letter queue for Connect chat items that cannot be handled.
    #[arg(long, env = "WACONNECT_CONNECT_DLQ_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_dlq_url: Option<String>,
    /// DynamoDB session table [default: waconnect-sessions].
    #[arg(long, env = "WACONNECT_SESSIONS_TABLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_table: Option<String>,
    /// DynamoDB dedupe table [default: waconnect-dedupe].
    #[arg(long, env = "WACONNECT_DEDUPE_TABLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe_table: Option<String>,
    /// Amazon Connect instance id.
    #[arg(long, env = "WACONNECT_CONNECT_INSTANCE_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_instance_id: Option<String>,
    /// Contact flow that new chats start in.
    #[arg(long, env = "WACONNECT_CONTACT_FLOW_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_flow_id: Option<String>,
    /// SNS topic Connect streams chat items to (StartContactStreaming).
    #[arg(long, env = "WACONNECT_STREAMING_TOPIC_ARN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming_topic_arn: Option<String>,
    /// SQS FIFO queue customer events are regrouped into (per-customer order across
    /// replicas); with its DLQ. Without it each replica keeps order only for itself.
    #[arg(long, env = "WACONNECT_INBOUND_FIFO_QUEUE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_fifo_queue_url: Option<String>,
    /// FIFO dead-letter queue of the inbound FIFO queue.
    #[arg(long, env = "WACONNECT_INBOUND_FIFO_DLQ_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_fifo_dlq_url: Option<String>,
    /// SQS FIFO queue chat items are regrouped into (per-customer order across replicas);
    /// with its DLQ.
    #[arg(long, env = "WACONNECT_CONNECT_FIFO_QUEUE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_fifo_queue_url: Option<String>,
    /// FIFO dead-letter queue of the connect FIFO queue.
    #[arg(long, env = "WACONNECT_CONNECT_FIFO_DLQ_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_fifo_dlq_url: Option<String>,
}

/// Everything `waconnect run` reads, flags and file alike.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct RunSettings {
    #[command(flatten)]
    #[serde(flatten)]
    pub aws: AwsSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub behaviour: BehaviourSettings,
}

/// Validated behaviour settings with defaults applied.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub forward_reactions: bool,
    pub forward_stickers: bool,
    pub acknowledge: bool,
    pub meta_api_version: String,
    pub chat_duration_minutes: u32,
    pub mailbox_capacity: usize,
    pub max_in_flight: usize,
    pub dedupe_ttl: Duration,
    pub conversation_idle: Duration,
    pub whatsapp_rate_per_sec: u32,
    pub shutdown_grace: Duration,
    pub media: MediaSettings,
    pub retry: RetryPolicy,
    pub supervision: SupervisionSettings,
}

/// How the supervisor judges its children.
#[derive(Debug, Clone)]
pub struct SupervisionSettings {
    /// Work but no progress for this long: the actor is killed and restarted.
    pub stuck_after: Duration,
    /// Restarts of one actor within [`RESTART_WINDOW`] before /healthz fails.
    pub restart_budget: u32,
    /// Test-only admin routes that make an actor panic or hang
    /// (`WACONNECT_FAULT_HOOKS=1`; never in production).
    pub fault_hooks: bool,
}

/// The window the restart budget counts over.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);

/// Validated media settings.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub bucket: Option<String>,
    pub prefix: String,
    pub url_allowlist: UrlAllowlist,
    pub rules: AttachmentRules,
    pub ffmpeg_path: PathBuf,
    pub transcoder_workers: usize,
    pub transcode_timeout: Duration,
}

/// Validated AWS resource names.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub inbound_queue_url: String,
    pub inbound_dlq_url: String,
    pub connect_queue_url: String,
    pub connect_dlq_url: String,
    pub sessions_table: String,
    pub dedupe_table: String,
    /// The FIFO stage of each direction (queue, DLQ), when configured.
    pub inbound_fifo: Option<(String, String)>,
    pub connect_fifo: Option<(String, String)>,
}

/// Where new chats go in Amazon Connect.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub instance_id: String,
    pub contact_flow_id: String,
    pub streaming_topic_arn: String,
}

impl Behaviour {
    pub fn from_settings(s: &BehaviourSettings) -> Result<Self, ConfigError> {
        let chat_duration_minutes = s.chat_duration_minutes.unwrap_or(1440);
        if !(60..=10080).contains(&chat_duration_minutes) {
            return Err(ConfigError::Invalid {
                key: "chat_duration_minutes",
                reason: format!("{chat_duration_minutes} is outside 60..=10080"),
            });
        }
        let positive = |key: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    key,
                    reason: "must be greater than 0".into(),
                })
            } else {
                Ok(v)
            }
        };
        Ok(Self {
            forward_reactions: s.forward_reactions.unwrap_or(false),
            forward_stickers: s.forward_stickers.unwrap_or(false),
            acknowledge: s.acknowledge.unwrap_or(true),
            meta_api_version: s.meta_api_version.clone().unwrap_or_else(|| "v20.0".into()),
            chat_duration_minutes,
            mailbox_capacity: positive("mailbox_capacity", s.mailbox_capacity.unwrap_or(64) as u64)?
                as usize,
            max_in_flight: positive("max_in_flight", s.max_in_flight.unwrap_or(200) as u64)?
                as usize,
            dedupe_ttl: Duration::from_secs(positive(
                "dedupe_ttl_secs",
                s.dedupe_ttl_secs.unwrap_or(14 * 24 * 3600),
            )?),
            conversation_idle: Duration::from_secs(positive(
                "conversation_idle_secs",
                s.conversation_idle_secs.unwrap_or(300),
            )?),
            whatsapp_rate_per_sec: positive(
                "whatsapp_rate_per_sec",
                s.whatsapp_rate_per_sec.unwrap_or(80) as u64,
            )? as u32,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs.unwrap_or(25)),
            media: MediaSettings {
                bucket: s.media_bucket.clone().filter(|b| !b.trim().is_empty()),
                prefix: s
                    .media_prefix
                    .clone()
                    .unwrap_or_else(|| "waconnect/media/".into()),
                url_allowlist: UrlAllowlist::parse(
                    s.url_allowlist.as_deref().unwrap_or(DEFAULT_URL_ALLOWLIST),
                )
                .map_err(|reason| ConfigError::Invalid {
                    key: "url_allowlist",
                    reason,
                })?,
                rules: AttachmentRules::new(
                    s.attachment_extensions
                        .as_deref()
                        .unwrap_or(CONNECT_DEFAULT_EXTENSIONS),
                    positive(
                        "attachment_max_bytes",
                        s.attachment_max_bytes.unwrap_or(20 * 1024 * 1024),
                    )?,
                ),
                ffmpeg_path: PathBuf::from(
                    s.ffmpeg_path.clone().unwrap_or_else(|| "ffmpeg".into()),
                ),
                transcoder_workers: positive(
                    "transcoder_workers",
                    s.transcoder_workers.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(2, |n| n.get())
                    }) as u64,
                )? as usize,
                transcode_timeout: Duration::from_secs(positive(
                    "transcode_timeout_secs",
                    s.transcode_timeout_secs.unwrap_or(30),
                )?),
            },
            retry: RetryPolicy {
                base: Duration::from_millis(positive(
                    "retry_base_ms",
                    s.retry_base_ms.unwrap_or(500),
                )?),
                max_delay: Duration::from_millis(positive(
                    "retry_max_delay_ms",
                    s.retry_max_delay_ms.unwrap_or(60_000),
                )?),
                max_attempts: {
                    let n = s.retry_max_attempts.unwrap_or(8);
                    // A lone customer's messages are all the traffic during an outage: the
                    // outage must be recognised before their attempts run out.
                    if n <= crate::delivery::dependency::DOWN_AFTER {
                        return Err(ConfigError::Invalid {
                            key: "retry_max_attempts",
                            reason: format!(
                                "must be above {}, the failed calls in a row that mark a dependency down",
                                crate::delivery::dependency::DOWN_AFTER
                            ),
                        });
                    }
                    n
                },
                hold_max: Duration::from_secs(positive(
                    "retry_hold_max_secs",
                    s.retry_hold_max_secs.unwrap_or(3600),
                )?),
                dead_letter_after_receives: positive(
                    "dead_letter_after_receives",
                    s.dead_letter_after_receives.unwrap_or(9).into(),
                )? as u32,
            },
            supervision: SupervisionSettings {
                stuck_after: Duration::from_secs(positive(
                    "stuck_after_secs",
                    s.stuck_after_secs.unwrap_or(120),
                )?),
                restart_budget: positive("restart_budget", s.restart_budget.unwrap_or(5).into())?
                    as u32,
                fault_hooks: std::env::var("WACONNECT_FAULT_HOOKS").is_ok_and(|v| v == "1"),
            },
        })
    }
}

fn required(value: &Option<String>, key: &'static str) -> Result<String, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(ConfigError::Missing {
            key,
            flag: key.replace('_', "-"),
            env: format!("WACONNECT_{}", key.to_ascii_uppercase()),
            hint: " (or the key in --config FILE)",
        }),
    }
}

fn queue_url(value: &Option<String>, key: &'static str) -> Result<String, ConfigError> {
    let url = required(value, key)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
                .into(),
        });
    }
    Ok(url)
}

/// A FIFO queue and its DLQ: both or neither, both FIFO (`.fifo`).
fn fifo_pair(
    queue: &Option<String>,
    queue_key: &'static str,
    dlq: &Option<String>,
    dlq_key: &'static str,
) -> Result<Option<(String, String)>, ConfigError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    match (set(queue), set(dlq)) {
        (false, false) => Ok(None),
        (true, false) => Err(ConfigError::Invalid {
            key: dlq_key,
            reason: format!("required with {queue_key}"),
        }),
        (false, true) => Err(ConfigError::Invalid {
            key: queue_key,
            reason: format!("required with {dlq_key}"),
        }),
        (true, true) => {
            let (queue, dlq) = (queue_url(queue, queue_key)?, queue_url(dlq, dlq_key)?);
            for (url, key) in [(&queue, queue_key), (&dlq, dlq_key)] {
                if !url.ends_with(".fifo") {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: "must be an SQS FIFO queue URL (its name ends in .fifo)".into(),
                    });
                }
            }
            Ok(Some((queue, dlq)))
        }
    }
}

impl RunSettings {
    /// Flags/env (already in `self`) over the optional file.
    pub fn merged_with_file(self, file: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = file else { return Ok(self) };
        let err = |reason: String| ConfigError::File {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let from_file: RunSettings = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| err(e.to_string()))?;
        // Both sides skip unset keys when serialised, so an object merge is field-by-field,
        // and a file key that does not survive the round trip is one we do not know
        // (serde's deny_unknown_fields does not work through `flatten`).
        let mut merged = serde_json::to_value(&from_file).map_err(|e| err(e.to_string()))?;
        if let Some(unknown) = table.keys().find(|k| merged.get(k.as_str()).is_none()) {
            return Err(err(format!("unknown key `{unknown}`")));
        }
        let over = serde_json::to_value(&self).map_err(|e| err(e.to_string()))?;
        if let (Some(base), serde_json::Value::Object(over)) = (merged.as_object_mut(), over) {
            base.extend(over);
        }
        serde_json::from_value(merged).map_err(|e| err(e.to_string()))
    }

    pub fn resolve(&self) -> Result<(AwsResources, ConnectTarget, Behaviour), ConfigError> {
        let a = &self.aws;
        let resources = AwsResources {
            inbound_queue_url: queue_url(&a.inbound_queue_url, "inbound_queue_url")?,
            inbound_dlq_url: queue_url(&a.inbound_dlq_url, "inbound_dlq_url")?,
            connect_queue_url: queue_url(&a.connect_queue_url, "connect_queue_url")?,
            connect_dlq_url: queue_url(&a.connect_dlq_url, "connect_dlq_url")?,
            sessions_table: a
                .sessions_table
                .clone()
                .unwrap_or_else(|| "waconnect-sessions".into()),
            dedupe_table: a
                .dedupe_table
                .clone()
                .unwrap_or_else(|| "waconnect-dedupe".into()),
            inbound_fifo: fifo_pair(
                &a.inbound_fifo_queue_url,
                "inbound_fifo_queue_url",
                &a.inbound_fifo_dlq_url,
                "inbound_fifo_dlq_url",
            )?,
            connect_fifo: fifo_pair(
                &a.connect_fifo_queue_url,
                "connect_fifo_queue_url",
                &a.connect_fifo_dlq_url,
                "connect_fifo_dlq_url",
            )?,
        };
        let streaming_topic_arn = required(&a.streaming_topic_arn, "streaming_topic_arn")?;
        if !streaming_topic_arn.starts_with("arn:") {
            return Err(ConfigError::Invalid {
                key: "streaming_topic_arn",
                reason: "must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)".into(),
            });
        }
        let target = ConnectTarget {
            instance_id: required(&a.connect_instance_id, "connect_instance_id")?,
            contact_flow_id: required(&a.contact_flow_id, "contact_flow_id")?,
            streaming_topic_arn,
        };
        Ok((
            resources,
            target,
            Behaviour::from_settings(&self.behaviour)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> RunSettings {
        let mut s = RunSettings::default();
        s.aws.inbound_queue_url = Some("http://127.0.0.1:5000/1/in".into());
        s.aws.inbound_dlq_url = Some("http://127.0.0.1:5000/1/in-dlq".into());
        s.aws.connect_queue_url = Some("http://127.0.0.1:5000/1/cx".into());
        s.aws.connect_dlq_url = Some("http://127.0.0.1:5000/1/cx-dlq".into());
        s.aws.connect_instance_id = Some("i".into());
        s.aws.contact_flow_id = Some("f".into());
        s.aws.streaming_topic_arn = Some("arn:aws:sns:us-east-1:1:t".into());
        s
    }

    #[test]
    fn missing_setting_is_named_with_flag_and_env() {
        let mut s = complete();
        s.aws.contact_flow_id = None;
        let msg = s.resolve().unwrap_err().to_string();
        assert!(msg.contains("--contact-flow-id"), "{msg}");
        assert!(msg.contains("WACONNECT_CONTACT_FLOW_ID"), "{msg}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut s = complete();
        s.behaviour.chat_duration_minutes = Some(5);
        assert!(s
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("chat_duration_minutes"));
        let mut s = complete();
        s.aws.inbound_queue_url = Some("my-queue".into());
        assert!(s
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("inbound_queue_url"));
    }

    #[test]
    fn flags_override_file_and_file_fills_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "contact_flow_id = \"from-file\"\nconnect_instance_id = \"file-instance\"\nforward_reactions = true\n",
        )
        .unwrap();
        let mut s = complete();
        s.aws.contact_flow_id = None;
        s.aws.connect_instance_id = Some("flag-instance".into());
        let merged = s.merged_with_file(Some(&path)).unwrap();
        let (_, target, behaviour) = merged.resolve().unwrap();
        assert_eq!(target.contact_flow_id, "from-file");
        assert_eq!(target.instance_id, "flag-instance");
        assert!(behaviour.forward_reactions);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "contact_flow = \"typo\"\n").unwrap();
        let err = complete().merged_with_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("contact_flow"), "{err}");
    }
}
