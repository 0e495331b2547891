//! The wire shapes of every inbound payload, as serde types.
//!
//! These types say what each payload looks like; turning them into the domain's own types
//! (checking ids, limits, which fields matter) happens next to those types
//! (`envelope.rs`, `eum.rs`, `whatsapp_in.rs`, `status.rs`, `connect_item.rs`).
//!
//! * [`sns`]: the SNS notification an SQS body carries (or not, with raw delivery).
//! * [`eum`]: the EUM event: the phone number mapping and the Meta webhook entry inside.
//! * [`meta_webhook`]: the Meta Cloud API webhook entry: changes, messages, statuses.
//! * [`connect_item`]: an Amazon Connect chat streaming item.
//!
//! How tolerant each part is, is written in its type ([`tolerant`]):
//!
//! * a plain field is strict: absent, `null` or of the wrong shape, and the enclosing
//!   object fails to decode;
//! * [`Part<T>`] decodes on its own: its failure is kept (with the path) and does not sink
//!   its neighbours: one bad message in a batch, a malformed body of a type not asked for;
//! * [`Lenient<T>`] is advisory: malformed reads as absent (a profile name, a quote);
//! * [`Embedded<T>`] is JSON carried as a JSON string (or as the object itself).
//!
//! Unknown fields are ignored everywhere (AWS and Meta add fields), and objects are never
//! read from arrays (serde's derived structs would accept `[a, b]` positionally, so every
//! model struct is declared with `#[serde(remote = "Self")]` and listed in
//! [`json_objects!`], which reads it from a JSON object only).
//!
//! Errors carry the JSON path and the expected kind, never a value: see [`decode`].

pub mod connect_item;
pub mod decode;
pub mod eum;
pub mod meta_webhook;
pub mod sns;
pub mod tolerant;

pub use decode::{decode_str, decode_value};
pub use tolerant::{Embedded, Lenient, Part, Present};

/// Implements `Deserialize` (from a JSON object only) and `Serialize` for model structs
/// declared with `#[derive(Serialize, Deserialize)] #[serde(remote = "Self")]`, whose
/// derived code then serves as the body of these impls.
macro_rules! json_objects {
    ($($T:ident),* $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $T {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectOnly;
                impl<'de> serde::de::Visitor<'de> for ObjectOnly {
                    type Value = $T;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<$T, A::Error> {
                        $T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(ObjectOnly)
            }
        }

        impl serde::Serialize for $T {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $T::serialize(self, s)
            }
        }
    )*};
}
pub(crate) use json_objects;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::meta_webhook::{TextBody, WebhookMessage};
    use super::*;
    use crate::domain::error::DecodeError;

    /// serde's derived structs take `["x"]` for `{"body": "x"}`; ours must not.
    #[test]
    fn objects_are_never_read_from_arrays() {
        assert_eq!(
            decode_value::<TextBody>(&json!(["SECRET"])),
            Err(DecodeError::wrong_type("", "object"))
        );
        let m: Result<WebhookMessage, _> = decode_value(&json!(["wamid.1", "15551234567"]));
        assert!(m.is_err());
        let m: WebhookMessage = decode_value(&json!({
            "id": "wamid.1", "from": "1", "type": "text", "text": ["SECRET"]}))
        .unwrap();
        assert_eq!(
            m.text.unwrap().within("text"),
            Err(DecodeError::wrong_type("text", "object"))
        );
        for text in ["[]", "[1]", "\"x\"", "5", "null"] {
            assert!(
                decode_str::<sns::SnsShape>(text, "body", 100).is_err(),
                "{text}"
            );
        }
    }

    /// Tolerant parts: a bad element or body stays with that element.
    #[test]
    fn parts_keep_their_errors() {
        let v: meta_webhook::ChangeValue = decode_value(&json!({
            "messages": [{"id": "a", "from": "1"}, 7, {"from": "2"}],
            "statuses": {},
            "contacts": [{"wa_id": 5, "profile": "x"}, "junk"],
            "errors": 3,
        }))
        .unwrap();
        let messages = v.messages.as_ref().unwrap().named("messages").unwrap();
        assert!(messages[0].0.is_ok());
        assert_eq!(
            messages[1].named("messages[]").unwrap_err(),
            DecodeError::wrong_type("messages[]", "object")
        );
        assert_eq!(
            messages[2].named("messages[]").unwrap_err(),
            DecodeError::missing("id")
        );
        assert!(v.statuses.unwrap().0.is_err());
        let contacts = v.contacts.get().unwrap();
        assert!(contacts[0].get().unwrap().wa_id.is_none() && contacts[1].is_none());
        assert!(v.errors.is_none());
    }

    #[test]
    fn embedded_json_is_a_string_or_an_object() {
        use meta_webhook::WebhookEntry;
        let from_text: Embedded<WebhookEntry> =
            serde_json::from_value(json!("{\"changes\": []}")).unwrap();
        assert!(from_text.0.is_ok());
        let from_object: Embedded<WebhookEntry> =
            serde_json::from_value(json!({"changes": []})).unwrap();
        assert!(from_object.0.is_ok());
        let bad: Embedded<WebhookEntry> = serde_json::from_value(json!("{SECRET")).unwrap();
        let e = bad.0.unwrap_err().within("whatsAppWebhookEntry");
        assert!(
            e.reason()
                .starts_with("not valid JSON: whatsAppWebhookEntry: "),
            "{e}"
        );
        assert!(!e.reason().contains("SECRET"));
        let wrong: Embedded<WebhookEntry> = serde_json::from_value(json!(5)).unwrap();
        assert_eq!(
            wrong.0.unwrap_err().within("e"),
            DecodeError::wrong_type("e", "JSON string or object")
        );
    }
}
