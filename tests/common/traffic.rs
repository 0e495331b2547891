//! Load for the fault and replica scenarios: many customers sending numbered texts (and
//! agents numbered replies), then a tally of what arrived: delivered, duplicated, out of
//! order, dead-lettered. Nothing is sorted: order is checked as it arrived.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

use super::{customer_lines, inbox_texts, wait_for, Resources, Sim};

/// The `i`-th test customer of a scenario.
pub fn customer(prefix: u32, i: usize) -> String {
    format!("54911{prefix:02}{i:05}")
}

/// A customer's `seq`-th text: the customer's id and a sequence number.
pub fn numbered(wa_id: &str, seq: usize) -> String {
    format!("{wa_id}#{seq:04}")
}

/// What was sent, per customer (or per chat for agent replies), in sending order.
#[derive(Default, Clone, Debug)]
pub struct Sent {
    pub lines: BTreeMap<String, Vec<String>>,
}

impl Sent {
    pub fn total(&self) -> usize {
        self.lines.values().map(Vec::len).sum()
    }

    pub fn merge(&mut self, other: Sent) {
        for (k, v) in other.lines {
            self.lines.entry(k).or_default().extend(v);
        }
    }
}

/// Each customer sends texts `from..to` one after the other (waiting for the simulator to
/// accept each), all customers at once. `between` paces each customer.
pub async fn customers_send(
    sim: &Sim,
    customers: &[String],
    from: usize,
    to: usize,
    between: Duration,
) -> Sent {
    let sends = customers.iter().map(|wa_id| async move {
        let mut lines = Vec::new();
        for seq in from..to {
            let text = numbered(wa_id, seq);
            sim.send_text(wa_id, &text).await;
            lines.push(text);
            if !between.is_zero() {
                tokio::time::sleep(between).await;
            }
        }
        (wa_id.clone(), lines)
    });
    Sent {
        lines: join_all(sends).await.into_iter().collect(),
    }
}

/// What arrived, against what was sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub delivered: usize,
    pub duplicated: usize,
    /// Keys (customers or chats) whose lines arrived out of order.
    pub out_of_order: usize,
    pub missing: usize,
}

impl Tally {
    /// Compares what arrived per key (lines in arrival order, possibly with other lines
    /// mixed in) with what was sent.
    pub fn of(sent: &Sent, arrived: &BTreeMap<String, Vec<String>>) -> (Tally, Vec<String>) {
        let mut tally = Tally::default();
        let mut problems = Vec::new();
        for (key, expected) in &sent.lines {
            tally.sent += expected.len();
            let got: Vec<&String> = arrived
                .get(key)
                .map(|lines| lines.iter().filter(|l| expected.contains(l)).collect())
                .unwrap_or_default();
            let mut firsts: Vec<&String> = Vec::new();
            for line in &got {
                if firsts.contains(line) {
                    tally.duplicated += 1;
                    problems.push(format!("{key}: {line} twice"));
                } else {
                    firsts.push(line);
                }
            }
            tally.delivered += firsts.len();
            tally.missing += expected.len() - firsts.len();
            let in_sent_order: Vec<&String> =
                expected.iter().filter(|l| firsts.contains(l)).collect();
            if firsts != in_sent_order {
                tally.out_of_order += 1;
                problems.push(format!("{key}: arrived {firsts:?}"));
            }
        }
        (tally, problems)
    }

    pub fn summary(&self, scenario: &str, dead_lettered: usize) -> String {
        format!(
            "FAULT-SUITE scenario={scenario} sent={} delivered={} duplicated={} out_of_order={} dead_lettered={dead_lettered}",
            self.sent, self.delivered, self.duplicated, self.out_of_order
        )
    }
}

/// Every customer line in the simulator's chats, per customer, chats in creation order.
pub async fn agent_side(sim: &Sim) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, usize>) {
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut chats_per_customer: BTreeMap<String, usize> = BTreeMap::new();
    for chat in sim.chats().await {
        let customer = chat["customer_id"].as_str().unwrap_or_default().to_string();
        *chats_per_customer.entry(customer.clone()).or_default() += 1;
        lines
            .entry(customer)
            .or_default()
            .extend(customer_lines(&chat));
    }
    (lines, chats_per_customer)
}

/// Every text in the customers' inboxes, per customer, in arrival order.
pub async fn customer_side(sim: &Sim, customers: &[String]) -> BTreeMap<String, Vec<String>> {
    let inboxes = join_all(
        customers
            .iter()
            .map(|c| async move { (c.clone(), inbox_texts(&sim.inbox(c).await)) }),
    )
    .await;
    inboxes.into_iter().collect()
}

/// Waits until every sent customer text reached the agents (or `deadline`), then tallies.
pub async fn wait_inbound(sim: &Sim, sent: &Sent, deadline: Duration) -> (Tally, Vec<String>) {
    wait_for(
        &format!("{} customer texts in the agents' chats", sent.total()),
        deadline,
        async || {
            let (arrived, _) = agent_side(sim).await;
            let (tally, problems) = Tally::of(sent, &arrived);
            if tally.missing == 0 {
                Ok((tally, problems))
            } else {
                Err(format!("{tally:?}"))
            }
        },
    )
    .await
}

/// Waits until every sent agent reply reached its customer (or `deadline`), then tallies.
pub async fn wait_outbound(sim: &Sim, sent: &Sent, deadline: Duration) -> (Tally, Vec<String>) {
    let customers: Vec<String> = sent.lines.keys().cloned().collect();
    wait_for(
        &format!("{} agent replies in the customers' inboxes", sent.total()),
        deadline,
        async || {
            let arrived = customer_side(sim, &customers).await;
            let (tally, problems) = Tally::of(sent, &arrived);
            if tally.missing == 0 {
                Ok((tally, problems))
            } else {
                Err(format!("{tally:?}"))
            }
        },
    )
    .await
}

/// The agent of each customer's (single) chat sends replies `from..to`, one after the other
/// per chat, all chats at once. Keys of the result are customers.
pub async fn agents_reply(sim: &Sim, customers: &[String], from: usize, to: usize) -> Sent {
    let chats = sim.chats().await;
    let contact_of = |c: &str| -> String {
        chats
            .iter()
            .rev()
            .find(|chat| chat["customer_id"] == c && chat["state"] == "active")
            .and_then(|chat| chat["contact_id"].as_str())
            .unwrap_or_else(|| panic!("no active chat for {c}"))
            .to_string()
    };
    let replies = customers.iter().map(|c| {
        let contact = contact_of(c);
        async move {
            let mut lines = Vec::new();
            for seq in from..to {
                let text = format!("reply-{}", numbered(c, seq));
                sim.agent_says(&contact, &text).await;
                lines.push(text);
            }
            (c.clone(), lines)
        }
    });
    Sent {
        lines: join_all(replies).await.into_iter().collect(),
    }
}

/// Messages in every dead-letter queue of the resources (the FIFO stage's too).
pub async fn dead_letters(res: &Resources) -> Vec<super::QueueMessage> {
    let mut urls = vec![res.inbound_dlq_url.clone(), res.connect_dlq_url.clone()];
    if let Some(f) = &res.fifo {
        urls.push(f.inbound_dlq_url.clone());
        urls.push(f.connect_dlq_url.clone());
    }
    let mut all = Vec::new();
    for url in urls {
        all.extend(res.dlq_messages(&url).await);
    }
    all
}

/// Chats per customer above one.
pub fn extra_chats(
    chats_per_customer: &BTreeMap<String, usize>,
    customers: &[String],
) -> Vec<String> {
    customers
        .iter()
        .filter(|c| chats_per_customer.get(*c).copied().unwrap_or(0) != 1)
        .map(|c| {
            format!(
                "{c}: {} chats",
                chats_per_customer.get(c).copied().unwrap_or(0)
            )
        })
        .collect()
}

/// A JSON field as text, for messages.
pub fn text_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
