//! The gateway role: the HTTP API and pages, its `/metrics` listener, the adoption of accounts
//! made before the log recorded them, and (in production) the supervision watch beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zhzj_gateway::{Accounts, AppState, GatewayConfig, GatewayParts};

use crate::{AppError, RoleConnections, System};

/// Where `/metrics` is served unless the settings say otherwise; a free loopback port when it
/// is taken.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// How the gateway role runs.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The HTTP address (`127.0.0.1:0` for a free port).
    pub listen: String,
    /// The `/metrics` address; None for [`DEFAULT_METRICS_ADDR`], or a free loopback port when
    /// that is taken.
    pub metrics_listen: Option<String>,
    /// The gateway's own settings.
    pub config: GatewayConfig,
    /// The handle `/metrics` renders, if a recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Seconds between the supervision watch's passes (escalation of overdue orders, early
    /// warnings, notifications); None runs no watch (tests that pass it by hand).
    pub supervision_watch: Option<Duration>,
    /// Where to write `http.url` and `metrics.url` for scripts; None writes nothing.
    pub data_dir: Option<PathBuf>,
}

/// A started gateway.
#[derive(Debug)]
pub struct RunningGateway {
    /// The HTTP address it listens on.
    pub http: SocketAddr,
    /// The `/metrics` address.
    pub metrics: SocketAddr,
    /// Its accounts.
    pub accounts: Accounts,
    /// The start's adoption of accounts the log does not hold yet: done once the accounts view
    /// has reached the log's end as it was at the start (or the gateway stops first).
    pub adoption: tokio::task::JoinHandle<()>,
}

/// Binds `address`, naming `setting` when it cannot.
async fn bind(address: &str, setting: &'static str) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AppError::Listen {
            address: address.to_owned(),
            setting,
            source,
        })
}

/// Writes `contents` to `file`.
fn write_file(file: PathBuf, contents: String) -> Result<PathBuf, AppError> {
    std::fs::write(&file, contents).map_err(|source| AppError::WriteFile {
        file: file.display().to_string(),
        source,
    })?;
    Ok(file)
}

impl System {
    /// Starts the HTTP gateway and its `/metrics` listener (and the supervision watch when the
    /// settings ask for it); returns once both listen.
    pub async fn start_gateway(
        &self,
        conn: &RoleConnections,
        settings: GatewaySettings,
    ) -> Result<RunningGateway, AppError> {
        let store = conn.read_store("the gateway role")?.clone();
        let listener = bind(&settings.listen, "--http / ZHZJ_HTTP").await?;
        let address = listener.local_addr().map_err(|source| AppError::Listen {
            address: settings.listen.clone(),
            setting: "--http / ZHZJ_HTTP",
            source,
        })?;
        if let Some(dir) = &settings.data_dir {
            let file = write_file(
                zhzj_local_nats::http_url_file(dir),
                format!("http://{address}\n"),
            )?;
            self.left_files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(file);
        }
        let state = AppState::new(
            GatewayParts {
                client: conn.client.clone(),
                log: conn.log.clone(),
                store: store.clone(),
                clock: Arc::clone(&self.clock),
                metrics: settings.metrics.clone(),
                config: settings.config.clone(),
                vault: conn.vault.clone(),
            },
            self.front.clone(),
        );
        if let Some(interval) = settings.supervision_watch {
            let watch = zhzj_supervision::Watch::new(
                conn.client.clone(),
                store.clone(),
                Arc::clone(&self.clock),
                Arc::clone(&self.bureau.supervision),
            );
            self.front_tracker
                .spawn(watch.run(interval, self.front.clone()));
        }
        let log_end = conn.log.last_position().await.unwrap_or(0);
        let (adopting, stop_adopting) = (state.accounts().clone(), self.front.clone());
        let adoption = self.front_tracker.spawn(async move {
            adopting.adopt_when_caught_up(log_end, stop_adopting).await;
        });
        let metrics = self.start_metrics(&settings, state.clone()).await?;
        let (stopped, shutdown) = (self.stopped(), self.front.clone());
        let accounts = state.accounts().clone();
        self.front_tracker.spawn(async move {
            if let Err(e) = zhzj_gateway::serve(listener, state, shutdown).await {
                tracing::error!(error = %e, "HTTP gateway stopped");
                stopped.cancel();
            }
        });
        tracing::info!(
            "HTTP gateway on http://{address}/ (API under /api/v1, OpenAPI at /api/v1/openapi.json)"
        );
        Ok(RunningGateway {
            http: address,
            metrics,
            accounts,
            adoption,
        })
    }

    /// The `/metrics` listener; its address.
    async fn start_metrics(
        &self,
        settings: &GatewaySettings,
        state: AppState,
    ) -> Result<SocketAddr, AppError> {
        const SETTING: &str = "--metrics-addr / ZHZJ_METRICS_ADDR";
        let listener = match &settings.metrics_listen {
            Some(address) => bind(address, SETTING).await?,
            None => match tokio::net::TcpListener::bind(DEFAULT_METRICS_ADDR).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "{DEFAULT_METRICS_ADDR} is taken; /metrics on a free loopback port (see metrics.url)");
                    bind("127.0.0.1:0", SETTING).await?
                }
            },
        };
        let address = listener.local_addr().map_err(|source| AppError::Listen {
            address: settings
                .metrics_listen
                .clone()
                .unwrap_or_else(|| DEFAULT_METRICS_ADDR.to_owned()),
            setting: SETTING,
            source,
        })?;
        if let Some(dir) = &settings.data_dir {
            write_file(
                dir.join("metrics.url"),
                format!("http://{address}/metrics\n"),
            )?;
        }
        let shutdown = self.front.clone();
        self.front_tracker.spawn(async move {
            if let Err(e) = zhzj_gateway::serve_metrics(listener, state, shutdown).await {
                tracing::error!(error = %e, "/metrics listener stopped");
            }
        });
        tracing::info!("metrics on http://{address}/metrics");
        Ok(address)
    }
}
