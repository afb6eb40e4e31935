//! The events of a supervision order (督办单): a higher unit formally orders a lower unit or a
//! department to act on one or more cases or on a matter, at a level (催办, 督办, 挂牌督办), and
//! the receiving unit signs for it, reports progress and answers; the issuer accepts the answer
//! or sends it back, and an order left unanswered past its due date is escalated.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EventData, UnitRef};

/// How formal a supervision order is, from a reminder to listed supervision.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionLevel {
    /// 催办: a reminder.
    Reminder,
    /// 督办: a formal order.
    Order,
    /// 挂牌督办: listed supervision, the highest level.
    Listed,
}

impl SupervisionLevel {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Reminder, Self::Order, Self::Listed];

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reminder => "催办",
            Self::Order => "督办",
            Self::Listed => "挂牌督办",
        }
    }

    /// The level named by its code (`order`) or its label (`督办`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|level| level.label() == text || level.code() == text)
    }

    /// Its code in the API and in configuration files.
    pub fn code(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::Order => "order",
            Self::Listed => "listed",
        }
    }
}

/// A supervision order is issued (下发督办单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionOrderIssued {
    /// The unit that issues it (a higher unit than the addressee).
    pub issuer: UnitRef,
    /// The unit that must act and answer (承办单位).
    pub addressee: UnitRef,
    /// Its level.
    pub level: SupervisionLevel,
    /// The cases it is about (none for an order about a matter only).
    pub case_ids: Vec<uuid::Uuid>,
    /// What is to be done (督办事项).
    pub matter: String,
    /// By when the answer is due (办结反馈期限).
    pub answer_due_on: NaiveDate,
    /// The person responsible at the addressee (承办责任人).
    pub responsible: String,
}

/// The addressee signs for the order (签收).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionOrderAcknowledged {
    /// When.
    pub on: NaiveDate,
}

/// The addressee reports progress on the order (进展报告).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionProgressReported {
    /// What was done so far.
    pub text: String,
    /// When.
    pub on: NaiveDate,
}

/// The addressee answers the order as done (办结反馈).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionOrderAnswered {
    /// Number of the answer within the order (1, 2, … — a sent-back answer is followed by
    /// another).
    pub answer: u32,
    /// What was done.
    pub text: String,
    /// References to the evidence (document numbers, minutes, file names).
    pub evidence: Vec<String>,
    /// When.
    pub on: NaiveDate,
    /// Whether it came by the answer's due date.
    pub on_time: bool,
}

/// The issuer accepts the answer: the order is closed (办结).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionAnswerAccepted {
    /// The accepted answer.
    pub answer: u32,
    /// The issuer's opinion, if given.
    pub opinion: Option<String>,
}

/// The issuer sends the answer back with reasons and a new due date (退回).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionAnswerSentBack {
    /// The answer sent back.
    pub answer: u32,
    /// Why.
    pub reasons: String,
    /// By when the next answer is due.
    pub answer_due_on: NaiveDate,
}

/// An order not answered by its due date is escalated by the bureau's rule (升级).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisionOrderEscalated {
    /// The level it had.
    pub from: SupervisionLevel,
    /// The level it has now.
    pub to: SupervisionLevel,
    /// The due date that was missed.
    pub missed_due_on: NaiveDate,
    /// By when the answer is now due.
    pub answer_due_on: NaiveDate,
    /// The rule that escalated it, as configured (`催办逾期 0 天升级为督办，限 5 日内反馈`).
    pub rule: String,
}

/// Events of the supervision order aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisionEvent {
    /// See [`SupervisionOrderIssued`].
    Issued(SupervisionOrderIssued),
    /// See [`SupervisionOrderAcknowledged`].
    Acknowledged(SupervisionOrderAcknowledged),
    /// See [`SupervisionProgressReported`].
    ProgressReported(SupervisionProgressReported),
    /// See [`SupervisionOrderAnswered`].
    Answered(SupervisionOrderAnswered),
    /// See [`SupervisionAnswerAccepted`].
    AnswerAccepted(SupervisionAnswerAccepted),
    /// See [`SupervisionAnswerSentBack`].
    AnswerSentBack(SupervisionAnswerSentBack),
    /// See [`SupervisionOrderEscalated`].
    Escalated(SupervisionOrderEscalated),
}

crate::events::event_data! {
    SupervisionOrderIssued => 1,
    SupervisionOrderAcknowledged => 1,
    SupervisionProgressReported => 1,
    SupervisionOrderAnswered => 1,
    SupervisionAnswerAccepted => 1,
    SupervisionAnswerSentBack => 1,
    SupervisionOrderEscalated => 1,
}

impl SupervisionEvent {
    /// Reads a supervision event from its envelope fields; None when the type is not one.
    pub(crate) fn decode(
        event_type: &str,
        version: u32,
        data: impl crate::events::EventJson,
    ) -> Option<Result<Self, crate::events::EventDecodeError>> {
        use crate::events::decode_data;
        Some(match event_type {
            SupervisionOrderIssued::EVENT_TYPE => decode_data(version, data).map(Self::Issued),
            SupervisionOrderAcknowledged::EVENT_TYPE => {
                decode_data(version, data).map(Self::Acknowledged)
            }
            SupervisionProgressReported::EVENT_TYPE => {
                decode_data(version, data).map(Self::ProgressReported)
            }
            SupervisionOrderAnswered::EVENT_TYPE => decode_data(version, data).map(Self::Answered),
            SupervisionAnswerAccepted::EVENT_TYPE => {
                decode_data(version, data).map(Self::AnswerAccepted)
            }
            SupervisionAnswerSentBack::EVENT_TYPE => {
                decode_data(version, data).map(Self::AnswerSentBack)
            }
            SupervisionOrderEscalated::EVENT_TYPE => {
                decode_data(version, data).map(Self::Escalated)
            }
            _ => return None,
        })
    }

    /// The envelope fields of the event.
    pub(crate) fn encode(&self) -> Result<crate::events::EncodedEvent, serde_json::Error> {
        use crate::events::encode_data;
        match self {
            Self::Issued(d) => encode_data(d),
            Self::Acknowledged(d) => encode_data(d),
            Self::ProgressReported(d) => encode_data(d),
            Self::Answered(d) => encode_data(d),
            Self::AnswerAccepted(d) => encode_data(d),
            Self::AnswerSentBack(d) => encode_data(d),
            Self::Escalated(d) => encode_data(d),
        }
    }
}
