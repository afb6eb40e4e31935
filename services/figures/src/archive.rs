//! Reading the event archive up to a log position, decoded (and upcast) into domain events.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::Row;
use zhzj_proto::DomainEvent;
use zhzj_store::ReadStore;

use crate::FiguresError;

/// One archived event.
#[derive(Debug, Clone)]
pub struct ArchivedEvent {
    /// The log position of its commit.
    pub position: i64,
    /// `case`, `meeting`, …
    pub aggregate_type: String,
    /// Its aggregate.
    pub aggregate_id: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The event.
    pub event: DomainEvent,
}

impl ArchivedEvent {
    /// The events of the given aggregate types up to `position` (inclusive), in log order.
    pub async fn read_up_to(
        store: &ReadStore,
        aggregate_types: &[&str],
        position: i64,
    ) -> Result<Vec<Self>, FiguresError> {
        events_up_to(store, aggregate_types, position).await
    }
}

/// The events of the given aggregate types up to `position` (inclusive), in log order.
pub async fn events_up_to(
    store: &ReadStore,
    aggregate_types: &[&str],
    position: i64,
) -> Result<Vec<ArchivedEvent>, FiguresError> {
    let placeholders: Vec<String> = (0..aggregate_types.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let sql = format!(
        "SELECT position, aggregate_type, aggregate_id, event_type, schema_version, occurred_at, \
         CAST(data AS TEXT) AS data FROM event_archive WHERE position <= $1 \
         AND aggregate_type IN ({}) ORDER BY position, event_index",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(position);
    for kind in aggregate_types {
        query = query.bind(*kind);
    }
    let mut events = Vec::new();
    decode_rows(query.fetch(store.pool()), &mut events).await?;
    Ok(events)
}

/// Aggregates read by [`events_of`] per statement, well under SQLite's bound on parameters.
const IDS_PER_READ: usize = 500;

/// The events of the named aggregates of one type up to `position` (inclusive), each
/// aggregate's in log order, only of `event_types` (all when empty): an indexed read (the
/// archive's unique key starts with the type and the id), for figures that follow a known set
/// of cases.
pub async fn events_of(
    store: &ReadStore,
    aggregate_type: &str,
    ids: &[String],
    event_types: &[&str],
    position: i64,
) -> Result<Vec<ArchivedEvent>, FiguresError> {
    let mut conn = store.pool().acquire().await?;
    events_of_on(&mut conn, aggregate_type, ids, event_types, position).await
}

/// [`events_of`] on a connection already held (a snapshot's).
pub(crate) async fn events_of_on(
    conn: &mut sqlx::AnyConnection,
    aggregate_type: &str,
    ids: &[String],
    event_types: &[&str],
    position: i64,
) -> Result<Vec<ArchivedEvent>, FiguresError> {
    let types = if event_types.is_empty() {
        String::new()
    } else {
        let placeholders: Vec<String> = (0..event_types.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        format!(" AND event_type IN ({})", placeholders.join(", "))
    };
    let mut events = Vec::new();
    for chunk in ids.chunks(IDS_PER_READ) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", i + 3 + event_types.len()))
            .collect();
        let sql = format!(
            "SELECT position, aggregate_type, aggregate_id, event_type, schema_version, \
             occurred_at, CAST(data AS TEXT) AS data FROM event_archive WHERE position <= $1 \
             AND aggregate_type = $2{types} AND aggregate_id IN ({}) \
             ORDER BY position, event_index",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(position)
            .bind(aggregate_type);
        for event_type in event_types {
            query = query.bind(*event_type);
        }
        for id in chunk {
            query = query.bind(id.as_str());
        }
        decode_rows(query.fetch(&mut *conn), &mut events).await?;
    }
    Ok(events)
}

/// Decodes the archive rows a query answers onto `events`, row by row: the raw rows are never
/// all in memory beside the decoded events.
async fn decode_rows(
    mut rows: futures::stream::BoxStream<'_, Result<sqlx::any::AnyRow, sqlx::Error>>,
    events: &mut Vec<ArchivedEvent>,
) -> Result<(), FiguresError> {
    while let Some(row) = rows.try_next().await? {
        // Rows already read come without a wait: without this a long read would decode them
        // all before the runtime's worker ran anything else.
        tokio::task::consume_budget().await;
        let position: i64 = row.try_get("position")?;
        let unreadable = |reason: String| FiguresError::Unreadable { position, reason };
        let event_type: String = row.try_get("event_type")?;
        let schema_version: i64 = row.try_get("schema_version")?;
        let data: String = row.try_get("data")?;
        let occurred_at: String = row.try_get("occurred_at")?;
        // Read as the text it is (checked, not built into a tree), then into its type once.
        let data: &serde_json::value::RawValue =
            serde_json::from_str(&data).map_err(|e| unreadable(e.to_string()))?;
        let event = DomainEvent::decode(
            &event_type,
            u32::try_from(schema_version).unwrap_or(0),
            data,
        )
        .map_err(|e| unreadable(e.to_string()))?;
        events.push(ArchivedEvent {
            position,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            occurred_at: DateTime::parse_from_rfc3339(&occurred_at)
                .map_err(|e| unreadable(e.to_string()))?
                .with_timezone(&Utc),
            event,
        });
    }
    Ok(())
}
