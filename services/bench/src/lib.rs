//! Benchmarks. Each prints its figure beside a baseline measured in the same run on the same
//! machine, against a nats-server it starts itself (on a free port, in a temp dir).

mod assess;
mod catchup;
mod commits;
mod common;
mod forwarder;
mod http;
mod load;
mod logins;
mod registrations;
mod verify;

use std::path::PathBuf;

use zhzj_store::{EventLog, LogConfig};

use zhzj_local_nats::LocalNats;
use zhzj_trust::nats_access::{ClientCredentials, NatsRole, credentials_dir, ensure_credentials};

/// `zhzj bench <benchmark>`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub benchmark: Benchmark,
}

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Benchmark {
    /// Commits through the cases service vs raw JetStream publishes of the same payloads.
    Commits {
        /// Cases to spread the commits over.
        #[arg(long, default_value_t = 10_000)]
        cases: usize,
        /// Commits to time (after the cases are registered).
        #[arg(long, default_value_t = 100_000)]
        commits: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 32)]
        writers: usize,
    },
    /// Load time of a case with many events: snapshot get vs raw get vs full replay.
    Load {
        /// Events on the case.
        #[arg(long, default_value_t = 50)]
        events: usize,
        /// Loads to time.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
    },
    /// Signed-in users' reads during a flood of bad logins (hashing unbounded, bounded, and with
    /// the lockout), and a script of 200 wrong passwords against one account.
    Logins {
        /// Seconds each phase runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent clients sending bad logins.
        #[arg(long, default_value_t = 64)]
        flooders: usize,
        /// Signed-in users reading the checklist, one request at a time each.
        #[arg(long, default_value_t = 4)]
        readers: usize,
    },
    /// HTTP writes through the gateway vs the same commands straight to the cases service.
    Http {
        /// Commands to time on each path.
        #[arg(long, default_value_t = 20_000)]
        commands: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Read store: sqlite (a temp file) or a postgres:// URL of an existing server (a fresh
        /// database is created on it and dropped after).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// Registrations through the cases service with the petitioner's personal data sealed (a
    /// data key of their own in the key bucket) vs the same in plaintext.
    Registrations {
        /// Registrations to time on each path.
        #[arg(long, default_value_t = 40_000)]
        count: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 32)]
        writers: usize,
        /// Rounds: each path runs its share of `count` once per round, the order alternating, so
        /// that a slow moment of the machine falls on both.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// The year-end assessment and its XLSX export over a large archive (written straight into
    /// SQLite) vs reading and decoding the same archive.
    Assess {
        /// Cases, 20 events each.
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        /// Write the SQLite file into this directory and keep it, for a closer look (default:
        /// a temporary directory, removed after); a file kept there by an earlier run (with the
        /// same --cases) is measured again instead of written anew.
        #[arg(long)]
        keep_in: Option<PathBuf>,
    },
    /// The reference responder of the `commits` benchmark, which starts it: appends prepared
    /// commits and replies, deciding nothing.
    #[command(hide = true)]
    Forwarder {
        /// The NATS server to answer on.
        #[arg(long)]
        nats_url: String,
        /// The NKey seed file it connects with.
        #[arg(long)]
        nkey: PathBuf,
    },
    /// Projection catch-up into the checklist view vs raw multi-row inserts, then a rebuild.
    Catchup {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Cases they belong to.
        #[arg(long, default_value_t = 10_000)]
        cases: usize,
        /// Read store: sqlite (a temp file) or a postgres:// URL of an existing server (a fresh
        /// database is created on it and dropped after).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// `zhzj verify` over a signed, chained log vs reading the same log with nothing checked.
    Verify {
        /// Events (one commit each) in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Cases they belong to.
        #[arg(long, default_value_t = 10_000)]
        cases: usize,
    },
}

impl BenchArgs {
    /// Whether it runs the commits benchmark's reference responder, which runs on one thread as
    /// the command services do.
    pub fn is_forwarder(&self) -> bool {
        matches!(self.benchmark, Benchmark::Forwarder { .. })
    }
}

use crate::catchup::*;
use crate::commits::*;
use crate::http::*;
use crate::load::*;
use crate::registrations::*;
use crate::verify::*;

pub(crate) const BENCH_PASSWORD: &str = "Xiamen-load-2026";
/// Runs the chosen benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.benchmark {
        // No log: the assessment reads the archive.
        Benchmark::Assess { cases, keep_in } => {
            return crate::assess::run(cases, keep_in.as_deref()).await;
        }
        // Started by the commits benchmark, against its server.
        Benchmark::Forwarder { nats_url, nkey } => {
            return crate::forwarder::serve(&nats_url, &nkey).await;
        }
        _ => {}
    }
    let dir = tempfile::tempdir()?;
    // As deployed: the server admits each role with its own NKey; this process plays the
    // gateway and the raw writer with the admin's.
    let credentials = credentials_dir(dir.path());
    let authorization = ensure_credentials(&credentials)?;
    let admin = ClientCredentials::of_role(&credentials, NatsRole::Admin);
    let nats = LocalNats::start(dir.path(), &authorization, &admin).await?;
    let client = admin
        .apply(async_nats::ConnectOptions::new())
        .await?
        .connect(nats.url())
        .await?;
    let log = EventLog::open(client.clone(), &LogConfig::default()).await?;
    println!(
        "nats-server at {} (store in a temp dir; syncs every commit: {})",
        nats.url(),
        nats.syncs_every_commit
    );
    let result = match args.benchmark {
        Benchmark::Commits {
            cases,
            commits,
            writers,
        } => commits_bench(&nats, &credentials, &client, &log, cases, commits, writers).await,
        Benchmark::Load { events, samples } => load_bench(&log, events, samples).await,
        Benchmark::Http {
            commands,
            clients,
            database,
        } => http_bench(&client, &log, commands, clients, &database).await,
        Benchmark::Catchup {
            events,
            cases,
            database,
        } => catchup_bench(&client, &log, events, cases, &database).await,
        Benchmark::Verify { events, cases } => verify_bench(&client, &log, events, cases).await,
        Benchmark::Registrations {
            count,
            writers,
            rounds,
        } => registrations_bench(&client, &log, count, writers, rounds).await,
        Benchmark::Logins {
            seconds,
            flooders,
            readers,
        } => crate::logins::run(&client, &log, seconds, flooders, readers).await,
        Benchmark::Assess { .. } | Benchmark::Forwarder { .. } => Ok(()),
    };
    nats.stop().await?;
    result
}
