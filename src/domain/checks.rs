//! Checks on decoded values: lengths, identifier shapes, WhatsApp ids, display tokens.
//!
//! The model types (`model/`) say what type each field has; these say what a value of that
//! type must look like before the domain takes it. `field` is the JSON path the error
//! names.

use super::error::DecodeError;
use super::whatsapp_in::limits::MAX_WA_ID_DIGITS;

/// Fails with [`DecodeError::TooLong`] when `s` has more than `max` characters.
pub(crate) fn check_len<'a>(s: &'a str, field: &str, max: usize) -> Result<&'a str, DecodeError> {
    // Byte length bounds char count from above: skip counting for short strings.
    if s.len() > max {
        let len = s.chars().count();
        if len > max {
            return Err(DecodeError::TooLong {
                field: field.to_string(),
                len,
                max,
            });
        }
    }
    Ok(s)
}

/// An identifier: non-empty, at most `max` bytes of printable ASCII with no spaces. Ids end
/// up in storage keys and idempotency tokens, so they are held to that shape.
pub(crate) fn check_id<'a>(s: &'a str, field: &str, max: usize) -> Result<&'a str, DecodeError> {
    if s.is_empty() {
        return Err(DecodeError::invalid(field, "empty"));
    }
    check_len(s, field, max)?;
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::invalid(field, "not printable ASCII"));
    }
    Ok(s)
}

/// Optional text, trimmed, empty read as absent, at most `max` characters.
pub(crate) fn opt_text(
    s: Option<&String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, DecodeError> {
    match s.map(|s| s.trim()).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => Ok(Some(check_len(t, field, max)?.to_string())),
    }
}

/// Required text: as [`opt_text`], absent or blank is [`DecodeError::MissingField`].
pub(crate) fn req_text(s: &str, field: &str, max: usize) -> Result<String, DecodeError> {
    match s.trim() {
        "" => Err(DecodeError::missing(field)),
        t => Ok(check_len(t, field, max)?.to_string()),
    }
}

/// A WhatsApp id: 1..=20 ASCII digits (a leading `+` is tolerated and removed).
pub(crate) fn wa_id(s: &str, field: &str) -> Result<String, DecodeError> {
    let d = s.strip_prefix('+').unwrap_or(s);
    if d.is_empty() || d.len() > MAX_WA_ID_DIGITS || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::invalid(
            field,
            "not a WhatsApp id (1-20 digits)",
        ));
    }
    Ok(d.to_string())
}

/// A type token safe to show (rendered to agents, logged): `[a-z0-9_]{1,32}`, else "unknown".
pub(crate) fn safe_token(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        s.to_string()
    } else {
        "unknown".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_ascii() {
        assert!(check_id("wamid.ABC==", "id", 256).is_ok());
        assert!(check_id("", "id", 256).is_err());
        assert!(check_id("a b", "id", 256).is_err());
        assert!(check_id("añ", "id", 256).is_err());
        assert!(check_id(&"a".repeat(257), "id", 256).is_err());
    }

    #[test]
    fn check_len_counts_chars_not_bytes() {
        let s = "ñ".repeat(10); // 20 bytes, 10 chars
        assert!(check_len(&s, "f", 10).is_ok());
        assert!(matches!(
            check_len(&s, "f", 9),
            Err(DecodeError::TooLong {
                len: 10,
                max: 9,
                ..
            })
        ));
    }

    #[test]
    fn text_is_trimmed_and_blank_is_absent() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            opt_text(s(" a ").as_ref(), "f", 5).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(opt_text(s("  ").as_ref(), "f", 5).unwrap(), None);
        assert_eq!(opt_text(None, "f", 5).unwrap(), None);
        assert!(opt_text(s("abcdef").as_ref(), "f", 5).is_err());
        assert_eq!(req_text(" ", "f", 5), Err(DecodeError::missing("f")));
    }

    #[test]
    fn safe_tokens() {
        assert_eq!(safe_token("image"), "image");
        assert_eq!(safe_token("request_welcome"), "request_welcome");
        assert_eq!(safe_token(""), "unknown");
        assert_eq!(safe_token("Hola Lucía"), "unknown");
        assert_eq!(safe_token(&"a".repeat(33)), "unknown");
    }
}
