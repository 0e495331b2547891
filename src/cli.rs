//! The command line: `waconnect run | sim | local | loadtest`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{BehaviourSettings, RunSettings};
use crate::sim::SimArgs;

#[derive(Debug, Parser)]
#[command(
    name = "waconnect",
    version,
    about = "Routes WhatsApp conversations to Amazon Connect chat and back"
)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, env = "WACONNECT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start-up: the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router in production: SQS, DynamoDB, Amazon Connect and EUM Social.
    Run(RunArgs),
    /// Run the simulator of Connect, Connect Participant and EUM Social alone.
    Sim(SimArgs),
    /// Run router and simulator in one process, with no AWS account and no network.
    Local(LocalArgs),
    /// Load-test one actor or the whole graph (loopback only) and print its figures.
    Loadtest(crate::loadtest::LoadtestArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML file with any of the settings below (file keys are the flag names with `_`).
    #[arg(long, env = "WACONNECT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Admin HTTP address: /metrics, /healthz, /readyz.
    #[arg(long, env = "WACONNECT_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    #[command(flatten)]
    pub settings: RunSettings,
}

#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// Where the simulator listens (its control API and the AWS endpoints the router calls).
    #[arg(long, env = "WACONNECT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Admin HTTP address: /metrics, /healthz, /readyz.
    #[arg(long, env = "WACONNECT_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// Directory for the embedded session store.
    #[arg(long, env = "WACONNECT_DATA_DIR", default_value = ".waconnect")]
    pub data_dir: PathBuf,
    /// How many WhatsApp business numbers the simulated business owns; chats of every
    /// number start in the local contact flow, replies leave from the number written to.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=crate::sim::MAX_BUSINESS_NUMBERS as i64))]
    pub business_numbers: u16,
    #[command(flatten)]
    pub behaviour: BehaviourSettings,
}
