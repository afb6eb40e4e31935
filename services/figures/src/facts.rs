//! A period's figures read from the figures projection (`figure_facts`, `figure_states`) instead
//! of folded from the whole archive: the cases as they stood at the period's end and start, and
//! the facts of the period, each bounded by the log position asked for — so the answer at a
//! position is the archive computation's at that position, whatever was written since.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use futures::TryStreamExt;
use sqlx::Row;
use zhzj_deadlines::Limits;
use zhzj_projector::figure_facts::{CaseFigureState, FactKind, FigureFact};
use zhzj_projector::{Projection, checkpoint};
use zhzj_store::{ReadStore, china_midnight};

use crate::FiguresError;
use crate::archive::events_up_to;
use crate::bulletin::{
    AreaTally, CaseTrack, Counts, Details, PeriodFigures, Unit, areas_of, fold_tracks,
    period_figures, ranked_figures, tally_tracks, units_of,
};

/// The as-of rule: the rows of `figure_states` valid at the moment bound to parameter `at`
/// (microseconds) as of the position bound to `$1` — the last change of each case recorded
/// before that moment, at or before that position. Every read of the states uses it.
fn valid_at(at: &str) -> String {
    format!(
        "position <= $1 AND recorded_at < {at} \
         AND (next_position IS NULL OR next_position > $1 OR next_recorded_at >= {at})"
    )
}

/// The figures of every area over the days `first` (included) to `next` (excluded) as of log
/// position `position`: from the figures projection when it has reached the position, else
/// folded from the archive (the same rules, slower).
pub async fn period_figures_at(
    store: &ReadStore,
    first: NaiveDate,
    next: NaiveDate,
    position: i64,
    limits: &Limits,
    details: &Details,
) -> Result<PeriodFigures, FiguresError> {
    if projection_reached(store, position).await? {
        from_projection(store, first, next, position, details, limits).await
    } else {
        let events = events_up_to(store, &["case", "unit"], position).await?;
        let (limits, details) = (limits.clone(), details.clone());
        crate::off_the_runtime(move || {
            let mut figures = period_figures(&events, first, next, &limits);
            let units = units_of(&events);
            figures
                .details
                .retain(|unit, _| details.wants(unit, &units));
            figures
        })
        .await
    }
}

/// Whether the figures projection has applied the log up to `position`.
pub async fn projection_reached(store: &ReadStore, position: i64) -> Result<bool, FiguresError> {
    reached(store, Projection::FIGURES, position).await
}

/// Whether `projection` has applied the log up to `position`.
pub(crate) async fn reached(
    store: &ReadStore,
    projection: Projection,
    position: i64,
) -> Result<bool, FiguresError> {
    let mut conn = store.pool().acquire().await?;
    let checkpoint = checkpoint::read(&mut conn, projection).await?;
    Ok(checkpoint.is_some_and(|c| i64::try_from(c.position).is_ok_and(|p| p >= position)))
}

fn date_of(text: Option<String>) -> Option<NaiveDate> {
    text.and_then(|t| t.parse().ok())
}

/// A period as the projection's tables are read for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) first: NaiveDate,
    pub(crate) next: NaiveDate,
    /// The period's first moment, in microseconds.
    pub(crate) start: i64,
    /// The moment after it, in microseconds.
    pub(crate) end: i64,
    pub(crate) position: i64,
}

impl Window {
    /// The days `first` (included) to `next` (excluded) as of log position `position`.
    fn new(first: NaiveDate, next: NaiveDate, position: i64) -> Self {
        Self {
            first,
            next,
            start: china_midnight(first).timestamp_micros(),
            end: china_midnight(next).timestamp_micros(),
            position,
        }
    }
}

/// The period's figures from the projection (which must have reached `position`): case by case
/// when counted cases are listed; else from the running sums (`sums`), or summed in SQL from
/// every case's state when too many cases were touched since.
///
/// `limits` must be those the projection was computed with: the cases whose events are stamped
/// out of log order are folded from the archive with them (see [`case_by_case`]).
pub async fn from_projection(
    store: &ReadStore,
    first: NaiveDate,
    next: NaiveDate,
    position: i64,
    details: &Details,
    limits: &Limits,
) -> Result<PeriodFigures, FiguresError> {
    let window = Window::new(first, next, position);
    let units = units_of(&events_up_to(store, &["unit"], position).await?);
    if *details != Details::None {
        let mut conn = store.pool().acquire().await?;
        let tally = case_by_case(&mut conn, &units, window, details, false, limits).await?;
        return Ok(tally.ranked(&units));
    }
    match crate::sums::summed(store, &units, window, MOST_TOUCHED, limits).await? {
        Some(tally) => Ok(tally.ranked(&units)),
        None => summed_in_sql(store, &units, window, limits).await,
    }
}

/// The period's figures summed in SQL from every case's state, whatever the number of cases
/// touched since (for tests: the route [`from_projection`] takes when many were).
pub async fn from_sql_sums(
    store: &ReadStore,
    first: NaiveDate,
    next: NaiveDate,
    position: i64,
    limits: &Limits,
) -> Result<PeriodFigures, FiguresError> {
    let window = Window::new(first, next, position);
    let units = units_of(&events_up_to(store, &["unit"], position).await?);
    summed_in_sql(store, &units, window, limits).await
}

/// The cases whose events are stamped out of log order (one stamped before the one logged
/// before it). For them `figure_states`' validity intervals overlap — two rows can both be
/// valid at one moment — so they are never read from the states and facts but folded from
/// their archived events, as the archive computation folds them.
pub(crate) const IRREGULAR_CASES: &str = "SELECT case_id FROM figure_cases WHERE irregular = 1";

/// The irregular cases' tracks over the window, folded from their archived events.
async fn irregular_tracks(
    conn: &mut sqlx::AnyConnection,
    window: Window,
    limits: &Limits,
) -> Result<HashMap<String, CaseTrack>, FiguresError> {
    let ids: Vec<String> = sqlx::query_scalar(IRREGULAR_CASES)
        .fetch_all(&mut *conn)
        .await?;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let events = crate::archive::events_of_on(conn, "case", &ids, &[], window.position).await?;
    Ok(fold_tracks(&events, window.first, window.next, limits))
}

/// The most cases touched since a period's end or the position asked for that are counted one
/// by one beside the running sums; beyond, every case is read (`summed_in_sql`).
const MOST_TOUCHED: usize = 20_000;

/// The period's figures from the running sums alone, however many cases were touched since
/// (for tests: the route [`from_projection`] takes when few were).
pub async fn from_running_sums(
    store: &ReadStore,
    first: NaiveDate,
    next: NaiveDate,
    position: i64,
    limits: &Limits,
) -> Result<PeriodFigures, FiguresError> {
    let window = Window::new(first, next, position);
    let units = units_of(&events_up_to(store, &["unit"], position).await?);
    let tally = crate::sums::summed(store, &units, window, usize::MAX, limits)
        .await?
        .unwrap_or_default();
    Ok(tally.ranked(&units))
}

/// The period's figures from each case's state and facts, listing the counted cases of the
/// units `details` asks for; only of the cases touched since (`sums::touched_cases`) when
/// `touched_only` (the irregular cases always are). The irregular cases are folded from the
/// archive ([`IRREGULAR_CASES`]).
pub(crate) async fn case_by_case(
    conn: &mut sqlx::AnyConnection,
    units: &BTreeMap<String, Unit>,
    window: Window,
    details: &Details,
    touched_only: bool,
    limits: &Limits,
) -> Result<AreaTally, FiguresError> {
    let only = |position: &str, end: &str| {
        let regular = format!(" AND case_id NOT IN ({IRREGULAR_CASES})");
        if touched_only {
            format!(
                "{regular} AND case_id IN ({})",
                crate::sums::touched_cases(position, end)
            )
        } else {
            regular
        }
    };
    let Window {
        first,
        next,
        start,
        end,
        position,
    } = window;
    let mut cases = irregular_tracks(conn, window, limits).await?;
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT case_id, case_number, district_id, town_id, lead_unit, owned, crossed_off, \
         acceptance_pending_until, handling_running_until FROM figure_states \
         WHERE {}{}",
        valid_at("$2"),
        only("$1", "$2")
    )))
    .bind(position)
    .bind(end)
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let state = CaseFigureState {
            case_number: row.try_get("case_number")?,
            district: row.try_get("district_id")?,
            town: row.try_get("town_id")?,
            lead_unit: row.try_get("lead_unit")?,
            owned: row.try_get::<i64, _>("owned")? != 0,
            crossed_off: row.try_get::<i64, _>("crossed_off")? != 0,
            acceptance_pending_until: date_of(row.try_get("acceptance_pending_until")?),
            handling_running_until: date_of(row.try_get("handling_running_until")?),
        };
        // Why a case counted is kept only for a unit whose counted cases are listed.
        let listed = [
            Some(&state.district),
            state.town.as_ref(),
            state.lead_unit.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|unit| details.wants(unit, units));
        cases.insert(
            row.try_get("case_id")?,
            CaseTrack {
                state,
                crossed_off_at_start: false,
                counts: Counts::new(listed),
            },
        );
    }
    drop(rows);
    let mut crossed = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "SELECT case_id FROM figure_states WHERE {} AND crossed_off = 1{}",
        valid_at("$2"),
        only("$1", "$3")
    )))
    .bind(position)
    .bind(start)
    .bind(end)
    .fetch(&mut *conn);
    while let Some(case_id) = crossed.try_next().await? {
        if let Some(case) = cases.get_mut(&case_id) {
            case.crossed_off_at_start = true;
        }
    }
    drop(crossed);
    let day = facts_day(conn, first, next).await?;
    let mut facts = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT case_id, kind, day, yes, flag, reason FROM figure_facts \
         WHERE {day} >= $1 AND {day} < $2 AND recorded_at < $3 AND position <= $4{}",
        only("$4", "$3")
    )))
    .bind(first.to_string())
    .bind(next.to_string())
    .bind(end)
    .bind(position)
    .fetch(&mut *conn);
    // Columns by position and text borrowed from the row: this loop reads every fact of the
    // period (833,000 for 100,000 cases in a year).
    while let Some(row) = facts.try_next().await? {
        let case_id: &str = row.try_get(0)?;
        let Some(case) = cases.get_mut(case_id) else {
            continue;
        };
        let kind: &str = row.try_get(1)?;
        let day: &str = row.try_get(2)?;
        let yes = row.try_get::<i64, _>(3)? != 0;
        let flag = row.try_get::<i64, _>(4)? != 0;
        let unreadable = |reason: String| FiguresError::Unreadable { position, reason };
        let fact = FigureFact {
            kind: FactKind::from_columns(kind, yes, flag)
                .ok_or_else(|| unreadable(format!("figure fact of unknown kind `{kind}`")))?,
            day: day
                .parse()
                .map_err(|e| unreadable(format!("figure fact day `{day}`: {e}")))?,
            reason: row.try_get(5)?,
        };
        case.counts.count(fact);
    }
    drop(facts);
    let (units, details) = (units.clone(), details.clone());
    crate::off_the_runtime(move || tally_tracks(&units, cases, first, next, &details)).await
}

/// How the facts of the days `first` to `next` are found: the `day` column, which SQLite reads
/// through its index, or `+day`, which makes it read the table whole — four times less work
/// (0.12 s against 0.45 s for the 833,000 facts of a year) when the period holds a large part
/// of the facts, as a year's assessment does: the planner, without statistics, takes the index
/// for any range. The part is estimated from the first and last days the table holds.
/// PostgreSQL keeps its own statistics and chooses by itself.
async fn facts_day(
    conn: &mut sqlx::AnyConnection,
    first: NaiveDate,
    next: NaiveDate,
) -> Result<&'static str, FiguresError> {
    /// The part of the facts from which the whole table is read.
    const WHOLE_TABLE_FROM: f64 = 0.25;
    if conn.backend_name() != "SQLite" {
        return Ok("day");
    }
    let (earliest, latest): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT (SELECT MIN(day) FROM figure_facts), (SELECT MAX(day) FROM figure_facts)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let (Some(earliest), Some(latest)) = (date_of(earliest), date_of(latest)) else {
        return Ok("day");
    };
    let held = (latest - earliest).num_days() + 1;
    let asked = (next.min(latest + chrono::Days::new(1)) - first.max(earliest)).num_days();
    let part = asked.max(0) as f64 / held as f64;
    Ok(if part >= WHOLE_TABLE_FROM {
        "+day"
    } else {
        "day"
    })
}

/// What the cases of one (district, town, lead unit) add up to over a period, summed in SQL:
/// `$1` the position, `$2` the period's end, `$3` its start, `$4`/`$5` its first and next day.
fn group_sums() -> String {
    format!(
        "
WITH e AS (
    SELECT case_id, district_id, town_id, lead_unit, owned, acceptance_pending_until,
           handling_running_until
    FROM figure_states WHERE {at_end} AND case_id NOT IN ({IRREGULAR_CASES})),
s AS (
    SELECT case_id FROM figure_states WHERE {at_start} AND crossed_off = 1),
f AS (
    SELECT case_id,
        SUM(CASE WHEN kind = 'crossed_off' THEN 1 ELSE 0 END) AS crossed,
        SUM(CASE WHEN kind = 'reopened' THEN 1 ELSE 0 END) AS relapses,
        SUM(CASE WHEN kind = 'petition' THEN 1 ELSE 0 END) AS petitions,
        SUM(CASE WHEN kind = 'rating' THEN 1 ELSE 0 END) AS rating_records,
        SUM(CASE WHEN kind = 'rating' AND flag = 1 THEN 1 ELSE 0 END) AS rated,
        SUM(CASE WHEN kind = 'rating' AND yes = 1 THEN 1 ELSE 0 END) AS satisfied,
        SUM(CASE WHEN kind = 'activity' THEN 1 ELSE 0 END) AS activities,
        SUM(CASE WHEN kind = 'acceptance' THEN 1 ELSE 0 END) AS acceptances,
        SUM(CASE WHEN kind = 'acceptance' AND yes = 1 THEN 1 ELSE 0 END) AS acceptances_on_time,
        SUM(CASE WHEN kind = 'completion' THEN 1 ELSE 0 END) AS completions,
        SUM(CASE WHEN kind = 'completion' AND yes = 1 THEN 1 ELSE 0 END) AS completions_on_time
    FROM figure_facts
    WHERE day >= $4 AND day < $5 AND recorded_at < $2 AND position <= $1
    GROUP BY case_id),
c AS (
    SELECT e.district_id, e.town_id, e.lead_unit,
        CASE WHEN s.case_id IS NULL THEN 1 ELSE 0 END AS on_list,
        CASE WHEN e.owned = 1 THEN 1 ELSE 0 END AS owned,
        CASE WHEN COALESCE(f.crossed, 0) > 0 THEN 1 ELSE 0 END AS crossed,
        CASE WHEN e.acceptance_pending_until >= $4 AND e.acceptance_pending_until < $5
             THEN 1 ELSE 0 END AS acceptance_overdue,
        CASE WHEN e.handling_running_until >= $4 AND e.handling_running_until < $5
             THEN 1 ELSE 0 END AS handling_overdue,
        COALESCE(f.relapses, 0) AS relapses, COALESCE(f.petitions, 0) AS petitions,
        COALESCE(f.rating_records, 0) AS rating_records, COALESCE(f.rated, 0) AS rated,
        COALESCE(f.satisfied, 0) AS satisfied, COALESCE(f.activities, 0) AS activities,
        COALESCE(f.acceptances, 0) AS acceptances,
        COALESCE(f.acceptances_on_time, 0) AS acceptances_on_time,
        COALESCE(f.completions, 0) AS completions,
        COALESCE(f.completions_on_time, 0) AS completions_on_time
    FROM e LEFT JOIN s ON s.case_id = e.case_id LEFT JOIN f ON f.case_id = e.case_id)
SELECT district_id, town_id, lead_unit,
    CAST(SUM(on_list) AS BIGINT) AS on_list,
    CAST(SUM(on_list * owned) AS BIGINT) AS owned_on_list,
    CAST(SUM(crossed) AS BIGINT) AS crossed,
    CAST(SUM(owned * crossed) AS BIGINT) AS owned_crossed,
    CAST(SUM(acceptance_overdue) AS BIGINT) AS acceptance_overdue,
    CAST(SUM(handling_overdue) AS BIGINT) AS handling_overdue,
    CAST(SUM(relapses) AS BIGINT) AS relapses,
    CAST(SUM(petitions) AS BIGINT) AS petitions,
    CAST(SUM(rating_records) AS BIGINT) AS rating_records,
    CAST(SUM(rated) AS BIGINT) AS rated,
    CAST(SUM(satisfied) AS BIGINT) AS satisfied,
    CAST(SUM(activities) AS BIGINT) AS activities,
    CAST(SUM(acceptances) AS BIGINT) AS acceptances,
    CAST(SUM(acceptances_on_time) AS BIGINT) AS acceptances_on_time,
    CAST(SUM(completions) AS BIGINT) AS completions,
    CAST(SUM(completions_on_time) AS BIGINT) AS completions_on_time
FROM c GROUP BY district_id, town_id, lead_unit",
        at_end = valid_at("$2"),
        at_start = valid_at("$3"),
    )
}

/// The days a reception was held on the cases of one (district, town, lead unit): `$1` the
/// position, `$2` the period's end, `$3`/`$4` its first and next day.
fn reception_days() -> String {
    format!(
        "
WITH e AS (
    SELECT case_id, district_id, town_id, lead_unit FROM figure_states
    WHERE {at_end} AND case_id NOT IN ({IRREGULAR_CASES}))
SELECT DISTINCT e.district_id, e.town_id, e.lead_unit, f.day
FROM figure_facts f JOIN e ON e.case_id = f.case_id
WHERE f.kind = 'activity' AND f.flag = 1 AND f.day >= $3 AND f.day < $4
  AND f.recorded_at < $2 AND f.position <= $1",
        at_end = valid_at("$2"),
    )
}

/// The sums of one group of [`group_sums`].
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct GroupSums {
    pub(crate) district_id: String,
    pub(crate) town_id: Option<String>,
    pub(crate) lead_unit: Option<String>,
    pub(crate) on_list: i64,
    pub(crate) owned_on_list: i64,
    pub(crate) crossed: i64,
    pub(crate) owned_crossed: i64,
    pub(crate) acceptance_overdue: i64,
    pub(crate) handling_overdue: i64,
    pub(crate) relapses: i64,
    pub(crate) petitions: i64,
    pub(crate) rating_records: i64,
    pub(crate) rated: i64,
    pub(crate) satisfied: i64,
    pub(crate) activities: i64,
    pub(crate) acceptances: i64,
    pub(crate) acceptances_on_time: i64,
    pub(crate) completions: i64,
    pub(crate) completions_on_time: i64,
}

impl GroupSums {
    /// How many ways these cases counted: one per fact noted, one per overdue clock, and for
    /// each case on the list its resolution, its ownership and, owned, its owned resolution.
    pub(crate) fn noted(&self) -> i64 {
        self.relapses
            + self.petitions
            + self.rating_records
            + self.rated
            + self.activities
            + self.acceptances
            + self.completions
            + self.acceptance_overdue
            + self.handling_overdue
            + 2 * self.on_list
            + self.owned_on_list
    }

    pub(crate) fn add_to(&self, counts: &mut Counts) {
        counts.on_list_count += self.on_list;
        counts.owned_count += self.owned_on_list;
        counts.crossed_off_count += self.crossed;
        counts.owned_crossed_off_count += self.owned_crossed;
        counts.acceptance.numerator += self.acceptances_on_time;
        counts.acceptance.denominator += self.acceptances + self.acceptance_overdue;
        counts.completion.numerator += self.completions_on_time;
        counts.completion.denominator += self.completions + self.handling_overdue;
        counts.relapses += self.relapses;
        counts.petitions += self.petitions;
        counts.rating_records += self.rating_records;
        counts.rated += self.rated;
        counts.satisfied += self.satisfied;
        counts.activities += self.activities;
    }
}

/// The period's figures summed in SQL, without the counted cases: a few rows per district,
/// town and lead unit instead of one per case and fact.
async fn summed_in_sql(
    store: &ReadStore,
    units: &BTreeMap<String, Unit>,
    window: Window,
    limits: &Limits,
) -> Result<PeriodFigures, FiguresError> {
    // One snapshot: the irregular cases folded apart and left out of the sums.
    let mut snapshot = store.begin_snapshot().await?;
    let irregular = irregular_tracks(&mut snapshot, window, limits).await?;
    let AreaTally {
        mut by_area,
        mut counted,
        ..
    } = tally_tracks(units, irregular, window.first, window.next, &Details::None);
    let (first, next) = (window.first.to_string(), window.next.to_string());
    let groups: Vec<GroupSums> = sqlx::query_as(sqlx::AssertSqlSafe(group_sums()))
        .bind(window.position)
        .bind(window.end)
        .bind(window.start)
        .bind(&first)
        .bind(&next)
        .fetch_all(&mut *snapshot)
        .await?;
    for group in &groups {
        let noted = usize::try_from(group.noted()).unwrap_or(0);
        for area in areas_of(
            units,
            &group.district_id,
            group.town_id.as_deref(),
            group.lead_unit.as_deref(),
        ) {
            group.add_to(by_area.entry(area.clone()).or_default());
            *counted.entry(area).or_default() += noted;
        }
    }
    let days: Vec<(String, Option<String>, Option<String>, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(reception_days()))
            .bind(window.position)
            .bind(window.end)
            .bind(&first)
            .bind(&next)
            .fetch_all(&mut *snapshot)
            .await?;
    snapshot.commit().await?;
    for (district, town, lead, day) in days {
        let Ok(day) = day.parse::<NaiveDate>() else {
            return Err(FiguresError::Unreadable {
                position: window.position,
                reason: format!("figure fact day `{day}`"),
            });
        };
        for area in areas_of(units, &district, town.as_deref(), lead.as_deref()) {
            by_area.entry(area).or_default().reception_days.insert(day);
        }
    }
    Ok(ranked_figures(units, &by_area, counted, BTreeMap::new()))
}
