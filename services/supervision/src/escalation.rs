//! The escalation clock: on each pass of the [`crate::Watch`], it reads the supervision view for
//! open orders whose answer is overdue by a rule's days, and sends each an
//! `escalate_supervision_order` command as the system. The command service decides again on the
//! order's own history, so an escalation is never early, never twice for one missed date (a
//! second clock, or a retry, is refused as a conflict), and always an event in the log.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::Row;
use uuid::Uuid;
use zhzj_proto::commands::EscalateSupervisionOrder;
use zhzj_proto::{Actor, Command, CommandReply, CommandRequest, ErrorKind};
use zhzj_store::{Clock, ReadStore, china_date};

use crate::rules::SupervisionRules;

/// The actor the clock's commands carry.
pub const ESCALATION_ACTOR: &str = "system:supervision";

/// Namespace of the escalation commands' ids: one id per order, level and missed date, so a
/// retried escalation is the same command.
const ESCALATION_NAMESPACE: Uuid = Uuid::from_u128(0x7d3e_0a61_94c2_4b8f_a6d0_15e2_c9b3_4f70);

/// How long one escalation command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a pass of the clock could not finish.
#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    /// The supervision view could not be read.
    #[error("reading the supervision view: {0}")]
    Read(#[from] sqlx::Error),
    /// A command could not be sent or its answer read.
    #[error("sending an escalation: {0}")]
    Send(String),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationPass {
    /// Orders escalated, by id.
    pub escalated: Vec<String>,
    /// Orders whose escalation the service refused (escalated meanwhile, answered, …).
    pub refused: Vec<String>,
}

/// Escalates overdue supervision orders by the rules.
#[derive(Debug, Clone)]
pub struct EscalationClock {
    client: async_nats::Client,
    store: ReadStore,
    clock: Arc<dyn Clock>,
    rules: Arc<SupervisionRules>,
}

impl EscalationClock {
    /// A clock sending commands on `client`, reading `store`, telling the day by `clock`.
    pub fn new(
        client: async_nats::Client,
        store: ReadStore,
        clock: Arc<dyn Clock>,
        rules: Arc<SupervisionRules>,
    ) -> Self {
        Self {
            client,
            store,
            clock,
            rules,
        }
    }

    /// The escalations due today: for each rule, the open orders at its level with no answer
    /// awaiting review whose answer was due `overdue_days` or more days ago.
    pub async fn due(
        &self,
        today: NaiveDate,
    ) -> Result<Vec<EscalateSupervisionOrder>, sqlx::Error> {
        let mut due = Vec::new();
        for rule in &self.rules.escalation {
            let Some(latest_due) =
                today.checked_sub_days(chrono::Days::new(u64::from(rule.overdue_days)))
            else {
                continue;
            };
            let rows = sqlx::query(
                "SELECT order_id FROM supervision_orders \
                 WHERE status IN ('issued', 'acknowledged', 'sent_back') AND level = $1 \
                 AND answer_due_on <= $2 ORDER BY answer_due_on, order_id",
            )
            .bind(rule.from.code())
            .bind(latest_due.to_string())
            .fetch_all(self.store.pool())
            .await?;
            let answer_due_on = today
                .checked_add_days(chrono::Days::new(u64::from(rule.answer_within_days)))
                .unwrap_or(today);
            for row in rows {
                let order_id: String = row.try_get("order_id")?;
                let Ok(order_id) = order_id.parse::<Uuid>() else {
                    continue;
                };
                due.push(EscalateSupervisionOrder {
                    order_id,
                    from: rule.from,
                    to: rule.to,
                    answer_due_on,
                    rule: rule.describe(),
                });
            }
        }
        Ok(due)
    }

    /// One pass: escalates every order due today.
    pub async fn run_once(&self) -> Result<EscalationPass, EscalationError> {
        let today = china_date(self.clock.now());
        let mut pass = EscalationPass::default();
        for escalation in self.due(today).await? {
            let order_id = escalation.order_id.to_string();
            let command_id = Uuid::new_v5(
                &ESCALATION_NAMESPACE,
                format!("{order_id}/{}/{today}", escalation.from.code()).as_bytes(),
            );
            match self.send(command_id, escalation).await? {
                CommandReply::Ok(_) => {
                    tracing::info!(order_id, "supervision order escalated");
                    pass.escalated.push(order_id);
                }
                CommandReply::Error(e) if e.kind == ErrorKind::Unavailable => {
                    return Err(EscalationError::Send(e.message));
                }
                CommandReply::Error(e) => {
                    tracing::info!(order_id, reason = %e.message, "escalation refused");
                    pass.refused.push(order_id);
                }
            }
        }
        Ok(pass)
    }

    async fn send(
        &self,
        command_id: Uuid,
        escalation: EscalateSupervisionOrder,
    ) -> Result<CommandReply, EscalationError> {
        let command = Command::EscalateSupervisionOrder(escalation);
        let subject = command.subject();
        let request = CommandRequest {
            command_id,
            correlation_id: None,
            causation_id: None,
            actor: Actor {
                user_id: ESCALATION_ACTOR.to_owned(),
                roles: vec![zhzj_proto::accounts::Role::Admin.as_str().to_owned()],
                unit_id: None,
                leader_id: None,
            },
            expected_version: None,
            unknown_outcome_retry: false,
            command,
        };
        let payload =
            serde_json::to_vec(&request).map_err(|e| EscalationError::Send(e.to_string()))?;
        let reply = tokio::time::timeout(
            COMMAND_TIMEOUT,
            self.client.request(subject, payload.into()),
        )
        .await
        .map_err(|_| EscalationError::Send("no answer in time".to_owned()))?
        .map_err(|e| EscalationError::Send(e.to_string()))?;
        serde_json::from_slice(&reply.payload).map_err(|e| EscalationError::Send(e.to_string()))
    }
}
