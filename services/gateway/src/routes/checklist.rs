//! `GET /api/v1/checklist`: the checklist (清单) with filters and paging.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use zhzj_deadlines::{HolidayCalendar, StatutoryStep};

use crate::extract::{CurrentUser, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// Largest page.
const MAX_PER_PAGE: u32 = 200;
/// Default page size.
const DEFAULT_PER_PAGE: u32 = 50;

/// The checklist joined with the lifecycle view (`c` and `l`).
pub const FROM_SQL: &str = "checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id";

/// Where a case stands: its lifecycle stage once it has one, else how far the work has got.
pub const STATUS_SQL: &str = "CASE WHEN l.stage = 'crossed_off' THEN 'crossed_off' \
    WHEN l.stage = 'under_review' THEN 'under_review' \
    WHEN c.leader_id IS NULL THEN 'unassigned' \
    WHEN c.measures_total > 0 AND c.measures_done = c.measures_total THEN 'measures_done' \
    ELSE 'in_progress' END";

/// The deadline the case runs against now (the projector keeps it, counted per 民法典 on the
/// holiday calendar with the bureau's limits): the earliest of the notice of acceptance (告知),
/// the handling period (办理期限, extended if approved; stopped while a claim is under review or
/// the case is crossed off, and by the reply) and a first or second review's answer (复查、复核).
pub const DEADLINE_SQL: &str = "l.next_due_on";

/// The statuses and their labels.
const STATUSES: [(&str, &str); 5] = [
    ("unassigned", "待包案"),
    ("in_progress", "化解中"),
    ("measures_done", "措施已落实"),
    ("under_review", "审核中"),
    ("crossed_off", "已销号"),
];

/// The label of a statutory step named by its key.
pub fn step_label(key: &str) -> Option<&'static str> {
    StatutoryStep::ALL
        .into_iter()
        .find(|step| step.key() == key)
        .map(StatutoryStep::label)
}

fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("", |(_, label)| label)
}

/// The 三到位一处理 classes.
const CLASSES: [&str; 4] = ["reasonable", "unreasonable", "hardship", "unlawful"];

/// The orders the checklist can be sorted by, and their SQL (ascending).
const SORTS: [(&str, &str); 6] = [
    ("registered", "c.registered_at"),
    (
        "deadline",
        "(CASE WHEN l.next_due_on IS NULL THEN 1 ELSE 0 END), l.next_due_on",
    ),
    ("case_number", "c.case_number"),
    ("last_activity", "c.last_activity_at"),
    ("district", "c.district_name, c.town_name"),
    ("progress", "c.measures_done * 1.0 / (c.measures_total + 1)"),
];

/// The `ORDER BY` of `sort` (see [`ChecklistQuery::sort`]), the case id breaking ties.
fn order_sql(sort: Option<&str>) -> Result<String, ApiError> {
    let sort = sort.filter(|s| !s.is_empty()).unwrap_or("registered");
    let (key, descending) = match sort.strip_prefix('-') {
        Some(key) => (key, true),
        None => (sort, false),
    };
    let Some((_, columns)) = SORTS.iter().find(|(name, _)| *name == key) else {
        return Err(ApiError::BadRequest {
            message: format!(
                "未知排序 {sort}；可选 {}（前加 - 为倒序）",
                SORTS.map(|(name, _)| name).join("、")
            ),
            field: Some("sort".into()),
        });
    };
    let direction = if descending { " DESC" } else { "" };
    let ordered: Vec<String> = columns
        .split(", ")
        .map(|column| format!("{column}{direction}"))
        .collect();
    Ok(format!("{}, c.case_id", ordered.join(", ")))
}

/// A unit or leader named on a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Named {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// One row of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ChecklistItem {
    /// Case id.
    pub case_id: String,
    /// 案件编号.
    pub case_number: String,
    /// 诉求.
    pub matter: String,
    /// Category.
    pub category: String,
    /// 区.
    pub district: Named,
    /// 镇街.
    pub town: Option<Named>,
    /// 包案领导.
    pub leader: Option<Named>,
    /// 责任单位 (主办).
    pub lead_unit: Option<Named>,
    /// 协办单位, joined with 、.
    pub assisting_units: Option<String>,
    /// Measures in the plan.
    pub measures_total: i64,
    /// Measures ticked off.
    pub measures_done: i64,
    /// `unassigned`, `in_progress`, `measures_done`, `under_review` or `crossed_off`.
    pub status: String,
    /// 待包案, 化解中, 措施已落实, 审核中 or 已销号.
    pub status_label: String,
    /// The 三到位一处理 class, once classified.
    pub class: Option<String>,
    /// New petitions recorded on the case (重复信访).
    pub repeat_count: i64,
    /// Times it was reopened after crossing off (回潮).
    pub relapse_count: i64,
    /// The last satisfaction rating.
    pub satisfaction: Option<String>,
    /// The deadline the case runs against now, none when no clock runs (under review, crossed
    /// off, replied and no review asked for, concluded).
    pub next_deadline: Option<String>,
    /// Which clock it is: `acceptance_notice`, `handling`, `first_review_answer` or
    /// `second_review_answer`.
    pub next_deadline_step: Option<String>,
    /// Its name: 告知是否受理, 办理期限, 复查答复期限 or 复核答复期限.
    pub next_deadline_label: Option<String>,
    /// Whether the deadline falls in a year whose official holiday schedule is not yet in the
    /// calendar (only weekends were counted as rest days): an estimate (预估).
    pub deadline_estimated: bool,
    /// Days from today to it (negative when overdue).
    pub days_left: Option<i64>,
    /// Whether the deadline has passed.
    pub overdue: bool,
    /// When it was put on the list.
    pub registered_at: String,
    /// The last thing that happened to it.
    pub last_activity_at: String,
    /// The case version (its `ETag`).
    pub version: u64,
}

fn named(row: &sqlx::any::AnyRow, id: &str, name: &str) -> Result<Option<Named>, sqlx::Error> {
    let id: Option<String> = row.try_get(id)?;
    let name: Option<String> = row.try_get(name)?;
    Ok(id.map(|id| Named {
        id,
        name: name.unwrap_or_default(),
    }))
}

impl ChecklistItem {
    /// Reads a row selected with [`item_columns`]; `today` counts the days left.
    pub fn from_row(row: &sqlx::any::AnyRow, today: NaiveDate) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let next_deadline: Option<String> = row.try_get("next_deadline")?;
        let next_deadline_step: Option<String> = row.try_get("next_deadline_step")?;
        let due = next_deadline
            .as_deref()
            .and_then(|d| d.parse::<NaiveDate>().ok());
        let days_left = due.map(|d| (d - today).num_days());
        Ok(Self {
            case_id: row.try_get("case_id")?,
            case_number: row.try_get("case_number")?,
            // Clerks write ID and phone numbers into matters; a list shows them masked (the case,
            // revealed, shows them as written).
            matter: super::case_masking::mask_free_text(&row.try_get::<String, _>("matter")?)
                .into_owned(),
            category: row.try_get("category")?,
            district: Named {
                id: row.try_get("district_id")?,
                name: row.try_get("district_name")?,
            },
            town: named(row, "town_id", "town_name")?,
            leader: named(row, "leader_id", "leader_name")?,
            lead_unit: named(row, "lead_unit_id", "lead_unit_name")?,
            assisting_units: row.try_get("assisting_units")?,
            measures_total: row.try_get("measures_total")?,
            measures_done: row.try_get("measures_done")?,
            status_label: status_label(&status).to_owned(),
            status,
            class: row.try_get("class")?,
            repeat_count: row.try_get("repeat_count")?,
            relapse_count: row.try_get("relapse_count")?,
            satisfaction: row.try_get("satisfaction")?,
            overdue: days_left.is_some_and(|d| d < 0),
            days_left,
            next_deadline,
            next_deadline_label: next_deadline_step
                .as_deref()
                .and_then(step_label)
                .map(str::to_owned),
            next_deadline_step,
            deadline_estimated: due.is_some_and(|d| !HolidayCalendar::shipped().covers(d)),
            registered_at: row.try_get("registered_at")?,
            last_activity_at: row.try_get("last_activity_at")?,
            version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0),
        })
    }
}

/// The columns [`ChecklistItem::from_row`] reads.
pub fn item_columns() -> String {
    format!(
        "c.case_id, c.case_number, c.matter, c.category, c.district_id, c.district_name, \
         c.town_id, c.town_name, c.leader_id, c.leader_name, c.lead_unit_id, c.lead_unit_name, \
         c.assisting_units, c.measures_total, c.measures_done, c.registered_at, \
         c.last_activity_at, c.version, {STATUS_SQL} AS status, l.class, \
         COALESCE(l.repeat_count, 0) AS repeat_count, COALESCE(l.relapse_count, 0) AS relapse_count, \
         l.satisfaction, {DEADLINE_SQL} AS next_deadline, l.next_due_step AS next_deadline_step"
    )
}

/// Filters and paging.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistQuery {
    /// District unit id.
    pub district: Option<String>,
    /// Town or street unit id.
    pub town: Option<String>,
    /// Owning leader id.
    pub leader: Option<String>,
    /// A responsible unit id (lead or assisting, 主办或协办).
    pub unit: Option<String>,
    /// `unassigned`, `in_progress`, `measures_done`, `under_review` or `crossed_off`.
    pub status: Option<String>,
    /// The 三到位一处理 class: `reasonable`, `unreasonable`, `hardship` or `unlawful`.
    pub class: Option<String>,
    /// Order: `registered` (default), `deadline`, `case_number`, `last_activity`, `district`,
    /// `progress`; a leading `-` reverses it.
    pub sort: Option<String>,
    /// Free text, matched against the case number, matter, category, leader and unit names.
    pub q: Option<String>,
    /// Only cases whose deadline is within this many days from today (not yet passed).
    pub due_within: Option<u32>,
    /// Only cases past their deadline (`true`).
    pub overdue: Option<bool>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Rows per page (at most 200).
    pub per_page: Option<u32>,
}

/// A page of the checklist.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ChecklistPage {
    /// Rows matching the filters.
    pub total: i64,
    /// This page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The rows, oldest registration first.
    pub rows: Vec<ChecklistItem>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The `WHERE` clause (empty or starting with a space) and its values for the filters of `query`
/// within the user's scope.
async fn filter_sql(
    state: &AppState,
    user: &crate::User,
    query: &ChecklistQuery,
) -> Result<(String, Vec<String>), ApiError> {
    if let Some(status) = query.status.as_ref().filter(|s| !s.is_empty())
        && !STATUSES.iter().any(|(s, _)| s == status)
    {
        return Err(ApiError::BadRequest {
            message: format!(
                "未知状态 {status}；可选 {}",
                STATUSES.map(|(s, _)| s).join("、")
            ),
            field: Some("status".into()),
        });
    }
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let mut bind = |condition: &str, value: String, binds: &mut Vec<String>| {
        binds.push(value);
        conditions.push(condition.replace('?', &format!("${}", binds.len())));
    };
    let given = |value: &Option<String>| value.clone().filter(|s| !s.is_empty());
    if let Some(district) = given(&query.district) {
        bind("c.district_id = ?", district, &mut binds);
    }
    if let Some(town) = given(&query.town) {
        bind("c.town_id = ?", town, &mut binds);
    }
    if let Some(leader) = given(&query.leader) {
        bind("c.leader_id = ?", leader, &mut binds);
    }
    if let Some(unit) = given(&query.unit) {
        bind(
            "c.case_id IN (SELECT u.case_id FROM case_units u WHERE u.unit_id = ?)",
            unit,
            &mut binds,
        );
    }
    if let Some(status) = given(&query.status) {
        bind(&format!("({STATUS_SQL}) = ?"), status, &mut binds);
    }
    if let Some(class) = given(&query.class) {
        if !CLASSES.contains(&class.as_str()) {
            return Err(ApiError::BadRequest {
                message: format!("未知类别 {class}；可选 {}", CLASSES.join("、")),
                field: Some("class".into()),
            });
        }
        bind("l.class = ?", class, &mut binds);
    }
    if let Some(text) = query
        .q
        .as_deref()
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
    {
        bind(
            "(c.case_number || ' ' || c.matter || ' ' || c.category || ' ' \
             || COALESCE(c.leader_name, '') || ' ' || COALESCE(c.lead_unit_name, '') || ' ' \
             || c.district_name || ' ' || COALESCE(c.town_name, '')) LIKE ? ESCAPE '\\'",
            like_pattern(&text),
            &mut binds,
        );
    }
    let today = state.today();
    if let Some(days) = query.due_within {
        let until = today
            .checked_add_days(chrono::Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MAX);
        bind(
            &format!("({DEADLINE_SQL}) >= ?"),
            today.to_string(),
            &mut binds,
        );
        bind(
            &format!("({DEADLINE_SQL}) <= ?"),
            until.to_string(),
            &mut binds,
        );
    }
    if query.overdue == Some(true) {
        bind(
            &format!("({DEADLINE_SQL}) < ?"),
            today.to_string(),
            &mut binds,
        );
    }
    if let Some(condition) = Scope::of(state, user).await?.condition(&mut binds) {
        conditions.push(condition);
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    Ok((filter, binds))
}

/// `GET /api/v1/checklist`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ChecklistQuery>,
) -> Result<Json<ChecklistPage>, ApiError> {
    let (filter, binds) = filter_sql(&state, &user, &query).await?;
    let today = state.today();
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query
        .per_page
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let count_sql = format!("SELECT COUNT(*) AS n FROM {FROM_SQL}{filter}");
    let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql));
    for value in &binds {
        count = count.bind(value.clone());
    }
    let total: i64 = count.fetch_one(state.store().pool()).await?.try_get("n")?;
    let rows_sql = format!(
        "SELECT {} FROM {FROM_SQL}{filter} ORDER BY {} LIMIT {per_page} OFFSET {}",
        item_columns(),
        order_sql(query.sort.as_deref())?,
        u64::from(page - 1) * u64::from(per_page)
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(rows_sql));
    for value in &binds {
        rows = rows.bind(value.clone());
    }
    let rows = rows
        .fetch_all(state.store().pool())
        .await?
        .iter()
        .map(|row| ChecklistItem::from_row(row, today))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(ChecklistPage {
        total,
        page,
        per_page,
        rows,
    }))
}

/// Most rows one export carries.
const MAX_EXPORT_ROWS: i64 = 100_000;

/// The export format.
#[derive(Debug, Clone, Copy)]
pub enum ExportFormat {
    /// An XLSX workbook.
    Xlsx,
    /// CSV, UTF-8 with a byte-order mark.
    Csv,
}

/// The export's table: the checklist's columns, with Chinese headers and labels.
fn export_table(rows: &[ChecklistItem]) -> zhzj_export::Table {
    use zhzj_export::Cell;
    use zhzj_proto::events::{ClaimClass, Satisfaction};
    let label_of = |value: &Option<String>, label: fn(&str) -> Option<&'static str>| {
        Cell::from(value.as_deref().map(|v| label(v).unwrap_or(v).to_owned()))
    };
    let class_label = |v: &str| {
        serde_json::from_value::<ClaimClass>(serde_json::Value::String(v.to_owned()))
            .ok()
            .map(ClaimClass::label)
    };
    let satisfaction_label = |v: &str| {
        serde_json::from_value::<Satisfaction>(serde_json::Value::String(v.to_owned()))
            .ok()
            .map(Satisfaction::label)
    };
    let headers = [
        "案件编号",
        "诉求",
        "类别",
        "区",
        "镇街",
        "包案领导",
        "责任单位",
        "协办单位",
        "措施总数",
        "已落实措施",
        "状态",
        "分类",
        "重复信访次数",
        "回潮次数",
        "满意度",
        "下一期限",
        "期限类型",
        "剩余天数",
        "是否超期",
        "期限为预估",
        "列入清单日期",
        "最近动态日期",
    ];
    let yes_no = |b: bool| Cell::from(if b { "是" } else { "否" });
    zhzj_export::Table {
        name: "清单".into(),
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        rows: rows
            .iter()
            .map(|row| {
                vec![
                    Cell::from(row.case_number.clone()),
                    Cell::from(row.matter.clone()),
                    Cell::from(row.category.clone()),
                    Cell::from(row.district.name.clone()),
                    Cell::from(row.town.as_ref().map(|t| t.name.clone())),
                    Cell::from(row.leader.as_ref().map(|l| l.name.clone())),
                    Cell::from(row.lead_unit.as_ref().map(|u| u.name.clone())),
                    Cell::from(row.assisting_units.clone()),
                    Cell::Int(row.measures_total),
                    Cell::Int(row.measures_done),
                    Cell::from(row.status_label.clone()),
                    label_of(&row.class, class_label),
                    Cell::Int(row.repeat_count),
                    Cell::Int(row.relapse_count),
                    label_of(&row.satisfaction, satisfaction_label),
                    Cell::from(
                        row.next_deadline
                            .as_deref()
                            .and_then(|d| d.parse::<NaiveDate>().ok()),
                    ),
                    Cell::from(row.next_deadline_label.clone()),
                    row.days_left.map_or(Cell::Empty, Cell::Int),
                    yes_no(row.overdue),
                    yes_no(row.deadline_estimated),
                    // Stored in UTC; the checklist, its clocks and its file names count days in
                    // China, and so does the export.
                    Cell::from(zhzj_store::china_date_of(&row.registered_at)),
                    Cell::from(zhzj_store::china_date_of(&row.last_activity_at)),
                ]
            })
            .collect(),
    }
}

/// `GET /api/v1/checklist/export.xlsx`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ChecklistQuery>,
) -> Result<axum::response::Response, ApiError> {
    export(&state, &user, &query, ExportFormat::Xlsx).await
}

/// `GET /api/v1/checklist/export.csv`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<ChecklistQuery>,
) -> Result<axum::response::Response, ApiError> {
    export(&state, &user, &query, ExportFormat::Csv).await
}

/// The filtered checklist, within the user's scope, as an XLSX workbook or CSV (paging is
/// ignored: every matching row, up to 100,000).
async fn export(
    state: &AppState,
    user: &crate::User,
    query: &ChecklistQuery,
    format: ExportFormat,
) -> Result<axum::response::Response, ApiError> {
    let (filter, binds) = filter_sql(state, user, query).await?;
    let today = state.today();
    let sql = format!(
        "SELECT {} FROM {FROM_SQL}{filter} ORDER BY {} LIMIT {MAX_EXPORT_ROWS}",
        item_columns(),
        order_sql(query.sort.as_deref())?
    );
    let mut select = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in &binds {
        select = select.bind(value.clone());
    }
    // The rows and the position they stand at, read in one transaction (one snapshot).
    let mut snapshot = state.store().begin_snapshot().await?;
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
            .bind(zhzj_projector::Projection::CHECKLIST.name())
            .fetch_optional(&mut *snapshot)
            .await?;
    let rows = select
        .fetch_all(&mut *snapshot)
        .await?
        .iter()
        .map(|row| ChecklistItem::from_row(row, today))
        .collect::<Result<Vec<_>, _>>()?;
    snapshot.commit().await?;
    let seal = crate::log_seal::seal_through(state, position.unwrap_or(0)).await;
    let table = export_table(&rows);
    let (bytes, content_type, extension) = match format {
        ExportFormat::Xlsx => (
            super::download::xlsx_bytes(vec![table, seal.table()], state.now().naive_utc()).await?,
            super::download::XLSX_TYPE,
            "xlsx",
        ),
        ExportFormat::Csv => (
            super::download::csv_bytes(table).await?,
            super::download::CSV_TYPE,
            "csv",
        ),
    };
    Ok(seal.stamp(super::download::attachment(
        bytes,
        content_type,
        &format!("checklist-{today}.{extension}"),
        &format!("清单-{today}.{extension}"),
    )))
}
