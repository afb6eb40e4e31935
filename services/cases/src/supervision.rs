//! The supervision order (督办单), an aggregate the `campaign` service owns: a higher unit orders
//! a lower unit or a department to act, at a level (催办, 督办, 挂牌督办), with a due date for the
//! answer. The addressee signs for it (签收), reports progress and answers (办结反馈); the issuer
//! accepts the answer or sends it back; an order unanswered past its due date is escalated by
//! the system's escalation clock, and the decision here checks that it really is overdue.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, CommandAccepted, CommandError, DomainEvent, ErrorKind,
    commands::{
        AcknowledgeSupervisionOrder, AnswerSupervisionOrder, EscalateSupervisionOrder,
        IssueSupervisionOrder, ReportSupervisionProgress, ReviewSupervisionAnswer,
    },
    dates::DateKind,
    events::{
        SupervisionAnswerAccepted, SupervisionAnswerSentBack, SupervisionEvent, SupervisionLevel,
        SupervisionOrderAcknowledged, SupervisionOrderAnswered, SupervisionOrderEscalated,
        SupervisionOrderIssued, SupervisionProgressReported, UnitRef,
    },
};

use crate::aggregate::Aggregate;
use crate::case::CaseState;
use crate::directory::UnitState;
use crate::handle::{Context, HandledCommand};
use crate::validate::{optional_text, required_text};

/// Most cases one order names.
pub const MAX_ORDER_CASES: usize = 200;

/// Namespace for order ids derived from command ids.
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2b7c_91d4_5e0a_4f63_8d21_c4a9_0e5f_7b18);

/// The id of the order an `issue_supervision_order` command creates when it names none: derived
/// from the command id, so a retried issue names the same order.
pub fn order_id_for_command(command_id: Uuid) -> Uuid {
    Uuid::new_v5(&ORDER_ID_NAMESPACE, command_id.as_bytes())
}

/// What the service knows of a supervision order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionState {
    /// Whether it was issued.
    pub issued: bool,
    /// The issuing unit.
    pub issuer_unit_id: String,
    /// The unit that must answer.
    pub addressee_unit_id: String,
    /// Its level now.
    pub level: Option<SupervisionLevel>,
    /// By when the (next) answer is due.
    pub answer_due_on: Option<NaiveDate>,
    /// Whether the addressee signed for it.
    pub acknowledged: bool,
    /// Answers given so far.
    pub answers: u32,
    /// The answer awaiting the issuer's review.
    pub pending_answer: Option<u32>,
    /// Whether an answer was accepted (the order is closed).
    pub accepted: bool,
}

impl Aggregate for SupervisionState {
    const TYPE: AggregateType = AggregateType::Supervision;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        let DomainEvent::Supervision(event) = event else {
            return;
        };
        match event {
            SupervisionEvent::Issued(e) => {
                self.issued = true;
                self.issuer_unit_id = e.issuer.id.clone();
                self.addressee_unit_id = e.addressee.id.clone();
                self.level = Some(e.level);
                self.answer_due_on = Some(e.answer_due_on);
            }
            SupervisionEvent::Acknowledged(_) => self.acknowledged = true,
            SupervisionEvent::ProgressReported(_) => {}
            SupervisionEvent::Answered(e) => {
                self.answers = e.answer;
                self.pending_answer = Some(e.answer);
            }
            SupervisionEvent::AnswerAccepted(_) => {
                self.pending_answer = None;
                self.accepted = true;
            }
            SupervisionEvent::AnswerSentBack(e) => {
                self.pending_answer = None;
                self.answer_due_on = Some(e.answer_due_on);
            }
            SupervisionEvent::Escalated(e) => {
                self.level = Some(e.to);
                self.answer_due_on = Some(e.answer_due_on);
            }
        }
    }

    fn exists(&self) -> bool {
        self.issued
    }
}

fn refused(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::Conflict, message)
}

fn event(event: SupervisionEvent) -> Vec<DomainEvent> {
    vec![DomainEvent::Supervision(event)]
}

/// The order is still open: not closed by an accepted answer.
fn open(state: &SupervisionState) -> Result<(), CommandError> {
    if state.accepted {
        Err(refused("督办单已办结 (the order is closed)"))
    } else {
        Ok(())
    }
}

/// Decides on issuing an order: once, with its matter, its person responsible, a due date not
/// in the past and distinct cases.
pub fn issue(
    state: &SupervisionState,
    command: &IssueSupervisionOrder,
    issuer: UnitRef,
    addressee: UnitRef,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    if state.issued {
        return Err(refused("督办单已下发 (already issued)"));
    }
    crate::validate::date(
        "command.answer_due_on",
        command.answer_due_on,
        DateKind::Ahead,
        today,
    )?;
    if command.answer_due_on < today {
        return Err(CommandError::invalid(
            "command.answer_due_on",
            format!("反馈期限不能早于今天 {today} (in the past)"),
        ));
    }
    if command.case_ids.len() > MAX_ORDER_CASES {
        return Err(CommandError::invalid(
            "command.case_ids",
            format!("一张督办单至多列 {MAX_ORDER_CASES} 件案件"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, id) in command.case_ids.iter().enumerate() {
        if !seen.insert(id) {
            return Err(CommandError::invalid(
                format!("command.case_ids[{i}]"),
                format!("案件 {id} 重复列入 (listed twice)"),
            ));
        }
    }
    Ok(event(SupervisionEvent::Issued(SupervisionOrderIssued {
        issuer,
        addressee,
        level: command.level,
        case_ids: command.case_ids.clone(),
        matter: required_text("command.matter", &command.matter, 2000)?,
        answer_due_on: command.answer_due_on,
        responsible: required_text("command.responsible", &command.responsible, 50)?,
    })))
}

/// Decides on signing for an order: once, while it is open.
pub fn acknowledge(
    state: &SupervisionState,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    open(state)?;
    if state.acknowledged {
        return Err(refused("督办单已签收 (already signed for)"));
    }
    Ok(event(SupervisionEvent::Acknowledged(
        SupervisionOrderAcknowledged { on: today },
    )))
}

/// The addressee may work the order: it is open and signed for.
fn workable(state: &SupervisionState) -> Result<(), CommandError> {
    open(state)?;
    if !state.acknowledged {
        return Err(refused("请先签收督办单 (sign for the order first)"));
    }
    Ok(())
}

/// Decides on a progress report: on an open order signed for.
pub fn report(
    state: &SupervisionState,
    command: &ReportSupervisionProgress,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    workable(state)?;
    Ok(event(SupervisionEvent::ProgressReported(
        SupervisionProgressReported {
            text: required_text("command.text", &command.text, 2000)?,
            on: today,
        },
    )))
}

/// Decides on an answer: on an open order signed for, with no answer awaiting review, with
/// evidence; on time when given by the due date.
pub fn answer(
    state: &SupervisionState,
    command: &AnswerSupervisionOrder,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    workable(state)?;
    if let Some(pending) = state.pending_answer {
        return Err(refused(format!(
            "第{pending}次办结反馈尚待审核 (an answer awaits review)"
        )));
    }
    if command.evidence.is_empty() || command.evidence.len() > 50 {
        return Err(CommandError::invalid(
            "command.evidence",
            "办结反馈须附 1 至 50 项佐证材料 (evidence)",
        ));
    }
    let evidence = command
        .evidence
        .iter()
        .enumerate()
        .map(|(i, item)| required_text(&format!("command.evidence[{i}]"), item, 200))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(event(SupervisionEvent::Answered(
        SupervisionOrderAnswered {
            answer: state.answers + 1,
            text: required_text("command.text", &command.text, 2000)?,
            evidence,
            on: today,
            on_time: state.answer_due_on.is_none_or(|due| today <= due),
        },
    )))
}

/// Decides on reviewing the answer awaiting review: accepted, or sent back with reasons and a
/// new due date not in the past.
pub fn review(
    state: &SupervisionState,
    command: &ReviewSupervisionAnswer,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    open(state)?;
    let Some(answer) = state.pending_answer else {
        return Err(refused("没有待审核的办结反馈 (no answer awaits review)"));
    };
    if command.accept {
        return Ok(event(SupervisionEvent::AnswerAccepted(
            SupervisionAnswerAccepted {
                answer,
                opinion: optional_text("command.opinion", command.opinion.as_deref(), 2000)?,
            },
        )));
    }
    let reasons = required_text(
        "command.reasons",
        command.reasons.as_deref().unwrap_or(""),
        2000,
    )?;
    let Some(due) = command.answer_due_on else {
        return Err(CommandError::invalid(
            "command.answer_due_on",
            "退回须重新确定反馈期限 (a new due date is required)",
        ));
    };
    crate::validate::date("command.answer_due_on", due, DateKind::Ahead, today)?;
    if due < today {
        return Err(CommandError::invalid(
            "command.answer_due_on",
            format!("反馈期限不能早于今天 {today} (in the past)"),
        ));
    }
    Ok(event(SupervisionEvent::AnswerSentBack(
        SupervisionAnswerSentBack {
            answer,
            reasons,
            answer_due_on: due,
        },
    )))
}

/// Decides on an escalation: only of an open order at `from` with no answer awaiting review,
/// whose answer was due before today, to a higher level, with a new due date not in the past.
pub fn escalate(
    state: &SupervisionState,
    command: &EscalateSupervisionOrder,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    open(state)?;
    if state.pending_answer.is_some() {
        return Err(refused("已办结反馈，待审核，不升级 (answered)"));
    }
    if state.level != Some(command.from) {
        return Err(refused(format!(
            "督办单现为{}，不是{} (not at that level)",
            state.level.map_or("—", SupervisionLevel::label),
            command.from.label()
        )));
    }
    if command.to <= command.from {
        return Err(CommandError::invalid(
            "command.to",
            "只能升级到更高的督办级别 (escalate upwards)",
        ));
    }
    let Some(missed) = state.answer_due_on.filter(|due| *due < today) else {
        return Err(refused("反馈期限未过，不升级 (not overdue)"));
    };
    if command.answer_due_on < today {
        return Err(CommandError::invalid(
            "command.answer_due_on",
            format!("反馈期限不能早于今天 {today} (in the past)"),
        ));
    }
    Ok(event(SupervisionEvent::Escalated(
        SupervisionOrderEscalated {
            from: command.from,
            to: command.to,
            missed_due_on: missed,
            answer_due_on: command.answer_due_on,
            rule: required_text("command.rule", &command.rule, 200)?,
        },
    )))
}

// How each supervision command is handled: what it looks up, then which decision above it takes.

impl HandledCommand for IssueSupervisionOrder {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let issuer = context
            .require::<UnitState>("command.issuer_unit_id", &self.issuer_unit_id)
            .await?;
        let addressee = context
            .require::<UnitState>("command.addressee_unit_id", &self.addressee_unit_id)
            .await?;
        let addressee_ancestry = context.ancestry(&self.addressee_unit_id).await?;
        if self.addressee_unit_id == self.issuer_unit_id
            || !addressee_ancestry.contains(&self.issuer_unit_id)
        {
            return Err(CommandError::invalid(
                "command.addressee_unit_id",
                format!(
                    "{} 不是 {} 的下级单位或部门，不能向其督办 (not below the issuer)",
                    addressee.name, issuer.name
                ),
            ));
        }
        for (i, case_id) in self.case_ids.iter().enumerate() {
            let field = format!("command.case_ids[{i}]");
            let case = context
                .require::<CaseState>(&field, &case_id.to_string())
                .await?;
            let place = case.town_id.clone().unwrap_or(case.district_id.clone());
            if !context
                .ancestry(&place)
                .await?
                .contains(&self.issuer_unit_id)
            {
                return Err(CommandError::invalid(
                    field,
                    format!(
                        "案件不在{}的管辖范围内 (outside the issuer's area)",
                        issuer.name
                    ),
                ));
            }
        }
        let id = self
            .order_id
            .unwrap_or_else(|| order_id_for_command(context.request.command_id));
        let today = context.today();
        context
            .decide::<SupervisionState>(&id.to_string(), None, |state| {
                issue(state, self, issuer.to_ref(), addressee.to_ref(), today)
            })
            .await
    }
}

/// Decides on the existing order `order_id` with `decide`, given today.
async fn decide_on_order(
    context: &Context<'_>,
    order_id: Uuid,
    decide: impl Fn(&SupervisionState, NaiveDate) -> Result<Vec<DomainEvent>, CommandError>
    + Send
    + Sync,
) -> Result<CommandAccepted, CommandError> {
    let today = context.today();
    context
        .decide::<SupervisionState>(&order_id.to_string(), Some("command.order_id"), |state| {
            decide(state, today)
        })
        .await
}

impl HandledCommand for AcknowledgeSupervisionOrder {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        decide_on_order(context, self.order_id, acknowledge).await
    }
}

impl HandledCommand for ReportSupervisionProgress {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        decide_on_order(context, self.order_id, |state, today| {
            report(state, self, today)
        })
        .await
    }
}

impl HandledCommand for AnswerSupervisionOrder {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        decide_on_order(context, self.order_id, |state, today| {
            answer(state, self, today)
        })
        .await
    }
}

impl HandledCommand for ReviewSupervisionAnswer {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        decide_on_order(context, self.order_id, |state, today| {
            review(state, self, today)
        })
        .await
    }
}

impl HandledCommand for EscalateSupervisionOrder {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        decide_on_order(context, self.order_id, |state, today| {
            escalate(state, self, today)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
