//! The org directory view: units with their parents, and leaders with their units.

use zhzj_proto::{DirectoryEvent, DomainEvent};
use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{SqlValue, col, enum_text, insert_rows};

pub(crate) fn create_tables(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE org_units{suffix} (
                unit_id   TEXT   PRIMARY KEY,
                parent_id TEXT,
                name      TEXT   NOT NULL,
                kind      TEXT   NOT NULL,
                added_at  TEXT   NOT NULL,
                version   BIGINT NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE org_leaders{suffix} (
                leader_id TEXT   PRIMARY KEY,
                unit_id   TEXT   NOT NULL,
                name      TEXT   NOT NULL,
                title     TEXT   NOT NULL,
                level     TEXT   NOT NULL,
                added_at  TEXT   NOT NULL,
                version   BIGINT NOT NULL
            )"
        ),
    ]
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut units = Vec::new();
    let mut leaders = Vec::new();
    for commit in batch {
        let version = SqlValue::Int(crate::sqlbuild::sql_position(commit.position));
        for (envelope, event) in commit.envelopes.iter().zip(&commit.events) {
            let at = SqlValue::Text(timestamp_text(envelope.occurred_at));
            match event {
                DomainEvent::Directory(DirectoryEvent::UnitAdded(e)) => units.push(vec![
                    SqlValue::Text(e.unit_id.clone()),
                    SqlValue::OptText(e.parent_id.clone()),
                    SqlValue::Text(e.name.clone()),
                    SqlValue::Text(enum_text(&e.kind)),
                    at,
                    version.clone(),
                ]),
                DomainEvent::Directory(DirectoryEvent::LeaderAdded(e)) => leaders.push(vec![
                    SqlValue::Text(e.leader_id.clone()),
                    SqlValue::Text(e.unit_id.clone()),
                    SqlValue::Text(e.name.clone()),
                    SqlValue::Text(e.title.clone()),
                    SqlValue::Text(enum_text(&e.level)),
                    at,
                    version.clone(),
                ]),
                DomainEvent::Case(_)
                | DomainEvent::Campaign(_)
                | DomainEvent::Account(_)
                | DomainEvent::Supervision(_) => {}
            }
        }
    }
    let unit_columns = [
        col("unit_id"),
        col("parent_id"),
        col("name"),
        col("kind"),
        col("added_at"),
        col("version"),
    ];
    let leader_columns = [
        col("leader_id"),
        col("unit_id"),
        col("name"),
        col("title"),
        col("level"),
        col("added_at"),
        col("version"),
    ];
    // A unit or leader is added once (the service refuses a second add), so a conflict can only
    // be a replay of the same event.
    let tail = "ON CONFLICT DO NOTHING";
    insert_rows(
        conn,
        dialect,
        &format!("org_units{suffix}"),
        &unit_columns,
        units,
        tail,
    )
    .await?;
    insert_rows(
        conn,
        dialect,
        &format!("org_leaders{suffix}"),
        &leader_columns,
        leaders,
        tail,
    )
    .await?;
    Ok(Vec::new())
}

crate::projection::projection_kind! {
    /// The org directory view: units and leaders.
    OrgView {
        name: "org",
        tables: ["org_units", "org_leaders"],
        create: |_dialect, suffix| create_tables(suffix),
        apply: |conn, dialect, suffix, batch, _run| apply(conn, dialect, suffix, batch).await,
    }
}
