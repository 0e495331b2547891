//! Decoding text or a JSON tree into a model type, with errors that name the JSON path and
//! the expected kind and nothing else.
//!
//! serde's messages quote the offending value (`invalid type: string "Hola, soy Lucía",
//! expected u32`) and serde_json's name unknown keys; those values are customer data and
//! these errors end in logs and dead-letter reasons. So a serde error is never shown as
//! is: it is read for its category and rebuilt from fixed words, the path comes from
//! `serde_path_to_error`, and every path segment that is not a short identifier (a map key
//! chosen by the sender) is shown as `*`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

use crate::domain::error::DecodeError;

/// Maps whose keys are chosen by the sender: their keys never appear in a path.
const OPAQUE_MAPS: &[&str] = &["MessageAttributes"];

/// Decodes `text` (at most `max_bytes`) as a `T`. `what` names the payload in errors about
/// the whole of it ("SQS body", "EUM event").
pub fn decode_str<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
    max_bytes: usize,
) -> Result<T, DecodeError> {
    if text.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: text.len(),
            max: max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| from_serde(what, e.path(), e.inner()))?;
    de.end().map_err(|e| DecodeError::not_json(what, &e))?;
    Ok(value)
}

/// Decodes a JSON tree as a `T`. Paths in errors are relative to `value`; an error about
/// `value` itself has an empty field, which the caller names with
/// [`DecodeError::or_field`] or [`DecodeError::within`].
pub fn decode_value<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| from_serde("", e.path(), e.inner()))
}

/// Rebuilds a serde_json error from fixed words.
fn from_serde(what: &'static str, path: &Path, err: &serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    if !matches!(err.classify(), Category::Data) {
        // Syntax and EOF errors carry a fixed description and a position, never input.
        return DecodeError::not_json(what, err);
    }
    let field = render_path(path);
    let named = |field: String| {
        if field.is_empty() {
            what.to_string()
        } else {
            field
        }
    };
    // Data messages end with " at line L column C" when read from text.
    let message = err.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => &message[..],
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.strip_suffix('`').unwrap_or(rest);
        return DecodeError::MissingField(join(&field, &safe_segment(name)));
    }
    if message.starts_with("invalid type: null,") {
        return DecodeError::MissingField(named(field));
    }
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, e)| expected_kind(e))
        .unwrap_or("a valid value");
    if message.starts_with("invalid type: ") {
        return DecodeError::WrongType {
            field: named(field),
            expected,
        };
    }
    let reason = if message.starts_with("invalid length ") {
        "wrong number of elements"
    } else if message.starts_with("duplicate field ") {
        "duplicate field"
    } else {
        "not a valid value"
    };
    DecodeError::Invalid {
        field: named(field),
        reason,
    }
}

/// serde's "expected ..." in the JSON words our errors use. Anything unrecognised becomes
/// "a valid value": an expectation is ours, but better safe.
fn expected_kind(expected: &str) -> &'static str {
    match expected {
        "a string" | "string" | "a borrowed string" => "string",
        "a boolean" => "boolean",
        "a sequence" => "array",
        "a JSON object" | "a map" => "object",
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
            "integer"
        }
        "f32" | "f64" => "number",
        "integer or string of digits" => "integer or string of digits",
        "finite number" => "finite number",
        "string or number" => "string or number",
        "JSON string or object" => "JSON string or object",
        e if e.starts_with("struct ") => "object",
        _ => "a valid value",
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `changes[0].value.messages[1].text.body`, with sender-chosen keys as `*`.
fn render_path(path: &Path) -> String {
    let mut out = String::new();
    let mut opaque = false;
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                if opaque {
                    out.push('*');
                } else {
                    out.push_str(&safe_segment(key));
                }
                opaque = OPAQUE_MAPS.contains(&key.as_str());
                continue;
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
        opaque = false;
    }
    out
}

/// A key as it may appear in an error: a short identifier, else `*`.
fn safe_segment(key: &str) -> String {
    let identifier = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if identifier {
        key.to_string()
    } else {
        "*".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
        s: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
        #[serde(rename = "MessageAttributes", default)]
        attrs: std::collections::HashMap<String, Inner>,
    }

    fn err(text: &str) -> DecodeError {
        decode_str::<Outer>(text, "body", 1000).unwrap_err()
    }

    #[test]
    fn errors_name_the_path_and_kind_only() {
        assert_eq!(
            err(r#"{"items":[{"n":1,"s":"a"},{"n":"SECRET","s":"b"}]}"#),
            DecodeError::WrongType {
                field: "items[1].n".into(),
                expected: "integer"
            }
        );
        assert_eq!(
            err(r#"{"items":[{"n":1}]}"#),
            DecodeError::MissingField("items[0].s".into())
        );
        assert_eq!(
            err(r#"{"items":[{"n":1,"s":null}]}"#),
            DecodeError::MissingField("items[0].s".into())
        );
        assert_eq!(
            err(r#"{"items":{}}"#),
            DecodeError::WrongType {
                field: "items".into(),
                expected: "array"
            }
        );
    }

    #[test]
    fn sender_chosen_keys_are_not_shown() {
        let e = err(r#"{"items":[],"MessageAttributes":{"SECRET":{"n":"x","s":"y"}}}"#);
        assert_eq!(
            e,
            DecodeError::WrongType {
                field: "MessageAttributes.*.n".into(),
                expected: "integer"
            }
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Map {
            m: std::collections::HashMap<String, u32>,
        }
        let e = decode_str::<Map>(r#"{"m":{"Hola, soy Lucía":"x"}}"#, "b", 100).unwrap_err();
        assert_eq!(
            e.reason(),
            "field `m.*` has the wrong type (expected integer)"
        );
    }

    #[test]
    fn syntax_errors_keep_the_position_only() {
        let e = err(r#"{"items": SECRET}"#);
        assert!(matches!(e, DecodeError::NotJson { .. }), "{e:?}");
        assert!(!e.reason().contains("SECRET"));
        assert!(matches!(
            err(r#"{"items":[]} trailing"#),
            DecodeError::NotJson { .. }
        ));
        assert!(matches!(
            decode_str::<Outer>(&" ".repeat(1001), "body", 1000),
            Err(DecodeError::TooLarge {
                len: 1001,
                max: 1000
            })
        ));
    }
}
