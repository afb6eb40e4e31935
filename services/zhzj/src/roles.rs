//! Wiring: connects to NATS and the read store, and runs the roles until a shutdown signal.
//!
//! Shutdown is soft first (stop taking commands, answer those in flight, let projections finish
//! their batch) and hard after a grace period.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zhzj_cases::LifecycleSettings;
use zhzj_cases::{CasesService, ServiceRole};
use zhzj_deadlines::Limits;
use zhzj_gateway::{Accounts, AppState, GatewayConfig, GatewayParts, NewUser};
use zhzj_projector::{Projection, ProjectorSettings};
use zhzj_proto::events::ReviewLevel;
use zhzj_store::{EventLog, LogConfig, ReadStore, SystemClock, sql::sqlite_url};

use crate::cli::{
    CommandArgs, CommonOptions, HttpOptions, RebuildArgs, ReviewLevelArg, Role, RunArgs, UpArgs,
    UserAction, UserArgs,
};
use crate::local_nats::{LocalNats, http_url_file, url_file};

/// How long each stage of a shutdown (HTTP requests, then in-flight commands and projection
/// batches) may take after a shutdown signal before it is cut off. With the final flush and the
/// read store's close bounded too, a process exits within 25 s of SIGTERM whatever is down
/// (README, "Operations").
const GRACE: Duration = Duration::from_secs(10);

/// How long the last flush to NATS and the read store's close may take each.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The read-store URL the options name.
pub fn database_url(options: &CommonOptions) -> String {
    options
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&options.data_dir.join("zhzj.sqlite")))
}

/// The NATS URL the options name, or the one a running `zhzj up` wrote into the data dir.
fn nats_url(options: &CommonOptions) -> anyhow::Result<String> {
    if let Some(url) = &options.nats_url {
        return Ok(url.clone());
    }
    std::fs::read_to_string(url_file(&options.data_dir))
        .map(|s| s.trim().to_owned())
        .with_context(|| {
            format!(
                "no --nats-url given and no running `zhzj up` found in {}",
                options.data_dir.display()
            )
        })
}

/// Connects to NATS at `url` (one URL or a cluster's comma-separated list).
pub async fn connect_nats(
    url: &str,
    options: &CommonOptions,
) -> anyhow::Result<async_nats::Client> {
    let settings = zhzj_store::nats::NatsConnectOptions {
        name: "zhzj".to_owned(),
        request_timeout: Duration::from_millis(options.nats_request_timeout_ms.max(1)),
    };
    Ok(zhzj_store::nats::connect(url, &settings).await?)
}

/// Connections the roles need.
pub struct Connections {
    /// The NATS client.
    pub client: async_nats::Client,
    /// The event log.
    pub log: EventLog,
    /// The read store; None for a process whose roles never read it (the command services),
    /// so that they start and serve while the database is down.
    pub store: Option<ReadStore>,
}

impl Connections {
    /// The read store, which the caller's role needs.
    fn store(&self) -> anyhow::Result<&ReadStore> {
        self.store
            .as_ref()
            .context("this process was started without the read store")
    }
}

/// Connects to NATS (opening or creating the stream) and to the read store (migrating it).
pub async fn connect(url: &str, options: &CommonOptions) -> anyhow::Result<Connections> {
    let mut conn = connect_log(url, options).await?;
    conn.store = Some(ReadStore::connect(&database_url(options)).await?);
    Ok(conn)
}

/// How long a starting process keeps trying to open the stream while JetStream does not answer
/// (a cluster still electing its leaders) before it gives up.
const OPEN_LOG_PATIENCE: Duration = Duration::from_secs(30);

/// Opens the stream, trying again while JetStream is unavailable; a misconfigured stream fails
/// at once.
async fn open_log(client: &async_nats::Client, config: &LogConfig) -> anyhow::Result<EventLog> {
    let deadline = tokio::time::Instant::now() + OPEN_LOG_PATIENCE;
    loop {
        match EventLog::open(client.clone(), config).await {
            Ok(log) => return Ok(log),
            Err(e @ zhzj_store::LogError::Unavailable(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "the event stream does not answer yet; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Connects to NATS and opens the stream, without the read store.
async fn connect_log(url: &str, options: &CommonOptions) -> anyhow::Result<Connections> {
    crate::private_files::private_data_dir(&options.data_dir)?;
    let client = connect_nats(url, options).await?;
    let config = LogConfig {
        replicas: options.stream_replicas,
        ..LogConfig::default()
    };
    let log = open_log(&client, &config).await?;
    Ok(Connections {
        client,
        log,
        store: None,
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// What a process runs besides its roles.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// HTTP settings, for the gateway role.
    pub http: Option<HttpOptions>,
    /// Load the demo once the roles run.
    pub demo: bool,
    /// Where to write the gateway's URL (`http.url`), for scripts and tests.
    pub data_dir: Option<std::path::PathBuf>,
    /// The bureau's settings.
    pub bureau: BureauSettings,
}

/// The bureau's own rules: its review chain (for the cases service) and its internal time limits
/// (for the projector).
#[derive(Debug, Clone, Default)]
pub struct BureauSettings {
    /// For the cases service.
    pub lifecycle: Arc<LifecycleSettings>,
    /// For the projector.
    pub projector: Arc<ProjectorSettings>,
}

impl BureauSettings {
    /// The settings the command line gives.
    pub fn from_options(options: &CommonOptions) -> anyhow::Result<Self> {
        let limits = Limits::parse(&options.internal_limits)
            .context("--internal-limits / ZHZJ_INTERNAL_LIMITS")?;
        let review_chain = options
            .review_chain
            .iter()
            .map(|level| match level {
                ReviewLevelArg::District => ReviewLevel::District,
                ReviewLevelArg::City => ReviewLevel::City,
            })
            .collect::<Vec<_>>();
        if review_chain.is_empty() {
            bail!("--review-chain / ZHZJ_REVIEW_CHAIN names no level");
        }
        Ok(Self {
            lifecycle: Arc::new(LifecycleSettings {
                review_chain,
                ..LifecycleSettings::default()
            }),
            projector: Arc::new(ProjectorSettings { limits }),
        })
    }
}

/// The gateway's settings from the command line.
fn gateway_config(http: &HttpOptions, bureau: &BureauSettings) -> GatewayConfig {
    GatewayConfig {
        limits: bureau.projector.limits.clone(),
        body_limit: http.body_limit,
        read_your_writes: Duration::from_millis(http.read_your_writes_ms),
        ready_max_lag: http.ready_max_lag,
        session_ttl: chrono::Duration::hours(http.session_hours),
        duplicate_rule: match http.duplicate_rule {
            crate::cli::DuplicateRuleArg::IdNumber => zhzj_gateway::DuplicateRule::IdNumber,
            crate::cli::DuplicateRuleArg::IdNumberOrNameTownCategory => {
                zhzj_gateway::DuplicateRule::IdNumberOrNameTownCategory
            }
        },
        ..GatewayConfig::default()
    }
}

/// The accounts of a read store.
pub fn accounts(store: &ReadStore) -> Accounts {
    Accounts::new(
        store.clone(),
        Arc::new(SystemClock),
        GatewayConfig::default().session_ttl,
    )
}

/// Tokens and trackers of an ordered shutdown: the front (HTTP, demo loading) stops first and
/// finishes its requests while the back (command services, projector) still answers them.
struct Tasks {
    front: CancellationToken,
    front_tracker: TaskTracker,
    back: CancellationToken,
    back_tracker: TaskTracker,
    /// Cancelled when a role stops on its own.
    stopped: CancellationToken,
}

/// Runs one role's tasks. A role that stops on its own (an error it cannot retry) cancels
/// `stopped`, so the whole process stops and its supervisor can restart it.
async fn spawn_role(
    tasks: &Tasks,
    role: Role,
    conn: &Connections,
    extras: &Extras,
) -> anyhow::Result<()> {
    let stopped = tasks.stopped.clone();
    match role {
        Role::Cases | Role::Campaign => {
            let service = CasesService::new(conn.log.clone(), Arc::new(SystemClock))
                .with_settings((*extras.bureau.lifecycle).clone());
            let (client, shutdown) = (conn.client.clone(), tasks.back.clone());
            let service_role = match role {
                Role::Campaign => ServiceRole::Campaign,
                _ => ServiceRole::Cases,
            };
            tasks.back_tracker.spawn(async move {
                if let Err(e) = zhzj_cases::serve_as(client, service, service_role, shutdown).await
                {
                    tracing::error!(error = %e, role = ?service_role, "command service stopped");
                    stopped.cancel();
                }
            });
        }
        Role::Projector => {
            for projection in Projection::ALL {
                let (log, store) = (conn.log.clone(), conn.store()?.clone());
                let (shutdown, stopped) = (tasks.back.clone(), stopped.clone());
                let settings = Arc::clone(&extras.bureau.projector);
                tasks.back_tracker.spawn(async move {
                    let run = zhzj_projector::run_with(log, store, projection, settings, shutdown);
                    if let Err(e) = run.await {
                        tracing::error!(projection = projection.name(), error = %e, "projection stopped");
                        stopped.cancel();
                    }
                });
            }
        }
        Role::Gateway => {
            let http = extras.http.clone().unwrap_or_else(default_http);
            let listener = tokio::net::TcpListener::bind(&http.listen)
                .await
                .with_context(|| {
                    format!("cannot listen on {} (--http / ZHZJ_HTTP)", http.listen)
                })?;
            let address = listener.local_addr()?;
            if let Some(dir) = &extras.data_dir {
                std::fs::write(http_url_file(dir), format!("http://{address}\n"))
                    .context("writing http.url")?;
            }
            let state = AppState::new(
                GatewayParts {
                    client: conn.client.clone(),
                    log: conn.log.clone(),
                    store: conn.store()?.clone(),
                    clock: Arc::new(SystemClock),
                    metrics: crate::metrics_handle(),
                    config: gateway_config(&http, &extras.bureau),
                },
                tasks.front.clone(),
            );
            let shutdown = tasks.front.clone();
            tasks.front_tracker.spawn(async move {
                if let Err(e) = zhzj_gateway::serve(listener, state, shutdown).await {
                    tracing::error!(error = %e, "HTTP gateway stopped");
                    stopped.cancel();
                }
            });
            tracing::info!(
                "HTTP gateway on http://{address}/ (API under /api/v1, OpenAPI at /api/v1/openapi.json)"
            );
        }
    }
    Ok(())
}

fn default_http() -> HttpOptions {
    use clap::Parser;
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        http: HttpOptions,
    }
    Defaults::parse_from(["zhzj"]).http
}

fn spawn_demo(tasks: &Tasks, conn: &Connections) {
    let Ok(store) = conn.store() else {
        tracing::error!("the demo needs the read store");
        tasks.stopped.cancel();
        return;
    };
    let (log, accounts) = (conn.log.clone(), accounts(store));
    let shutdown = tasks.front.clone();
    let stopped = tasks.stopped.clone();
    tasks.front_tracker.spawn(async move {
        tracing::info!("loading the demo (厦门市, about 300 cases)");
        match crate::demo_loader::load(&log, &accounts, &shutdown).await {
            Ok(report) => tracing::info!(
                directory_added = report.directory_added,
                cases_added = report.cases_added,
                cases_already_present = report.cases_present,
                campaign_added = report.campaign_added,
                accounts_added = report.accounts_added,
                "demo loaded; log in as admin / zhzj-demo-2026"
            ),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "demo loading failed");
                stopped.cancel();
            }
        }
    });
}

async fn run_until_signal(
    conn: &Connections,
    roles: &[Role],
    extras: &Extras,
) -> anyhow::Result<()> {
    let tasks = Tasks {
        front: CancellationToken::new(),
        front_tracker: TaskTracker::new(),
        back: CancellationToken::new(),
        back_tracker: TaskTracker::new(),
        stopped: CancellationToken::new(),
    };
    // Back first, so commands have someone to answer them when the front opens.
    let mut ordered = roles.to_vec();
    ordered.sort_by_key(|role| matches!(role, Role::Gateway));
    for role in ordered {
        if let Err(e) = spawn_role(&tasks, role, conn, extras).await {
            tasks.front.cancel();
            tasks.back.cancel();
            return Err(e);
        }
    }
    if extras.demo {
        spawn_demo(&tasks, conn);
    }
    tasks.front_tracker.close();
    tasks.back_tracker.close();
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down: finishing in-flight work"),
        () = tasks.stopped.cancelled() => tracing::error!("a role stopped; shutting down the rest"),
    }
    tasks.front.cancel();
    if tokio::time::timeout(GRACE, tasks.front_tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests did not finish within {GRACE:?}; stopping anyway");
    }
    if let Some(dir) = &extras.data_dir {
        // Missing is fine: not every role serves HTTP.
        let _ = std::fs::remove_file(http_url_file(dir));
    }
    tasks.back.cancel();
    if tokio::time::timeout(GRACE, tasks.back_tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("in-flight work did not finish within {GRACE:?}; stopping anyway");
    }
    // Both wait on what may be down: bounded, so that SIGTERM always ends the process.
    match tokio::time::timeout(CLOSE_TIMEOUT, conn.client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not flush NATS"),
        Err(_) => tracing::warn!("NATS did not take the last messages within {CLOSE_TIMEOUT:?}"),
    }
    if let Some(store) = &conn.store
        && tokio::time::timeout(CLOSE_TIMEOUT, store.close())
            .await
            .is_err()
    {
        tracing::warn!("the read store did not close within {CLOSE_TIMEOUT:?}");
    }
    if tasks.stopped.is_cancelled() {
        bail!("a role stopped on an error (see the log above)");
    }
    Ok(())
}

/// `zhzj up`: every role in one process.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let options = args.options;
    crate::private_files::private_data_dir(&options.data_dir)?;
    let local = match &options.nats_url {
        Some(_) => None,
        None => Some(LocalNats::start(&options.data_dir).await?),
    };
    let url = match &local {
        Some(local) => local.url().to_owned(),
        None => nats_url(&options)?,
    };
    if let Some(local) = &local {
        if local.syncs_every_commit {
            tracing::info!(%url, "local nats-server started; every commit is synced to disk before it is acknowledged");
        } else {
            tracing::warn!(%url, "local nats-server started (before 2.10): commits are acknowledged once written to the OS and synced to disk every 2 minutes; a power loss can lose the last 2 minutes");
        }
    }
    let result = async {
        let conn = connect(&url, &options).await?;
        tracing::info!(database = %database_url(&options), "zhzj is up; Ctrl-C stops it");
        let extras = Extras {
            http: Some(args.http),
            demo: args.demo,
            data_dir: Some(options.data_dir.clone()),
            bureau: BureauSettings::from_options(&options)?,
        };
        run_until_signal(
            &conn,
            &[Role::Cases, Role::Campaign, Role::Projector, Role::Gateway],
            &extras,
        )
        .await
    }
    .await;
    if let Some(local) = local {
        local.stop().await?;
    }
    result
}

/// `zhzj run <role>`. The command services never touch the read store, so they start and
/// serve without it.
pub async fn run_role(args: RunArgs) -> anyhow::Result<()> {
    let url = nats_url(&args.options)?;
    let conn = match args.role {
        Role::Cases | Role::Campaign => connect_log(&url, &args.options).await?,
        Role::Projector | Role::Gateway => connect(&url, &args.options).await?,
    };
    tracing::info!(role = ?args.role, "running");
    let extras = Extras {
        http: Some(args.http),
        demo: false,
        data_dir: Some(args.options.data_dir.clone()),
        bureau: BureauSettings::from_options(&args.options)?,
    };
    run_until_signal(&conn, &[args.role], &extras).await
}

/// `zhzj user add`.
pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    let UserAction::Add {
        username,
        password,
        display_name,
        roles,
        unit,
        leader,
        options,
    } = args.action;
    crate::private_files::private_data_dir(&options.data_dir)?;
    let store = ReadStore::connect(&database_url(&options)).await?;
    let user = NewUser {
        display_name: display_name.unwrap_or_else(|| username.clone()),
        username,
        password,
        roles,
        unit_id: unit,
        leader_id: leader,
    };
    accounts(&store).add_user(&user).await?;
    println!(
        "已创建用户 {} (角色: {})",
        user.username,
        user.roles.join(",")
    );
    store.close().await;
    Ok(())
}

/// `zhzj rebuild <projection>`.
pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let Some(projection) = Projection::parse(&args.projection) else {
        bail!(
            "unknown projection `{}`; choose one of archive, checklist, org, lifecycle",
            args.projection
        );
    };
    let url = nats_url(&args.options)?;
    let conn = connect(&url, &args.options).await?;
    let settings = BureauSettings::from_options(&args.options)?.projector;
    let report =
        zhzj_projector::rebuild_with(&conn.log, conn.store()?, projection, &settings).await?;
    println!(
        "rebuilt {}: {} messages to position {} in {:.2}s; generation {} is live",
        projection.name(),
        report.messages,
        report.position,
        report.elapsed.as_secs_f64(),
        report.generation
    );
    Ok(())
}

/// `zhzj status`: where each projection stands, and whether its account of the log adds up;
/// exit code 1 when a projection is missing positions.
pub async fn status(options: CommonOptions) -> anyhow::Result<std::process::ExitCode> {
    let url = nats_url(&options)?;
    let conn = connect(&url, &options).await?;
    let last = conn.log.last_position().await?;
    println!("log last position: {last}");
    println!(
        "{:<10} {:>10} {:>6} {:>10} {:>12} {:>10} {:>6} {:>8}",
        "projection", "position", "gen", "lag", "dead letters", "applied", "empty", "missing"
    );
    let statuses = zhzj_projector::status(&conn.log, conn.store()?).await?;
    for s in &statuses {
        let applied = s.applied.map_or("-".to_owned(), |n| n.to_string());
        println!(
            "{:<10} {:>10} {:>6} {:>10} {:>12} {:>10} {:>6} {:>8}",
            s.name,
            s.position,
            s.generation,
            s.lag,
            s.dead_letters,
            applied,
            s.empty_positions,
            s.missing
        );
    }
    let mut code = std::process::ExitCode::SUCCESS;
    let unreadable: Vec<u64> = statuses
        .iter()
        .flat_map(|s| s.unreadable_positions.iter().copied())
        .collect();
    if !unreadable.is_empty() {
        eprintln!(
            "ERROR: unreadable commits at log positions {unreadable:?}; their cases answer \
             corrupt_history until repaired with skip_unreadable_commits (README, Operations)."
        );
        code = std::process::ExitCode::FAILURE;
    }
    for s in statuses.iter().filter(|s| s.missing > 0) {
        eprintln!(
            "ERROR: projection {} is missing {} of the {} positions below its checkpoint; \
             its tables are incomplete. Run `zhzj rebuild {}`.",
            s.name, s.missing, s.position, s.name
        );
        code = std::process::ExitCode::FAILURE;
    }
    Ok(code)
}

/// `zhzj command '<json>'`: wraps the command in a request with a new command id and the actor,
/// sends it, prints the reply; exit code 1 when it is refused.
pub async fn send_command(args: CommandArgs) -> anyhow::Result<std::process::ExitCode> {
    let command: zhzj_proto::Command = serde_json::from_str(&args.command)
        .context("the command is not valid JSON for a command")?;
    let request = zhzj_proto::CommandRequest {
        command_id: uuid::Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: zhzj_proto::Actor {
            user_id: args.actor,
            roles: args.roles,
            unit_id: args.unit,
            leader_id: None,
        },
        expected_version: args.expected_version,
        unknown_outcome_retry: false,
        command,
    };
    let url = nats_url(&args.options)?;
    let client = connect_nats(&url, &args.options).await?;
    let reply = client
        .request(
            zhzj_proto::subjects::CASES_COMMANDS,
            serde_json::to_vec(&request)?.into(),
        )
        .await
        .context("no answer from the cases service")?;
    let reply: zhzj_proto::CommandReply = serde_json::from_slice(&reply.payload)?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(match reply {
        zhzj_proto::CommandReply::Ok(_) => std::process::ExitCode::SUCCESS,
        zhzj_proto::CommandReply::Error(_) => std::process::ExitCode::FAILURE,
    })
}

/// `zhzj checklist`: the checklist view as text.
pub async fn print_checklist(options: CommonOptions) -> anyhow::Result<()> {
    use sqlx::Row;
    let store = ReadStore::connect(&database_url(&options)).await?;
    let rows = sqlx::query(
        "SELECT case_number, matter, district_name, town_name, leader_name, lead_unit_name, \
         measures_done, measures_total, last_activity_at, version \
         FROM checklist_rows ORDER BY registered_at, case_id",
    )
    .fetch_all(store.pool())
    .await
    .context("no checklist yet: has the projector run?")?;
    println!("案件编号\t诉求\t区\t镇街\t包案领导\t责任单位\t措施完成\t最近动态\t版本");
    for row in rows {
        let text = |name: &str| -> String {
            row.try_get::<Option<String>, _>(name)
                .ok()
                .flatten()
                .unwrap_or_else(|| "-".into())
        };
        let done: i64 = row.try_get("measures_done")?;
        let total: i64 = row.try_get("measures_total")?;
        let version: i64 = row.try_get("version")?;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{done}/{total}\t{}\t{version}",
            text("case_number"),
            text("matter"),
            text("district_name"),
            text("town_name"),
            text("leader_name"),
            text("lead_unit_name"),
            text("last_activity_at"),
        );
    }
    Ok(())
}
