//! The routes of the gateway, and the middleware every request passes: a tracing span that
//! carries the correlation id (and, once known, the command id), and the body size limit.

pub(crate) mod aggregate_writes;
pub(crate) mod assessments;
pub(crate) mod audit;
pub(crate) mod bulletins;
pub(crate) mod case_masking;
pub(crate) mod case_view;
pub(crate) mod cases;
pub(crate) mod checklist;
mod download;
pub(crate) mod duplicates;
pub(crate) mod leaders;
pub(crate) mod ledger;
pub(crate) mod meetings;
pub(crate) mod notices;
mod ops;
pub(crate) mod org;
pub(crate) mod pushes;
mod session;
pub(crate) mod supervision;
pub(crate) mod users;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tracing::Instrument;

use crate::ApiError;
use crate::AppState;
use crate::extract::{CORRELATION_HEADER, CorrelationId};

pub use bulletins::PublishedBulletin;
pub use case_view::{CaseEventView, CaseView};
pub use checklist::ChecklistPage;
pub use duplicates::{DuplicateCheck, DuplicateRule};
pub use leaders::{IdleCasesPage, LeadersView, leader_view};
pub(crate) use ledger::MAX_LEDGER_BYTES;
pub use ledger::{ImportRefused, ImportReport};
pub use meetings::{FeedbackBody, InstructionBody, MeetingListItem};
pub use org::{DirectoryImportRefused, DirectoryImportReport, OrgView};
pub use pushes::PushListItem;
pub use session::{LoginRequest, PasswordChangeBody, SessionReply};
pub(crate) use session::{session_cookie, sign_in};
pub use users::{AssignmentBody, NewUserBody, ResetPasswordBody, UserActionReply};

/// Every route.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit;
    let api = Router::new()
        .route(
            "/session",
            post(session::login)
                .delete(session::logout)
                .get(session::current),
        )
        .route("/session/password", post(session::change_password))
        .route("/users", get(users::list).post(users::create))
        .route("/audit", get(audit::list))
        .route("/audit/export.csv", get(audit::export_csv))
        .route("/audit/export.xlsx", get(audit::export_xlsx))
        .route("/users/{username}/assignment", post(users::assign))
        .route("/users/{username}/password", post(users::reset_password))
        .route("/users/{username}/unlock", post(users::unlock))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route(
            "/users/{username}/sessions",
            axum::routing::delete(users::end_sessions),
        )
        .route("/cases", post(cases::register))
        .route("/cases/duplicates", get(duplicates::list))
        .route("/cases/{id}", get(case_view::show))
        .route("/cases/{id}/events", get(case_view::events))
        .route("/leaders", get(leaders::list))
        .route(
            "/leaders/{leader_id}/idle_cases",
            get(leaders::idle_cases_of),
        )
        .route("/checklist", get(checklist::list))
        .route("/checklist/export.xlsx", get(checklist::export_xlsx))
        .route("/checklist/export.csv", get(checklist::export_csv))
        .route("/meetings", get(meetings::list).post(meetings::hold))
        .route("/meetings/{id}", get(meetings::show))
        .route("/meetings/{id}/agenda.xlsx", get(meetings::export_xlsx))
        .route("/meetings/{id}/agenda.csv", get(meetings::export_csv))
        .route("/meetings/{id}/instructions", post(meetings::issue))
        .route(
            "/meetings/{id}/instructions/{number}/feedback",
            post(meetings::feedback),
        )
        .route("/bulletins", get(bulletins::list).post(bulletins::publish))
        .route("/bulletins/{month}", get(bulletins::show))
        .route(
            "/bulletins/{month}/export.xlsx",
            get(bulletins::export_xlsx),
        )
        .route("/bulletins/{month}/export.csv", get(bulletins::export_csv))
        .route("/pushes", get(pushes::list).post(pushes::launch))
        .route("/pushes/{quarter}", get(pushes::show))
        .route("/pushes/{quarter}/export.xlsx", get(pushes::export_xlsx))
        .route("/pushes/{quarter}/export.csv", get(pushes::export_csv))
        .route(
            "/supervision-orders",
            get(supervision::list).post(supervision::issue),
        )
        .route("/supervision-orders/{id}", get(supervision::show))
        .route("/warnings", get(notices::list_warnings))
        .route("/inbox", get(notices::show_inbox))
        .route("/inbox/read-all", post(notices::read_all))
        .route("/inbox/{id}/read", post(notices::read_message))
        .route("/notifications/deliveries", get(notices::deliveries))
        .route("/ledger/template.xlsx", get(ledger::template_xlsx))
        .route("/ledger/template.csv", get(ledger::template_csv))
        .route(
            "/ledger/import.xlsx",
            post(ledger::import_xlsx).layer(DefaultBodyLimit::max(ledger::MAX_LEDGER_BYTES)),
        )
        .route(
            "/ledger/import.csv",
            post(ledger::import_csv).layer(DefaultBodyLimit::max(ledger::MAX_LEDGER_BYTES)),
        )
        .route("/ledger/export.xlsx", get(ledger::export_xlsx))
        .route("/ledger/export.csv", get(ledger::export_csv))
        .route("/assessments", get(assessments::show))
        .route("/assessments/counted", get(assessments::counted))
        .route("/assessments/export.xlsx", get(assessments::export_xlsx))
        .route("/assessments/export.csv", get(assessments::export_csv))
        .route("/org", get(org::show))
        .route("/org/file", get(org::file))
        .route("/org/import", post(org::import))
        .route("/org/units", post(org::add_unit))
        .route("/org/leaders", post(org::add_leader))
        .route("/openapi.json", get(crate::openapi::document))
        .fallback(api_not_found);
    let api = aggregate_writes::routes(api)
        .route_layer(middleware::from_fn(
            crate::query_contract::refuse_undocumented_query,
        ))
        .layer(middleware::from_fn(crate::rejections::json_errors));
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::web::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::web::error_pages,
        ))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn(trace_request))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`--metrics-addr`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}

/// Every answer but the stylesheet says `Cache-Control: no-store` unless it says otherwise:
/// answers are per user, and many carry personal data that no browser or proxy cache may keep.
async fn no_store(request: Request, next: Next) -> Response {
    let cacheable = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    if !cacheable && !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// An address under `/api/v1` that nothing answers.
async fn api_not_found() -> ApiError {
    ApiError::not_found("没有这个接口")
}

/// Any other address nothing answers: an interface under `/api/`, else a page (which `web`
/// shows as one).
async fn not_found(uri: axum::http::Uri) -> ApiError {
    if uri.path().starts_with("/api/") {
        api_not_found().await
    } else {
        ApiError::not_found("没有这个页面")
    }
}

/// Opens the request's span (method, route, correlation id, and a slot for the command id),
/// logs the outcome, and echoes the correlation id.
async fn trace_request(mut request: Request, next: Next) -> Response {
    let correlation = CorrelationId::of(request.headers());
    request.extensions_mut().insert(correlation);
    // The route's pattern, never the raw path: labels stay bounded whatever paths are asked.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        route = %route,
        correlation_id = %correlation.0,
        command_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    metrics::counter!("zhzj_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
    if let Ok(value) = HeaderValue::from_str(&correlation.0.to_string()) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}
