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
use zhzj_proto::events::ProcedureStep;

use super::case_masking::{
    RevealQuery, mask_free_text_in, mask_personal_data, reveal_personal_data,
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
    /// The event's data (personal data masked).
    pub data: Value,
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

pub(crate) fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

impl CaseView {
    /// Adds one event of the case's history (from the archive, masked as the read is) to the view.
    fn apply(&mut self, event: &CaseEventView) {
        let data = &event.data;
        match event.event_type.as_str() {
            "CaseRegistered" => {
                // The checklist row's matter is masked; the registration's is masked only when
                // the read is.
                if let Some(matter) = data["matter"].as_str() {
                    self.row.matter = matter.to_owned();
                }
                self.petitioners = data["petitioners"].as_array().cloned().unwrap_or_default();
                self.channel = text(&data["channel"]);
                self.first_filed_on = text(&data["first_filed_on"]);
                self.group_size = data["group_size"].as_u64();
            }
            "ResponsibleUnitsSet" => self.handler = text(&data["handler"]),
            "MeasureAdded" => self.measures.push(MeasureView {
                measure_id: text(&data["measure_id"]).unwrap_or_default(),
                description: text(&data["description"]).unwrap_or_default(),
                due_on: text(&data["due_on"]),
                responsible_unit: text(&data["responsible_unit"]["name"]),
                done: false,
                result: None,
            }),
            "MeasureCompleted" => {
                let id = text(&data["measure_id"]);
                if let Some(measure) = self
                    .measures
                    .iter_mut()
                    .find(|m| Some(&m.measure_id) == id.as_ref())
                {
                    measure.done = true;
                    measure.result = text(&data["result"]);
                }
            }
            "NoteRecorded" => self.notes.push(NoteView {
                at: event.occurred_at.clone(),
                by: event.actor_id.clone(),
                text: text(&data["text"]).unwrap_or_default(),
            }),
            "CaseClassified" => {
                let mut classification = data.clone();
                classification["at"] = Value::String(event.occurred_at.clone());
                self.classification = Some(classification);
            }
            "ResolutionClaimed" => {
                let mut claim = data.clone();
                claim["at"] = Value::String(event.occurred_at.clone());
                claim["reviews"] = Value::Array(Vec::new());
                claim["outcome"] = Value::String("under_review".into());
                self.claims.push(claim);
            }
            "ClaimAccepted" | "ClaimSentBack" => {
                let accepted = event.event_type == "ClaimAccepted";
                if let Some(claim) = self.claims.last_mut() {
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
                if let Some(claim) = self.claims.last_mut() {
                    claim["outcome"] = Value::String("crossed_off".into());
                }
            }
            "PetitionRecorded" => {
                let mut petition = data.clone();
                petition["reopened"] = Value::Bool(false);
                self.petitions.push(petition);
            }
            "CaseReopened" => {
                if let Some(petition) = self.petitions.last_mut() {
                    petition["reopened"] = Value::Bool(true);
                }
            }
            "SatisfactionRated" => self.satisfaction_ratings.push(data.clone()),
            "LeaderActivityRecorded" => self.activities.push(data.clone()),
            "ProcedureStepRecorded" => {
                let mut step = data.clone();
                let label = serde_json::from_value::<ProcedureStep>(data["step"].clone())
                    .map(ProcedureStep::label)
                    .unwrap_or_default();
                step["label"] = Value::String(label.to_owned());
                self.procedure.push(step);
            }
            _ => {}
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
