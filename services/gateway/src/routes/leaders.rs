//! `GET /api/v1/leaders`: the leader view (领导包案) — each leader's owned cases, their last
//! activity, activities per month, and the owned open cases with no activity for N days.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::extract::{CurrentUser, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// Default inactivity bound in days.
const DEFAULT_INACTIVE_DAYS: u32 = 30;

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
    /// Owned open cases with no activity by the leader for `inactive_days` (counted from
    /// registration when there was none).
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

/// One leader's owned cases, counted (`checklist_rows` by leader).
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
}

/// A leader's activities on one day (`leader_activities` by leader and day: the order of its
/// index, so the database counts without sorting; the days are folded into months here).
#[derive(Debug, sqlx::FromRow)]
struct DayActivity {
    leader_id: String,
    held_on: String,
    activities: i64,
}

/// The read-scope condition on the checklist alias `c` (with its binds after `binds`), as
/// `AND …`, or nothing for the city administrator.
fn and_in_scope(scope: &Scope, binds: &mut Vec<String>) -> String {
    scope
        .condition(binds)
        .map(|condition| format!(" AND {condition}"))
        .unwrap_or_default()
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

/// Whether an owned case is still open: not crossed off (a case the lifecycle view has not
/// reached yet is open).
const OPEN: &str = "COALESCE(l.stage, 'open') <> 'crossed_off'";

/// The owned cases the user may read, counted per leader.
async fn owned_counts(pool: &sqlx::AnyPool, scope: &Scope) -> Result<Vec<OwnedCount>, ApiError> {
    let mut binds = Vec::new();
    let condition = and_in_scope(scope, &mut binds);
    let sql = format!(
        "SELECT c.leader_id, COUNT(*) AS owned, \
         SUM(CASE WHEN {OPEN} THEN 1 ELSE 0 END) AS open \
         FROM checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL{condition} GROUP BY c.leader_id"
    );
    fetch_rows(pool, sql, binds).await
}

/// The owned open cases the user may read with no activity by their leader after `cutoff`
/// (counted from registration when there was none), in checklist order.
async fn idle_cases(
    pool: &sqlx::AnyPool,
    scope: &Scope,
    cutoff: &str,
) -> Result<Vec<IdleCase>, ApiError> {
    let mut binds = vec![cutoff.to_owned()];
    let condition = and_in_scope(scope, &mut binds);
    let sql = format!(
        "SELECT c.leader_id, c.case_id \
         FROM checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL AND {OPEN} \
         AND COALESCE((SELECT MAX(a.held_on) FROM leader_activities a \
                       WHERE a.leader_id = c.leader_id AND a.case_id = c.case_id), \
                      substr(c.registered_at, 1, 10)) < $1{condition} \
         ORDER BY c.registered_at, c.case_id"
    );
    fetch_rows(pool, sql, binds).await
}

/// The leaders' activities on the cases the user may read (all of them for the city
/// administrator), counted per leader and day.
async fn activities_by_day(
    pool: &sqlx::AnyPool,
    scope: &Scope,
) -> Result<Vec<DayActivity>, ApiError> {
    let mut binds = Vec::new();
    // The readable cases first, then their activities by the case index: joining every
    // activity to the checklist instead looks each one up (ten times slower at 200,000).
    let readable = match scope {
        Scope::All => String::new(),
        Scope::Within { .. } => format!(
            " WHERE a.case_id IN (SELECT c.case_id FROM checklist_rows c WHERE 1 = 1{})",
            and_in_scope(scope, &mut binds)
        ),
    };
    let sql = format!(
        "SELECT a.leader_id, a.held_on, COUNT(*) AS activities \
         FROM leader_activities a{readable} GROUP BY a.leader_id, a.held_on"
    );
    fetch_rows(pool, sql, binds).await
}

/// `GET /api/v1/leaders`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<LeadersQuery>,
) -> Result<Json<LeadersView>, ApiError> {
    let inactive_days = query.inactive_days.unwrap_or(DEFAULT_INACTIVE_DAYS);
    if !(1..=365).contains(&inactive_days) {
        return Err(ApiError::BadRequest {
            message: "inactive_days 须为 1 至 365".into(),
            field: Some("inactive_days".into()),
        });
    }
    let today = state.today();
    let cutoff = today
        .checked_sub_days(Days::new(u64::from(inactive_days)))
        .unwrap_or(NaiveDate::MIN)
        .to_string();
    let pool = state.store().pool();
    // Only the cases the user may read count.
    let scope = Scope::of(&state, &user).await?;
    let mut owned: HashMap<String, OwnedCount> = owned_counts(pool, &scope)
        .await?
        .into_iter()
        .map(|count| (count.leader_id.clone(), count))
        .collect();
    let mut idle: HashMap<String, Vec<String>> = HashMap::new();
    for case in idle_cases(pool, &scope, &cutoff).await? {
        idle.entry(case.leader_id).or_default().push(case.case_id);
    }
    let mut by_month: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
    let mut last_by_leader: HashMap<String, String> = HashMap::new();
    for day in activities_by_day(pool, &scope).await? {
        let month = day.held_on.get(..7).unwrap_or(&day.held_on).to_owned();
        let count = u32::try_from(day.activities).unwrap_or(u32::MAX);
        let months = by_month.entry(day.leader_id.clone()).or_default();
        let in_month = months.entry(month).or_default();
        *in_month = in_month.saturating_add(count);
        let latest = last_by_leader.entry(day.leader_id).or_default();
        if day.held_on > *latest {
            *latest = day.held_on;
        }
    }
    let mut leaders = Vec::new();
    for row in sqlx::query("SELECT leader_id, name, title, unit_id FROM org_leaders")
        .fetch_all(pool)
        .await?
    {
        let leader_id: String = row.try_get("leader_id")?;
        let unit_id: String = row.try_get("unit_id")?;
        let visible = match &scope {
            Scope::All => true,
            Scope::Within {
                units,
                leader_id: me,
                ..
            } => units.contains(&unit_id) || me.as_ref() == Some(&leader_id),
        };
        if !visible {
            continue;
        }
        let counts = owned.remove(&leader_id);
        let count = |n: Option<i64>| usize::try_from(n.unwrap_or(0)).unwrap_or(0);
        leaders.push(LeaderFigures {
            owned_cases: count(counts.as_ref().map(|c| c.owned)),
            open_cases: count(counts.as_ref().map(|c| c.open)),
            last_activity_on: last_by_leader.remove(&leader_id),
            activities_by_month: by_month.remove(&leader_id).unwrap_or_default(),
            idle_cases: idle.remove(&leader_id).unwrap_or_default(),
            name: row.try_get("name")?,
            title: row.try_get("title")?,
            unit_id,
            leader_id,
        });
    }
    leaders.sort_by(|a, b| {
        b.idle_cases
            .len()
            .cmp(&a.idle_cases.len())
            .then_with(|| a.leader_id.cmp(&b.leader_id))
    });
    Ok(Json(LeadersView {
        today: today.to_string(),
        inactive_days,
        leaders,
    }))
}
