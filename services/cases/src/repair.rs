//! Repairing a case whose history holds unreadable commits (administrators only): the command
//! names every unreadable position not yet skipped; the case is replayed without them and a
//! commit recording the repair, with a fresh snapshot, makes it writable again.

use std::collections::BTreeSet;

use uuid::Uuid;
use zhzj_proto::{
    AggregateType, CaseEvent, CommandAccepted, CommandError, DomainEvent, Snapshot,
    commands::SkipUnreadableCommits, events::UnreadableCommitsSkipped,
};
use zhzj_store::{AppendError, AppendRequest, ExpectedVersion, StoredMessage};

use crate::access::Action;
use crate::aggregate::{Aggregate, commit_events, skipped_positions};
use crate::case::CaseState;
use crate::handle::{Context, HandledCommand};
use crate::service::{build_commit, unavailable};
use crate::validate::check_no_control;

impl HandledCommand for SkipUnreadableCommits {
    fn action(&self) -> Action {
        Action::Repair
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let id = self.case_id.to_string();
        check_no_control("command.reason", &self.reason)?;
        if self.reason.trim().is_empty() {
            return Err(CommandError::invalid("command.reason", "请说明修复原因"));
        }
        let log = context.log();
        let Some(last) = log
            .last_version(AggregateType::Case, &id)
            .await
            .map_err(unavailable)?
        else {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 不存在 (not found)"),
            ));
        };
        let messages = log
            .read_aggregate_messages(AggregateType::Case, &id, 1, last)
            .await
            .map_err(unavailable)?;
        let skipped = skipped_positions(&messages);
        let named: BTreeSet<u64> = self.positions.iter().copied().collect();
        check_named(&id, &unreadable_positions(&messages, &skipped), &named)?;
        let mut state = replay_without(&messages, &skipped, &named);
        if !state.exists() {
            return Err(CommandError::not_found(
                "command.case_id",
                format!("案件 {id} 没有可读的登记记录"),
            ));
        }
        let events = vec![DomainEvent::Case(CaseEvent::UnreadableCommitsSkipped(
            UnreadableCommitsSkipped {
                positions: named.into_iter().collect(),
                reason: self.reason.clone(),
            },
        ))];
        for event in &events {
            state.apply(event);
        }
        let snapshot_json = serde_json::to_string(&Snapshot {
            schema_version: CaseState::SNAPSHOT_VERSION,
            state: &state,
        })
        .map_err(unavailable)?;
        let request = context.request;
        let commit = build_commit(request, AggregateType::Case, &id, &events, context.now())
            .map_err(unavailable)?;
        let appended = log
            .append(AppendRequest {
                aggregate_type: AggregateType::Case,
                aggregate_id: &id,
                expected: ExpectedVersion::Exactly(last),
                previous: messages.last().map(|message| message.digest),
                command_id: request.command_id,
                commit: &commit,
                snapshot_json: Some(snapshot_json),
            })
            .await;
        context.forget::<CaseState>(&id);
        match appended {
            Ok(outcome) => {
                tracing::warn!(case_id = %id, positions = ?self.positions, actor = %request.actor.user_id, "history repaired: unreadable commits skipped");
                Ok(CommandAccepted {
                    aggregate_type: AggregateType::Case,
                    aggregate_id: id,
                    version: outcome.version(),
                })
            }
            Err(AppendError::Conflict { current_version }) => Err(CommandError::conflict(
                current_version.unwrap_or(0),
                "案件在修复期间被改动，请重新检查后再修复 (changed meanwhile)",
            )),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// The positions of the history's commits that cannot be read and are not skipped yet.
fn unreadable_positions(messages: &[StoredMessage], skipped: &BTreeSet<u64>) -> BTreeSet<u64> {
    messages
        .iter()
        .filter(|m| !skipped.contains(&m.position))
        .filter(|m| match &m.commit {
            Ok(stored) => commit_events(stored).is_err(),
            Err(_) => true,
        })
        .map(|m| m.position)
        .collect()
}

/// The command must name exactly the unreadable positions, and there must be some.
fn check_named(
    id: &str,
    unreadable: &BTreeSet<u64>,
    named: &BTreeSet<u64>,
) -> Result<(), CommandError> {
    if unreadable.is_empty() {
        return Err(CommandError::invalid(
            "command.positions",
            format!("案件 {id} 的历史中没有需要跳过的无法读取的记录"),
        ));
    }
    if named != unreadable {
        return Err(CommandError::invalid(
            "command.positions",
            format!("须列出案件 {id} 全部无法读取的记录位置：{unreadable:?}（给出的是 {named:?}）"),
        ));
    }
    Ok(())
}

/// The case replayed from its readable commits, leaving out those skipped before and now.
fn replay_without(
    messages: &[StoredMessage],
    skipped: &BTreeSet<u64>,
    named: &BTreeSet<u64>,
) -> CaseState {
    let mut state = CaseState::default();
    for message in messages {
        if skipped.contains(&message.position) || named.contains(&message.position) {
            continue;
        }
        if let Ok(stored) = &message.commit
            && let Ok(events) = commit_events(stored)
        {
            for event in &events {
                state.apply(event);
            }
        }
    }
    state
}
