//! Reads the log for the projections: consumers positioned after a checkpoint, batches decoded
//! on other threads, every skipped position explained, and a batch applied into a generation.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::StreamExt;
use zhzj_proto::subjects::EVENT_SUBJECTS;
use zhzj_store::{EventLog, ReadStore};

use crate::checkpoint;
use crate::projection::{
    DeadLetter, Projection, ProjectionRun, ReadCommit, ReadMessage, read_message,
};

/// Messages applied in one SQL transaction at most.
pub const BATCH: usize = 20_000;

/// Messages one pull request asks the server for. The server sends a pull's messages into the
/// connection's buffer whether or not the client reads them, and cuts a connection whose buffer
/// passes 64 MB as a slow consumer, losing what was in it; the projector's reader, a split-off
/// reader and rebuilds may share one connection, so each asks for a bounded amount at a time
/// (the client asks again at half).
pub const FETCH_MESSAGES: usize = 5_000;

/// Bytes one pull request asks for at most: five readers with a pull and a half in flight each
/// stay at 45 MB, under the server's 64 MB per-connection limit whatever the messages' size.
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

pub(crate) fn store_error(e: zhzj_store::SqlError) -> ProjectorError {
    match e {
        zhzj_store::SqlError::Database(e) => ProjectorError::Sql(e),
        other => ProjectorError::Log(other.to_string()),
    }
}

pub(crate) fn log_error(e: impl std::fmt::Display) -> ProjectorError {
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
pub(crate) async fn position_consumer(
    log: &EventLog,
    label: &str,
    store_id: &str,
    start: u64,
) -> Result<PullConsumer, ProjectorError> {
    let short: String = store_id.chars().take(12).collect();
    log.stream()
        .create_consumer(pull::Config {
            description: Some(format!("zhzj projections {label} of store {short}")),
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

/// How long one pull request waits on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How often the server says a pull is still alive while it has nothing to send.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// A reading of the log after one position, for the projector and for a rebuild alike: an
/// ephemeral consumer ([`position_consumer`]) pulled in bounded amounts ([`FETCH_MESSAGES`],
/// [`FETCH_BYTES`]), and the task that decodes what it delivers, stopped (and the consumer with
/// it) when the reader is dropped. Unlike an ordered consumer, whose pulls the client library
/// fixes at 500 messages, it reads a rebuild's replay as fast as the projector's catch-up; a
/// message lost on the way shows as a gap in the positions, which the caller explains or reads
/// again after.
pub(crate) struct LogReader {
    /// The decoded batches, in log order.
    pub(crate) batches: tokio::sync::mpsc::Receiver<DecodedBatch>,
    /// The decoding task; its error says why `batches` ended.
    pub(crate) decoder: AbortOnDrop<Result<(), ProjectorError>>,
}

impl LogReader {
    /// Reads every event after `after` for the projections named `label` of the read store
    /// `store_id`.
    pub(crate) async fn open(
        log: &EventLog,
        label: &str,
        store_id: &str,
        after: u64,
    ) -> Result<Self, ProjectorError> {
        let consumer = position_consumer(log, label, store_id, after + 1).await?;
        let chunks = consumer
            .stream()
            .max_messages_per_batch(FETCH_MESSAGES)
            .max_bytes_per_batch(FETCH_BYTES)
            // A pull lasts 5 s with a heartbeat every second: a consumer lost with its server
            // is noticed within about 2 s, and the reader reads again from where it stands.
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
            .map_err(log_error)?
            .ready_chunks(FETCH_MESSAGES);
        let (decoder, batches) = spawn_decoder(chunks, after);
        Ok(Self {
            batches,
            decoder: AbortOnDrop(Some(decoder)),
        })
    }
}

/// Removes the durable consumer an earlier version kept for this projection, if any.
pub(crate) async fn remove_legacy_consumer(
    log: &EventLog,
    store: &ReadStore,
    projection: Projection,
) {
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
    pub(crate) position: u64,
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
pub(crate) struct DecodedBatch {
    commits: Vec<ReadCommit>,
    dead: Vec<DeadLetter>,
    /// Stream sequence of the last message (0 for an empty batch).
    pub(crate) last_position: u64,
    /// Runs of positions skipped between consecutive messages, to be explained (deleted
    /// messages) before the batch is applied, or refetched.
    pub(crate) gaps: Vec<PositionRun>,
}

/// Positions `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionRun {
    from: u64,
    to: u64,
}

impl DecodedBatch {
    /// Messages in it.
    pub(crate) fn len(&self) -> usize {
        self.commits.len() + self.dead.len()
    }

    /// The commits after position `after` (commits are in position order).
    pub(crate) fn commits_after(&self, after: u64) -> &[ReadCommit] {
        let skip = self.commits.partition_point(|c| c.position <= after);
        self.commits.get(skip..).unwrap_or_default()
    }

    /// The dead letters after position `after`.
    pub(crate) fn dead_after(&self, after: u64) -> Vec<DeadLetter> {
        self.dead
            .iter()
            .filter(|letter| letter.position > after)
            .cloned()
            .collect()
    }

    /// When the service stamped the newest commit.
    pub(crate) fn newest_stamp(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.commits
            .last()
            .and_then(|c| c.envelopes.first())
            .map(|e| e.occurred_at)
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
pub(crate) async fn explain_gaps(
    log: &EventLog,
    projections: &[Projection],
    gaps: &[PositionRun],
) -> Result<Vec<EmptyPosition>, ProjectorError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let mut empty = Vec::new();
    for run in gaps {
        if run.to - run.from >= MAX_GAP_PROBES {
            return Err(gap_error(projections, *run));
        }
        for position in run.from..=run.to {
            match log.stream().get_raw_message(position).await {
                Ok(message) if message.subject.starts_with(EVENT_SUBJECT_PREFIX) => {
                    return Err(gap_error(projections, *run));
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
            projections = ?projections,
            position = gap.position,
            reason = gap.reason,
            "stepping over an empty log position"
        );
    }
    Ok(empty)
}

/// Event subjects all start with this.
pub(crate) const EVENT_SUBJECT_PREFIX: &str = "zhzj.ev.";

/// Whether the log holds an event after `after` up to `through`: false when every message there
/// is something else (a seal) or deleted, so a reader waiting for one would wait forever. Too
/// many positions to probe count as holding one.
pub(crate) async fn holds_events(
    log: &EventLog,
    after: u64,
    through: u64,
) -> Result<bool, ProjectorError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    if through.saturating_sub(after) >= MAX_GAP_PROBES {
        return Ok(true);
    }
    for position in after + 1..=through {
        match log.stream().get_raw_message(position).await {
            Ok(message) if message.subject.starts_with(EVENT_SUBJECT_PREFIX) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(log_error(e)),
        }
    }
    Ok(false)
}

fn gap_error(projections: &[Projection], run: PositionRun) -> ProjectorError {
    for projection in projections {
        metrics::counter!("zhzj_projection_delivery_gaps_total", "projection" => projection.name())
            .increment(1);
    }
    tracing::error!(
        projections = ?projections,
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
pub(crate) async fn next_batch(
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
pub(crate) fn spawn_decoder<S, E>(
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
pub(crate) async fn apply_batch(
    conn: &mut sqlx::AnyConnection,
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    batch: DecodedBatch,
    empty: Vec<EmptyPosition>,
    memory: &mut ProjectionRun,
) -> Result<(), sqlx::Error> {
    apply_part(
        conn,
        store,
        projection,
        generation,
        &batch.commits,
        batch.dead,
        empty,
        memory,
    )
    .await
}

/// Applies `commits`, then records `dead` letters and `empty` positions, into a generation
/// inside an open transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply_part(
    conn: &mut sqlx::AnyConnection,
    store: &ReadStore,
    projection: Projection,
    generation: i64,
    commits: &[ReadCommit],
    mut dead: Vec<DeadLetter>,
    empty: Vec<EmptyPosition>,
    memory: &mut ProjectionRun,
) -> Result<(), sqlx::Error> {
    dead.extend(
        projection
            .apply(conn, store.dialect(), generation, commits, memory)
            .await?,
    );
    checkpoint::record_dead_letters(conn, store.dialect(), projection, dead).await?;
    // Repairs come after the messages they skip, which are dead letters by now.
    for commit in commits {
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

/// Decoded chunks waiting for the writer at most.
const DECODED_CHUNKS: usize = 128;

/// How long a projector or a replay waits for a delivery while the log holds more before it
/// reads again from where it stands with a new consumer: an ephemeral consumer can go silent
/// while the server keeps it and its heartbeats alive, and the client library then sees nothing
/// to recover from (a consumer paused on the server does that; so did a rebuild of `zhzj bench
/// catchup` once).
pub(crate) const SILENT_CONSUMER: Duration = Duration::from_secs(5);

/// Reports a consumer that went silent, which the caller then replaces.
pub(crate) fn silent_consumer(projection: Projection, position: u64) {
    tracing::warn!(
        projection = projection.name(),
        position,
        "nothing delivered for {} s while the log holds more; reading again after position {position}",
        SILENT_CONSUMER.as_secs()
    );
    metrics::counter!("zhzj_projection_reopenings_total", "projection" => projection.name())
        .increment(1);
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task to end and returns its result (None if it panicked or was aborted).
    pub(crate) async fn join(mut self) -> Option<T> {
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
