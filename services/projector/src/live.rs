//! Keeps the projections of a process up to date from the log: one reader for all of them,
//! each batch decoded once and applied to every projection in one SQL transaction that also
//! advances each one's checkpoint.
//!
//! One reader instead of one per projection: a commit is delivered, decoded and committed once,
//! not once per view, and a read-your-writes waiter is woken once (issue 21: under 32 writers the
//! eight transactions per commit and their hand-offs between threads were most of the cost).
//! Projections that are not level read together from the lowest checkpoint; each skips what it
//! already holds. A projection that keeps failing on its own (its statements, its rebuild) is
//! split off to a reader of its own, so that one broken view does not hold the others back.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zhzj_store::{EventLog, ReadStore};

use crate::checkpoint::{self, Checkpoint};
use crate::projection::{DeadLetter, Projection, ProjectionRun, ProjectorSettings};
use crate::rebuild::ensure_settings;
use crate::runner::{
    DecodedBatch, EmptyPosition, LogReader, ProjectorError, SILENT_CONSUMER, apply_part,
    explain_gaps, holds_events, log_error, next_batch, remove_legacy_consumer, silent_consumer,
    store_error,
};

/// Failures in a row caused by one projection after which it is read on its own.
const SPLIT_AFTER_FAILURES: u32 = 3;

/// How often an idle reader looks whether a rebuild moved a checkpoint.
const SWAP_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps one projection up to date until `shutdown` fires (see [`run_together`]).
pub async fn run(
    log: EventLog,
    store: ReadStore,
    projection: Projection,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    run_with(log, store, projection, Arc::default(), shutdown).await
}

/// [`run`] computing with the bureau's `settings`.
pub async fn run_with(
    log: EventLog,
    store: ReadStore,
    projection: Projection,
    settings: Arc<ProjectorSettings>,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    run_together(log, store, vec![projection], settings, shutdown).await
}

/// Creates every projection's tables and checkpoint that do not exist yet, so that a gateway
/// started after this finds the views (empty until the projector catches up) rather than
/// missing tables. [`run_together`] does the same on its own; this only does it first.
pub async fn prepare(store: &ReadStore) -> Result<(), ProjectorError> {
    for projection in Projection::ALL {
        checkpoint::initialise(store, projection)
            .await
            .map_err(ProjectorError::Sql)?;
    }
    Ok(())
}

/// Keeps `projections` up to date with one reader until `shutdown` fires. Each first rebuilds
/// if its tables were computed with other settings or an older shape (see [`ensure_settings`]);
/// then all resume from their checkpoints and survive log and database outages by waiting and
/// resuming from their checkpoints again. A projection that fails alone
/// [`SPLIT_AFTER_FAILURES`] times in a row goes on with a reader of its own.
pub async fn run_together(
    log: EventLog,
    store: ReadStore,
    projections: Vec<Projection>,
    settings: Arc<ProjectorSettings>,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    join_all(
        projections
            .iter()
            .map(|projection| remove_legacy_consumer(&log, &store, *projection)),
    )
    .await;
    let (split_off, mut to_split) = tokio::sync::mpsc::unbounded_channel();
    let mut readers = JoinSet::new();
    let reader = Reader {
        log,
        store,
        settings,
        shutdown,
    };
    readers.spawn(reader.clone().keep(projections, Some(split_off)));
    loop {
        tokio::select! {
            Some(projection) = to_split.recv() => {
                readers.spawn(reader.clone().keep(vec![projection], None));
            }
            joined = readers.join_next() => match joined {
                None => return Ok(()),
                Some(Ok(())) => {}
                // A reader panicked.
                Some(Err(e)) => return Err(log_error(e)),
            }
        }
    }
}

/// What a reader needs, shared by the readers of one [`run_together`].
#[derive(Clone)]
struct Reader {
    log: EventLog,
    store: ReadStore,
    settings: Arc<ProjectorSettings>,
    shutdown: CancellationToken,
}

/// Why a reader's attempt ended, and which projection caused it when one did.
struct Failure {
    projection: Option<Projection>,
    error: ProjectorError,
}

impl Failure {
    /// A failure of `projection`'s own work.
    fn of(projection: Projection, error: impl Into<ProjectorError>) -> Self {
        Self {
            projection: Some(projection),
            error: error.into(),
        }
    }
}

impl From<ProjectorError> for Failure {
    fn from(error: ProjectorError) -> Self {
        Self {
            projection: None,
            error,
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        ProjectorError::Sql(error).into()
    }
}

/// A projection read by a reader, where it stands and what it remembers across batches.
struct Member {
    projection: Projection,
    checkpoint: Checkpoint,
    memory: ProjectionRun,
}

/// How a batch went.
enum BatchOutcome {
    Applied,
    /// A checkpoint moved under the reader (a rebuild swap): read again from the checkpoints.
    Moved,
}

impl Reader {
    /// Keeps `projections` up to date until shutdown, splitting off through `split_off` a
    /// projection that keeps failing alone (never when `split_off` is `None`).
    async fn keep(
        self,
        mut projections: Vec<Projection>,
        split_off: Option<tokio::sync::mpsc::UnboundedSender<Projection>>,
    ) {
        let faults = self.store.projection_faults().clone();
        let mut strikes: Option<(Projection, u32)> = None;
        while !self.shutdown.is_cancelled() && !projections.is_empty() {
            let attempt = async {
                let reader = &self;
                // Each to its end: a rebuild dropped half-way would leave its tables behind.
                let ensured = join_all(projections.iter().map(|projection| async move {
                    ensure_settings(&reader.log, &reader.store, *projection, &reader.settings)
                        .await
                        .map_err(|e| Failure::of(*projection, e))
                }))
                .await;
                ensured.into_iter().collect::<Result<Vec<()>, Failure>>()?;
                self.read_from_checkpoints(&projections).await
            };
            let Err(failure) = attempt.await else {
                strikes = None;
                continue;
            };
            // Reported (in `/readyz` and `/metrics`) until a batch goes through again.
            let mut attempts = 0;
            for projection in &projections {
                attempts = faults.fail(projection.name(), &failure.error.to_string());
                metrics::counter!("zhzj_projection_failures_total", "projection" => projection.name())
                    .increment(1);
            }
            strikes = match (failure.projection, strikes) {
                (Some(p), Some((q, n))) if p == q => Some((p, n + 1)),
                (Some(p), _) => Some((p, 1)),
                (None, _) => None,
            };
            if let (Some((culprit, SPLIT_AFTER_FAILURES..)), Some(split_off)) =
                (strikes, &split_off)
                && projections.len() > 1
            {
                tracing::warn!(
                    projection = culprit.name(),
                    error = %failure.error,
                    "projection failed {SPLIT_AFTER_FAILURES} times in a row; reading it on its own \
                     so that the other projections go on"
                );
                projections.retain(|p| *p != culprit);
                strikes = None;
                if split_off.send(culprit).is_ok() {
                    continue;
                }
            }
            let pause = retry_pause(attempts);
            tracing::warn!(
                projections = ?projections,
                error = %failure.error,
                attempts,
                retry_in = ?pause,
                "projections interrupted; resuming from their checkpoints"
            );
            tokio::select! {
                () = self.shutdown.cancelled() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Consumes from the lowest checkpoint until shutdown (Ok) or until the reader must be
    /// positioned again (Ok after a moved checkpoint, Err after a failure).
    async fn read_from_checkpoints(&self, projections: &[Projection]) -> Result<(), Failure> {
        let (log, store) = (&self.log, &self.store);
        let mut members = Vec::with_capacity(projections.len());
        for projection in projections {
            members.push(Member {
                projection: *projection,
                checkpoint: checkpoint::initialise(store, *projection)
                    .await
                    .map_err(|e| Failure::of(*projection, e))?,
                // Rows remembered across batches; dropped with this function on an error or a
                // move, and the reader starts over from the checkpoints.
                memory: ProjectionRun::new(Arc::clone(&self.settings)),
            });
        }
        let store_id = store.identity().await.map_err(store_error)?;
        // The store took a write: whatever failed before is over unless the next batch fails.
        for projection in projections {
            store.projection_faults().clear(projection.name());
        }
        let lowest = lowest_position(&members);
        let label = projections
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(",");
        let LogReader {
            mut batches,
            decoder,
        } = LogReader::open(log, &label, &store_id, lowest).await?;
        for member in &members {
            tracing::info!(
                projection = member.projection.name(),
                position = member.checkpoint.position,
                generation = member.checkpoint.generation,
                reading_with = label,
                "projection consuming"
            );
        }
        // A rebuild that swaps in while no message arrives must still be noticed: otherwise
        // the events between its end and our position would wait for the next write.
        let mut swap_check = tokio::time::interval(SWAP_CHECK_INTERVAL);
        swap_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            let batch = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                batch = next_batch(&mut batches) => batch,
                _ = swap_check.tick() => {
                    let held: Vec<_> = members.iter().map(|m| (m.projection, m.checkpoint)).collect();
                    if checkpoint_moved(store, &held).await? {
                        tracing::info!(
                            projections = label,
                            "a checkpoint moved while idle (rebuild swapped in); repositioning"
                        );
                        return Ok(());
                    }
                    if quiet_since.elapsed() >= SILENT_CONSUMER {
                        // Quiet is normal when nothing is written; not while the log holds more.
                        quiet_since = tokio::time::Instant::now();
                        let position = lowest_position(&members);
                        let last = log.last_position().await.map_err(log_error)?;
                        if holds_events(log, position, last).await? {
                            for member in &members {
                                silent_consumer(member.projection, position);
                            }
                            return Ok(());
                        }
                    }
                    continue;
                }
            };
            quiet_since = tokio::time::Instant::now();
            let Some(batch) = batch else {
                // The decoder stopped: its error says why.
                return match decoder.join().await {
                    Some(Err(e)) => Err(e.into()),
                    _ => Err(log_error("decoder stopped").into()),
                };
            };
            match self.apply_live_batch(&mut members, batch).await? {
                BatchOutcome::Applied => {
                    for projection in projections {
                        store.projection_faults().clear(projection.name());
                    }
                }
                BatchOutcome::Moved => {
                    tracing::info!(
                        projections = label,
                        "a checkpoint moved (rebuild swapped in); repositioning"
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Applies a batch to every member that has not applied all of it, in one transaction
    /// that advances each one's checkpoint to the batch's last position.
    async fn apply_live_batch(
        &self,
        members: &mut [Member],
        batch: DecodedBatch,
    ) -> Result<BatchOutcome, Failure> {
        let (log, store) = (&self.log, &self.store);
        let last = batch.last_position;
        if members.iter().all(|m| last <= m.checkpoint.position) {
            return Ok(BatchOutcome::Applied);
        }
        let projections: Vec<Projection> = members.iter().map(|m| m.projection).collect();
        // Before anything is written: every position up to `last` is in the batch or explained.
        let empty = explain_gaps(log, &projections, &batch.gaps).await?;
        // How long the newest commit took to reach the projections since the service stamped
        // it (one clock when the roles share a process, as under `zhzj up`): the write path's
        // delivery stage (BENCHMARKS.md, issue 21).
        let delivery = batch.newest_stamp().map(|stamped| {
            (chrono::Utc::now() - stamped)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64()
        });
        let started = std::time::Instant::now();
        let mut tx = store.begin_rebuildable_write().await?;
        for member in members.iter_mut() {
            let from = member.checkpoint.position;
            if last <= from {
                continue;
            }
            let commits = batch.commits_after(from);
            let dead: Vec<DeadLetter> = batch.dead_after(from);
            let empty_here: Vec<EmptyPosition> = empty
                .iter()
                .filter(|e| e.position > from)
                .cloned()
                .collect();
            let applied = (commits.len() + dead.len()) as u64;
            // The guard first: it fails if the checkpoint moved.
            let advanced =
                checkpoint::advance(&mut tx, member.projection, member.checkpoint, last, applied)
                    .await
                    .map_err(|e| Failure::of(member.projection, e))?;
            if !advanced {
                tx.rollback().await?;
                return Ok(BatchOutcome::Moved);
            }
            apply_part(
                &mut tx,
                store,
                member.projection,
                member.checkpoint.generation,
                commits,
                dead,
                empty_here,
                &mut member.memory,
            )
            .await
            .map_err(|e| Failure::of(member.projection, e))?;
        }
        let applied_at = std::time::Instant::now();
        tx.commit().await?;
        let committed = applied_at.elapsed().as_secs_f64();
        let applying = (applied_at - started).as_secs_f64();
        for member in members.iter_mut() {
            if last <= member.checkpoint.position {
                continue;
            }
            member.checkpoint.position = last;
            let name = member.projection.name();
            if let Some(delivery) = delivery {
                metrics::histogram!("zhzj_projection_delivery_seconds", "projection" => name)
                    .record(delivery);
            }
            metrics::histogram!("zhzj_projection_apply_seconds", "projection" => name)
                .record(applying);
            metrics::histogram!("zhzj_projection_commit_seconds", "projection" => name)
                .record(committed);
        }
        Ok(BatchOutcome::Applied)
    }
}

/// The lowest position the members have reached: where their reader starts.
fn lowest_position(members: &[Member]) -> u64 {
    members
        .iter()
        .map(|m| m.checkpoint.position)
        .min()
        .unwrap_or(0)
}

/// The wait before the `attempts`th retry of a failing reader: 250 ms doubling up to 4 s, so
/// that a store that is down is not hammered and one that is back is used within seconds.
fn retry_pause(attempts: u32) -> Duration {
    let doubled = 250_u64.saturating_mul(1 << attempts.saturating_sub(1).min(6));
    Duration::from_millis(doubled.min(4_000))
}

/// Whether any stored checkpoint differs from the one the reader holds.
async fn checkpoint_moved(
    store: &ReadStore,
    held: &[(Projection, Checkpoint)],
) -> Result<bool, sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    for (projection, checkpoint) in held {
        if checkpoint::read(&mut conn, *projection).await? != Some(*checkpoint) {
            return Ok(true);
        }
    }
    Ok(false)
}
