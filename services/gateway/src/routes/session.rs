//! `POST/GET/DELETE /api/v1/session`: log in (bearer token and cookie), who am I, log out; and
//! `POST /api/v1/session/password`: the signed-in user changes their password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::extract::{
    CSRF_HEADER, ClientAddress, CurrentUser, JsonBody, SESSION_COOKIE, csrf_of, session_token,
};
use crate::{ApiError, AppState, LoginOutcome, Session, User};

/// A login.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// An open session.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionReply {
    /// Send as `Authorization: Bearer <token>` (the cookie carries it too).
    pub token: String,
    /// A write authenticated by the cookie (not the bearer token) sends this in `X-CSRF-Token`.
    pub csrf_token: String,
    /// When it stops working (unless unused longer than the idle timeout first).
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Who is signed in. With `must_change_password`, only changing it is allowed.
    pub user: User,
}

/// A change of one's own password.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    /// The password now.
    pub current_password: String,
    /// The new one (by the password rules).
    pub new_password: String,
}

/// The `Set-Cookie` value of a session (empty with age 0 to end it); `Secure` when the gateway
/// is reached over https.
pub(crate) fn session_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// Signs in from `client`: the session, or the refusal to answer (a locked account answers as
/// a wrong password, with `Retry-After`).
pub(crate) async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> Result<Session, ApiError> {
    match state.accounts().login(username, password, client).await? {
        LoginOutcome::SignedIn(session) => {
            tracing::info!(username = %session.user.username, client = ?client, "signed in");
            Ok(session)
        }
        LoginOutcome::Refused => Err(ApiError::Unauthenticated("用户名或密码错误".into())),
        LoginOutcome::Locked(left) => Err(ApiError::LoginLocked {
            retry_after_seconds: u64::try_from(left.num_seconds().max(1)).unwrap_or(1),
        }),
    }
}

/// `POST /api/v1/session`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    JsonBody(login): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = sign_in(&state, &login.username, &login.password, client).await?;
    let max_age = (session.expires_at - state.now()).num_seconds().max(0);
    let set_cookie = session_cookie(&session.token, max_age, state.secure_cookies(&headers));
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, set_cookie)],
        Json(SessionReply {
            csrf_token: csrf_of(&session.token),
            token: session.token,
            expires_at: session.expires_at,
            user: session.user,
        }),
    )
        .into_response())
}

/// `GET /api/v1/session`: the signed-in user (and the session's CSRF token in `X-CSRF-Token`).
pub async fn current(CurrentUser(user): CurrentUser, headers: HeaderMap) -> Response {
    let mut response = Json(user).into_response();
    if let Some(value) =
        session_token(&headers).and_then(|token| HeaderValue::from_str(&csrf_of(&token)).ok())
    {
        response.headers_mut().insert(CSRF_HEADER, value);
    }
    response
}

/// `POST /api/v1/session/password`: changes the signed-in user's password; their other
/// sessions end, this one goes on.
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordChangeBody>,
) -> Result<StatusCode, ApiError> {
    let token = session_token(&headers).unwrap_or_default();
    state
        .accounts()
        .change_password(
            &token,
            &user.username,
            &body.current_password,
            &body.new_password,
        )
        .await?;
    tracing::info!(username = %user.username, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/session`.
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(_): CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        state.accounts().logout(&token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session_cookie("", 0, state.secure_cookies(&headers)),
        )],
    )
        .into_response())
}
