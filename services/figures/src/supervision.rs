//! The supervision figures of a month (督办情况), per unit an order went to: orders issued to it
//! in the month, its answers given in the month by their due date and after it, the escalations
//! of its orders in the month, and its orders overdue at the month's end (open, no answer
//! awaiting review, due before the month ended). Folded from the archived supervision events up
//! to the bulletin's log position, like every figure of the bulletin; a unit with nothing to
//! count is left out. And the orders open at a meeting, for its agenda.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use zhzj_proto::{DomainEvent, SupervisionEvent};
use zhzj_store::china_date;

use crate::archive::ArchivedEvent;

/// The supervision figures of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SupervisionFigures {
    /// The unit the orders went to.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// Orders issued to it in the month (下发).
    pub issued: i64,
    /// Its answers given in the month by their due date (按期反馈).
    pub answered_on_time: i64,
    /// Its answers given in the month after their due date (逾期反馈).
    pub answered_late: i64,
    /// Escalations of its orders in the month (升级).
    pub escalated: i64,
    /// Its orders overdue at the month's end (月末逾期未反馈).
    pub overdue_at_end: i64,
}

/// One order as the fold sees it at the month's end.
#[derive(Debug, Default)]
struct OrderAtEnd {
    unit: String,
    due: Option<NaiveDate>,
    pending: bool,
    accepted: bool,
}

/// The supervision figures of the month `[first, next)` from archived events (other events are
/// skipped).
pub fn supervision_figures(
    events: &[ArchivedEvent],
    first: NaiveDate,
    next: NaiveDate,
) -> Vec<SupervisionFigures> {
    let mut units: BTreeMap<String, SupervisionFigures> = BTreeMap::new();
    let mut orders: BTreeMap<&str, OrderAtEnd> = BTreeMap::new();
    for archived in events {
        let DomainEvent::Supervision(event) = &archived.event else {
            continue;
        };
        let day = zhzj_store::china_date(archived.occurred_at);
        if day >= next {
            continue;
        }
        let in_month = day >= first;
        if let SupervisionEvent::Issued(e) = event {
            orders.insert(
                &archived.aggregate_id,
                OrderAtEnd {
                    unit: e.addressee.id.clone(),
                    due: Some(e.answer_due_on),
                    ..OrderAtEnd::default()
                },
            );
            let figures =
                units
                    .entry(e.addressee.id.clone())
                    .or_insert_with(|| SupervisionFigures {
                        unit_id: e.addressee.id.clone(),
                        name: e.addressee.name.clone(),
                        ..SupervisionFigures::default()
                    });
            if in_month {
                figures.issued += 1;
            }
            continue;
        }
        let Some(order) = orders.get_mut(archived.aggregate_id.as_str()) else {
            continue;
        };
        let Some(figures) = units.get_mut(&order.unit) else {
            continue;
        };
        match event {
            SupervisionEvent::Answered(e) => {
                order.pending = true;
                if in_month && e.on_time {
                    figures.answered_on_time += 1;
                } else if in_month {
                    figures.answered_late += 1;
                }
            }
            SupervisionEvent::AnswerAccepted(_) => {
                order.pending = false;
                order.accepted = true;
            }
            SupervisionEvent::AnswerSentBack(e) => {
                order.pending = false;
                order.due = Some(e.answer_due_on);
            }
            SupervisionEvent::Escalated(e) => {
                order.due = Some(e.answer_due_on);
                if in_month {
                    figures.escalated += 1;
                }
            }
            SupervisionEvent::Issued(_)
            | SupervisionEvent::Acknowledged(_)
            | SupervisionEvent::ProgressReported(_) => {}
        }
    }
    for order in orders.values() {
        let overdue = !order.accepted && !order.pending && order.due.is_some_and(|due| due < next);
        if overdue && let Some(figures) = units.get_mut(&order.unit) {
            figures.overdue_at_end += 1;
        }
    }
    units
        .into_values()
        .filter(|f| {
            f.issued + f.answered_on_time + f.answered_late + f.escalated + f.overdue_at_end > 0
        })
        .collect()
}

/// A supervision order open at a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AgendaOrderRow {
    /// Order id.
    pub order_id: String,
    /// 催办, 督办 or 挂牌督办, as it stood at the meeting.
    pub level: String,
    /// The issuing unit.
    pub issuer: String,
    /// The unit that must answer.
    pub addressee: String,
    /// What is to be done.
    pub matter: String,
    /// By when the answer was due.
    pub answer_due_on: NaiveDate,
    /// 待签收, 办理中, 待审核 or 已退回.
    pub status_label: String,
    /// Unanswered past its due date at the meeting (逾期未反馈).
    pub overdue: bool,
}

/// The supervision orders open at `at` whose issuer or addressee is one of `units`, in the
/// order they were issued.
pub(crate) fn open_orders(
    events: &[ArchivedEvent],
    units: &[String],
    at: DateTime<Utc>,
) -> Vec<AgendaOrderRow> {
    use zhzj_proto::SupervisionEvent as S;
    let today = china_date(at);
    let mut orders: Vec<(String, AgendaOrderRow, bool)> = Vec::new();
    for archived in events.iter().filter(|e| e.occurred_at <= at) {
        let DomainEvent::Supervision(event) = &archived.event else {
            continue;
        };
        if let S::Issued(e) = event {
            let ours = units.contains(&e.issuer.id) || units.contains(&e.addressee.id);
            if ours {
                orders.push((
                    archived.aggregate_id.clone(),
                    AgendaOrderRow {
                        order_id: archived.aggregate_id.clone(),
                        level: e.level.label().to_owned(),
                        issuer: e.issuer.name.clone(),
                        addressee: e.addressee.name.clone(),
                        matter: e.matter.clone(),
                        answer_due_on: e.answer_due_on,
                        status_label: "待签收".to_owned(),
                        overdue: false,
                    },
                    false,
                ));
            }
            continue;
        }
        let Some((_, row, closed)) = orders
            .iter_mut()
            .find(|(id, _, _)| *id == archived.aggregate_id)
        else {
            continue;
        };
        match event {
            S::Acknowledged(_) => row.status_label = "办理中".to_owned(),
            S::Answered(_) => row.status_label = "待审核".to_owned(),
            S::AnswerSentBack(e) => {
                row.status_label = "已退回".to_owned();
                row.answer_due_on = e.answer_due_on;
            }
            S::Escalated(e) => {
                row.level = e.to.label().to_owned();
                row.answer_due_on = e.answer_due_on;
            }
            S::AnswerAccepted(_) => *closed = true,
            S::Issued(_) | S::ProgressReported(_) => {}
        }
    }
    orders
        .into_iter()
        .filter(|(_, _, closed)| !closed)
        .map(|(_, mut row, _)| {
            row.overdue = row.status_label != "待审核" && row.answer_due_on < today;
            row
        })
        .collect()
}
