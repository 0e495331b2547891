//! Every setting of the router, declared once: see [`crate::config`] for how to add one.
//!
//! The doc comment of each setting is its `--help` text and its line in the README table,
//! so it says what the setting is for, in one or two lines.

use std::time::Duration;

use super::declare::checks::*;
use super::declare::settings;
use crate::domain::{CONNECT_DEFAULT_EXTENSIONS, CONNECT_DEFAULT_MAX_BYTES, DEFAULT_URL_ALLOWLIST};

settings! {
    /// Where the router's AWS resources are (`waconnect run` only).
    pub struct AwsSettings => AwsResources, AWS_SETTINGS {
        /// SQS queue subscribed to the EUM event topic (raw delivery on or off).
        inbound_queue_url: String => String, via queue_url,
            env "WACONNECT_INBOUND_QUEUE_URL", required;
        /// Dead-letter queue for inbound messages that cannot be handled.
        inbound_dlq_url: String => String, via queue_url,
            env "WACONNECT_INBOUND_DLQ_URL", required;
        /// SQS queue subscribed to the Connect chat streaming topic.
        connect_queue_url: String => String, via queue_url,
            env "WACONNECT_CONNECT_QUEUE_URL", required;
        /// Dead-letter queue for chat items that cannot be handled.
        connect_dlq_url: String => String, via queue_url,
            env "WACONNECT_CONNECT_DLQ_URL", required;
        /// Amazon Connect instance id.
        connect_instance_id: String => String, via trimmed,
            env "WACONNECT_CONNECT_INSTANCE_ID", required;
        /// Contact flow new chats start in.
        contact_flow_id: String => String, via trimmed,
            env "WACONNECT_CONTACT_FLOW_ID", required;
        /// SNS topic Connect streams chat items to (StartContactStreaming).
        streaming_topic_arn: String => String, via topic_arn,
            env "WACONNECT_STREAMING_TOPIC_ARN", required;
        /// DynamoDB session table (key `contactId`, GSI `customerId-index`, TTL `date`).
        sessions_table: String,
            env "WACONNECT_SESSIONS_TABLE", default("waconnect-sessions");
        /// DynamoDB dedupe table (key `id`, TTL `expires`); also holds the regroup leases.
        dedupe_table: String,
            env "WACONNECT_DEDUPE_TABLE", default("waconnect-dedupe");
        /// SQS FIFO queue customer events are regrouped into: per-customer order and one
        /// chat per customer across replicas (with its DLQ; without it, order holds per
        /// replica only).
        inbound_fifo_queue_url: String => String, via fifo_queue_url,
            env "WACONNECT_INBOUND_FIFO_QUEUE_URL", optional;
        /// FIFO dead-letter queue of the inbound FIFO queue.
        inbound_fifo_dlq_url: String => String, via fifo_queue_url,
            env "WACONNECT_INBOUND_FIFO_DLQ_URL", optional;
        /// SQS FIFO queue chat items are regrouped into: agents' replies in order across
        /// replicas (with its DLQ).
        connect_fifo_queue_url: String => String, via fifo_queue_url,
            env "WACONNECT_CONNECT_FIFO_QUEUE_URL", optional;
        /// FIFO dead-letter queue of the connect FIFO queue.
        connect_fifo_dlq_url: String => String, via fifo_queue_url,
            env "WACONNECT_CONNECT_FIFO_DLQ_URL", optional;
    }
}

settings! {
    /// How the router behaves; shared by `waconnect run` and `waconnect local`.
    pub struct BehaviourSettings => BehaviourValues, BEHAVIOUR_SETTINGS {
        /// Forward customer reactions to the agent as text.
        forward_reactions: bool,
            env "WACONNECT_FORWARD_REACTIONS", default(false);
        /// Forward customer stickers to the agent.
        forward_stickers: bool,
            env "WACONNECT_FORWARD_STICKERS", default(false);
        /// Mark customer messages read and react 👀 / ✅.
        acknowledge: bool,
            env "WACONNECT_ACKNOWLEDGE", default(true);
        /// Meta Cloud API version sent with SendWhatsAppMessage.
        meta_api_version: String,
            env "WACONNECT_META_API_VERSION", default("v20.0");
        /// ChatDurationInMinutes of new chats (60..10080).
        chat_duration_minutes: u32 => u32, via in_range(60, 10080),
            env "WACONNECT_CHAT_DURATION_MINUTES", default(1440);
        /// Pending work items per customer before new work is left in the queue.
        mailbox_capacity: usize => usize, via positive,
            env "WACONNECT_MAILBOX_CAPACITY", default(64);
        /// Queue messages each intake holds in flight at most.
        max_in_flight: usize => usize, via positive,
            env "WACONNECT_MAX_IN_FLIGHT", default(200);
        /// How long a handled message id is remembered against redelivery (seconds; the
        /// default is SQS's longest retention, so no message can outlive its record).
        dedupe_ttl_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_DEDUPE_TTL_SECS", default(14 * 24 * 3600), shown "`1209600` (14 days)";
        /// Seconds without work before a customer's conversation actor stops.
        conversation_idle_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_CONVERSATION_IDLE_SECS", default(300);
        /// SendWhatsAppMessage calls per second per business number (Meta's default).
        whatsapp_rate_per_sec: u32 => u32, via positive,
            env "WACONNECT_WHATSAPP_RATE_PER_SEC", default(80);
        /// On SIGTERM, seconds in-flight work may take before exit.
        shutdown_grace_secs: u64 => Duration, via secs,
            env "WACONNECT_SHUTDOWN_GRACE_SECS", default(25);
        /// S3 bucket EUM writes customer media to and agent audio is converted into;
        /// without it files reach the agent as a text notice only.
        media_bucket: String,
            env "WACONNECT_MEDIA_BUCKET", optional;
        /// Key prefix for media objects.
        media_prefix: String,
            env "WACONNECT_MEDIA_PREFIX", default("waconnect/media/");
        /// Origins attachments may be uploaded to / fetched from (`scheme://host[:port]`,
        /// `*.` and `:*` wildcards, comma-separated).
        url_allowlist: String => String, via url_allowlist,
            env "WACONNECT_URL_ALLOWLIST", default(DEFAULT_URL_ALLOWLIST);
        /// File extensions Connect accepts as chat attachments, comma-separated (Connect's
        /// list: csv,doc,docx,heic,jfif,jpeg,jpg,mov,mp4,pdf,png,ppt,pptx,rtf,txt,wav,xls,xlsx).
        attachment_extensions: String,
            env "WACONNECT_ATTACHMENT_EXTENSIONS", default(CONNECT_DEFAULT_EXTENSIONS),
            shown "Connect's list";
        /// Largest attachment in bytes, both ways (Connect: 20 MB); larger customer files are
        /// refused from their reported size, before download.
        attachment_max_bytes: u64 => u64, via positive,
            env "WACONNECT_ATTACHMENT_MAX_BYTES", default(CONNECT_DEFAULT_MAX_BYTES);
        /// The ffmpeg binary.
        ffmpeg_path: String,
            env "WACONNECT_FFMPEG_PATH", default("ffmpeg");
        /// ffmpeg processes kept warm and run at once.
        transcoder_workers: usize => usize, via positive,
            env "WACONNECT_TRANSCODER_WORKERS", default(default_transcoder_workers()),
            shown "CPU count";
        /// Longest one conversion may take before ffmpeg is killed (seconds).
        transcode_timeout_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_TRANSCODE_TIMEOUT_SECS", default(30);
        /// First wait before a failed step is tried again (ms); each retry doubles it.
        retry_base_ms: u64 => Duration, via positive_millis,
            env "WACONNECT_RETRY_BASE_MS", default(500);
        /// Longest wait between two tries of a failed step (ms).
        retry_max_delay_ms: u64 => Duration, via positive_millis,
            env "WACONNECT_RETRY_MAX_DELAY_MS", default(60_000);
        /// Failures of one message, while its dependency answers others, before it is
        /// dead-lettered (above 5).
        retry_max_attempts: u32 => u32, via retry_attempts,
            env "WACONNECT_RETRY_MAX_ATTEMPTS", default(8);
        /// Longest a step holds its queue message through an outage before handing it back
        /// to the queue (seconds).
        retry_hold_max_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_RETRY_HOLD_MAX_SECS", default(3600);
        /// A message received more often than this is dead-lettered, with its reason, on
        /// its next failure; keep it below the queues' maxReceiveCount (10).
        dead_letter_after_receives: u32 => u32, via positive,
            env "WACONNECT_DEAD_LETTER_AFTER_RECEIVES", default(9);
        /// Seconds an actor may have work without making progress before it is killed and
        /// restarted.
        stuck_after_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_STUCK_AFTER_SECS", default(120);
        /// Restarts of one actor within 10 minutes after which /healthz fails (the pod is
        /// then restarted).
        restart_budget: u32 => u32, via positive,
            env "WACONNECT_RESTART_BUDGET", default(5);
        /// Join a customer's texts that follow each other into one chat message while no
        /// human agent has joined the chat (for the contact flow's bots).
        aggregate: bool,
            env "WACONNECT_AGGREGATE", default(true);
        /// Quiet gap (ms) that ends a burst of texts.
        aggregate_quiet_ms: u64 => Duration, via positive_millis,
            env "WACONNECT_AGGREGATE_QUIET_MS", default(1500);
        /// Longest a burst waits from its first text (ms).
        aggregate_max_ms: u64 => Duration, via positive_millis,
            env "WACONNECT_AGGREGATE_MAX_MS", default(6000);
        /// Transcribe voice notes with Amazon Transcribe Streaming: the transcript follows
        /// the audio in the chat and is quoted back to the customer.
        transcribe: bool,
            env "WACONNECT_TRANSCRIBE", default(true);
        /// Language of the voice notes (or the preferred one among `transcribe_languages`).
        transcribe_language: String => String, via language_code,
            env "WACONNECT_TRANSCRIBE_LANGUAGE", default("en-US");
        /// Identify the language among these instead (comma-separated, e.g.
        /// es-US,en-US,pt-BR; Transcribe's IdentifyLanguage).
        transcribe_languages: String => String, via language_list,
            env "WACONNECT_TRANSCRIBE_LANGUAGES", optional;
        /// Longest stretch of a voice note transcribed (seconds); a longer note gets the
        /// transcript of its beginning, labelled so.
        transcribe_max_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_TRANSCRIBE_MAX_SECS", default(120);
        /// Longest a transcription may take (seconds); the agent is then told no transcript
        /// is available.
        transcribe_timeout_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_TRANSCRIBE_TIMEOUT_SECS", default(30);
        /// PEM file of a certificate authority to trust for the Transcribe endpoint, next to
        /// the system's (the simulator's CA in tests).
        transcribe_ca_file: String,
            env "WACONNECT_TRANSCRIBE_CA_FILE", optional;
        /// Show WhatsApp's delivered and read statuses of agent messages in the chat, and
        /// tell the agent when WhatsApp refuses one.
        receipts: bool,
            env "WACONNECT_RECEIPTS", default(true);
        /// How long the link from a WhatsApp message to the agent's chat item is kept for
        /// statuses that come late (seconds; the longest chat lasts 7 days).
        receipt_ttl_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_RECEIPT_TTL_SECS", default(8 * 24 * 3600), shown "`691200` (8 days)";
        /// Show the customer WhatsApp's typing indicator while the agent types.
        typing_indicator: bool,
            env "WACONNECT_TYPING_INDICATOR", default(true);
        /// Least seconds between two typing indicators to one customer (WhatsApp shows one
        /// for up to 25 s).
        typing_interval_secs: u64 => Duration, via positive_secs,
            env "WACONNECT_TYPING_INTERVAL_SECS", default(10);
    }
}

/// Default of `transcoder_workers`, also what [`TranscoderConfig`] starts from: one ffmpeg
/// per CPU, 2 when the CPU count cannot be read.
///
/// [`TranscoderConfig`]: crate::actors::transcoder_pool::TranscoderConfig
pub fn default_transcoder_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
