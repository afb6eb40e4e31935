//! The web pages, in Chinese: HTML rendered by the gateway from compile-time-checked templates
//! (askama) over the same handlers the JSON API uses, so a page shows exactly what the API
//! answers and every write goes through the same command path. Sign-in is the session cookie;
//! every form carries a CSRF token; charts are SVG drawn here; the one stylesheet is served from
//! the binary, and no script or style is loaded from anywhere else.

mod account_page;
mod assessment_page;
mod audit_page;
mod auth;
mod case_page;
mod charts;
mod checklist_page;
mod error_pages;
mod forms;
mod import_page;
mod meeting_pages;
mod org_page;
mod reports;
mod supervision_pages;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;

pub use error_pages::error_pages;

/// The stylesheet: screen (office monitor and phone) and print.
const STYLESHEET: &str = include_str!("../../assets/zhzj.css");

/// The routes of the pages (beside `/api/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/checklist") }))
        .route("/assets/zhzj.css", get(stylesheet))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/checklist", get(checklist_page::show))
        .route("/cases/{id}", get(case_page::show))
        .route("/cases/{id}/{action}", post(case_page::act))
        .route("/leaders", get(reports::leaders))
        .route(
            "/meetings",
            get(meeting_pages::meetings).post(meeting_pages::hold_meeting),
        )
        .route("/meetings/{id}", get(meeting_pages::meeting))
        .route(
            "/meetings/{id}/instructions",
            post(meeting_pages::issue_instruction),
        )
        .route(
            "/meetings/{id}/instructions/{number}/feedback",
            post(meeting_pages::instruction_feedback),
        )
        .route(
            "/bulletins",
            get(reports::bulletins).post(reports::publish_bulletin),
        )
        .route("/bulletins/{month}", get(reports::bulletin))
        .route(
            "/supervision",
            get(supervision_pages::list).post(supervision_pages::issue),
        )
        .route("/supervision/{id}", get(supervision_pages::show))
        .route("/supervision/{id}/{action}", post(supervision_pages::act))
        .route("/warnings", get(supervision_pages::warnings))
        .route("/inbox", get(supervision_pages::inbox))
        .route("/inbox/read-all", post(supervision_pages::read))
        .route("/inbox/{id}/read", post(supervision_pages::read))
        .route("/pushes", get(reports::pushes))
        .route("/pushes/{quarter}", get(reports::push))
        .route("/assessments", get(assessment_page::assessment))
        .route("/org", get(org_page::show))
        .route(
            account_page::PASSWORD_PAGE,
            get(account_page::password_page).post(account_page::change_password),
        )
        .route(
            "/users",
            get(account_page::users).post(account_page::create_user),
        )
        .route(
            "/users/{username}/{action}",
            post(account_page::user_action),
        )
        .route("/audit", get(audit_page::show))
        .route("/org/units", post(org_page::add_unit))
        .route("/org/leaders", post(org_page::add_leader))
        .route(
            "/import",
            get(import_page::show).post(import_page::upload).layer(
                axum::extract::DefaultBodyLimit::max(crate::routes::MAX_LEDGER_BYTES + 64 * 1024),
            ),
        )
        .layer(axum::middleware::map_response(security_headers))
}

/// What every page may load: its own stylesheet and nothing else — no script at all, no frames
/// (the pages need neither), forms posted only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers of the pages to every answer of theirs.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show personal and case data: not kept by the browser or a proxy.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
