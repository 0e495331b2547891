//! waconnect: routes customers' WhatsApp conversations (AWS End User Messaging Social) to
//! Amazon Connect chat and back.
//!
//! - [`domain`]: the payloads (EUM/Meta webhooks, Connect chat items, WhatsApp bodies),
//!   pure and I/O-free.
//! - [`ports`]: the traits every external system sits behind; [`adapters`] implement
//!   them on the AWS SDK clients and in-process for local mode.
//! - [`actors`]: the actor graph (intake, conversations, Connect upload, WhatsApp send,
//!   supervisor).
//! - [`sim`]: the protocol-faithful simulator of Connect, Connect Participant and EUM.

pub mod actors;
pub mod adapters;
pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod lifecycle;
pub mod loadtest;
pub mod media;
pub mod metrics;
pub mod modes;
pub mod ports;
pub mod sim;
pub mod supervision;
