//! SQS body -> SNS notification unwrapping.
//!
//! Both queues (EUM inbound, Connect streaming outbound) are fed by SNS topics. With raw
//! message delivery off (the default) each SQS body is the SNS JSON envelope whose `Message`
//! is the payload as a string; with raw delivery on, the body *is* the payload. Operators
//! flip that switch, so both are accepted and told apart by shape.

use std::collections::HashMap;

use super::error::DecodeError;
use super::model::decode_str;
use super::model::sns::{SnsNotification, SnsShape};

/// Largest SQS body accepted: 256 KiB, the SNS/SQS message size limit. Anything bigger
/// did not come from SNS and is refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The payload carried by one SQS message, with the SNS metadata we use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnsMessage {
    /// The payload text (EUM event JSON or Connect chat item JSON).
    pub message: String,
    /// SNS `MessageId` (absent for raw delivery).
    pub message_id: Option<String>,
    /// SNS `MessageAttributes`, name -> `Value` (empty for raw delivery: SNS then sends
    /// attributes as SQS message attributes, which the queue adapter may merge in).
    pub attributes: HashMap<String, String>,
}

impl SnsMessage {
    /// Attribute value by name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// Decodes an SQS body into the SNS payload and its attributes.
///
/// A JSON object with `"Type": "Notification"` is an envelope and must carry a string
/// `Message`; any other JSON object is a raw-delivery payload. SNS subscription
/// (un)confirmations are refused as [`DecodeError::Unsupported`]. Bodies over
/// [`MAX_BODY_BYTES`] and bodies that are not JSON objects are errors.
pub fn unwrap_sns(body: &str) -> Result<SnsMessage, DecodeError> {
    let shape: SnsShape = decode_str(body, "SQS body", MAX_BODY_BYTES)?;
    match shape.kind.get().map(String::as_str) {
        Some("Notification") => {}
        Some(t @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) if shape.topic_arn.0 => {
            return Err(DecodeError::Unsupported(format!("SNS message type {t}")));
        }
        _ => {
            return Ok(SnsMessage {
                message: body.to_string(),
                message_id: None,
                attributes: HashMap::new(),
            })
        }
    }
    // A malformed attribute fails the whole notification rather than being skipped:
    // routing decisions (e.g. the Connect `MessageVisibility`) depend on them, and
    // guessing could leak agent-only messages.
    let notification: SnsNotification = decode_str(body, "SQS body", MAX_BODY_BYTES)?;
    Ok(SnsMessage {
        message: notification.message,
        message_id: notification.message_id,
        attributes: notification
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, attribute)| (name, attribute.value.0))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUM_TEXT: &str = include_str!("../../tests/fixtures/eum-text.sns.json");
    const CONNECT_MESSAGE: &str = include_str!("../../tests/fixtures/connect-message.sns.json");

    #[test]
    fn unwraps_envelope_without_attributes() {
        let m = unwrap_sns(EUM_TEXT).unwrap();
        assert!(m.message.starts_with("{\"context\""));
        assert_eq!(
            m.message_id.as_deref(),
            Some("3f1c9a55-8f0e-5b7e-9d2a-0c6b1e4d7a21")
        );
        assert!(m.attributes.is_empty());
    }

    #[test]
    fn unwraps_envelope_with_attributes() {
        let m = unwrap_sns(CONNECT_MESSAGE).unwrap();
        assert_eq!(m.attribute("MessageVisibility"), Some("ALL"));
        assert_eq!(m.attribute("ParticipantRole"), Some("AGENT"));
        assert_eq!(m.attributes.len(), 8);
    }

    #[test]
    fn raw_delivery_is_the_payload_itself() {
        let inner = unwrap_sns(EUM_TEXT).unwrap().message;
        let m = unwrap_sns(&inner).unwrap();
        assert_eq!(m.message, inner);
        assert_eq!(m.message_id, None);
        assert!(m.attributes.is_empty());

        // A raw Connect item has a `Type` too, but not "Notification".
        let raw_item = r#"{"Type":"MESSAGE","Id":"x","Content":"hi"}"#;
        assert_eq!(unwrap_sns(raw_item).unwrap().message, raw_item);
    }

    #[test]
    fn notification_without_string_message_is_an_error() {
        assert_eq!(
            unwrap_sns(r#"{"Type":"Notification"}"#),
            Err(DecodeError::missing("Message"))
        );
        assert!(matches!(
            unwrap_sns(r#"{"Type":"Notification","Message":{"a":1}}"#),
            Err(DecodeError::WrongType { ref field, .. }) if field == "Message"
        ));
    }

    #[test]
    fn bad_attributes_are_errors() {
        for body in [
            r#"{"Type":"Notification","Message":"{}","MessageAttributes":[1]}"#,
            r#"{"Type":"Notification","Message":"{}","MessageAttributes":{"A":"x"}}"#,
            r#"{"Type":"Notification","Message":"{}","MessageAttributes":{"A":{"Type":"String"}}}"#,
            r#"{"Type":"Notification","Message":"{}","MessageAttributes":{"A":{"Value":[1]}}}"#,
        ] {
            let e = unwrap_sns(body).unwrap_err().reason();
            assert!(e.contains("`MessageAttributes"), "{body}: {e}");
        }
        assert_eq!(
            unwrap_sns(
                r#"{"Type":"Notification","Message":"{}","MessageAttributes":{"Hola Lucía":{"Type":"String"}}}"#
            ),
            Err(DecodeError::missing("MessageAttributes.*.Value"))
        );
        let ok = unwrap_sns(
            r#"{"Type":"Notification","Message":"{}","MessageAttributes":{"N":{"Type":"Number","Value":42}}}"#,
        )
        .unwrap();
        assert_eq!(ok.attribute("N"), Some("42"));
    }

    #[test]
    fn subscription_confirmation_is_unsupported() {
        let body = r#"{"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:x","Message":"You have chosen...","SubscribeURL":"https://x"}"#;
        assert_eq!(
            unwrap_sns(body),
            Err(DecodeError::Unsupported(
                "SNS message type SubscriptionConfirmation".into()
            ))
        );
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        let deep = "[".repeat(10_000);
        let cases: Vec<&str> = vec![
            "",
            "   ",
            "not json",
            "[1,2,3]",
            "\"a string\"",
            "42",
            "null",
            "{\"Type\":",
            "\u{0}",
            &huge,
            &deep,
        ];
        for c in cases {
            assert!(unwrap_sns(c).is_err(), "{:?}", &c[..c.len().min(40)]);
        }
        assert!(matches!(
            unwrap_sns(&huge),
            Err(DecodeError::TooLarge {
                max: MAX_BODY_BYTES,
                ..
            })
        ));
    }
}
