//! Field types that say how much a malformed part of a payload may take down with it.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::decode::{decode_str, decode_value};
use crate::domain::error::DecodeError;

/// A part decoded on its own: a malformed one is kept as its error (path relative to the
/// part) and does not fail the object around it. For batches (one bad message must not
/// sink the others) and for bodies only one of which a message uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<T>(pub Result<T, DecodeError>);

impl<T> Part<T> {
    pub fn ok(value: T) -> Self {
        Part(Ok(value))
    }

    /// The decoded part, or its error with the path prefixed by `name` (the part's field
    /// name seen from where the caller reports it).
    pub fn within(&self, name: &str) -> Result<&T, DecodeError> {
        self.0.as_ref().map_err(|e| e.clone().within(name))
    }

    /// The decoded part, or its error with an error about the part as a whole named `name`
    /// and deeper paths left relative.
    pub fn named(&self, name: &str) -> Result<&T, DecodeError> {
        self.0.as_ref().map_err(|e| e.clone().or_field(name))
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Part<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Part(decode_value(&value)))
    }
}

impl<T: Serialize> Serialize for Part<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(v) => v.serialize(s),
            Err(_) => s.serialize_unit(),
        }
    }
}

/// An advisory part: malformed reads as absent, like `null` and a missing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<T> Lenient<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Lenient(decode_value(&value).ok()))
    }
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A JSON object sent as a JSON string (EUM's `whatsAppWebhookEntry`), or as the object
/// itself. Decoded on its own like [`Part`], so its errors are reported whole by the
/// caller with paths relative to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded<T>(pub Result<T, DecodeError>);

/// The largest embedded JSON text accepted (it sits inside a payload capped the same).
const MAX_EMBEDDED_BYTES: usize = 256 * 1024;

impl<'de, T: DeserializeOwned> Deserialize<'de> for Embedded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Embedded(match Value::deserialize(d)? {
            Value::String(text) => decode_str(&text, "", MAX_EMBEDDED_BYTES),
            Value::Null => Err(DecodeError::MissingField(String::new())),
            object @ Value::Object(_) => decode_value(&object),
            _ => Err(DecodeError::WrongType {
                field: String::new(),
                expected: "JSON string or object",
            }),
        }))
    }
}

impl<T: Serialize> Serialize for Embedded<T> {
    /// As a JSON string, the way EUM sends it.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(v) => s.serialize_str(&serde_json::to_string(v).map_err(serde::ser::Error::custom)?),
            Err(_) => s.serialize_unit(),
        }
    }
}

/// Whether a key is present at all, whatever its value (`null` included). Use with
/// `#[serde(default)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

impl Serialize for Present {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// An integer Meta sends as a JSON number or as a string of digits (timestamps are
/// strings, error codes numbers; be liberal in both). At most 18 digits, optional `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaInt(pub i64);

impl<'de> Deserialize<'de> for MetaInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MetaInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("integer or string of digits")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MetaInt, E> {
                Ok(MetaInt(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MetaInt, E> {
                i64::try_from(v)
                    .map(MetaInt)
                    .map_err(|_| E::invalid_type(de::Unexpected::Other("large number"), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MetaInt, E> {
                let t = s.trim();
                let digits = t.strip_prefix('-').unwrap_or(t);
                let valid = !digits.is_empty()
                    && digits.len() <= 18
                    && digits.bytes().all(|b| b.is_ascii_digit());
                valid
                    .then(|| t.parse().ok())
                    .flatten()
                    .map(MetaInt)
                    .ok_or_else(|| E::invalid_type(de::Unexpected::Other("text"), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for MetaInt {
    /// As a string of digits, the way Meta sends timestamps.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A finite number sent as a JSON number or a numeric string (coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FiniteNumber(pub f64);

impl<'de> Deserialize<'de> for FiniteNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FiniteNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("finite number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FiniteNumber, E> {
                if v.is_finite() {
                    Ok(FiniteNumber(v))
                } else {
                    Err(E::invalid_type(de::Unexpected::Other("number"), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FiniteNumber, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FiniteNumber, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FiniteNumber, E> {
                match s.len() <= 64 {
                    true => match s.trim().parse::<f64>() {
                        Ok(v) => self.visit_f64(v),
                        Err(_) => Err(E::invalid_type(de::Unexpected::Other("text"), &self)),
                    },
                    false => Err(E::invalid_type(de::Unexpected::Other("text"), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FiniteNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

/// A string sent as a JSON string or a bare number (SNS Number attributes are strings on
/// the wire; a bare number is accepted anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(StringOrNumber(s)),
            Value::Number(n) => Ok(StringOrNumber(n.to_string())),
            Value::Null => Err(de::Error::invalid_type(de::Unexpected::Unit, &"string")),
            _ => Err(de::Error::invalid_type(
                de::Unexpected::Other("value"),
                &"string",
            )),
        }
    }
}

impl Serialize for StringOrNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
