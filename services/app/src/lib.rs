//! The system's wiring: starts zhzj's roles (the command services, the projector, the HTTP
//! gateway) on their connections and stops them in order.
//!
//! The binary (`zhzj up`, `zhzj run <role>`), `zhzj bench http` and the tests' `spawn_app` all
//! start the roles through [`System`], so what the tests exercise is what runs in production.
//! What differs between them is passed in, never re-wired: the clock, the connections, the
//! gateway's settings, whether the supervision watch runs.
//!
//! Shutdown is soft first (stop taking requests, answer those in flight while the command
//! services and the projector still run) and then stops the back (in-flight commands, the
//! projector's batch), each stage bounded by a grace period.

mod gateway;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zhzj_cases::{CasesService, LifecycleSettings, ServiceRole};
use zhzj_projector::{Projection, ProjectorSettings};
use zhzj_store::{Clock, EventLog, PersonalDataVault, ReadStore, Sealer};

pub use gateway::{GatewaySettings, RunningGateway};

/// How long the projector waits at its start for the read store to take the projections'
/// tables before it starts anyway (see [`System::start_projector`]).
const PREPARE_WITHIN: Duration = Duration::from_secs(5);

/// Why a role could not start, or why the system stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// What is asked needs the read store and the connections have none.
    #[error("this process was started without the read store, which {0} needs")]
    NoReadStore(&'static str),
    /// An address could not be listened on.
    #[error("cannot listen on {address} ({setting})")]
    Listen {
        /// The address.
        address: String,
        /// The setting that named it.
        setting: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file the gateway leaves for scripts (`http.url`, `metrics.url`) failed.
    #[error("writing {file}")]
    WriteFile {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command service could not subscribe to its subject.
    #[error("the {role:?} command service could not subscribe")]
    Subscribe {
        /// Which service.
        role: ServiceRole,
        /// Why.
        #[source]
        source: async_nats::SubscribeError,
    },
    /// A command service's seal requests could not be subscribed to.
    #[error("the seal requests could not be subscribed to")]
    SealRequests(#[source] async_nats::SubscribeError),
    /// A role stopped on an error it could not retry (see the log).
    #[error("a role stopped on an error (see the log above)")]
    RoleStopped,
}

/// What one role connects with.
#[derive(Debug, Clone)]
pub struct RoleConnections {
    /// The NATS client, with this role's credential.
    pub client: async_nats::Client,
    /// The event log (signing what it appends, for the command services).
    pub log: EventLog,
    /// The read store; None for a process whose roles never read it (the command services),
    /// so that they start and serve while the database is down.
    pub store: Option<ReadStore>,
    /// Seals the log; the command services' connections only.
    pub sealer: Option<Sealer>,
    /// Seals and opens petitioners' personal data; the command services' and the gateway's.
    pub vault: Option<PersonalDataVault>,
}

impl RoleConnections {
    /// The read store, which `needed_by` (a role, a command) needs.
    pub fn read_store(&self, needed_by: &'static str) -> Result<&ReadStore, AppError> {
        self.store.as_ref().ok_or(AppError::NoReadStore(needed_by))
    }
}

/// The bureau's own rules: its review chain (for the command services), its internal time limits
/// (for the projector) and its supervision rules (for the watch beside the gateway).
#[derive(Debug, Clone, Default)]
pub struct BureauSettings {
    /// For the command services.
    pub lifecycle: Arc<LifecycleSettings>,
    /// For the projector.
    pub projector: Arc<ProjectorSettings>,
    /// For the supervision watch (escalation, warnings, notifications; beside the gateway).
    pub supervision: Arc<zhzj_supervision::SupervisionRules>,
}

/// Running roles, started one by one, stopped together in order: the front (HTTP, the demo's
/// loading) first, then the back (command services, projector).
#[derive(Debug)]
pub struct System {
    clock: Arc<dyn Clock>,
    bureau: BureauSettings,
    front: CancellationToken,
    front_tracker: TaskTracker,
    back: CancellationToken,
    back_tracker: TaskTracker,
    /// Cancelled when a role stops on its own.
    stopped: CancellationToken,
    /// Files the gateway left for scripts, removed once it stops.
    left_files: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl System {
    /// A system with nothing running yet, on `clock` and with the bureau's rules.
    pub fn new(clock: Arc<dyn Clock>, bureau: BureauSettings) -> Self {
        Self {
            clock,
            bureau,
            front: CancellationToken::new(),
            front_tracker: TaskTracker::new(),
            back: CancellationToken::new(),
            back_tracker: TaskTracker::new(),
            stopped: CancellationToken::new(),
            left_files: std::sync::Mutex::default(),
        }
    }

    /// Cancelled when a role stops on its own (an error it cannot retry): the process should
    /// stop, so that its supervisor can restart it.
    pub fn stopped(&self) -> CancellationToken {
        self.stopped.clone()
    }

    /// Fired when the front is told to stop: work started with [`System::spawn_front`] watches
    /// it.
    pub fn front_shutdown(&self) -> CancellationToken {
        self.front.clone()
    }

    /// Runs `task` in the front: it is waited for before the back stops.
    pub fn spawn_front<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.front_tracker.spawn(task);
    }

    /// Marks the system as stopped by a failure (the demo's loading failed, say).
    pub fn fail(&self) {
        self.stopped.cancel();
    }

    /// Starts the `cases` or `campaign` command service, returning once it takes commands. With
    /// a sealer, the `cases` one also answers the gateway's seal requests and seals the log
    /// every `seal_interval`.
    pub async fn start_command_service(
        &self,
        role: ServiceRole,
        conn: &RoleConnections,
        seal_interval: Duration,
    ) -> Result<(), AppError> {
        let mut service = CasesService::new(conn.log.clone(), Arc::clone(&self.clock))
            .with_settings((*self.bureau.lifecycle).clone());
        if let Some(vault) = &conn.vault {
            service = service.with_vault(vault.clone());
        }
        let (client, shutdown) = (conn.client.clone(), self.back.clone());
        if let Some(sealer) = &conn.sealer {
            service = service.with_sealer(sealer.clone());
            if role == ServiceRole::Cases {
                let requests = zhzj_cases::sealing::spawn_seal_requests(
                    client.clone(),
                    sealer.clone(),
                    shutdown.clone(),
                )
                .await
                .map_err(AppError::SealRequests)?;
                self.back_tracker.spawn(async move {
                    let _ = requests.await;
                });
                self.back_tracker.spawn(
                    sealer
                        .clone()
                        .run_interval(seal_interval.max(Duration::from_secs(1)), shutdown.clone()),
                );
            }
        }
        // Subscribed before this returns: a gateway started next finds someone to answer.
        let serving = zhzj_cases::spawn_as(client, service, role, shutdown)
            .await
            .map_err(|source| AppError::Subscribe { role, source })?;
        self.back_tracker.spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, ?role, "command service stopped");
            }
        });
        Ok(())
    }

    /// Starts the projector (one reader for every projection) once their tables exist, so that
    /// a gateway started next in the same process finds the views. A read store that is down is
    /// not waited for: the projections make their tables when it is back.
    pub async fn start_projector(&self, conn: &RoleConnections) -> Result<(), AppError> {
        self.start_projector_on(
            conn.log.clone(),
            conn.read_store("the projector role")?.clone(),
        )
        .await;
        Ok(())
    }

    /// [`System::start_projector`] on a log and a read store (the projector's whole need).
    pub async fn start_projector_on(&self, log: EventLog, store: ReadStore) {
        match tokio::time::timeout(PREPARE_WITHIN, zhzj_projector::prepare(&store)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the projections' tables could not be made yet");
            }
            Err(_) => tracing::warn!("the read store did not answer within {PREPARE_WITHIN:?}"),
        }
        let (stopped, shutdown) = (self.stopped(), self.back.clone());
        let settings = Arc::clone(&self.bureau.projector);
        self.back_tracker.spawn(async move {
            let projections = Projection::ALL.to_vec();
            let run = zhzj_projector::run_together(log, store, projections, settings, shutdown);
            if let Err(e) = run.await {
                tracing::error!(error = %e, "projector stopped");
                stopped.cancel();
            }
        });
    }

    /// Stops everything in order, each stage within `grace`: the front (HTTP requests finish),
    /// then the back (in-flight commands answered, the projector's batch committed). Fails when
    /// a role had stopped on its own.
    pub async fn stop(&self, grace: Duration) -> Result<(), AppError> {
        self.front_tracker.close();
        self.back_tracker.close();
        self.front.cancel();
        if tokio::time::timeout(grace, self.front_tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("HTTP requests did not finish within {grace:?}; stopping anyway");
        }
        let left = std::mem::take(
            &mut *self
                .left_files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for file in left {
            // Missing is fine: someone may have removed it.
            let _ = std::fs::remove_file(file);
        }
        self.back.cancel();
        if tokio::time::timeout(grace, self.back_tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight work did not finish within {grace:?}; stopping anyway");
        }
        if self.stopped.is_cancelled() {
            return Err(AppError::RoleStopped);
        }
        Ok(())
    }
}
