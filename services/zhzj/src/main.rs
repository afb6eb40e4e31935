//! The zhzj binary: one process that runs every role for a single office (`up`), or one role of a
//! distributed deployment (`run`), plus the operator commands (`rebuild`, `status`) and the
//! benchmarks (`bench`).

mod bench;
mod cli;
mod local_nats;
mod roles;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Commands};

/// Sets up logging once for the process; `RUST_LOG` overrides the default level.
fn init_telemetry(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_target(false)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    // Benchmarks print their own figures; per-command logging would only slow them down.
    let quiet = matches!(cli.command, Commands::Bench(_));
    init_telemetry(if quiet {
        "warn,sqlx=error"
    } else {
        "info,async_nats=warn,sqlx=warn"
    });
    match cli.command {
        Commands::Up(options) => roles::up(options).await?,
        Commands::Run(args) => roles::run_role(args).await?,
        Commands::Rebuild(args) => roles::rebuild(args).await?,
        Commands::Status(options) => roles::status(options).await?,
        // A refused command is an answer, not a failure of zhzj: exit 1 without an error report.
        Commands::Command(args) => return roles::send_command(args).await,
        Commands::Checklist(options) => roles::print_checklist(options).await?,
        Commands::Bench(args) => bench::run(args).await.context("benchmark failed")?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}
