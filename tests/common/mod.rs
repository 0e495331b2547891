//! End-to-end test harness shared by every `tests/e2e_*.rs` file.
//!
//! * AWS side (SQS, SNS, DynamoDB) is a real moto server started by `./scripts/test.sh`
//!   and reached through the real AWS SDK clients ([`Resources`]).
//! * The simulator (`waconnect sim`, playing Connect, Connect Participant, EUM Social, the
//!   customers and the agents) and the router (`waconnect run`) are the real binary, spawned
//!   as child processes ([`Sim`], [`Router`]) and killed on drop.
//! * Logs of each test go to `.test-logs/<test name>/{sim,router}.log`.
//!
//! One file per concern, everything re-exported here (tests `use common::*`):
//!
//! * `aws.rs`: moto endpoint, SDK config, [`Resources`] (queues, topics, tables of a test);
//! * `process.rs`: spawning and watching the `waconnect` binary;
//! * `sim.rs`: [`Sim`], the simulator process and its control-API client;
//! * `router.rs`: [`Router`], the router process (start, SIGTERM, SIGKILL, restart, log);
//! * `wait.rs`: [`wait_for`] and [`within`];
//! * `world.rs`: scenario helpers: a whole [`World`], chat/inbox readers, fixtures;
//! * `traffic.rs`: load for the fault and replica scenarios, and its tally;
//! * `fault_proxy.rs`: the tests' own HTTP fault proxy (5xx, resets, lost answers, delays).
#![allow(dead_code)]

mod aws;
pub mod fault_proxy;
mod process;
mod router;
mod sim;
pub mod traffic;
mod wait;
mod world;

// Each test file uses its own part of the harness.
#[allow(unused_imports)]
pub use {aws::*, process::*, router::*, sim::*, wait::*, world::*};
