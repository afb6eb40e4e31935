//! `GET /api/v1/leaders`: the leader view (领导包案) — each leader's owned cases, their last
//! activity, activities per month, and the owned open cases with no activity for N days.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// An owned case.
struct OwnedCase {
    case_id: String,
    leader_id: String,
    registered_on: String,
    open: bool,
}

/// The owned cases the user may read.
async fn owned_cases(pool: &sqlx::AnyPool, scope: &Scope) -> Result<Vec<OwnedCase>, ApiError> {
    let mut binds = Vec::new();
    let condition = scope
        .condition(&mut binds)
        .map(|c| format!(" AND {c}"))
        .unwrap_or_default();
    let mut owned_query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.case_id, c.leader_id, substr(c.registered_at, 1, 10) AS registered_on, \
         COALESCE(l.stage, 'open') AS stage \
         FROM checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL{condition}"
    )));
    for value in binds {
        owned_query = owned_query.bind(value);
    }
    let owned = owned_query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(OwnedCase {
                case_id: row.try_get("case_id")?,
                leader_id: row.try_get("leader_id")?,
                registered_on: row.try_get("registered_on")?,
                open: row.try_get::<String, _>("stage")? != "crossed_off",
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(owned)
}

/// The cases the user may read, when that is not all of them: activities count only on these.
async fn readable_cases(
    pool: &sqlx::AnyPool,
    scope: &Scope,
) -> Result<Option<HashSet<String>>, ApiError> {
    match scope {
        Scope::All => Ok(None),
        Scope::Within { .. } => {
            let mut binds = Vec::new();
            let condition = scope
                .condition(&mut binds)
                .unwrap_or_else(|| "1 = 1".into());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT c.case_id FROM checklist_rows c WHERE {condition}"
            )));
            for value in binds {
                query = query.bind(value);
            }
            let mut ids = HashSet::new();
            for row in query.fetch_all(pool).await? {
                ids.insert(row.try_get::<String, _>("case_id")?);
            }
            Ok(Some(ids))
        }
    }
}

/// The leaders' activities, counted.
#[derive(Debug, Default)]
struct ActivityFigures {
    /// The last activity per (leader, case).
    last_on_case: HashMap<(String, String), String>,
    /// Activities per leader and month.
    by_month: HashMap<String, BTreeMap<String, u32>>,
    /// The last activity per leader.
    last_by_leader: HashMap<String, String>,
}

/// Counts the activities on the `readable` cases (all when None).
async fn activity_figures(
    pool: &sqlx::AnyPool,
    readable: Option<&HashSet<String>>,
) -> Result<ActivityFigures, ApiError> {
    let mut figures = ActivityFigures::default();
    for row in sqlx::query("SELECT case_id, leader_id, held_on FROM leader_activities")
        .fetch_all(pool)
        .await?
    {
        let case_id: String = row.try_get("case_id")?;
        if readable.is_some_and(|ids| !ids.contains(&case_id)) {
            continue;
        }
        let leader_id: String = row.try_get("leader_id")?;
        let held_on: String = row.try_get("held_on")?;
        let month = held_on.get(..7).unwrap_or(&held_on).to_owned();
        *figures
            .by_month
            .entry(leader_id.clone())
            .or_default()
            .entry(month)
            .or_default() += 1;
        let latest = figures.last_by_leader.entry(leader_id.clone()).or_default();
        if held_on > *latest {
            latest.clone_from(&held_on);
        }
        let on_case = figures
            .last_on_case
            .entry((leader_id, case_id))
            .or_default();
        if held_on > *on_case {
            *on_case = held_on;
        }
    }
    Ok(figures)
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
    let owned = owned_cases(pool, &scope).await?;
    let readable = readable_cases(pool, &scope).await?;
    let ActivityFigures {
        last_on_case,
        mut by_month,
        last_by_leader,
    } = activity_figures(pool, readable.as_ref()).await?;
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
        let mine: Vec<&OwnedCase> = owned.iter().filter(|c| c.leader_id == leader_id).collect();
        let idle_cases = mine
            .iter()
            .filter(|c| c.open)
            .filter(|c| {
                let last = last_on_case
                    .get(&(leader_id.clone(), c.case_id.clone()))
                    .unwrap_or(&c.registered_on);
                *last < cutoff
            })
            .map(|c| c.case_id.clone())
            .collect();
        leaders.push(LeaderFigures {
            owned_cases: mine.len(),
            open_cases: mine.iter().filter(|c| c.open).count(),
            last_activity_on: last_by_leader.get(&leader_id).cloned(),
            activities_by_month: by_month.remove(&leader_id).unwrap_or_default(),
            idle_cases,
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
