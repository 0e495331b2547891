//! The one retry policy: how long to wait before trying a failed step again, and when to
//! give up and dead-letter the queue message with a reason.
//!
//! Every failure in the router is a [`PortError`] with an [`ErrorKind`]; this module is the
//! only place that turns one into a decision, so the same error is treated the same way
//! for a customer's text, an agent's file or a voice note.
//!
//! Three kinds of failure, three answers:
//!
//! - **The request can never succeed** (`Invalid`, `NotFound`): dead-letter now, with the
//!   error as the reason. Retrying the same request changes nothing.
//! - **The dependency is down** (transient or throttled errors while
//!   [`crate::delivery::dependency`] reports the service down): an outage is not the
//!   message's fault, so no attempt is spent. The step waits (exponential backoff with
//!   jitter, capped at `max_delay`) while the queue message's visibility is extended, and
//!   is returned to the queue only after holding it for `hold_max`. It is dead-lettered
//!   only when it has been received `dead_letter_after_receives` times, which is set
//!   below the queue's `maxReceiveCount` so that waconnect, not SQS, gives up and attaches
//!   the reason.
//! - **This message fails while the dependency answers others** (transient, throttled or
//!   unknown errors with the service up): each failure spends one of `max_attempts`
//!   attempts, waiting a growing backoff in between; then the message is dead-lettered.
//!
//! docs/delivery.md gives the numbers.

use std::time::Duration;

use rand::Rng;

use crate::ports::{ErrorKind, PortError};

/// The policy's knobs; see the module docs and docs/delivery.md.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// First backoff (before jitter); each further attempt doubles it.
    pub base: Duration,
    /// Longest single wait between two attempts.
    pub max_delay: Duration,
    /// Failures of one message, while its dependency answers others, before it is
    /// dead-lettered.
    pub max_attempts: u32,
    /// Longest a step keeps its queue message while waiting out an outage; after that the
    /// message goes back to the queue (one more receive) and the step is abandoned.
    pub hold_max: Duration,
    /// A message received this many times (crashes, outages longer than `hold_max`) is
    /// dead-lettered on its next failure. Keep it below the queue's `maxReceiveCount`.
    pub dead_letter_after_receives: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_attempts: 8,
            hold_max: Duration::from_secs(3600),
            dead_letter_after_receives: 9,
        }
    }
}

/// Where a failed step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Earlier failures of this step that counted against `max_attempts`.
    pub counted: u32,
    /// Failures so far, counted or not, this one included (drives the backoff).
    pub failures: u32,
    /// How long the step has held its queue message so far.
    pub held: Duration,
    /// How many times the queue message has been received, this time included.
    pub receive_count: u32,
}

/// What to do after a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Try again after waiting this long; `counted` says whether this failure spent an
    /// attempt (false while the dependency is down).
    RetryIn { after: Duration, counted: bool },
    /// Stop holding the message: hand it back to the queue, visible again after `after`.
    ReturnToQueue { after: Duration, reason: String },
    /// It can never succeed or has used up its attempts: dead-letter with this reason.
    DeadLetter { reason: String },
}

impl RetryPolicy {
    /// Backoff before attempt `failures + 1`: `base * 2^(failures-1)`, capped at
    /// `max_delay`, with "equal jitter" (between half and all of it), so customers retrying
    /// together after an outage do not all call at the same instant.
    pub fn backoff(&self, failures: u32) -> Duration {
        let full = self.backoff_ceiling(failures);
        let half = full / 2;
        let spread = full.saturating_sub(half).as_millis() as u64;
        half + Duration::from_millis(rand::rng().random_range(0..=spread))
    }

    /// The backoff without jitter: its upper bound.
    pub fn backoff_ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
            .max(Duration::from_millis(1))
    }

    /// Decides what follows `error`. `dependency_down` says whether the failing service
    /// is known to be down for everyone (an outage) rather than failing for this message.
    pub fn judge(&self, error: &PortError, attempt: Attempt, dependency_down: bool) -> Verdict {
        let retryable = match error.kind {
            ErrorKind::Invalid | ErrorKind::NotFound => false,
            ErrorKind::Throttled | ErrorKind::Transient => true,
            // Another writer won: reading again decides afresh.
            ErrorKind::Conflict => true,
            // Unknown failures and a denial that survived the chat renewal may be fixed by
            // an operator (permissions, configuration): worth the attempts, not forever.
            ErrorKind::AccessDenied | ErrorKind::Other => true,
        };
        if !retryable {
            return Verdict::DeadLetter {
                reason: error.to_string(),
            };
        }
        let outage = dependency_down && error.kind.is_retryable();
        if attempt.receive_count > self.dead_letter_after_receives {
            return Verdict::DeadLetter {
                reason: format!(
                    "{error}; still failing after {} receives of this message",
                    attempt.receive_count
                ),
            };
        }
        if outage {
            if attempt.held >= self.hold_max {
                return Verdict::ReturnToQueue {
                    after: self.backoff(attempt.failures),
                    reason: format!(
                        "{error}; {} unavailable for {}s, handing the message back to the queue",
                        error.service,
                        attempt.held.as_secs()
                    ),
                };
            }
            return Verdict::RetryIn {
                after: self.backoff(attempt.failures),
                counted: false,
            };
        }
        let attempts = attempt.counted + 1;
        if attempts >= self.max_attempts {
            return Verdict::DeadLetter {
                reason: format!("{error}; gave up after {attempts} attempts"),
            };
        }
        Verdict::RetryIn {
            after: self.backoff(attempt.failures),
            counted: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> PortError {
        PortError::new(kind, "connect", "SendMessage", "boom")
    }

    /// The `failures`-th failure, all of them counted.
    fn attempt(failures: u32) -> Attempt {
        Attempt {
            counted: failures - 1,
            failures,
            held: Duration::ZERO,
            receive_count: 1,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_within_half() {
        let p = RetryPolicy::default();
        let ceilings: Vec<u64> = (1..=10)
            .map(|n| p.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        for n in 1..=12 {
            let ceiling = p.backoff_ceiling(n);
            for _ in 0..50 {
                let d = p.backoff(n);
                assert!(d <= ceiling && d >= ceiling / 2, "{n}: {d:?}");
            }
        }
    }

    #[test]
    fn invalid_requests_are_dead_lettered_at_once() {
        let v = RetryPolicy::default().judge(&err(ErrorKind::Invalid), attempt(1), false);
        assert!(matches!(v, Verdict::DeadLetter { ref reason } if reason.contains("boom")));
    }

    #[test]
    fn a_message_failing_alone_spends_attempts_then_is_dead_lettered() {
        let p = RetryPolicy::default();
        for n in 1..p.max_attempts {
            assert!(matches!(
                p.judge(&err(ErrorKind::Transient), attempt(n), false),
                Verdict::RetryIn { counted: true, .. }
            ));
        }
        let last = p.judge(&err(ErrorKind::Transient), attempt(p.max_attempts), false);
        assert!(
            matches!(last, Verdict::DeadLetter { ref reason } if reason.contains("8 attempts"))
        );
    }

    #[test]
    fn an_outage_spends_no_attempts_until_hold_max() {
        let p = RetryPolicy::default();
        let mut a = attempt(100);
        a.held = p.hold_max - Duration::from_secs(1);
        assert!(matches!(
            p.judge(&err(ErrorKind::Throttled), a, true),
            Verdict::RetryIn { counted: false, .. }
        ));
        a.held = p.hold_max;
        assert!(matches!(
            p.judge(&err(ErrorKind::Throttled), a, true),
            Verdict::ReturnToQueue { .. }
        ));
        a.receive_count = p.dead_letter_after_receives + 1;
        assert!(matches!(
            p.judge(&err(ErrorKind::Throttled), a, true),
            Verdict::DeadLetter { .. }
        ));
    }

    #[test]
    fn unknown_errors_are_not_an_outage_even_when_the_service_is_down() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.judge(&err(ErrorKind::Other), attempt(1), true),
            Verdict::RetryIn { counted: true, .. }
        ));
    }
}
