//! An SQS body: the SNS envelope (or a raw payload), then whatever it carries (EUM event,
//! Connect item and its attachments) and the regroup splitter, as the router reads it.
#![no_main]

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Queue bodies are strings: invalid UTF-8 arrives replaced.
    oracles::sqs_body(&String::from_utf8_lossy(data));
});
