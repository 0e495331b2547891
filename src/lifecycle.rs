//! Process-wide state the admin endpoints and the shutdown path read: are we draining,
//! how much queue work is in flight, which messages we hold (to hand back if we stop
//! first), and whether the actor graph is whole and healthy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ports::Queue;

/// Held messages, by a local id: the queue and receipt to hand them back with.
type Held = Mutex<HashMap<u64, (Arc<dyn Queue>, String)>>;

#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    drain_started: tokio::sync::Notify,
    in_flight: AtomicUsize,
    receiving: AtomicUsize,
    held: Arc<Held>,
    next_held: AtomicU64,
    /// Unix milliseconds of the supervisor's last check.
    supervisor_beat_ms: AtomicU64,
    /// Every supervised actor is running.
    graph_whole: AtomicBool,
    /// Why the process is unhealthy (an actor past its restart budget), if it is.
    unhealthy: Mutex<Option<String>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("draining", &self.is_draining())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Lifecycle {
    /// Stop taking new work (SIGTERM); readiness turns false.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.drain_started.notify_waiters();
    }
    /// Resolves once a drain has started (at once if it already has).
    pub async fn until_draining(&self) {
        loop {
            let started = self.drain_started.notified();
            if self.is_draining() {
                return;
            }
            started.await;
        }
    }
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Queue messages received and not yet deleted, retried or dead-lettered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
    pub fn add_in_flight(&self, n: usize) {
        self.in_flight.fetch_add(n, Ordering::SeqCst);
    }
    pub fn done_in_flight(&self, n: usize) {
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
    }

    /// Marks a long poll in progress until the guard drops: a drain waits for it to
    /// return rather than abandon it (an abandoned poll can still be handed messages).
    pub fn receiving(&self) -> Receiving<'_> {
        self.receiving.fetch_add(1, Ordering::SeqCst);
        Receiving(self)
    }
    pub fn receives_in_progress(&self) -> usize {
        self.receiving.load(Ordering::SeqCst)
    }

    /// Remembers a received message until the guard drops, so [`Lifecycle::release_held`]
    /// can hand it back if the process stops first.
    pub fn hold(&self, queue: Arc<dyn Queue>, receipt: String) -> HeldMessage {
        let id = self.next_held.fetch_add(1, Ordering::SeqCst);
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (queue, receipt));
        HeldMessage {
            id,
            held: self.held.clone(),
        }
    }

    /// Hands every message still held back to its queue, visible at once, so another
    /// replica takes it now rather than after its visibility timeout. Answers how many.
    pub async fn release_held(&self) -> usize {
        let held: Vec<(Arc<dyn Queue>, String)> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, v)| v)
            .collect();
        let count = held.len();
        for (queue, receipt) in held {
            if let Err(e) = queue.set_visibility(&receipt, Duration::ZERO).await {
                tracing::warn!(error = %e, "could not hand a message back on exit; it returns after its visibility timeout");
            }
        }
        count
    }

    /// The supervisor checked its children just now.
    pub fn supervisor_beat(&self) {
        self.supervisor_beat_ms
            .store(unix_millis(), Ordering::SeqCst);
    }
    /// How long since the supervisor last checked its children (None: never).
    pub fn since_supervisor_beat(&self) -> Option<Duration> {
        match self.supervisor_beat_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(Duration::from_millis(unix_millis().saturating_sub(ms))),
        }
    }

    pub fn set_graph_whole(&self, whole: bool) {
        self.graph_whole.store(whole, Ordering::SeqCst);
    }
    pub fn graph_whole(&self) -> bool {
        self.graph_whole.load(Ordering::SeqCst)
    }

    pub fn set_unhealthy(&self, why: Option<String>) {
        *self.unhealthy.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }
    pub fn unhealthy(&self) -> Option<String> {
        self.unhealthy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// See [`Lifecycle::receiving`].
pub struct Receiving<'a>(&'a Lifecycle);

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::SeqCst);
    }
}

/// See [`Lifecycle::hold`].
pub struct HeldMessage {
    id: u64,
    held: Arc<Held>,
}

impl Drop for HeldMessage {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}
