//! The campaign's report pages: 包案领导 (the leader view), 月通报 (the bulletin with its ranking
//! chart) and 季攻坚 (a push's progress per area), and what every campaign page shares (case
//! numbers for ids, submitting a form through the API's write handlers). Each is drawn by the API
//! handler of the same data. 周调度 is in `meeting_pages`, 年考核 in `assessment_page`.

use std::collections::HashMap;
use zhzj_proto::accounts::Role;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use sqlx::Row;
use uuid::Uuid;
use zhzj_figures::{Bulletin, PushProgress};

use super::auth::WebSession;
use super::charts::{Bar, bar_chart};
use super::forms::{Field, FormData, Outcome, outcome, parse_body};
use super::view::{HtmlCell, HtmlTable, Layout, case_href, html, ratio_text};
use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::routes::cases::WriteContext;
use crate::routes::{LeadersView, PublishedBulletin, PushListItem, bulletins, leaders, pushes};
use crate::{ApiError, AppState};

/// The case numbers of `case_ids` (lists that name cases by id show their numbers).
pub(super) async fn case_numbers(
    state: &AppState,
    case_ids: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut numbers = HashMap::new();
    // Bound the placeholders of one statement (SQLite allows 32,766).
    for chunk in case_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT case_id, case_number FROM checklist_rows WHERE case_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(state.store().pool()).await? {
            numbers.insert(row.try_get("case_id")?, row.try_get("case_number")?);
        }
    }
    Ok(numbers)
}

/// A page's form sent to an API write handler: the CSRF token checked, the fields turned into the
/// handler's body, the handler run. Done goes on to `back`; a refusal is its message, for the page
/// to show.
pub(super) async fn submit<T, Sent>(
    session: &WebSession,
    form: &FormData,
    fields: &[Field],
    send: impl FnOnce(JsonBody<T>) -> Sent,
    back: &str,
) -> Result<Result<Response, String>, ApiError>
where
    T: serde::de::DeserializeOwned,
    Sent: std::future::Future<Output = Result<crate::commands::WriteOutcome, ApiError>>,
{
    session.check_csrf(form.get("csrf"))?;
    let sent = match parse_body(form, fields) {
        Ok(body) => send(JsonBody(body)).await,
        Err(e) => Err(e),
    };
    Ok(match outcome(sent) {
        Outcome::Done => Ok(super::view::see_other(back)),
        Outcome::Stale { message } | Outcome::Refused { message, .. } => Err(message),
    })
}

pub(super) fn context(session: &WebSession) -> WriteContext {
    WriteContext::new(
        session.state.clone(),
        session.user.clone(),
        None,
        Uuid::new_v4(),
    )
}

// ---------------------------------------------------------------------------------------------
// 包案领导

#[derive(Template)]
#[template(path = "leaders.html")]
struct LeadersPage {
    layout: Layout,
    view: LeadersView,
    months: Vec<String>,
    rows: Vec<LeaderRow>,
}

/// A leader's line.
#[derive(Debug)]
struct LeaderRow {
    name: String,
    title: String,
    owned: usize,
    open: usize,
    last_activity: String,
    by_month: Vec<u32>,
    idle: Vec<(String, String)>,
    /// All the idle cases, when more than those listed.
    idle_total: Option<usize>,
    alert: bool,
}

/// `?inactive_days=`.
#[derive(Debug, Deserialize)]
pub struct LeadersForm {
    inactive_days: Option<String>,
}

/// `GET /leaders`.
pub async fn leaders(
    session: WebSession,
    State(state): State<AppState>,
    Query(form): Query<LeadersForm>,
) -> Response {
    let result = async {
        let inactive_days = match form.inactive_days.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| ApiError::BadRequest {
                message: format!("“{text}”不是有效的天数"),
                field: Some("inactive_days".into()),
            })?),
        };
        let view = leaders::list(
            State(state.clone()),
            CurrentUser(session.user.clone()),
            QueryParams(leaders::LeadersQuery { inactive_days }),
        )
        .await?
        .0;
        // This month and the five before, oldest first.
        let months = months_back(state.today(), (0..6).rev());
        let idle: Vec<&str> = view
            .leaders
            .iter()
            .flat_map(|l| l.idle_cases.iter().map(String::as_str))
            .collect();
        let numbers = case_numbers(&state, &idle).await?;
        let rows = view
            .leaders
            .iter()
            .map(|l| LeaderRow {
                name: l.name.clone(),
                title: l.title.clone(),
                owned: l.owned_cases,
                open: l.open_cases,
                last_activity: l.last_activity_on.clone().unwrap_or_else(|| "—".into()),
                by_month: months
                    .iter()
                    .map(|m| l.activities_by_month.get(m).copied().unwrap_or(0))
                    .collect(),
                alert: l.idle_case_count > 0,
                idle_total: (l.idle_case_count > l.idle_cases.len()).then_some(l.idle_case_count),
                idle: l
                    .idle_cases
                    .iter()
                    .map(|id| {
                        (
                            case_href(id),
                            numbers.get(id).cloned().unwrap_or_else(|| id.clone()),
                        )
                    })
                    .collect(),
            })
            .collect();
        html(&LeadersPage {
            layout: session.layout("包案领导", "leaders"),
            view,
            months,
            rows,
        })
    }
    .await;
    session.respond(result, "leaders")
}

// ---------------------------------------------------------------------------------------------
// 周调度

#[derive(Template)]
#[template(path = "bulletins.html")]
struct BulletinsPage {
    layout: Layout,
    published: Vec<PublishedBulletin>,
    months: Vec<String>,
    may_publish: bool,
    error: Option<String>,
}

/// The months `backs` months before the month of `today` (0 is this month), as `YYYY-MM`.
fn months_back(today: NaiveDate, backs: impl Iterator<Item = u32>) -> Vec<String> {
    backs
        .filter_map(|back| {
            today
                .with_day(1)?
                .checked_sub_months(chrono::Months::new(back))
                .map(|m| m.format("%Y-%m").to_string())
        })
        .collect()
}

/// The last twelve months before this one.
fn recent_months(today: NaiveDate) -> Vec<String> {
    months_back(today, 1..=12)
}

async fn bulletins_page(
    state: &AppState,
    session: &WebSession,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let published = bulletins::list(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let page = BulletinsPage {
        layout: session.layout("月通报", "bulletins"),
        months: recent_months(state.today()),
        published,
        may_publish: session.user.has_any_role(&[Role::Admin, Role::Coordinator]),
        error,
    };
    html(&page)
}

/// `GET /bulletins`.
pub async fn bulletins(session: WebSession, State(state): State<AppState>) -> Response {
    let result = bulletins_page(&state, &session, None).await;
    session.respond(result, "bulletins")
}

/// `POST /bulletins`: publish a month's bulletin.
pub async fn publish_bulletin(
    session: WebSession,
    State(state): State<AppState>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let back = format!("/bulletins/{}", form.get("month"));
        let publish = |body| bulletins::publish(context(&session), body);
        match submit(&session, &form, &[Field::Required("month")], publish, &back).await? {
            Ok(done) => Ok(done),
            Err(message) => bulletins_page(&state, &session, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "bulletins")
}

#[derive(Template)]
#[template(path = "bulletin.html")]
struct BulletinPage {
    layout: Layout,
    bulletin: Bulletin,
    published_at: Option<String>,
    district_chart: String,
    town_chart: String,
    tables: Vec<HtmlTable>,
}

/// Bars of areas ranked by 化解率.
fn resolution_bars(areas: &[zhzj_figures::AreaFigures], with_district: bool) -> Vec<Bar> {
    areas
        .iter()
        .map(|area| Bar {
            label: match (&area.district, with_district) {
                (Some(district), true) => format!("{}·{}", district, area.name),
                _ => area.name.clone(),
            },
            value: area.resolution.percent().unwrap_or(0.0),
            note: format!("第{}名 {}", area.rank, ratio_text(area.resolution)),
            target: None,
            alert: false,
        })
        .collect()
}

/// `GET /bulletins/{month}`.
pub async fn bulletin(
    session: WebSession,
    State(state): State<AppState>,
    Path(month): Path<String>,
) -> Response {
    let result = async {
        let bulletin = bulletins::show(
            State(state.clone()),
            CurrentUser(session.user.clone()),
            Path(month.clone()),
        )
        .await?
        .0;
        let mut districts = bulletin.districts.clone();
        districts.sort_by_key(|a| a.rank);
        let mut towns = bulletin.towns.clone();
        towns.sort_by(|a, b| {
            b.resolution
                .percent()
                .unwrap_or(0.0)
                .total_cmp(&a.resolution.percent().unwrap_or(0.0))
        });
        let page = BulletinPage {
            layout: session.layout(format!("{month} 月通报"), "bulletins"),
            published_at: bulletin
                .published_at
                .map(|at| super::view::minute_of(&at.to_rfc3339())),
            district_chart: bar_chart(
                &format!("{month} 各区化解率排名"),
                &resolution_bars(&districts, false),
                0.0,
            ),
            town_chart: bar_chart(
                &format!("{month} 各镇街化解率"),
                &resolution_bars(&towns, true),
                0.0,
            ),
            tables: bulletin.tables().iter().map(HtmlTable::from).collect(),
            bulletin,
        };
        html(&page)
    }
    .await;
    session.respond(result, "bulletins")
}

// ---------------------------------------------------------------------------------------------
// 季攻坚

#[derive(Template)]
#[template(path = "pushes.html")]
struct PushesPage {
    layout: Layout,
    pushes: Vec<PushListItem>,
}

/// `GET /pushes`.
pub async fn pushes(session: WebSession, State(state): State<AppState>) -> Response {
    let result = async {
        let pushes = pushes::list(State(state.clone()), CurrentUser(session.user.clone()))
            .await?
            .0;
        html(&PushesPage {
            layout: session.layout("季攻坚", "pushes"),
            pushes,
        })
    }
    .await;
    session.respond(result, "pushes")
}

#[derive(Template)]
#[template(path = "push.html")]
struct PushPage {
    layout: Layout,
    push: PushProgress,
    as_of: String,
    total: String,
    chart: String,
    areas: HtmlTable,
    cases: HtmlTable,
}

/// `GET /pushes/{quarter}`.
pub async fn push(
    session: WebSession,
    State(state): State<AppState>,
    Path(quarter): Path<String>,
) -> Response {
    let result = async {
        let push = pushes::show(
            State(state.clone()),
            CurrentUser(session.user.clone()),
            Path(quarter.clone()),
        )
        .await?
        .0;
        let bars: Vec<Bar> = push
            .areas
            .iter()
            .map(|area| {
                let (resolved, target) = (area.resolved.numerator as f64, area.target_count as f64);
                Bar {
                    label: area.name.clone(),
                    value: resolved,
                    note: format!(
                        "化解 {}/{} 件，目标 {} 件{}",
                        area.resolved.numerator,
                        area.resolved.denominator,
                        area.target_count,
                        if area.met { "，已达标" } else { "" }
                    ),
                    target: Some(target),
                    alert: !area.met,
                }
            })
            .collect();
        let areas = HtmlTable {
            name: "各地进度".into(),
            headers: ["地区", "攻坚案件", "已化解", "化解率", "目标", "是否达标"]
                .map(str::to_owned)
                .to_vec(),
            rows: push
                .areas
                .iter()
                .map(|area| {
                    vec![
                        HtmlCell::text(area.name.clone()),
                        HtmlCell::number(area.resolved.denominator),
                        HtmlCell::number(area.resolved.numerator),
                        HtmlCell::text(ratio_text(area.resolved)),
                        HtmlCell::text(match (area.target_cases, area.target_rate_percent) {
                            (Some(cases), _) => format!("{cases} 件"),
                            (None, Some(rate)) => {
                                format!("{rate}%（{} 件）", area.target_count)
                            }
                            (None, None) => format!("{} 件", area.target_count),
                        }),
                        HtmlCell::text(if area.met { "是" } else { "否" }),
                    ]
                })
                .collect(),
        };
        let cases = HtmlTable {
            name: "攻坚案件".into(),
            headers: [
                "案件编号",
                "诉求",
                "属地",
                "责任单位",
                "包案领导",
                "状态",
                "销号日期",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: push
                .cases
                .iter()
                .map(|c| {
                    vec![
                        HtmlCell::link(c.case_number.clone(), case_href(&c.case_id)),
                        HtmlCell::text(c.matter.clone()),
                        HtmlCell::text(match &c.town {
                            Some(town) => format!("{} · {town}", c.district),
                            None => c.district.clone(),
                        }),
                        HtmlCell::text(c.lead_unit.clone().unwrap_or_default()),
                        HtmlCell::text(c.leader.clone().unwrap_or_default()),
                        HtmlCell::text(c.status_label.clone()),
                        HtmlCell::text(c.crossed_off_on.map(|d| d.to_string()).unwrap_or_default()),
                    ]
                })
                .collect(),
        };
        let page = PushPage {
            layout: session.layout(push.title.clone(), "pushes"),
            as_of: super::view::minute_of(&push.as_of.to_rfc3339()),
            total: ratio_text(push.total),
            chart: bar_chart(
                &format!("{} 各地化解进度（竖线为目标）", push.title),
                &bars,
                1.0,
            ),
            areas,
            cases,
            push,
        };
        html(&page)
    }
    .await;
    session.respond(result, "pushes")
}

// ---------------------------------------------------------------------------------------------
// 年考核

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_back_count_from_this_month() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 31).expect("date");
        assert_eq!(
            months_back(today, (0..3).rev()),
            ["2025-11", "2025-12", "2026-01"]
        );
    }

    #[test]
    fn recent_months_are_the_twelve_before_this_one() {
        let months = recent_months(NaiveDate::from_ymd_opt(2026, 3, 15).expect("date"));
        assert_eq!(months.len(), 12);
        assert_eq!(months[0], "2026-02");
        assert_eq!(months[11], "2025-03");
    }
}
