//! The leader view's projection (领导包案): what `GET /leaders` counts, kept as the events come
//! instead of counted over every case and activity on each request.
//!
//! - `leader_case_state`: one row per case — its place, owning leader, whether it is open (not
//!   crossed off), each leader's last activity on it, and `idle_since`, the day an owned open
//!   case was last worked by its owner (its registration day when never), null otherwise; an
//!   index on it finds the idle cases of any cutoff.
//! - `leader_place_cases`: owned and open cases per owning leader and place (district, town).
//! - `leader_place_months`: activities per leader, place of the case and month, with the last day.
//!
//! A reader whose scope is an area sums the place rows of its units; only the cases it reaches
//! otherwise (a leader's own cases, a department's responsible cases outside its area) are read
//! one by one.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{Column, SqlValue, col, insert_rows, query_with_values};

/// Case states most recently written, by case id.
type StateMemory = HashMap<String, CaseState>;

/// States kept in memory at most; past that the memory starts over.
const REMEMBERED_STATES: usize = 200_000;

/// The town of a case placed in no town, in the place tables' keys.
const NO_TOWN: &str = "";

/// One case as the leader view sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaseState {
    district_id: String,
    town_id: Option<String>,
    /// As the checklist has it (UTC timestamp text): the idle cases are listed in its order.
    registered_at: String,
    leader_id: Option<String>,
    open: bool,
    /// Each leader's last activity day on the case (`YYYY-MM-DD`).
    last_by_leader: BTreeMap<String, String>,
}

impl CaseState {
    /// The day an owned open case was last worked by its owner (its registration day when
    /// never); none for a case crossed off or owned by nobody.
    fn idle_since(&self) -> Option<String> {
        let owner = self.leader_id.as_ref().filter(|_| self.open)?;
        Some(match self.last_by_leader.get(owner) {
            Some(day) => day.clone(),
            None => self.registered_at.get(..10).unwrap_or_default().to_owned(),
        })
    }

    fn place(&self) -> (String, String) {
        (
            self.district_id.clone(),
            self.town_id.clone().unwrap_or_else(|| NO_TOWN.to_owned()),
        )
    }
}

const STATE_COLUMNS: [Column; 8] = [
    col("case_id"),
    col("district_id"),
    col("town_id"),
    col("registered_at"),
    col("leader_id"),
    col("open"),
    col("last_by_leader"),
    col("idle_since"),
];

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE leader_case_state{suffix} (
                case_id        TEXT    PRIMARY KEY,
                district_id    TEXT    NOT NULL,
                town_id        TEXT,
                registered_at  TEXT    NOT NULL,
                leader_id      TEXT,
                open           BIGINT  NOT NULL,
                last_by_leader TEXT    NOT NULL,
                idle_since     TEXT
            )"
        ),
        format!(
            "CREATE INDEX leader_case_state{suffix}_idle ON leader_case_state{suffix} (idle_since)"
        ),
        format!(
            "CREATE INDEX leader_case_state{suffix}_leader ON leader_case_state{suffix} (leader_id)"
        ),
        format!(
            "CREATE TABLE leader_place_cases{suffix} (
                leader_id   TEXT    NOT NULL,
                district_id TEXT    NOT NULL,
                town_id     TEXT    NOT NULL,
                owned       BIGINT  NOT NULL,
                open        BIGINT  NOT NULL,
                PRIMARY KEY (leader_id, district_id, town_id)
            )"
        ),
        format!(
            "CREATE TABLE leader_place_months{suffix} (
                leader_id   TEXT    NOT NULL,
                district_id TEXT    NOT NULL,
                town_id     TEXT    NOT NULL,
                month       TEXT    NOT NULL,
                activities  BIGINT  NOT NULL,
                last_on     TEXT    NOT NULL,
                PRIMARY KEY (leader_id, district_id, town_id, month)
            )"
        ),
    ]
}

async fn load_states(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    table: &str,
    ids: Vec<String>,
) -> Result<StateMemory, sqlx::Error> {
    let mut states = StateMemory::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT case_id, district_id, town_id, registered_at, leader_id, open, last_by_leader \
             FROM {table} WHERE case_id IN ({})",
            crate::sqlbuild::placeholders(dialect, chunk.len())
        );
        let values = chunk.iter().cloned().map(SqlValue::Text).collect();
        for row in query_with_values(sql, values)?
            .fetch_all(&mut *conn)
            .await?
        {
            let last: String = row.try_get("last_by_leader")?;
            states.insert(
                row.try_get("case_id")?,
                CaseState {
                    district_id: row.try_get("district_id")?,
                    town_id: row.try_get("town_id")?,
                    registered_at: row.try_get("registered_at")?,
                    leader_id: row.try_get("leader_id")?,
                    open: row.try_get::<i64, _>("open")? != 0,
                    last_by_leader: serde_json::from_str(&last)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                },
            );
        }
    }
    Ok(states)
}

/// What a batch adds to the place tables.
#[derive(Default)]
struct PlaceChanges {
    /// (leader, district, town) → owned and open cases added (or taken away).
    cases: BTreeMap<(String, String, String), (i64, i64)>,
    /// (leader, district, town, month) → activities added and the last day among them.
    months: BTreeMap<(String, String, String, String), (i64, String)>,
}

impl PlaceChanges {
    fn own(&mut self, leader: &str, state: &CaseState, owned: i64) {
        let (district, town) = state.place();
        let entry = self
            .cases
            .entry((leader.to_owned(), district, town))
            .or_default();
        entry.0 += owned;
        if state.open {
            entry.1 += owned;
        }
    }

    fn open(&mut self, state: &CaseState, opened: i64) {
        if let Some(leader) = &state.leader_id {
            let (district, town) = state.place();
            self.cases
                .entry((leader.clone(), district, town))
                .or_default()
                .1 += opened;
        }
    }

    fn activity(&mut self, leader: &str, state: &CaseState, day: &str) {
        let (district, town) = state.place();
        let month = day.get(..7).unwrap_or(day).to_owned();
        let entry = self
            .months
            .entry((leader.to_owned(), district, town, month))
            .or_default();
        entry.0 += 1;
        if *day > *entry.1 {
            entry.1 = day.to_owned();
        }
    }
}

/// Folds one later event of a case into its state and the batch's place changes; whether the
/// state changed (a case whose state did not change keeps its row as it is: a note or a measure
/// rewrites nothing).
fn fold(state: &mut CaseState, event: &CaseEvent, places: &mut PlaceChanges) -> bool {
    let owner = match event {
        CaseEvent::LeaderAssigned(e) => Some(&e.leader.id),
        CaseEvent::LeaderReassigned(e) => Some(&e.to.id),
        _ => None,
    };
    if let Some(owner) = owner {
        let before = state.leader_id.take();
        if let Some(before) = &before {
            places.own(before, state, -1);
        }
        places.own(owner, state, 1);
        state.leader_id = Some(owner.clone());
        return before.as_ref() != Some(owner);
    }
    let mut changed = false;
    // Open is "not crossed off", as the lifecycle view's stage says: crossing off closes a
    // case, and whatever moves its stage on again (a claim, a sending back, a reopening) opens it.
    let open = match event {
        CaseEvent::CrossedOff(_) => Some(false),
        CaseEvent::ResolutionClaimed(_) | CaseEvent::ClaimSentBack(_) | CaseEvent::Reopened(_) => {
            Some(true)
        }
        _ => None,
    };
    if let Some(open) = open.filter(|open| *open != state.open) {
        places.open(state, if open { 1 } else { -1 });
        state.open = open;
        changed = true;
    }
    if let CaseEvent::LeaderActivity(e) = event {
        let day = e.held_on.to_string();
        places.activity(&e.leader.id, state, &day);
        let last = state.last_by_leader.entry(e.leader.id.clone()).or_default();
        if day > *last {
            *last = day;
            changed = true;
        }
    }
    changed
}

async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
    memory: &mut StateMemory,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let table = format!("leader_case_state{suffix}");
    if memory.len() > REMEMBERED_STATES {
        memory.clear();
    }
    let (_, to_load) = crate::checklist::cases_to_load(batch, |id| memory.contains_key(id));
    memory.extend(load_states(conn, dialect, &table, to_load).await?);
    let mut places = PlaceChanges::default();
    let mut touched = HashSet::new();
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if let CaseEvent::Registered(e) = event {
                memory.insert(
                    envelope.aggregate_id.clone(),
                    CaseState {
                        district_id: e.district.id.clone(),
                        town_id: e.town.as_ref().map(|t| t.id.clone()),
                        registered_at: timestamp_text(envelope.occurred_at),
                        leader_id: None,
                        open: true,
                        last_by_leader: BTreeMap::new(),
                    },
                );
            } else if let Some(state) = memory.get_mut(&envelope.aggregate_id) {
                if !fold(state, event, &mut places) {
                    continue;
                }
            } else {
                // A case the checklist does not have is dead-lettered there; here it counts
                // nowhere.
                continue;
            }
            touched.insert(envelope.aggregate_id.as_str());
        }
    }
    let mut touched: Vec<&str> = touched.into_iter().collect();
    touched.sort_unstable();
    let mut rows = Vec::with_capacity(touched.len());
    for (id, state) in touched
        .iter()
        .filter_map(|id| Some((*id, memory.get(*id)?)))
    {
        let last = serde_json::to_string(&state.last_by_leader)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        rows.push(vec![
            SqlValue::Text(id.to_owned()),
            SqlValue::Text(state.district_id.clone()),
            SqlValue::OptText(state.town_id.clone()),
            SqlValue::Text(state.registered_at.clone()),
            SqlValue::OptText(state.leader_id.clone()),
            SqlValue::Int(i64::from(state.open)),
            SqlValue::Text(last),
            SqlValue::OptText(state.idle_since()),
        ]);
    }
    let updates: Vec<String> = STATE_COLUMNS[1..]
        .iter()
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect();
    let tail = format!("ON CONFLICT (case_id) DO UPDATE SET {}", updates.join(", "));
    insert_rows(conn, dialect, &table, &STATE_COLUMNS, rows, &tail).await?;
    write_places(conn, dialect, suffix, places).await?;
    Ok(Vec::new())
}

/// Adds a batch's place changes to the place tables.
async fn write_places(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    places: PlaceChanges,
) -> Result<(), sqlx::Error> {
    let cases_table = format!("leader_place_cases{suffix}");
    let rows = places
        .cases
        .into_iter()
        .filter(|(_, (owned, open))| *owned != 0 || *open != 0)
        .map(|((leader, district, town), (owned, open))| {
            vec![
                SqlValue::Text(leader),
                SqlValue::Text(district),
                SqlValue::Text(town),
                SqlValue::Int(owned),
                SqlValue::Int(open),
            ]
        })
        .collect();
    let tail = format!(
        "ON CONFLICT (leader_id, district_id, town_id) DO UPDATE SET \
         owned = {cases_table}.owned + excluded.owned, open = {cases_table}.open + excluded.open"
    );
    let columns = [
        col("leader_id"),
        col("district_id"),
        col("town_id"),
        col("owned"),
        col("open"),
    ];
    insert_rows(conn, dialect, &cases_table, &columns, rows, &tail).await?;
    let months_table = format!("leader_place_months{suffix}");
    let rows = places
        .months
        .into_iter()
        .map(|((leader, district, town, month), (activities, last))| {
            vec![
                SqlValue::Text(leader),
                SqlValue::Text(district),
                SqlValue::Text(town),
                SqlValue::Text(month),
                SqlValue::Int(activities),
                SqlValue::Text(last),
            ]
        })
        .collect();
    let later = match dialect {
        Dialect::Sqlite => "MAX",
        Dialect::Postgres => "GREATEST",
    };
    let tail = format!(
        "ON CONFLICT (leader_id, district_id, town_id, month) DO UPDATE SET \
         activities = {months_table}.activities + excluded.activities, \
         last_on = {later}({months_table}.last_on, excluded.last_on)"
    );
    let columns = [
        col("leader_id"),
        col("district_id"),
        col("town_id"),
        col("month"),
        col("activities"),
        col("last_on"),
    ];
    insert_rows(conn, dialect, &months_table, &columns, rows, &tail).await
}

crate::projection::projection_kind! {
    /// The leader view: owned, open and idle cases and activities per leader.
    LeadersView {
        name: "leaders",
        tables: ["leader_case_state", "leader_place_cases", "leader_place_months"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, run| {
            let mut memory = run.take_memory::<StateMemory>();
            let dead = apply(conn, dialect, suffix, batch, &mut memory).await?;
            run.keep_memory(memory);
            Ok(dead)
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use zhzj_proto::events::{
        ActivityKind, LeaderActivityRecorded, LeaderAssigned, LeaderRef, NoteRecorded,
    };

    use super::*;

    fn leader(id: &str) -> LeaderRef {
        LeaderRef {
            id: id.into(),
            name: format!("领导{id}"),
            title: "区委常委".into(),
            unit_id: "xm-siming".into(),
        }
    }

    fn activity(id: &str, day: u32) -> CaseEvent {
        CaseEvent::LeaderActivity(LeaderActivityRecorded {
            leader: leader(id),
            kind: ActivityKind::Reception,
            held_on: NaiveDate::from_ymd_opt(2026, 6, day).unwrap_or_default(),
            participants: Vec::new(),
            summary: "接访".into(),
        })
    }

    fn assigned(id: &str) -> CaseEvent {
        CaseEvent::LeaderAssigned(LeaderAssigned {
            leader: leader(id),
            reason: None,
        })
    }

    /// Each event folded in turn into an open case registered on 1 June: whether it changed
    /// the case's row, and the row's idle day after it.
    #[test]
    fn only_what_changes_a_case_s_row_rewrites_it() {
        let mut state = CaseState {
            district_id: "xm-siming".into(),
            town_id: None,
            registered_at: "2026-06-01T00:00:00.000000Z".into(),
            leader_id: None,
            open: true,
            last_by_leader: BTreeMap::new(),
        };
        let note = CaseEvent::NoteRecorded(NoteRecorded {
            text: "备注".into(),
        });
        let steps = [
            (note.clone(), false, None),
            (assigned("ldr-1"), true, Some("2026-06-01")),
            (assigned("ldr-1"), false, Some("2026-06-01")),
            (activity("ldr-1", 5), true, Some("2026-06-05")),
            (activity("ldr-1", 3), false, Some("2026-06-05")),
            (activity("ldr-2", 4), true, Some("2026-06-05")),
            (note, false, Some("2026-06-05")),
            (assigned("ldr-2"), true, Some("2026-06-04")),
        ];
        let mut places = PlaceChanges::default();
        for (n, (event, changes, idle_since)) in steps.into_iter().enumerate() {
            let before = state.clone();
            assert_eq!(fold(&mut state, &event, &mut places), changes, "step {n}");
            assert_eq!(state != before, changes, "step {n}: the state itself");
            assert_eq!(state.idle_since().as_deref(), idle_since, "step {n}");
        }
        // The activities count in the place tables whether or not they moved the last day.
        assert_eq!(places.months.values().map(|(n, _)| n).sum::<i64>(), 3);
    }
}
