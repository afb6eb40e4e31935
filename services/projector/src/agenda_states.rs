//! The agenda projection: what a weekly dispatch meeting's agenda (周调度) reads of each case, kept
//! with its validity so that "the cases as they stood at the meeting and a week before, as of
//! log position P" is an indexed read instead of a fold of every open case's events.
//!
//! - `agenda_states`: one row per change of what a case shows on an agenda — its next deadline,
//!   its owning leader, since when that leader last worked it, the claim waiting for review —
//!   while it can show on one at all, valid from its position and moment up to the next
//!   change's (`next_position`, `next_recorded_at`).
//! - `agenda_spans`, `agenda_spans_late`: each row's validity as rectangles over (position,
//!   second): in the first, while the position is before the next change's; in the second,
//!   from the next change's position on while the moment is before it. On SQLite they are
//!   R*Trees, so the rows valid at (P, T) are found without reading the rest (one tree each:
//!   the first kind is unbounded in moments and the second in positions, and a tree mixing
//!   them has nodes unbounded in both, which every search enters); on PostgreSQL plain tables
//!   with an index on each kind's bounded end.
//! - `agenda_flows`: registrations, crossings off and relapses, with their moment (the agenda's
//!   flow sections).
//! - `agenda_leaders`: each change of a case's owning leader (the flow sections show the owner
//!   at the meeting).
//! - `agenda_cases`: each case's identity, whether its events are stamped out of log order
//!   (`irregular`: the reader folds those from the archive), and the fold the next batch
//!   continues.
//!
//! [`AgendaCaseFold`] is the one rule of what a case shows: the archive computation in
//! `zhzj-figures` folds the same way, and tests compare the two at every position.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zhzj_deadlines::Limits;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::Dialect;

use crate::projection::{DeadLetter, ReadCommit};

mod fold;
use crate::sqlbuild::{Column, SqlValue, col, insert_rows, query_with_values};
pub use fold::{AgendaCaseFold, AgendaStanding, flow_of};

/// The version of this projection's tables and rules.
const SHAPE_VERSION: u32 = 2;

/// Cases kept in memory at most; past that the memory starts over.
const REMEMBERED_CASES: usize = 100_000;

/// The open end of a span's coordinates.
pub const SPAN_END: i64 = i32::MAX as i64;

/// The second a span's time coordinates count from (2020-01-01T00:00:00Z): seconds since it
/// fit the R*Tree's 32-bit integers until 2088.
const SPAN_EPOCH_SECONDS: i64 = 1_577_836_800;

/// A moment (microseconds since the epoch) as a span coordinate: its second, rounded down, so
/// a span is never narrower than the validity it stands for (readers check the exact moments).
pub fn span_second(micros: i64) -> i64 {
    (micros.div_euclid(1_000_000) - SPAN_EPOCH_SECONDS).clamp(-SPAN_END, SPAN_END)
}

/// A log position as a span coordinate.
pub fn span_position(position: i64) -> i64 {
    position.min(SPAN_END)
}

fn create_tables(dialect: Dialect, suffix: &str) -> Vec<String> {
    // SQLite makes an `INTEGER PRIMARY KEY` the row id, which the spans name.
    let id = match dialect {
        Dialect::Sqlite => "INTEGER",
        Dialect::Postgres => "BIGINT",
    };
    let spans = |table: &str| match dialect {
        Dialect::Sqlite => format!(
            "CREATE VIRTUAL TABLE {table}{suffix} USING rtree_i32(id, position_from, \
             position_to, second_from, second_to)"
        ),
        Dialect::Postgres => format!(
            "CREATE TABLE {table}{suffix} (id BIGINT PRIMARY KEY, position_from BIGINT NOT \
             NULL, position_to BIGINT NOT NULL, second_from BIGINT NOT NULL, second_to BIGINT \
             NOT NULL)"
        ),
    };
    // PostgreSQL has no R*Tree: an index on each kind's bounded end keeps a meeting held now
    // (few rows open at its position, few closed after its moment) from scanning the spans.
    let span_indexes = match dialect {
        Dialect::Sqlite => Vec::new(),
        Dialect::Postgres => vec![
            format!("CREATE INDEX agenda_spans{suffix}_to ON agenda_spans{suffix} (position_to)"),
            format!(
                "CREATE INDEX agenda_spans_late{suffix}_to ON agenda_spans_late{suffix} \
                 (second_to)"
            ),
        ],
    };
    vec![
        format!(
            "CREATE TABLE agenda_states{suffix} (
                id               {id} PRIMARY KEY,
                case_id          TEXT   NOT NULL,
                position         BIGINT NOT NULL,
                recorded_at      BIGINT NOT NULL,
                next_position    BIGINT,
                next_recorded_at BIGINT,
                district_id      TEXT   NOT NULL,
                town_id          TEXT,
                due_on           TEXT,
                due_step         TEXT,
                leader_name      TEXT,
                idle_since       TEXT,
                idle_worked      BIGINT NOT NULL,
                claim            BIGINT,
                claim_since      TEXT,
                claim_passed     BIGINT NOT NULL
            )"
        ),
        spans("agenda_spans"),
        spans("agenda_spans_late"),
        format!(
            "CREATE TABLE agenda_flows{suffix} (
                position    BIGINT NOT NULL,
                event_index BIGINT NOT NULL,
                case_id     TEXT   NOT NULL,
                recorded_at BIGINT NOT NULL,
                kind        TEXT   NOT NULL,
                detail      TEXT   NOT NULL,
                case_number   TEXT NOT NULL,
                matter        TEXT NOT NULL,
                district_id   TEXT NOT NULL,
                district_name TEXT NOT NULL,
                town_id       TEXT,
                town_name     TEXT,
                PRIMARY KEY (position, event_index)
            )"
        ),
        format!("CREATE INDEX agenda_flows{suffix}_at ON agenda_flows{suffix} (recorded_at)"),
        format!(
            "CREATE TABLE agenda_leaders{suffix} (
                case_id     TEXT   NOT NULL,
                position    BIGINT NOT NULL,
                event_index BIGINT NOT NULL,
                recorded_at BIGINT NOT NULL,
                leader_name TEXT   NOT NULL,
                PRIMARY KEY (case_id, position, event_index)
            )"
        ),
        // The owner at a moment is read from the index alone.
        format!(
            "CREATE INDEX agenda_leaders{suffix}_covering ON agenda_leaders{suffix} \
             (case_id, position, event_index, recorded_at, leader_name)"
        ),
        format!(
            "CREATE TABLE agenda_cases{suffix} (
                case_id       TEXT   PRIMARY KEY,
                case_number   TEXT   NOT NULL,
                matter        TEXT   NOT NULL,
                district_id   TEXT   NOT NULL,
                district_name TEXT   NOT NULL,
                town_id       TEXT,
                town_name     TEXT,
                irregular     BIGINT NOT NULL,
                fold          TEXT   NOT NULL
            )"
        ),
        format!("CREATE INDEX agenda_cases{suffix}_irregular ON agenda_cases{suffix} (irregular)"),
    ]
    .into_iter()
    .chain(span_indexes)
    .collect()
}

/// Whether an event can change what a case shows on an agenda: those of its lifecycle (the
/// clocks, the stage, the claims, registrations, crossings off and relapses) and of its owner.
/// Notes, measures and responsible units are not read, nor are their cases loaded.
fn shows_on_agenda(event: &CaseEvent) -> bool {
    crate::lifecycle::is_lifecycle(event)
        || matches!(
            event,
            CaseEvent::LeaderAssigned(_)
                | CaseEvent::LeaderReassigned(_)
                | CaseEvent::LeaderActivity(_)
        )
}

/// A case as the projection carries it between batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaseRecord {
    fold: AgendaCaseFold,
    /// The last event folded in: (position, index in its commit).
    last: (i64, i64),
    last_recorded_at: i64,
    /// Whether an event came stamped before one folded earlier.
    irregular: bool,
    /// The stored row still open (`next_position` null): its id, position and moment.
    open_row: Option<(i64, i64, i64)>,
}

/// Cases by id, as most recently written.
type CaseMemory = HashMap<String, CaseRecord>;

/// A change of what a case shows, from (position, index, moment) on.
struct Change {
    position: i64,
    index: i64,
    recorded_at: i64,
    standing: AgendaStanding,
}

/// A case touched by a batch: its record and what the batch changed.
struct Touched {
    changes: Vec<Change>,
    flows: Vec<Vec<SqlValue>>,
    leaders: Vec<Vec<SqlValue>>,
}

async fn load_cases(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    ids: Vec<String>,
) -> Result<CaseMemory, sqlx::Error> {
    let mut cases = CaseMemory::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT case_id, fold FROM agenda_cases{suffix} WHERE case_id IN ({})",
            crate::sqlbuild::placeholders(dialect, chunk.len())
        );
        let values = chunk.iter().cloned().map(SqlValue::Text).collect();
        for row in query_with_values(sql, values)?
            .fetch_all(&mut *conn)
            .await?
        {
            let fold: String = row.try_get("fold")?;
            cases.insert(
                row.try_get("case_id")?,
                serde_json::from_str(&fold).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            );
        }
    }
    Ok(cases)
}

/// Folds one event into its case's record and the batch's changes (none when it was folded in
/// already).
fn fold_event(
    record: &mut CaseRecord,
    touched: &mut Touched,
    (position, index): (i64, i64),
    event: &CaseEvent,
    occurred_at: DateTime<Utc>,
    limits: &Limits,
) {
    if (position, index) <= record.last {
        // Folded in already: a replay changes nothing.
        return;
    }
    let recorded_at = occurred_at.timestamp_micros();
    let at_event = |values: Vec<SqlValue>| {
        let mut row = vec![SqlValue::Int(position), SqlValue::Int(index)];
        row.extend(values);
        row
    };
    if recorded_at < record.last_recorded_at {
        record.irregular = true;
    }
    let before = record.fold.standing();
    record.fold.apply(event, occurred_at, limits);
    let after = record.fold.standing();
    if let Some((kind, detail)) = flow_of(event) {
        touched.flows.push(at_event(vec![
            SqlValue::Int(recorded_at),
            SqlValue::Text(kind.to_owned()),
            SqlValue::Text(detail),
        ]));
    }
    if matches!(
        event,
        CaseEvent::LeaderAssigned(_) | CaseEvent::LeaderReassigned(_)
    ) && let Some(leader) = &record.fold.leader
    {
        touched.leaders.push(at_event(vec![
            SqlValue::Int(recorded_at),
            SqlValue::Text(leader.name.clone()),
        ]));
    }
    if after != before || record.last.0 < 0 {
        // A change at the same position and moment as the one before hides it: no (P, T)
        // sees the one without the other.
        if touched
            .changes
            .last()
            .is_some_and(|c| c.position == position && c.recorded_at == recorded_at)
        {
            touched.changes.pop();
        }
        touched.changes.push(Change {
            position,
            index,
            recorded_at,
            standing: after,
        });
    }
    record.last = (position, index);
    record.last_recorded_at = record.last_recorded_at.max(recorded_at);
}

async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
    limits: &Limits,
    memory: &mut CaseMemory,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    if memory.len() > REMEMBERED_CASES {
        memory.clear();
    }
    let (_, to_load) =
        crate::checklist::cases_to_load_for(batch, shows_on_agenda, |id| memory.contains_key(id));
    memory.extend(load_cases(conn, dialect, suffix, to_load).await?);
    let mut touched: BTreeMap<String, Touched> = BTreeMap::new();
    for commit in batch {
        let position = crate::sqlbuild::sql_position(commit.position);
        for ((envelope, event), index) in commit.envelopes.iter().zip(&commit.events).zip(0_i64..) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if !shows_on_agenda(event) {
                continue;
            }
            let case_id = &envelope.aggregate_id;
            if let CaseEvent::Registered(e) = event
                && !memory.contains_key(case_id)
            {
                memory.insert(
                    case_id.clone(),
                    CaseRecord {
                        fold: AgendaCaseFold::registered(e),
                        last: (-1, -1),
                        last_recorded_at: i64::MIN,
                        irregular: false,
                        open_row: None,
                    },
                );
            }
            // An event of a case never registered shows nowhere.
            let Some(record) = memory.get_mut(case_id) else {
                continue;
            };
            let entry = touched.entry(case_id.clone()).or_insert_with(|| Touched {
                changes: Vec::new(),
                flows: Vec::new(),
                leaders: Vec::new(),
            });
            fold_event(
                record,
                entry,
                (position, index),
                event,
                envelope.occurred_at,
                limits,
            );
        }
    }
    write(conn, dialect, suffix, memory, touched).await?;
    Ok(Vec::new())
}

const STATE_COLUMNS: [Column; 16] = [
    col("id"),
    col("case_id"),
    col("position"),
    col("recorded_at"),
    col("next_position"),
    col("next_recorded_at"),
    col("district_id"),
    col("town_id"),
    col("due_on"),
    col("due_step"),
    col("leader_name"),
    col("idle_since"),
    col("idle_worked"),
    col("claim"),
    col("claim_since"),
    col("claim_passed"),
];

const SPAN_COLUMNS: [Column; 5] = [
    col("id"),
    col("position_from"),
    col("position_to"),
    col("second_from"),
    col("second_to"),
];

/// The id of the row a change at (position, index) starts.
fn row_id(position: i64, index: i64) -> i64 {
    position
        .saturating_mul(65_536)
        .saturating_add(index.min(65_535))
}

/// The spans of a row valid from (position, moment) until (next position, next moment): while
/// the position is before the next (none when the next is in the same commit), and after it
/// while the moment is before the next (none when the next is stamped earlier: only an
/// irregular case's, which readers fold from the archive).
fn spans(
    id: i64,
    from: (i64, i64),
    until: Option<(i64, i64)>,
) -> (Option<Vec<SqlValue>>, Option<Vec<SqlValue>>) {
    let (position, at) = from;
    let span = |positions: (i64, i64), seconds: (i64, i64)| {
        (positions.0 <= positions.1 && seconds.0 <= seconds.1).then(|| {
            vec![
                SqlValue::Int(id),
                SqlValue::Int(positions.0),
                SqlValue::Int(positions.1),
                SqlValue::Int(seconds.0),
                SqlValue::Int(seconds.1),
            ]
        })
    };
    let from_position = span_position(position);
    match until {
        None => (
            span((from_position, SPAN_END), (span_second(at), SPAN_END)),
            None,
        ),
        Some((next_position, next_at)) => (
            span(
                (from_position, span_position(next_position - 1)),
                (span_second(at), SPAN_END),
            ),
            span(
                (span_position(next_position), SPAN_END),
                (span_second(at), span_second(next_at)),
            ),
        ),
    }
}

fn day_text(day: Option<NaiveDate>) -> SqlValue {
    SqlValue::OptText(day.map(|d| d.to_string()))
}

fn state_row(
    id: i64,
    case_id: &str,
    fold: &AgendaCaseFold,
    change: &Change,
    until: Option<(i64, i64)>,
) -> Vec<SqlValue> {
    let s = &change.standing;
    vec![
        SqlValue::Int(id),
        SqlValue::Text(case_id.to_owned()),
        SqlValue::Int(change.position),
        SqlValue::Int(change.recorded_at),
        SqlValue::OptInt(until.map(|u| u.0)),
        SqlValue::OptInt(until.map(|u| u.1)),
        SqlValue::Text(fold.district.id.clone()),
        SqlValue::OptText(fold.town.as_ref().map(|t| t.id.clone())),
        day_text(s.due.as_ref().map(|d| d.0)),
        SqlValue::OptText(s.due.as_ref().map(|d| d.1.clone())),
        SqlValue::OptText(s.leader.clone()),
        day_text(s.idle.map(|i| i.0)),
        SqlValue::Int(i64::from(s.idle.is_some_and(|i| i.1))),
        SqlValue::OptInt(s.claim.map(|c| i64::from(c.0))),
        day_text(s.claim.map(|c| c.1)),
        SqlValue::Int(s.claim.map_or(0, |c| i64::from(c.2))),
    ]
}

const FLOW_COLUMNS: [Column; 12] = [
    col("position"),
    col("event_index"),
    col("case_id"),
    col("recorded_at"),
    col("kind"),
    col("detail"),
    col("case_number"),
    col("matter"),
    col("district_id"),
    col("district_name"),
    col("town_id"),
    col("town_name"),
];

const LEADER_COLUMNS: [Column; 5] = [
    col("case_id"),
    col("position"),
    col("event_index"),
    col("recorded_at"),
    col("leader_name"),
];

const CASE_COLUMNS: [Column; 9] = [
    col("case_id"),
    col("case_number"),
    col("matter"),
    col("district_id"),
    col("district_name"),
    col("town_id"),
    col("town_name"),
    col("irregular"),
    col("fold"),
];

/// The rows a batch adds, by table.
#[derive(Default)]
struct BatchRows {
    states: Vec<Vec<SqlValue>>,
    spans: Vec<Vec<SqlValue>>,
    late_spans: Vec<Vec<SqlValue>>,
    flows: Vec<Vec<SqlValue>>,
    leaders: Vec<Vec<SqlValue>>,
    cases: Vec<Vec<SqlValue>>,
}

impl BatchRows {
    async fn insert(
        self,
        conn: &mut sqlx::AnyConnection,
        dialect: Dialect,
        suffix: &str,
    ) -> Result<(), sqlx::Error> {
        let case_tail = "ON CONFLICT (case_id) DO UPDATE SET irregular = excluded.irregular, fold = excluded.fold";
        for (table, columns, rows, tail) in [
            ("agenda_states", &STATE_COLUMNS[..], self.states, ""),
            ("agenda_spans", &SPAN_COLUMNS[..], self.spans, ""),
            ("agenda_spans_late", &SPAN_COLUMNS[..], self.late_spans, ""),
            ("agenda_flows", &FLOW_COLUMNS[..], self.flows, ""),
            ("agenda_leaders", &LEADER_COLUMNS[..], self.leaders, ""),
            ("agenda_cases", &CASE_COLUMNS[..], self.cases, case_tail),
        ] {
            let table = format!("{table}{suffix}");
            insert_rows(conn, dialect, &table, columns, rows, tail).await?;
        }
        Ok(())
    }
}

/// Closes each touched case's open row at its first change, stores the listable changes (each
/// closed by the next), the flows, the leaders and the records.
async fn write(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    memory: &mut CaseMemory,
    touched: BTreeMap<String, Touched>,
) -> Result<(), sqlx::Error> {
    let mut out = BatchRows::default();
    for (case_id, touched) in touched {
        let Some(record) = memory.get_mut(&case_id) else {
            continue;
        };
        if let (Some((id, position, at)), Some(first)) = (record.open_row, touched.changes.first())
        {
            let until = (first.position, first.recorded_at);
            let (before_next, after_next) = spans(id, (position, at), Some(until));
            close_row(conn, suffix, id, until, before_next.is_some()).await?;
            out.late_spans.extend(after_next);
            record.open_row = None;
        }
        let nexts: Vec<Option<(i64, i64)>> = touched
            .changes
            .iter()
            .skip(1)
            .map(|c| Some((c.position, c.recorded_at)))
            .chain(std::iter::once(None))
            .collect();
        for (change, until) in touched.changes.iter().zip(nexts) {
            if !change.standing.listable() {
                continue;
            }
            let id = row_id(change.position, change.index);
            out.states
                .push(state_row(id, &case_id, &record.fold, change, until));
            let (before_next, after_next) = spans(id, (change.position, change.recorded_at), until);
            out.spans.extend(before_next);
            out.late_spans.extend(after_next);
            if until.is_none() {
                record.open_row = Some((id, change.position, change.recorded_at));
            }
        }
        let f = &record.fold;
        let identity = [
            SqlValue::Text(f.case_number.clone()),
            SqlValue::Text(f.matter.clone()),
            SqlValue::Text(f.district.id.clone()),
            SqlValue::Text(f.district.name.clone()),
            SqlValue::OptText(f.town.as_ref().map(|t| t.id.clone())),
            SqlValue::OptText(f.town.as_ref().map(|t| t.name.clone())),
        ];
        for mut flow in touched.flows {
            flow.insert(2, SqlValue::Text(case_id.clone()));
            flow.extend(identity.iter().cloned());
            out.flows.push(flow);
        }
        for leader in touched.leaders {
            let mut row = vec![SqlValue::Text(case_id.clone())];
            row.extend(leader);
            out.leaders.push(row);
        }
        let fold = serde_json::to_string(record).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let mut case_row = vec![SqlValue::Text(case_id)];
        case_row.extend(identity);
        case_row.extend([
            SqlValue::Int(i64::from(record.irregular)),
            SqlValue::Text(fold),
        ]);
        out.cases.push(case_row);
    }
    out.insert(conn, dialect, suffix).await
}

/// Closes a stored row at the change that follows it: its validity, and its first span (which
/// goes when nothing is left of it).
async fn close_row(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    id: i64,
    (next_position, next_at): (i64, i64),
    span_left: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE agenda_states{suffix} SET next_position = $1, next_recorded_at = $2 WHERE id = $3"
    )))
    .bind(next_position)
    .bind(next_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if span_left {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE agenda_spans{suffix} SET position_to = $1 WHERE id = $2"
        )))
        .bind(span_position(next_position - 1))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM agenda_spans{suffix} WHERE id = $1"
        )))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

crate::projection::projection_kind! {
    /// The agenda projection: what each case shows on a dispatch meeting's agenda, with its
    /// validity over positions and moments.
    AgendaView {
        name: "agenda",
        tables: [
            "agenda_states",
            "agenda_spans",
            "agenda_spans_late",
            "agenda_flows",
            "agenda_leaders",
            "agenda_cases"
        ],
        create: |dialect, suffix| create_tables(dialect, suffix),
        fingerprint: |settings| format!("shape={SHAPE_VERSION};limits={}", settings.limits.describe()),
        apply: |conn, dialect, suffix, batch, run| {
            let settings = std::sync::Arc::clone(&run.settings);
            let mut memory = run.take_memory::<CaseMemory>();
            let result = apply(conn, dialect, suffix, batch, &settings.limits, &mut memory).await;
            run.keep_memory(memory);
            result
        },
    }
}
