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

/// Messages one pull request asks the server for. The server sends a pull's messages into the
/// connection's buffer whether or not the client reads them, and cuts a connection whose buffer
/// passes 64 MB as a slow consumer, losing what was in it; every projection of a process shares
/// one connection, so each asks for a bounded amount at a time (the client asks again at half).
pub const FETCH_MESSAGES: usize = 5_000;

/// Bytes one pull request asks for at most: five projections with a pull and a half in flight
/// each stay at 45 MB, under the server's 64 MB per-connection limit whatever the messages'
/// size.
pub const FETCH_BYTES: usize = 6 * 1024 * 1024;

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
    /// Messages the stream holds never arrived (a connection cut as a slow consumer, a
    /// consumer lost on a node): nothing past them was applied, and the projection reads again
    /// from its checkpoint.
    #[error(
        "delivery gap: positions {from}..={to} are in the stream but were not delivered; \
         reading again from position {from}"
    )]
    DeliveryGap {
        /// First position missing.
        from: u64,
        /// Last position missing.
        to: u64,
    },
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

/// Name of the durable consumer a projection kept in the read store `store_id` used before
/// projections read through ephemeral consumers; removed when a projector starts.
pub fn consumer_name(projection: Projection, store_id: &str) -> String {
    let short: String = store_id.chars().take(12).collect();
    format!("zhzj-projection-{}-{short}", projection.name())
}

/// How long the server keeps a consumer nobody pulls from: a projector that died or moved on
/// leaves nothing behind for longer.
const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);

/// Creates a consumer delivering from `start`. The SQL checkpoint, not the consumer, is the
/// truth of where a projection stands, so the consumer is only a cursor: ephemeral, on one node,
/// in memory. Creating it never collides with an earlier one, and on a cluster it needs no
/// election of its own when the node it lived on dies — the projector just makes another.
async fn position_consumer(
    log: &EventLog,
    projection: Projection,
    store_id: &str,
    start: u64,
) -> Result<PullConsumer, ProjectorError> {
    let short: String = store_id.chars().take(12).collect();
    log.stream()
        .create_consumer(pull::Config {
            description: Some(format!(
                "zhzj projection {} of store {short}",
                projection.name()
            )),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            // The SQL checkpoint says what was applied; acknowledgements would only let the
            // server forget messages that were lost on the way.
            ack_policy: AckPolicy::None,
            filter_subject: EVENT_SUBJECTS.to_owned(),
            inactive_threshold: CONSUMER_INACTIVE_THRESHOLD,
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(log_error)
}

/// Removes the durable consumer an earlier version kept for this projection, if any.
async fn remove_legacy_consumer(log: &EventLog, store: &ReadStore, projection: Projection) {
    let removal = async {
        let store_id = store.identity().await.ok()?;
        log.stream()
            .delete_consumer(&consumer_name(projection, &store_id))
            .await
            .ok()
    };
    if tokio::time::timeout(Duration::from_secs(5), removal)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        tracing::info!(
            projection = projection.name(),
            "removed the durable consumer of an earlier version"
        );
    }
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
    /// Runs of positions skipped between consecutive messages, to be explained (deleted
    /// messages) before the batch is applied, or refetched.
    gaps: Vec<PositionRun>,
}

/// Positions `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PositionRun {
    from: u64,
    to: u64,
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
        self.gaps.extend(later.gaps);
    }
}

/// A position the stream holds no event message at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmptyPosition {
    pub(crate) position: u64,
    pub(crate) reason: &'static str,
}

/// How many empty positions one gap may hold before the projector stops looking one by one and
/// reads again instead (a real stream has at most a few deleted messages in a row).
const MAX_GAP_PROBES: u64 = 100_000;

/// Explains the positions a batch stepped over: each must be a deleted message (or one outside
/// the event subjects). A position the stream still holds means messages were lost on the way:
/// that is [`ProjectorError::DeliveryGap`], and nothing of the batch may be applied.
async fn explain_gaps(
    log: &EventLog,
    projection: Projection,
    gaps: &[PositionRun],
) -> Result<Vec<EmptyPosition>, ProjectorError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let mut empty = Vec::new();
    for run in gaps {
        if run.to - run.from >= MAX_GAP_PROBES {
            return Err(gap_error(projection, *run));
        }
        for position in run.from..=run.to {
            match log.stream().get_raw_message(position).await {
                Ok(message) if message.subject.starts_with(EVENT_SUBJECT_PREFIX) => {
                    return Err(gap_error(projection, *run));
                }
                Ok(_) => empty.push(EmptyPosition {
                    position,
                    reason: "not an event subject",
                }),
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                    empty.push(EmptyPosition {
                        position,
                        reason: "deleted from the stream",
                    });
                }
                Err(e) => return Err(log_error(e)),
            }
        }
    }
    for gap in &empty {
        tracing::warn!(
            projection = projection.name(),
            position = gap.position,
            reason = gap.reason,
            "stepping over an empty log position"
        );
    }
    Ok(empty)
}

/// Event subjects all start with this.
const EVENT_SUBJECT_PREFIX: &str = "zhzj.ev.";

fn gap_error(projection: Projection, run: PositionRun) -> ProjectorError {
    metrics::counter!("zhzj_projection_delivery_gaps_total", "projection" => projection.name())
        .increment(1);
    tracing::error!(
        projection = projection.name(),
        from = run.from,
        to = run.to,
        "delivery gap: messages in the stream were not delivered; reading again from the checkpoint"
    );
    ProjectorError::DeliveryGap {
        from: run.from,
        to: run.to,
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
    // Room for many chunks: what is ready when the stream is polled may be a few messages, and
    // a writer that falls behind should find a full transaction's worth waiting, not a handful.
    let (sender, receiver) = tokio::sync::mpsc::channel(DECODED_CHUNKS);
    let task = tokio::spawn(async move {
        // Filtering is sequential; decoding runs on two blocking threads at once, in order.
        let mut decoded = chunks
            .map(|chunk| {
                let mut messages = Vec::with_capacity(chunk.len());
                let mut gaps = Vec::new();
                for item in chunk {
                    let message = item.map_err(log_error)?;
                    let position = message.info().map_err(log_error)?.stream_sequence;
                    if position > after {
                        // Every position is accounted for: the next one, or a run the batch
                        // must explain before it is applied.
                        if position != after + 1 {
                            gaps.push(PositionRun {
                                from: after + 1,
                                to: position - 1,
                            });
                        }
                        after = position;
                        messages.push(LogMessage {
                            position,
                            subject: message.subject.to_string(),
                            payload: message.payload.clone(),
                        });
                    }
                }
                Ok((messages, gaps))
            })
            .map(|read: Result<_, ProjectorError>| async move {
                let (messages, gaps) = read?;
                let last_position = messages.last().map_or(0, |m| m.position);
                let (commits, dead) = tokio::task::spawn_blocking(move || split(messages))
                    .await
                    .map_err(log_error)?;
                Ok::<_, ProjectorError>(DecodedBatch {
                    commits,
                    dead,
                    last_position,
                    gaps,
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
    empty: Vec<EmptyPosition>,
    memory: &mut ProjectionRun,
) -> Result<(), sqlx::Error> {
    let mut dead = batch.dead;
    dead.extend(
        projection
            .apply(conn, store.dialect(), generation, &batch.commits, memory)
            .await?,
    );
    checkpoint::record_dead_letters(conn, store.dialect(), projection, dead).await?;
    // Repairs come after the messages they skip, which are dead letters by now.
    for commit in &batch.commits {
        for event in &commit.events {
            if let zhzj_proto::DomainEvent::Case(zhzj_proto::CaseEvent::UnreadableCommitsSkipped(
                repair,
            )) = event
            {
                checkpoint::mark_repaired(conn, projection, &repair.positions, commit.position)
                    .await?;
            }
        }
    }
    checkpoint::record_empty_positions(conn, store.dialect(), projection, empty).await
}

/// Why a live batch did not go through.
enum BatchOutcome {
    Applied(Checkpoint),
    /// The checkpoint moved under us (a rebuild swap): position the consumer again.
    Moved,
}

async fn apply_live_batch(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
    checkpoint: Checkpoint,
    batch: DecodedBatch,
    memory: &mut ProjectionRun,
) -> Result<BatchOutcome, ProjectorError> {
    let last = batch.last_position;
    if last <= checkpoint.position {
        return Ok(BatchOutcome::Applied(checkpoint));
    }
    // Before anything is written: every position up to `last` is in the batch or explained.
    let empty = explain_gaps(log, projection, &batch.gaps).await?;
    let applied = batch.len() as u64;
    let mut tx = store.begin_write().await?;
    // The guard first: it takes the write lock and fails if the checkpoint moved.
    if !checkpoint::advance(&mut tx, projection, checkpoint, last, applied).await? {
        tx.rollback().await?;
        return Ok(BatchOutcome::Moved);
    }
    apply_batch(
        &mut tx,
        store,
        projection,
        checkpoint.generation,
        batch,
        empty,
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
    let faults = store.projection_faults().clone();
    remove_legacy_consumer(&log, &store, projection).await;
    while !shutdown.is_cancelled() {
        let attempt = async {
            ensure_settings(&log, &store, projection, &settings).await?;
            run_from_checkpoint(&log, &store, projection, &settings, &shutdown).await
        };
        match attempt.await {
            Ok(()) => {}
            Err(e) => {
                // Reported (in `/readyz` and `/metrics`) until a batch goes through again.
                let attempts = faults.fail(projection.name(), &e.to_string());
                metrics::counter!("zhzj_projection_failures_total", "projection" => projection.name())
                    .increment(1);
                let pause = retry_pause(attempts);
                tracing::warn!(
                    projection = projection.name(),
                    error = %e,
                    attempts,
                    retry_in = ?pause,
                    "projection interrupted; resuming from its checkpoint"
                );
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    Ok(())
}

/// The wait before the `attempts`th retry of a failing projection: 250 ms doubling up to 4 s,
/// so that a store that is down is not hammered and one that is back is used within seconds.
fn retry_pause(attempts: u32) -> Duration {
    let doubled = 250_u64.saturating_mul(1 << attempts.saturating_sub(1).min(6));
    Duration::from_millis(doubled.min(4_000))
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
    // The store took a write: whatever failed before is over unless the next batch fails.
    store.projection_faults().clear(projection.name());
    let consumer = position_consumer(log, projection, &store_id, checkpoint.position + 1).await?;
    let chunks = consumer
        .stream()
        .max_messages_per_batch(FETCH_MESSAGES)
        .max_bytes_per_batch(FETCH_BYTES)
        // A pull lasts 5 s with a heartbeat every second: a consumer lost with its server is
        // noticed within about 2 s, and the projection reads again from its checkpoint.
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(log_error)?
        .ready_chunks(FETCH_MESSAGES);
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
        let Some(batch) = batch else {
            // The decoder stopped: its error says why.
            return match decoder.join().await {
                Some(Err(e)) => Err(e),
                _ => Err(log_error("decoder stopped")),
            };
        };
        match apply_live_batch(log, store, projection, checkpoint, batch, &mut memory).await? {
            BatchOutcome::Applied(next) => {
                checkpoint = next;
                store.projection_faults().clear(projection.name());
            }
            BatchOutcome::Moved => {
                tracing::info!(
                    projection = projection.name(),
                    "checkpoint moved (rebuild swapped in); repositioning"
                );
                return Ok(());
            }
        }
    }
}

/// Decoded chunks waiting for the writer at most.
const DECODED_CHUNKS: usize = 128;

/// How long one pull request waits on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How often the server says a pull is still alive while it has nothing to send.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

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
            count += batch.len() as u64;
            position = position.max(batch.last_position);
            let empty = explain_gaps(log, projection, &batch.gaps).await?;
            let mut tx = store.begin_write().await?;
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
    /// Messages it dead-lettered that no repair has skipped yet.
    pub dead_letters: i64,
    /// Of those, the positions of messages that cannot be read at all (on the archive: commits
    /// that make their aggregate unwritable until an administrator repairs it).
    pub unreadable_positions: Vec<u64>,
    /// Positions applied (commits and dead letters); None before the count was kept.
    pub applied: Option<u64>,
    /// Positions it stepped over because the stream holds nothing there (deleted messages).
    pub empty_positions: u64,
    /// Positions up to its checkpoint that it neither applied nor recorded as empty. Anything
    /// but 0 means the projection is missing events: rebuild it.
    pub missing: u64,
}

impl ProjectionStatus {
    /// Whether its account of the log adds up (see [`checkpoint::Accounting`]).
    pub fn is_complete(&self) -> bool {
        self.missing == 0 && self.applied.is_some()
    }
}

/// How many trailing positions of the log [`last_event_position`] looks at.
const TRAILING_PROBES: u64 = 16;

/// The log's last position that holds an event: a seal (or a deleted message) at the end of the
/// log is nothing a projection could apply, so it is no lag. (The next event's batch steps over
/// it as an empty position.)
async fn last_event_position(log: &EventLog) -> Result<u64, ProjectorError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let last = log.last_position().await.map_err(log_error)?;
    let mut position = last;
    while position > 0 && last - position < TRAILING_PROBES {
        match log.stream().get_raw_message(position).await {
            Ok(message) if message.subject.starts_with(EVENT_SUBJECT_PREFIX) => {
                return Ok(position);
            }
            Ok(_) => position -= 1,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => position -= 1,
            Err(e) => return Err(log_error(e)),
        }
    }
    Ok(if last - position >= TRAILING_PROBES {
        last
    } else {
        position
    })
}

/// The status of every projection.
pub async fn status(
    log: &EventLog,
    store: &ReadStore,
) -> Result<Vec<ProjectionStatus>, ProjectorError> {
    let last = last_event_position(log).await?;
    let mut conn = store.pool().acquire().await?;
    let mut result = Vec::new();
    for projection in Projection::ALL {
        let checkpoint = checkpoint::read(&mut conn, projection)
            .await?
            .unwrap_or(Checkpoint {
                position: 0,
                generation: 0,
            });
        let dead_letters: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM dead_letters WHERE projection = $1 AND repaired_by IS NULL",
        )
        .bind(projection.name())
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        let unreadable_positions = if projection == Projection::ARCHIVE && dead_letters > 0 {
            sqlx::query_scalar::<_, i64>(
                "SELECT position FROM dead_letters WHERE projection = $1 AND repaired_by IS NULL \
                 ORDER BY position LIMIT 100",
            )
            .bind(projection.name())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|p| u64::try_from(p).unwrap_or(0))
            .collect()
        } else {
            Vec::new()
        };
        let accounting = checkpoint::accounting(&mut conn, projection, checkpoint).await?;
        result.push(ProjectionStatus {
            name: projection.name(),
            position: checkpoint.position,
            generation: checkpoint.generation,
            lag: last.saturating_sub(checkpoint.position),
            dead_letters,
            unreadable_positions,
            applied: accounting.applied,
            empty_positions: accounting.empty,
            missing: accounting.missing,
        });
    }
    Ok(result)
}
