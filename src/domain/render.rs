//! How a customer message reads for the agent in the Connect chat.
//!
//! The reference sample forwards location, contacts and interactive replies as *empty*
//! messages; here every kind becomes readable text. Media send their caption (the file
//! itself goes as an attachment). The result may exceed Connect's 1024-character limit:
//! callers split it with `split_text`.

use super::whatsapp_in::{ContactCard, CustomerMessage, MessageContent};

/// Put in front of a message that quotes an earlier one (the agent cannot see which).
pub const REPLY_PREFIX: &str = "↩️ (reply to an earlier message) ";

/// Head of a location message.
pub const LOCATION_PREFIX: &str = "📍 Location";
/// Head of each shared contact card line.
pub const CONTACT_PREFIX: &str = "👤 Shared contact:";

impl CustomerMessage {
    /// The text to show the agent, or `None` when there is none (media without caption,
    /// whitespace-only text). Never empty when `Some`.
    pub fn agent_text(&self) -> Option<String> {
        let text = self.content.agent_text()?;
        if text.trim().is_empty() {
            return None;
        }
        Some(match self.reply_to {
            Some(_) => format!("{REPLY_PREFIX}{text}"),
            None => text,
        })
    }
}

impl MessageContent {
    /// The agent-facing text of the content alone (no reply prefix).
    pub fn agent_text(&self) -> Option<String> {
        match self {
            MessageContent::Text { body } => Some(body.clone()),
            MessageContent::Media(media) => media.caption.clone(),
            MessageContent::Location {
                latitude,
                longitude,
                name,
                address,
                url,
            } => {
                let place: Vec<&str> = [name, address]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                let mut out = if place.is_empty() {
                    LOCATION_PREFIX.to_string()
                } else {
                    format!("{LOCATION_PREFIX}: {}", place.join(", "))
                };
                out.push_str(&format!(
                    "\nhttps://maps.google.com/?q={latitude},{longitude}"
                ));
                if let Some(url) = url {
                    out.push('\n');
                    out.push_str(url);
                }
                Some(out)
            }
            MessageContent::Contacts(cards) => Some(
                cards
                    .iter()
                    .map(contact_line)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            MessageContent::Interactive {
                title, description, ..
            } => Some(match description {
                Some(d) => format!("{title} — {d}"),
                None => title.clone(),
            }),
            MessageContent::Button { text, .. } => Some(text.clone()),
            MessageContent::Reaction { emoji, .. } => Some(match emoji {
                Some(e) => format!("Reacted {e} to a message"),
                None => "Removed a reaction".to_string(),
            }),
            MessageContent::Unsupported { message_type, .. } => Some(format!(
                "[The customer sent {} {message_type} message that WhatsApp could not deliver]",
                article(message_type)
            )),
        }
    }
}

/// "👤 Shared contact: Juan Pérez, +54 9 11 5555-0000 (CELL), juan@example.com".
/// Comma-separated because phone numbers contain spaces.
fn contact_line(card: &ContactCard) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(card.formatted_name.clone());
    parts.extend(card.phones.iter().map(|p| match &p.phone_type {
        Some(t) => format!("{} ({t})", p.phone),
        None => p.phone.clone(),
    }));
    parts.extend(card.emails.iter().cloned());
    if parts.is_empty() {
        format!("{CONTACT_PREFIX} (no details)")
    } else {
        format!("{CONTACT_PREFIX} {}", parts.join(", "))
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::super::whatsapp_in::{ContactPhone, Media, MediaKind};
    use super::*;

    fn msg(content: MessageContent) -> CustomerMessage {
        CustomerMessage {
            wamid: "wamid.1".into(),
            customer_id: "15551234567".into(),
            customer_name: None,
            timestamp: 0,
            business_number_id: "phone-number-id-a".into(),
            reply_to: None,
            content,
        }
    }

    fn render(content: MessageContent) -> Option<String> {
        msg(content).agent_text()
    }

    fn media(caption: Option<&str>) -> MessageContent {
        MessageContent::Media(Media {
            kind: MediaKind::Image,
            media_id: "1".into(),
            mime_type: "image/jpeg".into(),
            sha256: None,
            caption: caption.map(Into::into),
            filename: None,
            voice: false,
            animated: false,
        })
    }

    #[test]
    fn text() {
        assert_eq!(
            render(MessageContent::Text {
                body: "hola\nqué tal".into()
            })
            .as_deref(),
            Some("hola\nqué tal")
        );
        assert_eq!(
            render(MessageContent::Text {
                body: " \n ".into()
            }),
            None
        );
    }

    #[test]
    fn media_caption() {
        assert_eq!(render(media(Some("la caja"))).as_deref(), Some("la caja"));
        assert_eq!(render(media(None)), None);
    }

    #[test]
    fn location() {
        let loc = |name: Option<&str>, address: Option<&str>, url: Option<&str>| {
            render(MessageContent::Location {
                latitude: -34.603722,
                longitude: -58.381592,
                name: name.map(Into::into),
                address: address.map(Into::into),
                url: url.map(Into::into),
            })
            .unwrap()
        };
        assert_eq!(
            loc(Some("Obelisco"), Some("Av. 9 de Julio s/n"), None),
            "📍 Location: Obelisco, Av. 9 de Julio s/n\nhttps://maps.google.com/?q=-34.603722,-58.381592"
        );
        assert_eq!(
            loc(None, None, None),
            "📍 Location\nhttps://maps.google.com/?q=-34.603722,-58.381592"
        );
        assert_eq!(
            loc(None, Some("Calle 1"), Some("https://example.com/place")),
            "📍 Location: Calle 1\nhttps://maps.google.com/?q=-34.603722,-58.381592\nhttps://example.com/place"
        );
    }

    #[test]
    fn contacts() {
        let text = render(MessageContent::Contacts(vec![
            ContactCard {
                formatted_name: Some("Juan Pérez".into()),
                phones: vec![
                    ContactPhone {
                        phone: "+54 9 11 5555-0000".into(),
                        phone_type: Some("CELL".into()),
                    },
                    ContactPhone {
                        phone: "+15550001111".into(),
                        phone_type: None,
                    },
                ],
                emails: vec!["juan@example.com".into()],
            },
            ContactCard {
                formatted_name: Some("Ana".into()),
                ..Default::default()
            },
            ContactCard::default(),
        ]))
        .unwrap();
        assert_eq!(
            text,
            "👤 Shared contact: Juan Pérez, +54 9 11 5555-0000 (CELL), +15550001111, juan@example.com\n\
             👤 Shared contact: Ana\n\
             👤 Shared contact: (no details)"
        );
    }

    #[test]
    fn interactive() {
        assert_eq!(
            render(MessageContent::Interactive {
                reply_id: "r2".into(),
                title: "Envío".into(),
                description: Some("A domicilio".into())
            })
            .as_deref(),
            Some("Envío — A domicilio")
        );
        assert_eq!(
            render(MessageContent::Interactive {
                reply_id: "yes".into(),
                title: "Sí".into(),
                description: None
            })
            .as_deref(),
            Some("Sí")
        );
    }

    #[test]
    fn button() {
        assert_eq!(
            render(MessageContent::Button {
                text: "Confirmar".into(),
                payload: Some("P".into())
            })
            .as_deref(),
            Some("Confirmar")
        );
    }

    #[test]
    fn reaction() {
        assert_eq!(
            render(MessageContent::Reaction {
                message_id: "wamid.A".into(),
                emoji: Some("👍".into())
            })
            .as_deref(),
            Some("Reacted 👍 to a message")
        );
        assert_eq!(
            render(MessageContent::Reaction {
                message_id: "wamid.A".into(),
                emoji: None
            })
            .as_deref(),
            Some("Removed a reaction")
        );
    }

    #[test]
    fn unsupported() {
        let u = |t: &str| {
            render(MessageContent::Unsupported {
                message_type: t.into(),
                detail: Some("131051: x".into()),
            })
            .unwrap()
        };
        assert_eq!(
            u("order"),
            "[The customer sent an order message that WhatsApp could not deliver]"
        );
        assert_eq!(
            u("unsupported"),
            "[The customer sent an unsupported message that WhatsApp could not deliver]"
        );
        assert_eq!(
            u("system"),
            "[The customer sent a system message that WhatsApp could not deliver]"
        );
    }

    #[test]
    fn reply_prefix() {
        let mut m = msg(MessageContent::Text { body: "sí".into() });
        m.reply_to = Some("wamid.Q".into());
        assert_eq!(
            m.agent_text().as_deref(),
            Some("↩️ (reply to an earlier message) sí")
        );
        assert!(m.agent_text().unwrap().starts_with(REPLY_PREFIX));
        // No caption: nothing to prefix.
        let mut m = msg(media(None));
        m.reply_to = Some("wamid.Q".into());
        assert_eq!(m.agent_text(), None);
    }
}
