//! `/api/v1/warnings` (预警: the conditions the warning service found, open or cleared, in the
//! user's scope), `/api/v1/inbox` (站内消息: the user's own messages, read and unread) and
//! `/api/v1/notifications/deliveries` (what was sent by mail and robots, or why not; for the
//! administrator).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// An early warning.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WarningItem {
    /// Names the condition (rule, subject, due date).
    pub warning_key: String,
    /// The rule's code (`deadline_soon`, `deadline_missed`, `leader_idle`, `relapse`,
    /// `town_surge`, `order_due_soon`, `order_overdue`).
    pub rule: String,
    /// The rule's name.
    pub rule_label: String,
    /// The case it is about.
    pub case_id: Option<String>,
    /// The supervision order it is about.
    pub order_id: Option<String>,
    /// The unit it concerns.
    pub unit_id: Option<String>,
    /// What it says.
    pub title: String,
    /// When it fired.
    pub fired_at: String,
    /// When it cleared (the condition ended); none while open.
    pub cleared_at: Option<String>,
}

/// Filters of the warnings.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarningQuery {
    /// `open` (default), `cleared` or `all`.
    pub state: Option<String>,
    /// One rule.
    pub rule: Option<String>,
    /// A unit and the units under it.
    pub unit_id: Option<String>,
    /// One case.
    pub case_id: Option<uuid::Uuid>,
    /// Page, from 1 (default 1).
    pub page: Option<u32>,
    /// Rows per page, at most 500 (default 100).
    pub per_page: Option<u32>,
}

/// The warnings and how many are open.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WarningList {
    /// Open warnings in the user's scope (whatever the filters).
    pub open_count: usize,
    /// How many warnings the filters select.
    pub total: usize,
    /// The page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The page of warnings the filters select, latest first.
    pub rows: Vec<WarningItem>,
}

/// The warnings joined to their order, as the lists and counts read them.
const WARNINGS_FROM: &str =
    "FROM warnings w LEFT JOIN supervision_orders o ON o.order_id = w.order_id";

/// The warnings a user sees — about a unit their scope covers, an order issued by one, or a case
/// they own as its leader — as an SQL condition with its values; none when they see none.
fn visible_warnings(scope: &Scope, user: &crate::User) -> Option<(String, Vec<String>)> {
    let Scope::Within { units, .. } = scope else {
        return Some(("1 = 1".to_owned(), Vec::new()));
    };
    let mut binds: Vec<String> = units.clone();
    let mut parts = Vec::new();
    if !units.is_empty() {
        let list = (1..=units.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "w.unit_id IN ({list}) OR o.issuer_unit_id IN ({list})"
        ));
    }
    if let Some(leader) = &user.leader_id {
        binds.push(leader.clone());
        parts.push(format!("w.leader_id = ${}", binds.len()));
    }
    (!parts.is_empty()).then(|| (format!("({})", parts.join(" OR ")), binds))
}

/// How many warnings match `condition`.
async fn count_warnings(
    state: &AppState,
    condition: &str,
    binds: &[String],
) -> Result<usize, ApiError> {
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) {WARNINGS_FROM} WHERE {condition}"
    )));
    for bind in binds {
        query = query.bind(bind);
    }
    Ok(usize::try_from(query.fetch_one(state.store().pool()).await?).unwrap_or(0))
}

/// How many open warnings the user's scope holds, counted in SQL (the header of every page).
pub(crate) async fn open_warning_count(
    state: &AppState,
    user: &crate::User,
) -> Result<usize, ApiError> {
    let scope = Scope::of(state, user).await?;
    let Some((visible, binds)) = visible_warnings(&scope, user) else {
        return Ok(0);
    };
    count_warnings(
        state,
        &format!("{visible} AND w.cleared_at IS NULL"),
        &binds,
    )
    .await
}

/// The warnings in the user's scope the query selects, a page of them, filtered, counted and
/// paged in SQL.
pub(crate) async fn warnings(
    state: &AppState,
    user: &crate::User,
    scope: &Scope,
    query: &WarningQuery,
) -> Result<WarningList, ApiError> {
    let wanted_state = query.state.as_deref().unwrap_or("open");
    let state_condition = match wanted_state {
        "open" => Some("w.cleared_at IS NULL"),
        "cleared" => Some("w.cleared_at IS NOT NULL"),
        "all" => None,
        _ => {
            return Err(ApiError::BadRequest {
                message: format!("未知的预警状态 `{wanted_state}`（open、cleared、all）"),
                field: Some("state".into()),
            });
        }
    };
    if let Some(rule) = &query.rule
        && !zhzj_supervision::warnings::RULES
            .iter()
            .any(|(code, _)| code == rule)
    {
        return Err(ApiError::BadRequest {
            message: format!("未知的预警规则 `{rule}`"),
            field: Some("rule".into()),
        });
    }
    let per_page = query.per_page.unwrap_or(100).clamp(1, 500);
    let page = query.page.unwrap_or(1).max(1);
    let Some((visible, mut binds)) = visible_warnings(scope, user) else {
        return Ok(WarningList {
            open_count: 0,
            total: 0,
            page,
            per_page,
            rows: Vec::new(),
        });
    };
    let open_count = count_warnings(
        state,
        &format!("{visible} AND w.cleared_at IS NULL"),
        &binds,
    )
    .await?;
    let mut conditions = vec![visible];
    conditions.extend(state_condition.map(str::to_owned));
    for (column, value) in [
        ("w.rule", query.rule.clone()),
        ("w.case_id", query.case_id.map(|id| id.to_string())),
    ] {
        if let Some(value) = value {
            binds.push(value);
            conditions.push(format!("{column} = ${}", binds.len()));
        }
    }
    // A unit and the units under it: a district's warnings are mostly its towns' cases.
    if let Some(unit) = &query.unit_id {
        let units = crate::scope::subtree(state, unit).await?;
        let mut placeholders = Vec::with_capacity(units.len());
        for unit in units {
            binds.push(unit);
            placeholders.push(format!("${}", binds.len()));
        }
        conditions.push(format!("w.unit_id IN ({})", placeholders.join(", ")));
    }
    let condition = conditions.join(" AND ");
    let total = count_warnings(state, &condition, &binds).await?;
    let offset = u64::from(page - 1) * u64::from(per_page);
    let mut select = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT w.warning_key, w.rule, w.case_id, w.order_id, w.unit_id, w.title, w.fired_at, \
         w.cleared_at {WARNINGS_FROM} WHERE {condition} \
         ORDER BY w.fired_at DESC, w.warning_key LIMIT {per_page} OFFSET {offset}"
    )));
    for bind in &binds {
        select = select.bind(bind);
    }
    let mut rows = Vec::new();
    for row in select.fetch_all(state.store().pool()).await? {
        let rule: String = row.try_get("rule")?;
        rows.push(WarningItem {
            warning_key: row.try_get("warning_key")?,
            rule_label: zhzj_supervision::warnings::rule_label(&rule).to_owned(),
            rule,
            case_id: row.try_get("case_id")?,
            order_id: row.try_get("order_id")?,
            unit_id: row.try_get("unit_id")?,
            title: row.try_get("title")?,
            fired_at: row.try_get("fired_at")?,
            cleared_at: row.try_get("cleared_at")?,
        });
    }
    Ok(WarningList {
        open_count,
        total,
        page,
        per_page,
        rows,
    })
}

/// `GET /api/v1/warnings`: early warnings, filtered.
pub async fn list_warnings(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<WarningQuery>,
) -> Result<Json<WarningList>, ApiError> {
    let scope = Scope::of(&state, &user).await?;
    Ok(Json(warnings(&state, &user, &scope, &query).await?))
}

/// A message of the inbox.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InboxMessage {
    /// Message id.
    pub message_id: String,
    /// `warning`, `supervision` or `digest`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// The page it is about.
    pub link: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When the user read it; none while unread.
    pub read_at: Option<String>,
}

/// `?unread=true`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Only unread messages.
    pub unread: Option<bool>,
}

/// The user's inbox.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Inbox {
    /// Unread messages.
    pub unread_count: i64,
    /// The messages, latest first (at most 500).
    pub messages: Vec<InboxMessage>,
}

/// How many messages of `user` are unread.
pub(crate) async fn inbox_unread(state: &AppState, user: &crate::User) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbox_messages WHERE username = $1 AND read_at IS NULL",
    )
    .bind(&user.username)
    .fetch_one(state.store().pool())
    .await?)
}

/// The inbox of `user`.
pub(crate) async fn inbox(
    state: &AppState,
    user: &crate::User,
    unread_only: bool,
) -> Result<Inbox, ApiError> {
    let unread_count = inbox_unread(state, user).await?;
    let filter = if unread_only {
        " AND read_at IS NULL"
    } else {
        ""
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT message_id, kind, title, body, link, created_at, read_at FROM inbox_messages \
         WHERE username = $1{filter} ORDER BY created_at DESC, message_id LIMIT 500"
    )))
    .bind(&user.username)
    .fetch_all(state.store().pool())
    .await?;
    let messages = rows
        .iter()
        .map(|row| {
            Ok(InboxMessage {
                message_id: row.try_get("message_id")?,
                kind: row.try_get("kind")?,
                title: row.try_get("title")?,
                body: row.try_get("body")?,
                link: row.try_get("link")?,
                created_at: row.try_get("created_at")?,
                read_at: row.try_get("read_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Inbox {
        unread_count,
        messages,
    })
}

/// `GET /api/v1/inbox`: the signed-in user's messages.
pub async fn show_inbox(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<InboxQuery>,
) -> Result<Json<Inbox>, ApiError> {
    Ok(Json(
        inbox(&state, &user, query.unread.unwrap_or(false)).await?,
    ))
}

/// An empty body.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

/// How many messages a request marked read.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MarkedRead {
    /// Messages marked read now.
    pub marked: u64,
}

/// Marks the user's message `id` (or, for `None`, all of them) read.
pub(crate) async fn mark_read(
    state: &AppState,
    user: &crate::User,
    id: Option<&str>,
) -> Result<u64, ApiError> {
    let now = zhzj_store::sql::timestamp_text(state.now());
    let mut tx = state.store().begin_write().await?;
    let done =
        match id {
            Some(id) => sqlx::query(
                "UPDATE inbox_messages SET read_at = $1 WHERE username = $2 AND message_id = $3 \
                 AND read_at IS NULL",
            )
            .bind(&now)
            .bind(&user.username)
            .bind(id)
            .execute(&mut *tx)
            .await?,
            None => sqlx::query(
                "UPDATE inbox_messages SET read_at = $1 WHERE username = $2 AND read_at IS NULL",
            )
            .bind(&now)
            .bind(&user.username)
            .execute(&mut *tx)
            .await?,
        };
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// `POST /api/v1/inbox/{id}/read`: marks one message read (404 when it is not the user's).
pub async fn read_message(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    JsonBody(NoBody {}): JsonBody<NoBody>,
) -> Result<Json<MarkedRead>, ApiError> {
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT message_id FROM inbox_messages WHERE username = $1 AND message_id = $2",
    )
    .bind(&user.username)
    .bind(&id)
    .fetch_optional(state.store().pool())
    .await?;
    if exists.is_none() {
        return Err(ApiError::not_found(format!("消息 {id} 不存在")));
    }
    Ok(Json(MarkedRead {
        marked: mark_read(&state, &user, Some(&id)).await?,
    }))
}

/// `POST /api/v1/inbox/read-all`: marks every message of the user read.
pub async fn read_all(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(NoBody {}): JsonBody<NoBody>,
) -> Result<Json<MarkedRead>, ApiError> {
    Ok(Json(MarkedRead {
        marked: mark_read(&state, &user, None).await?,
    }))
}

/// A delivery on an outbound channel.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DeliveryItem {
    /// Delivery id.
    pub delivery_id: String,
    /// The channel (`<unit>#<n>`).
    pub channel: String,
    /// `email`, `wecom` or `dingtalk`.
    pub kind: String,
    /// Where (addresses, or the webhook without its key).
    pub target: String,
    /// Its title.
    pub title: String,
    /// `pending` (to be tried, or retried), `sent` or `failed` (given up).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is tried next (while pending).
    pub next_attempt_at: String,
    /// When it was sent.
    pub sent_at: Option<String>,
}

/// `GET /api/v1/notifications/deliveries`: every delivery, latest first (administrators).
pub async fn deliveries(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<DeliveryItem>>, ApiError> {
    if !user.has_role(zhzj_proto::accounts::Role::Admin) {
        return Err(ApiError::Forbidden(
            "只有系统管理员可以查看消息推送记录".into(),
        ));
    }
    let rows = sqlx::query(
        "SELECT delivery_id, channel, kind, target, title, status, attempts, last_error, \
         next_attempt_at, sent_at FROM notification_deliveries \
         ORDER BY created_at DESC, delivery_id LIMIT 1000",
    )
    .fetch_all(state.store().pool())
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(DeliveryItem {
                delivery_id: row.try_get("delivery_id")?,
                channel: row.try_get("channel")?,
                kind: row.try_get("kind")?,
                target: row.try_get("target")?,
                title: row.try_get("title")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                sent_at: row.try_get("sent_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(items))
}
