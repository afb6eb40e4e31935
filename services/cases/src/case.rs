//! The case aggregate (积案): its state, and the decisions that turn case commands into events.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, CaseEvent, CommandAccepted, CommandError, DomainEvent,
    commands::{
        AddMeasure, AssignLeader, CompleteMeasure, ErasePetitioner, RecordNote, RegisterCase,
        SetResponsibleUnits,
    },
    events::{
        LeaderAssigned, LeaderReassigned, LeaderRef, MeasureAdded, MeasureCompleted, NoteRecorded,
        PetitionerErased, RecordedPetitioner, ResponsibleUnitsSet, SealedPetitioner, UnitRef,
    },
};

use crate::access::Action;
use crate::aggregate::{Aggregate, commit_events, load};
use crate::directory::{LeaderState, UnitState};
use crate::handle::{Context, HandledCommand};
use crate::service::{case_id_for_command, load_failed, unavailable};
use crate::validate::{optional_text, required_text};
use zhzj_proto::dates::DateKind;

/// The id of the `n`th measure of a case (1-based).
pub fn measure_id(n: u32) -> String {
    format!("m{n}")
}

/// The number in a measure id (`m7` → 7).
pub fn measure_number(id: &str) -> Option<u32> {
    id.strip_prefix('m')?.parse().ok()
}

/// What the service needs to know of a case to decide on commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    /// Whether the case has been registered.
    pub registered: bool,
    /// Case number.
    pub case_number: String,
    /// District unit id.
    pub district_id: String,
    /// Town unit id.
    pub town_id: Option<String>,
    /// The owning leader.
    pub leader: Option<LeaderRef>,
    /// The lead unit.
    pub lead_unit_id: Option<String>,
    /// The assisting units.
    #[serde(default)]
    pub assisting_unit_ids: Vec<String>,
    /// Measures added so far; they are `m1` … `m<n>`.
    pub measures_added: u32,
    /// Numbers of the measures ticked off. (Kept this small because a snapshot travels with
    /// every commit.)
    pub measures_completed: std::collections::BTreeSet<u32>,
    /// Number of events applied.
    pub event_count: u64,
    /// The 三到位一处理 class, once classified.
    #[serde(default)]
    pub class: Option<zhzj_proto::events::ClaimClass>,
    /// Resolution claims made so far.
    #[serde(default)]
    pub claims: u32,
    /// The claim under review.
    #[serde(default)]
    pub open_claim: Option<u32>,
    /// Levels of the review chain that accepted the open claim.
    #[serde(default)]
    pub accepted_levels: u32,
    /// The claim that crossed the case off, while it is crossed off.
    #[serde(default)]
    pub crossed_off_by: Option<u32>,
    /// New petitions recorded on the case.
    #[serde(default)]
    pub repeat_count: u32,
    /// Times the case was reopened after crossing off.
    #[serde(default)]
    pub relapses: u32,
    /// Whether the current handling period was extended (it may be, once).
    #[serde(default)]
    pub handling_extended: bool,
    /// The last step of the statutory procedure in the current handling period, and its date.
    #[serde(default)]
    pub procedure: Option<(zhzj_proto::events::ProcedureStep, chrono::NaiveDate)>,
    /// Whether the second review was answered: the matter is concluded (终结) and a new petition
    /// on it is recorded but not accepted again.
    #[serde(default)]
    pub concluded: bool,
    /// The petitioners erased (1-based, as listed).
    #[serde(default)]
    pub erased_petitioners: std::collections::BTreeSet<u32>,
}

impl Aggregate for CaseState {
    const TYPE: AggregateType = AggregateType::Case;
    const SNAPSHOT_VERSION: u32 = 4;

    fn apply(&mut self, event: &DomainEvent) {
        let DomainEvent::Case(event) = event else {
            return;
        };
        self.event_count += 1;
        match event {
            CaseEvent::Registered(e) => {
                self.registered = true;
                self.case_number = e.case_number.clone();
                self.district_id = e.district.id.clone();
                self.town_id = e.town.as_ref().map(|t| t.id.clone());
            }
            CaseEvent::PetitionerErased(e) => {
                self.erased_petitioners.insert(e.petitioner);
            }
            CaseEvent::LeaderAssigned(e) => self.leader = Some(e.leader.clone()),
            CaseEvent::LeaderReassigned(e) => self.leader = Some(e.to.clone()),
            CaseEvent::ResponsibleUnitsSet(e) => {
                self.lead_unit_id = Some(e.lead.id.clone());
                self.assisting_unit_ids = e.assisting.iter().map(|u| u.id.clone()).collect();
            }
            CaseEvent::MeasureAdded(_) => self.measures_added += 1,
            CaseEvent::MeasureCompleted(e) => {
                if let Some(n) = measure_number(&e.measure_id) {
                    self.measures_completed.insert(n);
                }
            }
            CaseEvent::NoteRecorded(_)
            | CaseEvent::SatisfactionRated(_)
            | CaseEvent::LeaderActivity(_)
            | CaseEvent::UnreadableCommitsSkipped(_) => {}
            CaseEvent::HandlingExtended(_) => self.handling_extended = true,
            CaseEvent::ProcedureStep(e) => {
                self.procedure = Some((e.step, e.on));
                if e.step == zhzj_proto::events::ProcedureStep::SecondReviewAnswered {
                    self.concluded = true;
                }
            }
            CaseEvent::Classified(e) => self.class = Some(e.class),
            CaseEvent::ResolutionClaimed(e) => {
                self.claims = e.claim;
                self.open_claim = Some(e.claim);
                self.accepted_levels = 0;
            }
            CaseEvent::ClaimAccepted(_) => self.accepted_levels += 1,
            CaseEvent::ClaimSentBack(_) => {
                self.open_claim = None;
                self.accepted_levels = 0;
            }
            CaseEvent::CrossedOff(e) => {
                self.open_claim = None;
                self.crossed_off_by = Some(e.claim);
            }
            CaseEvent::PetitionRecorded(e) => self.repeat_count = e.repeat_count,
            CaseEvent::Reopened(e) => {
                self.crossed_off_by = None;
                self.handling_extended = false;
                self.procedure = None;
                self.accepted_levels = 0;
                self.relapses = e.relapse_count;
            }
        }
    }

    fn exists(&self) -> bool {
        self.registered
    }
}

/// Decides on assigning or reassigning the owning leader.
pub fn assign_leader(
    state: &CaseState,
    command: &AssignLeader,
    leader: LeaderRef,
) -> Result<Vec<CaseEvent>, CommandError> {
    let reason = optional_text("command.reason", command.reason.as_deref(), 500)?;
    match &state.leader {
        None => Ok(vec![CaseEvent::LeaderAssigned(LeaderAssigned {
            leader,
            reason,
        })]),
        Some(current) if current.id == leader.id => Err(CommandError::invalid(
            "command.leader_id",
            format!("{} 已是本案包案领导", leader.name),
        )),
        Some(current) => {
            let Some(reason) = reason else {
                return Err(CommandError::invalid(
                    "command.reason",
                    "更换包案领导须说明理由 (a reassignment needs a reason)",
                ));
            };
            Ok(vec![CaseEvent::LeaderReassigned(LeaderReassigned {
                from: current.clone(),
                to: leader,
                reason,
            })])
        }
    }
}

/// Decides on setting the responsible units; the units are already resolved.
pub fn set_responsible_units(
    command: &SetResponsibleUnits,
    lead: UnitRef,
    assisting: Vec<UnitRef>,
) -> Result<Vec<CaseEvent>, CommandError> {
    for (i, unit) in assisting.iter().enumerate() {
        if unit.id == lead.id {
            return Err(CommandError::invalid(
                format!("command.assisting_unit_ids[{i}]"),
                "协办单位不能与主办单位相同 (an assisting unit cannot be the lead unit)",
            ));
        }
        if assisting[..i].iter().any(|earlier| earlier.id == unit.id) {
            return Err(CommandError::invalid(
                format!("command.assisting_unit_ids[{i}]"),
                "协办单位重复 (assisting unit listed twice)",
            ));
        }
    }
    let handler = optional_text("command.handler", command.handler.as_deref(), 50)?;
    Ok(vec![CaseEvent::ResponsibleUnitsSet(ResponsibleUnitsSet {
        lead,
        assisting,
        handler,
    })])
}

/// Decides on adding a measure; its id is the next `m<n>` of the case.
pub fn add_measure(
    state: &CaseState,
    command: &AddMeasure,
    responsible_unit: Option<UnitRef>,
    today: chrono::NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    let description = required_text("command.description", &command.description, 1000)?;
    if let Some(due_on) = command.due_on {
        crate::validate::date("command.due_on", due_on, DateKind::Ahead, today)?;
    }
    Ok(vec![CaseEvent::MeasureAdded(MeasureAdded {
        measure_id: measure_id(state.measures_added + 1),
        description,
        due_on: command.due_on,
        responsible_unit,
    })])
}

/// Decides on ticking off a measure.
pub fn complete_measure(
    state: &CaseState,
    command: &CompleteMeasure,
) -> Result<Vec<CaseEvent>, CommandError> {
    let number =
        measure_number(&command.measure_id).filter(|n| (1..=state.measures_added).contains(n));
    let Some(number) = number else {
        return Err(CommandError::not_found(
            "command.measure_id",
            format!("本案没有措施 {}", command.measure_id),
        ));
    };
    if state.measures_completed.contains(&number) {
        return Err(CommandError::invalid(
            "command.measure_id",
            format!("措施 {} 已完成", command.measure_id),
        ));
    }
    let result = required_text("command.result", &command.result, 2000)?;
    Ok(vec![CaseEvent::MeasureCompleted(MeasureCompleted {
        measure_id: measure_id(number),
        result,
    })])
}

/// Decides on recording a note.
pub fn record_note(command: &RecordNote) -> Result<Vec<CaseEvent>, CommandError> {
    let text = required_text("command.text", &command.text, 5000)?;
    Ok(vec![CaseEvent::NoteRecorded(NoteRecorded { text })])
}

/// Each petitioner's data key as `registered` lists them (None: stored in plaintext, before
/// encryption). Kept out of [`CaseState`], whose snapshot travels with every commit: erasure,
/// which alone needs them, reads the registration.
pub fn petitioner_keys(registered: &zhzj_proto::events::CaseRegistered) -> Vec<Option<String>> {
    registered
        .petitioners
        .iter()
        .map(|p| match p {
            RecordedPetitioner::Sealed(sealed) => Some(sealed.key_id.clone()),
            RecordedPetitioner::Plain(_) => None,
        })
        .collect()
}

/// Decides on erasing a petitioner, given the case's [`petitioner_keys`]: they must be listed,
/// sealed (a registration stored in plaintext before encryption cannot be shredded) and not
/// erased yet; the reason is required.
pub fn erase_petitioner(
    state: &CaseState,
    command: &ErasePetitioner,
    petitioner_keys: &[Option<String>],
) -> Result<Vec<CaseEvent>, CommandError> {
    let reason = required_text("command.reason", &command.reason, 500)?;
    let listed = usize::try_from(command.petitioner)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| petitioner_keys.get(i));
    let Some(key) = listed else {
        return Err(CommandError::invalid(
            "command.petitioner",
            format!(
                "本案共有 {} 位信访人，没有第 {} 位",
                petitioner_keys.len(),
                command.petitioner
            ),
        ));
    };
    if state.erased_petitioners.contains(&command.petitioner) {
        return Err(CommandError::new(
            zhzj_proto::ErrorKind::Conflict,
            format!("第 {} 位信访人的个人信息已删除", command.petitioner),
        ));
    }
    let Some(key_id) = key else {
        return Err(CommandError::invalid(
            "command.petitioner",
            format!(
                "第 {} 位信访人登记于个人信息加密之前，日志中为明文，无法以销毁密钥的方式删除",
                command.petitioner
            ),
        ));
    };
    Ok(vec![CaseEvent::PetitionerErased(PetitionerErased {
        petitioner: command.petitioner,
        key_id: key_id.clone(),
        reason,
    })])
}

/// The facts of a registration that come from the directory, already loaded.
#[derive(Debug)]
pub struct RegistrationPlace<'a> {
    /// The district named by the command.
    pub district: &'a crate::directory::UnitState,
    /// The town named by the command, if any.
    pub town: Option<&'a crate::directory::UnitState>,
}

/// Decides on registering a case.
pub fn register(
    state: &CaseState,
    case_id: uuid::Uuid,
    command: &RegisterCase,
    place: RegistrationPlace<'_>,
    today: chrono::NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    use zhzj_proto::events::{CaseRegistered, Petitioner, UnitKind};
    use zhzj_proto::ids::is_valid_resident_id;

    if state.exists() {
        return Err(CommandError::new(
            zhzj_proto::ErrorKind::Conflict,
            format!("案件 {case_id} 已登记 (case already registered)"),
        ));
    }
    if place.district.kind != Some(UnitKind::District) {
        return Err(CommandError::invalid(
            "command.district_id",
            format!("{} 不是区", place.district.name),
        ));
    }
    if let Some(town) = place.town
        && (town.kind != Some(UnitKind::Town)
            || town.parent_id.as_deref() != Some(place.district.unit_id.as_str()))
    {
        return Err(CommandError::invalid(
            "command.town_id",
            format!("{} 不是 {} 下辖的镇街", town.name, place.district.name),
        ));
    }
    if command.petitioners.is_empty() {
        return Err(CommandError::invalid(
            "command.petitioners",
            "至少须有一名信访人 (at least one petitioner)",
        ));
    }
    let mut petitioners = Vec::with_capacity(command.petitioners.len());
    for (i, p) in command.petitioners.iter().enumerate() {
        let field = |name: &str| format!("command.petitioners[{i}].{name}");
        let id_number = optional_text(&field("id_number"), p.id_number.as_deref(), 18)?
            .map(|id| id.to_ascii_uppercase());
        if let Some(id) = &id_number
            && !is_valid_resident_id(id)
        {
            return Err(CommandError::invalid(
                field("id_number"),
                "身份证号码格式或校验位不正确 (invalid resident ID number)",
            ));
        }
        let phone = optional_text(&field("phone"), p.phone.as_deref(), 20)?;
        if let Some(phone) = &phone
            && (phone.len() < 5
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ')))
        {
            return Err(CommandError::invalid(
                field("phone"),
                "电话号码格式不正确 (invalid phone number)",
            ));
        }
        petitioners.push(Petitioner {
            name: required_text(
                &field("name"),
                &zhzj_proto::names::normalize_name(&p.name),
                50,
            )?,
            id_number,
            phone,
            address: optional_text(&field("address"), p.address.as_deref(), 200)?,
        });
    }
    crate::validate::date(
        "command.first_filed_on",
        command.first_filed_on,
        DateKind::Happened,
        today,
    )?;
    let group_size = command.group_size.unwrap_or(1);
    if group_size == 0 {
        return Err(CommandError::invalid(
            "command.group_size",
            "人数至少为 1 (group size must be at least 1)",
        ));
    }
    let case_number =
        match optional_text("command.case_number", command.case_number.as_deref(), 64)? {
            Some(number) => number,
            None => format!(
                "XF{}-{}",
                today.format("%Y%m%d"),
                &case_id.simple().to_string()[..6].to_ascii_uppercase()
            ),
        };
    // In plaintext here; the service seals them before the commit is appended.
    Ok(vec![CaseEvent::Registered(CaseRegistered {
        case_number,
        petitioners: petitioners
            .into_iter()
            .map(zhzj_proto::events::RecordedPetitioner::Plain)
            .collect(),
        matter: required_text("command.matter", &command.matter, 2000)?,
        category: required_text("command.category", &command.category, 50)?,
        district: place.district.to_ref(),
        town: place.town.map(crate::directory::UnitState::to_ref),
        channel: command.channel,
        first_filed_on: command.first_filed_on,
        list_source: command.list_source,
        group_size,
    })])
}

// How each case command is handled: what it looks up, then which decision above it takes.

impl HandledCommand for RegisterCase {
    fn action(&self) -> Action {
        Action::Register
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let case_id = self
            .case_id
            .unwrap_or_else(|| case_id_for_command(context.request.command_id));
        let district = context
            .require::<UnitState>("command.district_id", &self.district_id)
            .await?;
        let town = context
            .require_optional::<UnitState>("command.town_id", self.town_id.as_deref())
            .await?;
        let today = context.today();
        let place = || RegistrationPlace {
            district: &district,
            town: town.as_ref(),
        };
        // The petitioners are checked and normalised first (nothing is sealed for a command that
        // is refused), then sealed, each under a key of their own.
        let sealed = match context.vault() {
            Some(vault) => {
                let checked = register(&CaseState::default(), case_id, self, place(), today)?;
                Some(seal_petitioners(vault, &checked, self.town_id.as_deref()).await?)
            }
            None => None,
        };
        let result = context
            .decide::<CaseState>(&case_id.to_string(), None, |state| {
                let mut events = register(state, case_id, self, place(), today)?;
                if let (Some(sealed), Some(CaseEvent::Registered(e))) =
                    (&sealed, events.first_mut())
                {
                    e.petitioners = sealed
                        .iter()
                        .cloned()
                        .map(RecordedPetitioner::Sealed)
                        .collect();
                }
                Ok(events.into_iter().map(DomainEvent::Case).collect())
            })
            .await;
        // A registration that was not appended leaves no keys behind.
        if let (Err(_), Some(vault), Some(sealed)) = (&result, context.vault(), &sealed) {
            for petitioner in sealed {
                if let Err(e) = vault.discard_unused(&petitioner.key_id).await {
                    tracing::warn!(error = %e, key_id = %petitioner.key_id, "an unused data key was not discarded");
                }
            }
        }
        result
    }
}

/// The petitioners of a checked registration, sealed.
async fn seal_petitioners(
    vault: &zhzj_store::PersonalDataVault,
    checked: &[CaseEvent],
    town_id: Option<&str>,
) -> Result<Vec<SealedPetitioner>, CommandError> {
    let Some(CaseEvent::Registered(registered)) = checked.first() else {
        return Ok(Vec::new());
    };
    let mut sealed = Vec::with_capacity(registered.petitioners.len());
    for petitioner in &registered.petitioners {
        if let RecordedPetitioner::Plain(p) = petitioner {
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

impl HandledCommand for AssignLeader {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let leader = context
            .require::<LeaderState>("command.leader_id", &self.leader_id)
            .await?
            .to_ref();
        context
            .decide_on_case(self.case_id, |state| {
                assign_leader(state, self, leader.clone())
            })
            .await
    }
}

impl HandledCommand for SetResponsibleUnits {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let lead = context
            .require::<UnitState>("command.lead_unit_id", &self.lead_unit_id)
            .await?
            .to_ref();
        let mut assisting = Vec::with_capacity(self.assisting_unit_ids.len());
        for (i, id) in self.assisting_unit_ids.iter().enumerate() {
            let field = format!("command.assisting_unit_ids[{i}]");
            assisting.push(context.require::<UnitState>(&field, id).await?.to_ref());
        }
        context
            .decide_on_case(self.case_id, |_| {
                set_responsible_units(self, lead.clone(), assisting.clone())
            })
            .await
    }
}

impl HandledCommand for AddMeasure {
    fn action(&self) -> Action {
        Action::LeaderWork
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let unit = context
            .require_optional::<UnitState>(
                "command.responsible_unit_id",
                self.responsible_unit_id.as_deref(),
            )
            .await?
            .map(|unit| unit.to_ref());
        let today = context.today();
        context
            .decide_on_case(self.case_id, |state| {
                add_measure(state, self, unit.clone(), today)
            })
            .await
    }
}

impl HandledCommand for CompleteMeasure {
    fn action(&self) -> Action {
        Action::LeaderWork
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        context
            .decide_on_case(self.case_id, |state| complete_measure(state, self))
            .await
    }
}

impl HandledCommand for RecordNote {
    fn action(&self) -> Action {
        Action::LeaderWork
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        context
            .decide_on_case(self.case_id, |_| record_note(self))
            .await
    }
}

/// Erases a petitioner: decides on the case as it is (a refused erasure destroys nothing),
/// destroys the data key, then appends `PetitionerErased`. The key goes first: if the append
/// fails the petitioner already shows as 已删除 and a retry records it; a retry of a command
/// that was recorded answers as the first time did.
impl HandledCommand for ErasePetitioner {
    fn action(&self) -> Action {
        Action::Erase
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let Some(vault) = context.vault() else {
            return Err(CommandError::new(
                zhzj_proto::ErrorKind::Unavailable,
                "未配置个人信息密钥库，无法删除 (no key store: --master-key-file)",
            ));
        };
        let id = self.case_id.to_string();
        let loaded = load::<CaseState>(context.log(), &id)
            .await
            .map_err(|e| load_failed(AggregateType::Case, &id, e))?;
        if !loaded.state.exists() {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 不存在 (not found)"),
            ));
        }
        let keys =
            registered_petitioner_keys(context.log(), &id, loaded.version.unwrap_or(0)).await?;
        if loaded.remembered(context.request.command_id).is_none() {
            for event in erase_petitioner(&loaded.state, self, &keys)? {
                if let CaseEvent::PetitionerErased(erased) = event {
                    vault.erase(&erased.key_id).await.map_err(unavailable)?;
                }
            }
        }
        context
            .decide_on_case(self.case_id, |state| erase_petitioner(state, self, &keys))
            .await
    }
}

/// The data keys of case `id`'s petitioners, from its registration (its first commit).
async fn registered_petitioner_keys(
    log: &zhzj_store::EventLog,
    id: &str,
    version: u64,
) -> Result<Vec<Option<String>>, CommandError> {
    let messages = log
        .read_aggregate_messages(AggregateType::Case, id, 1, version)
        .await
        .map_err(unavailable)?;
    let registration = messages
        .first()
        .and_then(|m| m.commit.as_ref().ok())
        .and_then(|stored| commit_events(stored).ok())
        .and_then(|events| {
            events.into_iter().find_map(|event| match event {
                DomainEvent::Case(CaseEvent::Registered(e)) => Some(e),
                _ => None,
            })
        });
    match registration {
        Some(registered) => Ok(petitioner_keys(&registered)),
        None => Err(CommandError::new(
            zhzj_proto::ErrorKind::Unavailable,
            format!("案件 {id} 的登记记录无法读取 (the registration is unreadable)"),
        )),
    }
}
