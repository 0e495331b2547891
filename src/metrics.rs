//! Metric names and the few helpers that record them. Every name the dashboards and
//! alert rules use is defined here, once; docs/metrics.md explains each.
//!
//! No label ever carries a phone number, a message id or a token: label values are drawn
//! from small fixed sets (actor names, operations, outcomes).

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const AWS_CALLS: &str = "waconnect_aws_calls_total";
pub const AWS_CALL_DURATION: &str = "waconnect_aws_call_duration_seconds";
pub const ACTOR_MESSAGES: &str = "waconnect_actor_messages_total";
pub const ACTOR_ERRORS: &str = "waconnect_actor_errors_total";
pub const ACTOR_HANDLE_DURATION: &str = "waconnect_actor_handle_duration_seconds";
pub const ACTOR_MAILBOX_DEPTH: &str = "waconnect_actor_mailbox_depth";
pub const ACTOR_RESTARTS: &str = "waconnect_actor_restarts_total";
pub const ACTOR_HEARTBEAT: &str = "waconnect_actor_heartbeat_timestamp_seconds";
pub const E2E_LATENCY: &str = "waconnect_e2e_latency_seconds";
pub const CONVERSATIONS_ACTIVE: &str = "waconnect_conversations_active";
pub const SESSIONS_ACTIVE: &str = "waconnect_sessions_active";
pub const SESSIONS_STARTED: &str = "waconnect_sessions_started_total";
pub const DEDUPE_HITS: &str = "waconnect_dedupe_hits_total";
pub const DEAD_LETTERS: &str = "waconnect_dead_letters_total";
pub const QUEUE_MESSAGES: &str = "waconnect_queue_messages_total";
pub const QUEUE_IN_FLIGHT: &str = "waconnect_queue_in_flight_messages";
pub const WHATSAPP_STATUSES: &str = "waconnect_whatsapp_statuses_total";
pub const INBOUND_MESSAGES: &str = "waconnect_inbound_messages_total";
pub const OUTBOUND_ITEMS: &str = "waconnect_outbound_items_total";
pub const FFMPEG_POOL_SIZE: &str = "waconnect_ffmpeg_pool_size";
pub const FFMPEG_BUSY: &str = "waconnect_ffmpeg_busy";
pub const FFMPEG_QUEUED: &str = "waconnect_ffmpeg_queued";
pub const FFMPEG_JOB_DURATION: &str = "waconnect_ffmpeg_job_duration_seconds";
pub const FFMPEG_JOBS: &str = "waconnect_ffmpeg_jobs_total";
pub const FFMPEG_CHILD_RESTARTS: &str = "waconnect_ffmpeg_child_restarts_total";
pub const DEPENDENCY_UP: &str = "waconnect_dependency_up";
pub const RETRIES: &str = "waconnect_retries_total";
pub const VISIBILITY_EXTENSIONS: &str = "waconnect_queue_visibility_extensions_total";
pub const MAILBOX_REFUSALS: &str = "waconnect_conversation_refusals_total";
pub const MAILBOX_HIGH_WATER: &str = "waconnect_conversation_mailbox_high_water";
pub const ACTOR_STUCK: &str = "waconnect_actor_stuck_total";
pub const SUSPECTED_DUPLICATES: &str = "waconnect_whatsapp_suspected_duplicates_total";
pub const RESENDS_AVOIDED: &str = "waconnect_whatsapp_resends_avoided_total";
pub const REGROUPED: &str = "waconnect_regrouped_messages_total";
pub const BURSTS: &str = "waconnect_bursts_total";
pub const TRANSCRIPTIONS: &str = "waconnect_transcriptions_total";
pub const WHATSAPP_PENDING: &str = "waconnect_whatsapp_pending_sends";
pub const WHATSAPP_ACKS: &str = "waconnect_whatsapp_acks_total";
pub const DEDUPE_CHECKS: &str = "waconnect_dedupe_checks_total";
pub const BATCH_SIZE: &str = "waconnect_batch_size";
pub const RECEIPTS: &str = "waconnect_receipts_total";
pub const STATUSES_HANDLED: &str = "waconnect_statuses_handled_total";
pub const SEND_FAILURES: &str = "waconnect_whatsapp_send_failures_total";
pub const TYPING_INDICATORS: &str = "waconnect_typing_indicators_total";
pub const BOT_MENUS: &str = "waconnect_bot_menus_total";
pub const BOT_MENU_CHOICES: &str = "waconnect_bot_menu_choices_total";
pub const BUSINESS_NUMBER_MESSAGES: &str = "waconnect_business_number_messages_total";

/// What became of a status of an agent message, as the `outcome` label of
/// `waconnect_receipts_total` has it.
pub const RECEIPT_OUTCOMES: [&str; 6] = [
    "shown",
    "recorded",
    "told",
    "chat_ended",
    "unmatched",
    "dropped",
];
/// How a bot menu was shown (`shape` of `waconnect_bot_menus_total`).
pub const BOT_MENU_SHAPES: [&str; 4] = ["buttons", "list", "text_menu", "text"];
/// How a customer chose (`via` of `waconnect_bot_menu_choices_total`): a tap on a
/// button or list row, or the number of a text menu's option.
pub const BOT_MENU_VIA: [&str; 2] = ["reply", "number"];
/// What became of an agent's typing (`outcome` of `waconnect_typing_indicators_total`).
pub const TYPING_OUTCOMES: [&str; 4] = ["sent", "rate_limited", "no_message", "failed"];

/// Services whose health `waconnect_dependency_up` reports.
pub const SERVICES: [&str; 7] = [
    "sqs",
    "dynamodb",
    "s3",
    "connect",
    "connectparticipant",
    "socialmessaging",
    "transcribe",
];
pub const BUILD_INFO: &str = "waconnect_build_info";

/// The crate version, as `waconnect_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from (build.rs; `unknown` without git), as
/// `waconnect_build_info{commit}` reports it.
pub const COMMIT: &str = env!("WACONNECT_BUILD_COMMIT");

/// Transcoding profiles, as they appear in the `profile` label.
pub const FFMPEG_PROFILES: [&str; 3] = ["voice_to_wav", "webp_to_png", "audio_to_opus"];

/// How a transcoding job ended, as it appears in the `outcome` label.
pub const FFMPEG_OUTCOMES: [&str; 8] = [
    "ok",
    "timeout",
    "failed",
    "garbage",
    "busy",
    "too_large",
    "unsupported",
    "spawn_failed",
];

/// Latency buckets (seconds) for every `_seconds` histogram but the end-to-end one:
/// 1 ms .. 60 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of `waconnect_e2e_latency_seconds`: 25 ms .. 15 min. End-to-end latency
/// includes the wait in the queue, so during a backlog it runs into minutes; with the
/// last bucket at 60 s its p99 would flatten at 60 s exactly when it matters.
const E2E_BUCKETS: &[f64] = &[
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
];

/// The exporter's configuration: bucket sets per histogram (a `Full` match is checked
/// before a `Suffix` match).
fn builder() -> Result<PrometheusBuilder, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(E2E_LATENCY.into()), E2E_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(BATCH_SIZE.into()),
                &[1.0, 2.0, 5.0, 10.0, 25.0],
            )
        })
        .map_err(|e| e.to_string())
}

/// Installs the global Prometheus recorder; the handle renders `/metrics`.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = builder()?.install_recorder().map_err(|e| e.to_string())?;
    describe();
    register_series();
    Ok(handle)
}

/// The actors, as they appear in the `actor` label.
pub const ACTORS: [&str; 9] = [
    "inbound_intake",
    "conversation",
    "connect_upload",
    "whatsapp_send",
    "connect_event_intake",
    "transcoder_pool",
    "media_download",
    "inbound_regroup",
    "connect_regroup",
];

/// Creates the series that alerts and dashboards read before anything has happened, so
/// `rate()` and `increase()` see a zero rather than an absent series.
fn register_series() {
    gauge!(BUILD_INFO, "version" => VERSION, "commit" => COMMIT).set(1.0);
    for queue in ["inbound", "connect"] {
        counter!(DEAD_LETTERS, "queue" => queue).increment(0);
        gauge!(QUEUE_IN_FLIGHT, "queue" => queue).set(0.0);
        for outcome in ["deleted", "retried", "dead_lettered", "settle_failed"] {
            counter!(QUEUE_MESSAGES, "queue" => queue, "outcome" => outcome).increment(0);
        }
    }
    for actor in ACTORS {
        counter!(ACTOR_RESTARTS, "actor" => actor).increment(0);
        counter!(ACTOR_STUCK, "actor" => actor).increment(0);
        counter!(ACTOR_ERRORS, "actor" => actor, "kind" => "transient").increment(0);
        gauge!(ACTOR_MAILBOX_DEPTH, "actor" => actor).increment(0.0);
        let _ = histogram!(ACTOR_HANDLE_DURATION, "actor" => actor);
    }
    for direction in ["inbound", "outbound"] {
        counter!(DEDUPE_HITS, "direction" => direction).increment(0);
        let _ = histogram!(E2E_LATENCY, "direction" => direction);
    }
    for status in ["sent", "delivered", "read", "failed", "other"] {
        counter!(WHATSAPP_STATUSES, "status" => status).increment(0);
    }
    for outcome in ["done", "duplicate", "ignored", "retry", "rejected"] {
        counter!(INBOUND_MESSAGES, "outcome" => outcome).increment(0);
        counter!(OUTBOUND_ITEMS, "outcome" => outcome).increment(0);
    }
    counter!(SESSIONS_STARTED, "reason" => "new").increment(0);
    counter!(SESSIONS_STARTED, "reason" => "renewed").increment(0);
    gauge!(CONVERSATIONS_ACTIVE).increment(0.0);
    gauge!(SESSIONS_ACTIVE).increment(0.0);
    for profile in FFMPEG_PROFILES {
        let _ = histogram!(FFMPEG_JOB_DURATION, "profile" => profile);
        for outcome in FFMPEG_OUTCOMES {
            counter!(FFMPEG_JOBS, "profile" => profile, "outcome" => outcome).increment(0);
        }
    }
    counter!(FFMPEG_CHILD_RESTARTS).increment(0);
    for service in SERVICES {
        gauge!(DEPENDENCY_UP, "service" => service).set(1.0);
        for kind in ["throttled", "transient"] {
            counter!(RETRIES, "service" => service, "kind" => kind).increment(0);
        }
    }
    for queue in ["inbound", "connect"] {
        counter!(VISIBILITY_EXTENSIONS, "queue" => queue).increment(0);
        counter!(REGROUPED, "queue" => queue).increment(0);
    }
    for direction in ["inbound", "outbound"] {
        counter!(MAILBOX_REFUSALS, "direction" => direction).increment(0);
    }
    gauge!(MAILBOX_HIGH_WATER).set(0.0);
    for outcome in ["ok", "empty", "timeout", "failed"] {
        counter!(TRANSCRIPTIONS, "outcome" => outcome).increment(0);
    }
    for texts in ["1", "2", "3-5", "6+"] {
        counter!(BURSTS, "texts" => texts).increment(0);
    }
    counter!(SUSPECTED_DUPLICATES).increment(0);
    counter!(RESENDS_AVOIDED).increment(0);
    gauge!(FFMPEG_POOL_SIZE).increment(0.0);
    gauge!(FFMPEG_BUSY).increment(0.0);
    gauge!(FFMPEG_QUEUED).increment(0.0);
    for lane in ["reply", "ack"] {
        gauge!(WHATSAPP_PENDING, "lane" => lane).set(0.0);
    }
    for outcome in ["queued", "merged", "dropped"] {
        counter!(WHATSAPP_ACKS, "outcome" => outcome).increment(0);
    }
    for answer in ["memory", "store", "first_receipt"] {
        counter!(DEDUPE_CHECKS, "answered_by" => answer).increment(0);
    }
    for operation in ["DeleteMessageBatch", "BatchWriteItem"] {
        let _ = histogram!(BATCH_SIZE, "operation" => operation);
    }
    register_conversation_series();
}

/// Receipts, failed sends, typing, bot menus and business numbers (issue 11). The
/// `number` label is a configured business number or `default`: bounded.
fn register_conversation_series() {
    for status in ["sent", "delivered", "read", "failed", "other"] {
        for outcome in RECEIPT_OUTCOMES {
            counter!(RECEIPTS, "status" => status, "outcome" => outcome).increment(0);
        }
    }
    for outcome in ["done", "duplicate", "ignored", "retry", "rejected"] {
        counter!(STATUSES_HANDLED, "outcome" => outcome).increment(0);
    }
    for class in crate::domain::send_failure::CODE_CLASSES {
        counter!(SEND_FAILURES, "code_class" => class, "number" => "default").increment(0);
    }
    for outcome in TYPING_OUTCOMES {
        counter!(TYPING_INDICATORS, "outcome" => outcome).increment(0);
    }
    for shape in BOT_MENU_SHAPES {
        counter!(BOT_MENUS, "shape" => shape).increment(0);
    }
    for via in BOT_MENU_VIA {
        counter!(BOT_MENU_CHOICES, "via" => via).increment(0);
    }
    for direction in ["inbound", "outbound"] {
        counter!(BUSINESS_NUMBER_MESSAGES, "number" => "default", "direction" => direction)
            .increment(0);
    }
}

fn describe() {
    describe_gauge!(
        BUILD_INFO,
        "Always 1: the version and git commit of the running binary."
    );
    describe_counter!(
        AWS_CALLS,
        "AWS API calls by service, operation and outcome."
    );
    describe_histogram!(AWS_CALL_DURATION, "AWS API call latency, retries included.");
    describe_counter!(ACTOR_MESSAGES, "Messages an actor handled, by outcome.");
    describe_counter!(ACTOR_ERRORS, "Errors an actor met, by kind.");
    describe_histogram!(ACTOR_HANDLE_DURATION, "Time an actor spent on one message.");
    describe_gauge!(
        ACTOR_MAILBOX_DEPTH,
        "Messages waiting in an actor's mailbox."
    );
    describe_counter!(ACTOR_RESTARTS, "Times the supervisor restarted an actor.");
    describe_gauge!(ACTOR_HEARTBEAT, "Unix time an actor last made progress.");
    describe_histogram!(E2E_LATENCY, "From queue arrival to delivery, by direction.");
    describe_gauge!(CONVERSATIONS_ACTIVE, "Customer conversation actors alive.");
    describe_gauge!(
        SESSIONS_ACTIVE,
        "Conversations holding a Connect chat session."
    );
    describe_counter!(SESSIONS_STARTED, "Connect chats started, by reason.");
    describe_counter!(DEDUPE_HITS, "Redelivered work skipped as already done.");
    describe_counter!(DEAD_LETTERS, "Queue messages moved to a dead-letter queue.");
    describe_counter!(
        QUEUE_MESSAGES,
        "Queue messages finished, by queue and outcome."
    );
    describe_gauge!(
        QUEUE_IN_FLIGHT,
        "Queue messages received and not yet finished."
    );
    describe_counter!(WHATSAPP_STATUSES, "WhatsApp delivery statuses received.");
    describe_counter!(
        INBOUND_MESSAGES,
        "Customer messages handled, by type and outcome."
    );
    describe_counter!(
        OUTBOUND_ITEMS,
        "Connect chat items handled, by type and outcome."
    );
    describe_gauge!(
        FFMPEG_POOL_SIZE,
        "ffmpeg children spawned ahead of need, waiting for a job."
    );
    describe_gauge!(FFMPEG_BUSY, "Transcoding jobs running.");
    describe_gauge!(FFMPEG_QUEUED, "Transcoding jobs waiting for a free worker.");
    describe_histogram!(
        FFMPEG_JOB_DURATION,
        "Time one ffmpeg job ran, by profile (queueing excluded)."
    );
    describe_counter!(FFMPEG_JOBS, "Transcoding jobs, by profile and outcome.");
    describe_gauge!(
        DEPENDENCY_UP,
        "1 while a service answers, 0 while its calls all fail (an outage: messages are held, not dead-lettered)."
    );
    describe_counter!(
        RETRIES,
        "Steps retried in place after a failure, by service and error kind."
    );
    describe_counter!(
        VISIBILITY_EXTENSIONS,
        "Visibility heartbeats: a message's work outlasted a third of its visibility timeout."
    );
    describe_counter!(
        MAILBOX_REFUSALS,
        "Work handed back to the queue because the customer's mailbox was full, by direction."
    );
    describe_gauge!(
        MAILBOX_HIGH_WATER,
        "The most work ever waiting at once in one customer's mailbox (never above the capacity)."
    );
    describe_counter!(
        ACTOR_STUCK,
        "Times an actor had work but made no progress for stuck_after and was killed."
    );
    describe_counter!(
        SUSPECTED_DUPLICATES,
        "WhatsApp sends repeated after an answer was lost: the customer may have it twice."
    );
    describe_counter!(
        RESENDS_AVOIDED,
        "WhatsApp sends not repeated after an answer was lost, because the message was known to have reached WhatsApp."
    );
    describe_counter!(
        TRANSCRIPTIONS,
        "Voice notes transcribed, by outcome (ok, empty: no speech, timeout, failed)."
    );
    describe_counter!(
        BURSTS,
        "Bursts of customer texts joined into one chat message (no agent in the chat yet), by size."
    );
    describe_counter!(
        REGROUPED,
        "Events moved from a standard queue to its FIFO queue (per-customer order across replicas)."
    );
    describe_gauge!(
        WHATSAPP_PENDING,
        "Sends waiting for their slot in WhatsAppSend, by lane (reply, ack), for the number that last changed."
    );
    describe_counter!(
        WHATSAPP_ACKS,
        "Acknowledgements (read marks, reactions) handed to WhatsAppSend, by what became of them: queued, merged into a pending one, or queued with the oldest pending one dropped."
    );
    describe_counter!(
        DEDUPE_CHECKS,
        "Dedupe checks, by what answered: the in-memory record, the durable store, or neither (a first receipt not in memory: no remote call)."
    );
    describe_histogram!(
        BATCH_SIZE,
        "Entries per batched call (DeleteMessageBatch, BatchWriteItem of dedupe records)."
    );
    describe_counter!(
        RECEIPTS,
        "Statuses of agent messages, by status and what became of them (shown to the agent, recorded, told, ...)."
    );
    describe_counter!(
        STATUSES_HANDLED,
        "WhatsApp statuses handled by the customer's conversation, by outcome (as inbound messages are)."
    );
    describe_counter!(
        SEND_FAILURES,
        "Agent messages WhatsApp refused (failed status or refused send), by code class and business number."
    );
    describe_counter!(
        TYPING_INDICATORS,
        "Agent typing events, by outcome (shown to the customer, rate-limited, ...)."
    );
    describe_counter!(
        BOT_MENUS,
        "Bots' interactive messages sent to customers, by how they were shown."
    );
    describe_counter!(
        BOT_MENU_CHOICES,
        "Customers' choices in bot menus sent back as interactive responses, by how they chose."
    );
    describe_counter!(
        BUSINESS_NUMBER_MESSAGES,
        "Customer messages and agent items per business number (configured ones; others are default)."
    );
    describe_counter!(
        FFMPEG_CHILD_RESTARTS,
        "ffmpeg children killed or replaced after a crash, a hang, garbage output or dying idle."
    );
}

pub fn aws_call(
    service: &'static str,
    operation: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    counter!(AWS_CALLS, "service" => service, "operation" => operation, "outcome" => outcome)
        .increment(1);
    histogram!(AWS_CALL_DURATION, "service" => service, "operation" => operation)
        .record(took.as_secs_f64());
}

/// Per-actor instruments, cheap to clone into handlers.
#[derive(Clone, Copy, Debug)]
pub struct ActorMetrics {
    pub actor: &'static str,
}

impl ActorMetrics {
    pub const fn new(actor: &'static str) -> Self {
        Self { actor }
    }
    pub fn enqueued(&self) {
        gauge!(ACTOR_MAILBOX_DEPTH, "actor" => self.actor).increment(1.0);
    }
    pub fn dequeued(&self) {
        gauge!(ACTOR_MAILBOX_DEPTH, "actor" => self.actor).decrement(1.0);
    }
    pub fn handled(&self, outcome: &'static str, took: Duration) {
        counter!(ACTOR_MESSAGES, "actor" => self.actor, "outcome" => outcome).increment(1);
        histogram!(ACTOR_HANDLE_DURATION, "actor" => self.actor).record(took.as_secs_f64());
        self.heartbeat();
    }
    /// Records one finished call: `ok`, or `error` with the error's kind.
    pub fn finished<T>(
        &self,
        result: &Result<T, crate::ports::PortError>,
        started: std::time::Instant,
    ) {
        match result {
            Ok(_) => self.handled("ok", started.elapsed()),
            Err(e) => {
                self.error(e.kind.as_str());
                self.handled("error", started.elapsed());
            }
        }
    }
    pub fn error(&self, kind: &'static str) {
        counter!(ACTOR_ERRORS, "actor" => self.actor, "kind" => kind).increment(1);
    }
    pub fn restarted(&self) {
        counter!(ACTOR_RESTARTS, "actor" => self.actor).increment(1);
    }
    pub fn heartbeat(&self) {
        gauge!(ACTOR_HEARTBEAT, "actor" => self.actor).set(unix_now_secs());
    }
}

pub fn unix_now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records into a recorder of its own (not the global one) and reads the rendering.
    fn render(record: impl FnOnce()) -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            register_series();
            record();
        });
        handle.render()
    }

    #[test]
    fn e2e_latency_has_buckets_up_to_fifteen_minutes_and_the_rest_up_to_a_minute() {
        let text = render(|| {
            histogram!(E2E_LATENCY, "direction" => "inbound").record(700.0);
            histogram!(AWS_CALL_DURATION, "service" => "sqs", "operation" => "DeleteMessage")
                .record(0.02);
        });
        let e2e = |le: &str| format!("{E2E_LATENCY}_bucket{{direction=\"inbound\",le=\"{le}\"}}");
        assert!(text.contains(&format!("{} 0\n", e2e("600"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", e2e("900"))), "{text}");
        assert!(
            text.contains(&format!(
                "{AWS_CALL_DURATION}_bucket{{service=\"sqs\",operation=\"DeleteMessage\",le=\"60\"}} 1"
            )),
            "{text}"
        );
        assert!(
            !text.contains(&format!(
                "{AWS_CALL_DURATION}_bucket{{service=\"sqs\",operation=\"DeleteMessage\",le=\"900\"}}"
            )),
            "other histograms keep their buckets: {text}"
        );
    }

    #[test]
    fn build_info_names_version_and_commit() {
        let text = render(|| {});
        let line = format!("{BUILD_INFO}{{version=\"{VERSION}\",commit=\"{COMMIT}\"}} 1");
        assert!(text.contains(&line), "want {line} in {text}");
        assert!(!COMMIT.is_empty());
    }
}
