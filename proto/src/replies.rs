//! Replies to commands: the new version on success, or a typed error that names the field.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::AggregateType;

/// The reply to a [`crate::CommandRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandReply {
    /// The command was applied (now or, for a retry, before).
    Ok(CommandAccepted),
    /// The command was refused; nothing was appended.
    Error(CommandError),
}

/// A command's events are in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandAccepted {
    /// The aggregate the command changed.
    pub aggregate_type: AggregateType,
    /// Its id.
    pub aggregate_id: String,
    /// Its new version: the stream sequence (global position) of the commit.
    pub version: u64,
}

/// What went wrong with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command is malformed or breaks a rule; `field` names the culprit.
    Invalid,
    /// The aggregate (or something it refers to) does not exist.
    NotFound,
    /// The aggregate is not at the expected version, or already exists.
    Conflict,
    /// The actor may not do this.
    Forbidden,
    /// The command body is larger than the service accepts.
    TooLarge,
    /// The service could not reach the log; the command may be retried with the same id.
    Unavailable,
    /// The aggregate's history holds a commit that cannot be read: no retry helps until an
    /// administrator repairs it (`skip_unreadable_commits`); the message names the position.
    CorruptHistory,
}

impl ErrorKind {
    /// The kind as it is spelled in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::Unavailable => "unavailable",
            Self::CorruptHistory => "corrupt_history",
        }
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandError {
    /// The kind of error.
    pub kind: ErrorKind,
    /// A message for a person.
    pub message: String,
    /// The field at fault, as a JSON path (`command.petitioners[0].id_number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For conflicts: the aggregate's current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl CommandError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            current_version: None,
        }
    }

    /// An `invalid` error naming its field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorKind::Invalid, message)
        }
    }

    /// A `not_found` error naming the field that referred to the missing thing.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorKind::NotFound, message)
        }
    }

    /// A `conflict` error carrying the current version.
    pub fn conflict(current_version: u64, message: impl Into<String>) -> Self {
        Self {
            current_version: Some(current_version),
            ..Self::new(ErrorKind::Conflict, message)
        }
    }
}
