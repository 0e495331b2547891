//! Router configuration: command-line flags, environment variables and an optional TOML
//! file, merged in that order of precedence, then checked into [`AwsResources`],
//! [`ConnectTarget`] and [`Behaviour`].
//!
//! Every setting is declared once, in [`settings`], with its name, variable, default,
//! documentation and check. The flag is the name with `-` (`--inbound-queue-url`), the
//! file key is the name (`inbound_queue_url`), the variable is `WACONNECT_` and the name in
//! capitals; the README's settings table is rendered from the declarations (a test
//! compares them; `WACONNECT_UPDATE_README=1 cargo test --lib config::readme` rewrites it).
//!
//! # Adding a setting
//!
//! Add one entry to the `settings!` block of its group in `src/config/settings.rs`
//! ([`AwsSettings`] for where AWS resources are, `run` only; [`BehaviourSettings`] for the
//! rest, `run` and `local`):
//!
//! ```text
//! /// One or two lines: what it is for (the --help text and the README "meaning").
//! retry_base_millis: u64 => Duration, via positive_millis,
//!     env "WACONNECT_RETRY_BASE_MILLIS", default(500);
//! ```
//!
//! * `name: RawType` is what a flag, variable or file key holds (`bool`, a number,
//!   `String`); `=> Checked, via check` optionally turns it into another type through a
//!   `fn(Raw) -> Result<Checked, String>` (see [`declare::checks`]; add one there if
//!   none fits). Without `via` the value is taken as given.
//! * `env "WACONNECT_NAME"` is the variable: `WACONNECT_` and the name in capitals (a test
//!   holds every declaration to that).
//! * then one of `required` (start-up stops naming flag and variable when absent or blank),
//!   `optional` (an `Option`, `None` when absent or blank) or `default(expr)` (an `&str`
//!   literal is fine for `String`), optionally followed by `shown "text"` when the README
//!   should show something else than the value (computed defaults).
//!
//! That is all: the flag, the variable, the file key, `--help`, the check and the checked
//! field ([`Behaviour`] dereferences to [`BehaviourValues`], so actors read
//! `behaviour.retry_base_millis`; [`AwsResources`] has the AWS ones) follow. Then run
//! `WACONNECT_UPDATE_README=1 cargo test --lib config::readme` to regenerate the README
//! table, and add the variable to the ConfigMap in `deploy/k8s/base/kustomization.yaml`
//! (`scripts/check_ops.sh` checks that every README setting is there).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::actors::conversation::BurstPolicy;
use crate::delivery::retry::RetryPolicy;
use crate::domain::{AttachmentRules, UrlAllowlist};
use crate::ports::Language;

pub mod business_numbers;
pub mod declare;
#[cfg(test)]
mod readme;
pub mod settings;

pub use business_numbers::{
    label_business_numbers, number_label, BusinessNumberRoute, BusinessNumbers, ChatTarget,
};
pub use declare::{Presence, SettingSpec};
pub use settings::{
    default_transcoder_workers, AwsResources, AwsSettings, BehaviourSettings, BehaviourValues,
    AWS_SETTINGS, BEHAVIOUR_SETTINGS,
};

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

/// Everything `waconnect run` reads, flags and file alike.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct RunSettings {
    #[command(flatten)]
    #[serde(flatten)]
    pub aws: AwsSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub behaviour: BehaviourSettings,
    /// `[[business_numbers]]` tables of the config file: a Connect instance, contact flow
    /// and chat attributes per business number (no flag or variable; see
    /// [`business_numbers`]).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub business_numbers: Vec<BusinessNumberRoute>,
}

/// Checked behaviour settings: every [`BehaviourValues`] field (through `Deref`), plus the
/// forms the actors use of some of them.
#[derive(Debug, Clone)]
pub struct Behaviour {
    values: BehaviourValues,
    /// `dedupe_ttl_secs`.
    pub dedupe_ttl: Duration,
    /// `conversation_idle_secs`.
    pub conversation_idle: Duration,
    /// `shutdown_grace_secs`.
    pub shutdown_grace: Duration,
    /// The media settings together. Local mode overrides the bucket and the allowlist
    /// here, so actors read them here rather than from the values.
    pub media: MediaSettings,
    /// The retry policy (`retry_*`, `dead_letter_after_receives`).
    pub retry: RetryPolicy,
    /// How the supervisor judges its children.
    pub supervision: SupervisionSettings,
    /// Burst aggregation (`aggregate*`), None when switched off.
    pub aggregation: Option<BurstPolicy>,
    /// Voice-note transcription (`transcribe*`), None when switched off.
    pub transcription: Option<TranscriptionSettings>,
}

/// Checked transcription settings.
#[derive(Debug, Clone)]
pub struct TranscriptionSettings {
    pub language: Language,
    pub max_audio: Duration,
    pub deadline: Duration,
    pub ca_file: Option<PathBuf>,
}

/// How the supervisor judges its children.
#[derive(Debug, Clone)]
pub struct SupervisionSettings {
    /// Work but no progress for this long: the actor is killed and restarted.
    pub stuck_after: Duration,
    /// Restarts of one actor within [`RESTART_WINDOW`] before /healthz fails.
    pub restart_budget: u32,
    /// Test-only admin routes that make an actor panic or hang
    /// (`WACONNECT_FAULT_HOOKS=1`; never in production, and not a setting for that reason).
    pub fault_hooks: bool,
}

/// The window the restart budget counts over.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);

impl Deref for Behaviour {
    type Target = BehaviourValues;

    fn deref(&self) -> &BehaviourValues {
        &self.values
    }
}

/// Checked media settings.
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

/// Where new chats go in Amazon Connect.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub instance_id: String,
    pub contact_flow_id: String,
    pub streaming_topic_arn: String,
    /// Per business number: instance, flow and attributes (the two above by default).
    pub business_numbers: BusinessNumbers,
}

impl ConnectTarget {
    /// One target for every business number.
    pub fn single(instance_id: &str, contact_flow_id: &str, streaming_topic_arn: &str) -> Self {
        Self {
            instance_id: instance_id.into(),
            contact_flow_id: contact_flow_id.into(),
            streaming_topic_arn: streaming_topic_arn.into(),
            business_numbers: BusinessNumbers::single(ChatTarget {
                instance_id: instance_id.into(),
                contact_flow_id: contact_flow_id.into(),
                attributes: Default::default(),
            }),
        }
    }
}

impl Behaviour {
    pub fn from_settings(s: &BehaviourSettings) -> Result<Self, ConfigError> {
        let values = s.check()?;
        let url_allowlist =
            UrlAllowlist::parse(&values.url_allowlist).map_err(|reason| ConfigError::Invalid {
                key: "url_allowlist",
                reason,
            })?;
        Ok(Self {
            dedupe_ttl: values.dedupe_ttl_secs,
            conversation_idle: values.conversation_idle_secs,
            shutdown_grace: values.shutdown_grace_secs,
            media: MediaSettings {
                bucket: values.media_bucket.clone(),
                prefix: values.media_prefix.clone(),
                url_allowlist,
                rules: AttachmentRules::new(
                    &values.attachment_extensions,
                    values.attachment_max_bytes,
                ),
                ffmpeg_path: PathBuf::from(&values.ffmpeg_path),
                transcoder_workers: values.transcoder_workers,
                transcode_timeout: values.transcode_timeout_secs,
            },
            retry: RetryPolicy {
                base: values.retry_base_ms,
                max_delay: values.retry_max_delay_ms,
                max_attempts: values.retry_max_attempts,
                hold_max: values.retry_hold_max_secs,
                dead_letter_after_receives: values.dead_letter_after_receives,
            },
            transcription: if values.transcribe {
                let language = match &values.transcribe_languages {
                    Some(list) => {
                        let codes: Vec<&str> = list.split(',').collect();
                        let preferred = codes
                            .contains(&values.transcribe_language.as_str())
                            .then_some(values.transcribe_language.as_str());
                        Language::identify(&codes, preferred)
                    }
                    None => Language::fixed(&values.transcribe_language),
                }
                .map_err(|e| ConfigError::Invalid {
                    key: "transcribe_languages",
                    reason: e.to_string(),
                })?;
                Some(TranscriptionSettings {
                    language,
                    max_audio: values.transcribe_max_secs,
                    deadline: values.transcribe_timeout_secs,
                    ca_file: values.transcribe_ca_file.as_ref().map(PathBuf::from),
                })
            } else {
                None
            },
            aggregation: values.aggregate.then_some(BurstPolicy {
                quiet: values.aggregate_quiet_ms,
                max: values.aggregate_max_ms.max(values.aggregate_quiet_ms),
            }),
            supervision: SupervisionSettings {
                stuck_after: values.stuck_after_secs,
                restart_budget: values.restart_budget,
                fault_hooks: std::env::var("WACONNECT_FAULT_HOOKS").is_ok_and(|v| v == "1"),
            },
            values,
        })
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
        let resources = self.aws.check()?;
        for (queue, dlq) in [
            ("inbound_fifo_queue_url", "inbound_fifo_dlq_url"),
            ("connect_fifo_queue_url", "connect_fifo_dlq_url"),
        ] {
            let set = |key| match key {
                "inbound_fifo_queue_url" => resources.inbound_fifo_queue_url.is_some(),
                "inbound_fifo_dlq_url" => resources.inbound_fifo_dlq_url.is_some(),
                "connect_fifo_queue_url" => resources.connect_fifo_queue_url.is_some(),
                _ => resources.connect_fifo_dlq_url.is_some(),
            };
            if set(queue) != set(dlq) {
                let (missing, given) = if set(queue) {
                    (dlq, queue)
                } else {
                    (queue, dlq)
                };
                return Err(ConfigError::Invalid {
                    key: missing,
                    reason: format!("required with {given}"),
                });
            }
        }
        let business_numbers = BusinessNumbers::new(
            ChatTarget {
                instance_id: resources.connect_instance_id.clone(),
                contact_flow_id: resources.contact_flow_id.clone(),
                attributes: Default::default(),
            },
            &self.business_numbers,
        )?;
        let target = ConnectTarget {
            instance_id: resources.connect_instance_id.clone(),
            contact_flow_id: resources.contact_flow_id.clone(),
            streaming_topic_arn: resources.streaming_topic_arn.clone(),
            business_numbers,
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
        assert_eq!(
            msg,
            "missing setting contact_flow_id: set --contact-flow-id or \
             WACONNECT_CONTACT_FLOW_ID (or the key in --config FILE)"
        );
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

    /// The defaults as they were before the settings were declared in one place.
    #[test]
    fn defaults() {
        let (res, target, b) = complete().resolve().unwrap();
        assert_eq!(res.sessions_table, "waconnect-sessions");
        assert_eq!(res.dedupe_table, "waconnect-dedupe");
        assert_eq!(target.streaming_topic_arn, "arn:aws:sns:us-east-1:1:t");
        assert!(!b.forward_reactions && !b.forward_stickers && b.acknowledge);
        assert_eq!(b.meta_api_version, "v20.0");
        assert_eq!(b.chat_duration_minutes, 1440);
        assert_eq!((b.mailbox_capacity, b.max_in_flight), (64, 200));
        assert_eq!(b.dedupe_ttl, Duration::from_secs(1_209_600));
        assert_eq!(b.conversation_idle, Duration::from_secs(300));
        assert_eq!(b.whatsapp_rate_per_sec, 80);
        assert_eq!(b.shutdown_grace, Duration::from_secs(25));
        assert_eq!(b.media.bucket, None);
        assert_eq!(b.media.prefix, "waconnect/media/");
        assert!(b
            .media
            .url_allowlist
            .permits("https://bucket.s3.amazonaws.com/x"));
        assert!(!b.media.url_allowlist.permits("http://127.0.0.1/x"));
        assert_eq!(b.media.rules, crate::domain::AttachmentRules::default());
        assert_eq!(b.media.ffmpeg_path, PathBuf::from("ffmpeg"));
        assert_eq!(b.media.transcoder_workers, default_transcoder_workers());
        assert_eq!(b.media.transcode_timeout, Duration::from_secs(30));
    }

    #[test]
    fn blank_values_count_as_absent() {
        let mut s = complete();
        s.aws.contact_flow_id = Some("  ".into());
        assert!(matches!(
            s.resolve().unwrap_err(),
            ConfigError::Missing {
                key: "contact_flow_id",
                ..
            }
        ));
        let mut s = complete();
        s.aws.connect_instance_id = Some(" i ".into());
        s.behaviour.media_bucket = Some(" ".into());
        let (_, target, b) = s.resolve().unwrap();
        assert_eq!(target.instance_id, "i");
        assert_eq!(b.media.bucket, None);
    }

    #[test]
    fn zero_and_bad_lists_are_refused() {
        for (name, edit) in [
            (
                "mailbox_capacity",
                (|s: &mut RunSettings| s.behaviour.mailbox_capacity = Some(0))
                    as fn(&mut RunSettings),
            ),
            ("transcoder_workers", |s| {
                s.behaviour.transcoder_workers = Some(0)
            }),
            ("dedupe_ttl_secs", |s| s.behaviour.dedupe_ttl_secs = Some(0)),
            ("attachment_max_bytes", |s| {
                s.behaviour.attachment_max_bytes = Some(0)
            }),
            ("url_allowlist", |s| {
                s.behaviour.url_allowlist = Some("ftp://x".into())
            }),
            ("streaming_topic_arn", |s| {
                s.aws.streaming_topic_arn = Some("topic".into())
            }),
        ] {
            let mut s = complete();
            edit(&mut s);
            let e = s.resolve().unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid setting {name}: ")), "{e}");
        }
        // A grace of 0 is allowed: exit at once.
        let mut s = complete();
        s.behaviour.shutdown_grace_secs = Some(0);
        assert_eq!(s.resolve().unwrap().2.shutdown_grace, Duration::ZERO);
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
    fn business_numbers_come_from_file_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "forward_reactions = true\n\n\
             [[business_numbers]]\nphone_number_id = \"phone-number-id-b\"\n\
             contact_flow_id = \"flow-b\"\nattributes = { brand = \"B\" }\n\n\
             [[business_numbers]]\nphone_number_id = \"phone-number-id-c\"\n\
             contact_flow_id = \"flow-c\"\nconnect_instance_id = \"instance-c\"\n",
        )
        .unwrap();
        let merged = complete().merged_with_file(Some(&path)).unwrap();
        let (_, target, behaviour) = merged.resolve().unwrap();
        assert!(behaviour.forward_reactions);
        let b = target.business_numbers.target("phone-number-id-b");
        assert_eq!(
            (b.instance_id.as_str(), b.contact_flow_id.as_str()),
            ("i", "flow-b")
        );
        assert_eq!(b.attributes["brand"], "B");
        let c = target.business_numbers.target("phone-number-id-c");
        assert_eq!(c.instance_id, "instance-c");
        let other = target.business_numbers.target("phone-number-id-x");
        assert_eq!(
            (other.instance_id.as_str(), other.contact_flow_id.as_str()),
            ("i", "f")
        );

        std::fs::write(
            &path,
            "[[business_numbers]]\nphone_number_id = \"phone-number-id-b\"\nflow = \"x\"\n",
        )
        .unwrap();
        let err = complete().merged_with_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("flow"), "{err}");
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
