//! A Connect chat item (the SNS `Message` of the connect queue), with the message
//! attributes of a real notification.
#![no_main]

use std::sync::LazyLock;

use waconnect::domain::{unwrap_sns, SnsMessage};

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

static SNS: LazyLock<SnsMessage> = LazyLock::new(|| {
    unwrap_sns(include_str!(
        "../../tests/fixtures/connect-attachment.sns.json"
    ))
    .unwrap()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracles::connect_item(&SnsMessage {
        message: String::from_utf8_lossy(data).into_owned(),
        ..SNS.clone()
    });
});
