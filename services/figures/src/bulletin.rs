//! The monthly bulletin (月通报): for one month, per district, per town within a district and
//! per functional department, the figures of DOMAIN.md, each with its numerator and denominator
//! (rates are computed, never stored), ranked by resolution rate. It is drawn from the event
//! archive up to a log position — the position recorded when the bulletin was published — so a
//! published bulletin exports the same bytes whenever it is asked for.
//!
//! The counting rules (each case counts in its district, its town and, when the lead
//! responsible unit is a department, that department):
//! - 化解率: cases crossed off in the month ÷ cases on the list in the month (registered before
//!   the month ended and not crossed off when it began).
//! - 及时受理率: notices of acceptance recorded in the month on or before their deadline ÷ those
//!   recorded in the month plus those still owed whose deadline fell in the month.
//! - 按期办结率: replies (办结) recorded in the month on or before the handling deadline ÷ replies
//!   recorded in the month plus running handling periods whose deadline fell in the month.
//! - 重复信访: new petitions received in the month; 回潮: reopenings in the month.
//! - 满意率: 满意 and 基本满意 ÷ ratings given in the month (未评价 excluded); 参评率: ratings
//!   given ÷ rating records in the month (未评价 included).
//! - Leader activity: activities held in the month on the area's cases, and the days on which a
//!   reception (接访) was held.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use zhzj_deadlines::Limits;
pub use zhzj_deadlines::periods::month_bounds;
use zhzj_projector::figure_facts::{CaseFigureFold, CaseFigureState, FactKind, FigureFact};
use zhzj_proto::events::UnitKind;
use zhzj_proto::{CaseEvent, DirectoryEvent, DomainEvent};
use zhzj_store::{ReadStore, china_midnight};

mod tables;

use crate::FiguresError;
use crate::archive::ArchivedEvent;

/// A counted figure: numerator and denominator as the events give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Ratio {
    /// What counts.
    pub numerator: i64,
    /// Out of what.
    pub denominator: i64,
}

impl Ratio {
    /// The rate in percent, rounded to 0.1; none when nothing was counted.
    pub fn percent(self) -> Option<f64> {
        (self.denominator > 0).then(|| {
            let rate = self.numerator as f64 * 1000.0 / self.denominator as f64;
            rate.round() / 10.0
        })
    }

    fn add(&mut self, on_time: bool) {
        self.denominator += 1;
        if on_time {
            self.numerator += 1;
        }
    }
}

/// The figures of one area.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AreaFigures {
    /// Unit id.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// Its district (for a town).
    pub district: Option<String>,
    /// 化解率.
    pub resolution: Ratio,
    /// 及时受理率.
    pub timely_acceptance: Ratio,
    /// 按期办结率.
    pub on_time_completion: Ratio,
    /// 重复信访 (new petitions in the month).
    pub repeat_petitions: i64,
    /// 回潮 (reopenings in the month).
    pub relapses: i64,
    /// 满意率.
    pub satisfaction: Ratio,
    /// 参评率.
    pub participation: Ratio,
    /// Leader activities held in the month.
    pub leader_activities: i64,
    /// Days on which a reception (接访) was held.
    pub reception_days: i64,
    /// 包案覆盖: cases on the list with an owning leader ÷ cases on the list.
    pub ownership: Ratio,
    /// 包案化解率: owned cases crossed off ÷ owned cases on the list.
    pub owned_resolution: Ratio,
    /// Rank by resolution rate among its peers (equal rates share a rank; none counted last).
    pub rank: usize,
}

/// A month's bulletin.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Bulletin {
    /// `2026-03`.
    pub month: String,
    /// The log position it is drawn at.
    pub as_of_position: i64,
    /// When it was published (none for a draft).
    pub published_at: Option<DateTime<Utc>>,
    /// The districts, ranked.
    pub districts: Vec<AreaFigures>,
    /// The towns, ranked within their district.
    pub towns: Vec<AreaFigures>,
    /// The departments, ranked.
    pub departments: Vec<AreaFigures>,
    /// Supervision orders (督办) per unit they went to.
    pub supervision: Vec<crate::supervision::SupervisionFigures>,
}

/// A unit of the directory as the archive has it.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    name: String,
    parent: Option<String>,
    kind: UnitKind,
}

/// What one case contributes, area by area.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    on_list: bool,
    crossed_off: bool,
    pub(crate) on_list_count: i64,
    pub(crate) crossed_off_count: i64,
    pub(crate) owned_count: i64,
    pub(crate) owned_crossed_off_count: i64,
    pub(crate) acceptance: Ratio,
    pub(crate) completion: Ratio,
    pub(crate) petitions: i64,
    pub(crate) relapses: i64,
    pub(crate) satisfied: i64,
    pub(crate) rated: i64,
    pub(crate) rating_records: i64,
    pub(crate) activities: i64,
    pub(crate) reception_days: BTreeSet<NaiveDate>,
    /// Why the case counted, figure by figure (for the drill-down), when kept.
    notes: Vec<Note>,
    /// Whether the notes are kept (else only counted).
    keep_notes: bool,
    /// How many ways the case counted.
    noted: usize,
}

/// One way a case counted in a figure.
#[derive(Debug, Clone)]
struct Note {
    figure: &'static str,
    numerator: bool,
    reason: String,
}

impl Counts {
    /// Nothing counted yet; `keep_notes` keeps why each count was made, for the drill-down.
    pub(crate) fn new(keep_notes: bool) -> Self {
        Self {
            keep_notes,
            ..Self::default()
        }
    }

    fn note(&mut self, figure: &'static str, numerator: bool, reason: impl Into<String>) {
        self.noted += 1;
        if self.keep_notes {
            self.notes.push(Note {
                figure,
                numerator,
                reason: reason.into(),
            });
        }
    }
}

/// A case counted in a figure of an area, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CountedCase {
    /// The figure: `resolution`, `timely_acceptance`, `on_time_completion`, `repeat_petitions`,
    /// `relapses`, `satisfaction`, `participation`, `leader_activities`, `ownership`,
    /// `owned_resolution`.
    pub figure: &'static str,
    /// Case id (its events: `GET /api/v1/cases/{id}/events`).
    pub case_id: String,
    /// 案件编号.
    pub case_number: String,
    /// Whether it counted in the numerator (a count's items always do).
    pub numerator: bool,
    /// Why it counted.
    pub reason: String,
}

/// The areas a case counts in: its district, its town and, when its lead unit is a department,
/// that department.
pub(crate) fn areas_of(
    units: &BTreeMap<String, Unit>,
    district: &str,
    town: Option<&str>,
    lead_unit: Option<&str>,
) -> Vec<String> {
    let mut areas = vec![district.to_owned()];
    areas.extend(town.map(str::to_owned));
    if let Some(lead) = lead_unit
        && units
            .get(lead)
            .is_some_and(|u| u.kind == UnitKind::Department)
    {
        areas.push(lead.to_owned());
    }
    areas
}

/// A case as the period's figures see it: what it was counted as at the period's end, whether
/// it stood crossed off when the period began, and what its events in the period counted.
#[derive(Debug)]
pub(crate) struct CaseTrack {
    pub(crate) state: CaseFigureState,
    pub(crate) crossed_off_at_start: bool,
    pub(crate) counts: Counts,
}

/// Draws the bulletin of `month` from the archive up to `position`.
pub async fn bulletin(
    store: &ReadStore,
    month: &str,
    position: i64,
    published_at: Option<DateTime<Utc>>,
    limits: &Limits,
) -> Result<Option<Bulletin>, FiguresError> {
    let Some((first, next)) = month_bounds(month) else {
        return Ok(None);
    };
    let figures =
        crate::facts::period_figures_at(store, first, next, position, limits, &Details::None)
            .await?;
    let orders = ArchivedEvent::read_up_to(store, &["supervision"], position).await?;
    Ok(Some(Bulletin {
        month: month.to_owned(),
        as_of_position: position,
        published_at,
        districts: figures.districts,
        towns: figures.towns,
        departments: figures.departments,
        supervision: crate::supervision::supervision_figures(&orders, first, next),
    }))
}

/// [`bulletin`] over events already read; none for a malformed month.
pub fn bulletin_from(
    events: &[ArchivedEvent],
    month: &str,
    position: i64,
    published_at: Option<DateTime<Utc>>,
    limits: &Limits,
) -> Option<Bulletin> {
    let (first, next) = month_bounds(month)?;
    let figures = period_figures(events, first, next, limits);
    Some(Bulletin {
        month: month.to_owned(),
        as_of_position: position,
        published_at,
        districts: figures.districts,
        towns: figures.towns,
        departments: figures.departments,
        supervision: crate::supervision::supervision_figures(events, first, next),
    })
}

/// The figures of every area over a period, ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodFigures {
    /// The districts, ranked.
    pub districts: Vec<AreaFigures>,
    /// The towns, ranked within their district.
    pub towns: Vec<AreaFigures>,
    /// The departments, ranked.
    pub departments: Vec<AreaFigures>,
    /// Per unit, how many times a case was counted in its figures (a case once per figure).
    pub counted: BTreeMap<String, usize>,
    /// Per unit, every case counted in its figures and why, for the units [`Details`] asked for.
    pub details: BTreeMap<String, Vec<CountedCase>>,
}

/// Which units' counted cases a computation lists; how many there are is always counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Details {
    /// None: the figures alone (the assessment's answer, a bulletin).
    None,
    /// One unit's (the drill-down).
    Unit(String),
    /// Every unit's of one level (an assessment workbook's 明细: it ranks only that level's
    /// units, so listing the others' counted cases — a case counts in its district, its town
    /// and its department — would be work and memory thrown away).
    Level(UnitKind),
    /// Every unit's.
    All,
}

impl Details {
    pub(crate) fn wants(&self, unit: &str, units: &BTreeMap<String, Unit>) -> bool {
        match self {
            Self::None => false,
            Self::Unit(wanted) => wanted == unit,
            Self::Level(kind) => units.get(unit).is_some_and(|u| u.kind == *kind),
            Self::All => true,
        }
    }
}

/// Counts the figures of every area over the days `first` (included) to `next` (excluded), by
/// the rules of the monthly bulletin (the period may be a month, a quarter, a year), folding the
/// archived events.
pub fn period_figures(
    events: &[ArchivedEvent],
    first: NaiveDate,
    next: NaiveDate,
    limits: &Limits,
) -> PeriodFigures {
    let tracks = fold_tracks(events, first, next, limits);
    figures_of_tracks(&units_of(events), tracks, first, next, &Details::All)
}

/// Every case of `events` (archived events in log order) followed through the period: its state
/// at the end, whether it stood crossed off at the start, and what it counted — the events
/// stamped at or after the period's end left out, whatever their place in the log.
pub(crate) fn fold_tracks(
    events: &[ArchivedEvent],
    first: NaiveDate,
    next: NaiveDate,
    limits: &Limits,
) -> HashMap<String, CaseTrack> {
    let start = china_midnight(first);
    let end = china_midnight(next);
    let in_period = |day: NaiveDate| day >= first && day < next;
    let mut folds: HashMap<String, (CaseFigureFold, bool, Counts)> = HashMap::new();
    for archived in events {
        let DomainEvent::Case(event) = &archived.event else {
            continue;
        };
        if archived.occurred_at >= end {
            // After the period: only what the period itself decided counts.
            continue;
        }
        if let CaseEvent::Registered(e) = event {
            folds.insert(
                archived.aggregate_id.clone(),
                (CaseFigureFold::registered(e), false, Counts::new(true)),
            );
        }
        let Some((fold, crossed_off_at_start, counts)) = folds.get_mut(&archived.aggregate_id)
        else {
            continue;
        };
        if let Some(fact) = fold.apply(event, archived.occurred_at, limits)
            && in_period(fact.day)
        {
            counts.count(fact);
        }
        if archived.occurred_at < start {
            *crossed_off_at_start = fold.state.crossed_off;
        }
    }
    folds
        .into_iter()
        .map(|(case_id, (fold, crossed_off_at_start, counts))| {
            let track = CaseTrack {
                state: fold.state,
                crossed_off_at_start,
                counts,
            };
            (case_id, track)
        })
        .collect()
}

/// The directory as the archived events up to a position have it.
pub(crate) fn units_of(events: &[ArchivedEvent]) -> BTreeMap<String, Unit> {
    let mut units = BTreeMap::new();
    for archived in events {
        if let DomainEvent::Directory(DirectoryEvent::UnitAdded(e)) = &archived.event {
            units.insert(
                e.unit_id.clone(),
                Unit {
                    name: e.name.clone(),
                    parent: e.parent_id.clone(),
                    kind: e.kind,
                },
            );
        }
    }
    units
}

/// Closes the period for every case and sums the cases' counts into their areas: its district,
/// its town and, when the lead unit is a department, that department; ranks the areas.
pub(crate) fn figures_of_tracks(
    units: &BTreeMap<String, Unit>,
    cases: HashMap<String, CaseTrack>,
    first: NaiveDate,
    next: NaiveDate,
    wanted: &Details,
) -> PeriodFigures {
    tally_tracks(units, cases, first, next, wanted).ranked(units)
}

/// What cases add up to, area by area, before the areas are ranked.
#[derive(Debug, Default)]
pub(crate) struct AreaTally {
    /// The counts of each area.
    pub(crate) by_area: BTreeMap<String, Counts>,
    /// How many ways cases counted in each area.
    pub(crate) counted: BTreeMap<String, usize>,
    /// The counted cases of the areas asked for.
    pub(crate) details: BTreeMap<String, Vec<CountedCase>>,
}

impl AreaTally {
    /// The figures of every unit of the directory, ranked.
    pub(crate) fn ranked(self, units: &BTreeMap<String, Unit>) -> PeriodFigures {
        ranked_figures(units, &self.by_area, self.counted, self.details)
    }
}

/// Closes the period for every case and sums the cases' counts into their areas.
pub(crate) fn tally_tracks(
    units: &BTreeMap<String, Unit>,
    mut cases: HashMap<String, CaseTrack>,
    first: NaiveDate,
    next: NaiveDate,
    wanted: &Details,
) -> AreaTally {
    let in_period = |day: NaiveDate| day >= first && day < next;
    for case in cases.values_mut() {
        close_period(case, &in_period);
    }
    // The cases in the order of their numbers and each one's notes in order, each area's list
    // kept per figure: the lists come out in the order `ranked_figures` wants without sorting
    // a million rows.
    let mut ordered: Vec<(&String, &mut CaseTrack)> = cases.iter_mut().collect();
    ordered
        .sort_unstable_by(|a, b| (&a.1.state.case_number, a.0).cmp(&(&b.1.state.case_number, b.0)));
    let mut by_area: BTreeMap<String, Counts> = BTreeMap::new();
    let mut listed: BTreeMap<String, BTreeMap<&'static str, Vec<CountedCase>>> = BTreeMap::new();
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for (case_id, case) in ordered {
        case.counts.notes.sort_unstable_by(|a, b| {
            (a.figure, &a.reason, a.numerator).cmp(&(b.figure, &b.reason, b.numerator))
        });
        let areas = areas_of(
            units,
            &case.state.district,
            case.state.town.as_deref(),
            case.state.lead_unit.as_deref(),
        );
        for area in areas {
            merge(by_area.entry(area.clone()).or_default(), &case.counts);
            *counted.entry(area.clone()).or_default() += case.counts.noted;
            if !wanted.wants(&area, units) {
                continue;
            }
            let by_figure = listed.entry(area).or_default();
            for note in &case.counts.notes {
                by_figure.entry(note.figure).or_default().push(CountedCase {
                    figure: note.figure,
                    case_id: case_id.clone(),
                    case_number: case.state.case_number.clone(),
                    numerator: note.numerator,
                    reason: note.reason.clone(),
                });
            }
        }
    }
    let details = listed
        .into_iter()
        .map(|(area, by_figure)| {
            let mut all = Vec::with_capacity(by_figure.values().map(Vec::len).sum());
            for cases in by_figure.into_values() {
                all.extend(cases);
            }
            (area, all)
        })
        .collect();
    AreaTally {
        by_area,
        counted,
        details,
    }
}

/// The figures of every unit of the directory from the counts of its cases, ranked.
pub(crate) fn ranked_figures(
    units: &BTreeMap<String, Unit>,
    by_area: &BTreeMap<String, Counts>,
    counted: BTreeMap<String, usize>,
    mut details: BTreeMap<String, Vec<CountedCase>>,
) -> PeriodFigures {
    // A total order: the list does not depend on the order the facts were read in (the
    // projection's lists come in it already, unless two cases share a number).
    let order = |a: &CountedCase, b: &CountedCase| {
        (
            &a.figure,
            &a.case_number,
            &a.reason,
            a.numerator,
            &a.case_id,
        )
            .cmp(&(
                &b.figure,
                &b.case_number,
                &b.reason,
                b.numerator,
                &b.case_id,
            ))
    };
    for counted in details.values_mut() {
        if !counted.is_sorted_by(|a, b| order(a, b).is_le()) {
            counted.sort_unstable_by(order);
        }
    }
    let figures_of = |kind: UnitKind| -> Vec<AreaFigures> {
        units
            .iter()
            .filter(|(_, unit)| unit.kind == kind)
            .map(|(id, unit)| {
                let counts = by_area.get(id).cloned().unwrap_or_default();
                area_figures(id, unit, units, &counts)
            })
            .collect()
    };
    let mut districts = figures_of(UnitKind::District);
    rank(&mut districts);
    let mut towns = Vec::new();
    for district in &districts {
        let mut within: Vec<AreaFigures> = figures_of(UnitKind::Town)
            .into_iter()
            .filter(|t| t.district.as_deref() == Some(district.name.as_str()))
            .collect();
        rank(&mut within);
        towns.extend(within);
    }
    let mut departments = figures_of(UnitKind::Department);
    rank(&mut departments);
    PeriodFigures {
        districts,
        towns,
        departments,
        counted,
        details,
    }
}

/// Counts what the period's end decides for a case: clocks whose deadline fell in the period and
/// are still running at its end, whether it was on the list, owned, crossed off.
fn close_period(case: &mut CaseTrack, in_period: &impl Fn(NaiveDate) -> bool) {
    let state = &case.state;
    let counts = &mut case.counts;
    if let Some(due) = state.acceptance_pending_until
        && in_period(due)
    {
        counts.acceptance.add(false);
        counts.note(
            "timely_acceptance",
            false,
            format!("告知期限 {due} 已过，未告知"),
        );
    }
    if let Some(due) = state.handling_running_until
        && in_period(due)
    {
        counts.completion.add(false);
        counts.note(
            "on_time_completion",
            false,
            format!("办理期限 {due} 已过，未办结"),
        );
    }
    // A case followed at all was registered before the period's end.
    counts.on_list = !case.crossed_off_at_start;
    counts.owned_count = i64::from(counts.on_list && state.owned);
    counts.owned_crossed_off_count = i64::from(state.owned && counts.crossed_off);
    if counts.on_list {
        let crossed = counts.crossed_off;
        let reason = if crossed {
            "在清单，本期销号"
        } else {
            "在清单，本期未销号"
        };
        counts.note("resolution", crossed, reason);
        let owned = state.owned;
        counts.note(
            "ownership",
            owned,
            if owned {
                "已落实包案领导"
            } else {
                "未落实包案领导"
            },
        );
        if owned {
            counts.note("owned_resolution", crossed, reason);
        }
    }
}

impl Counts {
    /// Counts one fact of the period.
    pub(crate) fn count(&mut self, fact: FigureFact) {
        let day = fact.day;
        let reason = fact.reason;
        match fact.kind {
            FactKind::CrossedOff => self.crossed_off = true,
            FactKind::Reopened => {
                self.relapses += 1;
                self.note("relapses", true, reason);
            }
            FactKind::Petition => {
                self.petitions += 1;
                self.note("repeat_petitions", true, reason);
            }
            FactKind::Rating { rated, satisfied } => {
                self.rating_records += 1;
                if rated {
                    self.rated += 1;
                    self.note("satisfaction", satisfied, reason.clone());
                }
                if satisfied {
                    self.satisfied += 1;
                }
                self.note("participation", rated, reason);
            }
            FactKind::Activity { reception } => {
                self.activities += 1;
                if reception {
                    self.reception_days.insert(day);
                }
                self.note("leader_activities", true, reason);
            }
            FactKind::Acceptance { on_time } => {
                self.acceptance.add(on_time);
                self.note("timely_acceptance", on_time, reason);
            }
            FactKind::Completion { on_time } => {
                self.completion.add(on_time);
                self.note("on_time_completion", on_time, reason);
            }
        }
    }
}

fn merge(total: &mut Counts, case: &Counts) {
    total.acceptance.numerator += case.acceptance.numerator;
    total.acceptance.denominator += case.acceptance.denominator;
    total.completion.numerator += case.completion.numerator;
    total.completion.denominator += case.completion.denominator;
    total.petitions += case.petitions;
    total.relapses += case.relapses;
    total.satisfied += case.satisfied;
    total.rated += case.rated;
    total.rating_records += case.rating_records;
    total.activities += case.activities;
    total
        .reception_days
        .extend(case.reception_days.iter().copied());
    total.crossed_off_count += i64::from(case.crossed_off);
    total.owned_count += case.owned_count;
    total.owned_crossed_off_count += case.owned_crossed_off_count;
    total.on_list_count += i64::from(case.on_list);
}

fn area_figures(
    id: &str,
    unit: &Unit,
    units: &BTreeMap<String, Unit>,
    counts: &Counts,
) -> AreaFigures {
    AreaFigures {
        unit_id: id.to_owned(),
        name: unit.name.clone(),
        district: (unit.kind == UnitKind::Town)
            .then(|| {
                unit.parent
                    .as_ref()
                    .and_then(|p| units.get(p))
                    .map(|p| p.name.clone())
            })
            .flatten(),
        resolution: Ratio {
            numerator: counts.crossed_off_count,
            denominator: counts.on_list_count,
        },
        timely_acceptance: counts.acceptance,
        on_time_completion: counts.completion,
        repeat_petitions: counts.petitions,
        relapses: counts.relapses,
        satisfaction: Ratio {
            numerator: counts.satisfied,
            denominator: counts.rated,
        },
        participation: Ratio {
            numerator: counts.rated,
            denominator: counts.rating_records,
        },
        leader_activities: counts.activities,
        reception_days: i64::try_from(counts.reception_days.len()).unwrap_or(i64::MAX),
        ownership: Ratio {
            numerator: counts.owned_count,
            denominator: counts.on_list_count,
        },
        owned_resolution: Ratio {
            numerator: counts.owned_crossed_off_count,
            denominator: counts.owned_count,
        },
        rank: 0,
    }
}

/// Ranks by resolution rate, highest first; equal rates share a rank; areas with nothing on
/// the list come last. The order among equals is by name, so the output is stable.
fn rank(areas: &mut [AreaFigures]) {
    let key = |a: &AreaFigures| a.resolution.percent().map(|p| (p * 10.0).round() as i64);
    areas.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
    let mut previous: Option<Option<i64>> = None;
    let mut rank = 0;
    for (i, area) in areas.iter_mut().enumerate() {
        let this = key(area);
        if previous != Some(this) {
            rank = i + 1;
            previous = Some(this);
        }
        area.rank = rank;
    }
}

impl Bulletin {
    /// The workbook's creation time: publication (or the month's end for a draft).
    pub fn created(&self) -> chrono::NaiveDateTime {
        self.published_at.map_or_else(
            || {
                month_bounds(&self.month)
                    .map(|(_, next)| next.and_time(chrono::NaiveTime::MIN))
                    .unwrap_or_default()
            },
            |at| at.naive_utc(),
        )
    }
}
