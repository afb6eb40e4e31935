//! The lifecycle views: `case_lifecycle`, one row per case that has been classified, claimed,
//! reviewed, crossed off, petitioned again or rated — where it stands in its life after the
//! checklist work, with its repeat-petition and relapse counts; and `leader_activities`, one row
//! per logged piece of a leader's work (接访、约访、下访 …), for the leader view; and
//! `case_petitioners`, who petitions on which case, for the duplicate check at registration;
//! `case_units`, the responsible units of each case, for the read scope of department users.
//! `case_lifecycle` also keeps the statutory clocks (告知、办理、复查、复核) and the next one due.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use zhzj_deadlines::{HolidayCalendar, Limits, StatutoryStep};
use zhzj_store::china_date;

use sqlx::Row;
use zhzj_proto::events::{ListSource, ProcedureStep, ProcedureStepRecorded, RecordedPetitioner};
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
                acceptance_due_on TEXT,
                procedure_step   TEXT,
                procedure_on     TEXT,
                replied_on       TEXT,
                review_request_until TEXT,
                review_due_on    TEXT,
                hearing_days     BIGINT  NOT NULL,
                concluded_on     TEXT,
                next_due_on      TEXT,
                next_due_step    TEXT,
                version          BIGINT  NOT NULL
            )"
        ),
        format!("CREATE INDEX case_lifecycle{suffix}_stage ON case_lifecycle{suffix} (stage)"),
        format!("CREATE INDEX case_lifecycle{suffix}_due ON case_lifecycle{suffix} (next_due_on)"),
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
        // A case's last activity by its leader, for the leader view's idle cases.
        format!(
            "CREATE INDEX leader_activities{suffix}_case \
             ON leader_activities{suffix} (case_id, leader_id, held_on)"
        ),
        format!(
            "CREATE TABLE case_petitioners{suffix} (
                case_id     TEXT    NOT NULL,
                idx         BIGINT  NOT NULL,
                name        TEXT,
                id_number   TEXT,
                id_index    TEXT,
                name_index  TEXT,
                district_id TEXT    NOT NULL,
                town_id     TEXT,
                category    TEXT    NOT NULL,
                PRIMARY KEY (case_id, idx)
            )"
        ),
        format!(
            "CREATE TABLE case_units{suffix} (
                case_id TEXT    NOT NULL,
                unit_id TEXT    NOT NULL,
                is_lead BIGINT  NOT NULL,
                PRIMARY KEY (case_id, unit_id)
            )"
        ),
        format!("CREATE INDEX case_units{suffix}_unit ON case_units{suffix} (unit_id)"),
        format!("CREATE INDEX case_petitioners{suffix}_id ON case_petitioners{suffix} (id_number)"),
        format!(
            "CREATE INDEX case_petitioners{suffix}_name ON case_petitioners{suffix} (name, town_id)"
        ),
        format!(
            "CREATE INDEX case_petitioners{suffix}_id_index ON case_petitioners{suffix} (id_index)"
        ),
        format!(
            "CREATE INDEX case_petitioners{suffix}_name_index ON case_petitioners{suffix} (name_index)"
        ),
    ]
}

/// One row as the projection keeps it.
/// Where a case stands in its life, as the lifecycle view keeps it; [`LifecycleRow::apply`] folds
/// one event in, which is also how figures are computed as of an earlier point of the log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LifecycleRow {
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
    acceptance_due_on: Option<String>,
    procedure_step: Option<String>,
    procedure_on: Option<String>,
    replied_on: Option<String>,
    review_request_until: Option<String>,
    review_due_on: Option<String>,
    hearing_days: i64,
    concluded_on: Option<String>,
    next_due_on: Option<String>,
    next_due_step: Option<String>,
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
            acceptance_due_on: None,
            procedure_step: None,
            procedure_on: None,
            replied_on: None,
            review_request_until: None,
            review_due_on: None,
            hearing_days: 0,
            concluded_on: None,
            next_due_on: None,
            next_due_step: None,
            version: 0,
        }
    }
}

const COLUMNS: [crate::sqlbuild::Column; 24] = [
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
    col("acceptance_due_on"),
    col("procedure_step"),
    col("procedure_on"),
    col("replied_on"),
    col("review_request_until"),
    col("review_due_on"),
    col("hearing_days"),
    col("concluded_on"),
    col("next_due_on"),
    col("next_due_step"),
    col("version"),
];

/// The version of this projection's table shapes and rules: a projection computed under another
/// version (or other limits) is rebuilt when the projector starts.
pub(crate) const SHAPE_VERSION: u32 = 4;

fn date(text: Option<&str>) -> Option<NaiveDate> {
    text.and_then(|d| d.parse::<NaiveDate>().ok())
}

/// The deadline of `step` for a period starting on `start`, as text.
fn due(limits: &Limits, step: StatutoryStep, start: NaiveDate) -> String {
    limits
        .deadline(HolidayCalendar::shipped(), step, start)
        .to_string()
}

/// The bureau's next deadline: the earliest clock that is running. The notice of acceptance runs
/// until any step is recorded; handling runs until the reply, stopped while a claim is under
/// review or the case is crossed off; a review's answer runs from its request.
fn next_due(row: &LifecycleRow) -> Option<(String, &'static str)> {
    let mut running: Vec<(String, &'static str)> = Vec::new();
    let paused = matches!(row.stage.as_str(), "under_review" | "crossed_off");
    if row.procedure_step.is_none()
        && !paused
        && let Some(on) = &row.acceptance_due_on
    {
        running.push((on.clone(), StatutoryStep::AcceptanceNotice.key()));
    }
    if row.replied_on.is_none()
        && !paused
        && let Some(on) = &row.handling_due_on
    {
        running.push((on.clone(), StatutoryStep::Handling.key()));
    }
    if let Some(on) = &row.review_due_on {
        let step = match row.procedure_step.as_deref() {
            Some("first_review_requested") => StatutoryStep::FirstReviewAnswer,
            _ => StatutoryStep::SecondReviewAnswer,
        };
        running.push((on.clone(), step.key()));
    }
    running.into_iter().min()
}

/// Whether the projection keeps anything of this event.
pub(crate) fn is_lifecycle(event: &CaseEvent) -> bool {
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
            | CaseEvent::ProcedureStep(_)
    )
}

impl LifecycleRow {
    /// Folds one event in (`occurred_at` is the event's time; `limits` count the deadlines).
    pub fn apply(&mut self, event: &CaseEvent, occurred_at: DateTime<Utc>, limits: &Limits) {
        apply_event(self, event, occurred_at, limits);
    }

    /// `open`, `under_review`, `sent_back`, `crossed_off` or `reopened`.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The notice of acceptance's deadline while it is owed (no step of the procedure yet).
    pub fn acceptance_pending_until(&self) -> Option<NaiveDate> {
        self.procedure_step
            .is_none()
            .then(|| date(self.acceptance_due_on.as_deref()))
            .flatten()
    }

    /// The handling deadline while the handling runs (no reply yet; not paused by a claim
    /// under review or crossing off).
    pub fn handling_running_until(&self) -> Option<NaiveDate> {
        let paused = matches!(self.stage.as_str(), "under_review" | "crossed_off");
        (self.replied_on.is_none() && !paused)
            .then(|| date(self.handling_due_on.as_deref()))
            .flatten()
    }

    /// The handling deadline of the current period, whether it runs or not.
    pub fn handling_due(&self) -> Option<NaiveDate> {
        date(self.handling_due_on.as_deref())
    }

    /// The notice of acceptance's deadline of the current period, if one is owed at all.
    pub fn acceptance_due(&self) -> Option<NaiveDate> {
        date(self.acceptance_due_on.as_deref())
    }

    /// The bureau's next deadline and the key of its step (`handling`, …), if a clock runs.
    pub fn next_due(&self) -> Option<(NaiveDate, &str)> {
        let on = date(self.next_due_on.as_deref())?;
        Some((on, self.next_due_step.as_deref().unwrap_or_default()))
    }
}

fn apply_event(
    row: &mut LifecycleRow,
    event: &CaseEvent,
    occurred_at: DateTime<Utc>,
    limits: &Limits,
) {
    apply_facts(row, event, occurred_at, limits);
    match next_due(row) {
        Some((on, step)) => {
            row.next_due_on = Some(on);
            row.next_due_step = Some(step.to_owned());
        }
        None => {
            row.next_due_on = None;
            row.next_due_step = None;
        }
    }
}

fn apply_facts(
    row: &mut LifecycleRow,
    event: &CaseEvent,
    occurred_at: DateTime<Utc>,
    limits: &Limits,
) {
    let at = timestamp_text(occurred_at);
    match event {
        // The handling period starts when the case is put on the list (China date); a case that
        // came as a new petition or was handed down also owes a notice of acceptance (第23条),
        // one found by screening old cases does not.
        CaseEvent::Registered(e) => {
            let on = china_date(occurred_at);
            row.handling_due_on = Some(due(limits, StatutoryStep::Handling, on));
            row.acceptance_due_on = (e.list_source != ListSource::Screening)
                .then(|| due(limits, StatutoryStep::AcceptanceNotice, on));
        }
        CaseEvent::HandlingExtended(e) => {
            if let Some(until) = date(row.handling_due_on.as_deref()) {
                row.handling_due_on = Some(
                    HolidayCalendar::shipped()
                        .after_days(until, e.days)
                        .to_string(),
                );
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
            // A new handling period, from the petition that reopened it, with its own notice of
            // acceptance and procedure.
            let start =
                date(row.last_petition_on.as_deref()).unwrap_or_else(|| china_date(occurred_at));
            row.handling_due_on = Some(due(limits, StatutoryStep::Handling, start));
            row.acceptance_due_on = Some(due(limits, StatutoryStep::AcceptanceNotice, start));
            row.extended_days = 0;
            row.procedure_step = None;
            row.procedure_on = None;
            row.replied_on = None;
            row.review_request_until = None;
            row.review_due_on = None;
            row.hearing_days = 0;
        }
        CaseEvent::ProcedureStep(e) => apply_procedure(row, e, limits),
        CaseEvent::SatisfactionRated(e) => row.satisfaction = Some(enum_text(&e.rating)),
        _ => {}
    }
}

/// A step of the statutory procedure: which clock it stops and which it starts. The petitioner's
/// windows to ask for a review are statutory; the answers' limits may be the bureau's own.
fn apply_procedure(row: &mut LifecycleRow, e: &ProcedureStepRecorded, limits: &Limits) {
    let on = e.on.to_string();
    match e.step {
        ProcedureStep::AcceptanceNotified => {}
        ProcedureStep::Replied => {
            row.replied_on = Some(on.clone());
            row.review_request_until = Some(due(
                &Limits::statutory(),
                StatutoryStep::FirstReviewRequest,
                e.on,
            ));
        }
        ProcedureStep::FirstReviewRequested => {
            row.review_request_until = None;
            row.review_due_on = Some(due(limits, StatutoryStep::FirstReviewAnswer, e.on));
        }
        ProcedureStep::FirstReviewAnswered => {
            row.review_due_on = None;
            row.review_request_until = Some(due(
                &Limits::statutory(),
                StatutoryStep::SecondReviewRequest,
                e.on,
            ));
        }
        ProcedureStep::SecondReviewRequested => {
            row.review_request_until = None;
            row.hearing_days = 0;
            row.review_due_on = Some(due(limits, StatutoryStep::SecondReviewAnswer, e.on));
        }
        // Hearing time is not counted: the answer's deadline moves by the hearing's days.
        ProcedureStep::HearingHeld => {
            row.hearing_days += i64::from(e.hearing_days);
            if let Some(until) = date(row.review_due_on.as_deref()) {
                row.review_due_on = Some(
                    HolidayCalendar::shipped()
                        .after_days(until, e.hearing_days)
                        .to_string(),
                );
            }
        }
        ProcedureStep::SecondReviewAnswered => {
            row.review_due_on = None;
            row.concluded_on = Some(on.clone());
        }
    }
    row.procedure_step = Some(enum_text(&e.step));
    row.procedure_on = Some(on);
}

async fn load_row(
    conn: &mut sqlx::AnyConnection,
    suffix: &str,
    case_id: &str,
) -> Result<Option<LifecycleRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT stage, class, category, claims, accepted_by, crossed_off_at, repeat_count, \
         relapse_count, last_petition_on, satisfaction, handling_due_on, extended_days, \
         acceptance_due_on, procedure_step, procedure_on, replied_on, review_request_until, \
         review_due_on, hearing_days, concluded_on, next_due_on, next_due_step, version \
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
            acceptance_due_on: row.try_get("acceptance_due_on")?,
            procedure_step: row.try_get("procedure_step")?,
            procedure_on: row.try_get("procedure_on")?,
            replied_on: row.try_get("replied_on")?,
            review_request_until: row.try_get("review_request_until")?,
            review_due_on: row.try_get("review_due_on")?,
            hearing_days: row.try_get("hearing_days")?,
            concluded_on: row.try_get("concluded_on")?,
            next_due_on: row.try_get("next_due_on")?,
            next_due_step: row.try_get("next_due_step")?,
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
    limits: &Limits,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut rows: BTreeMap<String, LifecycleRow> = BTreeMap::new();
    let mut activities = Vec::new();
    let mut petitioners = Vec::new();
    // Petitioners erased in this batch: (case, idx).
    let mut erased = Vec::new();
    // The responsible units as the batch leaves them, per case.
    let mut units: BTreeMap<String, Vec<Vec<SqlValue>>> = BTreeMap::new();
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if let CaseEvent::Registered(e) = event {
                petitioners.extend(petitioner_rows(&envelope.aggregate_id, e));
            }
            if let CaseEvent::PetitionerErased(e) = event {
                erased.push((envelope.aggregate_id.clone(), i64::from(e.petitioner) - 1));
                continue;
            }
            if let CaseEvent::ResponsibleUnitsSet(e) = event {
                let case_id = &envelope.aggregate_id;
                let lead = std::iter::once((&e.lead, 1));
                let rows = lead
                    .chain(e.assisting.iter().map(|u| (u, 0)))
                    .map(|(unit, is_lead)| {
                        vec![
                            SqlValue::Text(case_id.clone()),
                            SqlValue::Text(unit.id.clone()),
                            SqlValue::Int(is_lead),
                        ]
                    })
                    .collect();
                units.insert(case_id.clone(), rows);
                continue;
            }
            if let CaseEvent::LeaderActivity(e) = event {
                activities.push(activity_row(commit.position, &envelope.aggregate_id, e));
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
                apply_event(row, event, envelope.occurred_at, limits);
                row.version = sql_position(commit.position);
            }
        }
    }
    write_side_tables(
        conn,
        dialect,
        suffix,
        SideRows {
            petitioners,
            erased,
            units,
            activities,
        },
    )
    .await?;
    write_lifecycle_rows(conn, dialect, suffix, rows).await?;
    Ok(Vec::new())
}

/// A registration's petitioners as `case_petitioners` rows. A sealed petitioner is found by
/// their blind indexes only; one registered before encryption by the plaintext it was stored with.
fn petitioner_rows(
    case_id: &str,
    e: &zhzj_proto::events::CaseRegistered,
) -> impl Iterator<Item = Vec<SqlValue>> {
    (0_i64..).zip(&e.petitioners).map(move |(idx, p)| {
        let (name, id_number, id_index, name_index) = match p {
            RecordedPetitioner::Sealed(p) => (None, None, p.id_index.clone(), p.name_index.clone()),
            RecordedPetitioner::Plain(p) => (Some(p.name.clone()), p.id_number.clone(), None, None),
        };
        vec![
            SqlValue::Text(case_id.to_owned()),
            SqlValue::Int(idx),
            SqlValue::OptText(name),
            SqlValue::OptText(id_number),
            SqlValue::OptText(id_index),
            SqlValue::OptText(name_index),
            SqlValue::Text(e.district.id.clone()),
            SqlValue::OptText(e.town.as_ref().map(|t| t.id.clone())),
            SqlValue::Text(e.category.clone()),
        ]
    })
}

/// A leader's activity as a `leader_activities` row, keyed by its commit's position.
fn activity_row(
    position: u64,
    case_id: &str,
    e: &zhzj_proto::events::LeaderActivityRecorded,
) -> Vec<SqlValue> {
    vec![
        SqlValue::Int(sql_position(position)),
        SqlValue::Text(case_id.to_owned()),
        SqlValue::Text(e.leader.id.clone()),
        SqlValue::Text(e.leader.name.clone()),
        SqlValue::Text(enum_text(&e.kind)),
        SqlValue::Text(e.held_on.to_string()),
        SqlValue::Text(e.participants.join("、")),
        SqlValue::Text(e.summary.clone()),
    ]
}

/// What a batch changes in the lifecycle view's side tables.
struct SideRows {
    /// New `case_petitioners` rows.
    petitioners: Vec<Vec<SqlValue>>,
    /// Petitioners erased: (case, idx).
    erased: Vec<(String, i64)>,
    /// The responsible units as the batch leaves them, per case.
    units: BTreeMap<String, Vec<Vec<SqlValue>>>,
    /// New `leader_activities` rows.
    activities: Vec<Vec<SqlValue>>,
}

async fn write_side_tables(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    side: SideRows,
) -> Result<(), sqlx::Error> {
    let SideRows {
        petitioners,
        erased,
        units,
        activities,
    } = side;
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
            col("id_index"),
            col("name_index"),
            col("district_id"),
            col("town_id"),
            col("category"),
        ],
        petitioners,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    // An erased petitioner is found by no duplicate check: their blind indexes go too.
    for (case_id, idx) in erased {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE case_petitioners{suffix} SET name = NULL, id_number = NULL, id_index = NULL, \
             name_index = NULL WHERE case_id = $1 AND idx = $2"
        )))
        .bind(&case_id)
        .bind(idx)
        .execute(&mut *conn)
        .await?;
    }
    // Which units are responsible for which case, for the scope of department users.
    for (case_id, rows) in units {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM case_units{suffix} WHERE case_id = $1"
        )))
        .bind(&case_id)
        .execute(&mut *conn)
        .await?;
        insert_rows(
            conn,
            dialect,
            &format!("case_units{suffix}"),
            &[col("case_id"), col("unit_id"), col("is_lead")],
            rows,
            "ON CONFLICT DO NOTHING",
        )
        .await?;
    }
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
    Ok(())
}

/// Upserts the lifecycle rows a batch changed.
async fn write_lifecycle_rows(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    rows: BTreeMap<String, LifecycleRow>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
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
                SqlValue::OptText(row.acceptance_due_on),
                SqlValue::OptText(row.procedure_step),
                SqlValue::OptText(row.procedure_on),
                SqlValue::OptText(row.replied_on),
                SqlValue::OptText(row.review_request_until),
                SqlValue::OptText(row.review_due_on),
                SqlValue::Int(row.hearing_days),
                SqlValue::OptText(row.concluded_on),
                SqlValue::OptText(row.next_due_on),
                SqlValue::OptText(row.next_due_step),
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
    Ok(())
}

crate::projection::projection_kind! {
    /// The lifecycle view: classification, claims, review, crossing off, relapse, satisfaction.
    LifecycleView {
        name: "lifecycle",
        tables: ["case_lifecycle", "leader_activities", "case_petitioners", "case_units"],
        create: |_dialect, suffix| create_tables(suffix),
        fingerprint: |settings| format!("shape={SHAPE_VERSION};limits={}", settings.limits.describe()),
        apply: |conn, dialect, suffix, batch, run| {
            let settings = std::sync::Arc::clone(&run.settings);
            apply(conn, dialect, suffix, batch, &settings.limits).await
        },
    }
}

#[cfg(test)]
mod tests;
