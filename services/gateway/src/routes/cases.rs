//! `/api/v1/cases`: register a case, read one with its measures and history, and the writes that
//! work it (leader, units, measures, notes).

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::accounts::Role;
use zhzj_proto::commands::{
    AddMeasure, AssignLeader, CompleteMeasure, RecordNote, RegisterCase, SetResponsibleUnits,
};
use zhzj_proto::events::ProcedureStep;

use crate::commands::{Write, execute};
use crate::extract::{CorrelationId, CurrentUser, IdempotencyKey, IfMatch, JsonBody, QueryParams};
use crate::{ApiError, AppState};

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
pub(crate) fn case_id(text: &str) -> Result<Uuid, ApiError> {
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
