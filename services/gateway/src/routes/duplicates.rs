//! Possible duplicates of a registration (重复信访): a new petition by the same person on the same
//! matter belongs on the existing case, not on a new one. The rule is configurable: the same
//! petitioner ID number, or (by default) also the same name in the same town and category.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::extract::{CurrentUser, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState, User};

/// How a registration is matched against existing cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateRule {
    /// The same petitioner ID number only.
    IdNumber,
    /// The same ID number, or the same petitioner name in the same town and category.
    #[default]
    IdNumberOrNameTownCategory,
}

/// A petitioner to check.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateQuery {
    /// Petitioner ID number.
    pub id_number: Option<String>,
    /// Petitioner name.
    pub name: Option<String>,
    /// Town or street unit id.
    pub town: Option<String>,
    /// Subject category.
    pub category: Option<String>,
}

/// An existing case the registration may duplicate.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidate {
    /// The existing case.
    pub case_id: String,
    /// Its number.
    pub case_number: String,
    /// Its matter.
    pub matter: String,
    /// The petitioner on it who matched.
    pub petitioner: String,
    /// `id_number` or `name_town_category`.
    pub matched_by: String,
}

/// The existing cases in the user's scope that `query` matches under the configured rule.
pub async fn find(
    state: &AppState,
    user: &User,
    query: &DuplicateQuery,
) -> Result<Vec<DuplicateCandidate>, ApiError> {
    let mut binds: Vec<String> = Vec::new();
    let mut matches = Vec::new();
    if let Some(id) = query.id_number.as_deref().filter(|s| !s.is_empty()) {
        binds.push(id.to_owned());
        matches.push(format!("p.id_number = ${}", binds.len()));
    }
    let by_name = state.config().duplicate_rule == DuplicateRule::IdNumberOrNameTownCategory;
    if by_name
        && let (Some(name), Some(town), Some(category)) =
            (&query.name, &query.town, &query.category)
    {
        let first = binds.len() + 1;
        // Names are stored in their normal form; "庄　辉珠" asks for "庄辉珠".
        binds.extend([
            zhzj_proto::names::normalize_name(name),
            town.clone(),
            category.clone(),
        ]);
        matches.push(format!(
            "(p.name = ${first} AND p.town_id = ${} AND p.category = ${})",
            first + 1,
            first + 2
        ));
    }
    if matches.is_empty() {
        return Ok(Vec::new());
    }
    let id_match = if query.id_number.as_deref().is_some_and(|s| !s.is_empty()) {
        "CASE WHEN p.id_number = $1 THEN 'id_number' ELSE 'name_town_category' END"
    } else {
        "'name_town_category'"
    };
    let mut conditions = vec![format!("({})", matches.join(" OR "))];
    if let Some(scope) = Scope::of(state, user).await?.condition(&mut binds) {
        conditions.push(scope);
    }
    let sql = format!(
        "SELECT c.case_id, c.case_number, c.matter, p.name, {id_match} AS matched_by \
         FROM case_petitioners p JOIN checklist_rows c ON c.case_id = p.case_id \
         WHERE {} ORDER BY c.registered_at, c.case_id LIMIT 50",
        conditions.join(" AND ")
    );
    let mut select = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        select = select.bind(value);
    }
    let mut found: Vec<DuplicateCandidate> = Vec::new();
    for row in select.fetch_all(state.store().pool()).await? {
        let case_id: String = row.try_get("case_id")?;
        if found.iter().any(|f| f.case_id == case_id) {
            continue;
        }
        found.push(DuplicateCandidate {
            case_id,
            case_number: row.try_get("case_number")?,
            matter: row.try_get("matter")?,
            petitioner: row.try_get("name")?,
            matched_by: row.try_get("matched_by")?,
        });
    }
    Ok(found)
}

/// `GET /api/v1/cases/duplicates?id_number=&name=&town=&category=`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<DuplicateQuery>,
) -> Result<Json<Vec<DuplicateCandidate>>, ApiError> {
    Ok(Json(find(&state, &user, &query).await?))
}
