//! Assessment schemes (考核方案) as configuration files, and scoring an area's counted figures
//! with one. Weights and rules differ by city and year, so a scheme is data: a TOML file naming
//! each indicator, its weight, its score as a formula over the counted figures (deductions written
//! into the formula) and its floor and cap. A broken file is refused with the line and the reason.
//!
//! The formula's variables are the figures of [`crate::AreaFigures`]: for each ratio `x` of
//! [`RATIOS`], `x_num`, `x_den` and `x_rate` (numerator ÷ denominator, 1 when nothing was
//! counted: no case, no deduction); the counts of [`COUNTS`]; `months`, the length of the period
//! in months; and `weight`, the indicator's own. Functions: `min`, `max`, `if(c, a, b)` and the
//! arithmetic of `evalexpr`.

use evalexpr::{
    ContextWithMutableVariables, DefaultNumericTypes, HashMapContext, Node, Value,
    build_operator_tree,
};
use serde::{Deserialize, Serialize};

use chrono::{Datelike, NaiveDate};
use zhzj_deadlines::Limits;
use zhzj_export::{Cell, Table};
use zhzj_proto::events::UnitKind;
use zhzj_store::ReadStore;

use crate::FiguresError;
use crate::archive::ArchivedEvent;
use crate::bulletin::{AreaFigures, CountedCase, Details, PeriodFigures, Ratio, period_figures};
use crate::supervision::{SupervisionFigures, supervision_figures};

/// The ratios a formula may use, as `<name>_num`, `<name>_den` and `<name>_rate`.
pub const RATIOS: [&str; 7] = [
    "resolution",
    "timely_acceptance",
    "on_time_completion",
    "satisfaction",
    "participation",
    "ownership",
    "owned_resolution",
];

/// The counts a formula may use.
pub const COUNTS: [&str; 4] = [
    "repeat_petitions",
    "relapses",
    "leader_activities",
    "reception_days",
];

/// The supervision figures a formula may use (督办, per unit the orders went to; see
/// [`crate::supervision`]): counts, and answers on time as `supervision_on_time_num`, `_den`
/// and `_rate` (1 when nothing was answered).
pub const SUPERVISION_COUNTS: [&str; 4] = [
    "supervision_issued",
    "supervision_escalated",
    "supervision_overdue",
    "supervision_answered_late",
];

/// A scheme that cannot be used, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("考核方案第 {line} 行：{reason}")]
pub struct SchemeError {
    /// The line (1-based; 0 when the file as a whole is at fault).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// One indicator as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    key: toml::Spanned<String>,
    name: String,
    weight: toml::Spanned<f64>,
    score: toml::Spanned<String>,
    #[serde(default)]
    floor: Option<f64>,
    #[serde(default)]
    cap: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeFile {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    indicators: Vec<IndicatorFile>,
}

/// An indicator of a scheme.
#[derive(Debug, Clone)]
pub struct Indicator {
    /// Its key.
    pub key: String,
    /// Its name (及时受理率 …).
    pub name: String,
    /// Its weight: the most it scores.
    pub weight: f64,
    /// Its formula.
    pub formula: String,
    /// The least it scores (0 unless set).
    pub floor: f64,
    /// The most it scores (its weight unless set).
    pub cap: f64,
    tree: Node<DefaultNumericTypes>,
}

/// A scheme: its name and version, and its indicators.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// Its name.
    pub name: String,
    /// Its version; an assessment records which it used.
    pub version: String,
    /// What it is.
    pub description: Option<String>,
    /// The indicators, in order.
    pub indicators: Vec<Indicator>,
}

/// The 达川区 scheme of DOMAIN.md, shipped as an example.
pub const DACHUAN_SCHEME: &str = include_str!("../schemes/dachuan.toml");
/// The default scheme, built from the seed's indicators.
pub const DEFAULT_SCHEME: &str = include_str!("../schemes/default.toml");

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count() + 1)
}

/// Reads and checks a scheme: every formula must parse and name only known figures.
pub fn parse_scheme(text: &str) -> Result<Scheme, SchemeError> {
    let file: SchemeFile = toml::from_str(text).map_err(|e| SchemeError {
        line: e.span().map_or(0, |span| line_of(text, span.start)),
        reason: e.message().to_owned(),
    })?;
    if file.indicators.is_empty() {
        return Err(SchemeError {
            line: 0,
            reason: "方案没有任何指标 (no indicators)".into(),
        });
    }
    let known = variables();
    let mut keys = std::collections::HashSet::new();
    let mut indicators = Vec::with_capacity(file.indicators.len());
    for indicator in file.indicators {
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        let key_line = at(indicator.key.span());
        if !keys.insert(indicator.key.get_ref().clone()) {
            return Err(SchemeError {
                line: key_line,
                reason: format!("指标 `{}` 重复", indicator.key.get_ref()),
            });
        }
        let weight = *indicator.weight.get_ref();
        if !(weight > 0.0 && weight.is_finite()) {
            return Err(SchemeError {
                line: at(indicator.weight.span()),
                reason: format!("权重须为正数，收到 {weight}"),
            });
        }
        let formula_line = at(indicator.score.span());
        let formula = indicator.score.get_ref().clone();
        let tree =
            build_operator_tree::<DefaultNumericTypes>(&formula).map_err(|e| SchemeError {
                line: formula_line,
                reason: format!("公式 `{formula}` 无法解析：{e}"),
            })?;
        if let Some(unknown) = tree
            .iter_variable_identifiers()
            .find(|v| !known.iter().any(|k| k == v))
        {
            return Err(SchemeError {
                line: formula_line,
                reason: format!(
                    "公式 `{formula}` 中的 `{unknown}` 不是可用的统计数（可用：{}）",
                    known.join("、")
                ),
            });
        }
        let floor = indicator.floor.unwrap_or(0.0);
        let cap = indicator.cap.unwrap_or(weight);
        if floor > cap {
            return Err(SchemeError {
                line: key_line,
                reason: format!("下限 {floor} 高于上限 {cap}"),
            });
        }
        indicators.push(Indicator {
            key: indicator.key.into_inner(),
            name: indicator.name,
            weight,
            formula,
            floor,
            cap,
            tree,
        });
    }
    Ok(Scheme {
        name: file.name,
        version: file.version,
        description: file.description,
        indicators,
    })
}

/// Every variable a formula may use.
pub fn variables() -> Vec<String> {
    let mut names: Vec<String> = RATIOS
        .iter()
        .flat_map(|r| [format!("{r}_num"), format!("{r}_den"), format!("{r}_rate")])
        .collect();
    names.extend(COUNTS.iter().map(|c| (*c).to_owned()));
    names.extend(SUPERVISION_COUNTS.iter().map(|c| (*c).to_owned()));
    names.extend(
        ["num", "den", "rate"]
            .iter()
            .map(|part| format!("supervision_on_time_{part}")),
    );
    names.push("months".into());
    names.push("weight".into());
    names
}

/// One indicator's score for one area.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IndicatorScore {
    /// The indicator's key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its weight.
    pub weight: f64,
    /// The score, between the floor and the cap, rounded to 0.01.
    pub score: f64,
}

/// A formula could not be evaluated (a division by zero, a value that is not a number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("指标 {key} 的公式无法计算：{reason}")]
pub struct ScoreError {
    /// The indicator.
    pub key: String,
    /// Why.
    pub reason: String,
}

fn ratio_of(figures: &AreaFigures, name: &str) -> Ratio {
    match name {
        "resolution" => figures.resolution,
        "timely_acceptance" => figures.timely_acceptance,
        "on_time_completion" => figures.on_time_completion,
        "satisfaction" => figures.satisfaction,
        "participation" => figures.participation,
        "ownership" => figures.ownership,
        _ => figures.owned_resolution,
    }
}

fn count_of(figures: &AreaFigures, name: &str) -> i64 {
    match name {
        "repeat_petitions" => figures.repeat_petitions,
        "relapses" => figures.relapses,
        "leader_activities" => figures.leader_activities,
        _ => figures.reception_days,
    }
}

/// Scores an area's figures (and its supervision figures) over a period of `months` months with
/// a scheme.
pub fn score(
    scheme: &Scheme,
    figures: &AreaFigures,
    supervision: &SupervisionFigures,
    months: i64,
) -> Result<Vec<IndicatorScore>, ScoreError> {
    let float = |n: i64| n as f64;
    let mut values: Vec<(String, f64)> = Vec::new();
    for name in RATIOS {
        let ratio = ratio_of(figures, name);
        let rate = if ratio.denominator > 0 {
            float(ratio.numerator) / float(ratio.denominator)
        } else {
            1.0
        };
        values.push((format!("{name}_num"), float(ratio.numerator)));
        values.push((format!("{name}_den"), float(ratio.denominator)));
        values.push((format!("{name}_rate"), rate));
    }
    for name in COUNTS {
        values.push((name.to_owned(), float(count_of(figures, name))));
    }
    let answered = supervision.answered_on_time + supervision.answered_late;
    for (name, value) in [
        ("supervision_issued", supervision.issued),
        ("supervision_escalated", supervision.escalated),
        ("supervision_overdue", supervision.overdue_at_end),
        ("supervision_answered_late", supervision.answered_late),
        ("supervision_on_time_num", supervision.answered_on_time),
        ("supervision_on_time_den", answered),
    ] {
        values.push((name.to_owned(), float(value)));
    }
    values.push((
        "supervision_on_time_rate".to_owned(),
        if answered > 0 {
            float(supervision.answered_on_time) / float(answered)
        } else {
            1.0
        },
    ));
    values.push(("months".into(), float(months)));
    let mut scores = Vec::with_capacity(scheme.indicators.len());
    for indicator in &scheme.indicators {
        let failed = |reason: String| ScoreError {
            key: indicator.key.clone(),
            reason,
        };
        let mut context = HashMapContext::<DefaultNumericTypes>::new();
        for (name, value) in values
            .iter()
            .cloned()
            .chain(std::iter::once(("weight".to_owned(), indicator.weight)))
        {
            context
                .set_value(name, Value::Float(value))
                .map_err(|e| failed(e.to_string()))?;
        }
        let raw = indicator
            .tree
            .eval_number_with_context(&context)
            .map_err(|e| failed(e.to_string()))?;
        if !raw.is_finite() {
            return Err(failed(format!("结果不是有限数值：{raw}")));
        }
        let bounded = raw.clamp(indicator.floor, indicator.cap);
        scores.push(IndicatorScore {
            key: indicator.key.clone(),
            name: indicator.name.clone(),
            weight: indicator.weight,
            score: (bounded * 100.0).round() / 100.0,
        });
    }
    Ok(scores)
}

/// One unit's assessment.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UnitAssessment {
    /// Unit id.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// Its district (for a town).
    pub district: Option<String>,
    /// The total score.
    pub total: f64,
    /// Its rank by total (equal totals share a rank).
    pub rank: usize,
    /// Each indicator's score.
    pub scores: Vec<IndicatorScore>,
    /// The counted figures the scores come from, numerators and denominators.
    pub figures: AreaFigures,
    /// Its supervision figures over the period (orders that went to it).
    pub supervision: SupervisionFigures,
    /// How many cases were counted in the figures (a case counts once per figure); the cases
    /// themselves, and why each counted, are paged: `GET /api/v1/assessments/counted`.
    pub counted_cases: usize,
    /// Every case counted in the figures, and why (each case's events:
    /// `GET /api/v1/cases/{id}/events`): in the workbook's 明细 and the paged drill-down, not
    /// in the assessment's JSON, where it made the city's answer megabytes long.
    #[serde(skip)]
    pub counted: Vec<CountedCase>,
}

/// An assessment run: a scheme applied to a level's units over a period, as of a log position.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Assessment {
    /// The scheme's name.
    pub scheme: String,
    /// The scheme's version.
    pub scheme_version: String,
    /// `district`, `town` or `department`.
    pub level: String,
    /// The first day of the period.
    pub from: NaiveDate,
    /// The last day of the period.
    pub to: NaiveDate,
    /// The log position it was computed at.
    pub as_of_position: i64,
    /// The units, ranked.
    pub units: Vec<UnitAssessment>,
}

/// The months a period spans (counting a started month).
fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let months = (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month())
        + 1;
    months.max(1)
}

/// Runs `scheme` over the units of `level` for the days of `period` (both ends included), as of
/// log `position` (from the figures projection once it has reached it), listing the counted
/// cases of the units `details` asks for.
pub async fn assess(
    store: &ReadStore,
    scheme: &Scheme,
    level: UnitKind,
    period: std::ops::RangeInclusive<NaiveDate>,
    position: i64,
    limits: &Limits,
    details: &Details,
) -> Result<Result<Assessment, ScoreError>, FiguresError> {
    let (from, to) = period.into_inner();
    let next = to.succ_opt().unwrap_or(to);
    let figures =
        crate::facts::period_figures_at(store, from, next, position, limits, details).await?;
    let orders = ArchivedEvent::read_up_to(store, &["supervision"], position).await?;
    let supervision = supervision_figures(&orders, from, next);
    Ok(assess_figures(
        figures,
        &supervision,
        scheme,
        level,
        from,
        to,
        position,
    ))
}

/// [`assess`] over events already read.
pub fn assess_events(
    events: &[ArchivedEvent],
    scheme: &Scheme,
    level: UnitKind,
    from: NaiveDate,
    to: NaiveDate,
    position: i64,
    limits: &Limits,
) -> Result<Assessment, ScoreError> {
    let next = to.succ_opt().unwrap_or(to);
    let figures = period_figures(events, from, next, limits);
    let supervision = supervision_figures(events, from, next);
    assess_figures(figures, &supervision, scheme, level, from, to, position)
}

/// Scores a period's figures (with the supervision figures of the units orders went to): the
/// units of `level`, ranked by total.
pub fn assess_figures(
    mut figures: PeriodFigures,
    supervision: &[SupervisionFigures],
    scheme: &Scheme,
    level: UnitKind,
    from: NaiveDate,
    to: NaiveDate,
    position: i64,
) -> Result<Assessment, ScoreError> {
    let areas = match level {
        UnitKind::Town => std::mem::take(&mut figures.towns),
        UnitKind::Department => std::mem::take(&mut figures.departments),
        _ => std::mem::take(&mut figures.districts),
    };
    let months = months_between(from, to);
    let mut units = Vec::with_capacity(areas.len());
    for area in areas {
        let orders = supervision
            .iter()
            .find(|s| s.unit_id == area.unit_id)
            .cloned()
            .unwrap_or_else(|| SupervisionFigures {
                unit_id: area.unit_id.clone(),
                name: area.name.clone(),
                ..SupervisionFigures::default()
            });
        let scores = score(scheme, &area, &orders, months)?;
        let total = (scores.iter().map(|s| s.score).sum::<f64>() * 100.0).round() / 100.0;
        let counted_here = figures.details.remove(&area.unit_id).unwrap_or_default();
        units.push(UnitAssessment {
            counted_cases: figures.counted.get(&area.unit_id).copied().unwrap_or(0),
            unit_id: area.unit_id.clone(),
            name: area.name.clone(),
            district: area.district.clone(),
            total,
            rank: 0,
            scores,
            counted: counted_here,
            figures: area,
            supervision: orders,
        });
    }
    units.sort_by(|a, b| {
        b.total
            .total_cmp(&a.total)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut rank = 0;
    let mut previous = None;
    for (i, unit) in units.iter_mut().enumerate() {
        if previous != Some(unit.total) {
            rank = i + 1;
            previous = Some(unit.total);
        }
        unit.rank = rank;
    }
    let level = match level {
        UnitKind::Town => "town",
        UnitKind::Department => "department",
        _ => "district",
    };
    Ok(Assessment {
        scheme: scheme.name.clone(),
        scheme_version: scheme.version.clone(),
        level: level.to_owned(),
        from,
        to,
        as_of_position: position,
        units,
    })
}

/// Data rows a worksheet holds under its header (Excel's limit is 1,048,576 rows).
const MAX_SHEET_ROWS: usize = 1_048_575;

const FIGURE_NAMES: [(&str, &str); 10] = [
    ("resolution", "化解率"),
    ("timely_acceptance", "及时受理率"),
    ("on_time_completion", "按期办结率"),
    ("repeat_petitions", "重复信访"),
    ("relapses", "回潮"),
    ("satisfaction", "满意率"),
    ("participation", "参评率"),
    ("leader_activities", "领导活动"),
    ("ownership", "包案覆盖率"),
    ("owned_resolution", "包案化解率"),
];

/// The Chinese name of a counted figure (`resolution` → 化解率), or the key when unknown.
pub fn figure_name(key: &str) -> &str {
    FIGURE_NAMES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, name)| name)
}

impl Assessment {
    /// The assessment as spreadsheet tables: 说明 (scheme, period, log position), 排名 (the
    /// summary), one sheet per indicator with the figures, and 明细 (every counted case and why).
    /// It consumes the assessment: each counted case's number and reason move into its row
    /// instead of being copied (a city's year lists a million of them).
    pub fn into_tables(self, scheme: &Scheme) -> Vec<Table> {
        let number = Cell::Number;
        let int = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let about = Table {
            name: "说明".into(),
            headers: vec!["项目".into(), "内容".into()],
            rows: vec![
                vec![Cell::from("考核方案"), Cell::from(self.scheme.clone())],
                vec![
                    Cell::from("方案版本"),
                    Cell::from(self.scheme_version.clone()),
                ],
                vec![Cell::from("考核层级"), Cell::from(self.level.clone())],
                vec![Cell::from("起始日期"), Cell::Date(self.from)],
                vec![Cell::from("截止日期"), Cell::Date(self.to)],
                vec![Cell::from("日志位置"), Cell::Int(self.as_of_position)],
            ],
        };
        let mut headers = vec!["排名".to_owned(), "单位".to_owned(), "总分".to_owned()];
        headers.extend(
            scheme
                .indicators
                .iter()
                .map(|i| format!("{}（{}分）", i.name, i.weight)),
        );
        let summary = Table {
            name: "排名".into(),
            headers,
            rows: self
                .units
                .iter()
                .map(|u| {
                    let mut row = vec![int(u.rank), Cell::from(u.name.clone()), number(u.total)];
                    row.extend(u.scores.iter().map(|s| number(s.score)));
                    row
                })
                .collect(),
        };
        let mut tables = vec![about, summary];
        tables.extend(self.indicator_tables(scheme));
        tables.extend(detail_tables(self.units));
        tables
    }

    /// One sheet per indicator: each unit's score and the figures its formula uses.
    fn indicator_tables(&self, scheme: &Scheme) -> Vec<Table> {
        let number = Cell::Number;
        let mut tables = Vec::new();
        for (i, indicator) in scheme.indicators.iter().enumerate() {
            let mut headers = vec!["单位".to_owned(), "得分".to_owned()];
            let mut rows = Vec::new();
            let used: Vec<&str> = RATIOS
                .iter()
                .copied()
                .filter(|r| indicator.formula.contains(r))
                .collect();
            let counts: Vec<&str> = COUNTS
                .iter()
                .copied()
                .filter(|c| indicator.formula.contains(c))
                .collect();
            for ratio in &used {
                headers.push(format!("{}分子", figure_name(ratio)));
                headers.push(format!("{}分母", figure_name(ratio)));
            }
            for count in &counts {
                headers.push(figure_name(count).to_owned());
            }
            for unit in &self.units {
                let mut row = vec![
                    Cell::from(unit.name.clone()),
                    unit.scores.get(i).map_or(Cell::Empty, |s| number(s.score)),
                ];
                for ratio in &used {
                    let r = ratio_of(&unit.figures, ratio);
                    row.push(Cell::Int(r.numerator));
                    row.push(Cell::Int(r.denominator));
                }
                for count in &counts {
                    row.push(Cell::Int(count_of(&unit.figures, count)));
                }
                rows.push(row);
            }
            tables.push(Table {
                name: format!("{}-{}", i + 1, indicator.name)
                    .chars()
                    .take(31)
                    .collect(),
                headers,
                rows,
            });
        }
        tables
    }

    /// The workbook's creation time: the end of the period, so that the same assessment at the
    /// same position gives the same bytes.
    pub fn created(&self) -> chrono::NaiveDateTime {
        self.to.and_time(chrono::NaiveTime::MIN)
    }
}

/// 明细: every counted case of every unit and why, moved out of the units (a city's year lists
/// a million), on as many sheets as it takes.
fn detail_tables(units: Vec<UnitAssessment>) -> Vec<Table> {
    let mut tables = Vec::new();
    let total: usize = units.iter().map(|u| u.counted.len()).sum();
    let mut detail = units.into_iter().flat_map(|u| {
        let unit = u.name;
        u.counted.into_iter().map(move |c| {
            vec![
                Cell::from(unit.clone()),
                Cell::from(figure_name(c.figure)),
                Cell::from(c.case_number),
                Cell::from(if c.numerator { "是" } else { "否" }),
                Cell::from(c.reason),
            ]
        })
    });
    // A sheet holds at most 1,048,576 rows with its header: a long detail goes on 明细2, …
    // Each sheet's rows are made once, at their size (a city's year has a million).
    let mut left = total;
    for i in 0.. {
        let size = left.min(MAX_SHEET_ROWS);
        let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(size);
        rows.extend(detail.by_ref().take(size));
        left -= size;
        tables.push(Table {
            name: if i == 0 {
                "明细".to_owned()
            } else {
                format!("明细{}", i + 1)
            },
            headers: ["单位", "统计项", "案件编号", "计入分子", "原因"]
                .map(str::to_owned)
                .to_vec(),
            rows,
        });
        if left == 0 {
            break;
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> AreaFigures {
        let ratio = |numerator, denominator| Ratio {
            numerator,
            denominator,
        };
        AreaFigures {
            unit_id: "xm-siming".into(),
            name: "思明区".into(),
            district: None,
            resolution: ratio(6, 10),
            timely_acceptance: ratio(9, 10),
            on_time_completion: ratio(4, 5),
            repeat_petitions: 5,
            relapses: 1,
            satisfaction: ratio(3, 4),
            participation: ratio(4, 8),
            leader_activities: 12,
            reception_days: 3,
            ownership: ratio(8, 10),
            owned_resolution: ratio(4, 8),
            rank: 1,
        }
    }

    #[test]
    fn the_dachuan_scheme_scores_by_hand() -> Result<(), Box<dyn std::error::Error>> {
        let scheme = parse_scheme(DACHUAN_SCHEME)?;
        let scores = score(&scheme, &figures(), &SupervisionFigures::default(), 3)?;
        let by_key: Vec<(&str, f64)> = scores.iter().map(|s| (s.key.as_str(), s.score)).collect();
        assert_eq!(
            by_key,
            [
                // 5 × 9/10
                ("timely_acceptance", 4.5),
                // 10 × 4/5
                ("on_time_reply", 8.0),
                // 10 − 1 × (5 repeat petitions − 3 months)
                ("repeat_petitions", 8.0),
                // 10 × 3/4
                ("satisfaction", 7.5),
                // 5 × 4/8
                ("participation", 2.5),
                // 4 − 1, the owned-case resolution rate (50%) being below 85%
                ("leader_ownership", 3.0),
            ]
        );
        Ok(())
    }

    #[test]
    fn the_default_scheme_reads_and_caps() -> Result<(), Box<dyn std::error::Error>> {
        let scheme = parse_scheme(DEFAULT_SCHEME)?;
        let mut many = figures();
        many.repeat_petitions = 500;
        for s in score(&scheme, &many, &SupervisionFigures::default(), 12)? {
            assert!((0.0..=s.weight).contains(&s.score), "{s:?}");
        }
        Ok(())
    }

    #[test]
    fn a_scheme_counts_supervision_orders() -> Result<(), Box<dyn std::error::Error>> {
        let scheme = parse_scheme(
            "name = \"督办\"\nversion = \"1\"\n[[indicators]]\nkey = \"supervision\"\n\
             name = \"督办落实\"\nweight = 10\n\
             score = \"weight * supervision_on_time_rate - 2 * supervision_overdue - supervision_escalated\"\n",
        )?;
        let orders = SupervisionFigures {
            issued: 3,
            answered_on_time: 3,
            answered_late: 1,
            escalated: 1,
            overdue_at_end: 1,
            ..SupervisionFigures::default()
        };
        let scores = score(&scheme, &figures(), &orders, 1)?;
        // 10 × 3/4 − 2 × 1 − 1
        assert_eq!(scores[0].score, 4.5);
        let none = score(&scheme, &figures(), &SupervisionFigures::default(), 1)?;
        assert_eq!(none[0].score, 10.0, "no answers: a full rate");
        Ok(())
    }

    #[test]
    fn a_broken_scheme_names_its_line() {
        let unknown = "name = \"x\"\nversion = \"1\"\n\n[[indicators]]\nkey = \"a\"\nname = \"A\"\nweight = 5\nscore = \"weight * nonsense_rate\"\n";
        let error = parse_scheme(unknown).err();
        assert_eq!(error.as_ref().map(|e| e.line), Some(8), "{error:?}");
        let syntax = "name = \"x\"\nversion = \"1\"\n[[indicators]]\nkey = \"a\"\nname = \"A\"\nweight = 5\nscore = \"weight * (\"\n";
        assert_eq!(parse_scheme(syntax).err().map(|e| e.line), Some(7));
        let toml = "name = \"x\"\nversion = 1\n";
        assert_eq!(parse_scheme(toml).err().map(|e| e.line), Some(2));
        let weight = "name = \"x\"\nversion = \"1\"\n[[indicators]]\nkey = \"a\"\nname = \"A\"\nweight = -2\nscore = \"weight\"\n";
        assert_eq!(parse_scheme(weight).err().map(|e| e.line), Some(6));
    }
}
