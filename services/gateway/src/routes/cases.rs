//! `/api/v1/cases`: register a case, read one with its measures and history, and the writes that
//! work it (leader, units, measures, notes).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;
use zhzj_deadlines::{HolidayCalendar, StatutoryStep};
use zhzj_proto::Command;
use zhzj_proto::accounts::Role;
use zhzj_proto::commands::{
    AddMeasure, AssignLeader, CompleteMeasure, RecordNote, RegisterCase, SetResponsibleUnits,
};
use zhzj_proto::events::ProcedureStep;

use super::checklist::{ChecklistItem, FROM_SQL, item_columns};
use crate::commands::{Write, execute};
use crate::extract::{CorrelationId, CurrentUser, IdempotencyKey, IfMatch, JsonBody, QueryParams};
use crate::{ApiError, AppState, etag};

/// What every write handler receives besides its body.
pub struct WriteContext {
    pub(crate) state: AppState,
    pub(crate) user: crate::User,
    if_match: Option<u64>,
    key: Option<String>,
    correlation: Uuid,
}

impl WriteContext {
    /// A write by `user` outside an API request (the web pages), expecting `if_match`.
    pub(crate) fn new(
        state: AppState,
        user: crate::User,
        if_match: Option<u64>,
        correlation: Uuid,
    ) -> Self {
        Self {
            state,
            user,
            if_match,
            key: None,
            correlation,
        }
    }

    pub(crate) async fn run(self, route: String, command: Command, creates: bool) -> Response {
        execute(
            &self.state,
            Write {
                user: self.user,
                command,
                if_match: self.if_match,
                idempotency_key: self.key,
                correlation_id: self.correlation,
                route,
                creates,
            },
        )
        .await
    }
}

impl axum::extract::FromRequestParts<AppState> for WriteContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        let IfMatch(if_match) = IfMatch::from_request_parts(parts, state).await?;
        let IdempotencyKey(key) = IdempotencyKey::from_request_parts(parts, state).await?;
        let CorrelationId(correlation) = CorrelationId::from_request_parts(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            user,
            if_match,
            key,
            correlation,
        })
    }
}

/// A case id from the path; anything else names no case.
fn case_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found(format!("案件 {text} 不存在")))
}

/// Options of a registration.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    /// When true, a registration that may duplicate an existing case is refused with 409
    /// `possible_duplicates` and the candidates, and nothing is appended.
    pub check_duplicates: Option<bool>,
}

/// `POST /api/v1/cases`: register a case (登记、列入清单).
pub async fn register(
    QueryParams(options): QueryParams<RegisterQuery>,
    context: WriteContext,
    JsonBody(body): JsonBody<RegisterCase>,
) -> Result<Response, ApiError> {
    // Only those who may register are told about possible duplicates: anyone else is refused
    // before any existing case is looked at (the service decides the scope on the write).
    let may_register = context.user.has_any_role(&[Role::Admin, Role::Coordinator]);
    if !may_register {
        return Err(ApiError::Forbidden(
            "只有专班协调员可以登记案件 (coordinators only)".into(),
        ));
    }
    if options.check_duplicates == Some(true) {
        let mut found = super::duplicates::DuplicateCheck::default();
        for petitioner in &body.petitioners {
            let has_id = petitioner
                .id_number
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty());
            let query = super::duplicates::DuplicateQuery {
                id_number: petitioner.id_number.clone(),
                name: Some(petitioner.name.clone()),
                town: body.town_id.clone(),
                category: Some(body.category.clone()),
            };
            // A petitioner with neither an ID number nor a town to match by cannot be checked.
            if !has_id && body.town_id.is_none() {
                continue;
            }
            let check =
                super::duplicates::find(&context.state, &context.user, &query, context.correlation)
                    .await?;
            for case in check.cases {
                if !found.cases.iter().any(|c| c.case_id == case.case_id) {
                    found.cases.push(case);
                }
            }
            found.outside_your_area |= check.outside_your_area;
            found.notice = found.notice.or(check.notice);
        }
        if !found.cases.is_empty() || found.outside_your_area {
            let body = serde_json::json!({
                "error": {
                    "code": "possible_duplicates",
                    "message": "可能与已有案件重复：请将本次信访登记到已有案件（POST /cases/{id}/petitions），或确认后不带 check_duplicates 重新提交",
                },
                "duplicates": found.cases,
                "outside_your_area": found.outside_your_area,
                "notice": found.notice,
            });
            return Ok((axum::http::StatusCode::CONFLICT, Json(body)).into_response());
        }
    }
    Ok(context
        .run("POST /cases".into(), Command::RegisterCase(body), true)
        .await)
}

/// Assign or reassign the owning leader.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignLeaderBody {
    /// The leader, from `GET /api/v1/org`.
    pub leader_id: String,
    /// Why; required when the case already has a leader.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/cases/{id}/leader` (领导包案).
pub async fn assign_leader(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<AssignLeaderBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::AssignLeader(AssignLeader {
        case_id,
        leader_id: body.leader_id,
        reason: body.reason,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/leader"), command, false)
        .await)
}

/// Set the responsible units.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUnitsBody {
    /// The lead unit (主办).
    pub lead_unit_id: String,
    /// Assisting units (协办).
    #[serde(default)]
    pub assisting_unit_ids: Vec<String>,
    /// The named handler (具体责任人).
    #[serde(default)]
    pub handler: Option<String>,
}

/// `POST /api/v1/cases/{id}/units` (责任单位).
pub async fn set_units(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<SetUnitsBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::SetResponsibleUnits(SetResponsibleUnits {
        case_id,
        lead_unit_id: body.lead_unit_id,
        assisting_unit_ids: body.assisting_unit_ids,
        handler: body.handler,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/units"), command, false)
        .await)
}

/// Add a measure.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMeasureBody {
    /// What is to be done.
    pub description: String,
    /// Due date.
    #[serde(default)]
    pub due_on: Option<NaiveDate>,
    /// The unit that carries it out, from `GET /api/v1/org`.
    #[serde(default)]
    pub responsible_unit_id: Option<String>,
}

/// `POST /api/v1/cases/{id}/measures` (措施).
pub async fn add_measure(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<AddMeasureBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::AddMeasure(AddMeasure {
        case_id,
        description: body.description,
        due_on: body.due_on,
        responsible_unit_id: body.responsible_unit_id,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/measures"), command, true)
        .await)
}

/// Tick off a measure.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteMeasureBody {
    /// What came of it.
    pub result: String,
}

/// `POST /api/v1/cases/{id}/measures/{measure_id}/complete`.
pub async fn complete_measure(
    Path((id, measure_id)): Path<(String, String)>,
    context: WriteContext,
    JsonBody(body): JsonBody<CompleteMeasureBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let route = format!("POST /cases/{case_id}/measures/{measure_id}/complete");
    let command = Command::CompleteMeasure(CompleteMeasure {
        case_id,
        measure_id,
        result: body.result,
    });
    Ok(context.run(route, command, false).await)
}

/// Record a note.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordNoteBody {
    /// The note.
    pub text: String,
}

/// `POST /api/v1/cases/{id}/notes`.
pub async fn record_note(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<RecordNoteBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::RecordNote(RecordNote {
        case_id,
        text: body.text,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/notes"), command, true)
        .await)
}

/// Extend the handling period.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    /// Days to add, 1 to 30.
    pub days: u32,
    /// Why.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
}

/// `POST /api/v1/cases/{id}/extension` (延期办理, once, at most 30 days).
pub async fn extend(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ExtensionBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::ExtendHandling(zhzj_proto::commands::ExtendHandling {
        case_id,
        days: body.days,
        reason: body.reason,
        approved_by: body.approved_by,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/extension"), command, false)
        .await)
}

/// Erase a petitioner's personal data (administrators only).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// Which petitioner, as the case lists them: 1 for the first.
    pub petitioner: u32,
    /// Why (kept in the history), e.g. 保存期限届满 or 信访人申请删除.
    pub reason: String,
}

/// `POST /api/v1/cases/{id}/erasures` (删除信访人个人信息: the data key is destroyed, the case
/// and its history stay; PIPL 第四十七条).
pub async fn erase_petitioner(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ErasureBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::ErasePetitioner(zhzj_proto::commands::ErasePetitioner {
        case_id,
        petitioner: body.petitioner,
        reason: body.reason,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/erasures"), command, true)
        .await)
}

/// A leader's work on the case.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityBody {
    /// `reception` 接访, `invited_talk` 约访, `home_visit` 下访, `hearing` 听证, `reasoning` 评理,
    /// `expert_consultation` 专家会诊, `lawyer_consultation` 律师参与, `meeting` 协调会.
    pub kind: zhzj_proto::events::ActivityKind,
    /// When.
    pub held_on: NaiveDate,
    /// The leader who did it; the owning leader when absent.
    #[serde(default)]
    pub leader_id: Option<String>,
    /// Who took part.
    #[serde(default)]
    pub participants: Vec<String>,
    /// What came of it.
    pub summary: String,
}

/// `POST /api/v1/cases/{id}/activities` (领导包案工作记录).
pub async fn record_activity(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ActivityBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::RecordActivity(zhzj_proto::commands::RecordActivity {
        case_id,
        leader_id: body.leader_id,
        kind: body.kind,
        held_on: body.held_on,
        participants: body.participants,
        summary: body.summary,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/activities"), command, true)
        .await)
}

/// Classify the case (分类施策).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyBody {
    /// `reasonable`, `unreasonable`, `hardship` or `unlawful` (三到位一处理).
    pub class: zhzj_proto::events::ClaimClass,
    /// Subject category from the bureau's list (征地拆迁, 劳动社保, …).
    pub category: String,
    /// Why; required when reclassifying.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/cases/{id}/classification`.
pub async fn classify(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ClassifyBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::ClassifyCase(zhzj_proto::commands::ClassifyCase {
        case_id,
        class: body.class,
        category: body.category,
        reason: body.reason,
    });
    Ok(context
        .run(
            format!("POST /cases/{case_id}/classification"),
            command,
            false,
        )
        .await)
}

/// Claim the case resolved.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// `solved`, `settlement_agreement` or `legally_concluded`.
    pub ground: zhzj_proto::events::ResolutionGround,
    /// What was done.
    pub summary: String,
    /// References to the evidence; at least one.
    pub evidence: Vec<String>,
}

/// `POST /api/v1/cases/{id}/claims` (申请化解销号).
pub async fn claim(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ClaimBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::ClaimResolution(zhzj_proto::commands::ClaimResolution {
        case_id,
        ground: body.ground,
        summary: body.summary,
        evidence: body.evidence,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/claims"), command, true)
        .await)
}

/// Review the open claim at one level.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `district` (区联席办) or `city` (市信访局); the next level of the review chain.
    pub level: zhzj_proto::events::ReviewLevel,
    /// Accept (true) or send back (false).
    pub accept: bool,
    /// Opinion; required when sending back.
    #[serde(default)]
    pub reasons: Option<String>,
}

/// `POST /api/v1/cases/{id}/claims/review` (审核把关); the last level's acceptance crosses the
/// case off (销号).
pub async fn review(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::ReviewClaim(zhzj_proto::commands::ReviewClaim {
        case_id,
        level: body.level,
        accept: body.accept,
        reasons: body.reasons,
    });
    Ok(context
        .run(
            format!("POST /cases/{case_id}/claims/review"),
            command,
            false,
        )
        .await)
}

/// A new petition on the case.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PetitionBody {
    /// When it was received.
    pub received_on: NaiveDate,
    /// `online`, `letter`, `visit` or `phone`.
    pub channel: zhzj_proto::events::Channel,
    /// What it says.
    pub summary: String,
}

/// `POST /api/v1/cases/{id}/petitions` (重复信访; reopens a crossed-off case: 回潮).
pub async fn record_petition(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<PetitionBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::RecordPetition(zhzj_proto::commands::RecordPetition {
        case_id,
        received_on: body.received_on,
        channel: body.channel,
        summary: body.summary,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/petitions"), command, true)
        .await)
}

/// The petitioner's satisfaction with the reply.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionBody {
    /// `satisfied`, `basically_satisfied`, `dissatisfied` or `not_rated`.
    pub rating: zhzj_proto::events::Satisfaction,
    /// When it was given.
    pub rated_on: NaiveDate,
    /// Who gave or took it.
    pub rated_by: String,
}

/// `POST /api/v1/cases/{id}/satisfaction` (满意度).
pub async fn rate(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<SatisfactionBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::RateSatisfaction(zhzj_proto::commands::RateSatisfaction {
        case_id,
        rating: body.rating,
        rated_on: body.rated_on,
        rated_by: body.rated_by,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/satisfaction"), command, true)
        .await)
}

/// A step of the statutory procedure.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcedureBody {
    /// `acceptance_notified` (告知受理), `replied` (出具处理意见), `first_review_requested`
    /// (申请复查), `first_review_answered` (复查答复), `second_review_requested` (申请复核),
    /// `hearing_held` (听证) or `second_review_answered` (复核答复, 终结).
    pub step: ProcedureStep,
    /// When it happened.
    pub on: NaiveDate,
    /// What was decided or said.
    pub summary: String,
    /// For a hearing, the days it took (not counted in the second review's limit).
    #[serde(default)]
    pub hearing_days: Option<u32>,
}

/// `POST /api/v1/cases/{id}/procedure` (告知、答复、复查、复核、终结).
pub async fn record_procedure_step(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<ProcedureBody>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    let command = Command::RecordProcedureStep(zhzj_proto::commands::RecordProcedureStep {
        case_id,
        step: body.step,
        on: body.on,
        summary: body.summary,
        hearing_days: body.hearing_days,
    });
    Ok(context
        .run(format!("POST /cases/{case_id}/procedure"), command, true)
        .await)
}

/// A measure of a case.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MeasureView {
    /// `m1`, `m2`, …
    pub measure_id: String,
    /// What is to be done.
    pub description: String,
    /// Due date.
    pub due_on: Option<String>,
    /// The unit that carries it out (measures recorded before schema version 2 name none).
    pub responsible_unit: Option<String>,
    /// Whether it is ticked off.
    pub done: bool,
    /// What came of it.
    pub result: Option<String>,
}

/// A note on a case.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NoteView {
    /// When.
    pub at: String,
    /// By whom.
    pub by: String,
    /// The note.
    pub text: String,
}

/// One case: its checklist row, the registration details, measures and notes.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaseView {
    /// The checklist row.
    #[serde(flatten)]
    pub row: ChecklistItem,
    /// Petitioners, with ID numbers and phones masked.
    pub petitioners: Vec<Value>,
    /// Channel (网上、来信、来访、电话).
    pub channel: Option<String>,
    /// First filed date.
    pub first_filed_on: Option<String>,
    /// People involved.
    pub group_size: Option<u64>,
    /// The named handler (具体责任人).
    pub handler: Option<String>,
    /// The measures.
    pub measures: Vec<MeasureView>,
    /// The notes.
    pub notes: Vec<NoteView>,
    /// The classification (分类施策): `{class, category, reason, at}`, once classified.
    pub classification: Option<Value>,
    /// Resolution claims, each `{claim, ground, summary, evidence, at, reviews: [{level,
    /// accepted, reasons, at}], outcome}` with outcome `under_review`, `sent_back` or
    /// `crossed_off`.
    pub claims: Vec<Value>,
    /// New petitions on the case: `{received_on, channel, summary, reopened}`.
    pub petitions: Vec<Value>,
    /// Satisfaction ratings: `{rating, rated_on, rated_by}`.
    pub satisfaction_ratings: Vec<Value>,
    /// The leaders' work on the case: `{leader, kind, held_on, participants, summary}`.
    pub activities: Vec<Value>,
    /// The statutory procedure so far: `{step, label, on, summary, hearing_days}`.
    pub procedure: Vec<Value>,
    /// The statutory clocks of the current handling period.
    pub clocks: Vec<ClockView>,
    /// Whether the petitioners' personal data is shown unmasked (`?reveal=personal`).
    pub personal_data_unmasked: bool,
}

/// One statutory clock (《信访工作条例》) of a case.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClockView {
    /// `acceptance_notice`, `handling`, `first_review_request`, `first_review_answer`,
    /// `second_review_request` or `second_review_answer`.
    pub step: String,
    /// 告知是否受理, 办理期限, 申请复查期限, 复查答复期限, 申请复核期限 or 复核答复期限.
    pub label: String,
    /// The article that sets it.
    pub article: String,
    /// Its last day.
    pub due_on: String,
    /// `running` (the bureau's clock), `paused` (under review or crossed off), `met`,
    /// `petitioner` (a window for the petitioner to ask for a review).
    pub state: String,
    /// Days from today to the last day (negative when past).
    pub days_left: i64,
    /// Whether a running clock is past its last day.
    pub overdue: bool,
    /// Whether the last day is an estimate (its year's holidays are not yet in the calendar).
    pub estimated: bool,
}

/// The case's clocks, from the lifecycle view.
async fn clocks_of(state: &AppState, case_id: Uuid) -> Result<Vec<ClockView>, ApiError> {
    let Some(row) = sqlx::query(
        "SELECT stage, acceptance_due_on, handling_due_on, replied_on, procedure_step, \
         review_request_until, review_due_on FROM case_lifecycle WHERE case_id = $1",
    )
    .bind(case_id.to_string())
    .fetch_optional(state.store().pool())
    .await?
    else {
        return Ok(Vec::new());
    };
    let stage: String = row.try_get("stage")?;
    let procedure: Option<String> = row.try_get("procedure_step")?;
    let paused = matches!(stage.as_str(), "under_review" | "crossed_off");
    let running = |met: bool| match (met, paused) {
        (true, _) => "met",
        (false, true) => "paused",
        (false, false) => "running",
    };
    let mut clocks = Vec::new();
    let mut push = |step: StatutoryStep, due: Option<String>, clock_state: &str| {
        let Some(due_on) = due.and_then(|d| d.parse::<NaiveDate>().ok()) else {
            return;
        };
        let days_left = (due_on - state.today()).num_days();
        clocks.push(ClockView {
            step: step.key().to_owned(),
            label: step.label().to_owned(),
            article: step.article().to_owned(),
            due_on: due_on.to_string(),
            state: clock_state.to_owned(),
            days_left,
            overdue: matches!(clock_state, "running") && days_left < 0,
            estimated: !HolidayCalendar::shipped().covers(due_on),
        });
    };
    push(
        StatutoryStep::AcceptanceNotice,
        row.try_get("acceptance_due_on")?,
        running(procedure.is_some()),
    );
    let replied: Option<String> = row.try_get("replied_on")?;
    push(
        StatutoryStep::Handling,
        row.try_get("handling_due_on")?,
        running(replied.is_some()),
    );
    let first_round = matches!(
        procedure.as_deref(),
        Some("replied" | "first_review_requested")
    );
    let (request, answer) = if first_round {
        (
            StatutoryStep::FirstReviewRequest,
            StatutoryStep::FirstReviewAnswer,
        )
    } else {
        (
            StatutoryStep::SecondReviewRequest,
            StatutoryStep::SecondReviewAnswer,
        )
    };
    push(request, row.try_get("review_request_until")?, "petitioner");
    push(answer, row.try_get("review_due_on")?, "running");
    Ok(clocks)
}

/// One event of a case's history.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaseEventView {
    /// Log position of its commit.
    pub position: u64,
    /// The case version it produced.
    pub version: u64,
    /// Event id.
    pub event_id: String,
    /// Event type (`CaseRegistered`, `LeaderAssigned`, …).
    pub event_type: String,
    /// Its schema version.
    pub schema_version: i64,
    /// When it happened.
    pub occurred_at: String,
    /// Who did it.
    pub actor_id: String,
    /// The command that caused it.
    pub command_id: String,
    /// The user action it belongs to.
    pub correlation_id: String,
    /// The event's data (personal data masked).
    pub data: Value,
}

/// Masks all but the first 3 and last 4 characters.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Masks one personal field.
type Masker = fn(&str) -> String;

/// Masks a name: the surname stays (张**).
fn mask_name(text: &str) -> String {
    let mut chars = text.chars();
    let first: String = chars.next().into_iter().collect();
    format!("{first}{}", "*".repeat(chars.count()))
}

/// Masks an address after its first six characters (the district and street).
fn mask_address(text: &str) -> String {
    let kept: String = text.chars().take(6).collect();
    let hidden = text.chars().count().saturating_sub(6);
    format!("{kept}{}", "*".repeat(hidden))
}

/// Masks petitioners' names, ID numbers, phones and addresses in event data (个人信息保护法); an
/// unmasked read is asked for with `?reveal=personal` and logged.
fn mask_personal_data(event_type: &str, data: &mut Value) {
    if event_type != "CaseRegistered" {
        return;
    }
    let maskers: [(&str, Masker); 4] = [
        ("name", mask_name),
        ("id_number", mask),
        ("phone", mask),
        ("address", mask_address),
    ];
    if let Some(petitioners) = data.get_mut("petitioners").and_then(Value::as_array_mut) {
        for petitioner in petitioners {
            for (field, masker) in maskers {
                // An erased field says so; there is nothing left to mask.
                if let Some(value) = petitioner.get_mut(field)
                    && let Some(text) = value.as_str()
                    && text != crate::personal::ERASED
                {
                    *value = Value::String(masker(text));
                }
            }
        }
    }
}

/// `?reveal=personal`: show petitioners' personal data unmasked (logged).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    /// `personal` to see names, ID numbers, phones and addresses unmasked. Allowed to the city
    /// administrator, coordinators of the case's own area (not a responsible department: the
    /// accused unit must not learn who accuses it, 条例 第30条) and the owning leader; every such
    /// read is recorded.
    pub reveal: Option<String>,
}

/// Whether the read is to be unmasked: checks the user may, and records the read.
async fn reveal_personal_data(
    state: &AppState,
    user: &crate::User,
    row: &ChecklistItem,
    query: &RevealQuery,
    correlation: Uuid,
) -> Result<bool, ApiError> {
    match query.reveal.as_deref() {
        None => return Ok(false),
        Some("personal") => {}
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!("reveal 只能为 personal，收到 `{other}`"),
                field: Some("reveal".into()),
            });
        }
    }
    let has = |role: Role| user.has_role(role);
    let allowed = if has(Role::Admin) {
        true
    } else {
        let owns = has(Role::Leader)
            && user.leader_id.is_some()
            && row.leader.as_ref().map(|l| &l.id) == user.leader_id.as_ref();
        let own_area = has(Role::Coordinator)
            && match crate::scope::Scope::of(state, user).await? {
                crate::scope::Scope::All => true,
                crate::scope::Scope::Within { units, .. } => {
                    units.contains(&row.district.id)
                        || row.town.as_ref().is_some_and(|t| units.contains(&t.id))
                }
            };
        owns || own_area
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "您无权查看信访人的个人信息 (personal data stays masked for your role)".into(),
        ));
    }
    let mut tx = state.store().begin_write().await?;
    sqlx::query(
        "INSERT INTO personal_data_reads (username, case_id, read_at, correlation_id, purpose) \
         VALUES ($1, $2, $3, $4, 'reveal')",
    )
    .bind(&user.username)
    .bind(&row.case_id)
    .bind(zhzj_store::sql::timestamp_text(state.now()))
    .bind(correlation.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(username = %user.username, case_id = %row.case_id, "personal data read unmasked");
    Ok(true)
}

/// Runs of digits a clerk may have typed an ID or a phone number as: 15 to 18 characters (an
/// old or new resident ID, possibly ending in X), 11 (a mobile number), or an area code and a
/// number (`0592-1234567`). Case numbers (`XF20250601-0001`) and amounts do not match.
static FREE_TEXT_NUMBERS: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| {
        regex::Regex::new(r"0[0-9]{2,3}-[0-9]{7,8}|[0-9]{14,17}[0-9Xx]|1[3-9][0-9]{9}|[0-9]+").ok()
    });

/// Free text with ID-number and phone-number patterns masked like the structured fields
/// (`350***********0423`, `138****5678`); other text is left as it is.
pub(crate) fn mask_free_text(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(numbers) = FREE_TEXT_NUMBERS.as_ref() else {
        return std::borrow::Cow::Borrowed(text);
    };
    numbers.replace_all(text, |found: &regex::Captures<'_>| {
        let number = &found[0];
        // Other runs of digits match the last alternative whole and are kept.
        let mobile = number.len() == 11
            && number.starts_with('1')
            && number
                .as_bytes()
                .get(1)
                .is_some_and(|b| (b'3'..=b'9').contains(b));
        if number.contains('-') || (15..=18).contains(&number.len()) || mobile {
            mask(number)
        } else {
            number.to_owned()
        }
    })
}

/// Masks ID-number and phone-number patterns in every string of `data`.
fn mask_free_text_in(data: &mut Value) {
    match data {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(masked) = mask_free_text(text) {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_free_text_in),
        Value::Object(fields) => fields.values_mut().for_each(mask_free_text_in),
        _ => {}
    }
}

async fn case_events_of(
    state: &AppState,
    case_id: Uuid,
    unmasked: bool,
) -> Result<Vec<CaseEventView>, ApiError> {
    let rows = sqlx::query(
        "SELECT position, aggregate_version, event_id, event_type, schema_version, occurred_at, \
         actor_id, command_id, correlation_id, CAST(data AS TEXT) AS data FROM event_archive \
         WHERE aggregate_type = 'case' AND aggregate_id = $1 ORDER BY position, event_index",
    )
    .bind(case_id.to_string())
    .fetch_all(state.store().pool())
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let event_type: String = row.try_get("event_type")?;
        let data: String = row.try_get("data")?;
        let mut data: Value = serde_json::from_str(&data).map_err(|e| {
            let position = row.try_get::<i64, _>("position").unwrap_or(-1);
            tracing::error!(%case_id, position, error = %e, "unreadable event in the archive");
            ApiError::CorruptHistory(format!(
                "案件历史中第 {position} 号事件 ({event_type}) 无法读取，请管理员重建事件档案 \
                 (event at position {position} unreadable: {e})"
            ))
        })?;
        if event_type == "CaseRegistered" {
            crate::personal::open_in_event(state, &mut data).await?;
        }
        events.push((row, event_type, data));
    }
    events
        .into_iter()
        .map(|(row, event_type, mut data)| {
            if !unmasked {
                mask_personal_data(&event_type, &mut data);
                mask_free_text_in(&mut data);
            }
            Ok(CaseEventView {
                position: u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0),
                version: u64::try_from(row.try_get::<i64, _>("aggregate_version")?).unwrap_or(0),
                event_id: row.try_get("event_id")?,
                schema_version: row.try_get::<i64, _>("schema_version")?,
                occurred_at: row.try_get("occurred_at")?,
                actor_id: row.try_get("actor_id")?,
                command_id: row.try_get("command_id")?,
                correlation_id: row.try_get("correlation_id")?,
                event_type,
                data,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::from)
}

/// The case's checklist row, if the user may read it (404 otherwise, as if it did not exist).
async fn checklist_item(
    state: &AppState,
    user: &crate::User,
    case_id: Uuid,
) -> Result<ChecklistItem, ApiError> {
    let mut binds = vec![case_id.to_string()];
    let scope = crate::scope::Scope::of(state, user)
        .await?
        .condition(&mut binds)
        .map(|condition| format!(" AND {condition}"))
        .unwrap_or_default();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {FROM_SQL} WHERE c.case_id = $1{scope}",
        item_columns()
    )));
    for value in binds {
        query = query.bind(value);
    }
    let row = query
        .fetch_optional(state.store().pool())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("案件 {case_id} 不存在")))?;
    Ok(ChecklistItem::from_row(&row, state.today())?)
}

fn with_etag(version: u64, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// `GET /api/v1/cases/{id}`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<RevealQuery>,
) -> Result<Response, ApiError> {
    let (view, _) = case_with_history(&state, &user, &id, &query, correlation).await?;
    Ok(with_etag(view.row.version, Json(view)))
}

/// A case as the user may see it, and its history (from the archive), for the API and the case
/// page alike.
pub(crate) async fn case_with_history(
    state: &AppState,
    user: &crate::User,
    id: &str,
    query: &RevealQuery,
    correlation: Uuid,
) -> Result<(CaseView, Vec<CaseEventView>), ApiError> {
    let case_id = case_id(id)?;
    let row = checklist_item(state, user, case_id).await?;
    let unmasked = reveal_personal_data(state, user, &row, query, correlation).await?;
    let clocks = clocks_of(state, case_id).await?;
    let mut view = CaseView {
        row,
        petitioners: Vec::new(),
        channel: None,
        first_filed_on: None,
        group_size: None,
        handler: None,
        measures: Vec::new(),
        notes: Vec::new(),
        classification: None,
        claims: Vec::new(),
        petitions: Vec::new(),
        satisfaction_ratings: Vec::new(),
        activities: Vec::new(),
        procedure: Vec::new(),
        clocks,
        personal_data_unmasked: unmasked,
    };
    let events = case_events_of(state, case_id, unmasked).await?;
    for event in &events {
        let data = &event.data;
        match event.event_type.as_str() {
            "CaseRegistered" => {
                // The checklist row's matter is masked; the registration's is masked only when
                // the read is.
                if let Some(matter) = data["matter"].as_str() {
                    view.row.matter = matter.to_owned();
                }
                view.petitioners = data["petitioners"].as_array().cloned().unwrap_or_default();
                view.channel = text(&data["channel"]);
                view.first_filed_on = text(&data["first_filed_on"]);
                view.group_size = data["group_size"].as_u64();
            }
            "ResponsibleUnitsSet" => view.handler = text(&data["handler"]),
            "MeasureAdded" => view.measures.push(MeasureView {
                measure_id: text(&data["measure_id"]).unwrap_or_default(),
                description: text(&data["description"]).unwrap_or_default(),
                due_on: text(&data["due_on"]),
                responsible_unit: text(&data["responsible_unit"]["name"]),
                done: false,
                result: None,
            }),
            "MeasureCompleted" => {
                let id = text(&data["measure_id"]);
                if let Some(measure) = view
                    .measures
                    .iter_mut()
                    .find(|m| Some(&m.measure_id) == id.as_ref())
                {
                    measure.done = true;
                    measure.result = text(&data["result"]);
                }
            }
            "NoteRecorded" => view.notes.push(NoteView {
                at: event.occurred_at.clone(),
                by: event.actor_id.clone(),
                text: text(&data["text"]).unwrap_or_default(),
            }),
            "CaseClassified" => {
                let mut classification = data.clone();
                classification["at"] = Value::String(event.occurred_at.clone());
                view.classification = Some(classification);
            }
            "ResolutionClaimed" => {
                let mut claim = data.clone();
                claim["at"] = Value::String(event.occurred_at.clone());
                claim["reviews"] = Value::Array(Vec::new());
                claim["outcome"] = Value::String("under_review".into());
                view.claims.push(claim);
            }
            "ClaimAccepted" | "ClaimSentBack" => {
                let accepted = event.event_type == "ClaimAccepted";
                if let Some(claim) = view.claims.last_mut() {
                    if let Some(reviews) = claim["reviews"].as_array_mut() {
                        reviews.push(serde_json::json!({
                            "level": data["level"],
                            "accepted": accepted,
                            "reasons": if accepted { &data["opinion"] } else { &data["reasons"] },
                            "at": event.occurred_at,
                        }));
                    }
                    if !accepted {
                        claim["outcome"] = Value::String("sent_back".into());
                    }
                }
            }
            "CaseCrossedOff" => {
                if let Some(claim) = view.claims.last_mut() {
                    claim["outcome"] = Value::String("crossed_off".into());
                }
            }
            "PetitionRecorded" => {
                let mut petition = data.clone();
                petition["reopened"] = Value::Bool(false);
                view.petitions.push(petition);
            }
            "CaseReopened" => {
                if let Some(petition) = view.petitions.last_mut() {
                    petition["reopened"] = Value::Bool(true);
                }
            }
            "SatisfactionRated" => view.satisfaction_ratings.push(data.clone()),
            "LeaderActivityRecorded" => view.activities.push(data.clone()),
            "ProcedureStepRecorded" => {
                let mut step = data.clone();
                let label = serde_json::from_value::<ProcedureStep>(data["step"].clone())
                    .map(ProcedureStep::label)
                    .unwrap_or_default();
                step["label"] = Value::String(label.to_owned());
                view.procedure.push(step);
            }
            _ => {}
        }
    }
    Ok((view, events))
}

/// `GET /api/v1/cases/{id}/events`: the case's history from the event archive.
pub async fn events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<RevealQuery>,
) -> Result<Response, ApiError> {
    let case_id = case_id(&id)?;
    // In the user's scope, or not found.
    let row = checklist_item(&state, &user, case_id).await?;
    let unmasked = reveal_personal_data(&state, &user, &row, &query, correlation).await?;
    let events = case_events_of(&state, case_id, unmasked).await?;
    let Some(last) = events.last() else {
        return Err(ApiError::not_found(format!("案件 {case_id} 不存在")));
    };
    let version = last.version;
    Ok(with_etag(version, Json(events)))
}

#[cfg(test)]
mod tests {
    use super::mask_free_text;

    #[test]
    fn id_and_phone_numbers_in_free_text_are_masked_and_nothing_else() {
        let cases = [
            (
                "约访张三（身份证350203199001010423，电话13812345678）",
                "约访张三（身份证350***********0423，电话138****5678）",
            ),
            (
                "身份证号 35020319900101042X 已核实",
                "身份证号 350***********042X 已核实",
            ),
            ("旧证 350203900101042", "旧证 350********1042"),
            ("座机0592-1234567转", "座机059*****4567转"),
            (
                "案件 XF20250601-0001，补偿 120000 元，12345678901",
                "案件 XF20250601-0001，补偿 120000 元，12345678901",
            ),
            ("2026年3月2日", "2026年3月2日"),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_free_text(text), masked, "{text}");
        }
    }
}
