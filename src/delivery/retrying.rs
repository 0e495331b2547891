//! Runs one step of a customer's work under the [`RetryPolicy`], in place: the step is
//! tried again after a backoff while its queue message stays received (the poller extends
//! its visibility), so the customer's later work waits behind it in the mailbox and order
//! holds without a round trip through the queue.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::counter;

use super::dependency;
use super::retry::{Attempt, RetryPolicy, Verdict};
use crate::actors::Outcome;
use crate::lifecycle::Lifecycle;
use crate::metrics as m;
use crate::ports::PortError;
use crate::supervision::Probe;

/// What a retried step needs to know about its circumstances.
#[derive(Clone)]
pub struct RetryContext {
    pub policy: Arc<RetryPolicy>,
    pub lifecycle: Arc<Lifecycle>,
    /// Marks the waits between attempts as deliberate (not stuck).
    pub probe: Option<Arc<Probe>>,
    /// How many times the work's queue message has been received.
    pub receive_count: u32,
    /// One attempt, whatever the failure and whatever the state of the dependency: the
    /// step's own failure is the answer (a `Reject`). For probing steps that already
    /// spent their attempts together (the texts of a refused burst, one by one).
    pub single_attempt: bool,
}

/// Runs `step` until it succeeds, the policy gives up (`Outcome::Reject`) or the message
/// must go back to the queue (`Outcome::Retry`: held for too long, or shutting down).
/// `what` and `id` name the work in logs.
pub async fn retrying<T, F, Fut>(
    ctx: &RetryContext,
    what: &'static str,
    id: &str,
    mut step: F,
) -> Result<T, Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let started = Instant::now();
    let mut counted = 0;
    let mut failures = 0;
    loop {
        let error = match step().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        failures += 1;
        if ctx.single_attempt {
            tracing::warn!(%id, what, error = %error, "step failed on its single attempt");
            return Err(Outcome::Reject {
                reason: format!("{error}; failed again on its own"),
            });
        }
        let down = dependency::is_down(error.service);
        let attempt = Attempt {
            counted,
            failures,
            held: started.elapsed(),
            receive_count: ctx.receive_count,
        };
        match ctx.policy.judge(&error, attempt, down) {
            Verdict::RetryIn {
                after,
                counted: spent,
            } => {
                if spent {
                    counted += 1;
                }
                counter!(m::RETRIES, "service" => error.service, "kind" => error.kind.as_str())
                    .increment(1);
                tracing::warn!(%id, what, error = %error, attempt = failures, outage = down,
                    retry_in_ms = after.as_millis() as u64, "step failed; retrying in place");
                if !wait(ctx, error.service, down, after).await {
                    return Err(Outcome::retry(
                        format!("{error}; shutting down before it succeeded"),
                        Duration::ZERO,
                    ));
                }
            }
            Verdict::ReturnToQueue { after, reason } => {
                tracing::warn!(%id, what, %reason, "handing the message back to the queue");
                return Err(Outcome::retry(reason, after));
            }
            Verdict::DeadLetter { reason } => {
                tracing::error!(%id, what, %reason, "giving up");
                return Err(Outcome::Reject { reason });
            }
        }
    }
}

/// Waits `after` (sooner if the dependency comes back); false if a drain started.
async fn wait(ctx: &RetryContext, service: &'static str, down: bool, after: Duration) -> bool {
    let _waiting = ctx.probe.as_ref().map(|p| p.waiting());
    let dep = dependency::dependency(service);
    tokio::select! {
        _ = tokio::time::sleep(after) => {}
        _ = dep.recovered(), if down => {}
        _ = ctx.lifecycle.until_draining() => {}
    }
    !ctx.lifecycle.is_draining()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ctx(max_attempts: u32) -> RetryContext {
        RetryContext {
            policy: Arc::new(RetryPolicy {
                base: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_attempts,
                ..RetryPolicy::default()
            }),
            lifecycle: Arc::new(Lifecycle::default()),
            probe: None,
            receive_count: 1,
            single_attempt: false,
        }
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let result = retrying(&ctx(8), "test", "m1", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(PortError::new(ErrorKind::Transient, "svc-a", "Op", "5xx"))
            } else {
                Ok("done")
            }
        })
        .await;
        assert_eq!(result, Ok("done"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn attempts_run_out_into_a_dead_letter_with_the_reason() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying(&ctx(3), "test", "m1", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PortError::new(
                ErrorKind::Transient,
                "svc-b",
                "Op",
                "poison",
            ))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        match result {
            Err(Outcome::Reject { reason }) => assert!(reason.contains("poison"), "{reason}"),
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_drain_hands_the_work_back_instead_of_waiting() {
        let c = ctx(8);
        c.lifecycle.start_draining();
        let result: Result<(), _> = retrying(&c, "test", "m1", || async {
            Err(PortError::new(
                ErrorKind::Throttled,
                "svc-c",
                "Op",
                "slow down",
            ))
        })
        .await;
        assert!(matches!(result, Err(Outcome::Retry { after, .. }) if after.is_zero()));
    }
}
