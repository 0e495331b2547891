use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use waconnect::cli::{Cli, Command, LogFormat};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // Actors live on actix's arbiter; SDK calls, HTTP servers and other spawned tasks
    // use a multi-threaded tokio runtime underneath.
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("cannot build the tokio runtime")
    });
    let result = system.block_on(async move {
        match cli.command {
            Command::Run(args) => waconnect::modes::run(args).await,
            Command::Sim(args) => waconnect::modes::sim(args).await,
            Command::Local(args) => waconnect::modes::local(args).await,
            Command::Loadtest(args) => waconnect::loadtest::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("waconnect: {e}");
            ExitCode::from(2)
        }
    }
}
