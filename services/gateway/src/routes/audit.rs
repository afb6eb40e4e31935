//! `/api/v1/audit`: the audit trail for auditors (审计员) — logins, failed logins and lockouts,
//! account changes, reads of personal data — filtered and paged, and exported as CSV or XLSX.
//! Read-only: there is no route that changes or erases a record.

use axum::Json;
use axum::extract::State;
use axum::response::Response;

use super::download::{CSV_TYPE, XLSX_TYPE, attachment};
use crate::audit::{self, AuditFilter, AuditPage};
use crate::extract::{CurrentUser, QueryParams};
use crate::{ApiError, AppState};

/// `GET /api/v1/audit`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(filter): QueryParams<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    audit::require_auditor(&user)?;
    Ok(Json(audit::page(state.store(), &filter).await?))
}

/// `GET /api/v1/audit/export.csv`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(filter): QueryParams<AuditFilter>,
) -> Result<Response, ApiError> {
    audit::require_auditor(&user)?;
    let records = audit::all(state.store(), &filter).await?;
    let bytes = zhzj_export::to_csv(&audit::table(&records)).map_err(ApiError::internal)?;
    let today = state.today();
    tracing::info!(by = %user.username, rows = records.len(), "audit trail exported (csv)");
    Ok(attachment(
        bytes,
        CSV_TYPE,
        &format!("audit-{today}.csv"),
        &format!("审计记录-{today}.csv"),
    ))
}

/// `GET /api/v1/audit/export.xlsx`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(filter): QueryParams<AuditFilter>,
) -> Result<Response, ApiError> {
    audit::require_auditor(&user)?;
    let records = audit::all(state.store(), &filter).await?;
    let bytes = zhzj_export::to_xlsx(&[audit::table(&records)], state.now().naive_utc())
        .map_err(ApiError::internal)?;
    let today = state.today();
    tracing::info!(by = %user.username, rows = records.len(), "audit trail exported (xlsx)");
    Ok(attachment(
        bytes,
        XLSX_TYPE,
        &format!("audit-{today}.xlsx"),
        &format!("审计记录-{today}.xlsx"),
    ))
}
