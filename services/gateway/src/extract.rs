//! Request extractors: the signed-in user, JSON bodies that name the field at fault, and the
//! `If-Match`, `Idempotency-Key` and correlation headers.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum_extra::extract::CookieJar;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{ApiError, AppState, User};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "zhzj_session";
/// Header carrying the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// Header naming the retry key of a write.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest accepted idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Header carrying the CSRF token of a write authenticated by the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The bearer token of a request.
fn bearer_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// The session cookie of a request.
fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// The bearer token or session cookie of a request.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<String> {
    bearer_token(headers).or_else(|| cookie_token(headers))
}

/// The CSRF token of a session: derived from the session token (which no page script can read:
/// the cookie is `HttpOnly`), so it needs no storage and dies with the session.
pub fn csrf_of(session_token: &str) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"zhzj-csrf\n");
    hasher.update(session_token.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The API paths a user whose password must be changed may still use (as the nested API router
/// sees them, without `/api/v1`).
const PASSWORD_CHANGE_PATHS: &[&str] = &["/session", "/session/password"];

/// The signed-in user; a request without a valid session is answered 401.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, by_cookie) = match bearer_token(&parts.headers) {
            Some(token) => (token, false),
            None => match cookie_token(&parts.headers) {
                Some(token) => (token, true),
                None => return Err(ApiError::Unauthenticated("请先登录".into())),
            },
        };
        // A write carried by the cookie alone could come from any page the browser shows: it
        // must also carry the session's CSRF token, which only our pages and API clients know.
        if by_cookie && !parts.method.is_safe() {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if sent != csrf_of(&token) {
                return Err(ApiError::Forbidden(format!(
                    "以登录 Cookie 提交的写请求须带 {CSRF_HEADER} 请求头（登录时返回的 csrf_token）"
                )));
            }
        }
        match state.accounts().session_user(&token).await {
            Ok(Some(user)) => {
                let path = parts.uri.path();
                if user.must_change_password && !PASSWORD_CHANGE_PATHS.contains(&path) {
                    return Err(ApiError::Forbidden(
                        "请先修改密码（初始密码、重置的密码或已过期的密码）: POST /api/v1/session/password"
                            .into(),
                    ));
                }
                Ok(Self(user))
            }
            Ok(None) => Err(ApiError::Unauthenticated("登录已失效，请重新登录".into())),
            Err(e) => {
                tracing::warn!(error = %e, "could not check a session");
                Err(ApiError::Unavailable(
                    "数据库暂不可用，无法核验登录，请稍后重试".into(),
                ))
            }
        }
    }
}

/// The client address of a request (see `AppState::client_address`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(
            state.client_address(&parts.headers, &parts.extensions),
        ))
    }
}

/// A body that is JSON but not what the route takes: 422 naming the field's path; anything
/// else (not JSON at all) 400.
pub(crate) fn data_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let field = (path != ".").then_some(path);
    match inner.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable {
            message: format!("请求内容不符合要求: {inner}"),
            field,
        },
        _ => ApiError::BadRequest {
            message: format!("请求体不是有效的 JSON: {inner}"),
            field: None,
        },
    }
}

/// Parses JSON, naming the JSON path of the field at fault. Syntax errors are 400; well-formed
/// JSON of the wrong shape (missing field, wrong type, unknown field) is 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(data_error)?;
    deserializer.end().map_err(|e| ApiError::BadRequest {
        message: format!("请求体不是有效的 JSON: {e}"),
        field: None,
    })?;
    Ok(value)
}

/// A JSON body, within the body size limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError::BadRequest {
                message: "请求体须为 JSON (Content-Type: application/json)".into(),
                field: None,
            });
        }
        let limit = state.config().body_limit;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!("请求体超过 {limit} 字节上限"))
            } else {
                ApiError::BadRequest {
                    message: format!("无法读取请求体: {rejection}"),
                    field: None,
                }
            }
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// Query-string parameters; malformed ones are answered 400 in the JSON error shape.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| ApiError::BadRequest {
                message: format!("查询参数有误: {}", e.body_text()),
                field: None,
            })
    }
}

/// The version named by `If-Match`, if any (`*` names none).
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let bare = text.trim_start_matches("W/").trim_matches('"');
        bare.parse::<u64>()
            .map(|v| Self(Some(v)))
            .map_err(|_| ApiError::BadRequest {
                message: format!("If-Match 须为案件版本号 (ETag)，收到 {text:?}"),
                field: Some("If-Match".into()),
            })
    }
}

/// The `Idempotency-Key` of a write, if any.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_HEADER) else {
            return Ok(Self(None));
        };
        match value.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => {
                Ok(Self(Some(key.to_owned())))
            }
            _ => Err(ApiError::BadRequest {
                message: format!("Idempotency-Key 须为 1 至 {MAX_IDEMPOTENCY_KEY} 个可见字符"),
                field: Some("Idempotency-Key".into()),
            }),
        }
    }
}

/// The correlation id of the request (from `X-Correlation-Id`, or new).
#[derive(Debug, Clone, Copy)]
pub struct CorrelationId(pub Uuid);

impl CorrelationId {
    /// The id a request names in its header, or a new one.
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        Self(
            headers
                .get(CORRELATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Uuid::parse_str(v).ok())
                .unwrap_or_else(Uuid::new_v4),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .copied()
            .unwrap_or_else(|| Self::of(&parts.headers)))
    }
}
