//! 导入: the ledger import page — upload a filled-in template (XLSX or CSV); the whole ledger is
//! checked by the same import the API runs, and either every case is added or nothing is and
//! each problem is listed by row and column.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;
use zhzj_ledger::Format;
use zhzj_proto::accounts::Role;

use super::auth::WebSession;
use super::view::{Layout, html_with};
use crate::routes::ledger;
use crate::{ApiError, AppState};

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    layout: Layout,
    may_import: bool,
    error: Option<String>,
    report: Option<String>,
    /// Row, column, problem.
    problems: Vec<(String, String, String)>,
}

impl ImportPage {
    fn new(session: &WebSession) -> Self {
        Self {
            layout: session.layout("导入台账", "import"),
            may_import: session.user.has_any_role(&[Role::Admin, Role::Coordinator]),
            error: None,
            report: None,
            problems: Vec::new(),
        }
    }
}

/// `GET /import`.
pub async fn show(session: WebSession) -> Response {
    let result = html_with(StatusCode::OK, &ImportPage::new(&session));
    session.respond(result, "import")
}

/// The uploaded file and the form's token.
struct Upload {
    csrf: String,
    name: String,
    bytes: Vec<u8>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, ApiError> {
    let bad = |message: String| ApiError::BadRequest {
        message,
        field: Some("ledger".into()),
    };
    let mut upload = Upload {
        csrf: String::new(),
        name: String::new(),
        bytes: Vec::new(),
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("无法读取上传内容：{e}")))?
    {
        match field.name() {
            Some("csrf") => {
                upload.csrf = field
                    .text()
                    .await
                    .map_err(|e| bad(format!("无法读取上传内容：{e}")))?;
            }
            Some("ledger") => {
                upload.name = field.file_name().unwrap_or_default().to_owned();
                upload.bytes = field
                    .bytes()
                    .await
                    .map_err(|e| bad(format!("台账文件读取失败（是否超过 16 MB？）：{e}")))?
                    .to_vec();
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /import`.
pub async fn upload(
    session: WebSession,
    State(state): State<AppState>,
    multipart: Multipart,
) -> Response {
    let result = async {
        let upload = read_upload(multipart).await?;
        session.check_csrf(&upload.csrf)?;
        let mut page = ImportPage::new(&session);
        let lower = upload.name.to_lowercase();
        let format = if lower.ends_with(".xlsx") {
            Format::Xlsx
        } else if lower.ends_with(".csv") {
            Format::Csv
        } else {
            page.error = Some(format!(
                "请上传 .xlsx 或 .csv 文件（收到“{}”）",
                upload.name
            ));
            return html_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        };
        let answer =
            ledger::import(&state, &session.user, Uuid::new_v4(), &upload.bytes, format).await;
        let outcome = match answer {
            Ok(outcome) => outcome,
            Err(error) => {
                page.error = Some(error.to_string());
                return html_with(error.status(), &page);
            }
        };
        let status = match outcome {
            ledger::ImportOutcome::Imported(report) => {
                page.report = Some(format!(
                    "导入完成：新增 {} 件，此前已导入 {} 件（导入批次 {}）",
                    report.added, report.already_imported, report.import_id
                ));
                StatusCode::OK
            }
            ledger::ImportOutcome::Refused(refused) => {
                page.error = Some(refused.error.message);
                page.problems = refused
                    .errors
                    .into_iter()
                    .map(|e| {
                        let column = e.column.unwrap_or_else(|| "—".to_owned());
                        (e.row.to_string(), column, e.message)
                    })
                    .collect();
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        html_with(status, &page)
    }
    .await;
    session.respond(result, "import")
}
