//! Files handed to the browser: spreadsheet exports with their content types and Chinese file
//! names.

use axum::http::header;
use axum::response::{IntoResponse, Response};

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
