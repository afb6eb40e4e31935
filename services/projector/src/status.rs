//! How far each projection is: its checkpoint, the positions it applied and found empty, its lag
//! behind the log, and whether every position is accounted for.

use sqlx::Row;
use zhzj_store::{EventLog, ReadStore};

use crate::checkpoint::{self, Checkpoint};
use crate::projection::Projection;
use crate::runner::{EVENT_SUBJECT_PREFIX, ProjectorError, log_error};

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
pub(crate) const TRAILING_PROBES: u64 = 16;

/// The log's last position that holds an event: a seal (or a deleted message) at the end of the
/// log is nothing a projection could apply, so it is no lag. (The next event's batch steps over
/// it as an empty position.)
pub(crate) async fn last_event_position(log: &EventLog) -> Result<u64, ProjectorError> {
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
