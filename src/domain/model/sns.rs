//! The SNS notification an SQS message carries when raw message delivery is off.
//!
//! See the SNS HTTP/HTTPS notification JSON format: `Type`, `MessageId`, `TopicArn`,
//! `Message`, `Timestamp`, `MessageAttributes` (`{"Name": {"Type": "String", "Value":
//! "..."}}`), and the signature fields, which SQS delivery makes moot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json_objects;
use super::tolerant::{Lenient, Present, StringOrNumber};

/// Just enough of an SQS body to tell an SNS envelope from a raw-delivery payload, which
/// is any other JSON object (a Connect item has a `Type` too, but not "Notification").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct SnsShape {
    /// "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"; anything
    /// else (or not a string) means the body is not an SNS message.
    #[serde(rename = "Type", default)]
    pub kind: Lenient<String>,
    /// Set on every SNS message, so a raw payload with a look-alike `Type` is not taken
    /// for a subscription confirmation.
    #[serde(rename = "TopicArn", default)]
    pub topic_arn: Present,
}

/// An SNS notification (`"Type": "Notification"`). Strict: a notification without its
/// `Message`, or with a malformed attribute, is refused (routing reads attributes, and
/// guessing could leak agent-only messages).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct SnsNotification {
    /// The payload, a JSON text.
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "MessageId", default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(
        rename = "MessageAttributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub message_attributes: Option<BTreeMap<String, SnsAttribute>>,
}

/// One message attribute. Only `Value` is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct SnsAttribute {
    /// "String", "Number", "Binary", "String.Array".
    #[serde(rename = "Type", default, skip_serializing_if = "Lenient::is_none")]
    pub data_type: Lenient<String>,
    #[serde(rename = "Value")]
    pub value: StringOrNumber,
}

json_objects!(SnsShape, SnsNotification, SnsAttribute);
