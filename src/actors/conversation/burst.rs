//! Burst aggregation: while no human agent has joined a chat (the contact flow or a bot is
//! handling it), a customer's texts that follow each other within a quiet gap are joined
//! with newlines into one chat message, so a bot gets one utterance instead of fragments.
//! The burst is sent when the customer pauses for the quiet gap, at the latest the
//! maximum wait after its first text, when the next text would not fit Connect's 1024
//! characters, or at once when anything else arrives (a file, a location: it follows the
//! texts), when an agent joins, or when the router drains. Once an agent has joined, every
//! text goes through at once: humans pay nothing.
//!
//! Nothing is acknowledged to the queue before the burst is delivered: the texts' queue
//! messages stay received (their visibility extended) while they wait, so a crash loses
//! nothing. Where the texts come through the FIFO stage, the regroup stage does the
//! waiting (a FIFO queue would not hand over a customer's next text while the first one
//! waits) and passes the burst on as one message: [`Work::InboundBurst`].
//!
//! [`Work::InboundBurst`]: crate::actors::Work::InboundBurst

use std::time::{Duration, Instant};

use actix::SpawnHandle;
use metrics::counter;

use super::{already_done, deliver_inbound, finish, ConversationDeps};
use crate::actors::connect_upload::Deliver;
use crate::actors::whatsapp_send::Acknowledge;
use crate::actors::{Outcome, Reply};
use crate::delivery::gate::Direction;
use crate::delivery::retrying::retrying;
use crate::delivery::Arrival;
use crate::domain::{
    client_token, dedupe_key_inbound, reactions, split_text, Customer, CustomerMessage,
    MessageContent, Piece, CONNECT_MESSAGE_MAX_CHARS,
};
use crate::metrics as m;
use crate::ports::Session;

/// When a burst is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstPolicy {
    /// Sent once the customer has been quiet this long.
    pub quiet: Duration,
    /// Sent at the latest this long after its first text.
    pub max: Duration,
}

impl BurstPolicy {
    /// When a burst whose first text came at `first` and last at `last` is sent.
    pub fn due(&self, first: Instant, last: Instant) -> Instant {
        (last + self.quiet).min(first + self.max)
    }
}

/// Whether a message can wait in a burst: plain text only (a reply to an earlier message
/// is still text); everything else goes out at once, after the waiting texts.
pub fn is_plain_text(message: &CustomerMessage) -> bool {
    matches!(message.content, MessageContent::Text { .. })
}

/// One text waiting in a burst.
pub struct Buffered {
    pub message: CustomerMessage,
    pub arrival: Arrival,
    pub reply: Reply,
    pub started: Instant,
}

/// The texts waiting, and the timer that sends them.
pub struct Burst {
    pub texts: Vec<Buffered>,
    pub first: Instant,
    /// Characters of the joined text so far.
    pub chars: usize,
    pub timer: Option<SpawnHandle>,
}

impl Burst {
    pub fn new() -> Self {
        Self {
            texts: Vec::new(),
            first: Instant::now(),
            chars: 0,
            timer: None,
        }
    }

    /// Whether `text` still fits the joined message (Connect's 1024 characters): a burst
    /// is sent before it would have to be split.
    pub fn fits(&self, text: &str) -> bool {
        let joined = self.chars + text.chars().count() + usize::from(!self.texts.is_empty());
        self.texts.is_empty() || joined <= CONNECT_MESSAGE_MAX_CHARS
    }

    pub fn push(&mut self, text_chars: usize, buffered: Buffered) {
        self.chars += text_chars + usize::from(!self.texts.is_empty());
        self.texts.push(buffered);
    }
}

/// What the agent reads of a text.
pub fn agent_text(message: &CustomerMessage) -> String {
    message.agent_text().unwrap_or_default()
}

/// Delivers `texts` (one customer's, in order) as one chat message, split only if the
/// joined text is over Connect's limit. Answers an outcome per text and the session in use.
/// Texts already delivered (redeliveries) are left out and answered `Duplicate`.
pub async fn deliver_burst(
    deps: &ConversationDeps,
    session: Option<Session>,
    texts: Vec<(CustomerMessage, Arrival)>,
) -> (Vec<Outcome>, Option<Session>) {
    let mut outcomes = vec![Outcome::Duplicate; texts.len()];
    let mut fresh: Vec<usize> = Vec::with_capacity(texts.len());
    for (i, (message, arrival)) in texts.iter().enumerate() {
        // Two copies of one message (a redelivery) in one burst: the first carries it.
        if fresh.iter().any(|&f| texts[f].0.wamid == message.wamid) {
            counter!(m::DEDUPE_HITS, "direction" => "inbound").increment(1);
            continue;
        }
        let key = dedupe_key_inbound(&message.wamid);
        match already_done(deps, arrival, &key, &message.wamid, Direction::Inbound).await {
            Ok(true) => {
                counter!(m::DEDUPE_HITS, "direction" => "inbound").increment(1);
            }
            Ok(false) => fresh.push(i),
            Err(outcome) => return (vec![outcome; texts.len()], session),
        }
    }
    if fresh.is_empty() {
        return (outcomes, session);
    }
    let first = &texts[fresh[0]].0;
    let customer = Customer {
        customer_id: first.customer_id.clone(),
        name: first
            .customer_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "WhatsApp customer".into()),
        business_number_id: first.business_number_id.clone(),
    };
    let joined: Vec<String> = fresh.iter().map(|&i| agent_text(&texts[i].0)).collect();
    let pieces: Vec<Piece> = split_text(&joined.join("\n"), CONNECT_MESSAGE_MAX_CHARS)
        .into_iter()
        .map(Piece::Text)
        .collect();
    // The same texts give the same ClientTokens, so a redelivered burst is not repeated.
    let wamids: Vec<&str> = fresh.iter().map(|&i| texts[i].0.wamid.as_str()).collect();
    let mut parts = vec!["burst"];
    parts.extend(&wamids);
    let source_id = client_token(&parts);
    // The most-received text decides how far the policy lets the step go.
    let arrival = fresh
        .iter()
        .map(|&i| &texts[i].1)
        .max_by_key(|a| a.receive_count)
        .cloned()
        .unwrap_or_default();
    let ctx = deps.retry_context(&arrival);
    let delivered = retrying(&ctx, "deliver burst to agent", &source_id, || {
        deps.deliver(Deliver {
            customer: customer.clone(),
            session: session.clone(),
            pieces: pieces.clone(),
            source_id: source_id.clone(),
        })
    })
    .await;
    match delivered {
        Ok(new_session) => {
            for &i in &fresh {
                let (message, arrival) = &texts[i];
                finish(deps, &dedupe_key_inbound(&message.wamid), message, arrival).await;
                if deps.behaviour.acknowledge {
                    deps.acknowledge(Acknowledge {
                        business_number_id: message.business_number_id.clone(),
                        customer_id: message.customer_id.clone(),
                        wamid: message.wamid.clone(),
                        mark_read: false,
                        reaction: Some(reactions::DONE),
                    });
                }
                outcomes[i] = Outcome::Done;
            }
            counter!(m::BURSTS, "texts" => burst_size_label(fresh.len())).increment(1);
            tracing::info!(contact_id = %new_session.contact_id, texts = fresh.len(),
                first_wamid = %wamids[0], "burst delivered to agent as one message");
            (outcomes, Some(new_session))
        }
        // One text Connect can never take must not sink the others joined to it: each
        // goes on its own, and only the bad one is dead-lettered.
        Err(Outcome::Reject { reason }) if fresh.len() > 1 => {
            tracing::warn!(texts = fresh.len(), first_wamid = %wamids[0], %reason,
                "a burst was refused: delivering its texts one by one");
            // The burst spent the attempts; each text gets one more, on its own, so the
            // dependency's state (its failures were this burst's) holds nobody back.
            let probe = ConversationDeps {
                single_attempt: true,
                ..deps.clone()
            };
            let mut session = session;
            for &i in &fresh {
                let (message, arrival) = texts[i].clone();
                let (outcome, now) =
                    deliver_inbound(probe.clone(), session, message, arrival).await;
                session = now;
                outcomes[i] = match outcome {
                    Outcome::Reject { reason: own } => Outcome::Reject {
                        reason: format!("{own} (in a burst: {reason})"),
                    },
                    other => other,
                };
            }
            (outcomes, session)
        }
        Err(outcome) => {
            for &i in &fresh {
                outcomes[i] = outcome.clone();
            }
            (outcomes, None)
        }
    }
}

/// A bounded label for the size of a burst.
fn burst_size_label(n: usize) -> &'static str {
    match n {
        1 => "1",
        2 => "2",
        3..=5 => "3-5",
        _ => "6+",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_due_after_the_quiet_gap_but_no_later_than_the_maximum() {
        let p = BurstPolicy {
            quiet: Duration::from_millis(1500),
            max: Duration::from_secs(6),
        };
        let t0 = Instant::now();
        assert_eq!(p.due(t0, t0), t0 + Duration::from_millis(1500));
        let late = t0 + Duration::from_secs(5);
        assert_eq!(p.due(t0, late), t0 + Duration::from_secs(6));
    }

    #[test]
    fn the_joined_text_never_needs_splitting() {
        let mut b = Burst::new();
        let (tx, _rx) = tokio::sync::oneshot::channel();
        let text = "x".repeat(600);
        assert!(b.fits(&text));
        b.push(
            600,
            Buffered {
                message: CustomerMessage {
                    wamid: "w".into(),
                    customer_id: "1".into(),
                    customer_name: None,
                    timestamp: 0,
                    business_number_id: "p".into(),
                    reply_to: None,
                    content: MessageContent::Text { body: text.clone() },
                },
                arrival: Arrival::default(),
                reply: tx,
                started: Instant::now(),
            },
        );
        assert!(b.fits(&"y".repeat(423)), "600 + newline + 423 = 1024");
        assert!(!b.fits(&"y".repeat(424)));
    }
}
