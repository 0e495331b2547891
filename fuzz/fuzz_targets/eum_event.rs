//! An EUM event (the SNS `Message` of the inbound queue).
#![no_main]

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracles::eum_event(&String::from_utf8_lossy(data));
});
