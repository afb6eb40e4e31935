//! The command service's engine: parses a request, checks the actor and its rights
//! ([`crate::authorize`]), hands the command to its aggregate ([`crate::handle`]), and runs the
//! load–decide–append loop every aggregate shares, with its cache and its answers to retries.

use std::sync::Arc;

use tracing::Instrument;
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, CommandAccepted, CommandError, CommandReply, CommandRequest, Commit,
    DomainEvent, ErrorKind, EventEnvelope, Snapshot, commands::MAX_COMMAND_BYTES,
    envelope::RawCommit,
};
use zhzj_store::{AppendError, AppendOutcome, AppendRequest, Clock, EventLog, ExpectedVersion};

use crate::account::AccountState;
use crate::aggregate::{Aggregate, AggregateCache, AggregateLoadError, Loaded, load, remember};
use crate::campaign::{BulletinState, MeetingState, PushState};
use crate::case::CaseState;
use crate::directory::{LeaderState, UnitState, check_token_id};
use crate::handle::{Context, HandledCommand};
use crate::lifecycle::LifecycleSettings;
use crate::subscription::ServiceRole;
use crate::supervision::SupervisionState;
use crate::validate::check_no_control;

pub use crate::subscription::MAX_IN_FLIGHT;

/// How often a command is decided again after losing a race to another writer.
const MAX_ATTEMPTS: u32 = 32;
/// Namespace for case ids derived from command ids.
const CASE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_52a0_0d3c_4d0e_9c1b_7a5e_2f84_c3d1);

/// Aggregates kept in memory per instance.
const CACHED_AGGREGATES: usize = 50_000;

/// Answers commands. Cheap to clone; its only state is a cache that a restart may lose.
#[derive(Debug, Clone)]
pub struct CasesService {
    pub(crate) log: EventLog,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) caches: Arc<Caches>,
    pub(crate) settings: Arc<LifecycleSettings>,
    /// Seals the log after a bulletin is published; None when this service does not seal.
    pub(crate) sealer: Option<zhzj_store::Sealer>,
    /// Seals petitioners' personal data before it is appended; None only in tests of other
    /// things (a registration is then stored in plaintext, as before encryption).
    pub(crate) vault: Option<zhzj_store::PersonalDataVault>,
}

/// One cache per aggregate type.
#[derive(Debug)]
pub(crate) struct Caches {
    cases: AggregateCache<CaseState>,
    units: AggregateCache<UnitState>,
    leaders: AggregateCache<LeaderState>,
    meetings: AggregateCache<MeetingState>,
    bulletins: AggregateCache<BulletinState>,
    pushes: AggregateCache<PushState>,
    accounts: AggregateCache<AccountState>,
    supervision_orders: AggregateCache<SupervisionState>,
}

/// An aggregate type with its cache.
pub(crate) trait Cached: Aggregate {
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

impl Cached for SupervisionState {
    fn cache(caches: &Caches) -> &AggregateCache<Self> {
        &caches.supervision_orders
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
pub(crate) fn load_failed(
    aggregate_type: AggregateType,
    id: &str,
    e: AggregateLoadError,
) -> CommandError {
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

pub(crate) fn unavailable(e: impl std::fmt::Display) -> CommandError {
    CommandError::new(
        ErrorKind::Unavailable,
        format!("事件日志暂不可用，请重试: {e}"),
    )
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
                supervision_orders: AggregateCache::new(4_096),
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
            let started = std::time::Instant::now();
            let outcome = self.dispatch(&request).await;
            metrics::histogram!("zhzj_command_handle_seconds")
                .record(started.elapsed().as_secs_f64());
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

    async fn dispatch(&self, request: &CommandRequest) -> Result<CommandAccepted, CommandError> {
        check_actor(&request.actor)?;
        self.authorize(request).await?;
        let context = Context {
            service: self,
            request,
        };
        zhzj_proto::match_command!(&request.command, command => command.handle(&context).await)
    }

    /// Loads an aggregate that a command refers to; `not_found` naming `field` if it is missing.
    /// Units and leaders never change once added, so one found is cached for good.
    pub(crate) async fn require<A: Cached>(
        &self,
        field: &str,
        id: &str,
    ) -> Result<A, CommandError> {
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

    /// Loads, decides and appends, deciding again when another writer got there first (unless
    /// the request named the version it expected). A cached aggregate is trusted only until it
    /// disagrees: a refusal or a conflict based on it is checked against a fresh load first.
    pub(crate) async fn execute<A: Cached>(
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
            match self.append_decided(request, id, loaded, &events).await {
                Appended::Done(outcome) => return outcome.map(accepted),
                Appended::LostRace => {
                    if !from_cache {
                        // Spread the retries of racing writers apart (jitter from the command id).
                        let jitter = (request.command_id.as_u128() % 1_000) as u64 + 200;
                        let pause = jitter * u64::from(attempt + 1);
                        tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                    }
                }
            }
        }
        Err(CommandError::new(
            ErrorKind::Unavailable,
            "并发写入过多，请重试 (too much contention, retry)",
        ))
    }

    /// Appends the events decided on a loaded aggregate, with its snapshot after them, and keeps
    /// the new state in the cache; a lost race (another writer appended first) is for the caller
    /// to decide again.
    async fn append_decided<A: Cached>(
        &self,
        request: &CommandRequest,
        id: &str,
        loaded: Loaded<A>,
        events: &[DomainEvent],
    ) -> Appended {
        let cache = A::cache(&self.caches);
        let mut state = loaded.state;
        for event in events {
            state.apply(event);
        }
        let snapshot_json = match serde_json::to_string(&Snapshot {
            schema_version: A::SNAPSHOT_VERSION,
            state: &state,
        }) {
            Ok(json) => json,
            Err(e) => return Appended::Done(Err(unavailable(e))),
        };
        let commit = match build_commit(request, A::TYPE, id, events, self.clock.now()) {
            Ok(commit) => commit,
            Err(e) => return Appended::Done(Err(unavailable(e))),
        };
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
        metrics::histogram!("zhzj_append_seconds").record(append_started.elapsed().as_secs_f64());
        Appended::Done(match appended {
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
                Ok(version)
            }
            Ok(AppendOutcome::AlreadyCommitted { version }) => {
                cache.remove(id);
                Ok(version)
            }
            Err(AppendError::Conflict { current_version }) => {
                cache.remove(id);
                if request.expected_version.is_some() {
                    let current = current_version.unwrap_or(0);
                    Err(CommandError::conflict(
                        current,
                        format!("版本已变更：当前 {current} (stale version)"),
                    ))
                } else {
                    tracing::debug!(?current_version, "lost a race; deciding again");
                    return Appended::LostRace;
                }
            }
            Err(AppendError::CorruptHistory(e)) => {
                cache.remove(id);
                Err(load_failed(A::TYPE, id, e.into()))
            }
            Err(AppendError::TooLarge { bytes }) => Err(CommandError::new(
                ErrorKind::TooLarge,
                format!("提交内容过大 ({bytes} 字节)"),
            )),
            Err(e) => {
                cache.remove(id);
                Err(unavailable(e))
            }
        })
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

/// How an append of decided events ended.
enum Appended {
    /// Appended (the version its commit got), or refused for good.
    Done(Result<u64, CommandError>),
    /// Another writer appended first: decide again.
    LostRace,
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
