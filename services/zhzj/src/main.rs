//! The zhzj binary: one process that runs every role for a single office (`up`), or one role of a
//! distributed deployment (`run`), plus the operator commands (`rebuild`, `status`) and the
//! benchmarks (`bench`).

mod admin;
mod assess_cli;
mod cli;
mod connections;
mod demo_loader;
mod keys;
mod ledger_cli;
mod org_cli;
mod private_files;
mod roles;
mod trust_cli;

use std::sync::OnceLock;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Commands};

/// The allocator. The command path allocates many small, short-lived buffers (JSON bodies,
/// headers, envelopes); with mimalloc `zhzj bench commits` measured the service about 10 % faster
/// than with glibc's allocator (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process and what it starts (its nats-server).
/// Where the kernel gives them to every process (`always`, as on this project's benchmark
/// machine), the first touch of fresh memory zeroes a whole 2 MiB page: the year-end workbook
/// of 100,000 cases spent a fifth of its time there (`perf`: `clear_page_erms`) and took 5.5 s
/// instead of 6.8 s without them, and the write path was no slower (BENCHMARKS.md). A kernel
/// without the switch keeps its setting; nothing else depends on it.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// Sets up logging once for the process; `RUST_LOG` overrides the default level.
fn init_telemetry(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_target(false)
        // Logs on stderr, so that stdout carries only what a command prints (replies, tables).
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The process's Prometheus recorder, installed once at start.
static METRICS: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();

/// The handle `/metrics` renders, if the recorder could be installed.
pub fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    METRICS.get().cloned()
}

/// Installs the Prometheus recorder, with latency histograms in buckets.
fn init_metrics() {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    const BUCKETS: [f64; 14] = [
        0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
    ];
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        .and_then(PrometheusBuilder::install_recorder);
    match installed {
        Ok(handle) => {
            let _ = METRICS.set(handle);
        }
        Err(e) => tracing::warn!(error = %e, "metrics disabled"),
    }
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    private_files::private_by_default();
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let mut runtime = if cli.command.single_threaded() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cli))
}

/// Runs one subcommand.
async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    // Benchmarks print their own figures; per-command logging would only slow them down.
    let quiet = matches!(cli.command, Commands::Bench(_));
    init_telemetry(if quiet {
        "warn,sqlx=error"
    } else {
        "info,async_nats=warn,sqlx=warn"
    });
    init_metrics();
    match cli.command {
        Commands::Up(args) => roles::up(args).await?,
        Commands::User(args) => admin::user(args).await?,
        Commands::Run(args) => roles::run_role(args).await?,
        Commands::Rebuild(args) => admin::rebuild(args).await?,
        Commands::Status(options) => return admin::status(options).await,
        // A refused command is an answer, not a failure of zhzj: exit 1 without an error report.
        Commands::Command(args) => return admin::send_command(args).await,
        Commands::Import(args) => return ledger_cli::import(args).await,
        Commands::Export(args) => return ledger_cli::export(args).await,
        Commands::Org(cli::OrgAction::Export(args)) => return org_cli::export(args).await,
        Commands::Org(cli::OrgAction::Import(args)) => return org_cli::import(args).await,
        Commands::Assess(args) => assess_cli::assess(args).await?,
        Commands::Checklist(options) => admin::print_checklist(options).await?,
        Commands::Bench(args) => zhzj_bench::run(args).await.context("benchmark failed")?,
        Commands::NatsCredentials(args) => trust_cli::nats_credentials(&args)?,
        Commands::Log(cli::LogAction::Init(options)) => keys::log_init(options).await?,
        Commands::Keys(cli::KeysAction::NewMasterKey { path }) => keys::new_master_key(&path)?,
        Commands::Keys(cli::KeysAction::Rotate(args)) => {
            keys::rotate_master_key(args.options, &args.new_master_key_file).await?;
        }
        Commands::Verify(args) => return trust_cli::verify(args).await,
        Commands::Erase(args) => return admin::erase(args).await,
        Commands::Retention(args) => return admin::retention(args).await,
    }
    Ok(std::process::ExitCode::SUCCESS)
}
