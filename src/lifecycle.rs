//! Process-wide state the admin endpoints and the shutdown path read: are we draining,
//! how much queue work is in flight, are the actors alive.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    actors_running: AtomicBool,
    in_flight: AtomicUsize,
}

impl Lifecycle {
    /// Stop taking new work (SIGTERM); readiness turns false.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
    pub fn set_actors_running(&self, running: bool) {
        self.actors_running.store(running, Ordering::SeqCst);
    }
    pub fn actors_running(&self) -> bool {
        self.actors_running.load(Ordering::SeqCst)
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
}
