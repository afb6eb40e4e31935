//! Commands the `cases` service answers, wrapped in a [`CommandRequest`] that says who sends it,
//! which command it is (for idempotency) and, optionally, which version it expects.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Actor;
use crate::events::{
    ActivityKind, Channel, ClaimClass, LeaderLevel, ListSource, Petitioner, ProcedureStep,
    ResolutionGround, ReviewLevel, Satisfaction, SupervisionLevel, UnitKind,
};

/// Largest command body a service accepts, in bytes.
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;

/// A command with its metadata, as sent on the command subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Unique per intended change; a retry reuses it, and is then applied once.
    pub command_id: Uuid,
    /// Groups the work of one user action; defaults to the command id.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    /// The message that caused this command; defaults to the command id.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// Who issues the command.
    pub actor: Actor,
    /// When set, the command applies only if the aggregate is still at this version; otherwise it
    /// is answered `conflict` with the current version.
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// Set on a retry of a request whose outcome the sender never learned (an Idempotency-Key
    /// retried after its first attempt got no answer): the service first looks for this command
    /// id in the aggregate's whole history, so the retry lands once at any age, not only within
    /// the log's de-duplication window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown_outcome_retry: bool,
    /// The command itself.
    pub command: Command,
}

/// Every command, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Register a case and put it on the checklist.
    RegisterCase(RegisterCase),
    /// Assign the owning leader, or replace them.
    AssignLeader(AssignLeader),
    /// Set the lead and assisting units.
    SetResponsibleUnits(SetResponsibleUnits),
    /// Add a measure to the case's plan.
    AddMeasure(AddMeasure),
    /// Tick off a measure.
    CompleteMeasure(CompleteMeasure),
    /// Record a note.
    RecordNote(RecordNote),
    /// Skip a case's unreadable commits (administrators only).
    SkipUnreadableCommits(SkipUnreadableCommits),
    /// Erase a petitioner's personal data (administrators only).
    ErasePetitioner(ErasePetitioner),
    /// Log a leader's work on the case (接访、约访、下访 …).
    RecordActivity(RecordActivity),
    /// Extend the handling period once (at most 30 days, with approval).
    ExtendHandling(ExtendHandling),
    /// Classify the case (分类施策).
    ClassifyCase(ClassifyCase),
    /// Claim the case resolved (申请化解销号).
    ClaimResolution(ClaimResolution),
    /// Accept or send back the open claim at one review level.
    ReviewClaim(ReviewClaim),
    /// Record a new petition on the case (重复信访); reopens a crossed-off case (回潮).
    RecordPetition(RecordPetition),
    /// Record the petitioner's satisfaction with the reply.
    RateSatisfaction(RateSatisfaction),
    /// Record a step of the statutory procedure (告知、答复、复查、复核).
    RecordProcedureStep(RecordProcedureStep),
    /// Hold this week's dispatch meeting of a unit (周调度).
    HoldMeeting(HoldMeeting),
    /// Issue a dispatch instruction at a meeting (调度指令).
    IssueInstruction(IssueInstruction),
    /// Record feedback on a dispatch instruction.
    RecordInstructionFeedback(RecordInstructionFeedback),
    /// Publish a month's bulletin (月通报), freezing it.
    PublishBulletin(PublishBulletin),
    /// Launch a quarter's push on hard cases (季攻坚).
    LaunchPush(LaunchPush),
    /// Issue a supervision order to a lower unit or a department (下发督办单).
    IssueSupervisionOrder(IssueSupervisionOrder),
    /// Sign for a supervision order (签收).
    AcknowledgeSupervisionOrder(AcknowledgeSupervisionOrder),
    /// Report progress on a supervision order.
    ReportSupervisionProgress(ReportSupervisionProgress),
    /// Answer a supervision order as done (办结反馈).
    AnswerSupervisionOrder(AnswerSupervisionOrder),
    /// Accept a supervision order's answer, or send it back (审核反馈).
    ReviewSupervisionAnswer(ReviewSupervisionAnswer),
    /// Escalate an overdue supervision order by the bureau's rule (the system does this).
    EscalateSupervisionOrder(EscalateSupervisionOrder),
    /// Add an org unit to the directory.
    AddUnit(AddUnit),
    /// Add a leader to a unit.
    AddLeader(AddLeader),
    /// Record a change to an account, a login, a failed login or a lockout.
    RecordAccount(crate::accounts::RecordAccount),
}

/// `From<X> for Command` for commands whose variant is named as their type.
macro_rules! command_from {
    ($($command:ident),+ $(,)?) => {
        $(
            impl From<$command> for Command {
                fn from(command: $command) -> Self {
                    Self::$command(command)
                }
            }
        )+
    };
}

command_from!(
    RegisterCase,
    AssignLeader,
    SetResponsibleUnits,
    AddMeasure,
    CompleteMeasure,
    RecordNote,
    SkipUnreadableCommits,
    ErasePetitioner,
    RecordActivity,
    ExtendHandling,
    ClassifyCase,
    ClaimResolution,
    ReviewClaim,
    RecordPetition,
    RateSatisfaction,
    RecordProcedureStep,
    HoldMeeting,
    IssueInstruction,
    RecordInstructionFeedback,
    PublishBulletin,
    LaunchPush,
    IssueSupervisionOrder,
    AcknowledgeSupervisionOrder,
    ReportSupervisionProgress,
    AnswerSupervisionOrder,
    ReviewSupervisionAnswer,
    EscalateSupervisionOrder,
    AddUnit,
    AddLeader,
);

impl Command {
    /// Whether the `campaign` service answers it (on [`crate::subjects::CAMPAIGN_COMMANDS`]);
    /// the `cases` service answers the rest.
    pub fn is_campaign(&self) -> bool {
        matches!(
            self,
            Self::HoldMeeting(_)
                | Self::IssueInstruction(_)
                | Self::RecordInstructionFeedback(_)
                | Self::PublishBulletin(_)
                | Self::LaunchPush(_)
        ) || self.is_supervision()
    }

    /// Whether it is a command on a supervision order (answered by the `campaign` service).
    pub fn is_supervision(&self) -> bool {
        matches!(
            self,
            Self::IssueSupervisionOrder(_)
                | Self::AcknowledgeSupervisionOrder(_)
                | Self::ReportSupervisionProgress(_)
                | Self::AnswerSupervisionOrder(_)
                | Self::ReviewSupervisionAnswer(_)
                | Self::EscalateSupervisionOrder(_)
        )
    }

    /// The subject the command is sent on.
    pub fn subject(&self) -> &'static str {
        if self.is_campaign() {
            crate::subjects::CAMPAIGN_COMMANDS
        } else {
            crate::subjects::CASES_COMMANDS
        }
    }

    /// The command's `type` tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RegisterCase(_) => "register_case",
            Self::AssignLeader(_) => "assign_leader",
            Self::SetResponsibleUnits(_) => "set_responsible_units",
            Self::AddMeasure(_) => "add_measure",
            Self::CompleteMeasure(_) => "complete_measure",
            Self::RecordNote(_) => "record_note",
            Self::SkipUnreadableCommits(_) => "skip_unreadable_commits",
            Self::ErasePetitioner(_) => "erase_petitioner",
            Self::RecordActivity(_) => "record_activity",
            Self::ExtendHandling(_) => "extend_handling",
            Self::ClassifyCase(_) => "classify_case",
            Self::ClaimResolution(_) => "claim_resolution",
            Self::ReviewClaim(_) => "review_claim",
            Self::RecordPetition(_) => "record_petition",
            Self::RateSatisfaction(_) => "rate_satisfaction",
            Self::RecordProcedureStep(_) => "record_procedure_step",
            Self::HoldMeeting(_) => "hold_meeting",
            Self::IssueInstruction(_) => "issue_instruction",
            Self::RecordInstructionFeedback(_) => "record_instruction_feedback",
            Self::PublishBulletin(_) => "publish_bulletin",
            Self::LaunchPush(_) => "launch_push",
            Self::IssueSupervisionOrder(_) => "issue_supervision_order",
            Self::AcknowledgeSupervisionOrder(_) => "acknowledge_supervision_order",
            Self::ReportSupervisionProgress(_) => "report_supervision_progress",
            Self::AnswerSupervisionOrder(_) => "answer_supervision_order",
            Self::ReviewSupervisionAnswer(_) => "review_supervision_answer",
            Self::EscalateSupervisionOrder(_) => "escalate_supervision_order",
            Self::AddUnit(_) => "add_unit",
            Self::AddLeader(_) => "add_leader",
            Self::RecordAccount(_) => "record_account",
        }
    }
}

/// Expands to a `match` on a [`Command`] with one arm per variant, each binding the variant's
/// command as `$c` and evaluating `$body`: for code that treats every command alike through a
/// trait its commands implement (the command service's dispatch), so that a new command is
/// added here, beside its variant, and nowhere else in that code.
#[macro_export]
macro_rules! match_command {
    ($command:expr, $c:ident => $body:expr) => {
        match $command {
            $crate::Command::RegisterCase($c) => $body,
            $crate::Command::AssignLeader($c) => $body,
            $crate::Command::SetResponsibleUnits($c) => $body,
            $crate::Command::AddMeasure($c) => $body,
            $crate::Command::CompleteMeasure($c) => $body,
            $crate::Command::RecordNote($c) => $body,
            $crate::Command::SkipUnreadableCommits($c) => $body,
            $crate::Command::ErasePetitioner($c) => $body,
            $crate::Command::RecordActivity($c) => $body,
            $crate::Command::ExtendHandling($c) => $body,
            $crate::Command::ClassifyCase($c) => $body,
            $crate::Command::ClaimResolution($c) => $body,
            $crate::Command::ReviewClaim($c) => $body,
            $crate::Command::RecordPetition($c) => $body,
            $crate::Command::RateSatisfaction($c) => $body,
            $crate::Command::RecordProcedureStep($c) => $body,
            $crate::Command::HoldMeeting($c) => $body,
            $crate::Command::IssueInstruction($c) => $body,
            $crate::Command::RecordInstructionFeedback($c) => $body,
            $crate::Command::PublishBulletin($c) => $body,
            $crate::Command::LaunchPush($c) => $body,
            $crate::Command::IssueSupervisionOrder($c) => $body,
            $crate::Command::AcknowledgeSupervisionOrder($c) => $body,
            $crate::Command::ReportSupervisionProgress($c) => $body,
            $crate::Command::AnswerSupervisionOrder($c) => $body,
            $crate::Command::ReviewSupervisionAnswer($c) => $body,
            $crate::Command::EscalateSupervisionOrder($c) => $body,
            $crate::Command::AddUnit($c) => $body,
            $crate::Command::AddLeader($c) => $body,
            $crate::Command::RecordAccount($c) => $body,
        }
    };
}

/// Register a backlog case (登记、列入清单).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCase {
    /// Case id to use; when absent it is derived from the command id, so a retry names the same
    /// case.
    #[serde(default)]
    pub case_id: Option<Uuid>,
    /// Case number (案件编号); generated when absent.
    #[serde(default)]
    pub case_number: Option<String>,
    /// The petitioners, at least one.
    pub petitioners: Vec<Petitioner>,
    /// The matter (诉求).
    pub matter: String,
    /// Subject category.
    pub category: String,
    /// District unit id.
    pub district_id: String,
    /// Town or street unit id, under the district.
    #[serde(default)]
    pub town_id: Option<String>,
    /// Channel.
    pub channel: Channel,
    /// First filed date.
    pub first_filed_on: NaiveDate,
    /// How the case came onto the list.
    pub list_source: ListSource,
    /// Number of people; 1 when absent.
    #[serde(default)]
    pub group_size: Option<u32>,
}

/// Assign or reassign the owning leader (领导包案).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignLeader {
    /// The case.
    pub case_id: Uuid,
    /// The leader, from the directory.
    pub leader_id: String,
    /// Why; required when the case already has a leader.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Set the responsible units (责任单位): one lead, any assisting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetResponsibleUnits {
    /// The case.
    pub case_id: Uuid,
    /// The lead unit (主办).
    pub lead_unit_id: String,
    /// Assisting units (协办).
    #[serde(default)]
    pub assisting_unit_ids: Vec<String>,
    /// The named handler (具体责任人).
    #[serde(default)]
    pub handler: Option<String>,
}

/// Add a measure (措施).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMeasure {
    /// The case.
    pub case_id: Uuid,
    /// What is to be done.
    pub description: String,
    /// Due date.
    #[serde(default)]
    pub due_on: Option<NaiveDate>,
    /// The unit that carries the measure out, from the directory.
    #[serde(default)]
    pub responsible_unit_id: Option<String>,
}

/// Tick off a measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteMeasure {
    /// The case.
    pub case_id: Uuid,
    /// The measure.
    pub measure_id: String,
    /// What came of it.
    pub result: String,
}

/// Record a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordNote {
    /// The case.
    pub case_id: Uuid,
    /// The note.
    pub text: String,
}

/// Repair a case whose history holds unreadable commits (administrators only): name every
/// unreadable position on the case's subject; they are skipped from now on, recorded as
/// [`crate::events::UnreadableCommitsSkipped`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipUnreadableCommits {
    /// The case.
    pub case_id: Uuid,
    /// The unreadable log positions, as the error naming them says.
    pub positions: Vec<u64>,
    /// Why (kept in the history).
    pub reason: String,
}

/// Erase one petitioner of a case (PIPL 第四十七条): their data key is destroyed, so their
/// sealed fields can never be opened again; [`crate::events::PetitionerErased`] records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasePetitioner {
    /// The case.
    pub case_id: Uuid,
    /// Which petitioner, as the case lists them: 1 for the first.
    pub petitioner: u32,
    /// Why (kept in the history), e.g. 保存期限届满.
    pub reason: String,
}

/// Extend a case's handling period (延期办理).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendHandling {
    /// The case.
    pub case_id: Uuid,
    /// Days to add, 1 to 30.
    pub days: u32,
    /// Why.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
}

/// Log a leader's work on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordActivity {
    /// The case.
    pub case_id: Uuid,
    /// The leader who did it; the owning leader when absent.
    #[serde(default)]
    pub leader_id: Option<String>,
    /// What kind of work.
    pub kind: ActivityKind,
    /// When; not in the future.
    pub held_on: NaiveDate,
    /// Who took part.
    #[serde(default)]
    pub participants: Vec<String>,
    /// What came of it.
    pub summary: String,
}

/// Classify a case (分类施策).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyCase {
    /// The case.
    pub case_id: Uuid,
    /// The 三到位一处理 class.
    pub class: ClaimClass,
    /// The subject category, from the bureau's list.
    pub category: String,
    /// Why; required when the case was classified before.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Claim a case resolved (申请化解销号).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimResolution {
    /// The case.
    pub case_id: Uuid,
    /// The ground.
    pub ground: ResolutionGround,
    /// What was done.
    pub summary: String,
    /// References to the evidence; at least one.
    pub evidence: Vec<String>,
}

/// Accept or send back the open claim at one review level (审核把关).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewClaim {
    /// The case.
    pub case_id: Uuid,
    /// The level reviewing; it must be the next level of the chain.
    pub level: ReviewLevel,
    /// Accept (true) or send back (false).
    pub accept: bool,
    /// The opinion; required when sending back.
    #[serde(default)]
    pub reasons: Option<String>,
}

/// Record a new petition on an existing case (重复信访).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPetition {
    /// The case.
    pub case_id: Uuid,
    /// When it was received; not in the future.
    pub received_on: NaiveDate,
    /// Its channel.
    pub channel: Channel,
    /// What it says.
    pub summary: String,
}

/// Record the petitioner's satisfaction with the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSatisfaction {
    /// The case.
    pub case_id: Uuid,
    /// The rating.
    pub rating: Satisfaction,
    /// When it was given; not in the future.
    pub rated_on: NaiveDate,
    /// Who gave or took it.
    pub rated_by: String,
}

/// Record a step of the statutory procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordProcedureStep {
    /// The case.
    pub case_id: Uuid,
    /// The step.
    pub step: ProcedureStep,
    /// When it happened; not in the future, not before the step before it.
    pub on: NaiveDate,
    /// What was decided or said.
    pub summary: String,
    /// For a hearing (`hearing_held`), the days it took, 1 to 90.
    #[serde(default)]
    pub hearing_days: Option<u32>,
}

/// Hold this week's dispatch meeting of a unit: its agenda is drawn from the log as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldMeeting {
    /// The unit whose task force meets (the city, a district, a town).
    pub unit_id: String,
    /// Its title; `<unit> 第N周调度会` when absent.
    #[serde(default)]
    pub title: Option<String>,
}

/// Issue a dispatch instruction at a meeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInstruction {
    /// The meeting.
    pub meeting_id: String,
    /// The case it is about, if any.
    #[serde(default)]
    pub case_id: Option<Uuid>,
    /// The unit it is issued to.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader it is issued to.
    #[serde(default)]
    pub leader_id: Option<String>,
    /// What is to be done.
    pub text: String,
    /// By when feedback is due; not before the meeting.
    pub feedback_due_on: NaiveDate,
}

/// Record feedback on a dispatch instruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInstructionFeedback {
    /// The meeting.
    pub meeting_id: String,
    /// The instruction's number.
    pub number: u32,
    /// What was done.
    pub text: String,
    /// When; not in the future.
    pub on: NaiveDate,
}

/// Publish a month's bulletin, once the month is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBulletin {
    /// The month, `2026-03`.
    pub month: String,
}

/// A target of a push for one area: a number of cases or a rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushTargetRequest {
    /// The area: a district, a town or a department.
    pub unit_id: String,
    /// Hard cases to resolve in the quarter, or
    #[serde(default)]
    pub cases: Option<u32>,
    /// the share of the area's hard cases to resolve, 1 to 100 percent.
    #[serde(default)]
    pub rate_percent: Option<u32>,
}

/// Launch a quarter's push on hard cases, before or during the quarter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchPush {
    /// The quarter, `2026-Q2`.
    pub quarter: String,
    /// Its title; `2026年第二季度积案攻坚` when absent.
    #[serde(default)]
    pub title: Option<String>,
    /// The hard cases (攻坚案件), at least one.
    pub case_ids: Vec<Uuid>,
    /// The targets per area.
    pub targets: Vec<PushTargetRequest>,
}

/// Issue a supervision order (督办单) from a unit to a unit below it or to a department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueSupervisionOrder {
    /// The order's id; derived from the command id when absent.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// The issuing unit: the actor's own unit or one above it.
    pub issuer_unit_id: String,
    /// The unit that must act and answer: below the issuer, or a department.
    pub addressee_unit_id: String,
    /// The level.
    pub level: SupervisionLevel,
    /// The cases it is about (up to 200; none for a matter only).
    #[serde(default)]
    pub case_ids: Vec<Uuid>,
    /// What is to be done (督办事项).
    pub matter: String,
    /// By when the answer is due; today or later.
    pub answer_due_on: NaiveDate,
    /// The person responsible at the addressee (承办责任人).
    pub responsible: String,
}

/// Sign for a supervision order (签收), as the addressee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeSupervisionOrder {
    /// The order.
    pub order_id: Uuid,
}

/// Report progress on a supervision order, as the addressee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSupervisionProgress {
    /// The order.
    pub order_id: Uuid,
    /// What was done so far.
    pub text: String,
}

/// Answer a supervision order as done (办结反馈), as the addressee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerSupervisionOrder {
    /// The order.
    pub order_id: Uuid,
    /// What was done.
    pub text: String,
    /// References to the evidence, at least one.
    pub evidence: Vec<String>,
}

/// Accept the open answer of a supervision order, or send it back with reasons and a new due
/// date, as the issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSupervisionAnswer {
    /// The order.
    pub order_id: Uuid,
    /// Accept (true) or send back (false).
    pub accept: bool,
    /// The opinion, when accepting.
    #[serde(default)]
    pub opinion: Option<String>,
    /// Why, when sending back (required then).
    #[serde(default)]
    pub reasons: Option<String>,
    /// By when the next answer is due, when sending back (required then).
    #[serde(default)]
    pub answer_due_on: Option<NaiveDate>,
}

/// Escalate a supervision order whose answer is overdue, by a configured rule. Sent by the
/// system's escalation clock; refused unless the order is at `from`, unanswered, and its answer
/// was due before today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateSupervisionOrder {
    /// The order.
    pub order_id: Uuid,
    /// The level it must be at.
    pub from: SupervisionLevel,
    /// The level it goes to.
    pub to: SupervisionLevel,
    /// By when the answer is then due.
    pub answer_due_on: NaiveDate,
    /// The rule, as configured.
    pub rule: String,
}

/// Add an org unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUnit {
    /// New unit id (letters, digits, `-`, `_`).
    pub unit_id: String,
    /// Parent unit; only a city may have none.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: UnitKind,
}

/// Add a leader to a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLeader {
    /// New leader id (letters, digits, `-`, `_`).
    pub leader_id: String,
    /// The unit.
    pub unit_id: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Level.
    pub level: LeaderLevel,
}
