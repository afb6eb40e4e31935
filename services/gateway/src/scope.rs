//! What a signed-in user may read, as SQL over the checklist: the command service's rule of which
//! cases an actor reaches ([`CaseReach`]: their unit's subtree, the cases they own as a leader,
//! the cases their unit is responsible for as a coordinator, everything for the city
//! administrator), with the unit's subtree read from the directory. A case outside the scope is
//! answered 404 and counted nowhere.

use std::collections::{HashMap, VecDeque};
use zhzj_cases::access::CaseReach;

use sqlx::Row;

use crate::{ApiError, AppState, User};

/// The cases a user may read.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every case (the city administrator).
    All,
    /// Cases placed in these units, or owned by this leader.
    Within {
        /// The user's unit and every unit under it.
        units: Vec<String>,
        /// The leader the user is, when they hold the `leader` role.
        leader_id: Option<String>,
        /// The user's unit, when they are a coordinator: cases it is responsible for.
        responsible_unit: Option<String>,
    },
}

/// `root` and every unit under it, from the directory in the read store.
pub async fn subtree(state: &AppState, root: &str) -> Result<Vec<String>, ApiError> {
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for row in sqlx::query("SELECT unit_id, parent_id FROM org_units")
        .fetch_all(state.store().pool())
        .await?
    {
        let unit: String = row.try_get("unit_id")?;
        if let Some(parent) = row.try_get::<Option<String>, _>("parent_id")? {
            children.entry(parent).or_default().push(unit);
        }
    }
    let mut units = Vec::new();
    let mut queue = VecDeque::from([root.to_owned()]);
    while let Some(unit) = queue.pop_front() {
        if units.contains(&unit) {
            continue;
        }
        queue.extend(children.remove(&unit).unwrap_or_default());
        units.push(unit);
    }
    Ok(units)
}

/// The kind (`city`, `district`, `town`, `department`) of the unit `user` works in, if any.
pub async fn unit_kind(state: &AppState, user: &User) -> Result<Option<String>, ApiError> {
    let Some(unit) = &user.unit_id else {
        return Ok(None);
    };
    Ok(
        sqlx::query_scalar("SELECT kind FROM org_units WHERE unit_id = $1")
            .bind(unit)
            .fetch_optional(state.store().pool())
            .await?,
    )
}

impl Scope {
    /// The scope of `user`: the command service's [`CaseReach`] of the actor the user's commands
    /// carry, its area expanded to the units under it from the directory in the read store.
    pub async fn of(state: &AppState, user: &User) -> Result<Self, ApiError> {
        match CaseReach::of(&user.actor()) {
            CaseReach::Everywhere => Ok(Self::All),
            CaseReach::Within {
                area,
                leader_id,
                responsible_unit,
            } => Ok(Self::Within {
                units: match area {
                    Some(root) => subtree(state, &root).await?,
                    None => Vec::new(),
                },
                leader_id,
                responsible_unit,
            }),
        }
    }

    /// Whether a unit is in the scope (its cases, its meetings).
    pub fn covers_unit(&self, unit_id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Within { units, .. } => units.iter().any(|u| u == unit_id),
        }
    }

    /// The area part of the scope as a condition on the place columns of `alias`
    /// (`district_id`, `town_id`, a case in no town having `''` or null): what rows kept per
    /// place can be filtered on. None for [`Scope::All`], `1 = 0` for a scope with no area.
    pub fn area_condition(&self, alias: &str, binds: &mut Vec<String>) -> Option<String> {
        let Self::Within { units, .. } = self else {
            return None;
        };
        if units.is_empty() {
            return Some("1 = 0".to_owned());
        }
        let list = unit_list(units, binds);
        Some(format!(
            "({alias}.district_id IN ({list}) OR COALESCE({alias}.town_id, '') IN ({list}))"
        ))
    }

    /// The cases the scope reaches outside its area (a leader's own cases, the cases a
    /// coordinator's unit is responsible for), as a condition on the alias `c` of a table with
    /// the checklist's `case_id`, `district_id`, `town_id` and `leader_id`; none when there are
    /// none (no leader, no responsible unit, or [`Scope::All`]).
    pub fn beyond_area_condition(&self, binds: &mut Vec<String>) -> Option<String> {
        let Self::Within {
            leader_id,
            responsible_unit,
            ..
        } = self
        else {
            return None;
        };
        if leader_id.is_none() && responsible_unit.is_none() {
            return None;
        }
        let reach = self.reach_parts(binds, false).join(" OR ");
        let outside = self
            .area_condition("c", binds)
            .unwrap_or_else(|| "1 = 0".to_owned());
        Some(format!("({reach}) AND NOT ({outside})"))
    }

    /// The scope's parts as conditions on alias `c`: the area (when `with_area`), the leader's
    /// own cases, the responsible unit's cases.
    fn reach_parts(&self, binds: &mut Vec<String>, with_area: bool) -> Vec<String> {
        let Self::Within {
            units,
            leader_id,
            responsible_unit,
        } = self
        else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        if with_area && !units.is_empty() {
            let list = unit_list(units, binds);
            parts.push(format!(
                "c.district_id IN ({list}) OR c.town_id IN ({list})"
            ));
        }
        if let Some(leader) = leader_id {
            binds.push(leader.clone());
            parts.push(format!("c.leader_id = ${}", binds.len()));
        }
        if let Some(unit) = responsible_unit {
            binds.push(unit.clone());
            parts.push(format!(
                "c.case_id IN (SELECT u.case_id FROM case_units u WHERE u.unit_id = ${})",
                binds.len()
            ));
        }
        parts
    }

    /// A condition on the checklist alias `c`, with its values appended to `binds` (placeholders
    /// numbered after those already there); none for [`Scope::All`].
    pub fn condition(&self, binds: &mut Vec<String>) -> Option<String> {
        if matches!(self, Self::All) {
            return None;
        }
        let parts = self.reach_parts(binds, true);
        Some(if parts.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", parts.join(" OR "))
        })
    }
}

/// Placeholders for `units`, their values appended to `binds`.
fn unit_list(units: &[String], binds: &mut Vec<String>) -> String {
    let mut placeholders = Vec::with_capacity(units.len());
    for unit in units {
        binds.push(unit.clone());
        placeholders.push(format!("${}", binds.len()));
    }
    placeholders.join(", ")
}

/// Of `case_ids`, those `user` may read (all of them for the city administrator).
pub async fn readable_cases(
    state: &AppState,
    user: &User,
    case_ids: &[String],
) -> Result<std::collections::HashSet<String>, ApiError> {
    let scope = Scope::of(state, user).await?;
    if matches!(scope, Scope::All) || case_ids.is_empty() {
        return Ok(case_ids.iter().cloned().collect());
    }
    let mut binds: Vec<String> = case_ids.to_vec();
    let listed = (1..=binds.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut conditions = vec![format!("c.case_id IN ({listed})")];
    if let Some(condition) = scope.condition(&mut binds) {
        conditions.push(condition);
    }
    let sql = format!(
        "SELECT c.case_id FROM checklist_rows c WHERE {}",
        conditions.join(" AND ")
    );
    let mut select = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for value in binds {
        select = select.bind(value);
    }
    Ok(select
        .fetch_all(state.store().pool())
        .await?
        .into_iter()
        .collect())
}
