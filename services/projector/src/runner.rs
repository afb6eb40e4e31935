//! Runs a projection against the log (live, resumable), rebuilds one from position 1, and reports
//! how far behind each one is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::StreamExt;
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use zhzj_proto::subjects::EVENT_SUBJECTS;
use zhzj_store::{EventLog, ReadStore};

use crate::checkpoint::{self, Checkpoint};
use crate::projection::{
    DeadLetter, Projection, ProjectionRun, ProjectorSettings, ReadCommit, ReadMessage, read_message,
};

/// Messages applied in one SQL transaction at most.
pub const BATCH: usize = 20_000;

/// A projection could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The read store failed.
    #[error("read store: {0}")]
    Sql(#[from] sqlx::Error),
    /// The log failed.
    #[error("event log: {0}")]
    Log(String),
    /// Another rebuild swapped its tables in first.
    #[error("projection {0} was rebuilt by someone else meanwhile; nothing was swapped")]
    RebuildRaced(&'static str),
}

fn store_error(e: zhzj_store::SqlError) -> ProjectorError {
    match e {
        zhzj_store::SqlError::Database(e) => ProjectorError::Sql(e),
        other => ProjectorError::Log(other.to_string()),
    }
}

fn log_error(e: impl std::fmt::Display) -> ProjectorError {
    ProjectorError::Log(e.to_string())
}

/// Durable consumer name of a projection kept in the read store `store_id`: projectors of
/// different stores must never share a consumer, or each would see only part of the log.
pub fn consumer_name(projection: Projection, store_id: &str) -> String {
    let short: String = store_id.chars().take(12).collect();
    format!("zhzj-projection-{}-{short}", projection.name())
}

/// (Re)creates the projection's durable consumer so it delivers from `start`. The SQL
/// checkpoint, not the consumer's ack floor, is the truth of where a projection stands.
async fn position_consumer(
    log: &EventLog,
    projection: Projection,
    store_id: &str,
    start: u64,
) -> Result<PullConsumer, ProjectorError> {
    let name = consumer_name(projection, store_id);
    // Missing is fine: this is only a cursor.
    let _ = log.stream().delete_consumer(&name).await;
    log.stream()
        .create_consumer(pull::Config {
            durable_name: Some(name),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            filter_subject: EVENT_SUBJECTS.to_owned(),
            max_ack_pending: 50_000,
            ..Default::default()
        })
        .await
        .map_err(log_error)
}

/// One message as the projector sees it.
struct LogMessage {
    position: u64,
    subject: String,
    payload: bytes::Bytes,
}

fn split(messages: Vec<LogMessage>) -> (Vec<ReadCommit>, Vec<DeadLetter>) {
    let mut commits = Vec::with_capacity(messages.len());
    let mut dead = Vec::new();
    for message in messages {
        match read_message(message.position, &message.subject, &message.payload) {
            ReadMessage::Commit(commit) => commits.push(commit),
            ReadMessage::Dead(letter) => dead.push(letter),
        }
    }
    (commits, dead)
}

/// A batch read and decoded, ready to apply.
#[derive(Default)]
struct DecodedBatch {
    commits: Vec<ReadCommit>,
    dead: Vec<DeadLetter>,
    /// Stream sequence of the last message (0 for an empty batch).
    last_position: u64,
    /// The last message, to acknowledge once the batch is committed.
    last_message: Option<jetstream::Message>,
}

impl DecodedBatch {
    /// Messages in it.
    fn len(&self) -> usize {
        self.commits.len() + self.dead.len()
    }

    /// Appends a later batch.
    fn absorb(&mut self, later: DecodedBatch) {
        self.commits.extend(later.commits);
        self.dead.extend(later.dead);
        self.last_position = self.last_position.max(later.last_position);
        if later.last_message.is_some() {
            self.last_message = later.last_message;
        }
    }
}

/// Takes the next decoded batch and joins to it whatever else is already decoded, up to
/// [`BATCH`] messages: when the writer falls behind, its transactions grow instead of its lag.
async fn next_batch(
    batches: &mut tokio::sync::mpsc::Receiver<DecodedBatch>,
) -> Option<DecodedBatch> {
    let mut batch = batches.recv().await?;
    while batch.len() < BATCH {
        match batches.try_recv() {
            Ok(later) => batch.absorb(later),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Reads batches from a consumer and decodes them on another thread, so that decoding the next
/// batch overlaps with writing this one. Messages at or below `after` are dropped (redeliveries).
fn spawn_decoder<S, E>(
    chunks: S,
    mut after: u64,
) -> (
    tokio::task::JoinHandle<Result<(), ProjectorError>>,
    tokio::sync::mpsc::Receiver<DecodedBatch>,
)
where
    S: futures::Stream<Item = Vec<Result<jetstream::Message, E>>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    // Room for a full transaction's worth of small batches.
    let (sender, receiver) = tokio::sync::mpsc::channel(256);
    let task = tokio::spawn(async move {
        // Filtering is sequential; decoding runs on two blocking threads at once, in order.
        let mut decoded = chunks
            .map(|chunk| {
                let mut messages = Vec::with_capacity(chunk.len());
                let mut last_message = None;
                for item in chunk {
                    let message = item.map_err(log_error)?;
                    let position = message.info().map_err(log_error)?.stream_sequence;
                    if position > after {
                        after = position;
                        messages.push(LogMessage {
                            position,
                            subject: message.subject.to_string(),
                            payload: message.payload.clone(),
                        });
                    }
                    last_message = Some(message);
                }
                Ok((messages, last_message))
            })
            .map(|read: Result<_, ProjectorError>| async move {
                let (messages, last_message) = read?;
                let last_position = messages.last().map_or(0, |m| m.position);
                let (commits, dead) = tokio::task::spawn_blocking(move || split(messages))
                    .await
                    .map_err(log_error)?;
                Ok::<_, ProjectorError>(DecodedBatch {
                    commits,
                    dead,
                    last_position,
                    last_message,
                })
            })
            .buffered(2);
        while let Some(batch) = decoded.next().await {
            if sender.send(batch?).await.is_err() {
                return Ok(());
            }
        }
        Err(log_error("consumer stream ended"))
    });
    (task, receiver)
}

/// Applies a decoded batch into a generation inside an open transaction.
async fn apply_batch(
    conn: &mut sqlx::AnyConnection,
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    batch: DecodedBatch,
    memory: &mut ProjectionRun,
) -> Result<(), sqlx::Error> {
    let mut dead = batch.dead;
    dead.extend(
        projection
            .apply(conn, store.dialect(), generation, &batch.commits, memory)
            .await?,
    );
    checkpoint::record_dead_letters(conn, store.dialect(), projection, dead).await
}

/// Why a live batch did not go through.
enum BatchOutcome {
    Applied(Checkpoint),
    /// The checkpoint moved under us (a rebuild swap): position the consumer again.
    Moved,
}

async fn apply_live_batch(
    store: &ReadStore,
    projection: Projection,
    checkpoint: Checkpoint,
    batch: DecodedBatch,
    memory: &mut ProjectionRun,
) -> Result<BatchOutcome, sqlx::Error> {
    let last = batch.last_position;
    if last <= checkpoint.position {
        return Ok(BatchOutcome::Applied(checkpoint));
    }
    let mut tx = store.begin_write().await?;
    // The guard first: it takes the write lock and fails if the checkpoint moved.
    if !checkpoint::advance(&mut tx, projection, checkpoint, last).await? {
        tx.rollback().await?;
        return Ok(BatchOutcome::Moved);
    }
    apply_batch(
        &mut tx,
        store,
        projection,
        checkpoint.generation,
        batch,
        memory,
    )
    .await?;
    tx.commit().await?;
    Ok(BatchOutcome::Applied(Checkpoint {
        position: last,
        generation: checkpoint.generation,
    }))
}

/// Keeps a projection up to date until `shutdown` fires. Resumes from its checkpoint; survives
/// log and database outages by waiting and resuming from the checkpoint again.
pub async fn run(
    log: EventLog,
    store: ReadStore,
    projection: Projection,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    run_with(log, store, projection, Arc::default(), shutdown).await
}

/// [`run`] computing with the bureau's `settings`. It first rebuilds the projection if its tables
/// were computed with other settings or an older shape (see [`ensure_settings`]).
pub async fn run_with(
    log: EventLog,
    store: ReadStore,
    projection: Projection,
    settings: Arc<ProjectorSettings>,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    while !shutdown.is_cancelled() {
        let attempt = async {
            ensure_settings(&log, &store, projection, &settings).await?;
            run_from_checkpoint(&log, &store, projection, &settings, &shutdown).await
        };
        match attempt.await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(projection = projection.name(), error = %e, "projection interrupted; resuming from its checkpoint");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    Ok(())
}

/// Consumes from the checkpoint until shutdown (Ok) or until the consumer must be positioned
/// again (Ok after a moved checkpoint, Err after a failure).
async fn run_from_checkpoint(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
    settings: &Arc<ProjectorSettings>,
    shutdown: &CancellationToken,
) -> Result<(), ProjectorError> {
    let mut checkpoint = checkpoint::initialise(store, projection).await?;
    let store_id = store.identity().await.map_err(store_error)?;
    let consumer = position_consumer(log, projection, &store_id, checkpoint.position + 1).await?;
    let chunks = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .map_err(log_error)?
        .ready_chunks(BATCH);
    let (decoder, mut batches) = spawn_decoder(chunks, checkpoint.position);
    let decoder = AbortOnDrop(Some(decoder));
    // Rows remembered across batches; on an error it is dropped with this function and the
    // caller starts over from the checkpoint.
    let mut memory = ProjectionRun::new(Arc::clone(settings));
    tracing::info!(
        projection = projection.name(),
        position = checkpoint.position,
        generation = checkpoint.generation,
        "projection consuming"
    );
    // A rebuild that swaps in while no message arrives must still be noticed: otherwise the
    // events between its end and our position would wait for the next write to be projected.
    let mut swap_check = tokio::time::interval(SWAP_CHECK_INTERVAL);
    swap_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            batch = next_batch(&mut batches) => batch,
            _ = swap_check.tick() => {
                if checkpoint_moved(store, projection, checkpoint).await? {
                    tracing::info!(
                        projection = projection.name(),
                        "checkpoint moved while idle (rebuild swapped in); repositioning"
                    );
                    return Ok(());
                }
                continue;
            }
        };
        let Some(mut batch) = batch else {
            // The decoder stopped: its error says why.
            return match decoder.join().await {
                Some(Err(e)) => Err(e),
                _ => Err(log_error("decoder stopped")),
            };
        };
        let last_message = batch.last_message.take();
        match apply_live_batch(store, projection, checkpoint, batch, &mut memory).await? {
            BatchOutcome::Applied(next) => checkpoint = next,
            BatchOutcome::Moved => {
                tracing::info!(
                    projection = projection.name(),
                    "checkpoint moved (rebuild swapped in); repositioning"
                );
                return Ok(());
            }
        }
        // AckPolicy::All: acknowledging the last acknowledges the batch.
        if let Some(message) = last_message
            && let Err(e) = message.ack().await
        {
            // Harmless: redelivered messages are at or below the checkpoint and skipped.
            tracing::debug!(error = %e, "ack failed");
        }
    }
}

/// How often an idle projector looks whether a rebuild moved its checkpoint.
const SWAP_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the stored checkpoint differs from the one this projector holds.
async fn checkpoint_moved(
    store: &ReadStore,
    projection: Projection,
    held: Checkpoint,
) -> Result<bool, sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    Ok(checkpoint::read(&mut conn, projection).await? != Some(held))
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task to end and returns its result (None if it panicked or was aborted).
    async fn join(mut self) -> Option<T> {
        self.0.take()?.await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

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
    if stored.as_deref() == Some(wanted.as_str()) {
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
        "projection computed with other settings; rebuilding"
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
        || !checkpoint::swap_in(store, projection, live.generation, generation, position).await?
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

/// Replays the whole log into generation `generation`; returns the messages read and the
/// position reached (the log's end, including what arrived meanwhile).
async fn replay_into(
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
        let consumer = log
            .stream()
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: EVENT_SUBJECTS.to_owned(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(log_error)?;
        let chunks = consumer
            .messages()
            .await
            .map_err(log_error)?
            .ready_chunks(BATCH);
        let (decoder, mut batches) = spawn_decoder(chunks, 0);
        let decoder = AbortOnDrop(Some(decoder));
        while position < target {
            let batch = tokio::time::timeout(Duration::from_secs(30), next_batch(&mut batches))
                .await
                .map_err(|_| log_error("replay stalled"))?;
            let Some(batch) = batch else {
                return match decoder.join().await {
                    Some(Err(e)) => Err(e),
                    _ => Err(log_error("replay stopped")),
                };
            };
            count += (batch.commits.len() + batch.dead.len()) as u64;
            position = position.max(batch.last_position);
            let mut tx = store.begin_write().await?;
            apply_batch(&mut tx, store, projection, generation, batch, &mut memory).await?;
            tx.commit().await?;
            if position >= target {
                // Catch up with what arrived meanwhile before swapping.
                target = log.last_position().await.map_err(log_error)?;
            }
        }
    }
    Ok((count, position))
}

/// How far a projection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Projection name.
    pub name: &'static str,
    /// Last applied stream sequence.
    pub position: u64,
    /// Live generation of its tables.
    pub generation: i64,
    /// Stream last sequence minus position.
    pub lag: u64,
    /// Messages it dead-lettered.
    pub dead_letters: i64,
}

/// The status of every projection.
pub async fn status(
    log: &EventLog,
    store: &ReadStore,
) -> Result<Vec<ProjectionStatus>, ProjectorError> {
    let last = log.last_position().await.map_err(log_error)?;
    let mut conn = store.pool().acquire().await?;
    let mut result = Vec::new();
    for projection in Projection::ALL {
        let checkpoint = checkpoint::read(&mut conn, projection)
            .await?
            .unwrap_or(Checkpoint {
                position: 0,
                generation: 0,
            });
        let dead_letters: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM dead_letters WHERE projection = $1")
                .bind(projection.name())
                .fetch_one(&mut *conn)
                .await?
                .try_get("n")?;
        result.push(ProjectionStatus {
            name: projection.name(),
            position: checkpoint.position,
            generation: checkpoint.generation,
            lag: last.saturating_sub(checkpoint.position),
            dead_letters,
        });
    }
    Ok(result)
}
