//! The regroup splitter (`delivery::regroup::split_inbound`) on an inbound SQS body: every
//! piece a valid FIFO message, nothing lost or duplicated.
#![no_main]

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracles::regroup_split(&String::from_utf8_lossy(data));
});
