//! Attachments crossing between WhatsApp and Connect: names, types, what Connect accepts,
//! and which files must be converted first. Pure rules; the actors do the I/O.

use super::whatsapp_in::{Media, MediaKind};

/// Connect chat attachments: allowed extensions (Connect admin guide, feature limits).
pub const CONNECT_DEFAULT_EXTENSIONS: &str =
    "csv,doc,docx,heic,jfif,jpeg,jpg,mov,mp4,pdf,png,ppt,pptx,rtf,txt,wav,xls,xlsx";
/// Connect chat attachments: maximum size.
pub const CONNECT_DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Longest attachment name we produce (extension included).
const MAX_NAME_CHARS: usize = 100;

/// The file extension for a MIME type (parameters ignored), for names and object keys.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/3gpp" => "3gp",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mp4" | "audio/x-m4a" => "m4a",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "application/rtf" | "text/rtf" => "rtf",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/zip" => "zip",
        _ => return None,
    })
}

/// Where EUM's GetWhatsAppMessageMedia stores a media object given a key prefix: the
/// prefix, the media id, and the MIME subtype as extension (what the reference sample
/// reads back).
pub fn eum_object_key(prefix: &str, media_id: &str, mime: &str) -> String {
    let subtype = mime
        .split(';')
        .next()
        .and_then(|essence| essence.split('/').nth(1))
        .unwrap_or("bin")
        .trim();
    format!("{prefix}{media_id}.{subtype}")
}

/// A file name safe to hand to Connect and show an agent: no path, no control or
/// reserved characters, not over-long; the extension is kept.
pub fn sanitize_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '_') {
        return None;
    }
    if cleaned.chars().count() <= MAX_NAME_CHARS {
        return Some(cleaned.to_string());
    }
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.chars().count() <= 10 => (s, Some(e)),
        _ => (cleaned, None),
    };
    let room = MAX_NAME_CHARS - ext.map_or(0, |e| e.chars().count() + 1);
    let stem: String = stem.chars().take(room).collect();
    Some(match ext {
        Some(e) => format!("{}.{e}", stem.trim_end()),
        None => stem,
    })
}

/// The extension of a file name, lowercased.
pub fn extension_of(name: &str) -> Option<String> {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty())
}

/// How a customer's media must be changed before Connect accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Audio Connect refuses (OGG/Opus voice notes, AAC, AMR, MP3, MP4 audio) -> WAV.
    AudioToWav,
    /// Stickers (WebP) -> PNG.
    WebpToPng,
}

/// What to upload to Connect for one customer media message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    pub conversion: Option<Conversion>,
    /// Attachment name shown to the agent.
    pub name: String,
    /// Content type of the uploaded bytes.
    pub content_type: String,
}

/// Decides conversion and naming for a customer media message whose actual MIME type
/// (from EUM) is `mime`.
pub fn plan_upload(media: &Media, mime: &str) -> UploadPlan {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_audio = media.kind == MediaKind::Audio || essence.starts_with("audio/");
    if is_audio && essence != "audio/wav" && essence != "audio/x-wav" {
        let name = if media.voice {
            "voice.wav"
        } else {
            "audio.wav"
        };
        return UploadPlan {
            conversion: Some(Conversion::AudioToWav),
            name: name.into(),
            content_type: "audio/wav".into(),
        };
    }
    if media.kind == MediaKind::Sticker || essence == "image/webp" {
        return UploadPlan {
            conversion: Some(Conversion::WebpToPng),
            name: "sticker.png".into(),
            content_type: "image/png".into(),
        };
    }
    let fallback = || {
        format!(
            "{}.{}",
            media.kind.as_str(),
            extension_for_mime(&essence).unwrap_or("bin")
        )
    };
    let name = media
        .filename
        .as_deref()
        .and_then(sanitize_filename)
        .unwrap_or_else(fallback);
    UploadPlan {
        conversion: None,
        name,
        content_type: essence,
    }
}

/// Why Connect would refuse a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Type { extension: String },
    Size { bytes: u64, max: u64 },
}

/// Connect's attachment rules (configurable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRules {
    pub extensions: Vec<String>,
    pub max_bytes: u64,
}

impl Default for AttachmentRules {
    fn default() -> Self {
        Self::new(CONNECT_DEFAULT_EXTENSIONS, CONNECT_DEFAULT_MAX_BYTES)
    }
}

impl AttachmentRules {
    pub fn new(extensions: &str, max_bytes: u64) -> Self {
        Self {
            extensions: extensions
                .split(',')
                .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            max_bytes,
        }
    }

    pub fn check(&self, name: &str, bytes: u64) -> Result<(), Refusal> {
        let extension = extension_of(name).unwrap_or_default();
        if !self.extensions.contains(&extension) {
            return Err(Refusal::Type { extension });
        }
        if bytes > self.max_bytes {
            return Err(Refusal::Size {
                bytes,
                max: self.max_bytes,
            });
        }
        Ok(())
    }
}

/// "1.5 MB" style size for people.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(kind: MediaKind, mime: &str, filename: Option<&str>, voice: bool) -> Media {
        Media {
            kind,
            media_id: "m1".into(),
            mime_type: mime.into(),
            sha256: None,
            caption: None,
            filename: filename.map(str::to_string),
            voice,
            animated: false,
        }
    }

    #[test]
    fn hostile_filenames_are_sanitised_and_keep_their_extension() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("C:\\Users\\a\\inv.pdf").as_deref(),
            Some("inv.pdf")
        );
        assert_eq!(
            sanitize_filename("a\u{0}b\r\n.pdf").as_deref(),
            Some("a_b__.pdf")
        );
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(sanitize_filename("/"), None);
        let long = format!("{}.pdf", "x".repeat(300));
        let name = sanitize_filename(&long).unwrap();
        assert!(
            name.ends_with(".pdf") && name.chars().count() <= MAX_NAME_CHARS,
            "{name}"
        );
    }

    #[test]
    fn voice_notes_and_other_refused_audio_become_wav() {
        let voice = media(MediaKind::Audio, "audio/ogg; codecs=opus", None, true);
        let plan = plan_upload(&voice, &voice.mime_type);
        assert_eq!(plan.conversion, Some(Conversion::AudioToWav));
        assert_eq!(
            (plan.name.as_str(), plan.content_type.as_str()),
            ("voice.wav", "audio/wav")
        );
        let aac = media(MediaKind::Audio, "audio/aac", None, false);
        assert_eq!(plan_upload(&aac, "audio/aac").name, "audio.wav");
    }

    #[test]
    fn stickers_become_png_and_documents_keep_their_name() {
        let sticker = media(MediaKind::Sticker, "image/webp", None, false);
        assert_eq!(
            plan_upload(&sticker, "image/webp").conversion,
            Some(Conversion::WebpToPng)
        );
        let doc = media(
            MediaKind::Document,
            "application/pdf",
            Some("../Factura 12.pdf"),
            false,
        );
        let plan = plan_upload(&doc, "application/pdf");
        assert_eq!(
            (plan.conversion, plan.name.as_str()),
            (None, "Factura 12.pdf")
        );
        let img = media(MediaKind::Image, "image/jpeg", None, false);
        assert_eq!(plan_upload(&img, "image/jpeg").name, "image.jpeg");
    }

    #[test]
    fn rules_refuse_types_and_sizes() {
        let rules = AttachmentRules::default();
        assert_eq!(rules.check("a.pdf", 10), Ok(()));
        assert_eq!(rules.check("a.PDF", 10), Ok(()));
        assert_eq!(
            rules.check("a.zip", 10),
            Err(Refusal::Type {
                extension: "zip".into()
            })
        );
        assert_eq!(
            rules.check("noext", 10),
            Err(Refusal::Type {
                extension: String::new()
            })
        );
        assert!(matches!(
            rules.check("a.pdf", 21 * 1024 * 1024),
            Err(Refusal::Size { .. })
        ));
    }

    #[test]
    fn eum_keys_use_the_mime_subtype() {
        assert_eq!(
            eum_object_key("in/", "123", "audio/ogg; codecs=opus"),
            "in/123.ogg"
        );
        assert_eq!(eum_object_key("", "9", "image/jpeg"), "9.jpeg");
    }
}
