//! The gateway's error type and how each kind becomes an HTTP status with a JSON body
//! `{"error": {"code", "message", "field"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use zhzj_proto::{CommandError, ErrorKind};

/// Everything a request can fail with. Messages are for the people using the system (Chinese).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (not JSON, a bad query string).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// No valid session.
    #[error("{0}")]
    Unauthenticated(String),
    /// A login refused because failed logins locked the account or the client address: answered
    /// as a wrong password (401), with `Retry-After`.
    #[error("用户名或密码错误")]
    LoginLocked {
        /// Seconds until the lock ends.
        retry_after_seconds: u64,
    },
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (already exists, key reused, raced).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The aggregate's current version, when known.
        current_version: Option<u64>,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("{message}")]
    PreconditionFailed {
        /// What happened.
        message: String,
        /// The current version.
        current_version: Option<u64>,
    },
    /// The body is larger than the gateway accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but breaks a rule; `field` names the culprit.
    #[error("{message}")]
    Unprocessable {
        /// What is wrong.
        message: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// The user made too many requests of this kind; `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// What was limited.
        message: String,
        /// Seconds until the next request is allowed.
        retry_after_seconds: u64,
    },
    /// The address does not take this method (405; axum's `Allow` header names those it does).
    #[error("该地址不支持 {0} 请求")]
    MethodNotAllowed(String),
    /// The body is of a type the address does not read (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A service behind the gateway did not answer; the request may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// The case's history holds an unreadable commit: permanent until repaired (500).
    #[error("{0}")]
    CorruptHistory(String),
    /// A fault of ours; details are in the log.
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: bad_request, unauthenticated, forbidden, not_found, conflict,
    /// precondition_failed, too_large, invalid, method_not_allowed, unsupported_media_type,
    /// too_many_requests, unavailable, corrupt_history, internal.
    pub code: String,
    /// For a person.
    pub message: String,
    /// The field at fault, as a JSON path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For conflicts and failed preconditions: the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl ApiError {
    /// A fault of ours, logged with its cause; the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal("服务器内部错误，请稍后重试".into())
    }

    /// Not found, with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// An error of `status` saying `message`: an error answer read back (`rejections`). A 429's
    /// `Retry-After` is the answer's own, carried over by the caller.
    pub(crate) fn with_status(status: StatusCode, message: String) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthenticated(message),
            StatusCode::FORBIDDEN => Self::Forbidden(message),
            StatusCode::NOT_FOUND => Self::NotFound(message),
            StatusCode::CONFLICT => Self::Conflict {
                message,
                current_version: None,
            },
            StatusCode::PRECONDITION_FAILED => Self::PreconditionFailed {
                message,
                current_version: None,
            },
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(message),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable {
                message,
                field: None,
            },
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests {
                message,
                retry_after_seconds: 60,
            },
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(message),
            other if other.is_client_error() => Self::BadRequest {
                message,
                field: None,
            },
            _ => Self::Internal(message),
        }
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) | Self::LoginLocked { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) | Self::CorruptHistory(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::Unauthenticated(_) | Self::LoginLocked { .. } => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::TooLarge(_) => "too_large",
            Self::Unprocessable { .. } => "invalid",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unavailable(_) => "unavailable",
            Self::CorruptHistory(_) => "corrupt_history",
            Self::Internal(_) => "internal",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let (field, current_version) = match self {
            Self::BadRequest { field, .. } | Self::Unprocessable { field, .. } => {
                (field.clone(), None)
            }
            Self::Conflict {
                current_version, ..
            }
            | Self::PreconditionFailed {
                current_version, ..
            } => (None, *current_version),
            _ => (None, None),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                field,
                current_version,
            },
        }
    }

    /// The answer to a refused command. `if_match` says whether the client sent a version it
    /// expected, which turns a version conflict into a failed precondition.
    pub fn from_command(error: CommandError, if_match: bool) -> Self {
        let CommandError {
            kind,
            message,
            field,
            current_version,
        } = error;
        match kind {
            ErrorKind::Invalid => Self::Unprocessable { message, field },
            ErrorKind::NotFound => Self::NotFound(message),
            ErrorKind::Conflict if if_match && current_version.is_some() => {
                Self::PreconditionFailed {
                    message,
                    current_version,
                }
            }
            ErrorKind::Conflict => Self::Conflict {
                message,
                current_version,
            },
            ErrorKind::Forbidden => Self::Forbidden(message),
            ErrorKind::TooLarge => Self::TooLarge(message),
            ErrorKind::Unavailable => Self::Unavailable(message),
            ErrorKind::CorruptHistory => Self::CorruptHistory(message),
        }
    }
}

/// What a 503 tells the client: try again in a second (with the same Idempotency-Key).
pub(crate) const RETRY_AFTER_SECONDS: &str = "1";

impl From<crate::AccountError> for ApiError {
    fn from(e: crate::AccountError) -> Self {
        use crate::AccountError;
        match e {
            AccountError::Invalid { field, message } => Self::Unprocessable {
                message,
                field: Some(field.into()),
            },
            AccountError::Exists(_) => Self::Conflict {
                message: e.to_string(),
                current_version: None,
            },
            AccountError::NoSuchUser(_) => Self::NotFound(e.to_string()),
            AccountError::WrongPassword => Self::Unprocessable {
                message: e.to_string(),
                field: Some("current_password".into()),
            },
            AccountError::Busy | AccountError::Unavailable(_) | AccountError::NotReady => {
                Self::Unavailable(e.to_string())
            }
            AccountError::Refused(message) => Self::Forbidden(message),
            AccountError::Database(_) | AccountError::Hash(_) => Self::internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body();
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::PreconditionFailed {
            current_version: Some(version),
            ..
        } = &self
            && let Ok(value) = HeaderValue::from_str(&crate::etag(*version))
        {
            response.headers_mut().insert(header::ETAG, value);
        }
        if let Self::Unavailable(_) = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        if let Self::TooManyRequests {
            retry_after_seconds,
            ..
        }
        | Self::LoginLocked {
            retry_after_seconds,
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        if let Self::Unauthenticated(_) | Self::LoginLocked { .. } = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"zhzj\""),
            );
        }
        response
    }
}
