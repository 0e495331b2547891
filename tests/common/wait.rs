//! Waiting for a condition with a deadline ([`wait_for`], [`within`]): polling, and the
//! last observed state in the failure message. A waiting deadline, not a timing assertion.

use std::future::Future;
use std::time::{Duration, Instant};

use super::*;

/// Default deadline for "something eventually happens" waits in scenarios.
pub const FLOW_DEADLINE: Duration = Duration::from_secs(60);

/// What a [`wait_for`] condition may return: `true`/`Some(v)`/`Ok(v)` = done; otherwise the
/// observed state (`Err(description)` gives the best failure message).
pub trait Probe {
    type Out;
    fn into_outcome(self) -> Result<Self::Out, String>;
}

impl Probe for bool {
    type Out = ();
    fn into_outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".into())
        }
    }
}

impl<T> Probe for Option<T> {
    type Out = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T> Probe for Result<T, String> {
    type Out = T;
    fn into_outcome(self) -> Result<T, String> {
        self
    }
}

/// Polls `f` every 100 ms until it yields true/Some/Ok; on `deadline` panics naming `what`
/// and the last observed state. A waiting deadline, not a timing assertion.
pub async fn wait_for<P, F>(what: &str, deadline: Duration, mut f: F) -> P::Out
where
    P: Probe,
    F: AsyncFnMut() -> P,
{
    let start = Instant::now();
    loop {
        match f().await.into_outcome() {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() >= deadline {
                    panic!(
                        "timed out after {deadline:?} waiting for {what}; last observed: {}",
                        truncate(&state, 4000)
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a future with a deadline, panicking with `what` on timeout.
pub async fn within<T>(what: &str, deadline: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {deadline:?}: {what}"),
    }
}
