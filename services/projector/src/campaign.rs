//! The campaign views: `dispatch_meetings`, one row per weekly dispatch meeting (周调度);
//! `dispatch_instructions`, one row per instruction (调度指令) with its latest feedback;
//! `bulletins`, one row per published monthly bulletin (月通报) with the position it froze;
//! `pushes`, one row per quarterly push (季攻坚). Agendas, figures and progress are not stored:
//! they are drawn from the event archive as of the log position that fixes them, so that they
//! come out the same whenever they are asked for.

use sqlx::AssertSqlSafe;
use zhzj_proto::{CampaignEvent, DomainEvent};
use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::sql_position;

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE dispatch_meetings{suffix} (
                meeting_id     TEXT    PRIMARY KEY,
                unit_id        TEXT    NOT NULL,
                unit_name      TEXT    NOT NULL,
                week           TEXT    NOT NULL,
                held_at        TEXT    NOT NULL,
                as_of_position BIGINT  NOT NULL,
                title          TEXT    NOT NULL,
                position       BIGINT  NOT NULL
            )"
        ),
        format!(
            "CREATE INDEX dispatch_meetings{suffix}_unit ON dispatch_meetings{suffix} (unit_id, week)"
        ),
        format!(
            "CREATE TABLE bulletins{suffix} (
                month          TEXT    PRIMARY KEY,
                as_of_position BIGINT  NOT NULL,
                published_at   TEXT    NOT NULL,
                position       BIGINT  NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE pushes{suffix} (
                quarter     TEXT    PRIMARY KEY,
                title       TEXT    NOT NULL,
                cases       BIGINT  NOT NULL,
                launched_at TEXT    NOT NULL,
                position    BIGINT  NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE dispatch_instructions{suffix} (
                meeting_id      TEXT    NOT NULL,
                number          BIGINT  NOT NULL,
                case_id         TEXT,
                unit_id         TEXT,
                unit_name       TEXT,
                leader_id       TEXT,
                leader_name     TEXT,
                text            TEXT    NOT NULL,
                feedback_due_on TEXT    NOT NULL,
                issued_at       TEXT    NOT NULL,
                feedback        TEXT,
                feedback_on     TEXT,
                PRIMARY KEY (meeting_id, number)
            )"
        ),
    ]
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    _dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    for commit in batch {
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let DomainEvent::Campaign(event) = event else {
                continue;
            };
            let meeting_id = &envelope.aggregate_id;
            match event {
                CampaignEvent::MeetingHeld(e) => {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO dispatch_meetings{suffix} (meeting_id, unit_id, unit_name, \
                         week, held_at, as_of_position, title, position) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
                    )))
                    .bind(meeting_id)
                    .bind(&e.unit.id)
                    .bind(&e.unit.name)
                    .bind(&e.week)
                    .bind(timestamp_text(e.held_at))
                    .bind(sql_position(e.as_of_position))
                    .bind(&e.title)
                    .bind(sql_position(commit.position))
                    .execute(&mut *conn)
                    .await?;
                }
                CampaignEvent::InstructionIssued(e) => {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO dispatch_instructions{suffix} (meeting_id, number, case_id, \
                         unit_id, unit_name, leader_id, leader_name, text, feedback_due_on, \
                         issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT DO NOTHING"
                    )))
                    .bind(meeting_id)
                    .bind(i64::from(e.number))
                    .bind(e.case_id.map(|id| id.to_string()))
                    .bind(e.unit.as_ref().map(|u| u.id.clone()))
                    .bind(e.unit.as_ref().map(|u| u.name.clone()))
                    .bind(e.leader.as_ref().map(|l| l.id.clone()))
                    .bind(e.leader.as_ref().map(|l| l.name.clone()))
                    .bind(&e.text)
                    .bind(e.feedback_due_on.to_string())
                    .bind(timestamp_text(envelope.occurred_at))
                    .execute(&mut *conn)
                    .await?;
                }
                CampaignEvent::BulletinPublished(e) => {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO bulletins{suffix} (month, as_of_position, published_at, \
                         position) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
                    )))
                    .bind(&e.month)
                    .bind(sql_position(e.as_of_position))
                    .bind(timestamp_text(e.published_at))
                    .bind(sql_position(commit.position))
                    .execute(&mut *conn)
                    .await?;
                }
                CampaignEvent::PushLaunched(e) => {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO pushes{suffix} (quarter, title, cases, launched_at, position) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                    )))
                    .bind(&e.quarter)
                    .bind(&e.title)
                    .bind(i64::try_from(e.case_ids.len()).unwrap_or(i64::MAX))
                    .bind(timestamp_text(envelope.occurred_at))
                    .bind(sql_position(commit.position))
                    .execute(&mut *conn)
                    .await?;
                }
                CampaignEvent::FeedbackRecorded(e) => {
                    sqlx::query(AssertSqlSafe(format!(
                        "UPDATE dispatch_instructions{suffix} SET feedback = $1, feedback_on = $2 \
                         WHERE meeting_id = $3 AND number = $4"
                    )))
                    .bind(&e.text)
                    .bind(e.on.to_string())
                    .bind(meeting_id)
                    .bind(i64::from(e.number))
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
    }
    Ok(Vec::new())
}

crate::projection::projection_kind! {
    /// The campaign views: dispatch meetings and their instructions, bulletins, pushes.
    CampaignView {
        name: "campaign",
        tables: ["dispatch_meetings", "dispatch_instructions", "bulletins", "pushes"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, _run| apply(conn, dialect, suffix, batch).await,
    }
}
