//! Wiring: connects to NATS and the read store, and runs the roles until a shutdown signal.
//!
//! Shutdown is soft first (stop taking commands, answer those in flight, let projections finish
//! their batch) and hard after a grace period.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use zhzj_app::{BureauSettings, GatewaySettings, RoleConnections, System};
use zhzj_cases::{LifecycleSettings, ServiceRole};
use zhzj_deadlines::Limits;
use zhzj_gateway::{Accounts, GatewayConfig};
use zhzj_projector::ProjectorSettings;
use zhzj_proto::events::ReviewLevel;
use zhzj_store::{ReadStore, SystemClock};
use zhzj_trust::nats_access::{self, ClientCredentials, NatsRole};

use crate::cli::{CommonOptions, HttpOptions, ReviewLevelArg, Role, RunArgs, UpArgs};
use crate::connections::{connect, connect_log, database_url, nats_url};
use crate::keys::ensure_master_key;
use zhzj_local_nats::LocalNats;

/// How long each stage of a shutdown (HTTP requests, then in-flight commands and projection
/// batches) may take after a shutdown signal before it is cut off. With the final flush and the
/// read store's close bounded too, a process exits within 25 s of SIGTERM whatever is down
/// (README, "Operations").
const GRACE: Duration = Duration::from_secs(10);

/// How long the last flush to NATS and the read store's close may take each.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// Seconds between the supervision watch's passes.
    pub escalation_interval_secs: u64,
    /// Seconds between seals (the cases service).
    pub seal_interval_secs: u64,
}

/// The bureau's settings the command line gives.
pub fn bureau_settings(options: &CommonOptions) -> anyhow::Result<BureauSettings> {
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
    Ok(BureauSettings {
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
    })
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

/// Starts one role in `system`.
async fn start_role(
    system: &System,
    role: Role,
    conn: &RoleConnections,
    extras: &Extras,
) -> anyhow::Result<()> {
    let seal_interval = Duration::from_secs(extras.seal_interval_secs.max(1));
    match role {
        Role::Cases => {
            system
                .start_command_service(ServiceRole::Cases, conn, seal_interval)
                .await?;
        }
        Role::Campaign => {
            system
                .start_command_service(ServiceRole::Campaign, conn, seal_interval)
                .await?;
        }
        Role::Projector => system.start_projector(conn).await?,
        Role::Gateway => {
            let http = extras.http.clone().unwrap_or_else(default_http);
            let settings = GatewaySettings {
                listen: http.listen.clone(),
                metrics_listen: http.metrics_addr.clone(),
                config: gateway_config(&http, &extras.bureau),
                metrics: crate::metrics_handle(),
                supervision_watch: Some(Duration::from_secs(
                    extras.escalation_interval_secs.max(1),
                )),
                data_dir: extras.data_dir.clone(),
            };
            system.start_gateway(conn, settings).await?;
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

/// Loads the demo through the cases service's engine on `conn`; its accounts are recorded through
/// `accounts_client`, a connection that may send commands (the gateway's).
fn spawn_demo(system: &System, conn: &RoleConnections, accounts_client: &async_nats::Client) {
    let Some(store) = conn.store.as_ref() else {
        tracing::error!("the demo needs the read store");
        system.fail();
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
        system.fail();
        return;
    };
    let shutdown = system.front_shutdown();
    let stopped = system.stopped();
    system.spawn_front(async move {
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

async fn run_until_signal(
    conns: &[(Role, RoleConnections)],
    extras: &Extras,
) -> anyhow::Result<()> {
    let system = System::new(Arc::new(SystemClock), extras.bureau.clone());
    // Back first, so commands have someone to answer them when the front opens.
    let mut ordered: Vec<&(Role, RoleConnections)> = conns.iter().collect();
    ordered.sort_by_key(|(role, _)| matches!(role, Role::Gateway));
    for (role, conn) in ordered {
        if let Err(e) = start_role(&system, *role, conn, extras).await {
            // Nothing failed on its own: the start's error is the one to report.
            let _ = system.stop(GRACE).await;
            return Err(e);
        }
    }
    let roles: Vec<Role> = conns.iter().map(|(role, _)| *role).collect();
    tracing::info!(?roles, "zhzj is up; Ctrl-C stops it");
    if extras.demo {
        // The demo is loaded through the cases service's own engine, with its credential and key.
        let find = |wanted: Role| conns.iter().find(|(role, _)| *role == wanted);
        match (find(Role::Cases), find(Role::Gateway)) {
            (Some((_, conn)), Some((_, gateway))) => spawn_demo(&system, conn, &gateway.client),
            _ => {
                tracing::error!("the demo needs the cases and gateway roles");
                system.fail();
            }
        }
    }
    let stopped = system.stopped();
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down: finishing in-flight work"),
        () = stopped.cancelled() => tracing::error!("a role stopped; shutting down the rest"),
    }
    let result = system.stop(GRACE).await;
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
    Ok(result?)
}

/// `zhzj up`: every role in one process, each on its own NATS connection with its own
/// credential, as in a distributed deployment.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut options = args.options;
    // Settings are read before anything starts: a typo in a rules file stops nothing half-way.
    let bureau = bureau_settings(&options)?;
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
            escalation_interval_secs: options.escalation_interval_secs,
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
    let bureau = bureau_settings(&args.options)?;
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
        escalation_interval_secs: args.options.escalation_interval_secs,
        seal_interval_secs: args.options.security.seal_interval_secs,
    };
    run_until_signal(&[(args.role, conn)], &extras).await
}
