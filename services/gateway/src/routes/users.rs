//! `/api/v1/users`: user administration (用户管理) for administrators: list accounts, create
//! one, change its roles, unit or leader, reset its password, unlock it, disable or enable it,
//! end its sessions. Roles, units and leaders are checked against the directory.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use zhzj_proto::accounts::Role;

use crate::extract::{CurrentUser, JsonBody};
use crate::{AccountSummary, ApiError, AppState, NewUser, User};

/// A new account. Its password is a first one: it must be changed at the first login.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Login name (letters, digits, `-`, `_`, `.`).
    pub username: String,
    /// First password (by the password rules).
    pub password: String,
    /// Name shown in the interface.
    pub display_name: String,
    /// Roles: admin, auditor, coordinator, reviewer, leader, viewer.
    pub roles: Vec<String>,
    /// The org unit the user works in.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader (from the directory) the user is, for the `leader` role.
    #[serde(default)]
    pub leader_id: Option<String>,
}

/// New roles, unit and leader of an account.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    /// Roles: admin, auditor, coordinator, reviewer, leader, viewer.
    pub roles: Vec<String>,
    /// The org unit the user works in.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader the user is, for the `leader` role.
    #[serde(default)]
    pub leader_id: Option<String>,
}

/// A password reset by an administrator; it must be changed at the next login.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    /// The new password (by the password rules).
    pub password: String,
}

/// What an administrative action did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserActionReply {
    /// The account.
    pub username: String,
    /// What was done, for a person.
    pub message: String,
}

/// Refuses anyone but an administrator (the API and the 用户管理 page alike).
pub(crate) fn require_admin(user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("只有系统管理员可以管理用户".into()))
    }
}

/// An administrator's action on the account `{username}`: extracting it refuses (403) anyone who
/// does not administer accounts, so no account route can leave the check out.
pub struct AccountAction {
    /// The administrator.
    admin: User,
    /// The account acted on.
    username: String,
}

impl FromRequestParts<AppState> for AccountAction {
    /// The gateway's error, or axum's path rejection (which `rejections` words as the API does).
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let CurrentUser(admin) = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        require_admin(&admin).map_err(IntoResponse::into_response)?;
        let Path(username) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self { admin, username })
    }
}

fn done(username: String, message: impl Into<String>) -> Json<UserActionReply> {
    Json(UserActionReply {
        username,
        message: message.into(),
    })
}

/// `GET /api/v1/users`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<AccountSummary>>, ApiError> {
    require_admin(&user)?;
    Ok(Json(state.accounts().list().await?))
}

/// `POST /api/v1/users`.
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<UserActionReply>), ApiError> {
    require_admin(&admin)?;
    let accounts = state.accounts();
    accounts
        .check_directory(body.unit_id.as_deref(), body.leader_id.as_deref())
        .await?;
    accounts
        .add_user(
            &admin.actor(),
            &NewUser {
                username: body.username.clone(),
                password: body.password,
                display_name: body.display_name,
                roles: body.roles,
                unit_id: body.unit_id,
                leader_id: body.leader_id,
                must_change_password: true,
            },
        )
        .await?;
    tracing::info!(by = %admin.username, username = %body.username, "account created");
    Ok((
        StatusCode::CREATED,
        done(body.username, "已创建用户，首次登录须修改密码"),
    ))
}

/// `POST /api/v1/users/{username}/assignment`.
pub async fn assign(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
    JsonBody(body): JsonBody<AssignmentBody>,
) -> Result<Json<UserActionReply>, ApiError> {
    state
        .accounts()
        .set_assignment(
            &admin.actor(),
            &username,
            &body.roles,
            body.unit_id.as_deref(),
            body.leader_id.as_deref(),
        )
        .await?;
    tracing::info!(by = %admin.username, %username, roles = ?body.roles, unit = ?body.unit_id, "account roles changed");
    Ok(done(username, "已修改角色与单位"))
}

/// `POST /api/v1/users/{username}/password`.
pub async fn reset_password(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
    JsonBody(body): JsonBody<ResetPasswordBody>,
) -> Result<Json<UserActionReply>, ApiError> {
    state
        .accounts()
        .reset_password(&admin.actor(), &username, &body.password)
        .await?;
    tracing::info!(by = %admin.username, %username, "password reset");
    Ok(done(username, "已重置密码，下次登录须修改"))
}

/// `POST /api/v1/users/{username}/unlock`.
pub async fn unlock(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
) -> Result<Json<UserActionReply>, ApiError> {
    let had = state.accounts().unlock(&admin.actor(), &username).await?;
    tracing::info!(by = %admin.username, %username, had, "account unlocked");
    Ok(done(
        username,
        if had {
            "已解除锁定"
        } else {
            "该用户未被锁定"
        },
    ))
}

/// `POST /api/v1/users/{username}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
) -> Result<Json<UserActionReply>, ApiError> {
    if username == admin.username {
        return Err(ApiError::Unprocessable {
            message: "不能停用自己的账号".into(),
            field: None,
        });
    }
    state
        .accounts()
        .set_disabled(&admin.actor(), &username, true)
        .await?;
    tracing::info!(by = %admin.username, %username, "account disabled");
    Ok(done(username, "已停用，其登录会话已结束"))
}

/// `POST /api/v1/users/{username}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
) -> Result<Json<UserActionReply>, ApiError> {
    state
        .accounts()
        .set_disabled(&admin.actor(), &username, false)
        .await?;
    tracing::info!(by = %admin.username, %username, "account enabled");
    Ok(done(username, "已启用"))
}

/// `DELETE /api/v1/users/{username}/sessions`.
pub async fn end_sessions(
    State(state): State<AppState>,
    AccountAction { admin, username }: AccountAction,
) -> Result<Json<UserActionReply>, ApiError> {
    let ended = state
        .accounts()
        .end_sessions(&admin.actor(), &username)
        .await?;
    tracing::info!(by = %admin.username, %username, ended, "sessions ended");
    Ok(done(username, format!("已结束 {ended} 个登录会话")))
}
