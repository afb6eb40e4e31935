//! `/api/v1/org`: the organisation directory (units and leaders) — read by every signed-in user,
//! added to by the administrator one unit or leader at a time, and moved between instances whole
//! as a directory file (`/org/file`, `/org/import`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::Row;
use zhzj_proto::accounts::Role;
use zhzj_proto::commands::{AddLeader, AddUnit};
use zhzj_proto::{Command, CommandReply, ErrorKind};

use super::cases::WriteContext;
use crate::commands::WriteOutcome;
use crate::commands::{send_batch_command, wait_visible};
use crate::directory_file::{CurrentDirectory, DirectoryFile, DirectoryProblem, plan};
use crate::extract::{CorrelationId, CurrentUser, JsonBody};
use crate::{ApiError, AppState, User};

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

/// The directory as the read store has it: units parents first (in the order added), leaders.
pub(crate) async fn read_directory(state: &AppState) -> Result<OrgView, ApiError> {
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
    Ok(OrgView { units, leaders })
}

/// `GET /api/v1/org`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(_): CurrentUser,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(read_directory(&state).await?))
}

/// `GET /api/v1/org/file`: the whole directory as a directory file (what `zhzj org export`
/// writes).
pub async fn file(
    State(state): State<AppState>,
    CurrentUser(_): CurrentUser,
) -> Result<Json<DirectoryFile>, ApiError> {
    Ok(Json(
        CurrentDirectory::from_view(&read_directory(&state).await?).to_file(),
    ))
}

/// What a directory import did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DirectoryImportReport {
    /// Units and leaders added.
    pub added: usize,
    /// Entries already in the directory as the file has them.
    pub already_present: usize,
    /// Whether the read views show every added entry yet.
    pub visible: bool,
}

/// The answer to a directory file with problems.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DirectoryImportRefused {
    /// `{code: "invalid", message}`.
    pub error: serde_json::Value,
    /// Every problem, by entry.
    pub problems: Vec<DirectoryProblem>,
}

fn administrators_only(user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "只有系统管理员可以维护组织架构 (administrators only)".into(),
        ))
    }
}

/// `POST /api/v1/org/import`: a directory file (JSON), checked whole, then what is new added in
/// order; entries already present are skipped, so importing again adds nothing.
pub async fn import(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    JsonBody(file): JsonBody<DirectoryFile>,
) -> Result<Response, ApiError> {
    administrators_only(&user)?;
    let current = CurrentDirectory::from_view(&read_directory(&state).await?);
    let planned = match plan(&current, &file) {
        Ok(planned) => planned,
        Err(problems) => {
            let refused = DirectoryImportRefused {
                error: serde_json::json!({
                    "code": "invalid",
                    "message": format!("组织架构文件有 {} 处问题，未导入任何内容", problems.len()),
                }),
                problems,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(refused)).into_response());
        }
    };
    let added = planned.commands.len();
    let mut position = 0;
    // One at a time: a unit's parent must be in the log before the unit is decided.
    for (command_id, command) in planned.commands {
        match send_batch_command(&state, &user, command_id, correlation, command).await? {
            CommandReply::Ok(accepted) => position = position.max(accepted.version),
            // A retry of an import that stopped half-way finds the entry added.
            CommandReply::Error(e) if e.kind == ErrorKind::Conflict => {}
            CommandReply::Error(e) => return Err(ApiError::from_command(e, false)),
        }
    }
    let visible = wait_visible(&state, position).await;
    Ok(Json(DirectoryImportReport {
        added,
        already_present: planned.already_present,
        visible,
    })
    .into_response())
}

/// `POST /api/v1/org/units`: add one unit (administrators).
pub async fn add_unit(
    context: WriteContext,
    JsonBody(body): JsonBody<AddUnit>,
) -> Result<WriteOutcome, ApiError> {
    administrators_only(&context.user)?;
    Ok(context
        .run("POST /org/units".to_owned(), Command::AddUnit(body), true)
        .await)
}

/// `POST /api/v1/org/leaders`: add one leader (administrators).
pub async fn add_leader(
    context: WriteContext,
    JsonBody(body): JsonBody<AddLeader>,
) -> Result<WriteOutcome, ApiError> {
    administrators_only(&context.user)?;
    Ok(context
        .run(
            "POST /org/leaders".to_owned(),
            Command::AddLeader(body),
            true,
        )
        .await)
}
