//! The domain events, version 1, and how they are read back from an envelope.
//!
//! Events are facts in the past tense and are never edited once stored. When an event's shape has
//! to change, it gets a new `schema_version` and [`DomainEvent::decode`] upcasts the old shape.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

mod campaign;
mod supervision;
mod vocabulary;

pub use campaign::{
    BulletinPublished, CampaignEvent, InstructionFeedbackRecorded, InstructionIssued, MeetingHeld,
    PushLaunched, PushTarget,
};
pub use supervision::{
    SupervisionAnswerAccepted, SupervisionAnswerSentBack, SupervisionEvent, SupervisionLevel,
    SupervisionOrderAcknowledged, SupervisionOrderAnswered, SupervisionOrderEscalated,
    SupervisionOrderIssued, SupervisionProgressReported,
};
pub use vocabulary::{
    ActivityKind, Channel, ClaimClass, LeaderLevel, ListSource, ProcedureStep, ResolutionGround,
    ReviewLevel, Satisfaction, UnitKind,
};

/// A reference to an org unit, with the name it had when the event was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnitRef {
    /// Unit id.
    pub id: String,
    /// Unit name, e.g. 思明区.
    pub name: String,
}

/// A reference to a leader, with the name and title they had when the event was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderRef {
    /// Leader id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Title, e.g. 区委常委、政法委书记.
    pub title: String,
    /// The unit the leader belongs to.
    pub unit_id: String,
}

/// A petitioner (信访人). Every field but the name is personal data that may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Petitioner {
    /// Name.
    pub name: String,
    /// 18-character resident ID number.
    #[serde(default)]
    pub id_number: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
}

/// A petitioner as the log holds them: sealed under their own data key (every registration since
/// personal data is encrypted), or in plaintext (registrations written before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RecordedPetitioner {
    /// Encrypted: see [`SealedPetitioner`].
    Sealed(SealedPetitioner),
    /// In plaintext, as registrations before encryption were stored.
    Plain(Petitioner),
}

/// A petitioner's [`Petitioner`] fields, sealed (AES-256-GCM or SM4-GCM) under a data key kept
/// outside the log; destroying the key erases them (crypto-shredding) while the log stays whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedPetitioner {
    /// The data key's id in the key store.
    pub key_id: String,
    /// The petitioner as the JSON array `[name, id_number, phone, address]` (an object in
    /// registrations sealed before 2026-12-03), sealed and bound to `key_id`
    /// (`v1.<algorithm>.<base64>`).
    pub sealed: String,
    /// Keyed blind index (HMAC) of the ID number, for the duplicate check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_index: Option<String>,
    /// Keyed blind index of the name in the case's town, for the duplicate check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_index: Option<String>,
}

/// 登记、列入清单: a backlog case is registered and put on the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseRegistered {
    /// Human-readable case number (案件编号).
    pub case_number: String,
    /// The petitioners, at least one.
    pub petitioners: Vec<RecordedPetitioner>,
    /// The matter (诉求).
    pub matter: String,
    /// Subject category, e.g. 征地拆迁.
    pub category: String,
    /// The district the matter lies in.
    pub district: UnitRef,
    /// The town or street the matter lies in.
    pub town: Option<UnitRef>,
    /// Channel of the first petition.
    pub channel: Channel,
    /// Date the matter was first filed.
    pub first_filed_on: NaiveDate,
    /// How the case came onto the list.
    pub list_source: ListSource,
    /// Number of people in the petition (group petitions have more than one).
    pub group_size: u32,
}

/// 领导包案: a leader is assigned to own a case that had none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderAssigned {
    /// The owning leader.
    pub leader: LeaderRef,
    /// Why, if given.
    pub reason: Option<String>,
}

/// The owning leader of a case is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderReassigned {
    /// The leader who owned the case until now.
    pub from: LeaderRef,
    /// The new owning leader.
    pub to: LeaderRef,
    /// Why (required for a reassignment).
    pub reason: String,
}

/// 责任单位: the lead unit (主办) and any assisting units (协办) are set, replacing earlier ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResponsibleUnitsSet {
    /// The lead unit.
    pub lead: UnitRef,
    /// Assisting units.
    pub assisting: Vec<UnitRef>,
    /// The named handler (具体责任人), if given.
    pub handler: Option<String>,
}

/// A measure (措施) is added to the case's plan (化解方案). Schema version 2: the measure may name
/// the unit that carries it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeasureAdded {
    /// Id of the measure within the case (`m1`, `m2`, …).
    pub measure_id: String,
    /// What is to be done.
    pub description: String,
    /// When it is due, if set.
    pub due_on: Option<NaiveDate>,
    /// The unit that carries the measure out, if named (new in version 2).
    pub responsible_unit: Option<UnitRef>,
}

/// [`MeasureAdded`] as schema version 1 wrote it (before measures named a unit); read through
/// [`EventData::upcast`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    rename = "MeasureAdded",
    description = "A measure (措施) is added to the case's plan."
)]
pub struct MeasureAddedV1 {
    /// Id of the measure within the case (`m1`, `m2`, …).
    pub measure_id: String,
    /// What is to be done.
    pub description: String,
    /// When it is due, if set.
    pub due_on: Option<NaiveDate>,
}

impl From<MeasureAddedV1> for MeasureAdded {
    fn from(v1: MeasureAddedV1) -> Self {
        Self {
            measure_id: v1.measure_id,
            description: v1.description,
            due_on: v1.due_on,
            responsible_unit: None,
        }
    }
}

/// A measure is ticked off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeasureCompleted {
    /// Id of the measure within the case.
    pub measure_id: String,
    /// What came of it.
    pub result: String,
}

/// A free-text note is recorded on the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoteRecorded {
    /// The note.
    pub text: String,
}

/// An administrator repaired a case's history: the commits at these log positions on the case's
/// subject cannot be read (a malformed message, an unknown event type), and from now on they
/// are skipped. The commit carrying this event holds a snapshot of the case without them, so the
/// case can be written again; every replay skips them too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnreadableCommitsSkipped {
    /// The positions skipped.
    pub positions: Vec<u64>,
    /// Why, as the administrator put it.
    pub reason: String,
}

/// A petitioner's personal data was erased (crypto-shredding): their data key is destroyed, so
/// the sealed fields of the registration can never be opened again and show as 已删除. The case,
/// its figures and its history stay whole. Carries no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PetitionerErased {
    /// Which petitioner, as the registration lists them: 1 for the first.
    pub petitioner: u32,
    /// The destroyed data key's id.
    pub key_id: String,
    /// Why, e.g. 保存期限届满.
    pub reason: String,
}

/// The handling period (办理期限, 60 days) is extended once, with approval and reasons
/// (《信访工作条例》第三十四条: at most 30 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlingExtended {
    /// Days added (1–30).
    pub days: u32,
    /// Why.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
}

/// A step of the statutory procedure is recorded, on the date it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcedureStepRecorded {
    /// The step.
    pub step: ProcedureStep,
    /// When it happened.
    pub on: NaiveDate,
    /// What was decided or said (the reply's gist, the document number …).
    pub summary: String,
    /// For a hearing, the days it took (not counted in the second review's limit); else 0.
    #[serde(default)]
    pub hearing_days: u32,
}

/// A leader's work on the case is logged (接访、约访、下访、听证 …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderActivityRecorded {
    /// The leader who did it.
    pub leader: LeaderRef,
    /// What kind of work.
    pub kind: ActivityKind,
    /// When.
    pub held_on: NaiveDate,
    /// Who took part.
    pub participants: Vec<String>,
    /// What came of it.
    pub summary: String,
}

/// The case is classified (分类施策), or classified again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseClassified {
    /// The 三到位一处理 class.
    pub class: ClaimClass,
    /// The subject category, from the bureau's list.
    pub category: String,
    /// Why (required when the case was classified before).
    pub reason: Option<String>,
}

/// The case is claimed resolved (申请化解销号), with its ground and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResolutionClaimed {
    /// Number of the claim within the case (1, 2, … — a sent-back claim is followed by another).
    pub claim: u32,
    /// The ground.
    pub ground: ResolutionGround,
    /// What was done.
    pub summary: String,
    /// References to the evidence (agreement numbers, file names, minutes).
    pub evidence: Vec<String>,
}

/// A review level accepts the open claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimAccepted {
    /// The claim.
    pub claim: u32,
    /// The level that accepted.
    pub level: ReviewLevel,
    /// Its opinion, if given.
    pub opinion: Option<String>,
}

/// A review level sends the open claim back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimSentBack {
    /// The claim.
    pub claim: u32,
    /// The level that sent it back.
    pub level: ReviewLevel,
    /// Why.
    pub reasons: String,
}

/// The case is crossed off (销号) and counts as resolved (化解): the last level of the review
/// chain accepted the claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseCrossedOff {
    /// The accepted claim.
    pub claim: u32,
}

/// A new petition by the petitioner on this case's matter (重复信访) is recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PetitionRecorded {
    /// When it was received.
    pub received_on: NaiveDate,
    /// Its channel.
    pub channel: Channel,
    /// What it says.
    pub summary: String,
    /// The case's repeat-petition count with this one.
    pub repeat_count: u32,
}

/// A crossed-off case is reopened because the petitioner came back (回潮).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseReopened {
    /// The claim that had crossed it off.
    pub crossed_off_by_claim: u32,
    /// The case's relapse count with this one.
    pub relapse_count: u32,
}

/// The petitioner's satisfaction with the reply is recorded (满意度).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SatisfactionRated {
    /// The rating.
    pub rating: Satisfaction,
    /// When it was given.
    pub rated_on: NaiveDate,
    /// Who gave or took it (the petitioner, a return visit by …).
    pub rated_by: String,
}

/// An org unit is added to the directory under its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnitAdded {
    /// Unit id (a subject token).
    pub unit_id: String,
    /// The parent unit; none only for the top (the city).
    pub parent_id: Option<String>,
    /// Name, e.g. 思明区.
    pub name: String,
    /// Kind of unit.
    pub kind: UnitKind,
}

/// A leader is added to a unit of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderAdded {
    /// Leader id (a subject token).
    pub leader_id: String,
    /// The unit the leader belongs to.
    pub unit_id: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Level.
    pub level: LeaderLevel,
}

/// Event data with a stable name and schema version.
pub trait EventData: Serialize + DeserializeOwned + JsonSchema {
    /// The `event_type` in the envelope.
    const EVENT_TYPE: &'static str;
    /// The current `schema_version` written for this type.
    const SCHEMA_VERSION: u32;

    /// Reads data written at an older schema version (an upcaster). By default no older
    /// version is known.
    fn upcast(version: u32, data: serde_json::Value) -> Result<Self, EventDecodeError> {
        let _ = data;
        Err(EventDecodeError::UnknownVersion {
            event_type: Self::EVENT_TYPE.to_owned(),
            version,
        })
    }
}

impl EventData for MeasureAdded {
    const EVENT_TYPE: &'static str = "MeasureAdded";
    const SCHEMA_VERSION: u32 = 2;

    fn upcast(version: u32, data: serde_json::Value) -> Result<Self, EventDecodeError> {
        match version {
            1 => serde_json::from_value::<MeasureAddedV1>(data)
                .map(Self::from)
                .map_err(|source| EventDecodeError::Malformed {
                    event_type: Self::EVENT_TYPE.to_owned(),
                    version,
                    source,
                }),
            _ => Err(EventDecodeError::UnknownVersion {
                event_type: Self::EVENT_TYPE.to_owned(),
                version,
            }),
        }
    }
}

/// Implements [`EventData`] for types whose event type is their name.
macro_rules! event_data {
    ($($ty:ident => $version:expr),* $(,)?) => {
        $(impl EventData for $ty {
            const EVENT_TYPE: &'static str = stringify!($ty);
            const SCHEMA_VERSION: u32 = $version;
        })*
    };
}
pub(crate) use event_data;

event_data! {
    CaseRegistered => 1,
    LeaderAssigned => 1,
    LeaderReassigned => 1,
    ResponsibleUnitsSet => 1,
    MeasureCompleted => 1,
    NoteRecorded => 1,
    CaseClassified => 1,
    ResolutionClaimed => 1,
    ClaimAccepted => 1,
    ClaimSentBack => 1,
    CaseCrossedOff => 1,
    PetitionRecorded => 1,
    CaseReopened => 1,
    SatisfactionRated => 1,
    LeaderActivityRecorded => 1,
    HandlingExtended => 1,
    ProcedureStepRecorded => 1,
    UnreadableCommitsSkipped => 1,
    PetitionerErased => 1,
    UnitAdded => 1,
    LeaderAdded => 1,
    MeetingHeld => 1,
    InstructionIssued => 1,
    InstructionFeedbackRecorded => 1,
    BulletinPublished => 1,
    PushLaunched => 1,
}

/// Events of the case aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvent {
    /// See [`CaseRegistered`].
    Registered(CaseRegistered),
    /// See [`LeaderAssigned`].
    LeaderAssigned(LeaderAssigned),
    /// See [`LeaderReassigned`].
    LeaderReassigned(LeaderReassigned),
    /// See [`ResponsibleUnitsSet`].
    ResponsibleUnitsSet(ResponsibleUnitsSet),
    /// See [`MeasureAdded`].
    MeasureAdded(MeasureAdded),
    /// See [`MeasureCompleted`].
    MeasureCompleted(MeasureCompleted),
    /// See [`NoteRecorded`].
    NoteRecorded(NoteRecorded),
    /// See [`CaseClassified`].
    Classified(CaseClassified),
    /// See [`ResolutionClaimed`].
    ResolutionClaimed(ResolutionClaimed),
    /// See [`ClaimAccepted`].
    ClaimAccepted(ClaimAccepted),
    /// See [`ClaimSentBack`].
    ClaimSentBack(ClaimSentBack),
    /// See [`CaseCrossedOff`].
    CrossedOff(CaseCrossedOff),
    /// See [`PetitionRecorded`].
    PetitionRecorded(PetitionRecorded),
    /// See [`CaseReopened`].
    Reopened(CaseReopened),
    /// See [`SatisfactionRated`].
    SatisfactionRated(SatisfactionRated),
    /// See [`LeaderActivityRecorded`].
    LeaderActivity(LeaderActivityRecorded),
    /// See [`HandlingExtended`].
    HandlingExtended(HandlingExtended),
    /// See [`ProcedureStepRecorded`].
    ProcedureStep(ProcedureStepRecorded),
    /// See [`UnreadableCommitsSkipped`].
    UnreadableCommitsSkipped(UnreadableCommitsSkipped),
    /// See [`PetitionerErased`].
    PetitionerErased(PetitionerErased),
}

/// Events of the org directory (unit and leader aggregates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryEvent {
    /// See [`UnitAdded`].
    UnitAdded(UnitAdded),
    /// See [`LeaderAdded`].
    LeaderAdded(LeaderAdded),
}

/// Any domain event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// A case event.
    Case(CaseEvent),
    /// A directory event.
    Directory(DirectoryEvent),
    /// A campaign event (dispatch meetings and instructions).
    Campaign(CampaignEvent),
    /// An account event (creation, rights, logins): see [`crate::accounts`].
    Account(crate::accounts::AccountEvent),
    /// A supervision order's event (督办).
    Supervision(SupervisionEvent),
}

impl From<SupervisionEvent> for DomainEvent {
    fn from(event: SupervisionEvent) -> Self {
        Self::Supervision(event)
    }
}

impl From<CaseEvent> for DomainEvent {
    fn from(event: CaseEvent) -> Self {
        Self::Case(event)
    }
}

impl From<DirectoryEvent> for DomainEvent {
    fn from(event: DirectoryEvent) -> Self {
        Self::Directory(event)
    }
}

impl From<CampaignEvent> for DomainEvent {
    fn from(event: CampaignEvent) -> Self {
        Self::Campaign(event)
    }
}

impl From<crate::accounts::AccountEvent> for DomainEvent {
    fn from(event: crate::accounts::AccountEvent) -> Self {
        Self::Account(event)
    }
}

/// Why an envelope's data could not be read as a domain event.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// No event of that name exists.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The event exists but not in that schema version.
    #[error("unknown schema version {version} of event type `{event_type}`")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// The version found.
        version: u32,
    },
    /// The data does not have the shape its type and version promise.
    #[error("event `{event_type}` v{version} has malformed data: {source}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// The version found.
        version: u32,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// JSON an event's data can be read from: a parsed value, or raw text kept as it was stored
/// (cheaper when the reader needs the text too, as the archive does).
pub trait EventJson {
    /// Deserialises the data.
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error>;
}

impl EventJson for serde_json::Value {
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self)
    }
}

impl EventJson for &serde_json::value::RawValue {
    fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

pub(crate) fn decode_data<T: EventData>(
    version: u32,
    data: impl EventJson,
) -> Result<T, EventDecodeError> {
    let malformed = |source| EventDecodeError::Malformed {
        event_type: T::EVENT_TYPE.to_owned(),
        version,
        source,
    };
    if version < T::SCHEMA_VERSION {
        return T::upcast(version, data.parse().map_err(malformed)?);
    }
    if version != T::SCHEMA_VERSION {
        return Err(EventDecodeError::UnknownVersion {
            event_type: T::EVENT_TYPE.to_owned(),
            version,
        });
    }
    data.parse().map_err(|source| EventDecodeError::Malformed {
        event_type: T::EVENT_TYPE.to_owned(),
        version,
        source,
    })
}

/// The envelope fields of an event: type, schema version, data as JSON text.
pub type EncodedEvent = (&'static str, u32, Box<serde_json::value::RawValue>);

pub(crate) fn encode_data<T: EventData>(data: &T) -> Result<EncodedEvent, serde_json::Error> {
    Ok((
        T::EVENT_TYPE,
        T::SCHEMA_VERSION,
        serde_json::value::to_raw_value(data)?,
    ))
}

impl DomainEvent {
    /// Reads an event from its envelope fields, upcasting older schema versions.
    pub fn decode(
        event_type: &str,
        version: u32,
        data: impl EventJson,
    ) -> Result<Self, EventDecodeError> {
        use CaseEvent as C;
        use DirectoryEvent as D;
        Ok(match event_type {
            CaseRegistered::EVENT_TYPE => Self::Case(C::Registered(decode_data(version, data)?)),
            LeaderAssigned::EVENT_TYPE => {
                Self::Case(C::LeaderAssigned(decode_data(version, data)?))
            }
            LeaderReassigned::EVENT_TYPE => {
                Self::Case(C::LeaderReassigned(decode_data(version, data)?))
            }
            ResponsibleUnitsSet::EVENT_TYPE => {
                Self::Case(C::ResponsibleUnitsSet(decode_data(version, data)?))
            }
            MeasureAdded::EVENT_TYPE => Self::Case(C::MeasureAdded(decode_data(version, data)?)),
            MeasureCompleted::EVENT_TYPE => {
                Self::Case(C::MeasureCompleted(decode_data(version, data)?))
            }
            NoteRecorded::EVENT_TYPE => Self::Case(C::NoteRecorded(decode_data(version, data)?)),
            CaseClassified::EVENT_TYPE => Self::Case(C::Classified(decode_data(version, data)?)),
            ResolutionClaimed::EVENT_TYPE => {
                Self::Case(C::ResolutionClaimed(decode_data(version, data)?))
            }
            ClaimAccepted::EVENT_TYPE => Self::Case(C::ClaimAccepted(decode_data(version, data)?)),
            ClaimSentBack::EVENT_TYPE => Self::Case(C::ClaimSentBack(decode_data(version, data)?)),
            CaseCrossedOff::EVENT_TYPE => Self::Case(C::CrossedOff(decode_data(version, data)?)),
            PetitionRecorded::EVENT_TYPE => {
                Self::Case(C::PetitionRecorded(decode_data(version, data)?))
            }
            CaseReopened::EVENT_TYPE => Self::Case(C::Reopened(decode_data(version, data)?)),
            SatisfactionRated::EVENT_TYPE => {
                Self::Case(C::SatisfactionRated(decode_data(version, data)?))
            }
            LeaderActivityRecorded::EVENT_TYPE => {
                Self::Case(C::LeaderActivity(decode_data(version, data)?))
            }
            HandlingExtended::EVENT_TYPE => {
                Self::Case(C::HandlingExtended(decode_data(version, data)?))
            }
            ProcedureStepRecorded::EVENT_TYPE => {
                Self::Case(C::ProcedureStep(decode_data(version, data)?))
            }
            UnreadableCommitsSkipped::EVENT_TYPE => {
                Self::Case(C::UnreadableCommitsSkipped(decode_data(version, data)?))
            }
            PetitionerErased::EVENT_TYPE => {
                Self::Case(C::PetitionerErased(decode_data(version, data)?))
            }
            UnitAdded::EVENT_TYPE => Self::Directory(D::UnitAdded(decode_data(version, data)?)),
            LeaderAdded::EVENT_TYPE => Self::Directory(D::LeaderAdded(decode_data(version, data)?)),
            MeetingHeld::EVENT_TYPE => {
                Self::Campaign(CampaignEvent::MeetingHeld(decode_data(version, data)?))
            }
            InstructionIssued::EVENT_TYPE => Self::Campaign(CampaignEvent::InstructionIssued(
                decode_data(version, data)?,
            )),
            PushLaunched::EVENT_TYPE => {
                Self::Campaign(CampaignEvent::PushLaunched(decode_data(version, data)?))
            }
            BulletinPublished::EVENT_TYPE => Self::Campaign(CampaignEvent::BulletinPublished(
                decode_data(version, data)?,
            )),
            InstructionFeedbackRecorded::EVENT_TYPE => {
                Self::Campaign(CampaignEvent::FeedbackRecorded(decode_data(version, data)?))
            }
            other if other.starts_with("Supervision") => {
                match SupervisionEvent::decode(other, version, data) {
                    Some(event) => Self::Supervision(event?),
                    None => return Err(EventDecodeError::UnknownType(other.to_owned())),
                }
            }
            other => match crate::accounts::AccountEvent::decode(other, version, data) {
                Some(event) => Self::Account(event?),
                None => return Err(EventDecodeError::UnknownType(other.to_owned())),
            },
        })
    }

    /// The envelope fields for this event: type, schema version, data (serialised once, as text).
    pub fn encode(&self) -> Result<EncodedEvent, serde_json::Error> {
        match self {
            Self::Case(event) => match event {
                CaseEvent::Registered(d) => encode_data(d),
                CaseEvent::LeaderAssigned(d) => encode_data(d),
                CaseEvent::LeaderReassigned(d) => encode_data(d),
                CaseEvent::ResponsibleUnitsSet(d) => encode_data(d),
                CaseEvent::MeasureAdded(d) => encode_data(d),
                CaseEvent::MeasureCompleted(d) => encode_data(d),
                CaseEvent::NoteRecorded(d) => encode_data(d),
                CaseEvent::Classified(d) => encode_data(d),
                CaseEvent::ResolutionClaimed(d) => encode_data(d),
                CaseEvent::ClaimAccepted(d) => encode_data(d),
                CaseEvent::ClaimSentBack(d) => encode_data(d),
                CaseEvent::CrossedOff(d) => encode_data(d),
                CaseEvent::PetitionRecorded(d) => encode_data(d),
                CaseEvent::Reopened(d) => encode_data(d),
                CaseEvent::SatisfactionRated(d) => encode_data(d),
                CaseEvent::LeaderActivity(d) => encode_data(d),
                CaseEvent::HandlingExtended(d) => encode_data(d),
                CaseEvent::ProcedureStep(d) => encode_data(d),
                CaseEvent::UnreadableCommitsSkipped(d) => encode_data(d),
                CaseEvent::PetitionerErased(d) => encode_data(d),
            },
            Self::Directory(event) => match event {
                DirectoryEvent::UnitAdded(d) => encode_data(d),
                DirectoryEvent::LeaderAdded(d) => encode_data(d),
            },
            Self::Campaign(event) => match event {
                CampaignEvent::MeetingHeld(d) => encode_data(d),
                CampaignEvent::InstructionIssued(d) => encode_data(d),
                CampaignEvent::FeedbackRecorded(d) => encode_data(d),
                CampaignEvent::BulletinPublished(d) => encode_data(d),
                CampaignEvent::PushLaunched(d) => encode_data(d),
            },
            Self::Account(event) => event.encode(),
            Self::Supervision(event) => event.encode(),
        }
    }
}

/// Decodes the data of an envelope.
pub fn decode_envelope(
    envelope: &crate::envelope::EventEnvelope,
) -> Result<DomainEvent, EventDecodeError> {
    DomainEvent::decode(
        &envelope.event_type,
        envelope.schema_version,
        envelope.data.clone(),
    )
}

#[cfg(test)]
mod tests;
