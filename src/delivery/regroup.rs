//! Regrouping: turning one standard-queue message into the FIFO messages of the
//! per-customer stage (`actors::regroup`).
//!
//! An EUM event can batch several customers' messages and statuses; each becomes its own
//! FIFO message, a copy of the event carrying just that one, grouped by customer (so SQS
//! hands a customer's messages to one consumer at a time, in order) and deduplicated by its
//! WhatsApp id. The split works on the JSON shape only: whatever it cannot split is passed
//! on whole, and the conversation stage's decoder (the one place that judges payloads)
//! dead-letters it with the reason.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::interactive::looks_like_a_menu_number;
use crate::domain::receipt::ACKNOWLEDGEMENT_CALLBACK;
use crate::domain::{unwrap_sns, DecodeError};
use crate::ports::OutgoingMessage;

/// The group id of a customer of a business number: a hash, so no phone number appears in
/// queue metadata (SQS allows 128 characters; this is 64).
pub fn customer_group(business: &str, customer: &str) -> String {
    hex_sha256(&[business, customer])
}

/// The FIFO group of a customer's statuses (receipts of our messages): apart from their
/// messages. A status never has to wait for the customer's messages nor they for it
/// (docs/delivery.md, "Receipts"), and in one group every acknowledgement's status would
/// queue between the customer's texts, one receive-and-delete round each.
pub fn status_group(business: &str, customer: &str) -> String {
    hex_sha256(&[business, customer, "statuses"])
}

/// A FIFO deduplication id for an event id (wamid, Connect item id...).
pub fn dedupe_id(kind: &str, id: &str) -> String {
    hex_sha256(&[kind, id])
}

fn hex_sha256(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// One customer's share of an EUM event: one message or status.
#[derive(Debug, Clone)]
pub struct Unit {
    pub group: String,
    pub dedupe: String,
    timestamp: i64,
    /// The change value, carrying just this message or status.
    value: Map<String, Value>,
    /// The customer's WhatsApp id.
    pub customer: String,
    /// The EUM phone number id of the business number written to ("" if the event does
    /// not map it): with `customer`, the chat.
    pub business_number_id: String,
    /// Characters of the text, when the unit is a customer's plain text message (the
    /// kind of unit burst aggregation may hold).
    pub text_chars: Option<usize>,
    /// The queue message carrying it was received before: a regrouper that died after
    /// passing it on but before deleting it may have sent it already (see
    /// [`Split::received_before`]).
    pub received_before: bool,
    /// A status of one of our acknowledgements (reactions): about no agent message.
    pub acknowledgement_status: bool,
}

/// An EUM event split per customer message or status.
#[derive(Debug, Clone)]
pub struct Split {
    /// The event without its webhook entry (context, account, timestamp).
    event: Map<String, Value>,
    entry_id: Value,
    pub units: Vec<Unit>,
}

impl Split {
    /// Marks every unit as coming from a queue message received before. A copy of it may
    /// already be in the FIFO queue, possibly in a burst of another make-up (so with
    /// another deduplication id), and delivered by a replica that will not recognise it
    /// on a first receipt; the FIFO message says so, and the conversation stage asks the
    /// durable dedupe store (docs/delivery.md, "Nothing duplicated").
    pub fn received_before(&mut self) {
        for unit in &mut self.units {
            unit.received_before = true;
        }
    }

    /// The event carrying `units` (at least one): the first unit's change value, with the
    /// `field` lists ("messages" or "statuses") of all of them joined when there are several.
    fn event_of(&self, units: &[&Unit], field: &str) -> Map<String, Value> {
        let (first, rest) = units.split_first().expect("at least one unit");
        let mut value = first.value.clone();
        if !rest.is_empty() {
            let joined: Vec<Value> = units
                .iter()
                .flat_map(|u| u.value.get(field).and_then(Value::as_array).cloned())
                .flatten()
                .collect();
            value.insert(field.into(), Value::Array(joined));
        }
        let one = serde_json::json!({
            "id": self.entry_id,
            "changes": [{"field": "messages", "value": Value::Object(value)}],
        });
        let mut event = self.event.clone();
        event.insert(
            "whatsAppWebhookEntry".into(),
            Value::String(one.to_string()),
        );
        event
    }

    /// Takes out the statuses of our own acknowledgements and returns them as one event
    /// (None if there were none). A conversation would only count and drop them, and
    /// there are several per customer text (a status or two for each reaction): counted
    /// and dropped by the regroup stage, they cost the FIFO queue nothing.
    pub fn take_acknowledgement_statuses(&mut self) -> Option<String> {
        let (acks, rest): (Vec<Unit>, Vec<Unit>) = std::mem::take(&mut self.units)
            .into_iter()
            .partition(|u| u.acknowledgement_status);
        self.units = rest;
        if acks.is_empty() {
            return None;
        }
        let acks: Vec<&Unit> = acks.iter().collect();
        let event = self.event_of(&acks, "statuses");
        Some(Value::Object(event).to_string())
    }

    /// The FIFO message carrying `units` (one customer's, in order; they must come from
    /// events with the same context): one unit as it came, several as one event whose
    /// `waconnect_burst` asks the conversation stage to join them into one chat message.
    pub fn message(&self, units: &[&Unit]) -> OutgoingMessage {
        let (first, rest) = units.split_first().expect("at least one unit");
        let mut event = self.event_of(units, "messages");
        if units.iter().any(|u| u.received_before) {
            event.insert("waconnect_received_before".into(), Value::Bool(true));
        }
        let dedupe = if rest.is_empty() {
            first.dedupe.clone()
        } else {
            event.insert("waconnect_burst".into(), Value::Bool(true));
            let ids: Vec<&str> = units.iter().map(|u| u.dedupe.as_str()).collect();
            dedupe_id("burst", &ids.join(","))
        };
        OutgoingMessage {
            body: Value::Object(event).to_string(),
            group: Some(first.group.clone()),
            dedupe_id: Some(dedupe),
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Splits an inbound body (SNS envelope or raw EUM event) into one FIFO message per
/// customer message or status, in Meta's timestamp order. An event with nothing to split
/// (other webhook fields) gives none; one whose shape is not understood is passed on whole.
pub fn split_inbound(body: &str) -> Result<Vec<OutgoingMessage>, DecodeError> {
    Ok(match split_units(body)? {
        Ok(split) => split.units.iter().map(|u| split.message(&[u])).collect(),
        Err(whole) => vec![whole],
    })
}

/// The EUM phone number id the event's context gives Meta's `phone_number_id`.
fn eum_number(event: &Map<String, Value>, meta_id: &str) -> Option<String> {
    event
        .get("context")?
        .get("MetaPhoneNumberIds")?
        .as_array()?
        .iter()
        .find(|e| text(e, "metaPhoneNumberId") == Some(meta_id))
        .and_then(|e| text(e, "arn"))
        .and_then(crate::domain::eum::eum_phone_number_id_from_arn)
}

/// [`split_inbound`], keeping the units: `Ok(Err(message))` is an event passed on whole.
pub fn split_units(body: &str) -> Result<Result<Split, OutgoingMessage>, DecodeError> {
    let sns = unwrap_sns(body)?;
    let whole = |reason: &str| {
        tracing::debug!(reason, "inbound event passed on unsplit");
        Ok(Err(OutgoingMessage {
            group: Some(dedupe_id("unsplit", &sns.message)),
            dedupe_id: Some(dedupe_id("event", &sns.message)),
            // As received (envelope included), so that it decodes, or fails to, exactly
            // as it would have without the FIFO stage.
            body: body.to_string(),
        }))
    };
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(&sns.message) else {
        return whole("event is not a JSON object");
    };
    let Some(Ok(Value::Object(entry))) = event
        .get("whatsAppWebhookEntry")
        .and_then(Value::as_str)
        .map(serde_json::from_str::<Value>)
    else {
        return whole("no webhook entry");
    };
    let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
        return whole("no changes");
    };
    let mut units = Vec::new();
    for change in changes {
        if text(change, "field") != Some("messages") {
            continue;
        }
        let Some(Value::Object(value)) = change.get("value") else {
            return whole("a change without a value");
        };
        let business = value
            .get("metadata")
            .and_then(|m| text(m, "phone_number_id"))
            .unwrap_or_default();
        let business_number_id = eum_number(&event, business).unwrap_or_default();
        let mut rest = value.clone();
        let messages = rest.remove("messages");
        let statuses = rest.remove("statuses");
        let mut found = false;
        for (field, list, who, kind) in [
            ("messages", messages, "from", "wa"),
            ("statuses", statuses, "recipient_id", "st"),
        ] {
            let list = match list {
                None | Some(Value::Null) => continue,
                Some(Value::Array(list)) => list,
                Some(_) => return whole("messages or statuses is not a list"),
            };
            for item in list {
                found = true;
                let customer = text(&item, who).unwrap_or_default().to_string();
                let group = match kind {
                    "st" => status_group(business, &customer),
                    _ => customer_group(business, &customer),
                };
                let id = match (text(&item, "id"), text(&item, "status")) {
                    (Some(id), Some(status)) => format!("{id}|{status}"),
                    (Some(id), None) => id.to_string(),
                    (None, _) => item.to_string(),
                };
                let timestamp = text(&item, "timestamp")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let text_chars = (field == "messages" && text(&item, "type") == Some("text"))
                    .then(|| item.get("text").and_then(|t| text(t, "body")))
                    .flatten()
                    // A menu choice goes on its own, as in the conversation.
                    .filter(|body| !looks_like_a_menu_number(body))
                    .map(|body| body.chars().count());
                let acknowledgement_status = kind == "st"
                    && text(&item, "biz_opaque_callback_data") == Some(ACKNOWLEDGEMENT_CALLBACK);
                let mut value = rest.clone();
                value.insert(field.to_string(), Value::Array(vec![item]));
                units.push(Unit {
                    group,
                    dedupe: dedupe_id(kind, &id),
                    timestamp,
                    value,
                    customer,
                    business_number_id: business_number_id.clone(),
                    text_chars,
                    received_before: false,
                    acknowledgement_status,
                });
            }
        }
        if !found && !rest.is_empty() {
            // Webhook-level errors and the like: passed on so they are logged and judged.
            units.push(Unit {
                group: customer_group(business, ""),
                dedupe: dedupe_id("value", &Value::Object(rest.clone()).to_string()),
                timestamp: 0,
                value: rest,
                customer: String::new(),
                business_number_id: business_number_id.clone(),
                text_chars: None,
                received_before: false,
                acknowledgement_status: false,
            });
        }
    }
    // A stable sort keeps Meta's order for equal (second-resolution) timestamps.
    units.sort_by_key(|u| u.timestamp);
    event.remove("whatsAppWebhookEntry");
    // A piece travels as a bare EUM event, and a bare body with a top-level `Type` of
    // "Notification" reads as an SNS envelope. EUM never sends one; a hostile event that
    // does must not have its pieces misread (the fuzz oracles found it).
    event.remove("Type");
    Ok(Ok(Split {
        event,
        entry_id: entry.get("id").cloned().unwrap_or(Value::Null),
        units,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decode_eum_event;
    use serde_json::json;

    fn event(messages: Value, statuses: Value) -> String {
        let entry = json!({"id": "waba", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "111"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "549"}],
            "messages": messages, "statuses": statuses}}]});
        json!({"context": {"MetaWabaIds": [], "MetaPhoneNumberIds": [{"metaPhoneNumberId": "111",
                "arn": "arn:aws:social-messaging:us-east-1:1:phone-number-id/abc"}]},
            "whatsAppWebhookEntry": entry.to_string(), "aws_account_id": "1",
            "message_timestamp": "2026-01-01T00:00:00Z"})
        .to_string()
    }

    fn text_message(from: &str, id: &str, ts: u64) -> Value {
        json!({"from": from, "id": id, "timestamp": ts.to_string(), "type": "text", "text": {"body": id}})
    }

    #[test]
    fn a_batch_splits_per_message_in_timestamp_order_grouped_by_customer() {
        let body = event(
            json!([
                text_message("549", "b", 20),
                text_message("550", "x", 5),
                text_message("549", "a", 10)
            ]),
            json!([{"id": "wamid.out", "status": "delivered", "timestamp": "7", "recipient_id": "549"}]),
        );
        let out = split_inbound(&body).unwrap();
        assert_eq!(out.len(), 4);
        let decoded: Vec<_> = out
            .iter()
            .map(|m| decode_eum_event(&m.body).unwrap())
            .collect();
        let order: Vec<String> = decoded
            .iter()
            .map(|e| {
                e.messages
                    .first()
                    .map(|m| m.wamid.clone())
                    .unwrap_or_else(|| e.statuses[0].message_id.clone())
            })
            .collect();
        assert_eq!(order, ["x", "wamid.out", "a", "b"]);
        assert_eq!(out[2].group, out[3].group, "one customer, one group");
        assert_ne!(out[0].group, out[2].group);
        assert_ne!(
            out[1].group, out[2].group,
            "statuses have a group of their own"
        );
        assert_eq!(out[1].group, Some(status_group("111", "549")));
        assert!(decoded.iter().all(|e| e.problems.is_empty()));
    }

    #[test]
    fn the_same_message_always_gets_the_same_dedupe_id() {
        let one = event(json!([text_message("549", "a", 1)]), Value::Null);
        let again = event(
            json!([text_message("549", "a", 1), text_message("549", "b", 2)]),
            Value::Null,
        );
        assert_eq!(
            split_inbound(&one).unwrap()[0].dedupe_id,
            split_inbound(&again).unwrap()[0].dedupe_id
        );
    }

    #[test]
    fn held_texts_travel_as_one_burst_event() {
        let body = event(
            json!([text_message("549", "a", 1), text_message("549", "b", 2)]),
            Value::Null,
        );
        let split = split_units(&body).unwrap().unwrap();
        assert!(split.units.iter().all(|u| u.text_chars == Some(1)));
        let units: Vec<&Unit> = split.units.iter().collect();
        let burst = split.message(&units);
        let decoded = decode_eum_event(&burst.body).unwrap();
        assert!(decoded.burst);
        let ids: Vec<&str> = decoded.messages.iter().map(|m| m.wamid.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(
            !decode_eum_event(&split.message(&units[..1]).body)
                .unwrap()
                .burst
        );
    }

    #[test]
    fn a_unit_received_before_marks_any_message_it_travels_in() {
        let body = event(
            json!([text_message("549", "a", 1), text_message("549", "b", 2)]),
            Value::Null,
        );
        let fresh = split_units(&body).unwrap().unwrap();
        let mut again = split_units(&body).unwrap().unwrap();
        again.received_before();
        let decode =
            |split: &Split, units: &[&Unit]| decode_eum_event(&split.message(units).body).unwrap();
        let fresh_units: Vec<&Unit> = fresh.units.iter().collect();
        assert!(!decode(&fresh, &fresh_units).received_before);
        assert!(!decode(&fresh, &fresh_units[..1]).received_before);
        // A burst mixing a fresh text with one received before is marked as a whole.
        let mixed = vec![fresh_units[0], &again.units[1]];
        assert!(decode(&fresh, &mixed).received_before);
        assert!(decode(&again, &[&again.units[0]]).received_before);
    }

    #[test]
    fn statuses_of_our_acknowledgements_are_taken_out_and_the_rest_stays() {
        let status = |id: &str, callback: Option<&str>| {
            let mut s = json!({"id": id, "status": "delivered", "timestamp": "5",
                "recipient_id": "549"});
            if let Some(c) = callback {
                s["biz_opaque_callback_data"] = json!(c);
            }
            s
        };
        let body = event(
            json!([text_message("549", "a", 1)]),
            json!([
                status("wamid.ack1", Some(ACKNOWLEDGEMENT_CALLBACK)),
                status("wamid.agent", Some("contact-1|item-1")),
                status("wamid.ack2", Some(ACKNOWLEDGEMENT_CALLBACK)),
                status("wamid.plain", None),
            ]),
        );
        let mut split = split_units(&body).unwrap().unwrap();
        let acks = split.take_acknowledgement_statuses().expect("two of ours");
        let acks = decode_eum_event(&acks).unwrap();
        let ids: Vec<&str> = acks
            .statuses
            .iter()
            .map(|s| s.message_id.as_str())
            .collect();
        assert_eq!(ids, ["wamid.ack1", "wamid.ack2"]);
        assert!(acks.messages.is_empty());
        let kept: Vec<_> = split
            .units
            .iter()
            .map(|u| decode_eum_event(&split.message(&[u]).body).unwrap())
            .collect();
        assert_eq!(kept.len(), 3, "the text and the two other statuses stay");
        assert_eq!(kept[0].messages[0].wamid, "a");
        assert!(split.take_acknowledgement_statuses().is_none());
    }

    #[test]
    fn what_cannot_be_split_is_passed_on_whole_and_garbage_is_an_error() {
        assert!(split_inbound("not json").is_err());
        let odd = json!({"context": {}, "whatsAppWebhookEntry": "[1,2]"}).to_string();
        let out = split_inbound(&odd).unwrap();
        assert_eq!(out.len(), 1);
        assert!(decode_eum_event(&out[0].body).is_err());
    }
}
