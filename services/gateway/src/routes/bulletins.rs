//! `/api/v1/bulletins`: the monthly bulletin (月通报) — a draft drawn from the log as it stands,
//! or, once published, frozen at the log position the publication recorded, so that it exports
//! the same bytes whenever it is asked for. Bulletins hold only counted figures per area (no
//! case, no person), and are read by every signed-in user, as a published bulletin is.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zhzj_figures::Bulletin;
use zhzj_proto::commands::PublishBulletin;

use super::cases::WriteContext;
use super::download::SealedReport;
use crate::commands::WriteOutcome;
use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::{ApiError, AppState};

/// A published bulletin.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PublishedBulletin {
    /// `2026-03`.
    pub month: String,
    /// The log position it is frozen at.
    pub as_of_position: i64,
    /// When it was published.
    pub published_at: String,
}

/// `GET /api/v1/bulletins`: the published bulletins, latest month first.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
) -> Result<Json<Vec<PublishedBulletin>>, ApiError> {
    let rows = sqlx::query(
        "SELECT month, as_of_position, published_at FROM bulletins ORDER BY month DESC",
    )
    .fetch_all(state.store().pool())
    .await?;
    let list = rows
        .iter()
        .map(|row| {
            Ok(PublishedBulletin {
                month: row.try_get("month")?,
                as_of_position: row.try_get("as_of_position")?,
                published_at: row.try_get("published_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(list))
}

/// The bulletin of `month`: frozen if published, else a draft at the archive's last position.
async fn draw(state: &AppState, month: &str) -> Result<Bulletin, ApiError> {
    let in_range = zhzj_figures::month_bounds(month).is_some_and(|(first, _)| {
        zhzj_proto::dates::check(first, zhzj_proto::dates::DateKind::Ahead, state.today()).is_ok()
    });
    if !in_range {
        return Err(ApiError::not_found(format!(
            "月份 `{month}` 不存在（应写作 YYYY-MM，{} 以后）",
            zhzj_proto::dates::EARLIEST.format("%Y-%m")
        )));
    }
    let published =
        sqlx::query("SELECT as_of_position, published_at FROM bulletins WHERE month = $1")
            .bind(month)
            .fetch_optional(state.store().pool())
            .await?;
    let (position, published_at) = match published {
        Some(row) => {
            let at: String = row.try_get("published_at")?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map_err(ApiError::internal)?
                .with_timezone(&Utc);
            (row.try_get::<i64, _>("as_of_position")?, Some(at))
        }
        None => {
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM event_archive")
                .fetch_one(state.store().pool())
                .await?;
            (last.unwrap_or(0), None)
        }
    };
    zhzj_figures::bulletin(
        state.store(),
        month,
        position,
        published_at,
        &state.config().limits,
    )
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::not_found(format!("月份 `{month}` 不存在")))
}

/// `GET /api/v1/bulletins/{month}`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
    Path(month): Path<String>,
) -> Result<Json<Bulletin>, ApiError> {
    Ok(Json(draw(&state, &month).await?))
}

/// `GET /api/v1/bulletins/{month}/export.xlsx`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
    Path(month): Path<String>,
) -> Result<Response, ApiError> {
    report(&state, &month).await?.xlsx(&state).await
}

/// The month's bulletin as a sealed report.
async fn report(state: &AppState, month: &str) -> Result<SealedReport, ApiError> {
    let bulletin = draw(state, month).await?;
    Ok(SealedReport {
        position: bulletin.as_of_position,
        tables: bulletin.tables(),
        created: bulletin.created(),
        ascii_name: format!("bulletin-{month}"),
        name: format!("{month}月通报"),
        sheet_prefix: format!("{month}月通报"),
    })
}

/// `?part=districts|towns|departments`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulletinPart {
    /// `districts` (default), `towns` or `departments`.
    pub part: Option<String>,
}

/// `GET /api/v1/bulletins/{month}/export.csv?part=…`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
    Path(month): Path<String>,
    QueryParams(query): QueryParams<BulletinPart>,
) -> Result<Response, ApiError> {
    let part = query.part.as_deref().unwrap_or("districts");
    let index = match part {
        "districts" => 0,
        "towns" => 1,
        "departments" => 2,
        other => {
            return Err(ApiError::BadRequest {
                message: format!("part 只能为 districts、towns 或 departments，收到 `{other}`"),
                field: Some("part".into()),
            });
        }
    };
    report(&state, &month).await?.csv(&state, index, part).await
}

/// `POST /api/v1/bulletins`: publish (freeze) a month's bulletin; city coordinators only.
pub async fn publish(
    context: WriteContext,
    JsonBody(command): JsonBody<PublishBulletin>,
) -> Result<WriteOutcome, ApiError> {
    Ok(context
        .run("POST /bulletins".to_owned(), command.into(), true)
        .await)
}
