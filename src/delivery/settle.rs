//! Turning the outcomes of one queue message's work into what happens to the message.

use std::sync::Arc;
use std::time::Duration;

use metrics::counter;

use super::batch_delete::BatchDeleter;
use crate::actors::Outcome;
use crate::metrics as m;
use crate::ports::{Queue, QueueMessage};

/// What to do with a queue message once all its work has reported.
#[derive(Debug, PartialEq)]
pub enum Settlement {
    Delete,
    RetryAfter(Duration, String),
    DeadLetter(String),
}

/// Retry wins over dead-lettering (a retried message may still succeed whole); problems
/// found while decoding dead-letter the message after the good parts are delivered, so
/// nothing in it is silently dropped.
pub fn decide(outcomes: &[Outcome], problems: &[String]) -> Settlement {
    let mut retry: Option<(Duration, String)> = None;
    let mut rejects: Vec<String> = problems.to_vec();
    for outcome in outcomes {
        match outcome {
            Outcome::Retry { reason, after } => {
                let later = retry.as_ref().is_none_or(|(d, _)| after > d);
                if later {
                    retry = Some((*after, reason.clone()));
                }
            }
            Outcome::Reject { reason } => rejects.push(reason.clone()),
            Outcome::Done | Outcome::Duplicate | Outcome::Ignored(_) => {}
        }
    }
    if let Some((after, reason)) = retry {
        Settlement::RetryAfter(after, reason)
    } else if !rejects.is_empty() {
        Settlement::DeadLetter(rejects.join("; "))
    } else {
        Settlement::Delete
    }
}

/// Applies a [`Settlement`] to the queue message. A failure here leaves the message in the
/// queue, which redelivers it: never a loss.
pub async fn apply(
    queue: &Arc<dyn Queue>,
    deleter: &BatchDeleter,
    queue_name: &'static str,
    msg: &QueueMessage,
    settlement: Settlement,
) {
    let outcome = match &settlement {
        Settlement::Delete => "deleted",
        Settlement::RetryAfter(..) => "retried",
        Settlement::DeadLetter(_) => "dead_lettered",
    };
    let result = match settlement {
        Settlement::Delete => deleter.delete(&msg.receipt).await,
        Settlement::RetryAfter(after, reason) => {
            tracing::warn!(queue = queue_name, sqs_message_id = %msg.id, receive_count = msg.receive_count,
                retry_in_secs = after.as_secs(), %reason, "work not done, message left in the queue");
            queue.set_visibility(&msg.receipt, after).await
        }
        Settlement::DeadLetter(reason) => {
            tracing::error!(queue = queue_name, sqs_message_id = %msg.id, %reason, "dead-lettering message");
            let result = queue.dead_letter(msg, &reason).await;
            if result.is_ok() {
                counter!(m::DEAD_LETTERS, "queue" => queue_name).increment(1);
            } else {
                // The queue's own redrive policy will still move it after maxReceiveCount.
                let _ = queue
                    .set_visibility(&msg.receipt, Duration::from_secs(60))
                    .await;
            }
            result
        }
    };
    match result {
        Ok(()) => {
            counter!(m::QUEUE_MESSAGES, "queue" => queue_name, "outcome" => outcome).increment(1)
        }
        Err(e) => {
            counter!(m::QUEUE_MESSAGES, "queue" => queue_name, "outcome" => "settle_failed")
                .increment(1);
            tracing::warn!(queue = queue_name, sqs_message_id = %msg.id, error = %e,
                "could not settle message; the queue will redeliver it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_done_deletes() {
        let o = [Outcome::Done, Outcome::Duplicate, Outcome::Ignored("x")];
        assert_eq!(decide(&o, &[]), Settlement::Delete);
    }

    #[test]
    fn retry_beats_reject_and_takes_longest_delay() {
        let o = [
            Outcome::Reject {
                reason: "bad".into(),
            },
            Outcome::retry("a", Duration::from_secs(1)),
            Outcome::retry("b", Duration::from_secs(5)),
        ];
        assert_eq!(
            decide(&o, &[]),
            Settlement::RetryAfter(Duration::from_secs(5), "b".into())
        );
    }

    #[test]
    fn problems_dead_letter_after_good_work() {
        let o = [Outcome::Done];
        assert_eq!(
            decide(&o, &["message 2: text too long".into()]),
            Settlement::DeadLetter("message 2: text too long".into())
        );
    }
}
