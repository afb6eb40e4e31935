//! Checkpoints, generations and dead letters: the bookkeeping that makes a projection resumable
//! and rebuildable.

use chrono::Utc;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use zhzj_store::{Dialect, ReadStore, sql::timestamp_text};

use crate::projection::{DeadLetter, Projection};
use crate::sqlbuild::{SqlValue, col, insert_rows};

/// Where a projection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Stream sequence of the last applied message (0: none).
    pub position: u64,
    /// The live generation of its tables.
    pub generation: i64,
}

/// Reads a projection's checkpoint.
pub async fn read(
    conn: &mut AnyConnection,
    projection: Projection,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT position, generation FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(projection.name())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(Checkpoint {
            position: u64::try_from(row.try_get::<i64, _>("position")?).unwrap_or(0),
            generation: row.try_get("generation")?,
        })
    })
    .transpose()
}

/// Statements that point the views of a projection at generation `generation`.
fn point_views(projection: Projection, generation: i64) -> Vec<String> {
    projection
        .tables()
        .iter()
        .flat_map(|view| {
            [
                format!("DROP VIEW IF EXISTS {view}"),
                format!("CREATE VIEW {view} AS SELECT * FROM {view}_g{generation}"),
            ]
        })
        .collect()
}

/// Runs DDL statements one by one.
pub(crate) async fn execute_all(
    conn: &mut AnyConnection,
    statements: Vec<String>,
) -> Result<(), sqlx::Error> {
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Creates generation 1 of a projection's tables, its views and its checkpoint, unless they
/// exist; returns the checkpoint.
pub async fn initialise(
    store: &ReadStore,
    projection: Projection,
) -> Result<Checkpoint, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO projection_checkpoints (projection, position, generation, updated_at, \
         applied) VALUES ($1, 0, 1, $2, 0) ON CONFLICT DO NOTHING",
    )
    .bind(projection.name())
    .bind(timestamp_text(Utc::now()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        let mut statements = projection.create_tables(store.dialect(), 1);
        statements.extend(point_views(projection, 1));
        execute_all(&mut tx, statements).await?;
    }
    let checkpoint = read(&mut tx, projection).await?;
    tx.commit().await?;
    checkpoint.ok_or(sqlx::Error::RowNotFound)
}

/// Moves the checkpoint from `from` to `to` if it is still at `from` in `generation`; false if
/// another writer (a rebuild swap, a second projector) moved it.
/// `applied` messages (commits and dead letters) were applied on the way; the count is kept
/// beside the checkpoint so that a skipped position shows (see [`Accounting`]).
pub(crate) async fn advance(
    conn: &mut AnyConnection,
    projection: Projection,
    checkpoint: Checkpoint,
    to: u64,
    applied: u64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE projection_checkpoints SET position = $1, updated_at = $2, \
         applied = applied + $6 \
         WHERE projection = $3 AND generation = $4 AND position = $5",
    )
    .bind(crate::sqlbuild::sql_position(to))
    .bind(timestamp_text(Utc::now()))
    .bind(projection.name())
    .bind(checkpoint.generation)
    .bind(crate::sqlbuild::sql_position(checkpoint.position))
    .bind(crate::sqlbuild::sql_position(applied))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Marks the dead letters at `positions` as repaired by the commit at `repair` (an
/// administrator's `UnreadableCommitsSkipped`).
pub(crate) async fn mark_repaired(
    conn: &mut AnyConnection,
    projection: Projection,
    positions: &[u64],
    repair: u64,
) -> Result<(), sqlx::Error> {
    for position in positions {
        sqlx::query(
            "UPDATE dead_letters SET repaired_by = $1 WHERE projection = $2 AND position = $3",
        )
        .bind(crate::sqlbuild::sql_position(repair))
        .bind(projection.name())
        .bind(crate::sqlbuild::sql_position(*position))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records log positions a projection stepped over because the stream holds no event there.
pub(crate) async fn record_empty_positions(
    conn: &mut AnyConnection,
    dialect: Dialect,
    projection: Projection,
    empty: Vec<crate::runner::EmptyPosition>,
) -> Result<(), sqlx::Error> {
    if empty.is_empty() {
        return Ok(());
    }
    let now = timestamp_text(Utc::now());
    let rows = empty
        .into_iter()
        .map(|gap| {
            vec![
                SqlValue::Text(projection.name().to_owned()),
                SqlValue::Int(crate::sqlbuild::sql_position(gap.position)),
                SqlValue::Text(gap.reason.to_owned()),
                SqlValue::Text(now.clone()),
            ]
        })
        .collect();
    let columns = [
        col("projection"),
        col("position"),
        col("reason"),
        col("recorded_at"),
    ];
    insert_rows(
        conn,
        dialect,
        "projection_gaps",
        &columns,
        rows,
        "ON CONFLICT DO NOTHING",
    )
    .await
}

/// A projection's account of the positions up to its checkpoint: each was applied (a commit or
/// a dead letter) or recorded as empty. Anything else is missing: a position the checkpoint
/// moved past without applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    /// Positions applied; None for a projection made before the count was kept.
    pub applied: Option<u64>,
    /// Positions recorded as empty, up to the checkpoint.
    pub empty: u64,
    /// Positions neither applied nor recorded: checkpoint − applied − empty.
    pub missing: u64,
}

/// Reads a projection's [`Accounting`] as of `checkpoint`.
pub async fn accounting(
    conn: &mut AnyConnection,
    projection: Projection,
    checkpoint: Checkpoint,
) -> Result<Accounting, sqlx::Error> {
    let applied: Option<Option<i64>> =
        sqlx::query_scalar("SELECT applied FROM projection_checkpoints WHERE projection = $1")
            .bind(projection.name())
            .fetch_optional(&mut *conn)
            .await?;
    let applied = applied.flatten().map(|n| u64::try_from(n).unwrap_or(0));
    let empty: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM projection_gaps WHERE projection = $1 AND position <= $2",
    )
    .bind(projection.name())
    .bind(crate::sqlbuild::sql_position(checkpoint.position))
    .fetch_one(&mut *conn)
    .await?;
    let empty = u64::try_from(empty).unwrap_or(0);
    let missing = applied.map_or(0, |applied| {
        checkpoint
            .position
            .saturating_sub(applied)
            .saturating_sub(empty)
    });
    Ok(Accounting {
        applied,
        empty,
        missing,
    })
}

/// Records messages a projection could not apply.
pub(crate) async fn record_dead_letters(
    conn: &mut AnyConnection,
    dialect: Dialect,
    projection: Projection,
    letters: Vec<DeadLetter>,
) -> Result<(), sqlx::Error> {
    let now = timestamp_text(Utc::now());
    for letter in &letters {
        tracing::warn!(
            projection = projection.name(),
            position = letter.position,
            reason = %letter.reason,
            "dead-lettered a message"
        );
    }
    let rows = letters
        .into_iter()
        .map(|letter| {
            vec![
                SqlValue::Text(projection.name().to_owned()),
                SqlValue::Int(crate::sqlbuild::sql_position(letter.position)),
                SqlValue::Text(letter.subject),
                SqlValue::Text(letter.reason),
                SqlValue::Text(letter.payload),
                SqlValue::Text(now.clone()),
            ]
        })
        .collect();
    let columns = [
        col("projection"),
        col("position"),
        col("subject"),
        col("reason"),
        col("payload"),
        col("recorded_at"),
    ];
    insert_rows(
        conn,
        dialect,
        "dead_letters",
        &columns,
        rows,
        "ON CONFLICT DO NOTHING",
    )
    .await
}

/// Hands out a generation number no other rebuild of this projection has had.
pub(crate) async fn claim_generation(
    store: &ReadStore,
    projection: Projection,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE projection_checkpoints SET last_generation = last_generation + 1 \
         WHERE projection = $1 RETURNING last_generation",
    )
    .bind(projection.name())
    .fetch_one(store.pool())
    .await?;
    row.try_get("last_generation")
}

/// Drops the tables of a generation that will not be used.
pub(crate) async fn drop_generation(
    store: &ReadStore,
    projection: Projection,
    generation: i64,
) -> Result<(), sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    let drops = projection
        .tables()
        .iter()
        .map(|view| format!("DROP TABLE IF EXISTS {view}_g{generation}"))
        .collect();
    execute_all(&mut conn, drops).await
}

/// Creates the (empty) tables of a freshly claimed generation.
pub(crate) async fn create_generation(
    store: &ReadStore,
    projection: Projection,
    generation: i64,
) -> Result<(), sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    execute_all(
        &mut conn,
        projection.create_tables(store.dialect(), generation),
    )
    .await
}

/// Makes `generation` live at `position`, if `previous` is still the live generation; drops the
/// tables of `previous`. False if another rebuild swapped first.
pub(crate) async fn swap_in(
    store: &ReadStore,
    projection: Projection,
    previous: i64,
    generation: i64,
    position: u64,
    applied: u64,
) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE projection_checkpoints SET position = $1, generation = $2, updated_at = $3, \
         applied = $6 WHERE projection = $4 AND generation = $5",
    )
    .bind(crate::sqlbuild::sql_position(position))
    .bind(generation)
    .bind(timestamp_text(Utc::now()))
    .bind(projection.name())
    .bind(previous)
    .bind(crate::sqlbuild::sql_position(applied))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    execute_all(&mut tx, point_views(projection, generation)).await?;
    tx.commit().await?;
    drop_generation(store, projection, previous).await?;
    Ok(true)
}

/// The settings fingerprint a projection's live generation was computed with; none for a
/// projection created before fingerprints were kept, or not yet created.
pub async fn stored_settings(
    store: &ReadStore,
    projection: Projection,
) -> Result<Option<String>, sqlx::Error> {
    let settings: Option<Option<String>> =
        sqlx::query_scalar("SELECT settings FROM projection_checkpoints WHERE projection = $1")
            .bind(projection.name())
            .fetch_optional(store.pool())
            .await?;
    Ok(settings.flatten())
}

/// Records the settings fingerprint of generation `generation` (unless it is no longer live).
pub async fn record_settings(
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    settings: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "UPDATE projection_checkpoints SET settings = $1 WHERE projection = $2 AND generation = $3",
    )
    .bind(settings)
    .bind(projection.name())
    .bind(generation)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
