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
use zhzj_gateway::{Accounts, AppState, GatewayConfig, GatewayParts};
use zhzj_projector::{Projection, ProjectorSettings};
use zhzj_proto::events::ReviewLevel;
use zhzj_store::{ReadStore, SystemClock};
use zhzj_trust::nats_access::{self, ClientCredentials, NatsRole};

use crate::cli::{CommonOptions, HttpOptions, ReviewLevelArg, Role, RunArgs, UpArgs};
use crate::connections::{Connections, connect, connect_log, database_url, nats_url};
use crate::keys::ensure_master_key;
use zhzj_local_nats::{LocalNats, http_url_file};

/// How long each stage of a shutdown (HTTP requests, then in-flight commands and projection
/// batches) may take after a shutdown signal before it is cut off. With the final flush and the
/// read store's close bounded too, a process exits within 25 s of SIGTERM whatever is down
/// (README, "Operations").
const GRACE: Duration = Duration::from_secs(10);

/// How long the last flush to NATS and the read store's close may take each.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the projector role waits at its start for the read store to take the projections'
/// tables before it starts anyway (see `spawn_projector`).
const PREPARE_WITHIN: Duration = Duration::from_secs(5);

/// The NATS role a zhzj role connects as.
fn nats_role(role: Role) -> NatsRole {
    match role {
        Role::Cases => NatsRole::Cases,
        Role::Campaign => NatsRole::Campaign,
        Role::Projector => NatsRole::Projector,
        Role::Gateway => NatsRole::Gateway,
    }
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
    /// Seconds between seals (the cases service).
    pub seal_interval_secs: u64,
}

/// The bureau's own rules: its review chain (for the cases service) and its internal time limits
/// (for the projector).
#[derive(Debug, Clone, Default)]
pub struct BureauSettings {
    /// For the cases service.
    pub lifecycle: Arc<LifecycleSettings>,
    /// For the projector.
    pub projector: Arc<ProjectorSettings>,
    /// For the supervision watch (escalation, warnings, notifications; beside the gateway).
    pub supervision: Arc<zhzj_supervision::SupervisionRules>,
    /// Seconds between the supervision watch's passes.
    pub escalation_interval_secs: u64,
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
            supervision: Arc::new(match &options.supervision_rules {
                Some(path) => zhzj_supervision::SupervisionRules::load(path)
                    .context("--supervision-rules / ZHZJ_SUPERVISION_RULES")?,
                None => zhzj_supervision::SupervisionRules::default(),
            }),
            escalation_interval_secs: options.escalation_interval_secs.max(1),
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
        accounts: zhzj_gateway::AccountSettings {
            session_ttl: chrono::Duration::hours(http.session_hours),
            idle_timeout: chrono::Duration::minutes(http.session_idle_minutes),
            password_policy: http.accounts.password_policy(),
            password_max_age: http
                .accounts
                .password_max_age_days
                .map(|days| chrono::Duration::days(i64::from(days))),
            lockout: zhzj_gateway::LockoutPolicy {
                max_failures_per_account: http.login_max_failures.max(1),
                max_failures_per_address: http.login_max_failures_per_address.max(1),
                window: chrono::Duration::minutes(http.login_lockout_minutes.max(1)),
            },
            ..zhzj_gateway::AccountSettings::default()
        },
        public_https: http
            .public_url
            .as_deref()
            .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://")),
        trust_forwarded_headers: http.trust_forwarded_headers,
        duplicate_rule: match http.duplicate_rule {
            crate::cli::DuplicateRuleArg::IdNumber => zhzj_gateway::DuplicateRule::IdNumber,
            crate::cli::DuplicateRuleArg::IdNumberOrNameTownCategory => {
                zhzj_gateway::DuplicateRule::IdNumberOrNameTownCategory
            }
        },
        duplicate_checks_per_minute: http.duplicate_checks_per_minute,
        ..GatewayConfig::default()
    }
}

/// The accounts of a read store, with `policy` for passwords, recording their changes in the log
/// through `journal`.
pub fn accounts(
    store: &ReadStore,
    journal: zhzj_gateway::AccountJournal,
    policy: zhzj_gateway::PasswordPolicy,
) -> Accounts {
    Accounts::new(
        store.clone(),
        Arc::new(SystemClock),
        zhzj_gateway::AccountSettings {
            password_policy: policy,
            ..zhzj_gateway::AccountSettings::default()
        },
        journal,
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
    match role {
        Role::Cases => spawn_command_service(tasks, ServiceRole::Cases, conn, extras).await,
        Role::Campaign => spawn_command_service(tasks, ServiceRole::Campaign, conn, extras).await,
        Role::Projector => spawn_projector(tasks, conn, extras).await,
        Role::Gateway => spawn_gateway(tasks, conn, extras).await,
    }
}

/// The `cases` or `campaign` command service; the `cases` one also answers the gateway's seal
/// requests and seals the log at intervals.
async fn spawn_command_service(
    tasks: &Tasks,
    service_role: ServiceRole,
    conn: &Connections,
    extras: &Extras,
) -> anyhow::Result<()> {
    let stopped = tasks.stopped.clone();
    let mut service = CasesService::new(conn.log.clone(), Arc::new(SystemClock))
        .with_settings((*extras.bureau.lifecycle).clone());
    if let Some(vault) = &conn.vault {
        service = service.with_vault(vault.clone());
    }
    let (client, shutdown) = (conn.client.clone(), tasks.back.clone());
    if let Some(sealer) = &conn.sealer {
        service = service.with_sealer(sealer.clone());
        if service_role == ServiceRole::Cases {
            // The cases service answers the gateway's seal requests and seals at intervals.
            let requests = zhzj_cases::sealing::spawn_seal_requests(
                client.clone(),
                sealer.clone(),
                shutdown.clone(),
            )
            .await?;
            tasks.back_tracker.spawn(async move {
                let _ = requests.await;
            });
            let interval = Duration::from_secs(extras.seal_interval_secs.max(1));
            tasks
                .back_tracker
                .spawn(sealer.clone().run_interval(interval, shutdown.clone()));
        }
    }
    tasks.back_tracker.spawn(async move {
        if let Err(e) = zhzj_cases::serve_as(client, service, service_role, shutdown).await {
            tracing::error!(error = %e, role = ?service_role, "command service stopped");
            stopped.cancel();
        }
    });
    Ok(())
}

/// The projector (one reader for every projection), once their tables exist: a gateway started
/// next in the same process then finds the views. A read store that is down is not waited for:
/// the projections make their tables when it is back.
async fn spawn_projector(tasks: &Tasks, conn: &Connections, extras: &Extras) -> anyhow::Result<()> {
    let stopped = tasks.stopped.clone();
    match tokio::time::timeout(PREPARE_WITHIN, zhzj_projector::prepare(conn.store()?)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the projections' tables could not be made yet"),
        Err(_) => tracing::warn!("the read store did not answer within {PREPARE_WITHIN:?}"),
    }
    let (log, store) = (conn.log.clone(), conn.store()?.clone());
    let shutdown = tasks.back.clone();
    let settings = Arc::clone(&extras.bureau.projector);
    tasks.back_tracker.spawn(async move {
        let run =
            zhzj_projector::run_together(log, store, Projection::ALL.to_vec(), settings, shutdown);
        if let Err(e) = run.await {
            tracing::error!(error = %e, "projector stopped");
            stopped.cancel();
        }
    });
    Ok(())
}

/// The HTTP gateway and its `/metrics` listener.
async fn spawn_gateway(tasks: &Tasks, conn: &Connections, extras: &Extras) -> anyhow::Result<()> {
    let stopped = tasks.stopped.clone();
    let http = extras.http.clone().unwrap_or_else(default_http);
    let listener = tokio::net::TcpListener::bind(&http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--http / ZHZJ_HTTP)", http.listen))?;
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
            vault: conn.vault.clone(),
        },
        tasks.front.clone(),
    );
    // Escalation of overdue supervision orders, early warnings and notifications.
    let watch = zhzj_supervision::Watch::new(
        conn.client.clone(),
        conn.store()?.clone(),
        Arc::new(SystemClock),
        Arc::clone(&extras.bureau.supervision),
    );
    tasks.front_tracker.spawn(watch.run(
        Duration::from_secs(extras.bureau.escalation_interval_secs),
        tasks.front.clone(),
    ));
    let log_end = conn.log.last_position().await.unwrap_or(0);
    let adopting = state.accounts().clone();
    let stop_adopting = tasks.front.clone();
    tasks.front_tracker.spawn(async move {
        adopting.adopt_when_caught_up(log_end, stop_adopting).await;
    });
    let metrics_listener = match &http.metrics_addr {
        Some(address) => tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| {
                format!("cannot listen on {address} (--metrics-addr / ZHZJ_METRICS_ADDR)")
            })?,
        None => match tokio::net::TcpListener::bind(DEFAULT_METRICS_ADDR).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "{DEFAULT_METRICS_ADDR} is taken; /metrics on a free loopback port (see metrics.url)");
                tokio::net::TcpListener::bind("127.0.0.1:0").await?
            }
        },
    };
    let metrics_address = metrics_listener.local_addr()?;
    if let Some(dir) = &extras.data_dir {
        std::fs::write(
            dir.join("metrics.url"),
            format!("http://{metrics_address}/metrics\n"),
        )
        .context("writing metrics.url")?;
    }
    let (metrics_state, metrics_shutdown) = (state.clone(), tasks.front.clone());
    tasks.front_tracker.spawn(async move {
        if let Err(e) =
            zhzj_gateway::serve_metrics(metrics_listener, metrics_state, metrics_shutdown).await
        {
            tracing::error!(error = %e, "/metrics listener stopped");
        }
    });
    tracing::info!("metrics on http://{metrics_address}/metrics");
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
    Ok(())
}

/// Where `/metrics` is served unless `--metrics-addr` says otherwise.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

fn default_http() -> HttpOptions {
    use clap::Parser;
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        http: HttpOptions,
    }
    Defaults::parse_from(["zhzj"]).http
}

/// Loads the demo through the cases service's engine on `conn`; its accounts are recorded through
/// `accounts_client`, a connection that may send commands (the gateway's).
fn spawn_demo(tasks: &Tasks, conn: &Connections, accounts_client: &async_nats::Client) {
    let Ok(store) = conn.store() else {
        tracing::error!("the demo needs the read store");
        tasks.stopped.cancel();
        return;
    };
    let (log, accounts) = (
        conn.log.clone(),
        accounts(
            store,
            zhzj_gateway::AccountJournal::new(accounts_client.clone(), store.clone()),
            zhzj_gateway::PasswordPolicy::default(),
        ),
    );
    let Some(vault) = conn.vault.clone() else {
        tracing::error!("the demo needs the key store of personal data");
        tasks.stopped.cancel();
        return;
    };
    let shutdown = tasks.front.clone();
    let stopped = tasks.stopped.clone();
    tasks.front_tracker.spawn(async move {
        tracing::info!("loading the demo (厦门市, about 300 cases)");
        match crate::demo_loader::load(&log, &vault, &accounts, &shutdown).await {
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

async fn run_until_signal(conns: &[(Role, Connections)], extras: &Extras) -> anyhow::Result<()> {
    let tasks = Tasks {
        front: CancellationToken::new(),
        front_tracker: TaskTracker::new(),
        back: CancellationToken::new(),
        back_tracker: TaskTracker::new(),
        stopped: CancellationToken::new(),
    };
    // Back first, so commands have someone to answer them when the front opens.
    let mut ordered: Vec<&(Role, Connections)> = conns.iter().collect();
    ordered.sort_by_key(|(role, _)| matches!(role, Role::Gateway));
    for (role, conn) in ordered {
        if let Err(e) = spawn_role(&tasks, *role, conn, extras).await {
            tasks.front.cancel();
            tasks.back.cancel();
            return Err(e);
        }
    }
    let roles: Vec<Role> = conns.iter().map(|(role, _)| *role).collect();
    tracing::info!(?roles, "zhzj is up; Ctrl-C stops it");
    if extras.demo {
        // The demo is loaded through the cases service's own engine, with its credential and key.
        let find = |wanted: Role| conns.iter().find(|(role, _)| *role == wanted);
        match (find(Role::Cases), find(Role::Gateway)) {
            (Some((_, conn)), Some((_, gateway))) => spawn_demo(&tasks, conn, &gateway.client),
            _ => {
                tracing::error!("the demo needs the cases and gateway roles");
                tasks.stopped.cancel();
            }
        }
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
    let flushes = conns.iter().map(|(_, conn)| conn.client.flush());
    match tokio::time::timeout(CLOSE_TIMEOUT, futures::future::join_all(flushes)).await {
        Ok(results) => {
            for e in results.into_iter().filter_map(Result::err) {
                tracing::warn!(error = %e, "could not flush NATS");
            }
        }
        Err(_) => tracing::warn!("NATS did not take the last messages within {CLOSE_TIMEOUT:?}"),
    }
    // The roles of one process share one read store: closing one handle closes its pool.
    if let Some(store) = conns.iter().find_map(|(_, conn)| conn.store.as_ref())
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

/// `zhzj up`: every role in one process, each on its own NATS connection with its own
/// credential, as in a distributed deployment.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut options = args.options;
    // Settings are read before anything starts: a typo in a rules file stops nothing half-way.
    let bureau = BureauSettings::from_options(&options)?;
    crate::private_files::private_data_dir(&options.data_dir)?;
    ensure_master_key(&options)?;
    let local = match &options.nats_url {
        Some(_) => None,
        None => {
            // The local server admits only zhzj's roles, each with its own NKey.
            let dir = nats_access::credentials_dir(&options.data_dir);
            let authorization = nats_access::ensure_credentials(&dir)?;
            let admin = ClientCredentials::of_role(&dir, NatsRole::Admin);
            options.security.nats_credentials = Some(dir);
            if let Some(pid) = zhzj_local_nats::stop_left_over(&options.data_dir).await? {
                tracing::warn!(
                    pid,
                    "stopped the local nats-server an earlier `zhzj up` on this data dir left running (it was killed before it could stop it)"
                );
            }
            Some(LocalNats::start(&options.data_dir, &authorization, &admin).await?)
        }
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
        if local.is_some() {
            // The admin credential creates or upgrades the stream, and is closed again.
            let admin = connect_log(&url, &options, NatsRole::Admin).await?;
            admin.client.flush().await?;
            drop(admin);
        }
        let store = ReadStore::connect(&database_url(&options)).await?;
        let mut conns = Vec::new();
        for role in [Role::Cases, Role::Campaign, Role::Projector, Role::Gateway] {
            let mut conn = connect_log(&url, &options, nats_role(role)).await?;
            if !matches!(role, Role::Campaign) {
                conn.store = Some(store.clone());
            }
            conns.push((role, conn));
        }
        tracing::info!(database = %database_url(&options), "read store opened");
        let extras = Extras {
            http: Some(args.http),
            demo: args.demo,
            data_dir: Some(options.data_dir.clone()),
            bureau,
            seal_interval_secs: options.security.seal_interval_secs,
        };
        run_until_signal(&conns, &extras).await
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
    let bureau = BureauSettings::from_options(&args.options)?;
    let url = nats_url(&args.options)?;
    let role = nats_role(args.role);
    let conn = match args.role {
        Role::Cases | Role::Campaign => connect_log(&url, &args.options, role).await?,
        Role::Projector | Role::Gateway => connect(&url, &args.options, role).await?,
    };
    tracing::info!(role = ?args.role, "running");
    let extras = Extras {
        http: Some(args.http),
        demo: false,
        data_dir: Some(args.options.data_dir.clone()),
        bureau,
        seal_interval_secs: args.options.security.seal_interval_secs,
    };
    run_until_signal(&[(args.role, conn)], &extras).await
}
