//! The gateway: the only HTTP face of zhzj. It authenticates people, turns their requests into
//! commands sent over NATS to the command services, and answers reads from the SQL read store.
//! It never appends events itself.

pub mod accounts;
pub mod audit;
mod commands;
pub mod directory_file;
mod error;
mod extract;
mod log_seal;
pub mod openapi;
mod personal;
mod projections;
mod query_contract;
mod rejections;
pub mod retention;
mod routes;
pub mod scope;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use zhzj_store::{Clock, EventLog, ReadStore};

pub use accounts::{
    AccountError, AccountJournal, AccountSettings, AccountSummary, Accounts, GATEWAY_ACTOR,
    LockoutPolicy, LoginOutcome, NewUser, PasswordPolicy, Session, User, role_names,
};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use projections::ProjectionWatch;
pub use routes::{DuplicateRule, leader_view};

/// Settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a command may take to be answered by its service.
    pub command_timeout: Duration,
    /// How long a write's reply waits for the read views to show it.
    pub read_your_writes: Duration,
    /// `/readyz` fails when a projection is further behind than this many events.
    pub ready_max_lag: u64,
    /// Sessions, passwords and lockouts.
    pub accounts: AccountSettings,
    /// The gateway is reached over https (`--public-url https://…`): the session cookie is
    /// `Secure`.
    pub public_https: bool,
    /// The gateway stands behind a reverse proxy whose `X-Forwarded-For` (the client address
    /// failed logins are counted by) and `X-Forwarded-Proto` (https: a `Secure` cookie) it
    /// trusts. Off, they are ignored: anyone could send them.
    pub trust_forwarded_headers: bool,
    /// How a registration is matched against existing cases.
    pub duplicate_rule: DuplicateRule,
    /// Duplicate checks (lookups by ID number or name) one user may make a minute.
    pub duplicate_checks_per_minute: std::num::NonZeroU32,
    /// How many of them may come at once.
    pub duplicate_checks_burst: std::num::NonZeroU32,
    /// The bureau's time limits (the same the projector counts with), for figures drawn from the
    /// archive.
    pub limits: zhzj_deadlines::Limits,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            command_timeout: Duration::from_secs(10),
            read_your_writes: Duration::from_secs(5),
            ready_max_lag: 10_000,
            accounts: AccountSettings::default(),
            public_https: false,
            trust_forwarded_headers: false,
            duplicate_rule: DuplicateRule::default(),
            duplicate_checks_per_minute: std::num::NonZeroU32::new(30)
                .unwrap_or(std::num::NonZeroU32::MIN),
            duplicate_checks_burst: std::num::NonZeroU32::new(10)
                .unwrap_or(std::num::NonZeroU32::MIN),
            limits: zhzj_deadlines::Limits::statutory(),
        }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    client: async_nats::Client,
    log: EventLog,
    store: ReadStore,
    accounts: Accounts,
    projections: ProjectionWatch,
    metrics: Option<PrometheusHandle>,
    config: GatewayConfig,
    clock: Arc<dyn Clock>,
    duplicate_checks: routes::duplicates::DuplicateCheckLimiter,
    vault: Option<zhzj_store::PersonalDataVault>,
}

/// The parts a gateway is made of.
#[derive(Debug)]
pub struct GatewayParts {
    /// NATS, for commands.
    pub client: async_nats::Client,
    /// The log, for readiness.
    pub log: EventLog,
    /// The read store.
    pub store: ReadStore,
    /// Time, for sessions.
    pub clock: Arc<dyn Clock>,
    /// The Prometheus recorder's handle, if one is installed.
    pub metrics: Option<PrometheusHandle>,
    /// Settings.
    pub config: GatewayConfig,
    /// The key store that opens petitioners' sealed personal data.
    pub vault: Option<zhzj_store::PersonalDataVault>,
}

impl AppState {
    /// Builds the state; the projection watcher runs until `shutdown`.
    pub fn new(parts: GatewayParts, shutdown: CancellationToken) -> Self {
        let accounts = Accounts::new(
            parts.store.clone(),
            Arc::clone(&parts.clock),
            parts.config.accounts.clone(),
            AccountJournal::new(parts.client.clone(), parts.store.clone()),
        );
        let projections = ProjectionWatch::start(parts.store.clone(), shutdown);
        let duplicate_checks = routes::duplicates::DuplicateCheckLimiter::new(
            parts.config.duplicate_checks_per_minute,
            parts.config.duplicate_checks_burst,
        );
        Self {
            inner: Arc::new(StateInner {
                client: parts.client,
                log: parts.log,
                store: parts.store,
                accounts,
                projections,
                metrics: parts.metrics,
                config: parts.config,
                clock: parts.clock,
                duplicate_checks,
                vault: parts.vault,
            }),
        }
    }

    pub(crate) fn store(&self) -> &ReadStore {
        &self.inner.store
    }

    /// The accounts and sessions.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    fn vault(&self) -> Option<&zhzj_store::PersonalDataVault> {
        self.inner.vault.as_ref()
    }

    fn duplicate_checks(&self) -> &routes::duplicates::DuplicateCheckLimiter {
        &self.inner.duplicate_checks
    }

    /// Now, from the injected clock.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Today in China.
    fn today(&self) -> chrono::NaiveDate {
        zhzj_store::china_date(self.now())
    }

    /// The address of the client of a request: the first of `X-Forwarded-For` behind a trusted
    /// proxy, else the peer of the connection (none when the router is called without one).
    fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Option<std::net::IpAddr> {
        if self.config().trust_forwarded_headers {
            let forwarded = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
    }

    /// Whether cookies set in answer to a request with `headers` are `Secure`.
    fn secure_cookies(&self, headers: &axum::http::HeaderMap) -> bool {
        self.config().public_https
            || (self.config().trust_forwarded_headers
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https")))
    }
}

/// The `ETag` of an aggregate version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Every route of the gateway.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves HTTP on `listener` until `shutdown`; then stops accepting and lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// Serves `/metrics` (Prometheus text) on `listener`, apart from the application's listener so
/// that it can stay on loopback or a monitoring network, until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, routes::metrics_router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
