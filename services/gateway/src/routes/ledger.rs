//! `/api/v1/ledger`: the ledger (台账) in and out — the import template, importing an XLSX or CSV
//! ledger (every row checked first; any problem and nothing is written, each problem reported with
//! its row and column), and exporting the cases in the same template so that export then import
//! round-trips. The export carries petitioners' personal data, so it is for those who may see it
//! (the administrator and the coordinators of the cases' own area), and every exported case is
//! recorded as an unmasked read.

use std::collections::{HashMap, HashSet};
use zhzj_proto::accounts::Role;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;
use zhzj_ledger::{Directory, Existing, ExistingCase, Format, LedgerRow, RowError};
use zhzj_proto::events::{CaseRegistered, Channel, ListSource, Petitioner};
use zhzj_proto::{CommandReply, ErrorKind};

use super::download::{CSV_TYPE, XLSX_TYPE, attachment, csv_bytes, xlsx_bytes};
use crate::commands::{send_batch_command, wait_visible};
use crate::extract::{CorrelationId, CurrentUser};
use crate::scope::subtree;
use crate::{ApiError, AppState, ErrorDetail, User};

/// Largest ledger accepted, in bytes.
pub const MAX_LEDGER_BYTES: usize = 16 * 1024 * 1024;
/// Cases imported at once.
const CONCURRENT_CASES: usize = 16;

/// `GET /api/v1/ledger/template.xlsx`.
pub async fn template_xlsx(CurrentUser(_user): CurrentUser) -> Result<Response, ApiError> {
    let created = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    let bytes = xlsx_bytes(vec![zhzj_ledger::table(&[])], created).await?;
    Ok(attachment(
        bytes,
        XLSX_TYPE,
        "ledger-template.xlsx",
        "台账导入模板.xlsx",
    ))
}

/// `GET /api/v1/ledger/template.csv`.
pub async fn template_csv(CurrentUser(_user): CurrentUser) -> Result<Response, ApiError> {
    let bytes = csv_bytes(zhzj_ledger::table(&[])).await?;
    Ok(attachment(
        bytes,
        CSV_TYPE,
        "ledger-template.csv",
        "台账导入模板.csv",
    ))
}

/// What an import did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// The import's id (the correlation id every command of it carries).
    pub import_id: String,
    /// Cases added.
    pub added: usize,
    /// Cases an earlier import added already, found identical in this ledger.
    pub already_imported: usize,
    /// Whether the read views show every added case yet.
    pub visible: bool,
}

/// The answer to a ledger with problems.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImportRefused {
    /// `{code: "invalid", message}`.
    pub error: ErrorDetail,
    /// Every problem, by row and column.
    pub errors: Vec<RowError>,
}

/// What an import came to: its report, or every problem of a ledger of which nothing was
/// imported (422). The API answers it as JSON; the import page shows it.
#[derive(Debug)]
pub enum ImportOutcome {
    /// Imported.
    Imported(ImportReport),
    /// Not imported, for these problems.
    Refused(ImportRefused),
}

impl IntoResponse for ImportOutcome {
    fn into_response(self) -> Response {
        match self {
            Self::Imported(report) => (StatusCode::OK, Json(report)).into_response(),
            Self::Refused(refused) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(refused)).into_response()
            }
        }
    }
}

async fn directory(state: &AppState) -> Result<Directory, ApiError> {
    let mut directory = Directory::default();
    for row in sqlx::query("SELECT unit_id, parent_id, name, kind FROM org_units")
        .fetch_all(state.store().pool())
        .await?
    {
        let id: String = row.try_get("unit_id")?;
        let name: String = row.try_get("name")?;
        let kind: String = row.try_get("kind")?;
        let parent: Option<String> = row.try_get("parent_id")?;
        match kind.as_str() {
            "district" => {
                directory.districts.insert(name.clone(), id.clone());
            }
            "town" => {
                if let Some(parent) = parent {
                    directory.towns.insert((parent, name.clone()), id.clone());
                }
            }
            _ => {}
        }
        directory.units.entry(name).or_default().push(id);
    }
    for row in sqlx::query("SELECT leader_id, name FROM org_leaders")
        .fetch_all(state.store().pool())
        .await?
    {
        directory
            .leaders
            .entry(row.try_get("name")?)
            .or_default()
            .push(row.try_get("leader_id")?);
    }
    Ok(directory)
}

async fn existing(state: &AppState, user: &User) -> Result<Existing, ApiError> {
    let mut existing = Existing::default();
    if !user.has_role(Role::Admin) {
        let units = match &user.unit_id {
            Some(unit) => subtree(state, unit).await?,
            None => Vec::new(),
        };
        existing.scope = Some(units.into_iter().collect());
    }
    let mut numbers_by_case = HashMap::new();
    for row in sqlx::query("SELECT case_id, case_number, district_id, town_id FROM checklist_rows")
        .fetch_all(state.store().pool())
        .await?
    {
        let case_id: String = row.try_get("case_id")?;
        let number: String = row.try_get("case_number")?;
        let district: String = row.try_get("district_id")?;
        let town: Option<String> = row.try_get("town_id")?;
        if let Some(units) = &existing.scope
            && !units.contains(&district)
            && !town.as_ref().is_some_and(|t| units.contains(t))
        {
            existing.outside_scope.insert(number.clone());
        }
        numbers_by_case.insert(case_id.clone(), number.clone());
        existing.case_numbers.insert(number, case_id);
    }
    // Every registration, its petitioners opened (in memory only): their ID numbers for the
    // duplicate check; and, for the cases an earlier import derived from their numbers, what the
    // ledger registered — a later ledger naming one is compared with it, column by column.
    let registrations = sqlx::query(
        "SELECT aggregate_id, CAST(data AS TEXT) AS data FROM event_archive \
         WHERE event_type = 'CaseRegistered'",
    )
    .fetch_all(state.store().pool())
    .await?;
    let mut registered_cases = Vec::with_capacity(registrations.len());
    for row in registrations {
        let case_id: String = row.try_get("aggregate_id")?;
        if let Some(number) = numbers_by_case.get(&case_id) {
            let data: String = row.try_get("data")?;
            let registered: CaseRegistered =
                serde_json::from_str(&data).map_err(ApiError::internal)?;
            registered_cases.push((case_id, number.clone(), registered));
        }
    }
    let opened: Vec<Result<_, ApiError>> = futures::stream::iter(registered_cases)
        .map(|(case_id, number, registered)| async move {
            let mut petitioners = Vec::with_capacity(registered.petitioners.len());
            for recorded in &registered.petitioners {
                petitioners.push(crate::personal::open(state, recorded).await?);
            }
            Ok((case_id, number, registered, petitioners))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for opened in opened {
        let (case_id, number, registered, petitioners) = opened?;
        for id in petitioners.iter().filter_map(|p| p.id_number.clone()) {
            existing.id_numbers.insert(id, number.clone());
        }
        // A case outside the importer's area is never compared: the comparison would tell what
        // it holds.
        if zhzj_ledger::case_id_for(&number).to_string() != case_id
            || existing.outside_scope.contains(&number)
        {
            continue;
        }
        existing.cases.insert(
            number,
            ExistingCase {
                petitioners: petitioners.iter().map(Into::into).collect(),
                matter: registered.matter,
                category: registered.category,
                district_id: registered.district.id,
                town_id: registered.town.map(|t| t.id),
                channel: registered.channel,
                first_filed_on: registered.first_filed_on,
                list_source: registered.list_source,
                group_size: registered.group_size,
            },
        );
    }
    Ok(existing)
}

/// The body of an import: the file's bytes (up to 16 MiB).
pub struct LedgerFile(Bytes);

impl FromRequest<AppState> for LedgerFile {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(format!("台账文件超过 {MAX_LEDGER_BYTES} 字节上限"))
                } else {
                    ApiError::BadRequest {
                        message: format!("无法读取请求体: {rejection}"),
                        field: None,
                    }
                }
            })
    }
}

/// `POST /api/v1/ledger/import.xlsx` (the workbook as the body).
pub async fn import_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    LedgerFile(body): LedgerFile,
) -> Result<ImportOutcome, ApiError> {
    import(&state, &user, correlation, &body, Format::Xlsx).await
}

/// `POST /api/v1/ledger/import.csv` (CSV in UTF-8 or GBK/GB18030 as the body).
pub async fn import_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    LedgerFile(body): LedgerFile,
) -> Result<ImportOutcome, ApiError> {
    import(&state, &user, correlation, &body, Format::Csv).await
}

/// Checks the whole ledger, then (only if every row is valid) sends each row's commands.
pub(crate) async fn import(
    state: &AppState,
    user: &User,
    import_id: Uuid,
    body: &[u8],
    format: Format,
) -> Result<ImportOutcome, ApiError> {
    if !(user.has_role(Role::Admin) || user.has_role(Role::Coordinator)) {
        return Err(ApiError::Forbidden(
            "只有专班协调员可以导入台账 (coordinators only)".into(),
        ));
    }
    let directory = directory(state).await?;
    let existing = existing(state, user).await?;
    // Reading a workbook of thousands of rows is CPU work: on a blocking thread, as exports.
    let (body, today) = (body.to_vec(), state.today());
    let checked = tokio::task::spawn_blocking(move || {
        zhzj_ledger::check(&body, format, &directory, &existing, today)
    })
    .await
    .map_err(ApiError::internal)?;
    let checked = match checked {
        Ok(checked) => checked,
        Err(errors) => {
            return Ok(ImportOutcome::Refused(ImportRefused {
                error: ErrorDetail {
                    code: "invalid".into(),
                    message: format!("台账有 {} 处问题，未导入任何案件", errors.len()),
                    field: None,
                    current_version: None,
                },
                errors,
            }));
        }
    };
    let added = checked.cases.len();
    let results: Vec<Result<u64, ApiError>> = futures::stream::iter(checked.cases)
        .map(|case| async move {
            let mut last = 0;
            for (command_id, command) in case.commands() {
                match send_batch_command(state, user, command_id, import_id, command).await? {
                    CommandReply::Ok(accepted) => last = last.max(accepted.version),
                    // A retry of an import that stopped half-way finds the case registered.
                    CommandReply::Error(e) if e.kind == ErrorKind::Conflict => {}
                    CommandReply::Error(e) => {
                        return Err(ApiError::Unprocessable {
                            message: format!("第 {} 行：{}", case.row, e.message),
                            field: e.field,
                        });
                    }
                }
            }
            Ok(last)
        })
        .buffer_unordered(CONCURRENT_CASES)
        .collect()
        .await;
    let mut position = 0;
    for result in results {
        position = position.max(result?);
    }
    let visible = wait_visible(state, position).await;
    Ok(ImportOutcome::Imported(ImportReport {
        import_id: import_id.to_string(),
        added,
        already_imported: checked.already_imported,
        visible,
    }))
}

/// The cases the user may export with their personal data: all for the administrator; those of
/// their area for a coordinator of a district, town or the city (not a department).
async fn export_rows(
    state: &AppState,
    user: &User,
    correlation: Uuid,
) -> Result<Vec<LedgerRow>, ApiError> {
    let units: Option<HashSet<String>> = if user.has_role(Role::Admin) {
        None
    } else if user.has_role(Role::Coordinator)
        && let Some(unit) = &user.unit_id
    {
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM org_units WHERE unit_id = $1")
                .bind(unit)
                .fetch_optional(state.store().pool())
                .await?;
        if kind.as_deref() == Some("department") {
            return Err(ApiError::Forbidden(
                "职能部门不能导出含信访人个人信息的台账 (条例 第30条)".into(),
            ));
        }
        Some(subtree(state, unit).await?.into_iter().collect())
    } else {
        return Err(ApiError::Forbidden(
            "只有管理员和属地专班协调员可以导出台账 (personal data)".into(),
        ));
    };
    let mut listed: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for row in sqlx::query(
        "SELECT case_id, district_id, town_id, leader_name, lead_unit_name FROM checklist_rows",
    )
    .fetch_all(state.store().pool())
    .await?
    {
        let district: String = row.try_get("district_id")?;
        let town: Option<String> = row.try_get("town_id")?;
        let in_scope = units.as_ref().is_none_or(|units| {
            units.contains(&district) || town.as_ref().is_some_and(|t| units.contains(t))
        });
        if in_scope {
            listed.insert(
                row.try_get("case_id")?,
                (row.try_get("leader_name")?, row.try_get("lead_unit_name")?),
            );
        }
    }
    let mut rows = Vec::with_capacity(listed.len());
    for row in sqlx::query(
        "SELECT aggregate_id, CAST(data AS TEXT) AS data FROM event_archive \
         WHERE event_type = 'CaseRegistered' ORDER BY position",
    )
    .fetch_all(state.store().pool())
    .await?
    {
        let case_id: String = row.try_get("aggregate_id")?;
        let Some((leader, lead_unit)) = listed.get(&case_id) else {
            continue;
        };
        let data: String = row.try_get("data")?;
        let mut data: Value = serde_json::from_str(&data).map_err(ApiError::internal)?;
        crate::personal::open_in_event(state, &mut data).await?;
        let petitioners: Vec<Petitioner> =
            serde_json::from_value(data["petitioners"].clone()).map_err(ApiError::internal)?;
        let text = |key: &str| data[key].as_str().map(str::to_owned);
        rows.push(LedgerRow {
            case_number: text("case_number").unwrap_or_default(),
            petitioners,
            matter: text("matter").unwrap_or_default(),
            category: text("category").unwrap_or_default(),
            district: data["district"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            town: data["town"]["name"].as_str().map(str::to_owned),
            channel: serde_json::from_value::<Channel>(data["channel"].clone()).ok(),
            first_filed_on: text("first_filed_on").and_then(|d| d.parse().ok()),
            list_source: serde_json::from_value::<ListSource>(data["list_source"].clone()).ok(),
            group_size: data["group_size"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok()),
            leader: leader.clone(),
            lead_unit: lead_unit.clone(),
        });
    }
    // Every exported case is an unmasked read of its petitioners' data.
    let read_at = zhzj_store::sql::timestamp_text(state.now());
    let mut tx = state.store().begin_write().await?;
    for case_id in listed.keys() {
        sqlx::query(
            "INSERT INTO personal_data_reads (username, case_id, read_at, correlation_id, purpose) \
             VALUES ($1, $2, $3, $4, 'ledger_export')",
        )
        .bind(&user.username)
        .bind(case_id)
        .bind(&read_at)
        .bind(correlation.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// `GET /api/v1/ledger/export.xlsx`: the cases in the import template.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
) -> Result<Response, ApiError> {
    let rows = export_rows(&state, &user, correlation).await?;
    let bytes = xlsx_bytes(vec![zhzj_ledger::table(&rows)], state.now().naive_utc()).await?;
    let today = state.today();
    Ok(attachment(
        bytes,
        XLSX_TYPE,
        &format!("ledger-{today}.xlsx"),
        &format!("台账-{today}.xlsx"),
    ))
}

/// `GET /api/v1/ledger/export.csv`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
) -> Result<Response, ApiError> {
    let rows = export_rows(&state, &user, correlation).await?;
    let bytes = csv_bytes(zhzj_ledger::table(&rows)).await?;
    let today = state.today();
    Ok(attachment(
        bytes,
        CSV_TYPE,
        &format!("ledger-{today}.csv"),
        &format!("台账-{today}.csv"),
    ))
}
