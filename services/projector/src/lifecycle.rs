//! The lifecycle views: `case_lifecycle`, one row per case that has been classified, claimed,
//! reviewed, crossed off, petitioned again or rated — where it stands in its life after the
//! checklist work, with its repeat-petition and relapse counts; and `leader_activities`, one row
//! per logged piece of a leader's work (接访、约访、下访 …), for the leader view; and
//! `case_petitioners`, who petitions on which case, for the duplicate check at registration.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use zhzj_deadlines::{HolidayCalendar, Limits, StatutoryStep};
use zhzj_store::china_date;

use sqlx::Row;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{SqlValue, col, enum_text, insert_rows, sql_position};

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE case_lifecycle{suffix} (
                case_id          TEXT    PRIMARY KEY,
                stage            TEXT    NOT NULL,
                class            TEXT,
                category         TEXT,
                claims           BIGINT  NOT NULL,
                accepted_by      TEXT,
                crossed_off_at   TEXT,
                repeat_count     BIGINT  NOT NULL,
                relapse_count    BIGINT  NOT NULL,
                last_petition_on TEXT,
                satisfaction     TEXT,
                handling_due_on  TEXT,
                extended_days    BIGINT  NOT NULL,
                version          BIGINT  NOT NULL
            )"
        ),
        format!("CREATE INDEX case_lifecycle{suffix}_stage ON case_lifecycle{suffix} (stage)"),
        format!(
            "CREATE INDEX case_lifecycle{suffix}_due ON case_lifecycle{suffix} (handling_due_on)"
        ),
        format!(
            "CREATE TABLE leader_activities{suffix} (
                position     BIGINT  PRIMARY KEY,
                case_id      TEXT    NOT NULL,
                leader_id    TEXT    NOT NULL,
                leader_name  TEXT    NOT NULL,
                kind         TEXT    NOT NULL,
                held_on      TEXT    NOT NULL,
                participants TEXT    NOT NULL,
                summary      TEXT    NOT NULL
            )"
        ),
        format!(
            "CREATE INDEX leader_activities{suffix}_leader ON leader_activities{suffix} (leader_id, held_on)"
        ),
        format!(
            "CREATE TABLE case_petitioners{suffix} (
                case_id     TEXT    NOT NULL,
                idx         BIGINT  NOT NULL,
                name        TEXT    NOT NULL,
                id_number   TEXT,
                district_id TEXT    NOT NULL,
                town_id     TEXT,
                category    TEXT    NOT NULL,
                PRIMARY KEY (case_id, idx)
            )"
        ),
        format!("CREATE INDEX case_petitioners{suffix}_id ON case_petitioners{suffix} (id_number)"),
        format!(
            "CREATE INDEX case_petitioners{suffix}_name ON case_petitioners{suffix} (name, town_id)"
        ),
    ]
}

/// One row as the projection keeps it.
#[derive(Debug, Clone)]
struct LifecycleRow {
    stage: String,
    class: Option<String>,
    category: Option<String>,
    claims: i64,
    accepted_by: Option<String>,
    crossed_off_at: Option<String>,
    repeat_count: i64,
    relapse_count: i64,
    last_petition_on: Option<String>,
    satisfaction: Option<String>,
    handling_due_on: Option<String>,
    extended_days: i64,
    version: i64,
}

impl Default for LifecycleRow {
    fn default() -> Self {
        Self {
            stage: "open".into(),
            class: None,
            category: None,
            claims: 0,
            accepted_by: None,
            crossed_off_at: None,
            repeat_count: 0,
            relapse_count: 0,
            last_petition_on: None,
            satisfaction: None,
            handling_due_on: None,
            extended_days: 0,
            version: 0,
        }
    }
}

const COLUMNS: [crate::sqlbuild::Column; 14] = [
    col("case_id"),
    col("stage"),
    col("class"),
    col("category"),
    col("claims"),
    col("accepted_by"),
    col("crossed_off_at"),
    col("repeat_count"),
    col("relapse_count"),
    col("last_petition_on"),
    col("satisfaction"),
    col("handling_due_on"),
    col("extended_days"),
    col("version"),
];

/// The holiday calendar deadlines are counted on (the official one shipped with zhzj).
fn calendar() -> &'static HolidayCalendar {
    static CALENDAR: LazyLock<HolidayCalendar> = LazyLock::new(|| {
        HolidayCalendar::official().unwrap_or_else(|e| {
            tracing::error!(error = %e, "holiday calendar unreadable; counting weekends only");
            HolidayCalendar::weekends_only()
        })
    });
    &CALENDAR
}

/// The handling deadline (办理期限) of a period starting on `start`.
fn handling_due(start: NaiveDate) -> String {
    Limits::statutory()
        .deadline(calendar(), StatutoryStep::Handling, start)
        .to_string()
}

/// Whether the projection keeps anything of this event.
fn is_lifecycle(event: &CaseEvent) -> bool {
    matches!(
        event,
        CaseEvent::Registered(_)
            | CaseEvent::HandlingExtended(_)
            | CaseEvent::Classified(_)
            | CaseEvent::ResolutionClaimed(_)
            | CaseEvent::ClaimAccepted(_)
            | CaseEvent::ClaimSentBack(_)
            | CaseEvent::CrossedOff(_)
            | CaseEvent::PetitionRecorded(_)
            | CaseEvent::Reopened(_)
            | CaseEvent::SatisfactionRated(_)
    )
}

fn apply_event(row: &mut LifecycleRow, event: &CaseEvent, occurred_at: DateTime<Utc>) {
    let at = timestamp_text(occurred_at);
    match event {
        // The handling period starts when the case is put on the list (China date).
        CaseEvent::Registered(_) => {
            row.handling_due_on = Some(handling_due(china_date(occurred_at)));
        }
        CaseEvent::HandlingExtended(e) => {
            let due = row
                .handling_due_on
                .as_deref()
                .and_then(|d| d.parse::<NaiveDate>().ok());
            if let Some(due) = due {
                row.handling_due_on = Some(calendar().after_days(due, e.days).to_string());
            }
            row.extended_days = i64::from(e.days);
        }
        CaseEvent::Classified(e) => {
            row.class = Some(enum_text(&e.class));
            row.category = Some(e.category.clone());
        }
        CaseEvent::ResolutionClaimed(e) => {
            row.stage = "under_review".into();
            row.claims = i64::from(e.claim);
            row.accepted_by = None;
        }
        CaseEvent::ClaimAccepted(e) => {
            let label = e.level.label();
            row.accepted_by = Some(match row.accepted_by.take() {
                Some(earlier) => format!("{earlier}、{label}"),
                None => label.to_owned(),
            });
        }
        CaseEvent::ClaimSentBack(_) => {
            row.stage = "sent_back".into();
            row.accepted_by = None;
        }
        CaseEvent::CrossedOff(_) => {
            row.stage = "crossed_off".into();
            row.crossed_off_at = Some(at);
        }
        CaseEvent::PetitionRecorded(e) => {
            row.repeat_count = i64::from(e.repeat_count);
            row.last_petition_on = Some(e.received_on.to_string());
        }
        CaseEvent::Reopened(e) => {
            row.stage = "reopened".into();
            row.relapse_count = i64::from(e.relapse_count);
            row.accepted_by = None;
            row.crossed_off_at = None;
            // A new handling period, from the petition that reopened it.
            let start = row
                .last_petition_on
                .as_deref()
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .unwrap_or_else(|| china_date(occurred_at));
            row.handling_due_on = Some(handling_due(start));
            row.extended_days = 0;
        }
        CaseEvent::SatisfactionRated(e) => row.satisfaction = Some(enum_text(&e.rating)),
        _ => {}
    }
}

async fn load_row(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    case_id: &str,
) -> Result<Option<LifecycleRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT stage, class, category, claims, accepted_by, crossed_off_at, repeat_count, \
         relapse_count, last_petition_on, satisfaction, handling_due_on, extended_days, version \
         FROM case_lifecycle{suffix} WHERE case_id = $1"
    )))
    .bind(case_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(LifecycleRow {
            stage: row.try_get("stage")?,
            class: row.try_get("class")?,
            category: row.try_get("category")?,
            claims: row.try_get("claims")?,
            accepted_by: row.try_get("accepted_by")?,
            crossed_off_at: row.try_get("crossed_off_at")?,
            repeat_count: row.try_get("repeat_count")?,
            relapse_count: row.try_get("relapse_count")?,
            last_petition_on: row.try_get("last_petition_on")?,
            satisfaction: row.try_get("satisfaction")?,
            handling_due_on: row.try_get("handling_due_on")?,
            extended_days: row.try_get("extended_days")?,
            version: row.try_get("version")?,
        })
    })
    .transpose()
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut rows: BTreeMap<String, LifecycleRow> = BTreeMap::new();
    let mut activities = Vec::new();
    let mut petitioners = Vec::new();
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if let CaseEvent::Registered(e) = event {
                for (idx, p) in (0_i64..).zip(&e.petitioners) {
                    petitioners.push(vec![
                        SqlValue::Text(envelope.aggregate_id.clone()),
                        SqlValue::Int(idx),
                        SqlValue::Text(p.name.clone()),
                        SqlValue::OptText(p.id_number.clone()),
                        SqlValue::Text(e.district.id.clone()),
                        SqlValue::OptText(e.town.as_ref().map(|t| t.id.clone())),
                        SqlValue::Text(e.category.clone()),
                    ]);
                }
            }
            if let CaseEvent::LeaderActivity(e) = event {
                activities.push(vec![
                    SqlValue::Int(sql_position(commit.position)),
                    SqlValue::Text(envelope.aggregate_id.clone()),
                    SqlValue::Text(e.leader.id.clone()),
                    SqlValue::Text(e.leader.name.clone()),
                    SqlValue::Text(enum_text(&e.kind)),
                    SqlValue::Text(e.held_on.to_string()),
                    SqlValue::Text(e.participants.join("、")),
                    SqlValue::Text(e.summary.clone()),
                ]);
                continue;
            }
            if !is_lifecycle(event) {
                continue;
            }
            let id = envelope.aggregate_id.clone();
            if !rows.contains_key(&id) {
                // A registration is a case's first event: there is nothing to read back.
                let stored = if matches!(event, CaseEvent::Registered(_)) {
                    LifecycleRow::default()
                } else {
                    load_row(conn, suffix, &id).await?.unwrap_or_default()
                };
                rows.insert(id.clone(), stored);
            }
            if let Some(row) = rows.get_mut(&id) {
                apply_event(row, event, envelope.occurred_at);
                row.version = sql_position(commit.position);
            }
        }
    }
    // Who petitions on which case, for the duplicate check at registration.
    insert_rows(
        conn,
        dialect,
        &format!("case_petitioners{suffix}"),
        &[
            col("case_id"),
            col("idx"),
            col("name"),
            col("id_number"),
            col("district_id"),
            col("town_id"),
            col("category"),
        ],
        petitioners,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    // One activity per commit: its position is its key, and a replay inserts nothing twice.
    insert_rows(
        conn,
        dialect,
        &format!("leader_activities{suffix}"),
        &[
            col("position"),
            col("case_id"),
            col("leader_id"),
            col("leader_name"),
            col("kind"),
            col("held_on"),
            col("participants"),
            col("summary"),
        ],
        activities,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let values = rows
        .into_iter()
        .map(|(case_id, row)| {
            vec![
                SqlValue::Text(case_id),
                SqlValue::Text(row.stage),
                SqlValue::OptText(row.class),
                SqlValue::OptText(row.category),
                SqlValue::Int(row.claims),
                SqlValue::OptText(row.accepted_by),
                SqlValue::OptText(row.crossed_off_at),
                SqlValue::Int(row.repeat_count),
                SqlValue::Int(row.relapse_count),
                SqlValue::OptText(row.last_petition_on),
                SqlValue::OptText(row.satisfaction),
                SqlValue::OptText(row.handling_due_on),
                SqlValue::Int(row.extended_days),
                SqlValue::Int(row.version),
            ]
        })
        .collect();
    let updates: Vec<String> = COLUMNS[1..]
        .iter()
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect();
    let tail = format!("ON CONFLICT (case_id) DO UPDATE SET {}", updates.join(", "));
    insert_rows(
        conn,
        dialect,
        &format!("case_lifecycle{suffix}"),
        &COLUMNS,
        values,
        &tail,
    )
    .await?;
    Ok(Vec::new())
}
