//! The agenda's case sections read from the agenda projection (`zhzj_projector::agenda_states`):
//! the rows valid at the meeting and a week before as of its position, found through their
//! spans, and the flows of the two weeks — for every case whose events are stamped in log
//! order (the others are folded from the archive by the caller).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;
use sqlx::Row;
use zhzj_projector::agenda_states::{AgendaStanding, span_position, span_second};
use zhzj_store::{ReadStore, china_date};

use super::{AgendaRequest, CaseName, CaseSections, DUE_SOON_DAYS, FIRST_STATE};
use crate::FiguresError;

/// The rows of `agenda_states` valid at ($1 position, $2 its span coordinate, $3 the moment's
/// second, $4 the moment): a row's spans hold the point, and the exact bounds are checked on
/// the row (spans count whole seconds). Cases folded from the archive are left out.
const VALID: &str = "s.id IN (SELECT id FROM agenda_spans WHERE position_from <= $2 \
     AND position_to >= $2 AND second_from <= $3 AND second_to >= $3 UNION ALL \
     SELECT id FROM agenda_spans_late WHERE position_from <= $2 \
     AND position_to >= $2 AND second_from <= $3 AND second_to >= $3) \
     AND s.position <= $1 AND s.recorded_at <= $4 \
     AND (s.next_position IS NULL OR s.next_position > $1 OR s.next_recorded_at > $4) \
     AND s.case_id NOT IN (SELECT case_id FROM agenda_cases WHERE irregular = 1)";

/// Last week's state sections counted per place by the rules of `state_entries` ($5 the day,
/// $6 the last day due soon, $7 the day before which an owner's last work makes a case idle).
const STATE_COUNTS: &str = "SUM(CASE WHEN s.due_on < $5 THEN 1 ELSE 0 END) AS overdue, \
     SUM(CASE WHEN s.due_on >= $5 AND s.due_on <= $6 THEN 1 ELSE 0 END) AS due_soon, \
     SUM(CASE WHEN s.idle_since < $7 THEN 1 ELSE 0 END) AS idle, \
     SUM(CASE WHEN s.claim IS NOT NULL THEN 1 ELSE 0 END) AS waiting";

/// A moment's binds: the position, its span coordinate, the moment's second and the moment, then
/// the day, the last day due soon and the idle cutoff.
fn bind_moment<'q>(
    sql: &'q str,
    request: &AgendaRequest,
    at: DateTime<Utc>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let micros = at.timestamp_micros();
    let today = china_date(at);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(request.as_of_position)
        .bind(span_position(request.as_of_position))
        .bind(span_second(micros))
        .bind(micros)
        .bind(today.to_string())
        .bind((today + Duration::days(DUE_SOON_DAYS)).to_string())
        .bind(idle_cutoff(today, request.idle_days).to_string())
}

/// The day before which an owner's last work makes a case idle at `today`; a threshold
/// reaching before any date gives the first date, before which nothing is.
fn idle_cutoff(today: NaiveDate, idle_days: i64) -> NaiveDate {
    Duration::try_days(idle_days)
        .and_then(|days| today.checked_sub_signed(days))
        .unwrap_or(NaiveDate::MIN)
}

/// Whether a row's place (`district_id`, `town_id`) is one of `units`.
fn row_in_scope(row: &sqlx::any::AnyRow, units: &[String]) -> Result<bool, FiguresError> {
    let district: String = row.try_get("district_id")?;
    let town: Option<String> = row.try_get("town_id")?;
    Ok(units.contains(&district) || town.is_some_and(|t| units.contains(&t)))
}

/// A row's case as an agenda row names it.
fn case_name(row: &sqlx::any::AnyRow) -> Result<CaseName, FiguresError> {
    Ok(CaseName {
        case_number: row.try_get("case_number")?,
        matter: row.try_get("matter")?,
        district: row.try_get("district_name")?,
        town: row.try_get("town_name")?,
    })
}

fn day(text: Option<String>) -> Result<Option<NaiveDate>, FiguresError> {
    text.map(|t| t.parse::<NaiveDate>())
        .transpose()
        .map_err(|e| FiguresError::Sql(sqlx::Error::Decode(Box::new(e))))
}

fn standing(row: &sqlx::any::AnyRow) -> Result<AgendaStanding, FiguresError> {
    let due = day(row.try_get("due_on")?)?;
    let step: Option<String> = row.try_get("due_step")?;
    let idle = day(row.try_get("idle_since")?)?;
    let claim: Option<i64> = row.try_get("claim")?;
    let claim_since = day(row.try_get("claim_since")?)?;
    let number = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(AgendaStanding {
        due: due.map(|on| (on, step.unwrap_or_default())),
        leader: row.try_get("leader_name")?,
        idle: idle.map(|since| {
            (
                since,
                row.try_get::<i64, _>("idle_worked").unwrap_or(0) != 0,
            )
        }),
        claim: match (claim, claim_since) {
            (Some(claim), Some(since)) => Some((
                number(claim),
                since,
                number(row.try_get::<i64, _>("claim_passed")?),
            )),
            _ => None,
        },
    })
}

/// The case sections of the cases the projection answers for: this week's state rows and
/// flows, last week's counts of both, read side by side on connections of their own.
pub(super) async fn case_sections(
    store: &ReadStore,
    request: &AgendaRequest,
    units: &[String],
) -> Result<CaseSections, FiguresError> {
    let (mut sections, counted, flowed, flows_counted) = futures::try_join!(
        list_states(store, request, units),
        count_states(store, request, units),
        flows(store, request, units),
        flow_counts(store, request, units),
    )?;
    sections.merge(counted);
    sections.merge(flowed);
    sections.merge(flows_counted);
    Ok(sections)
}

/// This week's state rows: those some state section can list (the rules then decide which).
async fn list_states(
    store: &ReadStore,
    request: &AgendaRequest,
    units: &[String],
) -> Result<CaseSections, FiguresError> {
    let mut sections = CaseSections::default();
    let at = request.held_at;
    let today = china_date(at);
    let listing = format!(
        "SELECT s.case_id, s.district_id, s.town_id, s.due_on, s.due_step, s.leader_name, \
         s.idle_since, s.idle_worked, s.claim, s.claim_since, s.claim_passed, c.case_number, \
         c.matter, c.district_name, c.town_name \
         FROM agenda_states s JOIN agenda_cases c ON c.case_id = s.case_id \
         WHERE {VALID} AND (s.due_on <= $6 OR s.idle_since < $7 OR s.claim IS NOT NULL)"
    );
    let mut conn = store.pool().acquire().await?;
    let mut rows = bind_moment(&listing, request, at).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        if !row_in_scope(&row, units)? {
            continue;
        }
        let case_id: String = row.try_get("case_id")?;
        let name = case_name(&row)?;
        let standing = standing(&row)?;
        sections.list_states(&case_id, &name, &standing, today, request.idle_days);
    }
    Ok(sections)
}

/// Last week's state counts, per place.
async fn count_states(
    store: &ReadStore,
    request: &AgendaRequest,
    units: &[String],
) -> Result<CaseSections, FiguresError> {
    let mut sections = CaseSections::default();
    let counts = format!(
        "SELECT s.district_id, s.town_id, {STATE_COUNTS} FROM agenda_states s \
         WHERE {VALID} GROUP BY s.district_id, s.town_id"
    );
    let week_ago = request.held_at - Duration::days(7);
    let mut conn = store.pool().acquire().await?;
    for row in bind_moment(&counts, request, week_ago)
        .fetch_all(&mut *conn)
        .await?
    {
        if !row_in_scope(&row, units)? {
            continue;
        }
        for (draft, column) in sections.0[FIRST_STATE..]
            .iter_mut()
            .zip(["overdue", "due_soon", "idle", "waiting"])
        {
            let count: Option<i64> = row.try_get(column)?;
            draft.last += usize::try_from(count.unwrap_or(0)).unwrap_or(0);
        }
    }
    Ok(sections)
}

/// The flows of two weeks not left to the archive: registrations, crossings off, relapses.
const FLOWS: &str = "FROM agenda_flows f WHERE f.recorded_at > $3 AND f.recorded_at <= $2 \
     AND f.position <= $1 \
     AND f.case_id NOT IN (SELECT case_id FROM agenda_cases WHERE irregular = 1)";

/// This week's flow rows: registrations, crossings off and relapses, each case named with its
/// owner at the meeting.
async fn flows(
    store: &ReadStore,
    request: &AgendaRequest,
    units: &[String],
) -> Result<CaseSections, FiguresError> {
    let mut sections = CaseSections::default();
    let at = request.held_at;
    let sql = format!(
        "SELECT f.position, f.case_id, f.recorded_at, f.kind, f.detail, f.case_number, \
         f.matter, f.district_name, f.town_name, f.district_id, f.town_id, \
         (SELECT l.leader_name FROM agenda_leaders l WHERE l.case_id = f.case_id \
          AND l.position <= $1 AND l.recorded_at <= $2 \
          ORDER BY l.position DESC, l.event_index DESC LIMIT 1) AS leader_name {FLOWS}"
    );
    let mut conn = store.pool().acquire().await?;
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(request.as_of_position)
        .bind(at.timestamp_micros())
        .bind((at - Duration::days(7)).timestamp_micros())
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        if !row_in_scope(&row, units)? {
            continue;
        }
        let kind: String = row.try_get("kind")?;
        let Some(draft) = sections.flow(&kind) else {
            continue;
        };
        let recorded_at: i64 = row.try_get("recorded_at")?;
        let moment = DateTime::<Utc>::from_timestamp_micros(recorded_at).ok_or_else(|| {
            sqlx::Error::Decode(format!("a stored moment out of range: {recorded_at}").into())
        })?;
        let case_id: String = row.try_get("case_id")?;
        let row_out = case_name(&row)?.row(
            &case_id,
            row.try_get("leader_name")?,
            Some(china_date(moment)),
            row.try_get("detail")?,
        );
        draft.rows.push((row.try_get("position")?, row_out));
    }
    Ok(sections)
}

/// Last week's flows, counted per kind and place.
async fn flow_counts(
    store: &ReadStore,
    request: &AgendaRequest,
    units: &[String],
) -> Result<CaseSections, FiguresError> {
    let mut sections = CaseSections::default();
    let week_ago = request.held_at - Duration::days(7);
    let sql = format!(
        "SELECT f.kind, f.district_id, f.town_id, COUNT(*) AS flows {FLOWS} \
         GROUP BY f.kind, f.district_id, f.town_id"
    );
    let mut conn = store.pool().acquire().await?;
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(request.as_of_position)
        .bind(week_ago.timestamp_micros())
        .bind((week_ago - Duration::days(7)).timestamp_micros())
        .fetch_all(&mut *conn)
        .await?
    {
        let kind: String = row.try_get("kind")?;
        if !row_in_scope(&row, units)? {
            continue;
        }
        if let Some(draft) = sections.flow(&kind) {
            draft.last += usize::try_from(row.try_get::<i64, _>("flows")?).unwrap_or(0);
        }
    }
    Ok(sections)
}
