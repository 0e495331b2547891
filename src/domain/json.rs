//! Small helpers to read fields out of untrusted `serde_json` objects with typed errors.
//!
//! Decoding walks `serde_json::Value`s by hand instead of deriving `Deserialize`: serde's
//! derived errors quote offending values (customer data) and fail a whole payload at the
//! first bad field, while we need per-message tolerance and field-named errors.
//!
//! Conventions: `key` is the JSON key looked up; `field` is the static dotted path used in
//! error messages. A JSON `null` is treated like an absent field.

use serde_json::{Map, Value};

use super::error::DecodeError;

pub(crate) type Object = Map<String, Value>;

/// Parses `text` (at most `max_bytes`) as a JSON object. serde_json's recursion limit (128)
/// turns absurdly nested input into an error instead of a stack overflow.
pub(crate) fn parse_object(
    text: &str,
    what: &'static str,
    max_bytes: usize,
) -> Result<Object, DecodeError> {
    if text.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: text.len(),
            max: max_bytes,
        });
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DecodeError::WrongType {
            field: what,
            expected: "JSON object",
        }),
        Err(e) => Err(DecodeError::not_json(what, &e)),
    }
}

/// The value under `key`, with `null` read as absent.
pub(crate) fn get<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn opt_str<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, DecodeError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(DecodeError::WrongType {
            field,
            expected: "string",
        }),
    }
}

pub(crate) fn req_str<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<&'a str, DecodeError> {
    opt_str(obj, key, field)?.ok_or(DecodeError::MissingField(field))
}

pub(crate) fn opt_obj<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a Object>, DecodeError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(DecodeError::WrongType {
            field,
            expected: "object",
        }),
    }
}

pub(crate) fn req_obj<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<&'a Object, DecodeError> {
    opt_obj(obj, key, field)?.ok_or(DecodeError::MissingField(field))
}

pub(crate) fn opt_array<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a Vec<Value>>, DecodeError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(DecodeError::WrongType {
            field,
            expected: "array",
        }),
    }
}

pub(crate) fn req_array<'a>(
    obj: &'a Object,
    key: &str,
    field: &'static str,
) -> Result<&'a Vec<Value>, DecodeError> {
    opt_array(obj, key, field)?.ok_or(DecodeError::MissingField(field))
}

/// Interprets an array element as an object.
pub(crate) fn as_obj<'a>(v: &'a Value, field: &'static str) -> Result<&'a Object, DecodeError> {
    v.as_object().ok_or(DecodeError::WrongType {
        field,
        expected: "object",
    })
}

/// A boolean flag; absent means `false`.
pub(crate) fn opt_flag(obj: &Object, key: &str, field: &'static str) -> Result<bool, DecodeError> {
    match get(obj, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(DecodeError::WrongType {
            field,
            expected: "boolean",
        }),
    }
}

/// An integer that Meta sends either as a JSON number or as a string of digits
/// (timestamps are strings, error codes are numbers; be liberal in both).
pub(crate) fn opt_int(
    obj: &Object,
    key: &str,
    field: &'static str,
) -> Result<Option<i64>, DecodeError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => int_value(v, field).map(Some),
    }
}

pub(crate) fn int_value(v: &Value, field: &'static str) -> Result<i64, DecodeError> {
    let wrong = DecodeError::WrongType {
        field,
        expected: "integer or string of digits",
    };
    match v {
        Value::Number(n) => n.as_i64().ok_or(wrong),
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(wrong);
            }
            t.parse::<i64>().map_err(|_| wrong)
        }
        _ => Err(wrong),
    }
}

/// A finite float sent as a JSON number or a numeric string.
pub(crate) fn float_value(v: &Value, field: &'static str) -> Result<f64, DecodeError> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.len() <= 64 => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(DecodeError::WrongType {
            field,
            expected: "finite number",
        }),
    }
}

/// Fails with [`DecodeError::TooLong`] when `s` has more than `max` characters.
pub(crate) fn check_len<'a>(
    s: &'a str,
    field: &'static str,
    max: usize,
) -> Result<&'a str, DecodeError> {
    // Byte length bounds char count from above: skip counting for short strings.
    if s.len() > max {
        let len = s.chars().count();
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
    }
    Ok(s)
}

/// Optional string, trimmed, empty read as absent, length-checked (characters).
pub(crate) fn opt_text(
    obj: &Object,
    key: &str,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, DecodeError> {
    match opt_str(obj, key, field)? {
        None => Ok(None),
        Some(s) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else {
                Ok(Some(check_len(t, field, max)?.to_string()))
            }
        }
    }
}

/// Required identifier: non-empty, at most `max` bytes of printable ASCII with no spaces.
/// Ids end up in storage keys and idempotency tokens, so they are held to that shape.
pub(crate) fn req_id(
    obj: &Object,
    key: &str,
    field: &'static str,
    max: usize,
) -> Result<String, DecodeError> {
    let s = req_str(obj, key, field)?;
    check_id(s, field, max).map(str::to_string)
}

pub(crate) fn check_id<'a>(
    s: &'a str,
    field: &'static str,
    max: usize,
) -> Result<&'a str, DecodeError> {
    if s.is_empty() {
        return Err(DecodeError::Invalid {
            field,
            reason: "empty",
        });
    }
    check_len(s, field, max)?;
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::Invalid {
            field,
            reason: "not printable ASCII",
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parse_object_rejects_non_objects_and_big_input() {
        assert!(matches!(
            parse_object("[1]", "body", 100),
            Err(DecodeError::WrongType { .. })
        ));
        assert!(matches!(
            parse_object("\"s\"", "body", 100),
            Err(DecodeError::WrongType { .. })
        ));
        assert!(matches!(
            parse_object("{", "body", 100),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            parse_object(&" ".repeat(101), "body", 100),
            Err(DecodeError::TooLarge { len: 101, max: 100 })
        ));
        assert!(parse_object("{}", "body", 100).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse_object(&deep, "body", usize::MAX),
            Err(DecodeError::NotJson(_))
        ));
    }

    #[test]
    fn null_is_absent() {
        let o = obj(json!({"a": null}));
        assert_eq!(opt_str(&o, "a", "a").unwrap(), None);
        assert_eq!(req_str(&o, "a", "a"), Err(DecodeError::MissingField("a")));
    }

    #[test]
    fn ints_from_numbers_and_strings() {
        let o = obj(
            json!({"n": 5, "s": "1763647391", "neg": "-3", "bad": "12a", "f": 1.5,
                           "huge": "99999999999999999999999", "e": ""}),
        );
        assert_eq!(opt_int(&o, "n", "n").unwrap(), Some(5));
        assert_eq!(opt_int(&o, "s", "s").unwrap(), Some(1763647391));
        assert_eq!(opt_int(&o, "neg", "neg").unwrap(), Some(-3));
        assert_eq!(opt_int(&o, "missing", "m").unwrap(), None);
        for k in ["bad", "f", "huge", "e"] {
            assert!(opt_int(&o, k, "x").is_err(), "{k}");
        }
    }

    #[test]
    fn floats_must_be_finite() {
        assert_eq!(float_value(&json!(1.25), "f").unwrap(), 1.25);
        assert_eq!(float_value(&json!("-3.5"), "f").unwrap(), -3.5);
        assert!(float_value(&json!("NaN"), "f").is_err());
        assert!(float_value(&json!("inf"), "f").is_err());
        assert!(float_value(&json!(true), "f").is_err());
    }

    #[test]
    fn ids_are_printable_ascii() {
        assert!(check_id("wamid.ABC==", "id", 256).is_ok());
        assert!(check_id("", "id", 256).is_err());
        assert!(check_id("a b", "id", 256).is_err());
        assert!(check_id("añ", "id", 256).is_err());
        assert!(check_id(&"a".repeat(257), "id", 256).is_err());
    }

    #[test]
    fn check_len_counts_chars_not_bytes() {
        let s = "ñ".repeat(10); // 20 bytes, 10 chars
        assert!(check_len(&s, "f", 10).is_ok());
        assert!(matches!(
            check_len(&s, "f", 9),
            Err(DecodeError::TooLong {
                len: 10,
                max: 9,
                ..
            })
        ));
    }
}
