//! The figures projection: what every case event contributes to the bulletin's and the
//! assessment's figures, kept from the log so that a figure over a period as of log position P
//! is a read bounded by P instead of a fold of the whole archive.
//!
//! - `figure_facts`: one row per counting event (crossed off, reopened, a repeat petition, a
//!   rating, a leader's activity, a notice of acceptance or a reply with its deadline), with the
//!   day it counts on, the moment it was recorded, its log position and why it counts.
//! - `figure_states`: one row per change of what a case is counted as between events — district,
//!   town, lead unit, owned, crossed off, the clocks still running — valid from its position up
//!   to the next row's (`next_position`, `next_recorded_at`), so "the case as of the end of the
//!   period at position P" is the one row whose validity covers both.
//! - `figure_cases`: the fold each case is at, so the next batch continues it.
//!
//! [`CaseFigureFold`] is the one rule of what counts: the archive computation in `zhzj-figures`
//! folds the same way, and a test compares the two figure by figure.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zhzj_deadlines::Limits;
use zhzj_proto::events::{ActivityKind, CaseRegistered, ProcedureStep, Satisfaction};
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{Dialect, china_date};

use crate::figure_sums::{CaseSums, SumKey, accumulate, add_to_sums};
use crate::lifecycle::{LifecycleRow, is_lifecycle};
use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{SqlValue, col, insert_rows, sql_position};

/// The version of this projection's tables and rules.
const SHAPE_VERSION: u32 = 4;

fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE figure_facts{suffix} (
                position     BIGINT NOT NULL,
                event_index  BIGINT NOT NULL,
                case_id      TEXT   NOT NULL,
                kind         TEXT   NOT NULL,
                day          TEXT   NOT NULL,
                recorded_at  BIGINT NOT NULL,
                yes          BIGINT NOT NULL,
                flag         BIGINT NOT NULL,
                reason       TEXT   NOT NULL,
                PRIMARY KEY (position, event_index)
            )"
        ),
        format!("CREATE INDEX figure_facts{suffix}_day ON figure_facts{suffix} (day)"),
        format!(
            "CREATE TABLE figure_states{suffix} (
                case_id          TEXT   NOT NULL,
                position         BIGINT NOT NULL,
                event_index      BIGINT NOT NULL,
                recorded_at      BIGINT NOT NULL,
                case_number      TEXT   NOT NULL,
                district_id      TEXT   NOT NULL,
                town_id          TEXT,
                lead_unit        TEXT,
                owned            BIGINT NOT NULL,
                crossed_off      BIGINT NOT NULL,
                acceptance_pending_until TEXT,
                handling_running_until   TEXT,
                next_position    BIGINT,
                next_recorded_at BIGINT,
                PRIMARY KEY (case_id, position, event_index)
            )"
        ),
        format!(
            "CREATE INDEX figure_states{suffix}_until ON figure_states{suffix} (next_recorded_at)"
        ),
        format!(
            "CREATE TABLE figure_cases{suffix} (
                case_id     TEXT   PRIMARY KEY,
                fold        TEXT   NOT NULL,
                last_position    BIGINT NOT NULL,
                last_recorded_at BIGINT NOT NULL,
                irregular   BIGINT NOT NULL
            )"
        ),
        // Which cases were touched after a position or a moment (`zhzj-figures`, `sums`).
        format!(
            "CREATE INDEX figure_cases{suffix}_position ON figure_cases{suffix} (last_position)"
        ),
        format!(
            "CREATE INDEX figure_cases{suffix}_recorded ON figure_cases{suffix} (last_recorded_at)"
        ),
        format!("CREATE INDEX figure_cases{suffix}_irregular ON figure_cases{suffix} (irregular)"),
    ]
    .into_iter()
    .chain(crate::figure_sums::create_table(suffix))
    .collect()
}

/// What a case is counted as after an event: the inputs of a period's closing rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CaseFigureState {
    /// 案件编号.
    pub case_number: String,
    /// Its district.
    pub district: String,
    /// Its town.
    pub town: Option<String>,
    /// The lead responsible unit.
    pub lead_unit: Option<String>,
    /// Whether a leader has ever owned it.
    pub owned: bool,
    /// Whether it stands crossed off.
    pub crossed_off: bool,
    /// The notice of acceptance's deadline while it is owed.
    pub acceptance_pending_until: Option<NaiveDate>,
    /// The handling deadline while the handling runs.
    pub handling_running_until: Option<NaiveDate>,
}

/// What one event counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// Crossed off (化解).
    CrossedOff,
    /// Reopened after crossing off (回潮).
    Reopened,
    /// A repeat petition (重复信访).
    Petition,
    /// A satisfaction record: whether a rating was given, and whether it was satisfied.
    Rating {
        /// 满意 or 基本满意 or 不满意 (not 未评价).
        rated: bool,
        /// 满意 or 基本满意.
        satisfied: bool,
    },
    /// A leader's activity; whether it was a reception (接访).
    Activity {
        /// A reception.
        reception: bool,
    },
    /// A notice of acceptance, on time or not.
    Acceptance {
        /// On or before its deadline.
        on_time: bool,
    },
    /// A reply (办结), on time or not.
    Completion {
        /// On or before its deadline.
        on_time: bool,
    },
}

impl FactKind {
    /// The kind as stored: its name, the `yes` column and the `flag` column.
    pub(crate) fn columns(self) -> (&'static str, bool, bool) {
        match self {
            Self::CrossedOff => ("crossed_off", true, false),
            Self::Reopened => ("reopened", true, false),
            Self::Petition => ("petition", true, false),
            Self::Rating { rated, satisfied } => ("rating", satisfied, rated),
            Self::Activity { reception } => ("activity", true, reception),
            Self::Acceptance { on_time } => ("acceptance", on_time, false),
            Self::Completion { on_time } => ("completion", on_time, false),
        }
    }

    /// The kind from its stored columns; none for a name this version does not know.
    pub fn from_columns(name: &str, yes: bool, flag: bool) -> Option<Self> {
        Some(match name {
            "crossed_off" => Self::CrossedOff,
            "reopened" => Self::Reopened,
            "petition" => Self::Petition,
            "rating" => Self::Rating {
                rated: flag,
                satisfied: yes,
            },
            "activity" => Self::Activity { reception: flag },
            "acceptance" => Self::Acceptance { on_time: yes },
            "completion" => Self::Completion { on_time: yes },
            _ => return None,
        })
    }
}

/// What one event contributes to the figures: its kind, the day it counts on and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureFact {
    /// What it counts as.
    pub kind: FactKind,
    /// The day it counts on (a petition's day of receipt, an activity's day, …).
    pub day: NaiveDate,
    /// Why it counts, as the drill-down says it.
    pub reason: String,
}

/// A case followed through the log for its figures: what it is counted as, and the lifecycle
/// its deadlines are computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseFigureFold {
    /// What it is counted as now.
    pub state: CaseFigureState,
    lifecycle: LifecycleRow,
    /// The last event folded in: (position, index in its commit).
    last: (i64, i64),
    /// What it contributes to `figure_sums` (kept by the projection only).
    #[serde(default)]
    pub sums: CaseSums,
}

impl CaseFigureFold {
    /// A case as its registration starts it.
    pub fn registered(e: &CaseRegistered) -> Self {
        Self {
            state: CaseFigureState {
                case_number: e.case_number.clone(),
                district: e.district.id.clone(),
                town: e.town.as_ref().map(|t| t.id.clone()),
                ..CaseFigureState::default()
            },
            lifecycle: LifecycleRow::default(),
            last: (-1, -1),
            sums: CaseSums::default(),
        }
    }

    /// Folds one event in and returns what it counts as, if anything. Deadlines are those in
    /// force before the event (a notice is on time by the deadline it answered).
    pub fn apply(
        &mut self,
        event: &CaseEvent,
        occurred_at: DateTime<Utc>,
        limits: &Limits,
    ) -> Option<FigureFact> {
        let day = china_date(occurred_at);
        let fact = |kind, day, reason: String| Some(FigureFact { kind, day, reason });
        let counted = match event {
            CaseEvent::ResponsibleUnitsSet(e) => {
                self.state.lead_unit = Some(e.lead.id.clone());
                None
            }
            CaseEvent::LeaderAssigned(_) | CaseEvent::LeaderReassigned(_) => {
                self.state.owned = true;
                None
            }
            CaseEvent::CrossedOff(_) => fact(FactKind::CrossedOff, day, String::new()),
            CaseEvent::Reopened(_) => fact(
                FactKind::Reopened,
                day,
                format!("{day} 销号后再次信访，重新打开"),
            ),
            CaseEvent::PetitionRecorded(e) => fact(
                FactKind::Petition,
                e.received_on,
                format!("{} 重复信访", e.received_on),
            ),
            CaseEvent::SatisfactionRated(e) => fact(
                FactKind::Rating {
                    rated: e.rating != Satisfaction::NotRated,
                    satisfied: matches!(
                        e.rating,
                        Satisfaction::Satisfied | Satisfaction::BasicallySatisfied
                    ),
                },
                e.rated_on,
                format!("{} 评价：{}", e.rated_on, e.rating.label()),
            ),
            CaseEvent::LeaderActivity(e) => fact(
                FactKind::Activity {
                    reception: e.kind == ActivityKind::Reception,
                },
                e.held_on,
                format!("{} {}（{}）", e.held_on, e.kind.label(), e.leader.name),
            ),
            CaseEvent::ProcedureStep(e) => match e.step {
                ProcedureStep::AcceptanceNotified => {
                    self.lifecycle.acceptance_due().and_then(|due| {
                        fact(
                            FactKind::Acceptance {
                                on_time: e.on <= due,
                            },
                            e.on,
                            format!("{} 告知受理，期限 {due}", e.on),
                        )
                    })
                }
                ProcedureStep::Replied => self.lifecycle.handling_due().and_then(|due| {
                    fact(
                        FactKind::Completion {
                            on_time: e.on <= due,
                        },
                        e.on,
                        format!("{} 出具处理意见，期限 {due}", e.on),
                    )
                }),
                _ => None,
            },
            _ => None,
        };
        self.lifecycle.apply(event, occurred_at, limits);
        self.state.crossed_off = self.lifecycle.stage() == "crossed_off";
        self.state.acceptance_pending_until = self.lifecycle.acceptance_pending_until();
        self.state.handling_running_until = self.lifecycle.handling_running_until();
        counted
    }
}

/// Whether an event can change a case's figures or what it is counted as.
fn counts_in_figures(event: &CaseEvent) -> bool {
    is_lifecycle(event)
        || matches!(
            event,
            CaseEvent::ResponsibleUnitsSet(_)
                | CaseEvent::LeaderAssigned(_)
                | CaseEvent::LeaderReassigned(_)
                | CaseEvent::LeaderActivity(_)
        )
}

/// A case touched by a batch: its fold, whether a state row of it was stored before the batch,
/// and the state rows the batch adds.
struct TouchedCase {
    fold: CaseFigureFold,
    stored_before: bool,
    versions: Vec<StateVersion>,
    /// What it contributed to `figure_sums` before the batch.
    contributed: BTreeMap<SumKey, i64>,
}

/// One `figure_states` row: the state from (position, index, recorded_at) on.
struct StateVersion {
    position: i64,
    index: i64,
    recorded_at: i64,
    state: CaseFigureState,
}

async fn load_fold(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    case_id: &str,
) -> Result<Option<CaseFigureFold>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT fold FROM figure_cases{suffix} WHERE case_id = $1"
    )))
    .bind(case_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: String = row.try_get("fold")?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn flag(value: bool) -> SqlValue {
    SqlValue::Int(i64::from(value))
}

fn day_text(day: Option<NaiveDate>) -> SqlValue {
    SqlValue::OptText(day.map(|d| d.to_string()))
}

/// Applies a batch: folds each counting event into its case, stores the facts and the changes
/// of state.
async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
    limits: &Limits,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut cases: BTreeMap<String, TouchedCase> = BTreeMap::new();
    let mut facts = Vec::new();
    for commit in batch {
        let position = sql_position(commit.position);
        for ((envelope, event), index) in commit.envelopes.iter().zip(&commit.events).zip(0_i64..) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if !counts_in_figures(event) {
                continue;
            }
            let case_id = &envelope.aggregate_id;
            if !cases.contains_key(case_id) {
                let stored = if let CaseEvent::Registered(e) = event {
                    // A registration is a case's first event: there is nothing to read back.
                    Some(CaseFigureFold::registered(e))
                } else {
                    load_fold(conn, suffix, case_id).await?
                };
                let Some(fold) = stored else {
                    // An event of a case never registered counts nowhere.
                    continue;
                };
                let stored_before = fold.last.0 >= 0;
                let contributed = if stored_before {
                    fold.sums.contribution(&fold.state)
                } else {
                    BTreeMap::new()
                };
                cases.insert(
                    case_id.clone(),
                    TouchedCase {
                        fold,
                        stored_before,
                        versions: Vec::new(),
                        contributed,
                    },
                );
            }
            let Some(case) = cases.get_mut(case_id) else {
                continue;
            };
            if (position, index) <= case.fold.last {
                // Folded in already: a replay changes nothing.
                continue;
            }
            let before = case.fold.state.clone();
            let first = case.fold.last.0 < 0;
            let recorded_at = micros(envelope.occurred_at);
            let fact = case.fold.apply(event, envelope.occurred_at, limits);
            case.fold.sums.note(
                recorded_at,
                china_date(envelope.occurred_at),
                fact.as_ref().map(|f| (f.kind, f.day)),
                before.crossed_off,
                case.fold.state.crossed_off,
            );
            if let Some(fact) = fact {
                let (kind, yes, flag_value) = fact.kind.columns();
                facts.push(vec![
                    SqlValue::Int(position),
                    SqlValue::Int(index),
                    SqlValue::Text(case_id.clone()),
                    SqlValue::Text(kind.to_owned()),
                    SqlValue::Text(fact.day.to_string()),
                    SqlValue::Int(recorded_at),
                    flag(yes),
                    flag(flag_value),
                    SqlValue::Text(fact.reason),
                ]);
            }
            case.fold.last = (position, index);
            if first || case.fold.state != before {
                case.versions.push(StateVersion {
                    position,
                    index,
                    recorded_at,
                    state: case.fold.state.clone(),
                });
            }
        }
    }
    insert_rows(
        conn,
        dialect,
        &format!("figure_facts{suffix}"),
        &[
            col("position"),
            col("event_index"),
            col("case_id"),
            col("kind"),
            col("day"),
            col("recorded_at"),
            col("yes"),
            col("flag"),
            col("reason"),
        ],
        facts,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    write_states(conn, dialect, suffix, cases).await?;
    Ok(Vec::new())
}

/// Closes each touched case's open state row at its first new one, stores the new rows (each
/// closed by the next) and the folds.
async fn write_states(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    cases: BTreeMap<String, TouchedCase>,
) -> Result<(), sqlx::Error> {
    let mut rows = Vec::new();
    let mut folds = Vec::new();
    let mut sums = BTreeMap::new();
    for (case_id, case) in cases {
        accumulate(&mut sums, case.contributed, -1);
        accumulate(&mut sums, case.fold.sums.contribution(&case.fold.state), 1);
        if case.stored_before
            && let Some(first) = case.versions.first()
        {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE figure_states{suffix} SET next_position = $1, next_recorded_at = $2 \
                 WHERE case_id = $3 AND next_position IS NULL"
            )))
            .bind(first.position)
            .bind(first.recorded_at)
            .bind(&case_id)
            .execute(&mut *conn)
            .await?;
        }
        rows.extend(state_rows(&case_id, case.versions));
        let fold = serde_json::to_string(&case.fold).map_err(|e| sqlx::Error::Encode(e.into()))?;
        folds.push(vec![
            SqlValue::Text(case_id),
            SqlValue::Text(fold),
            SqlValue::Int(case.fold.last.0),
            SqlValue::Int(case.fold.sums.last_recorded_at()),
            flag(case.fold.sums.irregular),
        ]);
    }
    insert_rows(
        conn,
        dialect,
        &format!("figure_states{suffix}"),
        &[
            col("case_id"),
            col("position"),
            col("event_index"),
            col("recorded_at"),
            col("case_number"),
            col("district_id"),
            col("town_id"),
            col("lead_unit"),
            col("owned"),
            col("crossed_off"),
            col("acceptance_pending_until"),
            col("handling_running_until"),
            col("next_position"),
            col("next_recorded_at"),
        ],
        rows,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    insert_rows(
        conn,
        dialect,
        &format!("figure_cases{suffix}"),
        &[
            col("case_id"),
            col("fold"),
            col("last_position"),
            col("last_recorded_at"),
            col("irregular"),
        ],
        folds,
        "ON CONFLICT (case_id) DO UPDATE SET fold = excluded.fold, \
         last_position = excluded.last_position, last_recorded_at = excluded.last_recorded_at, \
         irregular = excluded.irregular",
    )
    .await?;
    add_to_sums(conn, dialect, suffix, sums).await
}

/// The `figure_states` rows of a case's new versions, each closed by the next (the last open).
fn state_rows(case_id: &str, versions: Vec<StateVersion>) -> Vec<Vec<SqlValue>> {
    let mut rows = Vec::with_capacity(versions.len());
    let nexts: Vec<(Option<i64>, Option<i64>)> = versions
        .iter()
        .skip(1)
        .map(|v| (Some(v.position), Some(v.recorded_at)))
        .chain(std::iter::once((None, None)))
        .collect();
    for (version, (next_position, next_recorded_at)) in versions.into_iter().zip(nexts) {
        let state = version.state;
        rows.push(vec![
            SqlValue::Text(case_id.to_owned()),
            SqlValue::Int(version.position),
            SqlValue::Int(version.index),
            SqlValue::Int(version.recorded_at),
            SqlValue::Text(state.case_number),
            SqlValue::Text(state.district),
            SqlValue::OptText(state.town),
            SqlValue::OptText(state.lead_unit),
            flag(state.owned),
            flag(state.crossed_off),
            day_text(state.acceptance_pending_until),
            day_text(state.handling_running_until),
            SqlValue::OptInt(next_position),
            SqlValue::OptInt(next_recorded_at),
        ]);
    }
    rows
}

crate::projection::projection_kind! {
    /// The figures projection: each case event's contribution to the figures, and what each
    /// case is counted as between events.
    FiguresView {
        name: "figures",
        tables: [
            "figure_facts",
            "figure_states",
            "figure_cases",
            "figure_sums"
        ],
        create: |_dialect, suffix| create_tables(suffix),
        fingerprint: |settings| format!("shape={SHAPE_VERSION};limits={}", settings.limits.describe()),
        apply: |conn, dialect, suffix, batch, run| {
            let settings = std::sync::Arc::clone(&run.settings);
            apply(conn, dialect, suffix, batch, &settings.limits).await
        },
    }
}
