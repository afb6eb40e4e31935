//! `/api/v1/assessments`: the year-end assessment (年考核) — a scheme (shipped or uploaded as a
//! TOML file) applied to the districts, towns or departments over a period, as of a log position:
//! per unit the score, each indicator's figures with numerators and denominators, the rank, and
//! every case counted and why. It names cases across the whole city, so it is for the city: the
//! administrator and the city's own coordinators and viewers.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhzj_figures::assessment::{self, Assessment, Scheme};
use zhzj_figures::bulletin::{CountedCase, Details};
use zhzj_proto::accounts::Role;
use zhzj_proto::events::UnitKind;

use super::download::SealedReport;
use crate::extract::{CurrentUser, QueryParams};
use crate::{ApiError, AppState, User};

/// What to assess.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentQuery {
    /// `default` (the seed's indicators) or `dachuan` (the 达川区 example).
    pub scheme: Option<String>,
    /// `district` (default), `town` or `department`.
    pub level: Option<String>,
    /// The first day of the period.
    pub from: NaiveDate,
    /// The last day of the period.
    pub to: NaiveDate,
    /// The log position to compute at (default: the archive's last); the same position gives the
    /// same figures and a byte-identical export.
    pub position: Option<i64>,
    /// For the CSV export: the sheet, by number from 1 (说明, 排名, the indicators, 明细).
    pub sheet: Option<usize>,
}

/// Which counted cases of an assessment to list: the assessment's own parameters, the unit, and
/// optionally one figure.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountedQuery {
    /// `default` or `dachuan`.
    pub scheme: Option<String>,
    /// `district` (default), `town` or `department`.
    pub level: Option<String>,
    /// The first day of the period.
    pub from: NaiveDate,
    /// The last day of the period.
    pub to: NaiveDate,
    /// The log position (default: the archive's last).
    pub position: Option<i64>,
    /// The assessed unit.
    pub unit_id: String,
    /// Only this figure (`resolution`, `timely_acceptance`, …).
    pub figure: Option<String>,
    /// Page number from 1.
    pub page: Option<u32>,
    /// Cases per page (at most 200, default 50).
    pub per_page: Option<u32>,
}

/// A page of the cases one unit's assessment counted, and why each counted.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CountedPage {
    /// The unit.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// The figure asked for, if one was.
    pub figure: Option<String>,
    /// The log position the assessment was computed at.
    pub as_of_position: i64,
    /// Counted cases in all (of the figure, when one was asked for).
    pub total: usize,
    /// This page.
    pub page: u32,
    /// Cases per page.
    pub per_page: u32,
    /// The counted cases, in the order of the workbook's 明细.
    pub rows: Vec<CountedCase>,
}

/// Largest page of counted cases.
const MAX_COUNTED_PER_PAGE: u32 = 200;

/// A shipped scheme by name.
pub fn shipped_scheme(name: &str) -> Result<Scheme, ApiError> {
    let text = match name {
        "default" => assessment::DEFAULT_SCHEME,
        "dachuan" => assessment::DACHUAN_SCHEME,
        other => {
            return Err(ApiError::BadRequest {
                message: format!("没有名为 `{other}` 的考核方案（可选 default、dachuan）"),
                field: Some("scheme".into()),
            });
        }
    };
    assessment::parse_scheme(text).map_err(ApiError::internal)
}

/// The level by name.
pub fn level(name: Option<&str>) -> Result<UnitKind, ApiError> {
    match name.unwrap_or("district") {
        "district" => Ok(UnitKind::District),
        "town" => Ok(UnitKind::Town),
        "department" => Ok(UnitKind::Department),
        other => Err(ApiError::BadRequest {
            message: format!("考核层级只能为 district、town 或 department，收到 `{other}`"),
            field: Some("level".into()),
        }),
    }
}

async fn for_the_city(state: &AppState, user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::Admin) {
        return Ok(());
    }
    if crate::scope::unit_kind(state, user).await?.as_deref() == Some("city") {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "年度考核由市级查看 (the city's own users only)".into(),
        ))
    }
}

/// Runs the assessment `query` asks for, as `user`, listing the counted cases of the units
/// `details` names for the assessment's level (once the user is known to be allowed and the
/// query read).
pub(crate) async fn run(
    state: &AppState,
    user: &User,
    query: &AssessmentQuery,
    details: impl FnOnce(UnitKind) -> Details,
) -> Result<(Assessment, Scheme), ApiError> {
    for_the_city(state, user).await?;
    let today = state.today();
    for (field, day) in [("from", query.from), ("to", query.to)] {
        zhzj_proto::dates::check(day, zhzj_proto::dates::DateKind::Ahead, today).map_err(
            |message| ApiError::Unprocessable {
                message,
                field: Some(field.into()),
            },
        )?;
    }
    if query.to < query.from {
        return Err(ApiError::BadRequest {
            message: "截止日期早于起始日期".into(),
            field: Some("to".into()),
        });
    }
    let scheme = shipped_scheme(query.scheme.as_deref().unwrap_or("default"))?;
    let level = level(query.level.as_deref())?;
    let position = match query.position {
        Some(position) => {
            let reached = crate::projections::archive_position(state.store()).await?;
            if u64::try_from(position).map_or(true, |p| p > reached) {
                return Err(ApiError::Unprocessable {
                    message: format!(
                        "日志位置 {position} 无效：须在 0 与当前位置 {reached} 之间（尚未写入的位置无法计算）"
                    ),
                    field: Some("position".into()),
                });
            }
            position
        }
        None => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(position) FROM event_archive")
            .fetch_one(state.store().pool())
            .await?
            .unwrap_or(0),
    };
    let assessment = assessment::assess(
        state.store(),
        &scheme,
        level,
        query.from..=query.to,
        position,
        &state.config().limits,
        &details(level),
    )
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::Unprocessable {
        message: e.to_string(),
        field: Some("scheme".into()),
    })?;
    Ok((assessment, scheme))
}

/// `GET /api/v1/assessments?from=…&to=…[&scheme=…&level=…&position=…]`.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<AssessmentQuery>,
) -> Result<Json<Assessment>, ApiError> {
    Ok(Json(run(&state, &user, &query, |_| Details::None).await?.0))
}

/// `GET /api/v1/assessments/counted?from=…&to=…&unit_id=…[&figure=…&page=…&per_page=…]`: the
/// drill-down of one unit's figures, paged.
pub async fn counted(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<CountedQuery>,
) -> Result<Json<CountedPage>, ApiError> {
    let assessment_query = AssessmentQuery {
        scheme: query.scheme,
        level: query.level,
        from: query.from,
        to: query.to,
        position: query.position,
        sheet: None,
    };
    let details = |_| Details::Unit(query.unit_id.clone());
    let (assessment, _) = run(&state, &user, &assessment_query, details).await?;
    let as_of_position = assessment.as_of_position;
    let Some(unit) = assessment
        .units
        .into_iter()
        .find(|u| u.unit_id == query.unit_id)
    else {
        return Err(ApiError::not_found(format!(
            "本次考核没有单位 {}（按 level 参数的层级考核）",
            query.unit_id
        )));
    };
    let matching: Vec<CountedCase> = unit
        .counted
        .into_iter()
        .filter(|c| query.figure.as_ref().is_none_or(|f| *f == c.figure))
        .collect();
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(50).clamp(1, MAX_COUNTED_PER_PAGE);
    let skip = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    Ok(Json(CountedPage {
        unit_id: unit.unit_id,
        name: unit.name,
        figure: query.figure,
        as_of_position,
        total: matching.len(),
        page,
        per_page,
        rows: matching
            .into_iter()
            .skip(skip)
            .take(usize::try_from(per_page).unwrap_or(usize::MAX))
            .collect(),
    }))
}

/// `GET /api/v1/assessments/export.xlsx?…`.
pub async fn export_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<AssessmentQuery>,
) -> Result<Response, ApiError> {
    report(&state, &user, &query).await?.xlsx(&state).await
}

/// The assessment with every counted case listed, as a sealed report.
async fn report(
    state: &AppState,
    user: &User,
    query: &AssessmentQuery,
) -> Result<SealedReport, ApiError> {
    // The workbook lists the counted cases of the units it ranks.
    let (assessment, scheme) = run(state, user, query, Details::Level).await?;
    let period = format!("{}-{}", assessment.from, assessment.to);
    Ok(SealedReport {
        position: assessment.as_of_position,
        created: assessment.created(),
        tables: assessment.into_tables(&scheme),
        ascii_name: format!("assessment-{period}"),
        name: format!("年度考核-{period}"),
        sheet_prefix: "年度考核".into(),
    })
}

/// `GET /api/v1/assessments/export.csv?…&sheet=N`.
pub async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<AssessmentQuery>,
) -> Result<Response, ApiError> {
    let report = report(&state, &user, &query).await?;
    let sheet = query.sheet.unwrap_or(2);
    let Some(index) = sheet.checked_sub(1).filter(|i| *i < report.tables.len()) else {
        return Err(ApiError::BadRequest {
            message: format!("sheet 须在 1 至 {} 之间", report.tables.len()),
            field: Some("sheet".into()),
        });
    };
    report.csv(&state, index, &sheet.to_string()).await
}
