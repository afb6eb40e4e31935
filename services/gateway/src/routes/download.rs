//! Files handed to the browser: spreadsheet exports with their content types and Chinese file
//! names, and reports sealed at the log position they were drawn at.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::log_seal::seal_through;
use crate::{ApiError, AppState};

/// An attachment with a Chinese file name (RFC 6266: an ASCII fallback and the UTF-8 name).
pub fn attachment(bytes: Vec<u8>, content_type: &str, ascii: &str, name: &str) -> Response {
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

/// The XLSX content type.
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// The CSV content type.
pub const CSV_TYPE: &str = "text/csv; charset=utf-8";

/// A report drawn as of a log position, handed out as a file sealed there (`log_seal`): the log
/// digest at the position in a last sheet and in the headers, so that a file regenerated at the
/// same position is byte-identical and can be checked against the log.
pub struct SealedReport {
    /// The log position it was drawn at.
    pub position: i64,
    /// Its sheets.
    pub tables: Vec<zhzj_export::Table>,
    /// When the workbook says it was made (the report's own moment, never now).
    pub created: chrono::NaiveDateTime,
    /// The ASCII file name, without extension (`bulletin-2026-11`).
    pub ascii_name: String,
    /// The workbook's Chinese file name, without extension (`2026-11月通报`).
    pub name: String,
    /// What one sheet's Chinese file name starts with, before `-<sheet>.csv`.
    pub sheet_prefix: String,
}

impl SealedReport {
    /// The report as a workbook, its seal the last sheet.
    pub async fn xlsx(mut self, state: &AppState) -> Result<Response, ApiError> {
        let seal = seal_through(state, self.position).await;
        self.tables.push(seal.table());
        let bytes = zhzj_export::to_xlsx(&self.tables, self.created).map_err(ApiError::internal)?;
        Ok(seal.stamp(attachment(
            bytes,
            XLSX_TYPE,
            &format!("{}.xlsx", self.ascii_name),
            &format!("{}.xlsx", self.name),
        )))
    }

    /// Sheet `index` (checked by the caller against [`Self::tables`]) as CSV, `label` naming it
    /// in the ASCII file name.
    pub async fn csv(
        self,
        state: &AppState,
        index: usize,
        label: &str,
    ) -> Result<Response, ApiError> {
        let Some(table) = self.tables.get(index) else {
            return Err(ApiError::internal(format!(
                "report {} has no sheet {index}",
                self.ascii_name
            )));
        };
        let bytes = zhzj_export::to_csv(table).map_err(ApiError::internal)?;
        let seal = seal_through(state, self.position).await;
        Ok(seal.stamp(attachment(
            bytes,
            CSV_TYPE,
            &format!("{}-{label}.csv", self.ascii_name),
            &format!("{}-{}.csv", self.sheet_prefix, table.name),
        )))
    }
}
