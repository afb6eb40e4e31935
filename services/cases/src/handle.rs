//! How a command reaches its aggregate. Every command implements [`HandledCommand`] in the module
//! of the aggregate it changes — the action it asks for (for [`crate::access`]), the case it
//! names, and `handle`: look up what it refers to, then decide on its aggregate — and the service
//! dispatches to it with [`zhzj_proto::match_command!`]. A new command therefore touches its
//! contract in `proto`, its aggregate's module here, its route in the gateway and its test.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;
use zhzj_proto::{CaseEvent, CommandAccepted, CommandError, CommandRequest, DomainEvent};
use zhzj_store::{EventLog, china_date};

use crate::access::Action;
use crate::case::CaseState;
use crate::lifecycle::LifecycleSettings;
use crate::service::{Cached, CasesService};

/// A command the service answers, handled beside its aggregate.
pub(crate) trait HandledCommand: Sync {
    /// What the command asks to do, for the role and scope check.
    fn action(&self) -> Action {
        Action::CaseWork
    }

    /// The existing case the command works on, if it is a command on one case.
    fn case_id(&self) -> Option<Uuid> {
        None
    }

    /// Looks up what the command refers to, decides on its aggregate and appends the events.
    fn handle(
        &self,
        context: &Context<'_>,
    ) -> impl Future<Output = Result<CommandAccepted, CommandError>> + Send;
}

/// What a handler may use: the request being answered and the service's lookups, clock and
/// decide-and-append loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The service answering.
    pub(crate) service: &'a CasesService,
    /// The request being answered.
    pub(crate) request: &'a CommandRequest,
}

impl Context<'_> {
    /// The aggregate `id` refers to; `not_found` naming `field` when it does not exist.
    pub(crate) async fn require<A: Cached>(
        &self,
        field: &str,
        id: &str,
    ) -> Result<A, CommandError> {
        self.service.require(field, id).await
    }

    /// [`Context::require`] for an optional reference.
    pub(crate) async fn require_optional<A: Cached>(
        &self,
        field: &str,
        id: Option<&str>,
    ) -> Result<Option<A>, CommandError> {
        match id {
            Some(id) => self.service.require(field, id).await.map(Some),
            None => Ok(None),
        }
    }

    /// The units from `unit_id` up to the top of the directory.
    pub(crate) async fn ancestry(&self, unit_id: &str) -> Result<Vec<String>, CommandError> {
        self.service.ancestry(unit_id).await
    }

    /// The service's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.service.clock.now()
    }

    /// Today in China.
    pub(crate) fn today(&self) -> NaiveDate {
        china_date(self.now())
    }

    /// The bureau's lifecycle settings.
    pub(crate) fn settings(&self) -> Arc<LifecycleSettings> {
        Arc::clone(&self.service.settings)
    }

    /// The event log.
    pub(crate) fn log(&self) -> &EventLog {
        &self.service.log
    }

    /// The key store that seals petitioners' personal data, when one is configured.
    pub(crate) fn vault(&self) -> Option<&zhzj_store::PersonalDataVault> {
        self.service.vault.as_ref()
    }

    /// The sealer that seals the log after a bulletin, when this service seals.
    pub(crate) fn sealer(&self) -> Option<&zhzj_store::Sealer> {
        self.service.sealer.as_ref()
    }

    /// Forgets the cached state of aggregate `id`.
    pub(crate) fn forget<A: Cached>(&self, id: &str) {
        A::cache(&self.service.caches).remove(id);
    }

    /// Decides on aggregate `id` and appends (see [`CasesService::execute`]); `must_exist` names
    /// the field answered `not_found` when the aggregate does not exist yet.
    pub(crate) async fn decide<A: Cached>(
        &self,
        id: &str,
        must_exist: Option<&str>,
        decide: impl Fn(&A) -> Result<Vec<DomainEvent>, CommandError> + Send + Sync,
    ) -> Result<CommandAccepted, CommandError> {
        self.service
            .execute::<A>(self.request, id, must_exist, decide)
            .await
    }

    /// Decides on an existing case and appends its events.
    pub(crate) async fn decide_on_case(
        &self,
        case_id: Uuid,
        decide: impl Fn(&CaseState) -> Result<Vec<CaseEvent>, CommandError> + Send + Sync,
    ) -> Result<CommandAccepted, CommandError> {
        self.decide::<CaseState>(&case_id.to_string(), Some("command.case_id"), |state| {
            decide(state).map(|events| events.into_iter().map(DomainEvent::Case).collect())
        })
        .await
    }
}
