//! The projections the projector keeps, their tables, and how a batch of commits is read before
//! it is applied.

use serde_json::value::RawValue;
use zhzj_proto::{
    DomainEvent, EventEnvelope, envelope::RawCommit, subjects::parse_aggregate_subject,
};
use zhzj_store::Dialect;

use crate::{accounts, archive, campaign, checklist, lifecycle, org};

/// What one uninterrupted run of a projection over one generation carries: the settings it
/// computes with, and the rows it wrote in earlier batches, kept so the next batch need not read
/// them back. Whoever holds it must drop it when a batch fails to commit.
#[derive(Debug, Default)]
pub struct ProjectionRun {
    pub(crate) settings: std::sync::Arc<ProjectorSettings>,
    pub(crate) checklist: checklist::RowMemory,
}

impl ProjectionRun {
    /// A run computing with `settings`.
    pub fn new(settings: std::sync::Arc<ProjectorSettings>) -> Self {
        Self {
            settings,
            checklist: checklist::RowMemory::default(),
        }
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
        match projection {
            Projection::Lifecycle => format!(
                "shape={};limits={}",
                lifecycle::SHAPE_VERSION,
                self.limits.describe()
            ),
            Projection::Archive
            | Projection::Checklist
            | Projection::Org
            | Projection::Campaign
            | Projection::Accounts => "shape=1".to_owned(),
        }
    }
}

/// A projection: a set of SQL tables kept from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// The event archive: every event with its position.
    Archive,
    /// The checklist view: one row per case.
    Checklist,
    /// The org directory view: units and leaders.
    Org,
    /// The lifecycle view: classification, claims, review, crossing off, relapse, satisfaction.
    Lifecycle,
    /// The campaign views: dispatch meetings and their instructions.
    Campaign,
    /// The accounts view: rights as the log gives them, and the audit trail.
    Accounts,
}

impl Projection {
    /// Every projection.
    pub const ALL: [Projection; 6] = [
        Self::Archive,
        Self::Checklist,
        Self::Org,
        Self::Lifecycle,
        Self::Campaign,
        Self::Accounts,
    ];

    /// Its name: checkpoint key, consumer name, CLI argument.
    pub fn name(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Checklist => "checklist",
            Self::Org => "org",
            Self::Lifecycle => "lifecycle",
            Self::Campaign => "campaign",
            Self::Accounts => "accounts",
        }
    }

    /// The inverse of [`Projection::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The tables it keeps, by the view name readers use. Each has a physical table per
    /// generation, `<name>_g<generation>`.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Archive => &["event_archive"],
            Self::Checklist => &["checklist_rows"],
            Self::Org => &["org_units", "org_leaders"],
            Self::Lifecycle => &[
                "case_lifecycle",
                "leader_activities",
                "case_petitioners",
                "case_units",
            ],
            Self::Campaign => &[
                "dispatch_meetings",
                "dispatch_instructions",
                "bulletins",
                "pushes",
            ],
            Self::Accounts => &["account_rights", "account_audit"],
        }
    }

    /// DDL creating generation `generation` of its tables.
    pub fn create_tables(self, dialect: Dialect, generation: i64) -> Vec<String> {
        let suffix = format!("_g{generation}");
        match self {
            Self::Archive => archive::create_tables(dialect, &suffix),
            Self::Checklist => checklist::create_tables(&suffix),
            Self::Org => org::create_tables(&suffix),
            Self::Lifecycle => lifecycle::create_tables(&suffix),
            Self::Campaign => campaign::create_tables(&suffix),
            Self::Accounts => accounts::create_tables(&suffix),
        }
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
        match self {
            Self::Archive => archive::apply(conn, dialect, &suffix, batch).await,
            Self::Checklist => {
                checklist::apply(conn, dialect, &suffix, batch, &mut run.checklist).await
            }
            Self::Org => org::apply(conn, dialect, &suffix, batch).await,
            Self::Lifecycle => {
                let limits = &run.settings.limits;
                lifecycle::apply(conn, dialect, &suffix, batch, limits).await
            }
            Self::Campaign => campaign::apply(conn, dialect, &suffix, batch).await,
            Self::Accounts => accounts::apply(conn, dialect, &suffix, batch).await,
        }
    }
}

/// A commit read from the log, with its events decoded.
#[derive(Debug)]
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
