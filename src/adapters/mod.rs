//! Implementations of the ports: AWS SDK clients, and in-process ones for local mode.

pub mod aws;
pub mod http;
pub mod local;
