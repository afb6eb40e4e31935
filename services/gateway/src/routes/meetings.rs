//! `/api/v1/meetings`: weekly dispatch meetings (周调度) — hold this week's, read any meeting's
//! agenda as it stood when it was held (drawn from the event archive at the meeting's log
//! position), export it, issue dispatch instructions (调度指令) and record feedback on them.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;
use zhzj_figures::{Agenda, AgendaRequest};
use zhzj_proto::Command;
use zhzj_proto::commands::{HoldMeeting, IssueInstruction, RecordInstructionFeedback};
use zhzj_proto::events::UnitRef;

use super::cases::WriteContext;
use super::download::SealedReport;
use crate::commands::WriteOutcome;
use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// Days without leader activity after which an owned case is listed, unless asked otherwise.
const DEFAULT_IDLE_DAYS: i64 = 30;

/// A meeting as the campaign view lists it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MeetingListItem {
    /// Meeting id (`<unit>-2026w10`).
    pub meeting_id: String,
    /// Its title.
    pub title: String,
    /// Its unit.
    pub unit: UnitRef,
    /// Its ISO week.
    pub week: String,
    /// When it was held.
    pub held_at: String,
    /// The log position its agenda is drawn at.
    pub as_of_position: i64,
}

fn meeting_from_row(row: &sqlx::any::AnyRow) -> Result<MeetingListItem, sqlx::Error> {
    Ok(MeetingListItem {
        meeting_id: row.try_get("meeting_id")?,
        title: row.try_get("title")?,
        unit: UnitRef {
            id: row.try_get("unit_id")?,
            name: row.try_get("unit_name")?,
        },
        week: row.try_get("week")?,
        held_at: row.try_get("held_at")?,
        as_of_position: row.try_get("as_of_position")?,
    })
}

const MEETING_COLUMNS: &str =
    "meeting_id, title, unit_id, unit_name, week, held_at, as_of_position";

/// `GET /api/v1/meetings`: the meetings of the units in the user's scope, latest first.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<MeetingListItem>>, ApiError> {
    let scope = Scope::of(&state, &user).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEETING_COLUMNS} FROM dispatch_meetings ORDER BY held_at DESC, meeting_id"
    )))
    .fetch_all(state.store().pool())
    .await?;
    let mut meetings = Vec::new();
    for row in &rows {
        let meeting = meeting_from_row(row)?;
        if scope.covers_unit(&meeting.unit.id) {
            meetings.push(meeting);
        }
    }
    Ok(Json(meetings))
}

/// The meeting, if the user's scope covers its unit (404 otherwise).
async fn meeting_in_scope(
    state: &AppState,
    user: &crate::User,
    meeting_id: &str,
) -> Result<MeetingListItem, ApiError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEETING_COLUMNS} FROM dispatch_meetings WHERE meeting_id = $1"
    )))
    .bind(meeting_id)
    .fetch_optional(state.store().pool())
    .await?;
    let meeting = row.as_ref().map(meeting_from_row).transpose()?;
    match meeting {
        Some(meeting) if Scope::of(state, user).await?.covers_unit(&meeting.unit.id) => Ok(meeting),
        _ => Err(ApiError::not_found(format!("调度会 {meeting_id} 不存在"))),
    }
}

/// `?idle_days=N`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgendaQuery {
    /// Owned cases with no leader activity for more than this many days are listed (default
    /// 30).
    pub idle_days: Option<u32>,
    /// For the CSV export: which part — `overview` (default), a section key (`new_cases`,
    /// `crossed_off`, `relapses`, `overdue`, `due_soon`, `idle_owned`, `awaiting_review`) or
    /// `instructions`.
    pub part: Option<String>,
}

async fn draw_agenda(
    state: &AppState,
    user: &crate::User,
    meeting_id: &str,
    query: &AgendaQuery,
) -> Result<Agenda, ApiError> {
    let meeting = meeting_in_scope(state, user, meeting_id).await?;
    let held_at = DateTime::parse_from_rfc3339(&meeting.held_at)
        .map_err(ApiError::internal)?
        .with_timezone(&Utc);
    let request = AgendaRequest {
        meeting_id: meeting.meeting_id.clone(),
        title: meeting.title.clone(),
        week: meeting.week.clone(),
        unit: meeting.unit,
        held_at,
        as_of_position: meeting.as_of_position,
        idle_days: query.idle_days.map_or(DEFAULT_IDLE_DAYS, i64::from),
        limits: state.config().limits.clone(),
    };
    let mut agenda = zhzj_figures::agenda(state.store(), &request)
        .await
        .map_err(ApiError::internal)?;
    // An agenda is read (and exported) by the whole meeting: ID and phone numbers clerks typed
    // into matters, instructions and feedback are masked.
    let mask = |text: &mut String| *text = super::case_masking::mask_free_text(text).into_owned();
    for row in agenda.sections.iter_mut().flat_map(|s| s.rows.iter_mut()) {
        mask(&mut row.matter);
        mask(&mut row.detail);
    }
    for order in &mut agenda.supervision {
        mask(&mut order.matter);
    }
    for instruction in &mut agenda.instructions {
        mask(&mut instruction.text);
        if let Some(feedback) = &mut instruction.feedback {
            mask(feedback);
        }
    }
    Ok(agenda)
}

/// `GET /api/v1/meetings/{id}`: the agenda as it stood at the meeting.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<AgendaQuery>,
) -> Result<Json<Agenda>, ApiError> {
    Ok(Json(draw_agenda(&state, &user, &id, &query).await?))
}

/// `GET /api/v1/meetings/{id}/agenda.xlsx`: the agenda as a workbook; regenerated later it is
/// byte-identical.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<AgendaQuery>,
) -> Result<Response, ApiError> {
    report(&state, &user, &id, &query)
        .await?
        .0
        .xlsx(&state)
        .await
}

/// The meeting's agenda as a sealed report, with the agenda for choosing a sheet.
async fn report(
    state: &AppState,
    user: &crate::User,
    id: &str,
    query: &AgendaQuery,
) -> Result<(SealedReport, Agenda), ApiError> {
    let agenda = draw_agenda(state, user, id, query).await?;
    let report = SealedReport {
        position: agenda.as_of_position,
        tables: agenda.tables(),
        created: agenda.created(),
        ascii_name: format!("agenda-{id}"),
        name: agenda.title.clone(),
        sheet_prefix: agenda.title.clone(),
    };
    Ok((report, agenda))
}

/// `GET /api/v1/meetings/{id}/agenda.csv?part=…`: one part of the agenda as CSV.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<AgendaQuery>,
) -> Result<Response, ApiError> {
    let (report, agenda) = report(&state, &user, &id, &query).await?;
    let part = query.part.as_deref().unwrap_or("overview");
    let index = match part {
        "overview" => Some(0),
        "instructions" => Some(agenda.sections.len() + 1),
        "supervision" => Some(agenda.sections.len() + 2),
        key => agenda
            .sections
            .iter()
            .position(|s| s.key == key)
            .map(|i| i + 1),
    };
    let Some(index) = index.filter(|i| *i < report.tables.len()) else {
        return Err(ApiError::BadRequest {
            message: format!("未知的议程部分 `{part}`"),
            field: Some("part".into()),
        });
    };
    report.csv(&state, index, part).await
}

/// `POST /api/v1/meetings`: hold this week's meeting of a unit (one per unit and ISO week).
pub async fn hold(
    context: WriteContext,
    JsonBody(command): JsonBody<HoldMeeting>,
) -> Result<WriteOutcome, ApiError> {
    Ok(context
        .run("POST /meetings".to_owned(), command.into(), true)
        .await)
}

/// A dispatch instruction.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstructionBody {
    /// The case it is about.
    #[serde(default)]
    pub case_id: Option<Uuid>,
    /// The unit it goes to.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader it goes to.
    #[serde(default)]
    pub leader_id: Option<String>,
    /// What is to be done.
    pub text: String,
    /// By when feedback is due.
    pub feedback_due_on: NaiveDate,
}

/// `POST /api/v1/meetings/{id}/instructions` (调度指令).
pub async fn issue(
    Path(id): Path<String>,
    context: WriteContext,
    JsonBody(body): JsonBody<InstructionBody>,
) -> Result<WriteOutcome, ApiError> {
    meeting_in_scope(&context.state, &context.user, &id).await?;
    let command = Command::IssueInstruction(IssueInstruction {
        meeting_id: id.clone(),
        case_id: body.case_id,
        unit_id: body.unit_id,
        leader_id: body.leader_id,
        text: body.text,
        feedback_due_on: body.feedback_due_on,
    });
    Ok(context
        .run(format!("POST /meetings/{id}/instructions"), command, true)
        .await)
}

/// Feedback on an instruction.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// What was done.
    pub text: String,
    /// When.
    pub on: NaiveDate,
}

/// `POST /api/v1/meetings/{id}/instructions/{number}/feedback` (反馈).
pub async fn feedback(
    Path((id, number)): Path<(String, String)>,
    context: WriteContext,
    JsonBody(body): JsonBody<FeedbackBody>,
) -> Result<WriteOutcome, ApiError> {
    let Ok(number) = number.parse::<u32>() else {
        return Err(ApiError::not_found(format!("调度指令 {number} 不存在")));
    };
    let command = Command::RecordInstructionFeedback(RecordInstructionFeedback {
        meeting_id: id.clone(),
        number,
        text: body.text,
        on: body.on,
    });
    Ok(context
        .run(
            format!("POST /meetings/{id}/instructions/{number}/feedback"),
            command,
            true,
        )
        .await)
}
