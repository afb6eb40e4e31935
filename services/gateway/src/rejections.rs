//! What axum answers by itself before a handler runs — a path segment that is not UTF-8, a query
//! or form it cannot read, a body of the wrong type, a method the address does not take — is
//! English plain text or an empty body. This turns those answers into the gateway's own: a JSON
//! error in Chinese under `/api/v1` (here), a Chinese page elsewhere (`web`, with the same
//! reading of what went wrong).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The most of a rejection's body that is read: axum's are one line.
const MAX_REJECTION_BYTES: usize = 16 * 1024;

/// Whether `response` is an error whose body is not of the type `ours` (a media type prefix):
/// one the framework wrote rather than the gateway.
pub(crate) fn is_foreign_error(response: &Response, ours: &str) -> bool {
    response.status().as_u16() >= 400
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(ours))
}

/// Strips `prefix` (an English lead of axum's) from `detail`.
fn after<'a>(detail: &'a str, prefix: &str) -> Option<&'a str> {
    detail.strip_prefix(prefix).map(str::trim)
}

/// The error an answer stands for: the gateway's own JSON error read back, or one of axum's
/// rejections named in Chinese (its technical detail kept after the Chinese lead, without
/// axum's English lead).
pub(crate) async fn error_of(response: Response, method: &Method) -> ApiError {
    let status = response.status();
    let bytes = to_bytes(response.into_body(), MAX_REJECTION_BYTES)
        .await
        .unwrap_or_default();
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(message) = body["error"]["message"].as_str()
    {
        return ApiError::with_status(status, message.to_owned());
    }
    let detail = String::from_utf8_lossy(&bytes).trim().to_owned();
    match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(method.to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
            "请求内容的类型不对：表单应以 application/x-www-form-urlencoded 提交，接口以 application/json 提交"
                .into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge("请求内容过大".into()),
        _ => {
            let message = if let Some(rest) = after(&detail, "Invalid URL:") {
                format!("路径参数有误: {rest}")
            } else if let Some(rest) = after(&detail, "Failed to deserialize query string:") {
                format!("查询参数有误: {rest}")
            } else if let Some(rest) = after(&detail, "Failed to deserialize form body:")
                .or_else(|| after(&detail, "Failed to deserialize form:"))
            {
                format!("表单内容有误: {rest}")
            } else if detail.is_empty() {
                "请求有误".to_owned()
            } else {
                format!("请求有误: {detail}")
            };
            ApiError::with_status(status, message)
        }
    }
}

/// Middleware of `/api/v1`: every error answer is the gateway's JSON error.
pub(crate) async fn json_errors(request: Request<Body>, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if !is_foreign_error(&response, "application/json") {
        return response;
    }
    let kept = response.headers().clone();
    let mut answer = error_of(response, &method).await.into_response();
    carry_headers(&kept, &mut answer);
    answer
}

/// Copies the headers of the answer an error was read from (`Allow`, `Retry-After`, the
/// security headers …) onto the answer that replaces it, but for its body's type and length.
pub(crate) fn carry_headers(from: &HeaderMap, to: &mut Response) {
    for (name, value) in from {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            to.headers_mut().insert(name.clone(), value.clone());
        }
    }
}
