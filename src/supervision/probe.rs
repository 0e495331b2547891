//! What the supervisor can see of an actor: whether it has work, whether it is making
//! progress, and whether its waits are deliberate. Modelled on quickwit's actors: a
//! progress counter bumped whenever a piece of work finishes, and "protected zones" for
//! waits that are not the actor's fault (backoff, pacing, a downstream actor's reply).
//!
//! An actor is *stuck* when it has work that is not in a protected zone and its progress
//! counter has not moved for the supervisor's `stuck_after`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Shared between an actor (which records) and the supervisor (which reads and cancels).
#[derive(Debug)]
pub struct Probe {
    pub actor: &'static str,
    progress: AtomicU64,
    busy: AtomicUsize,
    waiting: AtomicUsize,
    /// Cancels the work futures of the current incarnation when it is killed.
    cancel: Mutex<CancellationToken>,
}

impl Probe {
    pub fn new(actor: &'static str) -> Arc<Self> {
        Arc::new(Self {
            actor,
            progress: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            cancel: Mutex::new(CancellationToken::new()),
        })
    }

    /// Marks one piece of work as started; it is finished (and progress recorded) when
    /// the returned guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            probe: self.clone(),
        }
    }

    /// Marks a deliberate wait (backoff, pacing, waiting for another actor's answer)
    /// until the guard drops: it does not count as being stuck.
    pub fn waiting(self: &Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting {
            probe: self.clone(),
        }
    }

    /// Records progress without finishing a piece of work (e.g. one step of a long job).
    pub fn record_progress(&self) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }

    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::SeqCst)
    }

    /// Work that is neither finished nor in a protected zone.
    pub fn unprotected_work(&self) -> usize {
        let busy = self.busy.load(Ordering::SeqCst);
        busy.saturating_sub(self.waiting.load(Ordering::SeqCst))
    }

    pub fn busy_count(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// The token the current incarnation's work futures stop on.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Cancels every work future of the current incarnation and arms a fresh token for
    /// the next one.
    pub fn cancel_all(&self) {
        let mut token = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
        token.cancel();
        *token = CancellationToken::new();
    }
}

impl Probe {
    /// Runs `work` as one piece of this actor's work: busy until it ends, and ended early
    /// with `cancelled()` if the supervisor kills this incarnation.
    pub fn track<T>(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = T>,
        cancelled: impl FnOnce() -> T,
    ) -> impl std::future::Future<Output = T> {
        let busy = self.busy();
        let token = self.cancellation();
        async move {
            let _busy = busy;
            tokio::select! {
                result = work => result,
                _ = token.cancelled() => cancelled(),
            }
        }
    }
}

/// A fault a test makes an actor suffer (`WACONNECT_FAULT_HOOKS=1` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, actix::Message)]
#[rtype(result = "()")]
pub enum Fault {
    /// Panic in the handler: the actor dies.
    Panic,
    /// Take a piece of work that never finishes and stop handling messages: the actor is
    /// alive but stuck.
    Hang,
}

/// How every supervised actor suffers a [`Fault`].
pub fn suffer<A>(fault: Fault, probe: &Arc<Probe>, act: &mut A, ctx: &mut actix::Context<A>)
where
    A: actix::Actor<Context = actix::Context<A>>,
{
    use actix::{ActorFutureExt, AsyncContext, WrapFuture};
    tracing::warn!(actor = probe.actor, ?fault, "test fault hook");
    match fault {
        Fault::Panic => panic!("test fault hook: {} panics", probe.actor),
        Fault::Hang => {
            let busy = probe.busy();
            ctx.wait(
                async move {
                    let _busy = busy;
                    std::future::pending::<()>().await
                }
                .into_actor(act)
                .map(|_, _, _| ()),
            );
        }
    }
}

/// See [`Probe::busy`].
#[derive(Debug)]
pub struct Busy {
    probe: Arc<Probe>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.probe.busy.fetch_sub(1, Ordering::SeqCst);
        self.probe.progress.fetch_add(1, Ordering::SeqCst);
    }
}

/// See [`Probe::waiting`].
#[derive(Debug)]
pub struct Waiting {
    probe: Arc<Probe>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.probe.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_counts_until_finished_and_waits_are_protected() {
        let p = Probe::new("t");
        let a = p.busy();
        let b = p.busy();
        assert_eq!(p.unprotected_work(), 2);
        let w = p.waiting();
        assert_eq!(p.unprotected_work(), 1);
        drop(w);
        drop(a);
        assert_eq!((p.unprotected_work(), p.progress()), (1, 1));
        drop(b);
        assert_eq!((p.busy_count(), p.progress()), (0, 2));
    }

    #[test]
    fn cancel_all_cancels_old_work_only() {
        let p = Probe::new("t");
        let old = p.cancellation();
        p.cancel_all();
        assert!(old.is_cancelled());
        assert!(!p.cancellation().is_cancelled());
    }
}
