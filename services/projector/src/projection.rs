//! What a projection is (the [`ProjectionKind`] trait), the registry of the projections the
//! projector keeps, and how a batch of commits is read before it is applied.
//!
//! A new projection is one new module with a unit struct implementing [`ProjectionKind`], and
//! one line in [`Projection::ALL`]: the runner, checkpoints, rebuilds, `zhzj rebuild <name>` and
//! the gateway's readiness take it from there.

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::value::RawValue;
use zhzj_proto::{
    DomainEvent, EventEnvelope, envelope::RawCommit, subjects::parse_aggregate_subject,
};
use zhzj_store::Dialect;

use crate::{
    accounts, agenda_states, archive, campaign, checklist, figure_facts, leaders, lifecycle, org,
    supervision,
};

/// What one uninterrupted run of a projection over one generation carries: the settings it
/// computes with, and whatever the projection keeps between batches (rows it wrote earlier, so
/// the next batch need not read them back). Whoever holds it must drop it when a batch fails to
/// commit.
#[derive(Debug, Default)]
pub struct ProjectionRun {
    pub(crate) settings: Arc<ProjectorSettings>,
    memory: Option<Box<dyn Any + Send>>,
}

impl ProjectionRun {
    /// A run computing with `settings`.
    pub fn new(settings: Arc<ProjectorSettings>) -> Self {
        Self {
            settings,
            memory: None,
        }
    }

    /// Takes the projection's memory of this run (empty at its start); give it back with
    /// [`ProjectionRun::keep_memory`] once the batch is applied.
    pub(crate) fn take_memory<T: Default + Send + 'static>(&mut self) -> Box<T> {
        self.memory
            .take()
            .and_then(|memory| memory.downcast::<T>().ok())
            .unwrap_or_default()
    }

    /// Keeps the projection's memory for the next batch of this run.
    pub(crate) fn keep_memory<T: Send + 'static>(&mut self, memory: Box<T>) {
        self.memory = Some(memory);
    }
}

/// The bureau's settings that projections compute with.
#[derive(Debug, Clone, Default)]
pub struct ProjectorSettings {
    /// The time limits deadlines are counted with (statutory, or stricter internal ones).
    pub limits: zhzj_deadlines::Limits,
}

impl ProjectorSettings {
    /// What a projection's tables depend on besides the log: its shape version and, for the
    /// lifecycle view, the limits. A projection stored under another fingerprint is rebuilt.
    pub fn fingerprint(&self, projection: Projection) -> String {
        projection.0.fingerprint(self)
    }
}

/// One projection: a set of SQL tables kept from the log, and how a batch of commits changes
/// them. Implemented by a unit struct in the projection's own module.
pub trait ProjectionKind: Send + Sync + std::fmt::Debug {
    /// Its name: checkpoint key, consumer name, CLI argument.
    fn name(&self) -> &'static str;

    /// The tables it keeps, by the view name readers use. Each has a physical table per
    /// generation, `<name>_g<generation>`.
    fn tables(&self) -> &'static [&'static str];

    /// What its tables depend on besides the log (see [`ProjectorSettings::fingerprint`]).
    fn fingerprint(&self, _settings: &ProjectorSettings) -> String {
        "shape=1".to_owned()
    }

    /// DDL creating its tables with the physical suffix `suffix` (`_g<generation>`).
    fn create_tables(&self, dialect: Dialect, suffix: &str) -> Vec<String>;

    /// Applies commits to the tables with suffix `suffix`, inside the caller's transaction;
    /// returns the events it could not apply.
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        dialect: Dialect,
        suffix: &'a str,
        batch: &'a [ReadCommit],
        run: &'a mut ProjectionRun,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, sqlx::Error>>;
}

/// Declares a projection's unit struct and its [`ProjectionKind`] impl from the module's own
/// functions: `apply` is an async block over `conn`, `dialect`, `suffix`, `batch` and `run`.
macro_rules! projection_kind {
    (
        $(#[$doc:meta])*
        $view:ident {
            name: $name:literal,
            tables: [$($table:literal),+ $(,)?],
            create: |$dialect_in:pat_param, $suffix_in:ident| $create:expr,
            $(fingerprint: |$settings:ident| $fingerprint:expr,)?
            apply: |$conn:ident, $dialect:ident, $suffix:ident, $batch:ident, $run:pat_param| $apply:expr $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $view;

        impl $crate::projection::ProjectionKind for $view {
            fn name(&self) -> &'static str {
                $name
            }

            fn tables(&self) -> &'static [&'static str] {
                &[$($table),+]
            }

            $(fn fingerprint(&self, $settings: &$crate::projection::ProjectorSettings) -> String {
                $fingerprint
            })?

            fn create_tables(&self, $dialect_in: zhzj_store::Dialect, $suffix_in: &str) -> Vec<String> {
                $create
            }

            fn apply<'a>(
                &'a self,
                $conn: &'a mut sqlx::AnyConnection,
                $dialect: zhzj_store::Dialect,
                $suffix: &'a str,
                $batch: &'a [$crate::projection::ReadCommit],
                $run: &'a mut $crate::projection::ProjectionRun,
            ) -> futures::future::BoxFuture<'a, Result<Vec<$crate::projection::DeadLetter>, sqlx::Error>> {
                Box::pin(async move { $apply })
            }
        }
    };
}
pub(crate) use projection_kind;

/// A projection of the registry: a handle, compared by name.
#[derive(Clone, Copy)]
pub struct Projection(&'static dyn ProjectionKind);

impl PartialEq for Projection {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Projection {}

impl std::hash::Hash for Projection {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Projection({})", self.name())
    }
}

impl Projection {
    /// The event archive: every event with its position.
    pub const ARCHIVE: Projection = Projection(&archive::ArchiveView);
    /// The checklist view: one row per case.
    pub const CHECKLIST: Projection = Projection(&checklist::ChecklistView);
    /// The org directory view: units and leaders.
    pub const ORG: Projection = Projection(&org::OrgView);
    /// The lifecycle view: classification, claims, review, crossing off, relapse, satisfaction.
    pub const LIFECYCLE: Projection = Projection(&lifecycle::LifecycleView);
    /// The campaign views: dispatch meetings and their instructions, bulletins, pushes.
    pub const CAMPAIGN: Projection = Projection(&campaign::CampaignView);
    /// The accounts view: rights as the log gives them, and the audit trail.
    pub const ACCOUNTS: Projection = Projection(&accounts::AccountsView);
    /// The figures projection: what each case event counts as in the bulletin's and the
    /// assessment's figures, and what each case is counted as between events.
    pub const FIGURES: Projection = Projection(&figure_facts::FiguresView);
    /// The supervision view: supervision orders (督办单) and the cases they name.
    pub const SUPERVISION: Projection = Projection(&supervision::SupervisionView);
    /// The leader view: owned, open and idle cases and activities per leader.
    pub const LEADERS: Projection = Projection(&leaders::LeadersView);
    /// The agenda projection: what each case shows on a dispatch meeting's agenda, with its
    /// validity over log positions and moments.
    pub const AGENDA: Projection = Projection(&agenda_states::AgendaView);

    /// The registry: every projection the projector keeps.
    pub const ALL: [Projection; 10] = [
        Self::ARCHIVE,
        Self::CHECKLIST,
        Self::ORG,
        Self::LIFECYCLE,
        Self::CAMPAIGN,
        Self::ACCOUNTS,
        Self::FIGURES,
        Self::SUPERVISION,
        Self::LEADERS,
        Self::AGENDA,
    ];

    /// Its name: checkpoint key, consumer name, CLI argument.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The inverse of [`Projection::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The tables it keeps, by the view name readers use. Each has a physical table per
    /// generation, `<name>_g<generation>`.
    pub fn tables(self) -> &'static [&'static str] {
        self.0.tables()
    }

    /// DDL creating generation `generation` of its tables.
    pub fn create_tables(self, dialect: Dialect, generation: i64) -> Vec<String> {
        self.0.create_tables(dialect, &format!("_g{generation}"))
    }

    /// Applies commits to generation `generation`; returns events it could not apply.
    pub(crate) async fn apply(
        self,
        conn: &mut sqlx::AnyConnection,
        dialect: Dialect,
        generation: i64,
        batch: &[ReadCommit],
        run: &mut ProjectionRun,
    ) -> Result<Vec<DeadLetter>, sqlx::Error> {
        let suffix = format!("_g{generation}");
        self.0.apply(conn, dialect, &suffix, batch, run).await
    }
}

impl Projection {
    /// Applies commits that were never on a log (a benchmark's synthetic year) to the live
    /// generation and moves the checkpoint to the last of them, in one write transaction.
    pub async fn apply_offline(
        self,
        store: &zhzj_store::ReadStore,
        batch: &[ReadCommit],
        settings: Arc<ProjectorSettings>,
    ) -> Result<(), sqlx::Error> {
        let Some(last) = batch.last().map(|c| c.position) else {
            return Ok(());
        };
        let mut tx = store.begin_write().await?;
        let checkpoint = crate::checkpoint::read(&mut tx, self)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let mut run = ProjectionRun::new(settings);
        self.apply(
            &mut tx,
            store.dialect(),
            checkpoint.generation,
            batch,
            &mut run,
        )
        .await?;
        let applied = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        crate::checkpoint::advance(&mut tx, self, checkpoint, last, applied).await?;
        tx.commit().await
    }
}

/// A commit read from the log, with its events decoded.
#[derive(Debug, Clone)]
pub struct ReadCommit {
    /// Stream sequence.
    pub position: u64,
    /// The envelopes as stored, data kept as JSON text.
    pub envelopes: Vec<EventEnvelope<Box<RawValue>>>,
    /// The decoded events, one per envelope.
    pub events: Vec<DomainEvent>,
}

/// A message a projection could not apply.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Stream sequence.
    pub position: u64,
    /// Subject it was stored under.
    pub subject: String,
    /// Why it could not be applied.
    pub reason: String,
    /// The raw message (lossy UTF-8).
    pub payload: String,
}

/// A message from the log, read or not.
#[derive(Debug)]
pub enum ReadMessage {
    /// A readable commit.
    Commit(ReadCommit),
    /// An unreadable message.
    Dead(DeadLetter),
}

/// Reads a log message into a commit, or says why it cannot be read.
pub fn read_message(position: u64, subject: &str, payload: &[u8]) -> ReadMessage {
    let dead = |reason: String| {
        ReadMessage::Dead(DeadLetter {
            position,
            subject: subject.to_owned(),
            reason,
            payload: String::from_utf8_lossy(payload).into_owned(),
        })
    };
    // The snapshot in the commit is for command services; projections skip it.
    let commit: RawCommit = match serde_json::from_slice(payload) {
        Ok(commit) => commit,
        Err(e) => return dead(format!("not a commit: {e}")),
    };
    if commit.events.is_empty() {
        return dead("commit holds no events".into());
    }
    let Some((kind, id)) = parse_aggregate_subject(subject) else {
        return dead(format!("subject {subject} names no aggregate"));
    };
    let mut events = Vec::with_capacity(commit.events.len());
    for envelope in &commit.events {
        if envelope.aggregate_type != kind || envelope.aggregate_id != id {
            return dead(format!(
                "event {} belongs to {}.{}, stored under {subject}",
                envelope.event_id,
                envelope.aggregate_type.as_str(),
                envelope.aggregate_id
            ));
        }
        match DomainEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &*envelope.data,
        ) {
            Ok(event) => events.push(event),
            Err(e) => return dead(e.to_string()),
        }
    }
    ReadMessage::Commit(ReadCommit {
        position,
        envelopes: commit.events,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_each_projection_once_and_no_table_twice() {
        let mut names = std::collections::HashSet::new();
        let mut tables = std::collections::HashSet::new();
        for projection in Projection::ALL {
            assert!(names.insert(projection.name()), "{projection:?} twice");
            assert_eq!(Projection::parse(projection.name()), Some(projection));
            for table in projection.tables() {
                assert!(tables.insert(*table), "{table} kept by two projections");
            }
            let ddl = projection.create_tables(Dialect::Sqlite, 7).join("\n");
            for table in projection.tables() {
                assert!(ddl.contains(&format!("{table}_g7")), "{table} created");
            }
        }
        assert_eq!(Projection::parse("nothing"), None);
    }

    #[test]
    fn a_run_keeps_a_projection_memory_between_batches() {
        let mut run = ProjectionRun::default();
        let mut memory = run.take_memory::<Vec<u64>>();
        assert!(memory.is_empty(), "empty at the start of a run");
        memory.push(7);
        run.keep_memory(memory);
        assert_eq!(*run.take_memory::<Vec<u64>>(), vec![7]);
        // Taken and not given back (a failed batch): the next batch starts empty.
        assert!(run.take_memory::<Vec<u64>>().is_empty());
    }
}
