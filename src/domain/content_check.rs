//! Does a file's content match the type it claims? Customer files are hostile: a Windows
//! executable named `invoice.pdf` or an ELF binary sent as `image/jpeg` must not reach an
//! agent's desktop. The bytes' magic numbers (the `infer` crate) decide; the claimed MIME
//! type only says what family to expect.
//!
//! Rules: executables (PE, ELF, Mach-O, DEX, WASM, Java classes, ...) are always refused;
//! images, audio, video and PDF must be recognised as their family; office documents as an
//! office format or a ZIP container; text formats (txt, csv, rtf) must not be recognised
//! as anything binary. Other claimed types pass unless they are executables.

use infer::MatcherType;

/// Why a file's content does not match its claimed type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("its content is a program ({detected}), not a {claimed} file")]
    Executable {
        claimed: String,
        detected: &'static str,
    },
    #[error("its content ({}) does not match its declared type {claimed}", .detected.unwrap_or("unrecognised"))]
    WrongKind {
        claimed: String,
        detected: Option<&'static str>,
    },
}

/// What the claimed type requires of the content.
enum Expect {
    Family(&'static [MatcherType]),
    Exactly(&'static str),
    Office,
    Text,
    Anything,
}

fn expectation(essence: &str) -> Expect {
    match essence {
        "application/pdf" => Expect::Exactly("application/pdf"),
        "text/plain" | "text/csv" | "application/rtf" | "text/rtf" => Expect::Text,
        e if e.starts_with("image/") => Expect::Family(&[MatcherType::Image]),
        // MP4 and 3GPP containers hold audio as well as video, and infer names them video.
        e if e.starts_with("audio/") || e.starts_with("video/") => {
            Expect::Family(&[MatcherType::Audio, MatcherType::Video])
        }
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            Expect::Office
        }
        e if e.starts_with("application/vnd.openxmlformats-officedocument.")
            || e.starts_with("application/vnd.oasis.opendocument.") =>
        {
            Expect::Office
        }
        _ => Expect::Anything,
    }
}

/// infer calls anything starting with "MZ" a Windows executable; a text may start so too.
/// A real PE file has the "PE\0\0" signature where its DOS header's `e_lfanew` points.
fn is_unconfirmed_pe(t: &infer::Type, bytes: &[u8]) -> bool {
    if t.mime_type() != "application/vnd.microsoft.portable-executable" {
        return false;
    }
    let pe_offset = bytes
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    pe_offset
        .and_then(|at| bytes.get(at..at.checked_add(4)?))
        .is_none_or(|sig| sig != b"PE\0\0")
}

/// Checks `bytes` against `claimed_mime` (parameters ignored).
pub fn check_content(claimed_mime: &str, bytes: &[u8]) -> Result<(), Mismatch> {
    let essence = claimed_mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let detected = infer::get(bytes).filter(|t| !is_unconfirmed_pe(t, bytes));
    if let Some(t) = detected.filter(|t| t.matcher_type() == MatcherType::App) {
        return Err(Mismatch::Executable {
            claimed: essence,
            detected: t.mime_type(),
        });
    }
    let ok = match expectation(&essence) {
        Expect::Anything => true,
        Expect::Family(families) => detected.is_some_and(|t| families.contains(&t.matcher_type())),
        Expect::Exactly(mime) => detected.is_some_and(|t| t.mime_type() == mime),
        Expect::Office => detected.is_some_and(|t| {
            t.matcher_type() == MatcherType::Doc || t.mime_type() == "application/zip"
        }),
        Expect::Text => detected.is_none_or(|t| {
            matches!(t.matcher_type(), MatcherType::Text) || t.mime_type() == "application/rtf"
        }),
    };
    if ok {
        Ok(())
    } else {
        Err(Mismatch::WrongKind {
            claimed: essence,
            detected: detected.map(|t| t.mime_type()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
    /// A minimal PE: DOS header whose e_lfanew points at "PE\0\0".
    fn pe() -> Vec<u8> {
        let mut b = vec![0u8; 0x80];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c] = 0x40;
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b
    }

    fn elf() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b
    }
    const OGG: &[u8] = b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x13OpusHead";

    #[test]
    fn matching_content_passes() {
        assert_eq!(check_content("image/png", PNG), Ok(()));
        assert_eq!(check_content("application/pdf", PDF), Ok(()));
        assert_eq!(check_content("audio/ogg; codecs=opus", OGG), Ok(()));
        assert_eq!(check_content("text/plain", b"hello, agent"), Ok(()));
        assert_eq!(check_content("application/x-unknown", b"whatever"), Ok(()));
    }

    #[test]
    fn executables_are_refused_whatever_they_claim() {
        for claimed in [
            "application/pdf",
            "image/jpeg",
            "text/plain",
            "application/x-unknown",
        ] {
            for program in [pe(), elf()] {
                assert!(
                    matches!(
                        check_content(claimed, &program),
                        Err(Mismatch::Executable { .. })
                    ),
                    "{claimed}"
                );
            }
        }
    }

    #[test]
    fn a_text_that_starts_with_mz_is_not_an_executable() {
        assert_eq!(
            check_content("text/plain", b"MZ is a prefix, not a program"),
            Ok(())
        );
    }

    #[test]
    fn a_file_of_another_family_is_refused() {
        assert!(matches!(
            check_content("image/jpeg", PDF),
            Err(Mismatch::WrongKind {
                detected: Some("application/pdf"),
                ..
            })
        ));
        assert!(check_content("application/pdf", PNG).is_err());
        assert!(check_content("audio/ogg", b"not audio at all").is_err());
        assert!(check_content("text/csv", PNG).is_err());
    }

    #[test]
    fn the_reason_names_types_never_content() {
        let reason = check_content("image/jpeg", b"secret customer words")
            .unwrap_err()
            .to_string();
        assert!(!reason.contains("secret"), "{reason}");
        assert!(reason.contains("image/jpeg"), "{reason}");
    }
}
