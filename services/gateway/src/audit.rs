//! The audit trail (审计记录) an `auditor` reads: account events from the log's accounts view
//! (`account_audit`: logins, failed logins, lockouts, account changes) beside the reads of
//! petitioners' personal data (`personal_data_reads`), filtered, paged and exported. Nothing here
//! writes: no role, the administrator included, can erase a record.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zhzj_proto::accounts::Role;
use zhzj_store::{ReadStore, china_midnight, sql::timestamp_text};

use crate::{ApiError, User};

/// Most rows on one page; an export takes at most [`MAX_EXPORT_ROWS`].
pub const MAX_PER_PAGE: u32 = 500;
/// Most rows in one export.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

/// The kinds of record, with their Chinese names.
pub const CATEGORIES: [(&str, &str); 4] = [
    ("login", "登录"),
    ("login_failure", "登录失败与锁定"),
    ("account", "账号变更"),
    ("personal_data_read", "查看个人信息"),
];

/// The Chinese name of a category.
pub fn category_label(category: &str) -> &str {
    CATEGORIES
        .iter()
        .find(|(name, _)| *name == category)
        .map_or(category, |(_, label)| label)
}

/// Which records to show.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// `login`, `login_failure`, `account` or `personal_data_read`; all when absent.
    #[serde(default)]
    pub category: Option<String>,
    /// Records about this username or done by it.
    #[serde(default)]
    pub username: Option<String>,
    /// From this day (China time), inclusive.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// To this day (China time), inclusive.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Rows per page (at most 500; 100 when absent).
    #[serde(default)]
    pub per_page: Option<u32>,
}

/// One record of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AuditRecord {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `login`, `login_failure`, `account` or `personal_data_read`.
    pub category: String,
    /// The event type (`LoginSucceeded`, `AccountCreated`, …; `PersonalDataRead`).
    pub event_type: String,
    /// The account the record is about (for a personal-data read: the reader).
    pub username: String,
    /// Who did it (a user, or `system:…`).
    pub actor: String,
    /// The client address of a login attempt.
    pub client_address: Option<String>,
    /// What happened, in Chinese.
    pub detail: String,
    /// The log position of an account event (none for a personal-data read, which is kept in the
    /// read store).
    pub position: Option<i64>,
}

/// A page of the trail.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AuditPage {
    /// The records, newest first.
    pub records: Vec<AuditRecord>,
    /// Records matching the filter.
    pub total: i64,
    /// This page, from 1.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
}

/// Refuses anyone but an auditor: the administrator, who changes accounts, does not also read
/// the trail of those changes (separation of duties).
pub fn require_auditor(user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::Auditor) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "只有审计员可以查看审计记录 (auditor only)".into(),
        ))
    }
}

/// Both sources as one relation with the filter applied (`$1` category, `$2` username, `$3`
/// from, `$4` to; an empty text matches everything).
const FILTERED: &str = "FROM (\
     SELECT occurred_at AS at, category, event_type, username, actor, client_address, detail, \
            position, event_index \
     FROM account_audit \
     UNION ALL \
     SELECT read_at, 'personal_data_read', 'PersonalDataRead', username, username, \
            CAST(NULL AS TEXT), \
            '查看案件 ' || case_id || ' 的信访人信息（' || COALESCE(purpose, '查看') || '）', \
            CAST(NULL AS BIGINT), CAST(0 AS BIGINT) \
     FROM personal_data_reads) t \
     WHERE ($1 = '' OR t.category = $1) \
       AND ($2 = '' OR t.username = $2 OR t.actor = $2) \
       AND ($3 = '' OR t.at >= $3) \
       AND ($4 = '' OR t.at < $4)";

fn day_start(day: Option<NaiveDate>) -> String {
    day.map(|d| timestamp_text(china_midnight(d)))
        .unwrap_or_default()
}

/// The filter's bind values: category, username, from, to.
fn bounds(filter: &AuditFilter) -> Result<[String; 4], ApiError> {
    let category = filter.category.clone().unwrap_or_default();
    if !category.is_empty() && !CATEGORIES.iter().any(|(name, _)| *name == category) {
        return Err(ApiError::Unprocessable {
            message: format!(
                "没有审计类别 {category:?}；可选: {}",
                CATEGORIES.map(|(name, _)| name).join("、")
            ),
            field: Some("category".into()),
        });
    }
    let to = filter.to.and_then(|d| d.succ_opt());
    Ok([
        category,
        filter
            .username
            .clone()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        day_start(filter.from),
        day_start(to),
    ])
}

/// One page of the trail, newest first.
pub async fn page(store: &ReadStore, filter: &AuditFilter) -> Result<AuditPage, ApiError> {
    let per_page = filter.per_page.unwrap_or(100).clamp(1, MAX_PER_PAGE);
    let page = filter.page.unwrap_or(1).max(1);
    let offset = i64::from(page - 1) * i64::from(per_page);
    let [category, username, from, to] = bounds(filter)?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {FILTERED}")))
        .bind(&category)
        .bind(&username)
        .bind(&from)
        .bind(&to)
        .fetch_one(store.pool())
        .await
        .map_err(ApiError::internal)?;
    let records = records(
        store,
        [&category, &username, &from, &to],
        i64::from(per_page),
        offset,
    )
    .await?;
    Ok(AuditPage {
        records,
        total,
        page,
        per_page,
    })
}

/// Every record the filter matches (at most [`MAX_EXPORT_ROWS`]), newest first.
pub async fn all(store: &ReadStore, filter: &AuditFilter) -> Result<Vec<AuditRecord>, ApiError> {
    let [category, username, from, to] = bounds(filter)?;
    records(
        store,
        [&category, &username, &from, &to],
        i64::from(MAX_EXPORT_ROWS),
        0,
    )
    .await
}

async fn records(
    store: &ReadStore,
    [category, username, from, to]: [&String; 4],
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRecord>, ApiError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.at, t.category, t.event_type, t.username, t.actor, t.client_address, \
         t.detail, t.position {FILTERED} \
         ORDER BY t.at DESC, t.position DESC, t.event_index DESC LIMIT $5 OFFSET $6"
    )))
    .bind(category)
    .bind(username)
    .bind(from)
    .bind(to)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await
    .map_err(ApiError::internal)?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                at: row.try_get("at")?,
                category: row.try_get("category")?,
                event_type: row.try_get("event_type")?,
                username: row.try_get("username")?,
                actor: row.try_get("actor")?,
                client_address: row.try_get("client_address")?,
                detail: row.try_get("detail")?,
                position: row.try_get("position")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::internal)
}

/// The records as an export table (审计记录), times in China time.
pub fn table(records: &[AuditRecord]) -> zhzj_export::Table {
    let headers = [
        "时间",
        "类别",
        "事件",
        "账号",
        "操作人",
        "来源地址",
        "内容",
        "日志位置",
    ];
    zhzj_export::Table {
        name: "审计记录".into(),
        headers: headers.map(str::to_owned).to_vec(),
        rows: records
            .iter()
            .map(|r| {
                vec![
                    shown_time(&r.at).into(),
                    category_label(&r.category).into(),
                    r.event_type.clone().into(),
                    r.username.clone().into(),
                    r.actor.clone().into(),
                    r.client_address.clone().into(),
                    r.detail.clone().into(),
                    r.position
                        .map_or(zhzj_export::Cell::Empty, zhzj_export::Cell::Int),
                ]
            })
            .collect(),
    }
}

/// A stored RFC 3339 time as China time, `2026-12-03 15:04:05`.
pub fn shown_time(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_owned(),
        |t| {
            zhzj_store::china_time(t.with_timezone(&chrono::Utc))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}
