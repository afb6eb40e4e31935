//! `GET /api/v1/leaders`: the leader view (领导包案) — each leader's owned cases, their last
//! activity, activities per month, and the owned open cases with no activity for N days.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::extract::{CurrentUser, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// Default inactivity bound in days.
const DEFAULT_INACTIVE_DAYS: u32 = 30;

/// Idle cases listed with each leader at most; all of them come page by page from
/// `GET /leaders/{leader_id}/idle_cases`.
pub const IDLE_LISTED: usize = 20;

/// Idle cases on one page of `GET /leaders/{leader_id}/idle_cases` at most.
const MAX_IDLE_PER_PAGE: u32 = 500;

/// The inactivity bound.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadersQuery {
    /// Flag owned open cases with no activity for this many days (1–365, default 30).
    pub inactive_days: Option<u32>,
}

/// One leader's figures.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LeaderFigures {
    /// Leader id.
    pub leader_id: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// The leader's unit.
    pub unit_id: String,
    /// Cases the leader owns.
    pub owned_cases: usize,
    /// Of them, not crossed off.
    pub open_cases: usize,
    /// The leader's last logged activity on any case.
    pub last_activity_on: Option<String>,
    /// Activities per month (`YYYY-MM` → count).
    pub activities_by_month: BTreeMap<String, u32>,
    /// How many owned open cases have had no activity by the leader for `inactive_days`
    /// (counted from registration when there was none).
    pub idle_case_count: usize,
    /// The first 20 of them in checklist order; all of them page by page from
    /// `GET /leaders/{leader_id}/idle_cases`.
    pub idle_cases: Vec<String>,
}

/// The leader view.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LeadersView {
    /// Today (China), the day inactivity is counted to.
    pub today: String,
    /// The inactivity bound used.
    pub inactive_days: u32,
    /// Every leader, most idle cases first.
    pub leaders: Vec<LeaderFigures>,
}

/// One leader's owned cases, counted.
#[derive(Debug, sqlx::FromRow)]
struct OwnedCount {
    leader_id: String,
    owned: i64,
    open: i64,
}

/// An owned open case with no activity by its leader since the cutoff.
#[derive(Debug, sqlx::FromRow)]
struct IdleCase {
    leader_id: String,
    case_id: String,
    registered_at: String,
}

/// A leader's activities in one month.
#[derive(Debug, sqlx::FromRow)]
struct MonthActivity {
    leader_id: String,
    month: String,
    activities: i64,
    last_on: String,
}

/// Runs a query whose text ends in binds appended to `binds` and reads its rows as `T`.
async fn fetch_rows<T>(
    pool: &sqlx::AnyPool,
    sql: String,
    binds: Vec<String>,
) -> Result<Vec<T>, ApiError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut query = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    Ok(query.fetch_all(pool).await?)
}

/// `WHERE` the scope's area on the place rows `p` (nothing for the city administrator), with
/// its binds.
fn in_area(scope: &Scope) -> (String, Vec<String>) {
    let mut binds = Vec::new();
    let filter = scope
        .area_condition("p", &mut binds)
        .map(|area| format!(" WHERE {area}"))
        .unwrap_or_default();
    (filter, binds)
}

/// The owned cases the user may read, counted per leader: the place rows of their area, and
/// the cases they reach beyond it one by one.
async fn owned_counts(pool: &sqlx::AnyPool, scope: &Scope) -> Result<Vec<OwnedCount>, ApiError> {
    let (filter, binds) = in_area(scope);
    let mut counts: Vec<OwnedCount> = fetch_rows(
        pool,
        format!(
            "SELECT p.leader_id, CAST(SUM(p.owned) AS BIGINT) AS owned, \
             CAST(SUM(p.open) AS BIGINT) AS open \
             FROM leader_place_cases p{filter} GROUP BY p.leader_id"
        ),
        binds,
    )
    .await?;
    let mut binds = Vec::new();
    if let Some(beyond) = scope.beyond_area_condition(&mut binds) {
        let sql = format!(
            "SELECT c.leader_id, COUNT(*) AS owned, CAST(SUM(c.open) AS BIGINT) AS open \
             FROM leader_case_state c WHERE c.leader_id IS NOT NULL AND {beyond} \
             GROUP BY c.leader_id"
        );
        counts.extend(fetch_rows::<OwnedCount>(pool, sql, binds).await?);
    }
    Ok(counts)
}

/// `AND` the read scope on the case rows `c` (nothing for the city administrator), its binds
/// appended after `binds`.
fn and_in_scope(scope: &Scope, binds: &mut Vec<String>) -> String {
    scope
        .condition(binds)
        .map(|condition| format!(" AND {condition}"))
        .unwrap_or_default()
}

/// The owned open cases the user may read with no activity by their leader after `cutoff`
/// (counted from registration when there was none), per leader in checklist order: read by
/// the `idle_since` index alone (counting or ranking them in SQL per leader had the planner walk
/// the leader index over every case instead, 0.2 s at 100,000 cases with none idle).
async fn idle_cases(
    pool: &sqlx::AnyPool,
    scope: &Scope,
    cutoff: &str,
) -> Result<HashMap<String, Vec<IdleCase>>, ApiError> {
    let mut binds = vec![cutoff.to_owned()];
    let condition = and_in_scope(scope, &mut binds);
    let sql = format!(
        "SELECT c.leader_id, c.case_id, c.registered_at FROM leader_case_state c \
         WHERE c.idle_since < $1{condition}"
    );
    let mut by_leader: HashMap<String, Vec<IdleCase>> = HashMap::new();
    for case in fetch_rows::<IdleCase>(pool, sql, binds).await? {
        by_leader
            .entry(case.leader_id.clone())
            .or_default()
            .push(case);
    }
    for cases in by_leader.values_mut() {
        cases.sort_unstable_by(|a, b| {
            (&a.registered_at, &a.case_id).cmp(&(&b.registered_at, &b.case_id))
        });
    }
    Ok(by_leader)
}

/// The leaders' activities on the cases the user may read, per leader and month: the place
/// rows of their area, and the activities on the cases they reach beyond it one by one.
async fn activities_by_month(
    pool: &sqlx::AnyPool,
    scope: &Scope,
) -> Result<Vec<MonthActivity>, ApiError> {
    let (filter, binds) = in_area(scope);
    let mut months: Vec<MonthActivity> = fetch_rows(
        pool,
        format!(
            "SELECT p.leader_id, p.month, CAST(SUM(p.activities) AS BIGINT) AS activities, \
             MAX(p.last_on) AS last_on \
             FROM leader_place_months p{filter} GROUP BY p.leader_id, p.month"
        ),
        binds,
    )
    .await?;
    let mut binds = Vec::new();
    if let Some(beyond) = scope.beyond_area_condition(&mut binds) {
        let sql = format!(
            "SELECT a.leader_id, substr(a.held_on, 1, 7) AS month, COUNT(*) AS activities, \
             MAX(a.held_on) AS last_on FROM leader_activities a \
             WHERE a.case_id IN (SELECT c.case_id FROM leader_case_state c WHERE {beyond}) \
             GROUP BY a.leader_id, substr(a.held_on, 1, 7)"
        );
        months.extend(fetch_rows::<MonthActivity>(pool, sql, binds).await?);
    }
    Ok(months)
}

/// The inactivity bound asked for, or the default; 1 to 365 days.
fn inactive_days(asked: Option<u32>) -> Result<u32, ApiError> {
    let days = asked.unwrap_or(DEFAULT_INACTIVE_DAYS);
    if !(1..=365).contains(&days) {
        return Err(ApiError::BadRequest {
            message: "inactive_days 须为 1 至 365".into(),
            field: Some("inactive_days".into()),
        });
    }
    Ok(days)
}

/// The day before which an owned open case's last work makes it idle.
fn cutoff(today: NaiveDate, inactive_days: u32) -> String {
    today
        .checked_sub_days(Days::new(u64::from(inactive_days)))
        .unwrap_or(NaiveDate::MIN)
        .to_string()
}

/// `GET /api/v1/leaders`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<LeadersQuery>,
) -> Result<Json<LeadersView>, ApiError> {
    let inactive_days = inactive_days(query.inactive_days)?;
    // Only the cases the user may read count.
    let scope = Scope::of(&state, &user).await?;
    let view = leader_view(state.store().pool(), &scope, state.today(), inactive_days).await?;
    Ok(Json(view))
}

/// The leader view of the cases `scope` reaches, with inactivity counted to `today`.
pub async fn leader_view(
    pool: &sqlx::AnyPool,
    scope: &Scope,
    today: NaiveDate,
    inactive_days: u32,
) -> Result<LeadersView, ApiError> {
    let cutoff = cutoff(today, inactive_days);
    let mut owned: HashMap<String, (i64, i64)> = HashMap::new();
    for count in owned_counts(pool, scope).await? {
        let sums = owned.entry(count.leader_id).or_default();
        sums.0 += count.owned;
        sums.1 += count.open;
    }
    let mut idle = idle_cases(pool, scope, &cutoff).await?;
    let mut by_month: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
    let mut last_by_leader: HashMap<String, String> = HashMap::new();
    for month in activities_by_month(pool, scope).await? {
        let count = u32::try_from(month.activities).unwrap_or(u32::MAX);
        let in_month = by_month
            .entry(month.leader_id.clone())
            .or_default()
            .entry(month.month)
            .or_default();
        *in_month = in_month.saturating_add(count);
        let latest = last_by_leader.entry(month.leader_id).or_default();
        if month.last_on > *latest {
            *latest = month.last_on;
        }
    }
    let mut leaders = Vec::new();
    for row in sqlx::query("SELECT leader_id, name, title, unit_id FROM org_leaders")
        .fetch_all(pool)
        .await?
    {
        let leader_id: String = row.try_get("leader_id")?;
        let unit_id: String = row.try_get("unit_id")?;
        if !sees_leader(scope, &leader_id, &unit_id) {
            continue;
        }
        let (owned_cases, open_cases) = owned.remove(&leader_id).unwrap_or_default();
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        leaders.push(LeaderFigures {
            owned_cases: count(owned_cases),
            open_cases: count(open_cases),
            last_activity_on: last_by_leader.remove(&leader_id),
            activities_by_month: by_month.remove(&leader_id).unwrap_or_default(),
            idle_case_count: idle.get(&leader_id).map_or(0, Vec::len),
            idle_cases: idle
                .remove(&leader_id)
                .unwrap_or_default()
                .into_iter()
                .take(IDLE_LISTED)
                .map(|case| case.case_id)
                .collect(),
            name: row.try_get("name")?,
            title: row.try_get("title")?,
            unit_id,
            leader_id,
        });
    }
    leaders.sort_by(|a, b| {
        b.idle_case_count
            .cmp(&a.idle_case_count)
            .then_with(|| a.leader_id.cmp(&b.leader_id))
    });
    Ok(LeadersView {
        today: today.to_string(),
        inactive_days,
        leaders,
    })
}

/// Whether a reader of `scope` sees the leader `leader_id` of `unit_id`: the leaders of their
/// area, and themselves.
fn sees_leader(scope: &Scope, leader_id: &str, unit_id: &str) -> bool {
    match scope {
        Scope::All => true,
        Scope::Within {
            units,
            leader_id: me,
            ..
        } => units.iter().any(|u| u == unit_id) || me.as_deref() == Some(leader_id),
    }
}

/// `?inactive_days=&page=&per_page=` of `GET /leaders/{leader_id}/idle_cases`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdleCasesQuery {
    /// Idle for this many days (1–365, default 30).
    pub inactive_days: Option<u32>,
    /// The page, from 1 (default 1).
    pub page: Option<u32>,
    /// Cases per page (1–500, default 100).
    pub per_page: Option<u32>,
}

/// One page of a leader's idle cases.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IdleCasesPage {
    /// The leader.
    pub leader_id: String,
    /// Today (China), the day inactivity is counted to.
    pub today: String,
    /// The inactivity bound used.
    pub inactive_days: u32,
    /// How many idle cases the leader has among those the reader may read.
    pub total: usize,
    /// This page, from 1.
    pub page: u32,
    /// Cases per page.
    pub per_page: u32,
    /// This page's cases, in checklist order.
    pub case_ids: Vec<String>,
}

/// `GET /api/v1/leaders/{leader_id}/idle_cases`: every idle case of one leader, page by page
/// (the leader view lists the first 20).
pub async fn idle_cases_of(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(leader_id): Path<String>,
    QueryParams(query): QueryParams<IdleCasesQuery>,
) -> Result<Json<IdleCasesPage>, ApiError> {
    let inactive_days = inactive_days(query.inactive_days)?;
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(100).clamp(1, MAX_IDLE_PER_PAGE);
    let scope = Scope::of(&state, &user).await?;
    let pool = state.store().pool();
    let unit: Option<String> =
        sqlx::query_scalar("SELECT unit_id FROM org_leaders WHERE leader_id = $1")
            .bind(&leader_id)
            .fetch_optional(pool)
            .await?;
    // A leader the reader does not see is no leader to them.
    if !unit.is_some_and(|unit| sees_leader(&scope, &leader_id, &unit)) {
        return Err(ApiError::not_found("没有这位包案领导"));
    }
    let today = state.today();
    let mut binds = vec![cutoff(today, inactive_days), leader_id.clone()];
    let condition = and_in_scope(&scope, &mut binds);
    let filter = format!("c.idle_since < $1 AND c.leader_id = $2{condition}");
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM leader_case_state c WHERE {filter}"
    )));
    for value in &binds {
        count = count.bind(value.clone());
    }
    let total = usize::try_from(count.fetch_one(pool).await?).unwrap_or(0);
    let offset = u64::from(page - 1) * u64::from(per_page);
    let mut listed = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "SELECT c.case_id FROM leader_case_state c WHERE {filter} \
         ORDER BY c.registered_at, c.case_id LIMIT {per_page} OFFSET {offset}"
    )));
    for value in binds {
        listed = listed.bind(value);
    }
    Ok(Json(IdleCasesPage {
        leader_id,
        today: today.to_string(),
        inactive_days,
        total,
        page,
        per_page,
        case_ids: listed.fetch_all(pool).await?,
    }))
}
