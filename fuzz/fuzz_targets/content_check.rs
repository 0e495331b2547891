//! The content checker (`domain::content_check::check_content`): the first line is the
//! claimed MIME type, the rest the file's bytes.
#![no_main]

#[path = "../../tests/fuzz_oracles/mod.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mime, bytes) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    oracles::content(&String::from_utf8_lossy(mime), bytes);
});
