//! Supervision plumbing: [`Probe`]s that let the supervisor see whether an actor has work
//! and makes progress, and [`Slot`]s through which everyone reaches the current
//! incarnation of a supervised actor. The supervisor itself is an actor
//! (`actors::supervisor`).

mod probe;
mod slot;

pub use probe::{suffer, Busy, Fault, Probe, Waiting};
pub use slot::{unavailable, Slot};
