//! Typed decoding errors.
//!
//! Every inbound payload is hostile until proven otherwise, so decoding never panics: it
//! returns a [`DecodeError`]. The messages name *fields* (JSON paths such as
//! `changes[0].messages[1].text.body`), never *values*: the values are customer data
//! (texts, names, phone numbers) and these errors end up in logs and in dead-letter
//! reasons. The only payload-derived text that may appear is a Meta business phone number
//! id, and only after it was checked to be a short run of digits. Paths are built from our
//! own field names; a key the sender chose is shown as `*` (see `model::decode`).

/// Longest reason string handed to a dead-letter queue (characters).
const MAX_REASON_CHARS: usize = 300;

/// Why a payload (or one message inside it) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not JSON. `what` names the payload, `detail` says where the syntax
    /// broke (serde_json's description and position, never the offending text).
    #[error("not valid JSON: {what}: {detail}")]
    NotJson { what: String, detail: String },

    /// A required field is absent (or null).
    #[error("missing field `{0}`")]
    MissingField(String),

    /// A field is present with the wrong JSON type.
    #[error("field `{field}` has the wrong type (expected {expected})")]
    WrongType {
        field: String,
        expected: &'static str,
    },

    /// A whole payload is larger than any legitimate one can be (bytes).
    #[error("payload too large: {len} bytes (max {max})")]
    TooLarge { len: usize, max: usize },

    /// A string field is longer than its limit (characters). Never truncated silently.
    #[error("field `{field}` too long: {len} characters (max {max})")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },

    /// A field has the right type but a value we must refuse (empty id, non-digit phone...).
    #[error("field `{field}` is invalid: {reason}")]
    Invalid { field: String, reason: &'static str },

    /// The webhook names a Meta phone number id that the EUM context does not map to an
    /// EUM phone number: we could not reply, so the event cannot be handled.
    #[error("no EUM phone number mapping for Meta phone_number_id {0}")]
    UnmappedPhoneNumber(String),

    /// Well-formed, but not something this service handles (e.g. an SNS
    /// SubscriptionConfirmation). The string is chosen by our code, not copied from input.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl DecodeError {
    /// A short, single-line reason suitable for a dead-letter record or a log line.
    /// Contains no customer data (see the module docs) and is capped in length.
    pub fn reason(&self) -> String {
        let full = self.to_string();
        let mut out: String = full
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_REASON_CHARS)
            .collect();
        if full.chars().count() > MAX_REASON_CHARS {
            out.push('…');
        }
        out
    }

    /// Builds [`DecodeError::NotJson`] from a serde_json error without leaking content.
    ///
    /// Syntax/EOF errors only carry a fixed description and a position; "data" errors can
    /// quote the offending value, so for those only the category and position are kept.
    pub(crate) fn not_json(what: &str, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let detail = match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => err.to_string(),
            Category::Data => format!(
                "unexpected data at line {} column {}",
                err.line(),
                err.column()
            ),
        };
        DecodeError::NotJson {
            what: what.to_string(),
            detail,
        }
    }

    /// Shorthand for [`DecodeError::MissingField`].
    pub fn missing(field: &str) -> Self {
        DecodeError::MissingField(field.to_string())
    }

    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(field: &str, reason: &'static str) -> Self {
        DecodeError::Invalid {
            field: field.to_string(),
            reason,
        }
    }

    /// Shorthand for [`DecodeError::WrongType`].
    pub fn wrong_type(field: &str, expected: &'static str) -> Self {
        DecodeError::WrongType {
            field: field.to_string(),
            expected,
        }
    }

    /// The field path, when the error has one.
    fn field_mut(&mut self) -> Option<&mut String> {
        match self {
            DecodeError::MissingField(field)
            | DecodeError::WrongType { field, .. }
            | DecodeError::TooLong { field, .. }
            | DecodeError::Invalid { field, .. }
            | DecodeError::NotJson { what: field, .. } => Some(field),
            _ => None,
        }
    }

    /// The same error seen from the object around: `name` is put in front of the path
    /// (`body` within `text` is `text.body`; `[2].id` within `contacts` is `contacts[2].id`).
    pub fn within(mut self, name: &str) -> Self {
        if let Some(field) = self.field_mut() {
            *field = if field.is_empty() {
                name.to_string()
            } else if field.starts_with('[') {
                format!("{name}{field}")
            } else {
                format!("{name}.{field}")
            };
        }
        self
    }

    /// Names an error about a whole part (empty path) `name`; deeper paths stay as they are.
    pub fn or_field(mut self, name: &str) -> Self {
        if let Some(field) = self.field_mut() {
            if field.is_empty() {
                *field = name.to_string();
            }
        }
        self
    }

    /// Builds [`DecodeError::UnmappedPhoneNumber`], keeping the id only if it looks like
    /// one (a short run of ASCII digits); anything else could be arbitrary input.
    pub(crate) fn unmapped_phone_number(meta_id: &str) -> Self {
        let shown = if !meta_id.is_empty()
            && meta_id.len() <= 32
            && meta_id.bytes().all(|b| b.is_ascii_digit())
        {
            meta_id.to_string()
        } else {
            "<not a valid id>".to_string()
        };
        DecodeError::UnmappedPhoneNumber(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_fields() {
        assert_eq!(
            DecodeError::missing("Message").to_string(),
            "missing field `Message`"
        );
        assert_eq!(
            DecodeError::wrong_type("changes", "array").to_string(),
            "field `changes` has the wrong type (expected array)"
        );
        assert_eq!(
            DecodeError::TooLarge { len: 10, max: 5 }.to_string(),
            "payload too large: 10 bytes (max 5)"
        );
        assert_eq!(
            DecodeError::TooLong {
                field: "text.body".into(),
                len: 5000,
                max: 4096
            }
            .reason(),
            "field `text.body` too long: 5000 characters (max 4096)"
        );
    }

    #[test]
    fn not_json_keeps_position_not_content() {
        let err = serde_json::from_str::<serde_json::Value>("{\"a\": secret-text}").unwrap_err();
        let e = DecodeError::not_json("SQS body", &err);
        let r = e.reason();
        assert!(r.starts_with("not valid JSON: SQS body: "), "{r}");
        assert!(!r.contains("secret"), "{r}");
    }

    #[test]
    fn data_errors_do_not_quote_values() {
        let err = serde_json::from_str::<u32>("\"secret-text\"").unwrap_err();
        assert!(
            err.to_string().contains("secret-text"),
            "premise of the test"
        );
        let r = DecodeError::not_json("x", &err).reason();
        assert!(!r.contains("secret"), "{r}");
    }

    #[test]
    fn within_and_or_field_build_paths() {
        let e = DecodeError::missing("body").within("text");
        assert_eq!(e, DecodeError::missing("text.body"));
        let e = DecodeError::wrong_type("[2].id", "string").within("contacts");
        assert_eq!(
            e.reason(),
            "field `contacts[2].id` has the wrong type (expected string)"
        );
        let e = DecodeError::wrong_type("", "object").or_field("messages[]");
        assert_eq!(e, DecodeError::wrong_type("messages[]", "object"));
        let e = DecodeError::missing("id").or_field("messages[]");
        assert_eq!(e, DecodeError::missing("id"));
        let e = DecodeError::TooLarge { len: 2, max: 1 }.within("x");
        assert_eq!(e, DecodeError::TooLarge { len: 2, max: 1 });
    }

    #[test]
    fn unmapped_phone_number_only_shows_digit_ids() {
        assert_eq!(
            DecodeError::unmapped_phone_number("106540352242922").reason(),
            "no EUM phone number mapping for Meta phone_number_id 106540352242922"
        );
        let r = DecodeError::unmapped_phone_number("Hola, soy Lucía").reason();
        assert!(!r.contains("Lucía"), "{r}");
    }

    #[test]
    fn reason_is_single_line_and_capped() {
        let e = DecodeError::Unsupported(format!("a\nb{}", "x".repeat(1000)));
        let r = e.reason();
        assert!(!r.contains('\n'));
        assert_eq!(r.chars().count(), MAX_REASON_CHARS + 1);
        assert!(r.ends_with('…'));
    }
}
