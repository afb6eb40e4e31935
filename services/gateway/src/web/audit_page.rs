//! 审计记录: the auditor's page of the audit trail — filters by kind, account and days, a page of
//! records newest first, and the export of what the filter matches (CSV, XLSX).

use askama::Template;
use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;

use super::auth::WebSession;
use super::view::{Choice, Layout, choice, html, non_empty};
use crate::ApiError;
use crate::audit::{self, AuditFilter};

/// One record as the page shows it.
struct AuditRow {
    at: String,
    category: String,
    username: String,
    actor: String,
    client_address: String,
    detail: String,
    position: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    categories: Vec<Choice>,
    category: String,
    username: String,
    from: String,
    to: String,
    rows: Vec<AuditRow>,
    total: i64,
    page: u32,
    pages: i64,
    query: String,
}

/// The filter form, as the browser sends it (empty fields for "any").
#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<u32>,
}

fn day(field: &'static str, text: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| ApiError::BadRequest {
        message: format!("“{text}”不是有效的日期（YYYY-MM-DD）"),
        field: Some(field.into()),
    })
}

/// `GET /audit`.
pub async fn show(session: WebSession, Query(form): Query<AuditForm>) -> Response {
    let result = async {
        audit::require_auditor(&session.user)?;
        let filter = AuditFilter {
            category: non_empty(&form.category),
            username: non_empty(&form.username),
            from: day("from", &form.from)?,
            to: day("to", &form.to)?,
            page: form.page,
            per_page: Some(100),
        };
        let found = audit::page(session.state.store(), &filter).await?;
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("category", form.category.trim()),
                ("username", form.username.trim()),
                ("from", form.from.trim()),
                ("to", form.to.trim()),
            ])
            .finish();
        let per_page = i64::from(found.per_page);
        html(&AuditPage {
            layout: session.layout("审计记录", "audit"),
            categories: audit::CATEGORIES
                .iter()
                .map(|(name, label)| choice(name, label))
                .collect(),
            category: form.category.trim().to_owned(),
            username: form.username.trim().to_owned(),
            from: form.from.trim().to_owned(),
            to: form.to.trim().to_owned(),
            rows: found
                .records
                .into_iter()
                .map(|r| AuditRow {
                    at: audit::shown_time(&r.at),
                    category: audit::category_label(&r.category).to_owned(),
                    username: r.username,
                    actor: r.actor,
                    client_address: r.client_address.unwrap_or_default(),
                    detail: r.detail,
                    position: r.position.map(|p| p.to_string()).unwrap_or_default(),
                })
                .collect(),
            total: found.total,
            page: found.page,
            pages: ((found.total + per_page - 1) / per_page).max(1),
            query,
        })
    }
    .await;
    session.respond(result, "audit")
}
