//! The org directory: unit and leader aggregates, and the decisions that add them.

use serde::{Deserialize, Serialize};
use zhzj_proto::{
    AggregateType, CommandAccepted, CommandError, DirectoryEvent, DomainEvent,
    commands::{AddLeader, AddUnit},
    events::{LeaderAdded, LeaderLevel, LeaderRef, UnitAdded, UnitKind, UnitRef},
    ids::is_valid_token_id,
};

use crate::access::Action;
use crate::aggregate::Aggregate;
use crate::handle::{Context, HandledCommand};
use crate::validate::required_text;

/// An org unit as the service knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// Whether the unit was added.
    pub added: bool,
    /// Unit id.
    pub unit_id: String,
    /// Parent unit.
    pub parent_id: Option<String>,
    /// Name.
    pub name: String,
    /// Kind (None until added).
    pub kind: Option<UnitKind>,
}

impl UnitState {
    /// A reference for events.
    pub fn to_ref(&self) -> UnitRef {
        UnitRef {
            id: self.unit_id.clone(),
            name: self.name.clone(),
        }
    }
}

impl Aggregate for UnitState {
    const TYPE: AggregateType = AggregateType::Unit;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::Directory(DirectoryEvent::UnitAdded(e)) = event {
            *self = Self {
                added: true,
                unit_id: e.unit_id.clone(),
                parent_id: e.parent_id.clone(),
                name: e.name.clone(),
                kind: Some(e.kind),
            };
        }
    }

    fn exists(&self) -> bool {
        self.added
    }
}

/// A leader as the service knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderState {
    /// Whether the leader was added.
    pub added: bool,
    /// Leader id.
    pub leader_id: String,
    /// Unit.
    pub unit_id: String,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Level (None until added).
    pub level: Option<LeaderLevel>,
}

impl LeaderState {
    /// A reference for events.
    pub fn to_ref(&self) -> LeaderRef {
        LeaderRef {
            id: self.leader_id.clone(),
            name: self.name.clone(),
            title: self.title.clone(),
            unit_id: self.unit_id.clone(),
        }
    }
}

impl Aggregate for LeaderState {
    const TYPE: AggregateType = AggregateType::Leader;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::Directory(DirectoryEvent::LeaderAdded(e)) = event {
            *self = Self {
                added: true,
                leader_id: e.leader_id.clone(),
                unit_id: e.unit_id.clone(),
                name: e.name.clone(),
                title: e.title.clone(),
                level: Some(e.level),
            };
        }
    }

    fn exists(&self) -> bool {
        self.added
    }
}

/// Checks an id that will name a subject.
pub fn check_token_id(field: &str, id: &str) -> Result<(), CommandError> {
    if is_valid_token_id(id) {
        Ok(())
    } else {
        Err(CommandError::invalid(
            field,
            format!("{field} 只能由字母、数字、- 和 _ 组成，至多 64 个字符"),
        ))
    }
}

/// Decides on adding a unit under its (already loaded) parent.
pub fn add_unit(
    existing: &UnitState,
    command: &AddUnit,
    parent: Option<&UnitState>,
) -> Result<Vec<DirectoryEvent>, CommandError> {
    if existing.exists() {
        return Err(CommandError::new(
            zhzj_proto::ErrorKind::Conflict,
            format!("单位 {} 已存在", command.unit_id),
        ));
    }
    let name = required_text("command.name", &command.name, 100)?;
    let allowed_parents: &[UnitKind] = match command.kind {
        UnitKind::City => &[],
        UnitKind::District => &[UnitKind::City],
        UnitKind::Town => &[UnitKind::District],
        UnitKind::Department => &[UnitKind::City, UnitKind::District, UnitKind::Town],
    };
    match (parent, allowed_parents.is_empty()) {
        (None, true) => {}
        (Some(_), true) => {
            return Err(CommandError::invalid(
                "command.parent_id",
                "市级单位没有上级单位 (a city has no parent)",
            ));
        }
        (None, false) => {
            return Err(CommandError::invalid(
                "command.parent_id",
                "须指定上级单位 (parent required)",
            ));
        }
        (Some(parent), false) => {
            if !parent
                .kind
                .is_some_and(|kind| allowed_parents.contains(&kind))
            {
                return Err(CommandError::invalid(
                    "command.parent_id",
                    format!("{} 不能作为该类单位的上级单位", parent.name),
                ));
            }
        }
    }
    Ok(vec![DirectoryEvent::UnitAdded(UnitAdded {
        unit_id: command.unit_id.clone(),
        parent_id: command.parent_id.clone(),
        name,
        kind: command.kind,
    })])
}

/// Decides on adding a leader to an (already loaded) unit.
pub fn add_leader(
    existing: &LeaderState,
    command: &AddLeader,
) -> Result<Vec<DirectoryEvent>, CommandError> {
    if existing.exists() {
        return Err(CommandError::new(
            zhzj_proto::ErrorKind::Conflict,
            format!("领导 {} 已存在", command.leader_id),
        ));
    }
    Ok(vec![DirectoryEvent::LeaderAdded(LeaderAdded {
        leader_id: command.leader_id.clone(),
        unit_id: command.unit_id.clone(),
        name: required_text("command.name", &command.name, 50)?,
        title: required_text("command.title", &command.title, 100)?,
        level: command.level,
    })])
}

/// The directory's events as domain events.
fn directory_events(events: Vec<DirectoryEvent>) -> Vec<DomainEvent> {
    events.into_iter().map(DomainEvent::Directory).collect()
}

impl HandledCommand for AddUnit {
    fn action(&self) -> Action {
        Action::Directory
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        check_token_id("command.unit_id", &self.unit_id)?;
        let parent = context
            .require_optional::<UnitState>("command.parent_id", self.parent_id.as_deref())
            .await?;
        context
            .decide::<UnitState>(&self.unit_id, None, |state| {
                add_unit(state, self, parent.as_ref()).map(directory_events)
            })
            .await
    }
}

impl HandledCommand for AddLeader {
    fn action(&self) -> Action {
        Action::Directory
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        check_token_id("command.leader_id", &self.leader_id)?;
        context
            .require::<UnitState>("command.unit_id", &self.unit_id)
            .await?;
        context
            .decide::<LeaderState>(&self.leader_id, None, |state| {
                add_leader(state, self).map(directory_events)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
