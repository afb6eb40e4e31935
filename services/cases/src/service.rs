//! The command handler and the NATS loop that feeds it.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, Command, CommandAccepted, CommandError, CommandReply, CommandRequest, Commit,
    DomainEvent, ErrorKind, EventEnvelope, Snapshot,
    commands::MAX_COMMAND_BYTES,
    envelope::RawCommit,
    subjects::{CAMPAIGN_COMMANDS, CAMPAIGN_QUEUE_GROUP, CASES_COMMANDS, CASES_QUEUE_GROUP},
};
use zhzj_store::{
    AppendError, AppendOutcome, AppendRequest, Clock, EventLog, ExpectedVersion, china_date,
};

use crate::access::{self, Action, CasePlace};
use crate::account::{self, AccountState};
use crate::aggregate::{Aggregate, AggregateCache, AggregateLoadError, Loaded, load, remember};
use crate::campaign::{self, BulletinState, MeetingState, PushState};
use crate::case::{self, CaseState, RegistrationPlace};
use crate::directory::{self, LeaderState, UnitState, check_token_id};
use crate::lifecycle::{self, LifecycleSettings};
use crate::validate::check_no_control;

/// How often a command is decided again after losing a race to another writer.
const MAX_ATTEMPTS: u32 = 32;
/// Commands handled at once by one instance.
pub const MAX_IN_FLIGHT: usize = 256;
/// Namespace for case ids derived from command ids.
const CASE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_52a0_0d3c_4d0e_9c1b_7a5e_2f84_c3d1);

/// Aggregates kept in memory per instance.
const CACHED_AGGREGATES: usize = 50_000;

/// Answers commands. Cheap to clone; its only state is a cache that a restart may lose.
#[derive(Debug, Clone)]
pub struct CasesService {
    log: EventLog,
    clock: Arc<dyn Clock>,
    caches: Arc<Caches>,
    settings: Arc<LifecycleSettings>,
    /// Seals the log after a bulletin is published; None when this service does not seal.
    sealer: Option<zhzj_store::Sealer>,
    /// Seals petitioners' personal data before it is appended; None only in tests of other
    /// things (a registration is then stored in plaintext, as before encryption).
    vault: Option<zhzj_store::PersonalDataVault>,
}

/// One cache per aggregate type.
#[derive(Debug)]
struct Caches {
    cases: AggregateCache<CaseState>,
    units: AggregateCache<UnitState>,
    leaders: AggregateCache<LeaderState>,
    meetings: AggregateCache<MeetingState>,
    bulletins: AggregateCache<BulletinState>,
    pushes: AggregateCache<PushState>,
    accounts: AggregateCache<AccountState>,
}

/// An aggregate type with its cache.
trait Cached: Aggregate {
    fn cache(caches: &Caches) -> &AggregateCache<Self>;
}

impl Cached for CaseState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.cases
    }
}

impl Cached for UnitState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.units
    }
}

impl Cached for LeaderState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.leaders
    }
}

impl Cached for MeetingState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.meetings
    }
}

impl Cached for BulletinState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.bulletins
    }
}

impl Cached for AccountState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.accounts
    }
}

impl Cached for PushState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.pushes
    }
}

/// The id of the case a `register_case` command creates when it names none: derived from the
/// command id, so a retried registration names the same case.
pub fn case_id_for_command(command_id: Uuid) -> Uuid {
    Uuid::new_v5(&CASE_ID_NAMESPACE, command_id.as_bytes())
}

/// The answer to a failed load: a commit that cannot be read is a permanent `corrupt_history`
/// naming the aggregate and position (no retry helps until an administrator repairs it);
/// anything else is a retryable `unavailable`.
fn load_failed(aggregate_type: AggregateType, id: &str, e: AggregateLoadError) -> CommandError {
    match e.unreadable() {
        Some((position, reason)) => {
            metrics::counter!("zhzj_corrupt_history_total", "aggregate_type" => aggregate_type.as_str())
                .increment(1);
            tracing::error!(
                aggregate_type = aggregate_type.as_str(),
                id,
                position,
                reason,
                "history holds an unreadable commit"
            );
            CommandError::new(
                ErrorKind::CorruptHistory,
                format!(
                    "{} {id} 的历史在日志位置 {position} 处有无法读取的记录 ({reason})；重试无效，\
                     请系统管理员修复：zhzj command '{{\"type\":\"skip_unreadable_commits\",\
                     \"case_id\":\"{id}\",\"positions\":[{position}],\"reason\":\"…\"}}'",
                    aggregate_type.as_str()
                ),
            )
        }
        None => unavailable(e),
    }
}

fn unavailable(e: impl std::fmt::Display) -> CommandError {
    CommandError::new(
        ErrorKind::Unavailable,
        format!("事件日志暂不可用，请重试: {e}"),
    )
}

/// The petitioners of a checked registration, sealed.
async fn seal_petitioners(
    vault: &zhzj_store::PersonalDataVault,
    checked: &[zhzj_proto::CaseEvent],
    town_id: Option<&str>,
) -> Result<Vec<zhzj_proto::events::SealedPetitioner>, CommandError> {
    let Some(zhzj_proto::CaseEvent::Registered(registered)) = checked.first() else {
        return Ok(Vec::new());
    };
    let mut sealed = Vec::with_capacity(registered.petitioners.len());
    for petitioner in &registered.petitioners {
        if let zhzj_proto::events::RecordedPetitioner::Plain(p) = petitioner {
            sealed.push(vault.seal(p, town_id).await.map_err(|e| {
                tracing::error!(error = %e, "personal data could not be sealed");
                CommandError::new(
                    zhzj_proto::ErrorKind::Unavailable,
                    "个人信息加密服务暂不可用，请稍后重试 (the key store did not answer)",
                )
            })?);
        }
    }
    Ok(sealed)
}

fn case_events(events: Vec<zhzj_proto::CaseEvent>) -> Vec<DomainEvent> {
    events.into_iter().map(DomainEvent::Case).collect()
}

fn directory_events(events: Vec<zhzj_proto::DirectoryEvent>) -> Vec<DomainEvent> {
    events.into_iter().map(DomainEvent::Directory).collect()
}

impl CasesService {
    /// A service appending to `log`, reading time from `clock`.
    pub fn new(log: EventLog, clock: Arc<dyn Clock>) -> Self {
        Self {
            log,
            clock,
            caches: Arc::new(Caches {
                cases: AggregateCache::new(CACHED_AGGREGATES),
                units: AggregateCache::new(CACHED_AGGREGATES),
                leaders: AggregateCache::new(CACHED_AGGREGATES),
                meetings: AggregateCache::new(CACHED_AGGREGATES),
                bulletins: AggregateCache::new(64),
                pushes: AggregateCache::new(64),
                accounts: AggregateCache::new(4_096),
            }),
            settings: Arc::new(LifecycleSettings::default()),
            sealer: None,
            vault: None,
        }
    }

    /// The same service, sealing every petitioner's personal data under a data key of their own
    /// in `vault` before a registration is appended.
    pub fn with_vault(mut self, vault: zhzj_store::PersonalDataVault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The same service, sealing the log whenever a bulletin is published.
    pub fn with_sealer(mut self, sealer: zhzj_store::Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The same service with the bureau's lifecycle settings (review chain, categories).
    pub fn with_settings(mut self, settings: LifecycleSettings) -> Self {
        self.settings = Arc::new(settings);
        self
    }

    /// Handles a raw command body as received on the command subject.
    pub async fn handle_payload(&self, payload: &[u8]) -> CommandReply {
        match parse_request(payload) {
            Ok(request) => self.handle(request).await,
            Err(error) => CommandReply::Error(error),
        }
    }

    /// [`CasesService::handle_payload`] for a command received on `role`'s subject: a command
    /// that belongs to the other service is refused.
    pub async fn handle_payload_as(&self, payload: &[u8], role: ServiceRole) -> CommandReply {
        match parse_request(payload) {
            Ok(request) if request.command.is_campaign() != (role == ServiceRole::Campaign) => {
                CommandReply::Error(CommandError::invalid(
                    "command.type",
                    format!(
                        "{} 命令应发往 {} (wrong service)",
                        request.command.kind(),
                        request.command.subject()
                    ),
                ))
            }
            Ok(request) => self.handle(request).await,
            Err(error) => CommandReply::Error(error),
        }
    }

    /// Handles one command.
    pub async fn handle(&self, request: CommandRequest) -> CommandReply {
        let span = tracing::info_span!(
            "command",
            command_id = %request.command_id,
            correlation_id = %request.correlation_id.unwrap_or(request.command_id),
            kind = request.command.kind(),
        );
        async {
            let outcome = self.dispatch(&request).await;
            let outcome_label = match &outcome {
                Ok(_) => "accepted",
                Err(error) => error.kind.as_str(),
            };
            metrics::counter!(
                "zhzj_commands_handled_total",
                "type" => request.command.kind(),
                "outcome" => outcome_label
            )
            .increment(1);
            match &outcome {
                Ok(accepted) => tracing::info!(version = accepted.version, "command accepted"),
                Err(error) => {
                    tracing::info!(kind = ?error.kind, message = %error.message, "command refused")
                }
            }
            match outcome {
                Ok(accepted) => CommandReply::Ok(accepted),
                Err(error) => CommandReply::Error(error),
            }
        }
        .instrument(span)
        .await
    }

    /// The units from `unit_id` up to the top of the directory.
    async fn ancestry(&self, unit_id: &str) -> Result<Vec<String>, CommandError> {
        let mut chain = Vec::new();
        let mut next = Some(unit_id.to_owned());
        while let Some(id) = next {
            // The directory is a tree a few levels deep; the bound only guards the loop.
            if chain.len() > 8 || chain.contains(&id) {
                break;
            }
            let unit = self.require::<UnitState>("unit_id", &id).await?;
            chain.push(id);
            next = unit.parent_id;
        }
        Ok(chain)
    }

    /// Checks the actor's role and scope for the command (see [`access`]).
    async fn authorize(&self, request: &CommandRequest) -> Result<(), CommandError> {
        let actor = &request.actor;
        if let Command::RecordAccount(c) = &request.command {
            return account::check(actor, c);
        }
        let action = access::action_of(&request.command);
        if action == Action::Directory {
            return access::check_directory(actor);
        }
        if action == Action::Repair {
            return access::check_repair(actor);
        }
        if action == Action::Erase {
            return access::check_erase(actor);
        }
        if access::sees_everything(actor) {
            return Ok(());
        }
        if request.command.is_campaign() {
            return self.authorize_campaign(request).await;
        }
        let place = match (&request.command, access::case_id_of(&request.command)) {
            (Command::RegisterCase(c), _) => {
                let unit = c.town_id.as_deref().unwrap_or(&c.district_id);
                match self.ancestry(unit).await {
                    Ok(ancestry) => CasePlace {
                        ancestry,
                        leader_id: None,
                        responsible_units: Vec::new(),
                    },
                    // An unknown unit is for the command's own checks to name.
                    Err(_) => return Ok(()),
                }
            }
            (_, Some(case_id)) => {
                let id = case_id.to_string();
                let loaded = match CaseState::cache(&self.caches).get(&id) {
                    Some(cached) => cached,
                    None => load::<CaseState>(&self.log, &id)
                        .await
                        .map_err(|e| load_failed(AggregateType::Case, &id, e))?,
                };
                if !loaded.state.exists() {
                    // The command's own checks answer "not found".
                    return Ok(());
                }
                let state = loaded.state;
                let unit = state.town_id.clone().unwrap_or(state.district_id.clone());
                CasePlace {
                    ancestry: self.ancestry(&unit).await?,
                    leader_id: state.leader.map(|l| l.id),
                    responsible_units: state
                        .lead_unit_id
                        .into_iter()
                        .chain(state.assisting_unit_ids)
                        .collect(),
                }
            }
            (_, None) => return Ok(()),
        };
        let kind = match &actor.unit_id {
            Some(unit) => self
                .require::<UnitState>("actor.unit_id", unit)
                .await
                .ok()
                .and_then(|u| u.kind),
            None => None,
        };
        access::check_case(actor, action, &place, kind)
    }

    /// The scope check of a campaign command (see [`access::check_campaign`]). An unknown meeting
    /// or unit is for the command's own checks to name.
    async fn authorize_campaign(&self, request: &CommandRequest) -> Result<(), CommandError> {
        let meeting = |id: &str| {
            let id = id.to_owned();
            async move {
                self.require::<MeetingState>("command.meeting_id", &id)
                    .await
            }
        };
        let (unit, addressee) = match &request.command {
            Command::HoldMeeting(c) => (c.unit_id.clone(), None),
            // The city publishes the bulletin and launches the push: its coordinators.
            Command::PublishBulletin(_) | Command::LaunchPush(_) => {
                let city = match &request.actor.unit_id {
                    Some(unit) => self.require::<UnitState>("actor.unit_id", unit).await.ok(),
                    None => None,
                };
                let is_city =
                    city.is_some_and(|u| u.kind == Some(zhzj_proto::events::UnitKind::City));
                if is_city
                    && request
                        .actor
                        .has_role(zhzj_proto::accounts::Role::Coordinator)
                {
                    return Ok(());
                }
                return Err(CommandError::new(
                    ErrorKind::Forbidden,
                    "只有市级专班协调员可以发布月通报、部署季度攻坚 (city coordinators only)",
                ));
            }
            Command::IssueInstruction(c) => match meeting(&c.meeting_id).await {
                Ok(state) => (state.unit_id, None),
                Err(_) => return Ok(()),
            },
            Command::RecordInstructionFeedback(c) => match meeting(&c.meeting_id).await {
                Ok(state) => match state.instructions.get(&c.number).cloned() {
                    Some(addressee) => (state.unit_id, Some(addressee)),
                    None => return Ok(()),
                },
                Err(_) => return Ok(()),
            },
            _ => return Ok(()),
        };
        let Ok(meeting_ancestry) = self.ancestry(&unit).await else {
            return Ok(());
        };
        let (addressee_unit, addressee_leader) = addressee.unwrap_or_default();
        let addressee_ancestry = match &addressee_unit {
            Some(unit) => self.ancestry(unit).await.unwrap_or_default(),
            None => Vec::new(),
        };
        access::check_campaign(
            &request.actor,
            &meeting_ancestry,
            &addressee_ancestry,
            addressee_leader.as_deref(),
        )
    }

    async fn dispatch(&self, request: &CommandRequest) -> Result<CommandAccepted, CommandError> {
        check_actor(&request.actor)?;
        self.authorize(request).await?;
        match &request.command {
            Command::RegisterCase(c) => {
                let case_id = c
                    .case_id
                    .unwrap_or_else(|| case_id_for_command(request.command_id));
                let district = self
                    .require::<UnitState>("command.district_id", &c.district_id)
                    .await?;
                let town = match &c.town_id {
                    Some(id) => Some(self.require::<UnitState>("command.town_id", id).await?),
                    None => None,
                };
                let today = china_date(self.clock.now());
                let place = || RegistrationPlace {
                    district: &district,
                    town: town.as_ref(),
                };
                // The petitioners are checked and normalised first (nothing is sealed for a
                // command that is refused), then sealed, each under a key of their own.
                let sealed = match &self.vault {
                    Some(vault) => {
                        let checked =
                            case::register(&CaseState::default(), case_id, c, place(), today)?;
                        Some(seal_petitioners(vault, &checked, c.town_id.as_deref()).await?)
                    }
                    None => None,
                };
                let result = self
                    .execute::<CaseState>(request, &case_id.to_string(), None, |state| {
                        let mut events = case::register(state, case_id, c, place(), today)?;
                        if let (Some(sealed), Some(zhzj_proto::CaseEvent::Registered(e))) =
                            (&sealed, events.first_mut())
                        {
                            e.petitioners = sealed
                                .iter()
                                .cloned()
                                .map(zhzj_proto::events::RecordedPetitioner::Sealed)
                                .collect();
                        }
                        Ok(case_events(events))
                    })
                    .await;
                // A registration that was not appended leaves no keys behind.
                if let (Err(_), Some(vault), Some(sealed)) = (&result, &self.vault, &sealed) {
                    for petitioner in sealed {
                        if let Err(e) = vault.discard_unused(&petitioner.key_id).await {
                            tracing::warn!(error = %e, key_id = %petitioner.key_id, "an unused data key was not discarded");
                        }
                    }
                }
                result
            }
            Command::AssignLeader(c) => {
                let leader = self
                    .require::<LeaderState>("command.leader_id", &c.leader_id)
                    .await?;
                self.execute_on_case(request, c.case_id, |state| {
                    case::assign_leader(state, c, leader.to_ref())
                })
                .await
            }
            Command::SetResponsibleUnits(c) => {
                let lead = self
                    .require::<UnitState>("command.lead_unit_id", &c.lead_unit_id)
                    .await?
                    .to_ref();
                let mut assisting = Vec::with_capacity(c.assisting_unit_ids.len());
                for (i, id) in c.assisting_unit_ids.iter().enumerate() {
                    let field = format!("command.assisting_unit_ids[{i}]");
                    assisting.push(self.require::<UnitState>(&field, id).await?.to_ref());
                }
                self.execute_on_case(request, c.case_id, |_| {
                    case::set_responsible_units(c, lead.clone(), assisting.clone())
                })
                .await
            }
            Command::AddMeasure(c) => {
                let unit = match &c.responsible_unit_id {
                    Some(id) => Some(
                        self.require::<UnitState>("command.responsible_unit_id", id)
                            .await?
                            .to_ref(),
                    ),
                    None => None,
                };
                let today = china_date(self.clock.now());
                self.execute_on_case(request, c.case_id, |state| {
                    case::add_measure(state, c, unit.clone(), today)
                })
                .await
            }
            Command::CompleteMeasure(c) => {
                self.execute_on_case(request, c.case_id, |state| case::complete_measure(state, c))
                    .await
            }
            Command::RecordNote(c) => {
                self.execute_on_case(request, c.case_id, |_| case::record_note(c))
                    .await
            }
            Command::SkipUnreadableCommits(c) => self.skip_unreadable_commits(request, c).await,
            Command::ErasePetitioner(c) => self.erase_petitioner(request, c).await,
            Command::RecordActivity(c) => {
                let leader = match &c.leader_id {
                    Some(id) => Some(
                        self.require::<LeaderState>("command.leader_id", id)
                            .await?
                            .to_ref(),
                    ),
                    None => None,
                };
                let today = china_date(self.clock.now());
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::record_activity(state, c, leader.clone(), today)
                })
                .await
            }
            Command::ExtendHandling(c) => {
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::extend_handling(state, c)
                })
                .await
            }
            Command::ClassifyCase(c) => {
                let settings = Arc::clone(&self.settings);
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::classify(state, c, &settings)
                })
                .await
            }
            Command::ClaimResolution(c) => {
                self.execute_on_case(request, c.case_id, |state| lifecycle::claim(state, c))
                    .await
            }
            Command::ReviewClaim(c) => {
                let settings = Arc::clone(&self.settings);
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::review(state, c, &settings)
                })
                .await
            }
            Command::RecordPetition(c) => {
                let today = china_date(self.clock.now());
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::record_petition(state, c, today)
                })
                .await
            }
            Command::RateSatisfaction(c) => {
                let today = china_date(self.clock.now());
                self.execute_on_case(request, c.case_id, |state| lifecycle::rate(state, c, today))
                    .await
            }
            Command::RecordProcedureStep(c) => {
                let today = china_date(self.clock.now());
                self.execute_on_case(request, c.case_id, |state| {
                    lifecycle::record_procedure_step(state, c, today)
                })
                .await
            }
            Command::HoldMeeting(c) => {
                let unit = self
                    .require::<UnitState>("command.unit_id", &c.unit_id)
                    .await?;
                let held_at = self.clock.now();
                let id = campaign::meeting_id(&c.unit_id, china_date(held_at));
                let position = self.log.last_position().await.map_err(unavailable)?;
                self.execute::<MeetingState>(request, &id, None, |state| {
                    campaign::hold(state, c, unit.to_ref(), held_at, position)
                })
                .await
            }
            Command::IssueInstruction(c) => {
                let meeting = self
                    .require::<MeetingState>("command.meeting_id", &c.meeting_id)
                    .await?;
                let unit = match &c.unit_id {
                    Some(id) => Some(self.require::<UnitState>("command.unit_id", id).await?),
                    None => None,
                };
                let leader = match &c.leader_id {
                    Some(id) => Some(
                        self.require::<LeaderState>("command.leader_id", id)
                            .await?
                            .to_ref(),
                    ),
                    None => None,
                };
                if let Some(case_id) = c.case_id {
                    let case = self
                        .require::<CaseState>("command.case_id", &case_id.to_string())
                        .await?;
                    let place = case.town_id.clone().unwrap_or(case.district_id.clone());
                    if !self.ancestry(&place).await?.contains(&meeting.unit_id) {
                        return Err(CommandError::invalid(
                            "command.case_id",
                            "案件不在本次调度会单位的管辖范围内 (case outside the meeting's unit)",
                        ));
                    }
                }
                let unit = unit.map(|u| u.to_ref());
                let today = china_date(self.clock.now());
                self.execute::<MeetingState>(
                    request,
                    &c.meeting_id,
                    Some("command.meeting_id"),
                    |state| campaign::issue(state, c, unit.clone(), leader.clone(), today),
                )
                .await
            }
            Command::RecordInstructionFeedback(c) => {
                let today = china_date(self.clock.now());
                self.execute::<MeetingState>(
                    request,
                    &c.meeting_id,
                    Some("command.meeting_id"),
                    |state| campaign::feedback(state, c, today),
                )
                .await
            }
            Command::PublishBulletin(c) => {
                let published_at = self.clock.now();
                let position = self.log.last_position().await.map_err(unavailable)?;
                let id = if zhzj_deadlines::periods::month_bounds(&c.month).is_some() {
                    c.month.clone()
                } else {
                    "invalid".to_owned()
                };
                let accepted = self
                    .execute::<BulletinState>(request, &id, None, |state| {
                        campaign::publish(state, &c.month, published_at, position)
                    })
                    .await?;
                if let Some(sealer) = &self.sealer {
                    // The published figures stand on the log up to here: seal it. A failure
                    // leaves the bulletin published; the next interval's seal covers it.
                    if let Err(e) = sealer.seal(Some(accepted.version), "bulletin").await {
                        tracing::warn!(error = %e, month = %c.month, "could not seal the log after publishing");
                    }
                }
                Ok(accepted)
            }
            Command::LaunchPush(c) => {
                for (i, case_id) in c.case_ids.iter().enumerate() {
                    self.require::<CaseState>(
                        &format!("command.case_ids[{i}]"),
                        &case_id.to_string(),
                    )
                    .await?;
                }
                let mut targets = Vec::with_capacity(c.targets.len());
                for (i, target) in c.targets.iter().enumerate() {
                    let field = format!("command.targets[{i}].unit_id");
                    let unit = self.require::<UnitState>(&field, &target.unit_id).await?;
                    if unit.kind == Some(zhzj_proto::events::UnitKind::City) {
                        return Err(CommandError::invalid(
                            field,
                            "目标须落到区、镇街或职能部门 (not the city)",
                        ));
                    }
                    targets.push(zhzj_proto::events::PushTarget {
                        unit: unit.to_ref(),
                        cases: target.cases,
                        rate_percent: target.rate_percent,
                    });
                }
                let today = china_date(self.clock.now());
                let id = if zhzj_deadlines::periods::quarter_bounds(&c.quarter).is_some() {
                    c.quarter.clone()
                } else {
                    "invalid".to_owned()
                };
                self.execute::<PushState>(request, &id, None, |state| {
                    campaign::launch(state, c, targets.clone(), today)
                })
                .await
            }
            Command::AddUnit(c) => {
                check_token_id("command.unit_id", &c.unit_id)?;
                let parent = match &c.parent_id {
                    Some(id) => Some(self.require::<UnitState>("command.parent_id", id).await?),
                    None => None,
                };
                self.execute::<UnitState>(request, &c.unit_id, None, |state| {
                    directory::add_unit(state, c, parent.as_ref()).map(directory_events)
                })
                .await
            }
            Command::AddLeader(c) => {
                check_token_id("command.leader_id", &c.leader_id)?;
                self.require::<UnitState>("command.unit_id", &c.unit_id)
                    .await?;
                self.execute::<LeaderState>(request, &c.leader_id, None, |state| {
                    directory::add_leader(state, c).map(directory_events)
                })
                .await
            }
            Command::RecordAccount(c) => {
                let id = zhzj_proto::accounts::account_stream_id(&c.username);
                self.execute::<AccountState>(request, &id, None, |state| account::decide(state, c))
                    .await
            }
        }
    }

    /// Loads an aggregate that a command refers to; `not_found` naming `field` if it is missing.
    /// Units and leaders never change once added, so one found is cached for good.
    async fn require<A: Cached>(&self, field: &str, id: &str) -> Result<A, CommandError> {
        check_token_id(field, id)?;
        if let Some(cached) = A::cache(&self.caches).get(id) {
            return Ok(cached.state);
        }
        let loaded = load::<A>(&self.log, id)
            .await
            .map_err(|e| load_failed(A::TYPE, id, e))?;
        if loaded.state.exists() {
            let state = loaded.state.clone();
            A::cache(&self.caches).put(id, loaded);
            Ok(state)
        } else {
            Err(CommandError::not_found(
                field,
                format!("{field} {id} 不存在 (not found)"),
            ))
        }
    }

    async fn execute_on_case(
        &self,
        request: &CommandRequest,
        case_id: Uuid,
        decide: impl Fn(&CaseState) -> Result<Vec<zhzj_proto::CaseEvent>, CommandError>,
    ) -> Result<CommandAccepted, CommandError> {
        self.execute::<CaseState>(
            request,
            &case_id.to_string(),
            Some("command.case_id"),
            |state| decide(state).map(case_events),
        )
        .await
    }

    /// Loads, decides and appends, deciding again when another writer got there first (unless
    /// the request named the version it expected). A cached aggregate is trusted only until it
    /// disagrees: a refusal or a conflict based on it is checked against a fresh load first.
    async fn execute<A: Cached>(
        &self,
        request: &CommandRequest,
        id: &str,
        must_exist: Option<&str>,
        decide: impl Fn(&A) -> Result<Vec<DomainEvent>, CommandError>,
    ) -> Result<CommandAccepted, CommandError> {
        let accepted = |version| CommandAccepted {
            aggregate_type: A::TYPE,
            aggregate_id: id.to_owned(),
            version,
        };
        let cache = A::cache(&self.caches);
        if request.unknown_outcome_retry {
            // The first attempt may have committed longer ago than the log de-duplicates: look
            // through the aggregate's whole history before deciding anything.
            let (found, _) = self
                .log
                .find_command(A::TYPE, id, request.command_id, 0)
                .await
                .map_err(|e| load_failed(A::TYPE, id, e.into()))?;
            if let Some(version) = found {
                return Ok(accepted(version));
            }
        }
        for attempt in 0..MAX_ATTEMPTS {
            let (loaded, from_cache) = match cache.get(id) {
                Some(cached) => (cached, true),
                None => (
                    load::<A>(&self.log, id)
                        .await
                        .map_err(|e| load_failed(A::TYPE, id, e))?,
                    false,
                ),
            };
            if let Some(version) = loaded.remembered(request.command_id) {
                return Ok(accepted(version));
            }
            let decision = self.decide_on(request, id, must_exist, &loaded, &decide);
            let events = match decision {
                Ok(events) => events,
                Err(_) if from_cache => {
                    // Perhaps the cache is behind: decide again on what the log says.
                    cache.remove(id);
                    continue;
                }
                Err(error) if error.kind == ErrorKind::Conflict => {
                    // A retry whose first attempt committed (its acknowledgement lost) names a
                    // version the case has since left: look for the command after that version.
                    let after = request.expected_version.unwrap_or(0);
                    let found = self
                        .log
                        .find_command(A::TYPE, id, request.command_id, after)
                        .await
                        .map_err(|e| load_failed(A::TYPE, id, e.into()))?;
                    return match found {
                        (Some(version), _) => Ok(accepted(version)),
                        (None, _) => Err(error),
                    };
                }
                Err(error) => return Err(error),
            };
            let mut state = loaded.state;
            for event in &events {
                state.apply(event);
            }
            let snapshot_json = serde_json::to_string(&Snapshot {
                schema_version: A::SNAPSHOT_VERSION,
                state: &state,
            })
            .map_err(unavailable)?;
            let commit = build_commit(request, A::TYPE, id, &events, self.clock.now())
                .map_err(unavailable)?;
            let append = AppendRequest {
                aggregate_type: A::TYPE,
                aggregate_id: id,
                expected: loaded
                    .version
                    .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exactly),
                previous: loaded.head,
                command_id: request.command_id,
                commit: &commit,
                snapshot_json: Some(snapshot_json),
            };
            let append_started = std::time::Instant::now();
            let appended = self.log.append(append).await;
            metrics::histogram!("zhzj_append_seconds")
                .record(append_started.elapsed().as_secs_f64());
            match appended {
                Ok(AppendOutcome::Committed { version, digest }) => {
                    let mut recent_commands = loaded.recent_commands;
                    remember(&mut recent_commands, request.command_id, version);
                    cache.put(
                        id,
                        Loaded {
                            state,
                            version: Some(version),
                            head: Some(digest),
                            recent_commands,
                        },
                    );
                    return Ok(accepted(version));
                }
                Ok(AppendOutcome::AlreadyCommitted { version }) => {
                    cache.remove(id);
                    return Ok(accepted(version));
                }
                Err(AppendError::Conflict { current_version }) => {
                    cache.remove(id);
                    if request.expected_version.is_some() {
                        let current = current_version.unwrap_or(0);
                        return Err(CommandError::conflict(
                            current,
                            format!("版本已变更：当前 {current} (stale version)"),
                        ));
                    }
                    tracing::debug!(?current_version, "lost a race; deciding again");
                    if !from_cache {
                        // Spread the retries of racing writers apart (jitter from the command id).
                        let jitter = (request.command_id.as_u128() % 1_000) as u64 + 200;
                        let pause = jitter * u64::from(attempt + 1);
                        tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                    }
                }
                Err(AppendError::CorruptHistory(e)) => {
                    cache.remove(id);
                    return Err(load_failed(A::TYPE, id, e.into()));
                }
                Err(AppendError::TooLarge { bytes }) => {
                    return Err(CommandError::new(
                        ErrorKind::TooLarge,
                        format!("提交内容过大 ({bytes} 字节)"),
                    ));
                }
                Err(e) => {
                    cache.remove(id);
                    return Err(unavailable(e));
                }
            }
        }
        Err(CommandError::new(
            ErrorKind::Unavailable,
            "并发写入过多，请重试 (too much contention, retry)",
        ))
    }

    /// Erases a petitioner: decides on the case as it is (a refused erasure destroys nothing),
    /// destroys the data key, then appends `PetitionerErased`. The key goes first: if the append
    /// fails the petitioner already shows as 已删除 and a retry records it; a retry of a command
    /// that was recorded answers as the first time did.
    async fn erase_petitioner(
        &self,
        request: &CommandRequest,
        command: &zhzj_proto::commands::ErasePetitioner,
    ) -> Result<CommandAccepted, CommandError> {
        let Some(vault) = &self.vault else {
            return Err(CommandError::new(
                ErrorKind::Unavailable,
                "未配置个人信息密钥库，无法删除 (no key store: --master-key-file)",
            ));
        };
        let id = command.case_id.to_string();
        let loaded = load::<CaseState>(&self.log, &id)
            .await
            .map_err(|e| load_failed(AggregateType::Case, &id, e))?;
        if !loaded.state.exists() {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 不存在 (not found)"),
            ));
        }
        let keys = self
            .petitioner_keys(&id, loaded.version.unwrap_or(0))
            .await?;
        if loaded.remembered(request.command_id).is_none() {
            for event in case::erase_petitioner(&loaded.state, command, &keys)? {
                if let zhzj_proto::CaseEvent::PetitionerErased(erased) = event {
                    vault.erase(&erased.key_id).await.map_err(unavailable)?;
                }
            }
        }
        self.execute_on_case(request, command.case_id, |state| {
            case::erase_petitioner(state, command, &keys)
        })
        .await
    }

    /// The data keys of case `id`'s petitioners, from its registration (its first commit).
    async fn petitioner_keys(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Vec<Option<String>>, CommandError> {
        use crate::aggregate::commit_events;
        let messages = self
            .log
            .read_aggregate_messages(AggregateType::Case, id, 1, version)
            .await
            .map_err(unavailable)?;
        let registration = messages
            .first()
            .and_then(|m| m.commit.as_ref().ok())
            .and_then(|stored| commit_events(stored).ok())
            .and_then(|events| {
                events.into_iter().find_map(|event| match event {
                    DomainEvent::Case(zhzj_proto::CaseEvent::Registered(e)) => Some(e),
                    _ => None,
                })
            });
        match registration {
            Some(registered) => Ok(case::petitioner_keys(&registered)),
            None => Err(CommandError::new(
                ErrorKind::Unavailable,
                format!("案件 {id} 的登记记录无法读取 (the registration is unreadable)"),
            )),
        }
    }

    /// Repairs a case whose history holds unreadable commits: the command must name every
    /// unreadable position not yet skipped; the case is replayed without them and a commit
    /// recording the repair, with a fresh snapshot, makes it writable again.
    async fn skip_unreadable_commits(
        &self,
        request: &CommandRequest,
        command: &zhzj_proto::commands::SkipUnreadableCommits,
    ) -> Result<CommandAccepted, CommandError> {
        use crate::aggregate::{commit_events, skipped_positions};
        let id = command.case_id.to_string();
        check_no_control("command.reason", &command.reason)?;
        if command.reason.trim().is_empty() {
            return Err(CommandError::invalid("command.reason", "请说明修复原因"));
        }
        let Some(last) = self
            .log
            .last_version(AggregateType::Case, &id)
            .await
            .map_err(unavailable)?
        else {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 不存在 (not found)"),
            ));
        };
        let messages = self
            .log
            .read_aggregate_messages(AggregateType::Case, &id, 1, last)
            .await
            .map_err(unavailable)?;
        let skipped = skipped_positions(&messages);
        let unreadable: std::collections::BTreeSet<u64> = messages
            .iter()
            .filter(|m| !skipped.contains(&m.position))
            .filter(|m| match &m.commit {
                Ok(stored) => commit_events(stored).is_err(),
                Err(_) => true,
            })
            .map(|m| m.position)
            .collect();
        let named: std::collections::BTreeSet<u64> = command.positions.iter().copied().collect();
        if unreadable.is_empty() {
            return Err(CommandError::invalid(
                "command.positions",
                format!("案件 {id} 的历史中没有需要跳过的无法读取的记录"),
            ));
        }
        if named != unreadable {
            return Err(CommandError::invalid(
                "command.positions",
                format!(
                    "须列出案件 {id} 全部无法读取的记录位置：{:?}（给出的是 {:?}）",
                    unreadable, named
                ),
            ));
        }
        let mut state = CaseState::default();
        for message in &messages {
            if skipped.contains(&message.position) || named.contains(&message.position) {
                continue;
            }
            if let Ok(stored) = &message.commit
                && let Ok(events) = commit_events(stored)
            {
                for event in &events {
                    state.apply(event);
                }
            }
        }
        if !state.exists() {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 没有可读的登记记录"),
            ));
        }
        let events = vec![DomainEvent::Case(
            zhzj_proto::CaseEvent::UnreadableCommitsSkipped(
                zhzj_proto::events::UnreadableCommitsSkipped {
                    positions: named.into_iter().collect(),
                    reason: command.reason.clone(),
                },
            ),
        )];
        for event in &events {
            state.apply(event);
        }
        let snapshot_json = serde_json::to_string(&Snapshot {
            schema_version: CaseState::SNAPSHOT_VERSION,
            state: &state,
        })
        .map_err(unavailable)?;
        let commit = build_commit(request, AggregateType::Case, &id, &events, self.clock.now())
            .map_err(unavailable)?;
        let appended = self
            .log
            .append(AppendRequest {
                aggregate_type: AggregateType::Case,
                aggregate_id: &id,
                expected: ExpectedVersion::Exactly(last),
                previous: messages.last().map(|message| message.digest),
                command_id: request.command_id,
                commit: &commit,
                snapshot_json: Some(snapshot_json),
            })
            .await;
        CaseState::cache(&self.caches).remove(&id);
        match appended {
            Ok(outcome) => {
                tracing::warn!(case_id = %id, positions = ?command.positions, actor = %request.actor.user_id, "history repaired: unreadable commits skipped");
                Ok(CommandAccepted {
                    aggregate_type: AggregateType::Case,
                    aggregate_id: id,
                    version: outcome.version(),
                })
            }
            Err(AppendError::Conflict { current_version }) => Err(CommandError::conflict(
                current_version.unwrap_or(0),
                "案件在修复期间被改动，请重新检查后再修复 (changed meanwhile)",
            )),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The checks and the decision on one loaded aggregate.
    fn decide_on<A: Aggregate>(
        &self,
        request: &CommandRequest,
        id: &str,
        must_exist: Option<&str>,
        loaded: &Loaded<A>,
        decide: &impl Fn(&A) -> Result<Vec<DomainEvent>, CommandError>,
    ) -> Result<Vec<DomainEvent>, CommandError> {
        if let Some(field) = must_exist
            && !loaded.state.exists()
        {
            return Err(CommandError::not_found(
                field,
                format!("{id} 不存在 (not found)"),
            ));
        }
        let current = loaded.version.unwrap_or(0);
        if let Some(expected) = request.expected_version
            && expected != current
        {
            return Err(CommandError::conflict(
                current,
                format!("版本已变更：期望 {expected}，当前 {current} (stale version)"),
            ));
        }
        decide(&loaded.state)
    }
}

/// Wraps the events a command decided into the commit appended for it: envelopes with the
/// command's metadata and ids derived from the command id. Each event's data is serialised once,
/// here.
pub fn build_commit(
    request: &CommandRequest,
    aggregate_type: AggregateType,
    aggregate_id: &str,
    events: &[DomainEvent],
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> Result<RawCommit, serde_json::Error> {
    let events = events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let (event_type, schema_version, data) = event.encode()?;
            Ok(EventEnvelope {
                // Derived from the command, so a decision taken again yields the same ids.
                event_id: Uuid::new_v5(&request.command_id, &(index as u64).to_be_bytes()),
                aggregate_type,
                aggregate_id: aggregate_id.to_owned(),
                event_type: event_type.to_owned(),
                schema_version,
                occurred_at,
                actor: request.actor.clone(),
                command_id: request.command_id,
                correlation_id: request.correlation_id.unwrap_or(request.command_id),
                causation_id: request.causation_id.unwrap_or(request.command_id),
                data,
            })
        })
        .collect::<Result<_, serde_json::Error>>()?;
    Ok(Commit { events })
}

/// The actor must name a user, and none of its fields may carry control characters (they are
/// stored with every event).
fn check_actor(actor: &zhzj_proto::Actor) -> Result<(), CommandError> {
    if actor.user_id.trim().is_empty() {
        return Err(CommandError::invalid(
            "actor.user_id",
            "须注明操作人 (actor required)",
        ));
    }
    check_no_control("actor.user_id", &actor.user_id)?;
    for (i, role) in actor.roles.iter().enumerate() {
        check_no_control(&format!("actor.roles[{i}]"), role)?;
    }
    if let Some(unit) = &actor.unit_id {
        check_no_control("actor.unit_id", unit)?;
    }
    Ok(())
}

/// Parses a command body, naming the field at fault when it is malformed.
pub fn parse_request(payload: &[u8]) -> Result<CommandRequest, CommandError> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::new(
            ErrorKind::TooLarge,
            format!(
                "命令过大：{} 字节，上限 {MAX_COMMAND_BYTES} 字节 (command too large)",
                payload.len()
            ),
        ));
    }
    if let Ok(request) = serde_json::from_slice(payload) {
        return Ok(request);
    }
    // Parse again, slower, to name the field at fault.
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let inner = e.inner().to_string();
        let mut path = e.path().to_string();
        if path == "?" {
            // The body is not JSON at all: no field to name.
            path = ".".to_owned();
        }
        // For a missing field serde names it only in the message; the path ends at its parent.
        if let Some(rest) = inner.split("missing field `").nth(1)
            && let Some(name) = rest.split('`').next()
        {
            path = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
        }
        let field = if path == "." { None } else { Some(path) };
        CommandError {
            field,
            ..CommandError::new(ErrorKind::Invalid, format!("命令格式错误: {inner}"))
        }
    })
}

/// Serves commands from the queue group until `shutdown` fires, then stops taking new ones,
/// answers those already received, and returns.
pub async fn serve(
    client: async_nats::Client,
    service: CasesService,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    spawn(client, service, shutdown).await?.await.ok();
    Ok(())
}

/// [`serve`] for the given role's subject.
pub async fn serve_as(
    client: async_nats::Client,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    spawn_as(client, service, role, shutdown).await?.await.ok();
    Ok(())
}

/// Which commands a subscription answers: the same decision engine serves the `cases` role
/// (cases and the directory) and the `campaign` role (meetings and instructions), each on its own
/// subject and queue group, so that each scales and fails on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// Cases and the org directory, on [`CASES_COMMANDS`].
    Cases,
    /// The campaign rhythm, on [`CAMPAIGN_COMMANDS`].
    Campaign,
}

impl ServiceRole {
    fn subject(self) -> (&'static str, &'static str) {
        match self {
            Self::Cases => (CASES_COMMANDS, CASES_QUEUE_GROUP),
            Self::Campaign => (CAMPAIGN_COMMANDS, CAMPAIGN_QUEUE_GROUP),
        }
    }
}

/// Subscribes to the `cases` command subject, waits until the server has the subscription (so a
/// command sent after this returns finds a responder), then serves in a task until `shutdown`
/// fires.
pub async fn spawn(
    client: async_nats::Client,
    service: CasesService,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    spawn_as(client, service, ServiceRole::Cases, shutdown).await
}

/// [`spawn`] for the given role's subject.
pub async fn spawn_as(
    client: async_nats::Client,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    let (subject, queue_group) = role.subject();
    let subscription = client
        .queue_subscribe(subject, queue_group.to_owned())
        .await?;
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not confirm the command subscription");
    }
    Ok(tokio::spawn(run_subscription(
        client,
        subscription,
        service,
        role,
        shutdown,
    )))
}

async fn run_subscription(
    client: async_nats::Client,
    mut subscription: async_nats::Subscriber,
    service: CasesService,
    role: ServiceRole,
    shutdown: CancellationToken,
) {
    let in_flight = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut draining = false;
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            () = shutdown.cancelled(), if !draining => {
                // Stop taking new commands; messages already delivered still come through.
                draining = true;
                if let Err(e) = subscription.drain().await {
                    tracing::warn!(error = %e, "could not drain the command subscription");
                    break;
                }
                continue;
            }
        };
        let Some(message) = message else { break };
        if message.subject.as_str() != role.subject().0 {
            // Not a command: a JetStream push consumer someone pointed at the command subject
            // delivers stream messages under their own subjects. Never answered.
            tracing::warn!(subject = %message.subject, "dropped a message that is not a command");
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let service = service.clone();
        let client = client.clone();
        in_flight.spawn(async move {
            // Boxed: the handler's state machine is about 8 KB, and a task's future is copied
            // whole when it is spawned and again when it completes (about 7 % of the service's
            // CPU in a profile). Boxed, the task holds a pointer and the message.
            let reply = Box::pin(service.handle_payload_as(&message.payload, role)).await;
            if let Some(reply_to) = message.reply {
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, Bytes::from(body)).await {
                    tracing::warn!(error = %e, "could not send a command reply");
                }
            }
            drop(permit);
        });
    }
    in_flight.close();
    in_flight.wait().await;
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush command replies");
    }
}
