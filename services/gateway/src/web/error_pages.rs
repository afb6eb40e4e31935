//! Error answers outside `/api/v1` as pages: whatever answered — one of axum's own rejections (a
//! query, form or path it could not read, a method the address does not take), a handler shared
//! with the API (JSON), the fallback of an unknown address — a browser gets the Chinese error
//! page, in the signed-in frame when the request carries a session, with the status kept.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::frame_of;
use super::view::error_page;
use crate::AppState;
use crate::rejections::{carry_headers, error_of, is_foreign_error};

/// Addresses outside the pages whose answers are for programs, kept as they are.
fn for_programs(path: &str) -> bool {
    path.starts_with("/api/") || path == "/healthz" || path == "/readyz"
}

/// Middleware of the whole site: an error answer of a page address that is not HTML becomes the
/// error page.
pub async fn error_pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if for_programs(request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let uri = request.uri().clone();
    // The session cookie is all the frame needs of the request's headers.
    let cookies: Vec<HeaderValue> = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .cloned()
        .collect();
    let response = next.run(request).await;
    if !is_foreign_error(&response, "text/html") {
        return response;
    }
    let kept = response.headers().clone();
    let error = error_of(response, &method).await;
    let mut page = error_page(frame_of(&state, uri, &cookies).await, &error);
    carry_headers(&kept, &mut page);
    super::security_headers(page).await
}
