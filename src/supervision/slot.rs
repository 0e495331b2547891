//! A supervised actor's address as its users hold it: a slot the supervisor refills when
//! it restarts the actor, so every holder reaches the new incarnation on its next send.
//! Work that was in the dead incarnation's mailbox fails with a mailbox error, which the
//! retry policy treats as transient.

use std::sync::{Arc, RwLock};

use actix::{Actor, Addr};

use crate::ports::{ErrorKind, PortError};

pub struct Slot<A: Actor> {
    name: &'static str,
    addr: Arc<RwLock<Option<Addr<A>>>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            addr: self.addr.clone(),
        }
    }
}

impl<A: Actor> Slot<A> {
    pub fn empty(name: &'static str) -> Self {
        Self {
            name,
            addr: Arc::new(RwLock::new(None)),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current incarnation, if one is running.
    pub fn get(&self) -> Result<Addr<A>, PortError> {
        self.addr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(Addr::connected)
            .ok_or_else(|| unavailable(self.name, "not running (being restarted)"))
    }

    pub fn is_alive(&self) -> bool {
        self.get().is_ok()
    }

    /// Puts a new incarnation in the slot.
    pub fn set(&self, addr: Addr<A>) {
        *self.addr.write().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }
}

/// A supervised actor that did not answer (dead, restarted, or not started yet).
pub fn unavailable(actor: &'static str, why: impl std::fmt::Display) -> PortError {
    PortError::new(ErrorKind::Transient, "actor", actor, why.to_string())
}
