//! Rebuilding a projection beside the live one: claim a new generation, fill its tables from the
//! log, then swap the views and the checkpoint in one transaction; and rebuilding at start a
//! projection computed under other settings or an older shape.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zhzj_store::{EventLog, ReadStore};

use crate::checkpoint;
use crate::projection::{Projection, ProjectionRun, ProjectorSettings};
use crate::runner::{
    LogReader, ProjectorError, SILENT_CONSUMER, apply_batch, explain_gaps, holds_events, log_error,
    next_batch, silent_consumer, store_error,
};

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct RebuildReport {
    /// Messages replayed.
    pub messages: u64,
    /// Position the new tables stand at.
    pub position: u64,
    /// The generation now live.
    pub generation: i64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Replays the whole log into a new generation of the projection's tables, then swaps them in.
/// The live tables keep serving until the swap; a live projector notices the swap and continues
/// on the new tables from where the rebuild stopped.
pub async fn rebuild(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
) -> Result<RebuildReport, ProjectorError> {
    rebuild_with(log, store, projection, &Arc::default()).await
}

/// Rebuilds a projection when its live tables were computed with other settings than
/// `settings` (another shape version, other internal limits), or before settings were recorded;
/// a projection that has applied nothing into its first tables just records them.
pub async fn ensure_settings(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
    settings: &Arc<ProjectorSettings>,
) -> Result<(), ProjectorError> {
    let wanted = settings.fingerprint(projection);
    let live = checkpoint::initialise(store, projection).await?;
    let stored = checkpoint::stored_settings(store, projection).await?;
    let counted = {
        let mut conn = store.pool().acquire().await?;
        checkpoint::accounting(&mut conn, projection, live)
            .await?
            .applied
            .is_some()
    };
    if stored.as_deref() == Some(wanted.as_str()) && counted {
        return Ok(());
    }
    // A projection that has never applied anything, in the tables this code just created.
    if stored.is_none() && live.position == 0 && live.generation == 1 {
        checkpoint::record_settings(store, projection, live.generation, &wanted).await?;
        return Ok(());
    }
    tracing::info!(
        projection = projection.name(),
        stored = stored.as_deref().unwrap_or("(none)"),
        wanted,
        counted,
        "projection computed with other settings, or before applied positions were counted; \
         rebuilding"
    );
    rebuild_with(log, store, projection, settings).await?;
    Ok(())
}

/// [`rebuild`] computing with the bureau's `settings`, which it records with the new generation.
pub async fn rebuild_with(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
    settings: &Arc<ProjectorSettings>,
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    let live = checkpoint::initialise(store, projection).await?;
    // A generation of our own: a concurrent rebuild builds into other tables, and only the first
    // to swap wins.
    let generation = checkpoint::claim_generation(store, projection).await?;
    checkpoint::create_generation(store, projection, generation).await?;
    let rebuilt = replay_into(log, store, projection, generation, settings).await;
    let (messages, position) = match rebuilt {
        Ok(done) => done,
        Err(e) => {
            // Leave nothing behind but the error.
            if let Err(drop_error) =
                checkpoint::drop_generation(store, projection, generation).await
            {
                tracing::warn!(error = %drop_error, "could not drop the abandoned generation");
            }
            return Err(e);
        }
    };
    let current = {
        let mut conn = store.pool().acquire().await?;
        checkpoint::read(&mut conn, projection)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?
    };
    if current.generation != live.generation
        || !checkpoint::swap_in(
            store,
            projection,
            live.generation,
            generation,
            position,
            messages,
        )
        .await?
    {
        checkpoint::drop_generation(store, projection, generation).await?;
        return Err(ProjectorError::RebuildRaced(projection.name()));
    }
    checkpoint::record_settings(
        store,
        projection,
        generation,
        &settings.fingerprint(projection),
    )
    .await?;
    Ok(RebuildReport {
        messages,
        position,
        generation,
        elapsed: started.elapsed(),
    })
}

/// How long a replay waits for its next batch before it asks whether any event is left to come.
const IDLE_PROBE: Duration = Duration::from_millis(500);

/// Reopenings in a row with nothing delivered before the replay gives up.
const MOST_REOPENINGS: u32 = 6;

/// Replays the whole log into generation `generation`; returns the messages read and the
/// position reached (the log's last event, including what arrived meanwhile).
pub(crate) async fn replay_into(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    settings: &Arc<ProjectorSettings>,
) -> Result<(u64, u64), ProjectorError> {
    let mut target = log.last_position().await.map_err(log_error)?;
    let mut position = 0;
    let mut count = 0;
    let mut memory = ProjectionRun::new(Arc::clone(settings));
    if target > 0 {
        let label = format!("{} (rebuild)", projection.name());
        let store_id = store.identity().await.map_err(store_error)?;
        let mut reader = LogReader::open(log, &label, &store_id, 0).await?;
        let (mut idle, mut reopenings, mut gaps_read_again) = (Duration::ZERO, 0, 0);
        while position < target {
            let Ok(batch) = tokio::time::timeout(IDLE_PROBE, next_batch(&mut reader.batches)).await
            else {
                // Nothing came: if the rest of the log holds no event (an export's seal last),
                // nothing will, and the replay is complete at the last event.
                if !holds_events(log, position, target).await? {
                    break;
                }
                idle += IDLE_PROBE;
                if idle >= SILENT_CONSUMER {
                    if reopenings == MOST_REOPENINGS {
                        return Err(log_error("replay stalled"));
                    }
                    silent_consumer(projection, position);
                    reader = LogReader::open(log, &label, &store_id, position).await?;
                    (idle, reopenings) = (Duration::ZERO, reopenings + 1);
                }
                continue;
            };
            (idle, reopenings) = (Duration::ZERO, 0);
            let Some(batch) = batch else {
                return match reader.decoder.join().await {
                    Some(Err(e)) => Err(e),
                    _ => Err(log_error("replay stopped")),
                };
            };
            let empty = match explain_gaps(log, &[projection], &batch.gaps).await {
                Ok(empty) => empty,
                // Messages lost on the way (a connection cut as a slow consumer): read again
                // after what was applied.
                Err(ProjectorError::DeliveryGap { .. }) if gaps_read_again < MOST_REOPENINGS => {
                    gaps_read_again += 1;
                    reader = LogReader::open(log, &label, &store_id, position).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            gaps_read_again = 0;
            count += batch.len() as u64;
            position = position.max(batch.last_position);
            let mut tx = store.begin_rebuildable_write().await?;
            apply_batch(
                &mut tx,
                store,
                projection,
                generation,
                batch,
                empty,
                &mut memory,
            )
            .await?;
            tx.commit().await?;
            if position >= target {
                // Catch up with what arrived meanwhile before swapping.
                target = log.last_position().await.map_err(log_error)?;
            }
        }
    }
    Ok((count, position))
}
