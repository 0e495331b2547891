//! The `Attachments` JSON of a Connect ATTACHMENT item (an agent's files), spliced raw into
//! an otherwise valid item, then the way an approved attachment goes to the customer.
#![no_main]

use std::sync::LazyLock;

use serde_json::{json, Value};
use waconnect::domain::{unwrap_sns, SnsMessage};

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

static SNS: LazyLock<SnsMessage> = LazyLock::new(|| {
    unwrap_sns(include_str!(
        "../../tests/fixtures/connect-attachment.sns.json"
    ))
    .unwrap()
});

/// The item with a placeholder where the attachments go.
static AROUND: LazyLock<String> = LazyLock::new(|| {
    let mut item: Value = serde_json::from_str(&SNS.message).unwrap();
    item["Attachments"] = json!("@@ATTACHMENTS@@");
    item.to_string()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracles::attachments_json(&String::from_utf8_lossy(data), &AROUND, &SNS);
});
