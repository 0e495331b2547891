//! A Meta webhook entry, embedded as EUM does (a JSON string) in a valid EUM event.
#![no_main]

use std::sync::LazyLock;

use serde_json::Value;

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

static EVENT: LazyLock<Value> = LazyLock::new(|| {
    let body: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/eum-text.sns.json")).unwrap();
    serde_json::from_str(body["Message"].as_str().unwrap()).unwrap()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracles::meta_webhook(&String::from_utf8_lossy(data), &EVENT);
});
