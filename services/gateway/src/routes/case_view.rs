//! `GET /api/v1/cases/{id}` and its history: the case as the checklist shows it, with its
//! measures, notes, statutory clocks and events, read from the projections and the event archive.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;
use zhzj_deadlines::{HolidayCalendar, StatutoryStep};
use zhzj_proto::DomainEvent;
use zhzj_proto::events::{
    CaseClassified, CaseEvent, Channel, LeaderActivityRecorded, PetitionRecorded, Petitioner,
    ProcedureStepRecorded, RecordedPetitioner, ResolutionClaimed, ReviewLevel, SatisfactionRated,
};

use super::case_masking::{
    RevealQuery, mask_case_event, mask_free_text_in, mask_personal_data, reveal_personal_data,
};
use super::cases::case_id;
use super::checklist::{ChecklistItem, FROM_SQL, item_columns};
use crate::extract::{CorrelationId, CurrentUser, QueryParams};
use crate::{ApiError, AppState, etag};

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

/// The classification of a case (分类施策) and when it was made.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClassificationView {
    /// The classification as recorded.
    #[serde(flatten)]
    pub classified: CaseClassified,
    /// When.
    pub at: String,
}

/// Where a resolution claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// Awaiting its reviews.
    UnderReview,
    /// Sent back by a review.
    SentBack,
    /// Accepted at the last level: the case was crossed off (销号).
    CrossedOff,
}

/// One review of a resolution claim.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReviewView {
    /// The reviewing level.
    pub level: ReviewLevel,
    /// Whether it accepted the claim.
    pub accepted: bool,
    /// The opinion (accepted) or the reasons (sent back).
    pub reasons: Option<String>,
    /// When.
    pub at: String,
}

/// A resolution claim (申请化解销号), its reviews and its outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClaimView {
    /// The claim as recorded.
    #[serde(flatten)]
    pub claimed: ResolutionClaimed,
    /// When it was made.
    pub at: String,
    /// Its reviews, in order.
    pub reviews: Vec<ReviewView>,
    /// Where it stands.
    pub outcome: ClaimOutcome,
}

/// A new petition on the case, and whether it reopened a crossed-off case (回潮).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PetitionView {
    /// The petition as recorded.
    #[serde(flatten)]
    pub petition: PetitionRecorded,
    /// Whether it reopened the case.
    pub reopened: bool,
}

/// A step of the statutory procedure, with its label.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProcedureView {
    /// The step as recorded.
    #[serde(flatten)]
    pub step: ProcedureStepRecorded,
    /// 受理、答复、复查… in words.
    pub label: String,
}

/// One case: its checklist row, the registration details, measures and notes.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaseView {
    /// The checklist row.
    #[serde(flatten)]
    pub row: ChecklistItem,
    /// Petitioners, with names, ID numbers, phones and addresses masked unless revealed.
    pub petitioners: Vec<Petitioner>,
    /// Channel of the first petition.
    pub channel: Option<Channel>,
    /// First filed date.
    pub first_filed_on: Option<NaiveDate>,
    /// People involved.
    pub group_size: Option<u32>,
    /// The named handler (具体责任人).
    pub handler: Option<String>,
    /// The measures.
    pub measures: Vec<MeasureView>,
    /// The notes.
    pub notes: Vec<NoteView>,
    /// The classification (分类施策), once classified.
    pub classification: Option<ClassificationView>,
    /// Resolution claims, each with its reviews and outcome.
    pub claims: Vec<ClaimView>,
    /// New petitions on the case.
    pub petitions: Vec<PetitionView>,
    /// Satisfaction ratings.
    pub satisfaction_ratings: Vec<SatisfactionRated>,
    /// The leaders' work on the case.
    pub activities: Vec<LeaderActivityRecorded>,
    /// The statutory procedure so far.
    pub procedure: Vec<ProcedureView>,
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
pub(crate) async fn clocks_of(state: &AppState, case_id: Uuid) -> Result<Vec<ClockView>, ApiError> {
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
    /// The event's data as stored (personal data masked unless revealed).
    pub data: Value,
    /// The event, decoded (and upcast) from `data`, masked as `data` is.
    #[serde(skip)]
    pub event: CaseEvent,
}

pub(crate) async fn case_events_of(
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
        let position: i64 = row.try_get("position")?;
        let event_type: String = row.try_get("event_type")?;
        let schema_version: i64 = row.try_get("schema_version")?;
        let corrupt = |error: &dyn std::fmt::Display| {
            tracing::error!(%case_id, position, %error, "unreadable event in the archive");
            ApiError::CorruptHistory(format!(
                "案件历史中第 {position} 号事件 ({event_type}) 无法读取，请管理员重建事件档案 \
                 (event at position {position} unreadable: {error})"
            ))
        };
        let data: String = row.try_get("data")?;
        let mut data: Value = serde_json::from_str(&data).map_err(|e| corrupt(&e))?;
        let version = u32::try_from(schema_version).unwrap_or(0);
        let mut event = match DomainEvent::decode(&event_type, version, data.clone()) {
            Ok(DomainEvent::Case(event)) => event,
            Ok(_) => return Err(corrupt(&"not an event of a case")),
            Err(e) => return Err(corrupt(&e)),
        };
        if let CaseEvent::Registered(registered) = &mut event {
            let mut opened = Vec::with_capacity(registered.petitioners.len());
            for recorded in &mut registered.petitioners {
                let petitioner = crate::personal::open(state, recorded).await?;
                opened.push(serde_json::to_value(&petitioner).map_err(ApiError::internal)?);
                *recorded = RecordedPetitioner::Plain(petitioner);
            }
            data["petitioners"] = Value::Array(opened);
        }
        if !unmasked {
            mask_case_event(&mut event);
            mask_personal_data(&event_type, &mut data);
            mask_free_text_in(&mut data);
        }
        events.push(CaseEventView {
            position: u64::try_from(position).unwrap_or(0),
            version: u64::try_from(row.try_get::<i64, _>("aggregate_version")?).unwrap_or(0),
            event_id: row.try_get("event_id")?,
            schema_version,
            occurred_at: row.try_get("occurred_at")?,
            actor_id: row.try_get("actor_id")?,
            command_id: row.try_get("command_id")?,
            correlation_id: row.try_get("correlation_id")?,
            event_type,
            data,
            event,
        });
    }
    Ok(events)
}

/// The case's checklist row, if the user may read it (404 otherwise, as if it did not exist).
pub(crate) async fn checklist_item(
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

pub(crate) fn with_etag(version: u64, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

impl CaseView {
    /// Adds one event of the case's history (decoded, and masked as the read is) to the view.
    fn apply(&mut self, event: &CaseEventView) {
        let at = || event.occurred_at.clone();
        match &event.event {
            CaseEvent::Registered(registered) => {
                // The checklist row's matter is masked; the registration's is masked only when
                // the read is.
                self.row.matter.clone_from(&registered.matter);
                self.petitioners = registered
                    .petitioners
                    .iter()
                    .filter_map(|recorded| match recorded {
                        RecordedPetitioner::Plain(petitioner) => Some(petitioner.clone()),
                        // Opened when the history was read: never sealed here.
                        RecordedPetitioner::Sealed(_) => None,
                    })
                    .collect();
                self.channel = Some(registered.channel);
                self.first_filed_on = Some(registered.first_filed_on);
                self.group_size = Some(registered.group_size);
            }
            CaseEvent::ResponsibleUnitsSet(units) => self.handler.clone_from(&units.handler),
            CaseEvent::MeasureAdded(added) => self.measures.push(MeasureView {
                measure_id: added.measure_id.clone(),
                description: added.description.clone(),
                due_on: added.due_on.map(|day| day.to_string()),
                responsible_unit: added.responsible_unit.as_ref().map(|u| u.name.clone()),
                done: false,
                result: None,
            }),
            CaseEvent::MeasureCompleted(completed) => {
                if let Some(measure) = self
                    .measures
                    .iter_mut()
                    .find(|m| m.measure_id == completed.measure_id)
                {
                    measure.done = true;
                    measure.result = Some(completed.result.clone());
                }
            }
            CaseEvent::NoteRecorded(note) => self.notes.push(NoteView {
                at: at(),
                by: event.actor_id.clone(),
                text: note.text.clone(),
            }),
            CaseEvent::Classified(classified) => {
                self.classification = Some(ClassificationView {
                    classified: classified.clone(),
                    at: at(),
                });
            }
            CaseEvent::ResolutionClaimed(claimed) => self.claims.push(ClaimView {
                claimed: claimed.clone(),
                at: at(),
                reviews: Vec::new(),
                outcome: ClaimOutcome::UnderReview,
            }),
            CaseEvent::ClaimAccepted(accepted) => self.review(ReviewView {
                level: accepted.level,
                accepted: true,
                reasons: accepted.opinion.clone(),
                at: at(),
            }),
            CaseEvent::ClaimSentBack(sent_back) => self.review(ReviewView {
                level: sent_back.level,
                accepted: false,
                reasons: Some(sent_back.reasons.clone()),
                at: at(),
            }),
            CaseEvent::CrossedOff(_) => {
                if let Some(claim) = self.claims.last_mut() {
                    claim.outcome = ClaimOutcome::CrossedOff;
                }
            }
            CaseEvent::PetitionRecorded(petition) => self.petitions.push(PetitionView {
                petition: petition.clone(),
                reopened: false,
            }),
            CaseEvent::Reopened(_) => {
                if let Some(petition) = self.petitions.last_mut() {
                    petition.reopened = true;
                }
            }
            CaseEvent::SatisfactionRated(rated) => self.satisfaction_ratings.push(rated.clone()),
            CaseEvent::LeaderActivity(activity) => self.activities.push(activity.clone()),
            CaseEvent::ProcedureStep(step) => self.procedure.push(ProcedureView {
                step: step.clone(),
                label: step.step.label().to_owned(),
            }),
            // Shown in the timeline; the checklist row carries what they change.
            CaseEvent::LeaderAssigned(_)
            | CaseEvent::LeaderReassigned(_)
            | CaseEvent::HandlingExtended(_)
            | CaseEvent::UnreadableCommitsSkipped(_)
            | CaseEvent::PetitionerErased(_) => {}
        }
    }

    /// A review of the latest claim.
    fn review(&mut self, review: ReviewView) {
        if let Some(claim) = self.claims.last_mut() {
            if !review.accepted {
                claim.outcome = ClaimOutcome::SentBack;
            }
            claim.reviews.push(review);
        }
    }
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
        view.apply(event);
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
