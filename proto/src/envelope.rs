//! The shape of what is stored in the log: one [`Commit`] per command, holding the events of that
//! command in [`EventEnvelope`]s. A [`Snapshot`] of the aggregate after them travels beside the
//! body, in the message header [`crate::subjects::SNAPSHOT_HEADER`]: the body holds only facts.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of aggregate that own a subject in the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    /// A backlog case (积案).
    Case,
    /// An org unit: the city, a district, a town or street, a department.
    Unit,
    /// A leader who can own cases (包案领导).
    Leader,
    /// A weekly dispatch meeting (周调度) with its instructions.
    Meeting,
    /// A monthly bulletin (月通报).
    Bulletin,
    /// A quarterly push on hard cases (季攻坚).
    Push,
    /// A user's account: its rights and its logins (see [`crate::accounts`]).
    Account,
    /// A supervision order (督办单).
    Supervision,
}

impl AggregateType {
    /// The subject token and archive column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Case => "case",
            Self::Unit => "unit",
            Self::Leader => "leader",
            Self::Meeting => "meeting",
            Self::Bulletin => "bulletin",
            Self::Push => "push",
            Self::Account => "account",
            Self::Supervision => "supervision",
        }
    }

    /// The inverse of [`AggregateType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "case" => Some(Self::Case),
            "unit" => Some(Self::Unit),
            "leader" => Some(Self::Leader),
            "meeting" => Some(Self::Meeting),
            "bulletin" => Some(Self::Bulletin),
            "push" => Some(Self::Push),
            "account" => Some(Self::Account),
            "supervision" => Some(Self::Supervision),
            _ => None,
        }
    }
}

/// Who issued a command. Every command carries one and every event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The user id of an account, or `system:<name>` for work the system does itself.
    pub user_id: String,
    /// Role names: `admin` (city administrator), `coordinator`, `reviewer`, `leader`, `viewer`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The org unit the user belongs to, which bounds what they may see and do.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The leader (from the directory) the user is, for the `leader` role: they may work the
    /// cases they own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<String>,
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn has_role(&self, role: crate::accounts::Role) -> bool {
        role.is_in(&self.roles)
    }
}

/// One event as stored: metadata plus the event's own data, whose shape depends on
/// `event_type` and `schema_version` (see [`crate::events`]). Readers that only pass the data on
/// may keep it as raw JSON text (`EventEnvelope<Box<RawValue>>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "EventEnvelope")]
pub struct EventEnvelope<D = serde_json::Value> {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// Kind of aggregate the event belongs to.
    pub aggregate_type: AggregateType,
    /// Id of the aggregate (a case UUID, a unit id, a leader id).
    pub aggregate_id: String,
    /// Past-tense event name, e.g. `CaseRegistered`.
    pub event_type: String,
    /// Version of the shape of `data` for this event type.
    pub schema_version: u32,
    /// When the command that produced the event was decided (from the injected clock).
    pub occurred_at: DateTime<Utc>,
    /// Who issued the command.
    pub actor: Actor,
    /// Id of the command that produced the event; also the `Nats-Msg-Id` of its commit.
    pub command_id: Uuid,
    /// Id shared by all work that stems from one user action.
    pub correlation_id: Uuid,
    /// Id of the message that directly caused this one (the command, for command events).
    pub causation_id: Uuid,
    /// The event's data.
    pub data: D,
}

/// The state of an aggregate right after a commit, stored in the commit's message header so that
/// loading an aggregate costs one get of its subject's last message instead of a replay. It is
/// derived data, kept small because every consumer of the log receives it with every commit:
/// readers that only want the events never parse it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Snapshot")]
pub struct Snapshot<S = serde_json::Value> {
    /// Version of the state's shape; a loader that does not know it replays the events instead.
    pub schema_version: u32,
    /// The aggregate state as the command service folds it.
    pub state: S,
}

/// A commit whose event data stays raw JSON text: what writers build (the data is serialised
/// once) and what readers that pass the data on parse.
pub type RawCommit = Commit<Box<serde_json::value::RawValue>>;

/// The body of one message in the event stream: every event of one command, appended atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Commit")]
pub struct Commit<D = serde_json::Value> {
    /// The events, in order.
    pub events: Vec<EventEnvelope<D>>,
}
