//! Possible duplicates of a registration (重复信访): a new petition by the same person on the same
//! matter belongs on the existing case, not on a new one. The rule is configurable: the same
//! petitioner ID number, or (by default) also the same name in the same town and category.
//!
//! The check is a lookup of personal data, so it is guarded like one (《信访工作条例》 第三十条,
//! PIPL): it needs a full, valid ID number or an exact name, town and category (no prefix or
//! partial match to enumerate with); only administrators and coordinators (who register cases) may
//! ask; it answers case numbers only, never a name; it names only
//! cases the caller may read, and says no more than "one exists outside your area" about the
//! rest; every call is recorded in `personal_data_reads`; and each user may make only so many
//! checks a minute.

use std::num::NonZeroU32;
use std::time::Duration;
use zhzj_proto::accounts::Role;

use axum::Json;
use axum::extract::State;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::extract::{CorrelationId, CurrentUser, QueryParams};
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

/// What `personal_data_reads.purpose` says for a duplicate check.
pub const DUPLICATE_CHECK_PURPOSE: &str = "duplicate_check";

/// What the answer says when a matching case exists that the caller may not read.
pub const OUTSIDE_AREA_NOTICE: &str = "您辖区以外已有与此信访人相同的案件，请联系市专班核实";

/// A petitioner to check.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateQuery {
    /// Petitioner ID number: all 18 characters, with a valid check digit.
    pub id_number: Option<String>,
    /// Petitioner name (exact, with `town` and `category`).
    pub name: Option<String>,
    /// Town or street unit id.
    pub town: Option<String>,
    /// Subject category.
    pub category: Option<String>,
}

/// An existing case in the caller's area the registration may duplicate.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidate {
    /// The existing case.
    pub case_id: String,
    /// Its number.
    pub case_number: String,
    /// `id_number` or `name_town_category`.
    pub matched_by: String,
}

/// The answer of a duplicate check.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct DuplicateCheck {
    /// The matching cases the caller may read (at most 50).
    pub cases: Vec<DuplicateCandidate>,
    /// Whether a matching case exists that the caller may not read; which one is not said.
    pub outside_your_area: bool,
    /// For a person, when `outside_your_area`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Per-user limit of duplicate checks.
#[derive(Debug)]
pub struct DuplicateCheckLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl DuplicateCheckLimiter {
    /// At most `per_minute` checks a minute per user, `burst` of them at once.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    /// Takes one check for `username`, or says how long until one is allowed.
    fn take(&self, username: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&username.to_owned())
            .map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            })
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Unprocessable {
        message: message.into(),
        field: Some(field.into()),
    }
}

/// A checked lookup: a full, valid ID number and/or an exact (normalised) name, town and category.
struct Lookup {
    id_number: Option<String>,
    name_town_category: Option<(String, String, String)>,
}

/// What a query asks for, checked: a full, valid ID number and/or an exact name, town and
/// category, as the configured rule allows.
fn lookup_of(query: &DuplicateQuery, rule: DuplicateRule) -> Result<Lookup, ApiError> {
    let id_number = match query.id_number.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => {
            let id = id.to_ascii_uppercase();
            if !zhzj_proto::ids::is_valid_resident_id(&id) {
                return Err(invalid(
                    "id_number",
                    "须填写完整的 18 位身份证号，且校验位正确 (a full, valid ID number)",
                ));
            }
            Some(id)
        }
    };
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let by_name = match (text(&query.name), text(&query.town), text(&query.category)) {
        (Some(name), Some(town), Some(category))
            if rule == DuplicateRule::IdNumberOrNameTownCategory =>
        {
            // Names are stored in their normal form; "庄　辉珠" asks for "庄辉珠".
            Some((zhzj_proto::names::normalize_name(&name), town, category))
        }
        (None, None, None) => None,
        _ if rule == DuplicateRule::IdNumber => {
            return Err(invalid(
                "id_number",
                "本系统按身份证号查重，须填写完整的身份证号",
            ));
        }
        _ => {
            return Err(invalid(
                "name",
                "按姓名查重须同时填写姓名、镇街和类别 (name, town and category together)",
            ));
        }
    };
    if id_number.is_none() && by_name.is_none() {
        return Err(invalid(
            "id_number",
            "须填写完整的身份证号，或同时填写姓名、镇街和类别",
        ));
    }
    Ok(Lookup {
        id_number,
        name_town_category: by_name,
    })
}

/// The existing cases that `query` matches under the configured rule: those `user` may read by
/// number, the others only as a flag. Refuses a partial query and a user over their rate; records
/// the lookup in `personal_data_reads`.
pub async fn find(
    state: &AppState,
    user: &User,
    query: &DuplicateQuery,
    correlation: Uuid,
) -> Result<DuplicateCheck, ApiError> {
    // A registration aid: only those who register cases may look petitioners up.
    if !user.has_any_role(&[Role::Admin, Role::Coordinator]) {
        return Err(ApiError::Forbidden(
            "只有管理员和专班协调员可以查重 (coordinators only)".into(),
        ));
    }
    let Lookup {
        id_number,
        name_town_category: by_name,
    } = lookup_of(query, state.config().duplicate_rule)?;
    if let Err(wait) = state.duplicate_checks().take(&user.username) {
        return Err(ApiError::TooManyRequests {
            message: "查重过于频繁，请稍后再试 (too many duplicate checks)".into(),
            retry_after_seconds: wait.as_secs().max(1),
        });
    }
    // Petitioners are found by their keyed blind indexes (the read store holds no plaintext of
    // sealed ones), and those registered before encryption by the plaintext they were stored with.
    let vault = state.vault();
    let index_failed = |e: zhzj_store::VaultError| {
        ApiError::Unavailable(format!("个人信息密钥库暂不可用，请稍后重试 ({e})"))
    };
    let mut binds: Vec<String> = Vec::new();
    let mut matches = Vec::new();
    if let Some(id) = id_number {
        let index = match vault {
            Some(vault) => vault.id_index(&id).await.map_err(index_failed)?,
            None => String::new(),
        };
        binds.extend([id, index]);
        matches.push("(p.id_number = $1 OR p.id_index = $2)".to_owned());
    }
    let id_match = if matches.is_empty() {
        "'name_town_category'"
    } else {
        "CASE WHEN p.id_number = $1 OR p.id_index = $2 THEN 'id_number' ELSE 'name_town_category' END"
    };
    if let Some((name, town, category)) = by_name {
        let index = match vault {
            Some(vault) => vault.name_index(&name, &town).await.map_err(index_failed)?,
            None => String::new(),
        };
        let first = binds.len() + 1;
        binds.extend([name, town, index, category]);
        matches.push(format!(
            "(((p.name = ${first} AND p.town_id = ${}) OR p.name_index = ${}) AND p.category = ${})",
            first + 1,
            first + 2,
            first + 3
        ));
    }
    let matching = format!("({})", matches.join(" OR "));
    let everywhere: i64 = {
        let sql =
            format!("SELECT COUNT(DISTINCT p.case_id) FROM case_petitioners p WHERE {matching}");
        let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for value in &binds {
            count = count.bind(value.clone());
        }
        count.fetch_one(state.store().pool()).await?
    };
    let mut conditions = vec![matching];
    if let Some(scope) = Scope::of(state, user).await?.condition(&mut binds) {
        conditions.push(scope);
    }
    let sql = format!(
        "SELECT c.case_id, c.case_number, {id_match} AS matched_by \
         FROM case_petitioners p JOIN checklist_rows c ON c.case_id = p.case_id \
         WHERE {} ORDER BY c.registered_at, c.case_id",
        conditions.join(" AND ")
    );
    let mut select = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        select = select.bind(value);
    }
    let mut check = DuplicateCheck::default();
    for row in select.fetch_all(state.store().pool()).await? {
        let case_id: String = row.try_get("case_id")?;
        if check.cases.iter().any(|f| f.case_id == case_id) {
            continue;
        }
        check.cases.push(DuplicateCandidate {
            case_id,
            case_number: row.try_get("case_number")?,
            matched_by: row.try_get("matched_by")?,
        });
    }
    check.outside_your_area = usize::try_from(everywhere).unwrap_or(usize::MAX) > check.cases.len();
    if check.outside_your_area {
        check.notice = Some(OUTSIDE_AREA_NOTICE.into());
    }
    check.cases.truncate(50);
    record_lookup(state, user, &check, correlation).await?;
    Ok(check)
}

/// One row per case named in the answer, or one with no case when none is.
async fn record_lookup(
    state: &AppState,
    user: &User,
    check: &DuplicateCheck,
    correlation: Uuid,
) -> Result<(), ApiError> {
    let at = zhzj_store::sql::timestamp_text(state.now());
    let mut tx = state.store().begin_write().await?;
    let named: Vec<&str> = if check.cases.is_empty() {
        vec![""]
    } else {
        check.cases.iter().map(|c| c.case_id.as_str()).collect()
    };
    for case_id in named {
        sqlx::query(
            "INSERT INTO personal_data_reads (username, case_id, read_at, correlation_id, purpose) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.username)
        .bind(case_id)
        .bind(&at)
        .bind(correlation.to_string())
        .bind(DUPLICATE_CHECK_PURPOSE)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(username = %user.username, found = check.cases.len(), outside = check.outside_your_area, "duplicate check");
    Ok(())
}

/// `GET /api/v1/cases/duplicates?id_number=` or `?name=&town=&category=`.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    CorrelationId(correlation): CorrelationId,
    QueryParams(query): QueryParams<DuplicateQuery>,
) -> Result<Json<DuplicateCheck>, ApiError> {
    Ok(Json(find(&state, &user, &query, correlation).await?))
}
