//! Several business numbers: which Connect instance, contact flow and chat attributes a
//! chat starts with, by the EUM business number the customer wrote to.
//!
//! Read from `[[business_numbers]]` tables of the config file (`--config FILE`):
//!
//! ```toml
//! [[business_numbers]]
//! phone_number_id = "phone-number-id-0123abcd"   # or its ARN
//! contact_flow_id = "flow-of-brand-b"
//! connect_instance_id = "instance-b"             # optional: the default instance
//! attributes = { brand = "B", country = "AR" }   # optional: extra chat attributes
//! ```
//!
//! A number not listed uses `--connect-instance-id` / `--contact-flow-id` (the
//! single-number case). Replies always leave from the number the customer wrote to (the
//! session's `systemNumber`), listed or not.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::domain::eum_phone_number_id_from_arn;

/// Attribute names waconnect sets itself on every chat (as the reference sample does).
pub const RESERVED_ATTRIBUTES: [&str; 4] =
    ["Channel", "customerId", "customerName", "systemNumber"];
/// Extra attributes per number, at most (Connect allows more; a routing table needs few).
const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_CHARS: usize = 1024;

/// One `[[business_numbers]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessNumberRoute {
    /// EUM phone number id (`phone-number-id-...`) or its ARN.
    pub phone_number_id: String,
    /// The Connect instance of its chats; the default instance when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_instance_id: Option<String>,
    /// The contact flow its chats start in.
    pub contact_flow_id: String,
    /// Extra chat attributes (the contact flow can read them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Where one chat starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTarget {
    pub instance_id: String,
    pub contact_flow_id: String,
    /// Extra attributes (never one of [`RESERVED_ATTRIBUTES`]).
    pub attributes: BTreeMap<String, String>,
}

/// The checked routing table: business number -> [`ChatTarget`], with the default target.
#[derive(Debug, Clone)]
pub struct BusinessNumbers {
    default: Arc<ChatTarget>,
    routes: HashMap<String, Arc<ChatTarget>>,
}

fn invalid(reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: "business_numbers",
        reason,
    }
}

/// `phone-number-id-<alphanumerics>` as given, or the id of an EUM phone number ARN.
fn normalize_number(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(id) = eum_phone_number_id_from_arn(raw) {
        return Some(id);
    }
    let suffix = raw.strip_prefix("phone-number-id-")?;
    let ok = !suffix.is_empty()
        && suffix.len() <= 64
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| raw.to_string())
}

impl BusinessNumbers {
    /// Checks `routes` (ids well formed and listed once, a flow each, attributes few,
    /// short and not reserved) against the default target.
    pub fn new(default: ChatTarget, routes: &[BusinessNumberRoute]) -> Result<Self, ConfigError> {
        let mut table = HashMap::new();
        for (i, route) in routes.iter().enumerate() {
            let at = |what: &str| format!("[[business_numbers]] #{} ({what})", i + 1);
            let id = normalize_number(&route.phone_number_id).ok_or_else(|| {
                invalid(format!(
                    "{}: phone_number_id must be an EUM phone number id (phone-number-id-...) or its ARN",
                    at(&route.phone_number_id)
                ))
            })?;
            let flow = route.contact_flow_id.trim();
            if flow.is_empty() {
                return Err(invalid(format!("{}: contact_flow_id is required", at(&id))));
            }
            let instance = match route.connect_instance_id.as_deref().map(str::trim) {
                Some("") | None => default.instance_id.clone(),
                Some(instance) => instance.to_string(),
            };
            if route.attributes.len() > MAX_ATTRIBUTES {
                return Err(invalid(format!(
                    "{}: at most {MAX_ATTRIBUTES} attributes",
                    at(&id)
                )));
            }
            for (key, value) in &route.attributes {
                if RESERVED_ATTRIBUTES.contains(&key.as_str()) {
                    return Err(invalid(format!(
                        "{}: attribute {key} is set by waconnect itself",
                        at(&id)
                    )));
                }
                let long = |s: &str| s.is_empty() || s.chars().count() > MAX_ATTRIBUTE_CHARS;
                if long(key) || value.chars().count() > MAX_ATTRIBUTE_CHARS {
                    return Err(invalid(format!(
                        "{}: attribute names must be 1 to {MAX_ATTRIBUTE_CHARS} characters, values at most {MAX_ATTRIBUTE_CHARS}",
                        at(&id)
                    )));
                }
            }
            let target = ChatTarget {
                instance_id: instance,
                contact_flow_id: flow.to_string(),
                attributes: route.attributes.clone(),
            };
            if table.insert(id.clone(), Arc::new(target)).is_some() {
                return Err(invalid(format!("{}: listed twice", at(&id))));
            }
        }
        Ok(Self {
            default: Arc::new(default),
            routes: table,
        })
    }

    /// Only the default target (one business number, or every number alike).
    pub fn single(default: ChatTarget) -> Self {
        Self {
            default: Arc::new(default),
            routes: HashMap::new(),
        }
    }

    /// Where a chat with a customer of `business_number_id` (EUM id or ARN) starts.
    pub fn target(&self, business_number_id: &str) -> &ChatTarget {
        normalize_number(business_number_id)
            .and_then(|id| self.routes.get(&id))
            .unwrap_or(&self.default)
    }

    /// The configured numbers (EUM ids).
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

/// The numbers metrics may name: the configured ones (a bounded set).
static LABELLED: OnceLock<HashSet<String>> = OnceLock::new();

/// Lets metrics name the configured numbers (call once at start-up).
pub fn label_business_numbers(numbers: &BusinessNumbers) {
    let _ = LABELLED.set(numbers.numbers().map(str::to_string).collect());
}

/// The `number` label of a business number: its EUM id when it is configured, else
/// `default` (any number the single-number flags serve), so the label stays bounded.
pub fn number_label(business_number_id: Option<&str>) -> String {
    let labelled = LABELLED.get();
    business_number_id
        .and_then(normalize_number)
        .filter(|id| labelled.is_some_and(|set| set.contains(id)))
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> ChatTarget {
        ChatTarget {
            instance_id: "i0".into(),
            contact_flow_id: "f0".into(),
            attributes: BTreeMap::new(),
        }
    }

    fn route(id: &str, flow: &str) -> BusinessNumberRoute {
        BusinessNumberRoute {
            phone_number_id: id.into(),
            contact_flow_id: flow.into(),
            ..Default::default()
        }
    }

    #[test]
    fn numbers_pick_their_target_and_others_the_default() {
        let mut b = route(
            "arn:aws:social-messaging:us-east-1:1:phone-number-id/bbb",
            "fb",
        );
        b.connect_instance_id = Some("ib".into());
        b.attributes.insert("brand".into(), "B".into());
        let numbers =
            BusinessNumbers::new(default(), &[route("phone-number-id-aaa", "fa"), b]).unwrap();
        let a = numbers.target("phone-number-id-aaa");
        assert_eq!(
            (a.instance_id.as_str(), a.contact_flow_id.as_str()),
            ("i0", "fa")
        );
        let b = numbers.target("phone-number-id-bbb");
        assert_eq!(
            (b.instance_id.as_str(), b.contact_flow_id.as_str()),
            ("ib", "fb")
        );
        assert_eq!(b.attributes["brand"], "B");
        // The ARN names the same number.
        assert_eq!(
            numbers
                .target("arn:aws:social-messaging:us-east-1:1:phone-number-id/bbb")
                .contact_flow_id,
            "fb"
        );
        assert_eq!(numbers.target("phone-number-id-zzz"), &default());
        assert_eq!(numbers.target("garbage"), &default());
    }

    #[test]
    fn bad_tables_are_refused_naming_the_problem() {
        let check = |routes: &[BusinessNumberRoute], needle: &str| {
            let e = BusinessNumbers::new(default(), routes)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("invalid setting business_numbers: "), "{e}");
            assert!(e.contains(needle), "{e} should mention {needle}");
        };
        check(&[route("+15550001111", "f")], "phone_number_id must be");
        check(
            &[route("phone-number-id-a", " ")],
            "contact_flow_id is required",
        );
        check(
            &[
                route("phone-number-id-a", "f"),
                route("phone-number-id-a", "g"),
            ],
            "listed twice",
        );
        let mut r = route("phone-number-id-a", "f");
        r.attributes.insert("customerId".into(), "x".into());
        check(&[r], "set by waconnect itself");
        let mut r = route("phone-number-id-a", "f");
        r.attributes.insert("k".into(), "v".repeat(2000));
        check(&[r], "at most 1024");
    }

    #[test]
    fn unlabelled_numbers_are_default() {
        assert_eq!(number_label(None), "default");
        assert_eq!(
            number_label(Some("phone-number-id-notconfigured")),
            "default"
        );
    }
}
