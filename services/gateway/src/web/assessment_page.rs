//! 年考核 page: a scheme's scores over a level and a period, a chart, and the drill-down to the
//! cases each figure counted, drawn by the API handler of the same data.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use zhzj_figures::assessment::Assessment;

use super::auth::WebSession;
use super::charts::{Bar, bar_chart};
use super::view::{HtmlCell, HtmlTable, Layout, case_href, html, ratio_text};
use crate::routes::assessments;
use crate::{ApiError, AppState};
use zhzj_figures::Details;

/// The assessment form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssessmentForm {
    scheme: Option<String>,
    level: Option<String>,
    from: Option<String>,
    to: Option<String>,
    unit: Option<String>,
}

#[derive(Template)]
#[template(path = "assessment.html")]
pub(crate) struct AssessmentPage {
    layout: Layout,
    scheme: String,
    level: String,
    from: String,
    to: String,
    assessment: Option<Assessment>,
    indicator_names: Vec<String>,
    ranking: Vec<Vec<HtmlCell>>,
    chart: String,
    drill: Option<HtmlTable>,
    error: Option<String>,
    export_xlsx: String,
}

/// The ranking table's rows, each unit's name linking to its drill-down (`query` gives the
/// page's query for a unit).
fn ranking_rows(a: &Assessment, query: &dyn Fn(&str) -> String) -> Vec<Vec<HtmlCell>> {
    a.units
        .iter()
        .map(|u| {
            let mut row = vec![
                HtmlCell::number(u.rank),
                HtmlCell::link(
                    u.name.clone(),
                    format!("/assessments?{}#drill", query(&u.unit_id)),
                ),
                HtmlCell::number(format!("{:.2}", u.total)),
            ];
            row.extend(
                u.scores
                    .iter()
                    .map(|s| HtmlCell::number(format!("{:.2}", s.score))),
            );
            row.push(HtmlCell::text(ratio_text(u.figures.resolution)));
            row
        })
        .collect()
}

/// The units' total scores as a bar chart.
fn score_chart(a: &Assessment) -> String {
    let bars: Vec<Bar> = a
        .units
        .iter()
        .map(|u| Bar {
            label: u.name.clone(),
            value: u.total,
            note: format!("第{}名 {:.2} 分", u.rank, u.total),
            target: None,
            alert: false,
        })
        .collect();
    bar_chart(&format!("{} 考核得分", a.scheme), &bars, 100.0)
}

/// The cases counted for one unit, with the reason each was counted.
fn drill_table(a: &Assessment, unit: &str) -> Option<HtmlTable> {
    let u = a.units.iter().find(|u| u.unit_id == unit)?;
    Some(HtmlTable {
        name: format!("{} 计入考核的案件（共 {} 条）", u.name, u.counted_cases),
        headers: ["指标", "案件编号", "是否计入分子", "依据"]
            .map(str::to_owned)
            .to_vec(),
        rows: u
            .counted
            .iter()
            .map(|c| {
                vec![
                    HtmlCell::text(zhzj_figures::assessment::figure_name(c.figure)),
                    HtmlCell::link(c.case_number.clone(), case_href(&c.case_id)),
                    HtmlCell::text(if c.numerator { "是" } else { "否" }),
                    HtmlCell::text(c.reason.clone()),
                ]
            })
            .collect(),
    })
}

/// `GET /assessments`.
pub async fn assessment(
    session: WebSession,
    State(state): State<AppState>,
    Query(form): Query<AssessmentForm>,
) -> Response {
    let result = async {
        let today = state.today();
        let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let scheme = given(&form.scheme).unwrap_or_else(|| "default".into());
        let level = given(&form.level).unwrap_or_else(|| "district".into());
        let from = given(&form.from).unwrap_or_else(|| format!("{}-01-01", today.year()));
        let to = given(&form.to).unwrap_or_else(|| today.to_string());
        let date = |text: &str, field: &str| {
            text.parse::<NaiveDate>().map_err(|_| ApiError::BadRequest {
                message: format!("“{text}”不是有效日期（YYYY-MM-DD）"),
                field: Some(field.into()),
            })
        };
        let ran = match (date(&from, "from"), date(&to, "to")) {
            (Ok(from_day), Ok(to_day)) => {
                let query = assessments::AssessmentQuery {
                    scheme: Some(scheme.clone()),
                    level: Some(level.clone()),
                    from: from_day,
                    to: to_day,
                    position: None,
                    sheet: None,
                };
                // Only the unit drilled into has its counted cases listed.
                let details = given(&form.unit).map_or(Details::None, Details::Unit);
                assessments::run(&state, &session.user, &query, |_| details)
                    .await
                    .map(|(assessment, _)| assessment)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (assessment, error) = match ran {
            Ok(assessment) => (Some(assessment), None),
            Err(e @ (ApiError::BadRequest { .. } | ApiError::Unprocessable { .. })) => {
                (None, Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let query = |unit: &str| {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            serializer
                .append_pair("scheme", &scheme)
                .append_pair("level", &level)
                .append_pair("from", &from)
                .append_pair("to", &to);
            if !unit.is_empty() {
                serializer.append_pair("unit", unit);
            }
            serializer.finish()
        };
        let (indicator_names, ranking, chart, drill) = match &assessment {
            Some(a) => {
                let names = a
                    .units
                    .first()
                    .map(|u| u.scores.iter().map(|s| s.name.clone()).collect())
                    .unwrap_or_default();
                let drill = given(&form.unit).and_then(|unit| drill_table(a, &unit));
                (names, ranking_rows(a, &query), score_chart(a), drill)
            }
            None => (Vec::new(), Vec::new(), String::new(), None),
        };
        let page = AssessmentPage {
            layout: session.layout("年考核", "assessments"),
            export_xlsx: format!("/api/v1/assessments/export.xlsx?{}", query("")),
            scheme,
            level,
            from,
            to,
            assessment,
            indicator_names,
            ranking,
            chart,
            drill,
            error,
        };
        html(&page)
    }
    .await;
    session.respond(result, "assessments")
}
