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
use zhzj_store::{CommitSigner, EventLog, LogConfig, ReadStore, SystemClock, sql::sqlite_url};
use zhzj_trust::nats_access::{self, ClientCredentials, NatsRole};

use crate::cli::{
    CommandArgs, CommonOptions, HttpOptions, RebuildArgs, ReviewLevelArg, Role, RunArgs, UpArgs,
    UserAction, UserArgs,
};
use zhzj_local_nats::{LocalNats, http_url_file, url_file};

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
pub fn nats_url(options: &CommonOptions) -> anyhow::Result<String> {
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

/// The credentials `role` connects with: an explicit one (`--nats-nkey`, `--nats-creds`,
/// `--nats-user`), else the role's file in the credentials directory, else none (a server without
/// authentication); and TLS when configured.
pub fn credentials_for(options: &CommonOptions, role: NatsRole) -> ClientCredentials {
    let security = &options.security;
    let explicit = security.nats_nkey.is_some()
        || security.nats_creds.is_some()
        || security.nats_user.is_some();
    let mut credentials = if explicit {
        ClientCredentials {
            nkey_file: security.nats_nkey.clone(),
            creds_file: security.nats_creds.clone(),
            user: security.nats_user.clone(),
            password: security.nats_password.clone(),
            ..ClientCredentials::default()
        }
    } else {
        let dir = security.nats_credentials.clone().or_else(|| {
            let dir = nats_access::credentials_dir(&options.data_dir);
            dir.exists().then_some(dir)
        });
        dir.map_or_else(ClientCredentials::default, |dir| {
            ClientCredentials::of_role(&dir, role)
        })
    };
    credentials.tls_ca.clone_from(&security.nats_tls_ca);
    credentials.tls_cert.clone_from(&security.nats_tls_cert);
    credentials.tls_key.clone_from(&security.nats_tls_key);
    let authenticates = credentials.authenticates();
    credentials.inbox_prefix = security
        .nats_inbox_prefix
        .clone()
        .or(credentials.inbox_prefix)
        .or_else(|| authenticates.then(|| role.inbox_prefix()));
    credentials
}

/// Connects to NATS at `url` (one URL or a cluster's comma-separated list) as `role`.
pub async fn connect_nats(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<async_nats::Client> {
    let settings = zhzj_store::nats::NatsConnectOptions {
        name: format!("zhzj-{}", role.name()),
        request_timeout: Duration::from_millis(options.nats_request_timeout_ms.max(1)),
        credentials: credentials_for(options, role),
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
    /// Seals the log; the command services' connections only.
    pub sealer: Option<zhzj_store::Sealer>,
    /// Seals and opens petitioners' personal data; the command services' and the gateway's.
    pub vault: Option<zhzj_store::PersonalDataVault>,
}

impl Connections {
    /// The read store, which the caller's role needs.
    fn store(&self) -> anyhow::Result<&ReadStore> {
        self.store
            .as_ref()
            .context("this process was started without the read store")
    }
}

/// Connects to NATS as `role` (opening the stream) and to the read store (migrating it).
pub async fn connect(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<Connections> {
    let mut conn = connect_log(url, options, role).await?;
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
        let e = match EventLog::open(client.clone(), config).await {
            Ok(log) => return Ok(log),
            Err(e @ zhzj_store::LogError::Unavailable(_)) => e,
            Err(e) => return Err(e.into()),
        };
        // A refused request is never answered: no retry helps once NATS said why.
        if let Some(refused) = zhzj_store::nats::last_permission_violation() {
            bail!(
                "NATS refused this credential an operation opening the log needs ({refused}); \
                 creating or upgrading the stream takes the admin credential: \
                 `zhzj log init --nats-nkey admin.nk`"
            );
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "the event stream does not answer yet; trying again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The commit signing key of the command services, made under the data dir on first start.
pub fn signer(options: &CommonOptions) -> anyhow::Result<Arc<CommitSigner>> {
    let security = &options.security;
    let trusted = trusted_keys_path(options);
    let signer = match &security.signing_key {
        Some(path) => {
            let signer = CommitSigner::load(path).context("--signing-key / ZHZJ_SIGNING_KEY")?;
            signer.trust_in(&trusted)?;
            signer
        }
        None => CommitSigner::load_or_create(&options.data_dir.join("signing.key"), &trusted)?,
    };
    Ok(Arc::new(signer))
}

/// The trusted-keys file the options name.
pub fn trusted_keys_path(options: &CommonOptions) -> std::path::PathBuf {
    options
        .security
        .trusted_keys
        .clone()
        .unwrap_or_else(|| options.data_dir.join("trusted-keys"))
}

/// Connects to NATS as `role` and opens the stream, without the read store. The command
/// services' log signs what it appends.
async fn connect_log(
    url: &str,
    options: &CommonOptions,
    role: NatsRole,
) -> anyhow::Result<Connections> {
    crate::private_files::private_data_dir(&options.data_dir)?;
    let client = connect_nats(url, options, role).await?;
    let authenticated = credentials_for(options, role).authenticates();
    let config = LogConfig {
        replicas: options.stream_replicas,
        // Only the admin credential may shape the stream; without authentication anyone may.
        administer: role == NatsRole::Admin || !authenticated,
        ..LogConfig::default()
    };
    let mut log = open_log(&client, &config).await?;
    let mut sealer = None;
    if matches!(role, NatsRole::Cases | NatsRole::Campaign) {
        let signer = signer(options)?;
        log = log.with_signer(Arc::clone(&signer));
        sealer = Some(zhzj_store::Sealer::new(log.clone(), signer));
    }
    let vault = if matches!(
        role,
        NatsRole::Cases | NatsRole::Campaign | NatsRole::Gateway
    ) {
        Some(zhzj_store::PersonalDataVault::connect(client.clone(), master_key(options)?).await?)
    } else {
        None
    };
    Ok(Connections {
        client,
        log,
        store: None,
        sealer,
        vault,
    })
}

/// The master key file the options name.
pub fn master_key_path(options: &CommonOptions) -> std::path::PathBuf {
    options
        .security
        .master_key_file
        .clone()
        .unwrap_or_else(|| options.data_dir.join("master.key"))
}

/// The master key that wraps petitioners' data keys: the default one is made on first start
/// (like the signing key), one given with `--master-key-file` must exist. Every process of a
/// deployment must use the same one.
pub fn master_key(options: &CommonOptions) -> anyhow::Result<Arc<zhzj_privacy::MasterKey>> {
    ensure_master_key(options)?;
    let algorithm: zhzj_privacy::Algorithm = options
        .security
        .personal_data_cipher
        .parse()
        .context("--personal-data-cipher")?;
    let path = master_key_path(options);
    Ok(Arc::new(
        zhzj_privacy::MasterKey::load(&path, algorithm).with_context(|| {
            format!(
                "the master key of personal data ({}; `zhzj up` makes one, or give --master-key-file)",
                path.display()
            )
        })?,
    ))
}

/// `zhzj keys new-master-key PATH`.
pub fn new_master_key(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists; a master key is never overwritten",
            path.display()
        );
    }
    let key = zhzj_privacy::MasterKey::generate_hex()?;
    zhzj_trust::keys::write_private_file(path, &format!("{}\n", key.as_str()))?;
    println!("wrote a new master key to {} (mode 0600)", path.display());
    Ok(())
}

/// `zhzj keys rotate`: every data key wrapped again by the new master key, with the admin
/// credential; the sealed data in the log is not touched.
pub async fn rotate_master_key(
    options: CommonOptions,
    new_key: &std::path::Path,
) -> anyhow::Result<()> {
    let old = master_key(&options)?;
    let new = Arc::new(
        zhzj_privacy::MasterKey::load(new_key, old.algorithm()).context("--new-master-key-file")?,
    );
    let url = nats_url(&options)?;
    let conn = connect_log(&url, &options, NatsRole::Admin).await?;
    let vault =
        zhzj_store::PersonalDataVault::connect(conn.client.clone(), Arc::clone(&new)).await?;
    let rewrapped = vault.rewrap_all(&old).await?;
    conn.client.flush().await?;
    println!(
        "{rewrapped} data keys now wrapped by master key {} (was {}); start every role with \
         --master-key-file {} and destroy the old key",
        new.id(),
        old.id(),
        new_key.display()
    );
    Ok(())
}

/// Makes the default master key file if it is missing. Processes of one data dir start at once
/// (`zhzj run cases` beside `zhzj run gateway`): the key is written to a file of its own (a random
/// name) and linked into place, which fails for all but the first, so every process reads the
/// same complete key.
pub fn ensure_master_key(options: &CommonOptions) -> anyhow::Result<()> {
    let path = master_key_path(options);
    if options.security.master_key_file.is_some() || path.exists() {
        return Ok(());
    }
    let key = zhzj_privacy::MasterKey::generate_hex()?;
    let own = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    zhzj_trust::keys::write_private_file(&own, &format!("{}\n", key.as_str()))?;
    let linked = std::fs::hard_link(&own, &path);
    std::fs::remove_file(&own).with_context(|| format!("removing {}", own.display()))?;
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "made the master key of personal data; keep a copy offline");
            Ok(())
        }
        // Another process of this data dir made it first: its key is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// `zhzj log init`: creates or upgrades the stream with the admin credential.
pub async fn log_init(options: CommonOptions) -> anyhow::Result<()> {
    let url = nats_url(&options)?;
    let conn = connect_log(&url, &options, NatsRole::Admin).await?;
    let last = conn.log.last_position().await?;
    println!(
        "stream {} ready (deny delete, deny purge, seals); last position {last}",
        zhzj_proto::subjects::EVENT_STREAM
    );
    conn.client.flush().await?;
    Ok(())
}

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
    let stopped = tasks.stopped.clone();
    match role {
        Role::Cases | Role::Campaign => {
            let mut service = CasesService::new(conn.log.clone(), Arc::new(SystemClock))
                .with_settings((*extras.bureau.lifecycle).clone());
            if let Some(vault) = &conn.vault {
                service = service.with_vault(vault.clone());
            }
            let (client, shutdown) = (conn.client.clone(), tasks.back.clone());
            let service_role = match role {
                Role::Campaign => ServiceRole::Campaign,
                _ => ServiceRole::Cases,
            };
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
                    vault: conn.vault.clone(),
                },
                tasks.front.clone(),
            );
            let log_end = conn.log.last_position().await.unwrap_or(0);
            let adopting = state.accounts().clone();
            let stop_adopting = tasks.front.clone();
            tasks.front_tracker.spawn(async move {
                adopting.adopt_when_caught_up(log_end, stop_adopting).await;
            });
            let metrics_listener = match &http.metrics_addr {
                Some(address) => {
                    tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot listen on {address} (--metrics-addr / ZHZJ_METRICS_ADDR)"
                            )
                        })?
                }
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
                    zhzj_gateway::serve_metrics(metrics_listener, metrics_state, metrics_shutdown)
                        .await
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
        }
    }
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
        tracing::info!(database = %database_url(&options), "zhzj is up; Ctrl-C stops it");
        let extras = Extras {
            http: Some(args.http),
            demo: args.demo,
            data_dir: Some(options.data_dir.clone()),
            bureau: BureauSettings::from_options(&options)?,
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
        bureau: BureauSettings::from_options(&args.options)?,
        seal_interval_secs: args.options.security.seal_interval_secs,
    };
    run_until_signal(&[(args.role, conn)], &extras).await
}

/// `zhzj user …`.
pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    let options = match &args.action {
        UserAction::Add { options, .. }
        | UserAction::List { options }
        | UserAction::Set { options, .. }
        | UserAction::ResetPassword { options, .. }
        | UserAction::Unlock { options, .. }
        | UserAction::Disable { options, .. }
        | UserAction::Enable { options, .. }
        | UserAction::EndSessions { options, .. } => options.clone(),
    };
    crate::private_files::private_data_dir(&options.data_dir)?;
    let store = ReadStore::connect(&database_url(&options)).await?;
    // Accounts are recorded in the log through the running system; without it only a new account
    // can be made, pending until the gateway records it.
    let client = match nats_url(&options) {
        Ok(url) => tokio::time::timeout(
            Duration::from_secs(5),
            connect_nats(&url, &options, NatsRole::Cli),
        )
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    let result = user_action(&store, client, args.action).await;
    store.close().await;
    result
}

async fn user_action(
    store: &ReadStore,
    client: Option<async_nats::Client>,
    action: UserAction,
) -> anyhow::Result<()> {
    let default_rules = zhzj_gateway::PasswordPolicy::default();
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let by = zhzj_gateway::AccountJournal::system_admin(&format!("cli:{operator}"));
    let journal = match &client {
        Some(client) => zhzj_gateway::AccountJournal::new(client.clone(), store.clone()),
        None => zhzj_gateway::AccountJournal::offline(store.clone()),
    };
    let accounts = |policy| accounts(store, journal.clone(), policy);
    match action {
        UserAction::Add {
            username,
            password,
            display_name,
            roles,
            unit,
            leader,
            ready_to_use,
            rules,
            ..
        } => {
            let accounts = accounts(rules.password_policy());
            accounts
                .check_directory(unit.as_deref(), leader.as_deref())
                .await?;
            let user = NewUser {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                password,
                roles,
                unit_id: unit,
                leader_id: leader,
                must_change_password: !ready_to_use,
            };
            let pending = match accounts.add_user(&by, &user).await {
                Ok(()) => false,
                Err(zhzj_gateway::AccountError::Unavailable(why)) => {
                    tracing::debug!(%why, "the log cannot be reached; the account is pending");
                    accounts.add_pending(&user).await?;
                    true
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "已创建用户 {} (角色: {}){}{}",
                user.username,
                user.roles.join(","),
                if ready_to_use {
                    ""
                } else {
                    "，首次登录须修改密码"
                },
                if pending {
                    "。系统未运行：账号在网关启动或首次登录时写入日志，此前不能使用"
                } else {
                    ""
                }
            );
        }
        UserAction::List { .. } => {
            println!("用户名\t姓名\t角色\t单位\t对应领导\t状态");
            for account in accounts(default_rules).list().await? {
                let state = account.state_label();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    account.user.username,
                    account.user.display_name,
                    account.user.roles.join(","),
                    account.user.unit_id.as_deref().unwrap_or("-"),
                    account.user.leader_id.as_deref().unwrap_or("-"),
                    state
                );
            }
        }
        UserAction::Set {
            username,
            roles,
            unit,
            leader,
            ..
        } => {
            accounts(default_rules)
                .set_assignment(&by, &username, &roles, unit.as_deref(), leader.as_deref())
                .await?;
            println!("已修改用户 {username}: 角色 {}", roles.join(","));
        }
        UserAction::ResetPassword {
            username,
            password,
            rules,
            ..
        } => {
            accounts(rules.password_policy())
                .reset_password(&by, &username, &password)
                .await?;
            println!("已重置用户 {username} 的密码，下次登录须修改；其登录会话已结束");
        }
        UserAction::Unlock { username, .. } => {
            let had = accounts(default_rules).unlock(&by, &username).await?;
            println!(
                "{}",
                if had {
                    format!("已解除用户 {username} 的锁定")
                } else {
                    format!("用户 {username} 未被锁定")
                }
            );
        }
        UserAction::Disable { username, .. } => {
            accounts(default_rules)
                .set_disabled(&by, &username, true)
                .await?;
            println!("已停用用户 {username}，其登录会话已结束");
        }
        UserAction::Enable { username, .. } => {
            accounts(default_rules)
                .set_disabled(&by, &username, false)
                .await?;
            println!("已启用用户 {username}");
        }
        UserAction::EndSessions { username, .. } => {
            let ended = accounts(default_rules).end_sessions(&by, &username).await?;
            println!("已结束用户 {username} 的 {ended} 个登录会话");
        }
    }
    Ok(())
}

/// `zhzj rebuild <projection>`.
pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let Some(projection) = Projection::parse(&args.projection) else {
        bail!(
            "unknown projection `{}`; choose one of archive, checklist, org, lifecycle, campaign, accounts",
            args.projection
        );
    };
    let url = nats_url(&args.options)?;
    let conn = connect(&url, &args.options, NatsRole::Cli).await?;
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
    let conn = connect(&url, &options, NatsRole::Cli).await?;
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
    let client = connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?;
    let reply = request_command(&client, &request).await?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(exit_code(&reply))
}

/// Sends one command request and reads the reply.
async fn request_command(
    client: &async_nats::Client,
    request: &zhzj_proto::CommandRequest,
) -> anyhow::Result<zhzj_proto::CommandReply> {
    let reply = client
        .request(
            zhzj_proto::subjects::CASES_COMMANDS,
            serde_json::to_vec(request)?.into(),
        )
        .await
        .context("no answer from the cases service")?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// Success when the command was accepted.
fn exit_code(reply: &zhzj_proto::CommandReply) -> std::process::ExitCode {
    match reply {
        zhzj_proto::CommandReply::Ok(_) => std::process::ExitCode::SUCCESS,
        zhzj_proto::CommandReply::Error(_) => std::process::ExitCode::FAILURE,
    }
}

/// An erasure request from the administrator `actor`.
fn erasure_request(
    actor: &str,
    case_id: uuid::Uuid,
    petitioner: u32,
    reason: &str,
) -> zhzj_proto::CommandRequest {
    zhzj_proto::CommandRequest {
        command_id: uuid::Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: zhzj_proto::Actor {
            user_id: actor.to_owned(),
            roles: vec![zhzj_proto::accounts::Role::Admin.as_str().into()],
            unit_id: None,
            leader_id: None,
        },
        expected_version: None,
        unknown_outcome_retry: false,
        command: zhzj_proto::Command::ErasePetitioner(zhzj_proto::commands::ErasePetitioner {
            case_id,
            petitioner,
            reason: reason.to_owned(),
        }),
    }
}

/// `zhzj erase`: erases one petitioner; prints the reply; exit code 1 when it is refused.
pub async fn erase(args: crate::cli::EraseArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?;
    let request = erasure_request(&args.actor, args.case_id, args.petitioner, &args.reason);
    let reply = request_command(&client, &request).await?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(exit_code(&reply))
}

/// `zhzj retention`: the petitioners due under the retention rule, erased unless `--dry-run`.
/// Prints one line per petitioner (no personal data); exit code 1 if any erasure was refused.
pub async fn retention(args: crate::cli::RetentionArgs) -> anyhow::Result<std::process::ExitCode> {
    use zhzj_gateway::retention::{RETENTION_REASON, cut_off, due_for_erasure};
    let today = args
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let before = cut_off(today, args.retention_years)
        .context("--retention-years reaches before the calendar")?;
    let store = ReadStore::connect(&database_url(&args.options)).await?;
    let due = due_for_erasure(&store, before).await?;
    println!(
        "保存期限 {} 年：{before} 之前销号、仍为销号状态的案件，待删除的信访人 {} 位{}",
        args.retention_years,
        due.len(),
        if args.dry_run {
            "（试运行，不删除）"
        } else {
            ""
        }
    );
    let client = if args.dry_run || due.is_empty() {
        None
    } else {
        Some(connect_nats(&nats_url(&args.options)?, &args.options, NatsRole::Cli).await?)
    };
    let mut code = std::process::ExitCode::SUCCESS;
    for entry in &due {
        let line = format!(
            "{}\t{}\t销号于 {}\t第 {} 位信访人",
            entry.case_number, entry.case_id, entry.crossed_off_at, entry.petitioner
        );
        if !entry.sealed {
            println!("{line}\t登记于加密之前，日志中为明文，无法删除");
            continue;
        }
        let Some(client) = &client else {
            println!("{line}\t待删除");
            continue;
        };
        let case_id = uuid::Uuid::parse_str(&entry.case_id)?;
        let request = erasure_request(&args.actor, case_id, entry.petitioner, RETENTION_REASON);
        match request_command(client, &request).await? {
            zhzj_proto::CommandReply::Ok(_) => println!("{line}\t已删除"),
            zhzj_proto::CommandReply::Error(e) => {
                println!("{line}\t未删除：{}", e.message);
                code = std::process::ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Commands};

    /// Processes of one data dir starting together all end up with the one same master key.
    #[test]
    fn processes_starting_together_share_one_master_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let cli = Cli::try_parse_from(["zhzj", "up", "--data-dir", data.as_str()])?;
        let Commands::Up(up) = cli.command else {
            anyhow::bail!("parsed `up` as another command");
        };
        let options = std::sync::Arc::new(up.options);
        let starters: Vec<_> = (0..8)
            .map(|_| {
                let options = std::sync::Arc::clone(&options);
                std::thread::spawn(move || {
                    super::master_key(&options).map(|key| key.id().to_owned())
                })
            })
            .collect();
        let mut ids = Vec::new();
        for starter in starters {
            ids.push(
                starter
                    .join()
                    .map_err(|_| anyhow::anyhow!("a starter panicked"))??,
            );
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one key: {ids:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["master.key"], "no temporary file is left");
        Ok(())
    }
}
