//! The checklist view (清单): one row per case with what a coordinator scans for — number,
//! matter, place, owning leader, responsible units, measures done of total, dates, version.
//!
//! A batch is folded in memory (touched rows read once, written once with a multi-row upsert), so
//! catching up on a long log costs little more than inserting the rows.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{Column, SqlValue, col, insert_rows, query_with_values, update_rows};

/// Rows most recently written, by case id.
pub(crate) type RowMemory = std::collections::HashMap<String, ChecklistRow>;

/// Rows kept in memory at most; past that the memory starts over.
const REMEMBERED_ROWS: usize = 200_000;

/// One row of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChecklistRow {
    case_id: String,
    case_number: String,
    matter: String,
    category: String,
    district_id: String,
    district_name: String,
    town_id: Option<String>,
    town_name: Option<String>,
    leader_id: Option<String>,
    leader_name: Option<String>,
    lead_unit_id: Option<String>,
    lead_unit_name: Option<String>,
    assisting_units: Option<String>,
    measures_total: i64,
    measures_done: i64,
    registered_at: String,
    /// Kept as a time and formatted once per write, not once per event.
    last_activity_at: DateTime<Utc>,
    version: i64,
}

const COLUMNS: [Column; 18] = [
    col("case_id"),
    col("case_number"),
    col("matter"),
    col("category"),
    col("district_id"),
    col("district_name"),
    col("town_id"),
    col("town_name"),
    col("leader_id"),
    col("leader_name"),
    col("lead_unit_id"),
    col("lead_unit_name"),
    col("assisting_units"),
    col("measures_total"),
    col("measures_done"),
    col("registered_at"),
    col("last_activity_at"),
    col("version"),
];

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE checklist_rows{suffix} (
                case_id          TEXT    PRIMARY KEY,
                case_number      TEXT    NOT NULL,
                matter           TEXT    NOT NULL,
                category         TEXT    NOT NULL,
                district_id      TEXT    NOT NULL,
                district_name    TEXT    NOT NULL,
                town_id          TEXT,
                town_name        TEXT,
                leader_id        TEXT,
                leader_name      TEXT,
                lead_unit_id     TEXT,
                lead_unit_name   TEXT,
                assisting_units  TEXT,
                measures_total   BIGINT  NOT NULL,
                measures_done    BIGINT  NOT NULL,
                registered_at    TEXT    NOT NULL,
                last_activity_at TEXT    NOT NULL,
                version          BIGINT  NOT NULL
            )"
        ),
        format!(
            "CREATE INDEX checklist_rows{suffix}_district ON checklist_rows{suffix} (district_id, town_id)"
        ),
        format!("CREATE INDEX checklist_rows{suffix}_leader ON checklist_rows{suffix} (leader_id)"),
    ]
}

/// The key and the columns that change after registration.
const PROGRESS_COLUMNS: [Column; 10] = [
    col("case_id"),
    col("leader_id"),
    col("leader_name"),
    col("lead_unit_id"),
    col("lead_unit_name"),
    col("assisting_units"),
    col("measures_total"),
    col("measures_done"),
    col("last_activity_at"),
    col("version"),
];

fn progress_values(row: &ChecklistRow) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(row.case_id.clone()),
        SqlValue::OptText(row.leader_id.clone()),
        SqlValue::OptText(row.leader_name.clone()),
        SqlValue::OptText(row.lead_unit_id.clone()),
        SqlValue::OptText(row.lead_unit_name.clone()),
        SqlValue::OptText(row.assisting_units.clone()),
        SqlValue::Int(row.measures_total),
        SqlValue::Int(row.measures_done),
        SqlValue::Text(timestamp_text(row.last_activity_at)),
        SqlValue::Int(row.version),
    ]
}

fn to_values(row: &ChecklistRow) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(row.case_id.clone()),
        SqlValue::Text(row.case_number.clone()),
        SqlValue::Text(row.matter.clone()),
        SqlValue::Text(row.category.clone()),
        SqlValue::Text(row.district_id.clone()),
        SqlValue::Text(row.district_name.clone()),
        SqlValue::OptText(row.town_id.clone()),
        SqlValue::OptText(row.town_name.clone()),
        SqlValue::OptText(row.leader_id.clone()),
        SqlValue::OptText(row.leader_name.clone()),
        SqlValue::OptText(row.lead_unit_id.clone()),
        SqlValue::OptText(row.lead_unit_name.clone()),
        SqlValue::OptText(row.assisting_units.clone()),
        SqlValue::Int(row.measures_total),
        SqlValue::Int(row.measures_done),
        SqlValue::Text(row.registered_at.clone()),
        SqlValue::Text(timestamp_text(row.last_activity_at)),
        SqlValue::Int(row.version),
    ]
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<ChecklistRow, sqlx::Error> {
    Ok(ChecklistRow {
        case_id: row.try_get("case_id")?,
        case_number: row.try_get("case_number")?,
        matter: row.try_get("matter")?,
        category: row.try_get("category")?,
        district_id: row.try_get("district_id")?,
        district_name: row.try_get("district_name")?,
        town_id: row.try_get("town_id")?,
        town_name: row.try_get("town_name")?,
        leader_id: row.try_get("leader_id")?,
        leader_name: row.try_get("leader_name")?,
        lead_unit_id: row.try_get("lead_unit_id")?,
        lead_unit_name: row.try_get("lead_unit_name")?,
        assisting_units: row.try_get("assisting_units")?,
        measures_total: row.try_get("measures_total")?,
        measures_done: row.try_get("measures_done")?,
        registered_at: row.try_get("registered_at")?,
        last_activity_at: {
            let text: String = row.try_get("last_activity_at")?;
            DateTime::parse_from_rfc3339(&text)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                .with_timezone(&Utc)
        },
        version: row.try_get("version")?,
    })
}

async fn load_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    table: &str,
    ids: Vec<String>,
) -> Result<RowMemory, sqlx::Error> {
    let mut rows = RowMemory::new();
    for chunk in ids.chunks(500) {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let sql = format!(
            "SELECT {} FROM {table} WHERE case_id IN ({})",
            names.join(", "),
            crate::sqlbuild::placeholders(dialect, chunk.len())
        );
        let values = chunk.iter().cloned().map(SqlValue::Text).collect();
        for row in query_with_values(sql, values)?
            .fetch_all(&mut *conn)
            .await?
        {
            let row = from_row(&row)?;
            rows.insert(row.case_id.clone(), row);
        }
    }
    Ok(rows)
}

/// The cases a batch touches that it does not register and that are not `remembered` (their
/// rows are read first), in key order, and the cases it registers: what a projection keeping a
/// row per case in memory reads before applying a batch.
pub(crate) fn cases_to_load(
    batch: &[ReadCommit],
    remembered: impl Fn(&str) -> bool,
) -> (HashSet<&str>, Vec<String>) {
    cases_to_load_for(batch, |_| true, remembered)
}

/// [`cases_to_load`] counting only the events `wanted` (a projection that ignores the others
/// need not read the cases only they touch).
pub(crate) fn cases_to_load_for(
    batch: &[ReadCommit],
    wanted: impl Fn(&CaseEvent) -> bool,
    remembered: impl Fn(&str) -> bool,
) -> (HashSet<&str>, Vec<String>) {
    let mut registered_here = HashSet::new();
    let mut to_load = Vec::new();
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let id = envelope.aggregate_id.as_str();
            match event {
                DomainEvent::Case(CaseEvent::Registered(_)) => {
                    registered_here.insert(id);
                }
                DomainEvent::Case(event)
                    if wanted(event) && !registered_here.contains(id) && !remembered(id) =>
                {
                    to_load.push(id.to_owned());
                }
                _ => {}
            }
        }
    }
    to_load.sort_unstable();
    to_load.dedup();
    (registered_here, to_load)
}

/// A case's checklist row as its registration makes it.
fn registered_row(
    case_id: &str,
    e: &zhzj_proto::events::CaseRegistered,
    at: chrono::DateTime<chrono::Utc>,
    position: i64,
) -> ChecklistRow {
    ChecklistRow {
        case_id: case_id.to_owned(),
        case_number: e.case_number.clone(),
        matter: e.matter.clone(),
        category: e.category.clone(),
        district_id: e.district.id.clone(),
        district_name: e.district.name.clone(),
        town_id: e.town.as_ref().map(|t| t.id.clone()),
        town_name: e.town.as_ref().map(|t| t.name.clone()),
        leader_id: None,
        leader_name: None,
        lead_unit_id: None,
        lead_unit_name: None,
        assisting_units: None,
        measures_total: 0,
        measures_done: 0,
        registered_at: timestamp_text(at),
        last_activity_at: at,
        version: position,
    }
}

/// Applies a later event of a case to its row; whether it is work on the case (a repair of the
/// history, or an erasure, is not: it moves only the row's version).
fn is_work(row: &mut ChecklistRow, event: &CaseEvent) -> bool {
    match event {
        CaseEvent::Registered(_) => {}
        CaseEvent::LeaderAssigned(e) => {
            row.leader_id = Some(e.leader.id.clone());
            row.leader_name = Some(e.leader.name.clone());
        }
        CaseEvent::LeaderReassigned(e) => {
            row.leader_id = Some(e.to.id.clone());
            row.leader_name = Some(e.to.name.clone());
        }
        CaseEvent::ResponsibleUnitsSet(e) => {
            row.lead_unit_id = Some(e.lead.id.clone());
            row.lead_unit_name = Some(e.lead.name.clone());
            let names: Vec<&str> = e.assisting.iter().map(|u| u.name.as_str()).collect();
            row.assisting_units = (!names.is_empty()).then(|| names.join("、"));
        }
        CaseEvent::MeasureAdded(_) => row.measures_total += 1,
        CaseEvent::MeasureCompleted(_) => row.measures_done += 1,
        // The lifecycle view keeps these; here they only count as activity.
        CaseEvent::NoteRecorded(_)
        | CaseEvent::Classified(_)
        | CaseEvent::ResolutionClaimed(_)
        | CaseEvent::ClaimAccepted(_)
        | CaseEvent::ClaimSentBack(_)
        | CaseEvent::CrossedOff(_)
        | CaseEvent::PetitionRecorded(_)
        | CaseEvent::Reopened(_)
        | CaseEvent::SatisfactionRated(_)
        | CaseEvent::LeaderActivity(_)
        | CaseEvent::HandlingExtended(_)
        | CaseEvent::ProcedureStep(_) => {}
        // A repair of the history, or an erasure, is no work on the case: it moves only
        // its version.
        CaseEvent::UnreadableCommitsSkipped(_) | CaseEvent::PetitionerErased(_) => {
            return false;
        }
    }
    true
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
    memory: &mut RowMemory,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let table = format!("checklist_rows{suffix}");
    if memory.len() > REMEMBERED_ROWS {
        memory.clear();
    }
    let (registered_here, to_load) = cases_to_load(batch, |id| memory.contains_key(id));
    // The memory is the working set: rows are changed in place. If this batch does not commit,
    // the caller drops the memory with everything else.
    memory.extend(load_rows(conn, dialect, &table, to_load).await?);
    let rows = memory;
    let mut touched = HashSet::new();
    let mut dead = Vec::new();
    for commit in batch {
        let position = crate::sqlbuild::sql_position(commit.position);
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            let at = envelope.occurred_at;
            if let CaseEvent::Registered(e) = event {
                rows.insert(
                    envelope.aggregate_id.clone(),
                    registered_row(&envelope.aggregate_id, e, at, position),
                );
                touched.insert(envelope.aggregate_id.as_str());
                continue;
            }
            let Some(row) = rows.get_mut(&envelope.aggregate_id) else {
                dead.push(DeadLetter {
                    position: commit.position,
                    subject: format!("zhzj.ev.case.{}", envelope.aggregate_id),
                    reason: format!(
                        "{} for case {} that is not on the checklist",
                        envelope.event_type, envelope.aggregate_id
                    ),
                    payload: envelope.data.get().to_owned(),
                });
                continue;
            };
            if is_work(row, event) {
                row.last_activity_at = at;
            }
            row.version = position;
            touched.insert(envelope.aggregate_id.as_str());
        }
    }
    // In key order: the database walks its index once instead of jumping about. Rows
    // registered in this batch are inserted whole; rows that were already there get only the
    // columns that events after registration change.
    let mut touched: Vec<&str> = touched.into_iter().collect();
    touched.sort_unstable();
    let mut inserted = Vec::new();
    let mut progressed = Vec::new();
    for row in touched.iter().filter_map(|id| rows.get(*id)) {
        if registered_here.contains(row.case_id.as_str()) {
            inserted.push(to_values(row));
        } else {
            progressed.push(progress_values(row));
        }
    }
    let updates: Vec<String> = COLUMNS[1..]
        .iter()
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect();
    let tail = format!("ON CONFLICT (case_id) DO UPDATE SET {}", updates.join(", "));
    insert_rows(conn, dialect, &table, &COLUMNS, inserted, &tail).await?;
    update_rows(conn, dialect, &table, &PROGRESS_COLUMNS, progressed).await?;
    Ok(dead)
}

crate::projection::projection_kind! {
    /// The checklist view: one row per case.
    ChecklistView {
        name: "checklist",
        tables: ["checklist_rows"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, run| {
            let mut memory = run.take_memory::<RowMemory>();
            let dead = apply(conn, dialect, suffix, batch, &mut memory).await?;
            run.keep_memory(memory);
            Ok(dead)
        },
    }
}
