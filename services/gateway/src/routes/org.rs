//! `GET /api/v1/org`: the organisation directory (units and leaders).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqlx::Row;

use crate::extract::CurrentUser;
use crate::{ApiError, AppState};

/// An org unit.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UnitView {
    /// Id.
    pub unit_id: String,
    /// Parent unit.
    pub parent_id: Option<String>,
    /// Name.
    pub name: String,
    /// `city`, `district`, `town` or `department`.
    pub kind: String,
}

/// A leader who can own cases.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LeaderView {
    /// Id.
    pub leader_id: String,
    /// The unit.
    pub unit_id: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// `city`, `district` or `town`.
    pub level: String,
}

/// The directory.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OrgView {
    /// Units, parents before children.
    pub units: Vec<UnitView>,
    /// Leaders.
    pub leaders: Vec<LeaderView>,
}

/// `GET /api/v1/org`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(_): CurrentUser,
) -> Result<Json<OrgView>, ApiError> {
    let pool = state.store().pool();
    let units = sqlx::query(
        "SELECT unit_id, parent_id, name, kind FROM org_units ORDER BY added_at, unit_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(UnitView {
            unit_id: row.try_get("unit_id")?,
            parent_id: row.try_get("parent_id")?,
            name: row.try_get("name")?,
            kind: row.try_get("kind")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let leaders = sqlx::query(
        "SELECT leader_id, unit_id, name, title, level FROM org_leaders \
         ORDER BY added_at, leader_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(LeaderView {
            leader_id: row.try_get("leader_id")?,
            unit_id: row.try_get("unit_id")?,
            name: row.try_get("name")?,
            title: row.try_get("title")?,
            level: row.try_get("level")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(OrgView { units, leaders }))
}
