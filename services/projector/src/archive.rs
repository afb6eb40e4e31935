//! The event archive: an append-only table of every event with its position in the log, for
//! history, as-of queries, audit and restoring a lost stream.

use zhzj_store::{Dialect, sql::timestamp_text};

use crate::projection::{DeadLetter, ReadCommit};
use crate::sqlbuild::{Column, SqlValue, col, insert_rows, json_col};

/// The archive's columns, in the order its rows are written.
pub const COLUMNS: [Column; 15] = [
    col("position"),
    col("event_index"),
    col("aggregate_type"),
    col("aggregate_id"),
    col("aggregate_version"),
    col("event_id"),
    col("event_type"),
    col("schema_version"),
    col("occurred_at"),
    col("actor_id"),
    json_col("actor"),
    col("command_id"),
    col("correlation_id"),
    col("causation_id"),
    json_col("data"),
];

pub(crate) fn create_tables(dialect: Dialect, suffix: &str) -> Vec<String> {
    let json = dialect.json_type();
    vec![
        format!(
            "CREATE TABLE event_archive{suffix} (
                position          BIGINT  NOT NULL,
                event_index       INTEGER NOT NULL,
                aggregate_type    TEXT    NOT NULL,
                aggregate_id      TEXT    NOT NULL,
                aggregate_version BIGINT  NOT NULL,
                event_id          TEXT    NOT NULL,
                event_type        TEXT    NOT NULL,
                schema_version    INTEGER NOT NULL,
                occurred_at       TEXT    NOT NULL,
                actor_id          TEXT    NOT NULL,
                actor             {json}  NOT NULL,
                command_id        TEXT    NOT NULL,
                correlation_id    TEXT    NOT NULL,
                causation_id      TEXT    NOT NULL,
                data              {json}  NOT NULL,
                PRIMARY KEY (position, event_index),
                UNIQUE (aggregate_type, aggregate_id, aggregate_version, event_index)
            )"
        ),
        format!(
            "CREATE INDEX event_archive{suffix}_correlation ON event_archive{suffix} (correlation_id)"
        ),
        format!(
            "CREATE INDEX event_archive{suffix}_occurred ON event_archive{suffix} (occurred_at)"
        ),
    ]
}

pub(crate) async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    batch: &[ReadCommit],
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut rows = Vec::new();
    for commit in batch {
        for (index, e) in commit.envelopes.iter().enumerate() {
            let position = crate::sqlbuild::sql_position(commit.position);
            rows.push(vec![
                SqlValue::Int(position),
                SqlValue::Int(index as i64),
                SqlValue::Text(e.aggregate_type.as_str().to_owned()),
                SqlValue::Text(e.aggregate_id.clone()),
                SqlValue::Int(position),
                SqlValue::Text(e.event_id.to_string()),
                SqlValue::Text(e.event_type.clone()),
                SqlValue::Int(i64::from(e.schema_version)),
                SqlValue::Text(timestamp_text(e.occurred_at)),
                SqlValue::Text(e.actor.user_id.clone()),
                SqlValue::Text(serde_json::to_string(&e.actor).unwrap_or_default()),
                SqlValue::Text(e.command_id.to_string()),
                SqlValue::Text(e.correlation_id.to_string()),
                SqlValue::Text(e.causation_id.to_string()),
                SqlValue::Text(e.data.get().to_owned()),
            ]);
        }
    }
    insert_rows(
        conn,
        dialect,
        &format!("event_archive{suffix}"),
        &COLUMNS,
        rows,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    Ok(Vec::new())
}

crate::projection::projection_kind! {
    /// The event archive: every event with its position.
    ArchiveView {
        name: "archive",
        tables: ["event_archive"],
        create: |dialect, suffix| create_tables(dialect, suffix),
        apply: |conn, dialect, suffix, batch, _run| apply(conn, dialect, suffix, batch).await,
    }
}
