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

/// Writes `tables` as a workbook, on a blocking thread: a city's year or checklist is seconds of
/// CPU, and on the async runtime it would hold a worker — with the commands, projections and
/// requests waiting on it — until done (two exports at once held both of a 2-core server's).
pub async fn xlsx_bytes(
    tables: Vec<zhzj_export::Table>,
    created: chrono::NaiveDateTime,
) -> Result<Vec<u8>, ApiError> {
    off_the_runtime(move || zhzj_export::to_xlsx(&tables, created)).await
}

/// Writes `table` as CSV, on a blocking thread (see [`xlsx_bytes`]).
pub async fn csv_bytes(table: zhzj_export::Table) -> Result<Vec<u8>, ApiError> {
    off_the_runtime(move || zhzj_export::to_csv(&table)).await
}

async fn off_the_runtime(
    write: impl FnOnce() -> Result<Vec<u8>, zhzj_export::ExportError> + Send + 'static,
) -> Result<Vec<u8>, ApiError> {
    tokio::task::spawn_blocking(write)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
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
        let bytes = xlsx_bytes(self.tables, self.created).await?;
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
        mut self,
        state: &AppState,
        index: usize,
        label: &str,
    ) -> Result<Response, ApiError> {
        if index >= self.tables.len() {
            return Err(ApiError::internal(format!(
                "report {} has no sheet {index}",
                self.ascii_name
            )));
        }
        let table = self.tables.swap_remove(index);
        let name = format!("{}-{}.csv", self.sheet_prefix, table.name);
        let bytes = csv_bytes(table).await?;
        let seal = seal_through(state, self.position).await;
        Ok(seal.stamp(attachment(
            bytes,
            CSV_TYPE,
            &format!("{}-{label}.csv", self.ascii_name),
            &name,
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use zhzj_export::{Cell, Table};

    use super::*;

    /// On a one-thread runtime (as `#[tokio::test]` gives), a task that counts its turns: it
    /// gets none unless the workbook is written somewhere else than on the runtime.
    #[tokio::test]
    async fn other_tasks_run_while_a_workbook_is_written() -> Result<(), Box<dyn std::error::Error>>
    {
        let table = Table {
            name: "清单".into(),
            headers: vec!["案件编号".into(), "序号".into()],
            rows: (0..2_000)
                .map(|i| vec![Cell::Text(format!("XM-2026-{i:05}")), Cell::Int(i)])
                .collect(),
        };
        let turns = Arc::new(AtomicUsize::new(0));
        let counter = {
            let turns = Arc::clone(&turns);
            tokio::spawn(async move {
                loop {
                    turns.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        let created = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let bytes = xlsx_bytes(vec![table], created)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let during = turns.load(Ordering::Relaxed);
        counter.abort();
        assert!(bytes.starts_with(b"PK"), "a zip file");
        assert!(
            during > 0,
            "the runtime ran nothing else while the workbook was written"
        );
        Ok(())
    }
}
