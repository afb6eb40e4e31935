//! Generates the JSON Schema of every event, command, envelope and reply, as committed under
//! `proto/schemas/`.

use schemars::{JsonSchema, schema_for};

use crate::accounts::{
    AccountAction, AccountCreated, AccountRightsChanged, AccountTouched, LoginFailed,
    LoginLockedOut, LoginSucceeded, RecordAccount,
};
use crate::commands::{
    AcknowledgeSupervisionOrder, AnswerSupervisionOrder, EscalateSupervisionOrder,
    IssueSupervisionOrder, ReportSupervisionProgress, ReviewSupervisionAnswer,
};
use crate::commands::{
    AddLeader, AddMeasure, AddUnit, AssignLeader, ClaimResolution, ClassifyCase, CommandRequest,
    CompleteMeasure, ErasePetitioner, ExtendHandling, HoldMeeting, IssueInstruction, LaunchPush,
    PublishBulletin, RateSatisfaction, RecordActivity, RecordInstructionFeedback, RecordNote,
    RecordPetition, RecordProcedureStep, RegisterCase, ReviewClaim, SetResponsibleUnits,
    SkipUnreadableCommits,
};
use crate::envelope::{Commit, EventEnvelope, Snapshot};
use crate::events::{
    BulletinPublished, CaseClassified, CaseCrossedOff, CaseRegistered, CaseReopened, ClaimAccepted,
    ClaimSentBack, EventData, HandlingExtended, InstructionFeedbackRecorded, InstructionIssued,
    LeaderActivityRecorded, LeaderAdded, LeaderAssigned, LeaderReassigned, MeasureAdded,
    MeasureAddedV1, MeasureCompleted, MeetingHeld, NoteRecorded, PetitionRecorded,
    PetitionerErased, ProcedureStepRecorded, PushLaunched, ResolutionClaimed, ResponsibleUnitsSet,
    SatisfactionRated, UnitAdded, UnreadableCommitsSkipped,
};
use crate::events::{
    SupervisionAnswerAccepted, SupervisionAnswerSentBack, SupervisionOrderAcknowledged,
    SupervisionOrderAnswered, SupervisionOrderEscalated, SupervisionOrderIssued,
    SupervisionProgressReported,
};
use crate::replies::CommandReply;

fn render<T: JsonSchema>() -> String {
    let schema = schema_for!(T);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn event<T: EventData>() -> (String, String) {
    (
        format!(
            "events/{}.v{}.schema.json",
            T::EVENT_TYPE,
            T::SCHEMA_VERSION
        ),
        render::<T>(),
    )
}

fn named<T: JsonSchema>(path: &str) -> (String, String) {
    (path.to_owned(), render::<T>())
}

/// Every schema file: its path relative to `proto/schemas/` and its content.
pub fn all() -> Vec<(String, String)> {
    let account_actions = AccountAction::ALL.map(|action| {
        named::<AccountTouched>(&format!(
            "events/{}.v{}.schema.json",
            action.event_type(),
            AccountTouched::SCHEMA_VERSION
        ))
    });
    let mut all = vec![
        event::<CaseRegistered>(),
        event::<LeaderAssigned>(),
        event::<LeaderReassigned>(),
        event::<ResponsibleUnitsSet>(),
        event::<MeasureAdded>(),
        named::<MeasureAddedV1>("events/MeasureAdded.v1.schema.json"),
        event::<MeasureCompleted>(),
        event::<NoteRecorded>(),
        event::<CaseClassified>(),
        event::<ResolutionClaimed>(),
        event::<ClaimAccepted>(),
        event::<ClaimSentBack>(),
        event::<CaseCrossedOff>(),
        event::<PetitionRecorded>(),
        event::<CaseReopened>(),
        event::<SatisfactionRated>(),
        event::<LeaderActivityRecorded>(),
        event::<HandlingExtended>(),
        event::<ProcedureStepRecorded>(),
        event::<UnreadableCommitsSkipped>(),
        event::<PetitionerErased>(),
        event::<UnitAdded>(),
        event::<LeaderAdded>(),
        event::<MeetingHeld>(),
        event::<InstructionIssued>(),
        event::<InstructionFeedbackRecorded>(),
        event::<BulletinPublished>(),
        event::<PushLaunched>(),
        event::<SupervisionOrderIssued>(),
        event::<SupervisionOrderAcknowledged>(),
        event::<SupervisionProgressReported>(),
        event::<SupervisionOrderAnswered>(),
        event::<SupervisionAnswerAccepted>(),
        event::<SupervisionAnswerSentBack>(),
        event::<SupervisionOrderEscalated>(),
        event::<AccountCreated>(),
        event::<AccountRightsChanged>(),
        event::<LoginSucceeded>(),
        event::<LoginFailed>(),
        event::<LoginLockedOut>(),
        named::<EventEnvelope>("EventEnvelope.schema.json"),
        named::<Commit>("Commit.schema.json"),
        named::<Snapshot>("Snapshot.schema.json"),
        named::<CommandRequest>("commands/CommandRequest.schema.json"),
        named::<RegisterCase>("commands/RegisterCase.schema.json"),
        named::<AssignLeader>("commands/AssignLeader.schema.json"),
        named::<SetResponsibleUnits>("commands/SetResponsibleUnits.schema.json"),
        named::<AddMeasure>("commands/AddMeasure.schema.json"),
        named::<CompleteMeasure>("commands/CompleteMeasure.schema.json"),
        named::<RecordNote>("commands/RecordNote.schema.json"),
        named::<ClassifyCase>("commands/ClassifyCase.schema.json"),
        named::<RecordActivity>("commands/RecordActivity.schema.json"),
        named::<ExtendHandling>("commands/ExtendHandling.schema.json"),
        named::<ClaimResolution>("commands/ClaimResolution.schema.json"),
        named::<ReviewClaim>("commands/ReviewClaim.schema.json"),
        named::<RecordPetition>("commands/RecordPetition.schema.json"),
        named::<RateSatisfaction>("commands/RateSatisfaction.schema.json"),
        named::<RecordProcedureStep>("commands/RecordProcedureStep.schema.json"),
        named::<SkipUnreadableCommits>("commands/SkipUnreadableCommits.schema.json"),
        named::<ErasePetitioner>("commands/ErasePetitioner.schema.json"),
        named::<HoldMeeting>("commands/HoldMeeting.schema.json"),
        named::<IssueInstruction>("commands/IssueInstruction.schema.json"),
        named::<RecordInstructionFeedback>("commands/RecordInstructionFeedback.schema.json"),
        named::<PublishBulletin>("commands/PublishBulletin.schema.json"),
        named::<RecordAccount>("commands/RecordAccount.schema.json"),
        named::<LaunchPush>("commands/LaunchPush.schema.json"),
        named::<IssueSupervisionOrder>("commands/IssueSupervisionOrder.schema.json"),
        named::<AcknowledgeSupervisionOrder>("commands/AcknowledgeSupervisionOrder.schema.json"),
        named::<ReportSupervisionProgress>("commands/ReportSupervisionProgress.schema.json"),
        named::<AnswerSupervisionOrder>("commands/AnswerSupervisionOrder.schema.json"),
        named::<ReviewSupervisionAnswer>("commands/ReviewSupervisionAnswer.schema.json"),
        named::<EscalateSupervisionOrder>("commands/EscalateSupervisionOrder.schema.json"),
        named::<AddUnit>("commands/AddUnit.schema.json"),
        named::<AddLeader>("commands/AddLeader.schema.json"),
        named::<CommandReply>("CommandReply.schema.json"),
    ];
    all.extend(account_actions);
    all
}
