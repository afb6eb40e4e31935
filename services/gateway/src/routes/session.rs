//! `POST/GET/DELETE /api/v1/session`: log in (bearer token and cookie), who am I, log out.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::extract::{CurrentUser, JsonBody, SESSION_COOKIE, session_token};
use crate::{ApiError, AppState, User};

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
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Who is signed in.
    pub user: User,
}

/// The `Set-Cookie` value of a session (empty with age 0 to end it).
pub(crate) fn session_cookie(value: &str, max_age: i64) -> String {
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// `POST /api/v1/session`.
pub async fn login(
    State(state): State<AppState>,
    JsonBody(login): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = state
        .accounts()
        .login(&login.username, &login.password)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::Unauthenticated("用户名或密码错误".into()))?;
    let max_age = (session.expires_at - state.now()).num_seconds().max(0);
    let set_cookie = session_cookie(&session.token, max_age);
    tracing::info!(username = %session.user.username, "signed in");
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, set_cookie)],
        Json(SessionReply {
            token: session.token,
            expires_at: session.expires_at,
            user: session.user,
        }),
    )
        .into_response())
}

/// `GET /api/v1/session`: the signed-in user.
pub async fn current(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}

/// `DELETE /api/v1/session`.
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(_): CurrentUser,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        state
            .accounts()
            .logout(&token)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie("", 0))],
    )
        .into_response())
}
