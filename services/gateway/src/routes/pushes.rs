//! `/api/v1/pushes`: the quarterly push on hard cases (季攻坚) — launch one for a quarter with
//! its hard cases and a target per area, follow its progress per area and per case, and from the
//! quarter's end read (and export) its final result. Like the bulletin, the progress holds
//! counted figures per area and the list of hard cases the city named. Every signed-in user reads
//! the totals and the areas' figures; the list of hard cases shows each user only the cases they
//! may read (a district its own, a department those it is responsible for): another district's
//! hard cases — matter, leader, unit — are not theirs to see.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zhzj_figures::PushProgress;
use zhzj_proto::commands::LaunchPush;
use zhzj_store::china_midnight;

use super::cases::WriteContext;
use super::download::SealedReport;
use crate::commands::WriteOutcome;
use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::scope::readable_cases;
use crate::{ApiError, AppState, User};

/// A launched push.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PushListItem {
    /// `2026-Q2`.
    pub quarter: String,
    /// Its title.
    pub title: String,
    /// Its hard cases.
    pub cases: i64,
    /// When it was launched.
    pub launched_at: String,
}

/// `GET /api/v1/pushes`: the pushes, latest quarter first.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
) -> Result<Json<Vec<PushListItem>>, ApiError> {
    let rows =
        sqlx::query("SELECT quarter, title, cases, launched_at FROM pushes ORDER BY quarter DESC")
            .fetch_all(state.store().pool())
            .await?;
    let list = rows
        .iter()
        .map(|row| {
            Ok(PushListItem {
                quarter: row.try_get("quarter")?,
                title: row.try_get("title")?,
                cases: row.try_get("cases")?,
                launched_at: row.try_get("launched_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(list))
}

/// The push's progress as `user` may see it: every area's figures, their own hard cases.
async fn progress(state: &AppState, user: &User, quarter: &str) -> Result<PushProgress, ApiError> {
    let mut push = progress_of_all(state, quarter).await?;
    let ids: Vec<String> = push.cases.iter().map(|c| c.case_id.clone()).collect();
    let readable = readable_cases(state, user, &ids).await?;
    push.cases.retain(|c| readable.contains(&c.case_id));
    for case in &mut push.cases {
        case.matter = super::case_masking::mask_free_text(&case.matter).into_owned();
    }
    Ok(push)
}

async fn progress_of_all(state: &AppState, quarter: &str) -> Result<PushProgress, ApiError> {
    let not_found = || ApiError::not_found(format!("{quarter} 没有部署季度攻坚"));
    let Some((first, next, _)) = zhzj_deadlines::periods::quarter_bounds(quarter) else {
        return Err(not_found());
    };
    zhzj_figures::push_progress(
        state.store(),
        quarter,
        china_midnight(first),
        china_midnight(next),
        state.now(),
    )
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(not_found)
}

/// `GET /api/v1/pushes/{quarter}`: progress per area and case (the final result once the
/// quarter is over).
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(quarter): Path<String>,
) -> Result<Json<PushProgress>, ApiError> {
    Ok(Json(progress(&state, &user, &quarter).await?))
}

/// `GET /api/v1/pushes/{quarter}/export.xlsx`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(quarter): Path<String>,
) -> Result<Response, ApiError> {
    report(&state, &user, &quarter).await?.xlsx(&state).await
}

/// The quarter's push progress as a sealed report.
async fn report(state: &AppState, user: &User, quarter: &str) -> Result<SealedReport, ApiError> {
    let push = progress(state, user, quarter).await?;
    Ok(SealedReport {
        position: push.as_of_position,
        tables: push.tables(),
        created: push.as_of.naive_utc(),
        ascii_name: format!("push-{quarter}"),
        name: push.title.clone(),
        sheet_prefix: push.title,
    })
}

/// `?part=areas|cases`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushPart {
    /// `areas` (default) or `cases`.
    pub part: Option<String>,
}

/// `GET /api/v1/pushes/{quarter}/export.csv?part=…`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(quarter): Path<String>,
    QueryParams(query): QueryParams<PushPart>,
) -> Result<Response, ApiError> {
    let part = query.part.as_deref().unwrap_or("areas");
    let index = match part {
        "areas" => 0,
        "cases" => 1,
        other => {
            return Err(ApiError::BadRequest {
                message: format!("part 只能为 areas 或 cases，收到 `{other}`"),
                field: Some("part".into()),
            });
        }
    };
    report(&state, &user, &quarter)
        .await?
        .csv(&state, index, part)
        .await
}

/// `POST /api/v1/pushes`: launch a quarter's push; city coordinators only.
pub async fn launch(
    context: WriteContext,
    JsonBody(command): JsonBody<LaunchPush>,
) -> Result<WriteOutcome, ApiError> {
    Ok(context
        .run("POST /pushes".to_owned(), command.into(), true)
        .await)
}
