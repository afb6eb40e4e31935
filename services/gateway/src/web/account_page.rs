//! 修改密码 and 用户管理: a user changes their own password (first, reset and expired passwords
//! must be changed before anything else); the administrator lists accounts, creates one,
//! changes its role, unit or leader, resets its password, unlocks, disables or enables it and
//! ends its sessions — the same `Accounts` operations the API and the command line use.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::auth::WebSession;
use super::view::{Choice, Layout, choice, html_with, non_empty, role_label, see_other};
use crate::extract::session_token;
use crate::{ApiError, AppState, NewUser};

/// The address of the password page.
pub const PASSWORD_PAGE: &str = "/account/password";

/// The rules of passwords, in words.
fn rules_text(state: &AppState) -> String {
    let policy = &state.accounts().settings().password_policy;
    format!(
        "密码规则：至少 {} 个字符，包含小写字母、大写字母、数字、其他符号中的至少 {} 类，且不能包含用户名。",
        policy.min_length, policy.min_classes
    )
}

#[derive(Template)]
#[template(path = "account_password.html")]
struct PasswordPage {
    layout: Layout,
    must_change: bool,
    rules: String,
    error: Option<String>,
}

fn password_form(
    session: &WebSession,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ApiError> {
    html_with(
        status,
        &PasswordPage {
            layout: session.layout("修改密码", "account"),
            must_change: session.user.must_change_password,
            rules: rules_text(&session.state),
            error,
        },
    )
}

/// `GET /account/password`.
pub async fn password_page(session: WebSession) -> Response {
    let result = password_form(&session, StatusCode::OK, None);
    session.respond(result, "account")
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// `POST /account/password`.
pub async fn change_password(
    session: WebSession,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    let result = async {
        session.check_csrf(&form.csrf)?;
        if form.new_password != form.confirm_password {
            return password_form(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("两次输入的新密码不一致".into()),
            );
        }
        let token = session_token(&headers).unwrap_or_default();
        match session
            .state
            .accounts()
            .change_password(
                &token,
                &session.user.username,
                &form.current_password,
                &form.new_password,
            )
            .await
            .map_err(ApiError::from)
        {
            Ok(()) => {
                tracing::info!(username = %session.user.username, "password changed (web)");
                Ok(see_other("/checklist"))
            }
            Err(refusal @ ApiError::Unprocessable { .. }) => password_form(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(refusal.to_string()),
            ),
            Err(other) => Err(other),
        }
    }
    .await;
    session.respond(result, "account")
}

/// An account as the page lists it.
#[derive(Debug)]
struct AccountLine {
    username: String,
    display_name: String,
    roles: String,
    role: String,
    unit: String,
    unit_id: String,
    leader_id: String,
    status: String,
    locked: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    rules: String,
    error: Option<String>,
    accounts: Vec<AccountLine>,
    roles: Vec<Choice>,
    units: Vec<Choice>,
}

fn require_admin(session: &WebSession) -> Result<(), ApiError> {
    crate::routes::users::require_admin(&session.user)
}

async fn users_page(
    session: &WebSession,
    status: StatusCode,
    error: Option<String>,
    flash: Option<String>,
) -> Result<Response, ApiError> {
    require_admin(session)?;
    let state = &session.state;
    let units: Vec<(String, String)> =
        sqlx::query_as("SELECT unit_id, name FROM org_units ORDER BY added_at, unit_id")
            .fetch_all(state.store().pool())
            .await?;
    let unit_names: std::collections::HashMap<&str, &str> = units
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let accounts = state
        .accounts()
        .list()
        .await?
        .into_iter()
        .map(|account| {
            let unit_id = account.user.unit_id.clone().unwrap_or_default();
            let status = account.state_label();
            AccountLine {
                username: account.user.username.clone(),
                display_name: account.user.display_name.clone(),
                roles: role_label(&account.user),
                role: account.user.roles.first().cloned().unwrap_or_default(),
                unit: unit_names
                    .get(unit_id.as_str())
                    .map_or_else(|| unit_id.clone(), |name| (*name).to_owned()),
                unit_id,
                leader_id: account.user.leader_id.clone().unwrap_or_default(),
                status,
                locked: account.locked_until.is_some(),
                disabled: account.disabled_at.is_some(),
            }
        })
        .collect();
    let roles = zhzj_proto::accounts::Role::ALL
        .into_iter()
        .map(|role| choice(role.as_str(), role.label()))
        .collect();
    let mut layout = session.layout("用户管理", "users");
    layout.flash = flash;
    html_with(
        status,
        &UsersPage {
            layout,
            rules: rules_text(state),
            error,
            accounts,
            roles,
            units: units
                .iter()
                .map(|(id, name)| choice(id, &format!("{name}（{id}）")))
                .collect(),
        },
    )
}

/// `GET /users`.
pub async fn users(session: WebSession) -> Response {
    let result = users_page(&session, StatusCode::OK, None, None).await;
    session.respond(result, "users")
}

/// The new-account form.
#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    csrf: String,
    username: String,
    display_name: String,
    role: String,
    unit_id: String,
    leader_id: String,
    password: String,
}

/// A refusal the administrator can correct is shown on the page; anything else is an error page.
async fn answer(
    session: &WebSession,
    outcome: Result<String, ApiError>,
) -> Result<Response, ApiError> {
    match outcome {
        Ok(flash) => users_page(session, StatusCode::OK, None, Some(flash)).await,
        Err(
            refusal @ (ApiError::Unprocessable { .. }
            | ApiError::Conflict { .. }
            | ApiError::NotFound(_)),
        ) => {
            users_page(
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(refusal.to_string()),
                None,
            )
            .await
        }
        Err(other) => Err(other),
    }
}

/// `POST /users`.
pub async fn create_user(
    session: WebSession,
    axum::Form(form): axum::Form<NewUserForm>,
) -> Response {
    let result = async {
        session.check_csrf(&form.csrf)?;
        require_admin(&session)?;
        let accounts = session.state.accounts();
        let admin = session.user.actor();
        let (unit_id, leader_id) = (non_empty(&form.unit_id), non_empty(&form.leader_id));
        let outcome = async {
            accounts
                .check_directory(unit_id.as_deref(), leader_id.as_deref())
                .await?;
            accounts
                .add_user(&admin, &NewUser {
                    username: form.username.trim().to_owned(),
                    password: form.password.clone(),
                    display_name: form.display_name.trim().to_owned(),
                    roles: vec![form.role.clone()],
                    unit_id,
                    leader_id,
                    must_change_password: true,
                })
                .await?;
            tracing::info!(by = %session.user.username, username = %form.username, "account created (web)");
            Ok::<_, ApiError>(format!("已创建用户 {}，首次登录须修改密码", form.username.trim()))
        }
        .await;
        answer(&session, outcome).await
    }
    .await;
    session.respond(result, "users")
}

/// The form of an action on one account.
#[derive(Debug, Deserialize)]
pub struct UserActionForm {
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    leader_id: String,
    #[serde(default)]
    password: String,
}

/// `POST /users/{username}/{action}`: assignment, password, unlock, disable, enable, sessions.
pub async fn user_action(
    session: WebSession,
    State(_): State<AppState>,
    Path((username, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<UserActionForm>,
) -> Response {
    let result = async {
        session.check_csrf(&form.csrf)?;
        require_admin(&session)?;
        let accounts = session.state.accounts();
        let admin = session.user.actor();
        let outcome = async {
            let message = match action.as_str() {
                "assignment" => {
                    accounts
                        .set_assignment(
                            &admin,
                            &username,
                            std::slice::from_ref(&form.role),
                            non_empty(&form.unit_id).as_deref(),
                            non_empty(&form.leader_id).as_deref(),
                        )
                        .await?;
                    format!("已修改 {username} 的角色与单位")
                }
                "password" => {
                    accounts.reset_password(&admin, &username, &form.password).await?;
                    format!("已重置 {username} 的密码，下次登录须修改")
                }
                "unlock" => {
                    accounts.unlock(&admin, &username).await?;
                    format!("已解除 {username} 的锁定")
                }
                "disable" if username == session.user.username => {
                    return Err(ApiError::Unprocessable {
                        message: "不能停用自己的账号".into(),
                        field: None,
                    });
                }
                "disable" => {
                    accounts.set_disabled(&admin, &username, true).await?;
                    format!("已停用 {username}")
                }
                "enable" => {
                    accounts.set_disabled(&admin, &username, false).await?;
                    format!("已启用 {username}")
                }
                "sessions" => {
                    let ended = accounts.end_sessions(&admin, &username).await?;
                    format!("已结束 {username} 的 {ended} 个登录会话")
                }
                _ => return Err(ApiError::not_found("没有这个操作")),
            };
            tracing::info!(by = %session.user.username, %username, %action, "account changed (web)");
            Ok(message)
        }
        .await;
        answer(&session, outcome).await
    }
    .await;
    session.respond(result, "users")
}
