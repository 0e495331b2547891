//! Is a dependency down for everyone, or failing for one message?
//!
//! Every AWS call passes through `adapters::aws::call::observe`, which reports here. A
//! service whose last [`DOWN_AFTER`] calls all failed with a transient or throttling error
//! (whoever made them) is *down*: the retry policy then holds messages without spending
//! their attempts, and waiting steps are woken as soon as any call to it succeeds again.
//! `waconnect_dependency_up{service}` exports the state for alerts.
//!
//! Process-wide on purpose: the dependency is shared by every actor of the process, and a
//! success seen by one caller is news for all of them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use metrics::gauge;
use tokio::sync::Notify;

use crate::metrics as m;

/// Consecutive failures (no success in between) after which a service counts as down.
pub const DOWN_AFTER: u32 = 5;

/// One service's health.
#[derive(Default)]
pub struct Dependency {
    consecutive_failures: Mutex<u32>,
    recovered: Notify,
}

impl Dependency {
    pub fn is_down(&self) -> bool {
        *lock(&self.consecutive_failures) >= DOWN_AFTER
    }

    /// Resolves the next time a call to this service succeeds after it was down.
    pub async fn recovered(&self) {
        self.recovered.notified().await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static SERVICES: LazyLock<Mutex<HashMap<&'static str, Arc<Dependency>>>> =
    LazyLock::new(Default::default);

/// The health record of `service` (created on first use).
pub fn dependency(service: &'static str) -> Arc<Dependency> {
    lock(&SERVICES).entry(service).or_default().clone()
}

/// Whether `service` is currently down.
pub fn is_down(service: &'static str) -> bool {
    lock(&SERVICES).get(service).is_some_and(|d| d.is_down())
}

/// What one call to `service` told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// It answered (success, or an error about the request itself).
    Answered,
    /// It failed in a way that says nothing about our request (5xx, timeout, throttling).
    Unavailable,
}

/// Records a call; flips the service's state and its gauge when it changes.
pub fn record(service: &'static str, result: CallResult) {
    let dep = dependency(service);
    let (was_down, now_down) = {
        let mut failures = lock(&dep.consecutive_failures);
        let was_down = *failures >= DOWN_AFTER;
        match result {
            CallResult::Answered => *failures = 0,
            CallResult::Unavailable => *failures = failures.saturating_add(1),
        }
        (was_down, *failures >= DOWN_AFTER)
    };
    if was_down != now_down {
        gauge!(m::DEPENDENCY_UP, "service" => service).set(if now_down { 0.0 } else { 1.0 });
        if now_down {
            tracing::error!(
                service,
                "dependency unavailable: holding messages until it answers"
            );
        } else {
            tracing::info!(service, "dependency answers again");
            dep.recovered.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn down_after_consecutive_failures_up_on_first_answer() {
        const S: &str = "test-dependency-a";
        for _ in 0..DOWN_AFTER - 1 {
            record(S, CallResult::Unavailable);
        }
        assert!(!is_down(S));
        record(S, CallResult::Answered);
        for _ in 0..DOWN_AFTER - 1 {
            record(S, CallResult::Unavailable);
        }
        assert!(!is_down(S), "an answer in between resets the count");
        record(S, CallResult::Unavailable);
        assert!(is_down(S));
        let dep = dependency(S);
        let woken = tokio::spawn(async move { dep.recovered().await });
        tokio::task::yield_now().await;
        record(S, CallResult::Answered);
        tokio::time::timeout(std::time::Duration::from_secs(5), woken)
            .await
            .expect("waiters are woken on recovery")
            .unwrap();
        assert!(!is_down(S));
    }
}
