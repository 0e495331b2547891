//! The agent types, the customer sees "typing…": an agent `typing` event from Connect
//! becomes WhatsApp's typing indicator, which Meta sends with the mark-as-read of a
//! customer message (so it needs one: the latest the conversation saw from that business
//! number, else the message that opened the chat). At most one per customer and number
//! every `typing_interval_secs`; WhatsApp shows it up to 25 s or until we reply.
//! Best effort: sent off the conversation's path, a failure only logged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use metrics::counter;

use super::ConversationDeps;
use crate::actors::whatsapp_send::SendWhatsApp;
use crate::domain::mark_read_with_typing;
use crate::metrics as m;
use crate::ports::Session;

/// What one conversation remembers for typing indicators, per business number.
#[derive(Debug, Default)]
pub(super) struct Typing {
    /// The customer's latest message id per business number.
    latest: HashMap<String, String>,
    /// When an indicator was last sent, per business number.
    shown: HashMap<String, Instant>,
}

/// The message id of `<wamid>:<piece>` (a session's `opened_by`); None when the chat was
/// opened by something else (a burst of texts is named by a token of its wamids).
fn opening_wamid(opened_by: &str) -> Option<&str> {
    opened_by
        .rsplit_once(':')
        .map(|(wamid, _)| wamid)
        .filter(|w| w.starts_with("wamid.") && w.len() > "wamid.".len())
}

impl Typing {
    /// A customer message arrived from `business_number_id`'s customer.
    pub fn saw(&mut self, business_number_id: &str, wamid: &str) {
        self.latest
            .insert(business_number_id.to_string(), wamid.to_string());
    }

    /// Whether to show an indicator in `session`'s chat now, and on which message; or why
    /// not (the `outcome` label).
    pub fn decide(
        &mut self,
        session: &Session,
        interval: Duration,
        now: Instant,
    ) -> Result<String, &'static str> {
        let number = &session.business_number_id;
        if self
            .shown
            .get(number)
            .is_some_and(|at| now.duration_since(*at) < interval)
        {
            return Err("rate_limited");
        }
        let wamid = self
            .latest
            .get(number)
            .cloned()
            .or_else(|| {
                session
                    .opened_by
                    .as_deref()
                    .and_then(opening_wamid)
                    .map(str::to_string)
            })
            .ok_or("no_message")?;
        self.shown.insert(number.clone(), now);
        Ok(wamid)
    }
}

/// Shows the typing indicator of `session`'s chat, unless rate-limited or there is no
/// customer message to attach it to.
pub(super) fn agent_typing(deps: &ConversationDeps, typing: &mut Typing, session: &Session) {
    let interval = deps.behaviour.typing_interval_secs;
    let wamid = match typing.decide(session, interval, Instant::now()) {
        Ok(wamid) => wamid,
        Err(outcome) => {
            counter!(m::TYPING_INDICATORS, "outcome" => outcome).increment(1);
            tracing::debug!(contact_id = %session.contact_id, outcome, "typing indicator not sent");
            return;
        }
    };
    let deps = deps.clone();
    let request = SendWhatsApp {
        business_number_id: session.business_number_id.clone(),
        body: mark_read_with_typing(&wamid),
    };
    let contact_id = session.contact_id.clone();
    actix::spawn(async move {
        let outcome = match deps.send_whatsapp(request).await {
            Ok(_) => "sent",
            Err(e) => {
                tracing::warn!(%contact_id, error = %e, "typing indicator failed");
                "failed"
            }
        };
        counter!(m::TYPING_INDICATORS, "outcome" => outcome).increment(1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::CHANNEL_WHATSAPP;

    fn session(number: &str, opened_by: Option<&str>) -> Session {
        Session {
            contact_id: "c".into(),
            customer_id: "549".into(),
            channel: CHANNEL_WHATSAPP.into(),
            participant_token: String::new(),
            connection_token: String::new(),
            business_number_id: number.into(),
            name: "Ana".into(),
            expires_at: 0,
            ended: false,
            opened_by: opened_by.map(str::to_string),
            agent_joined: false,
        }
    }

    #[test]
    fn the_latest_message_of_the_number_is_used_at_most_once_per_interval() {
        let mut t = Typing::default();
        let every = Duration::from_secs(10);
        let t0 = Instant::now();
        let a = session("phone-number-id-a", Some("wamid.OPEN:0"));
        // Nothing seen yet: the message that opened the chat.
        assert_eq!(t.decide(&a, every, t0).as_deref(), Ok("wamid.OPEN"));
        t.saw("phone-number-id-a", "wamid.A1");
        t.saw("phone-number-id-b", "wamid.B1");
        t.saw("phone-number-id-a", "wamid.A2");
        assert_eq!(
            t.decide(&a, every, t0 + Duration::from_secs(3)),
            Err("rate_limited")
        );
        assert_eq!(
            t.decide(&a, every, t0 + Duration::from_secs(10)).as_deref(),
            Ok("wamid.A2")
        );
        let b = session("phone-number-id-b", None);
        assert_eq!(t.decide(&b, every, t0).as_deref(), Ok("wamid.B1"));
        let c = session("phone-number-id-c", None);
        assert_eq!(t.decide(&c, every, t0), Err("no_message"));
    }

    #[test]
    fn opening_piece_names_the_message() {
        assert_eq!(opening_wamid("wamid.X:1"), Some("wamid.X"));
        assert_eq!(opening_wamid("wamid.a:b:0"), Some("wamid.a:b"));
        assert_eq!(
            opening_wamid("3f2a9c:0"),
            None,
            "a burst's token is no message id"
        );
        assert_eq!(opening_wamid(":0"), None);
        assert_eq!(opening_wamid("nocolon"), None);
    }
}
