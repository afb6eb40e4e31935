//! `/api/v1/audit`: the audit trail for auditors (审计员) — logins, failed logins and lockouts,
//! account changes, reads of personal data — filtered and paged, and exported as CSV or XLSX.
//! Read-only: there is no route that changes or erases a record.

use axum::Json;
use axum::extract::State;
use axum::response::Response;

use super::download::{CSV_TYPE, XLSX_TYPE, attachment, csv_bytes, xlsx_bytes};
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
    export(&state, &user, &filter, Format::Csv).await
}

/// `GET /api/v1/audit/export.xlsx`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(filter): QueryParams<AuditFilter>,
) -> Result<Response, ApiError> {
    export(&state, &user, &filter, Format::Xlsx).await
}

/// The file an export is written as.
#[derive(Debug, Clone, Copy)]
enum Format {
    Csv,
    Xlsx,
}

/// The records the filter matches, as a file; the export itself is logged.
async fn export(
    state: &AppState,
    user: &crate::User,
    filter: &AuditFilter,
    format: Format,
) -> Result<Response, ApiError> {
    audit::require_auditor(user)?;
    let records = audit::all(state.store(), filter).await?;
    let table = audit::table(&records);
    let (bytes, media, extension) = match format {
        Format::Csv => (csv_bytes(table).await?, CSV_TYPE, "csv"),
        Format::Xlsx => (
            xlsx_bytes(vec![table], state.now().naive_utc()).await?,
            XLSX_TYPE,
            "xlsx",
        ),
    };
    let today = state.today();
    tracing::info!(by = %user.username, rows = records.len(), extension, "audit trail exported");
    Ok(attachment(
        bytes,
        media,
        &format!("audit-{today}.{extension}"),
        &format!("审计记录-{today}.{extension}"),
    ))
}
