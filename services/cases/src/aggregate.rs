//! What every aggregate the service writes has in common: how it folds events, how it is
//! snapshotted, and how it is loaded from the log.

use serde::{Serialize, de::DeserializeOwned};
use zhzj_proto::{
    AggregateType, DomainEvent,
    events::{EventDecodeError, decode_envelope},
};
use zhzj_store::{EventLog, LoadError, StoredCommit};

/// How many commands an aggregate in memory remembers for answering retries.
pub const RECENT_COMMANDS_KEPT: usize = 8;

/// A command already applied to an aggregate, and the version its commit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentCommand {
    /// The command id.
    pub command_id: uuid::Uuid,
    /// The stream sequence of its commit.
    pub version: u64,
}

/// An aggregate: state folded from its events.
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Its kind, which names its subjects.
    const TYPE: AggregateType;
    /// Version of the snapshot shape; bump it when the state's fields change, and loaders will
    /// replay instead of trusting older snapshots.
    const SNAPSHOT_VERSION: u32;

    /// Folds one event into the state.
    fn apply(&mut self, event: &DomainEvent);

    /// Whether any event has been applied.
    fn exists(&self) -> bool;
}

/// An aggregate as loaded: its state, version and the commands it remembers.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// Stream sequence of its last commit; None when it has no events.
    pub version: Option<u64>,
    /// The digest of its last commit, which the next commit names (None when it has none).
    pub head: Option<zhzj_store::CommitDigest>,
    /// Commands applied to it lately, with their versions, newest last: the last commit's when
    /// loaded from the log, more while it stays in this instance's cache.
    pub recent_commands: Vec<RecentCommand>,
}

impl<A: Aggregate> Loaded<A> {
    /// The version an earlier run of `command_id` produced, if this aggregate remembers it.
    pub fn remembered(&self, command_id: uuid::Uuid) -> Option<u64> {
        self.recent_commands
            .iter()
            .find(|recent| recent.command_id == command_id)
            .map(|recent| recent.version)
    }
}

/// Why an aggregate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AggregateLoadError {
    /// The log could not be read, or a stored message is not a commit.
    #[error(transparent)]
    Log(#[from] LoadError),
    /// A stored event cannot be read.
    #[error("the event at position {position} cannot be read: {source}")]
    Event {
        /// The commit's position.
        position: u64,
        /// Why.
        source: EventDecodeError,
    },
}

impl AggregateLoadError {
    /// The position and reason of an unreadable commit, when that is what failed (a retry
    /// cannot help; an administrator must repair the history).
    pub fn unreadable(&self) -> Option<(u64, String)> {
        match self {
            Self::Log(LoadError::Corrupt { position, reason }) => Some((*position, reason.clone())),
            Self::Event { position, source } => Some((*position, source.to_string())),
            Self::Log(LoadError::Unavailable(_)) => None,
        }
    }
}

/// The events of a stored commit, or why they cannot be read.
pub fn commit_events(stored: &StoredCommit) -> Result<Vec<DomainEvent>, AggregateLoadError> {
    stored
        .commit
        .events
        .iter()
        .map(|envelope| {
            decode_envelope(envelope).map_err(|source| AggregateLoadError::Event {
                position: stored.position,
                source,
            })
        })
        .collect()
}

/// Positions an administrator marked skipped in these messages (`UnreadableCommitsSkipped`).
pub fn skipped_positions(
    messages: &[zhzj_store::StoredMessage],
) -> std::collections::BTreeSet<u64> {
    messages
        .iter()
        .filter_map(|message| message.commit.as_ref().ok())
        .flat_map(|stored| stored.commit.events.iter())
        .filter_map(|envelope| match decode_envelope(envelope) {
            Ok(DomainEvent::Case(zhzj_proto::CaseEvent::UnreadableCommitsSkipped(skipped))) => {
                Some(skipped.positions)
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// Loads an aggregate: from the snapshot in its last commit when that snapshot's version is
/// current, else by replaying every commit.
pub async fn load<A: Aggregate>(log: &EventLog, id: &str) -> Result<Loaded<A>, AggregateLoadError> {
    let Some(last) = log.load_last(A::TYPE, id).await? else {
        return Ok(Loaded {
            state: A::default(),
            version: None,
            head: None,
            recent_commands: Vec::new(),
        });
    };
    // A snapshot of another shape either fails to parse as this state or names another version.
    if let Some(json) = &last.snapshot_json
        && let Ok(snapshot) = serde_json::from_str::<zhzj_proto::Snapshot<A>>(json)
        && snapshot.schema_version == A::SNAPSHOT_VERSION
    {
        let state = snapshot.state;
        let mut recent_commands = Vec::new();
        push_recent(&mut recent_commands, &last);
        return Ok(Loaded {
            state,
            version: Some(last.position),
            head: Some(last.digest),
            recent_commands,
        });
    }
    replay(log, id, last.position).await
}

/// Loads an aggregate by replaying all its commits (the slow path, and the reference the
/// snapshot path is tested against).
pub async fn replay<A: Aggregate>(
    log: &EventLog,
    id: &str,
    up_to: u64,
) -> Result<Loaded<A>, AggregateLoadError> {
    let messages = log.read_aggregate_messages(A::TYPE, id, 1, up_to).await?;
    // Commits an administrator skipped may come before the repair that names them.
    let skipped = skipped_positions(&messages);
    let mut state = A::default();
    let mut recent_commands = Vec::new();
    let mut version = None;
    let mut head = None;
    for message in messages {
        version = Some(message.position);
        head = Some(message.digest);
        if skipped.contains(&message.position) {
            continue;
        }
        let stored = message.commit?;
        for event in commit_events(&stored)? {
            state.apply(&event);
        }
        push_recent(&mut recent_commands, &stored);
    }
    Ok(Loaded {
        state,
        version,
        head,
        recent_commands,
    })
}

fn push_recent(recent: &mut Vec<RecentCommand>, stored: &StoredCommit) {
    if let Some(command_id) = stored.command_id() {
        remember(recent, command_id, stored.position);
    }
}

/// Aggregates this instance loaded or wrote lately, so that a command on a hot case does not pay
/// for a load. A cached entry is only a guess: the append's expected-version check catches a stale
/// one, and the service then reloads from the log before it answers anything.
#[derive(Debug)]
pub struct AggregateCache<A> {
    entries: std::sync::Mutex<lru::LruCache<String, Loaded<A>>>,
}

impl<A: Aggregate + Clone> AggregateCache<A> {
    /// A cache of at most `capacity` aggregates.
    pub fn new(capacity: usize) -> Self {
        let capacity = std::num::NonZeroUsize::new(capacity).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            entries: std::sync::Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    /// The cached aggregate, if any.
    pub fn get(&self, id: &str) -> Option<Loaded<A>> {
        self.entries.lock().ok()?.get(id).cloned()
    }

    /// Remembers an aggregate.
    pub fn put(&self, id: &str, loaded: Loaded<A>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(id.to_owned(), loaded);
        }
    }

    /// Forgets an aggregate.
    pub fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.pop(id);
        }
    }
}

/// Records a command's commit in a loaded aggregate's list of recent commands.
pub fn remember(recent: &mut Vec<RecentCommand>, command_id: uuid::Uuid, version: u64) {
    recent.push(RecentCommand {
        command_id,
        version,
    });
    if recent.len() > RECENT_COMMANDS_KEPT {
        let excess = recent.len() - RECENT_COMMANDS_KEPT;
        recent.drain(..excess);
    }
}
