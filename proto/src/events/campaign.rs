//! The campaign's events: dispatch meetings (周调度) and their instructions and feedback, published
//! bulletins (月通报), and quarterly pushes (季攻坚).

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LeaderRef, UnitRef};

/// A weekly dispatch meeting (周调度) of a unit is held. One per unit per ISO week; its agenda is
/// the state of the log at `as_of_position`, and can be regenerated from the archive at any time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MeetingHeld {
    /// The unit whose task force meets.
    pub unit: UnitRef,
    /// The ISO week, `2026-W10`.
    pub week: String,
    /// When it was held.
    pub held_at: chrono::DateTime<chrono::Utc>,
    /// The log position the agenda was drawn at.
    pub as_of_position: u64,
    /// Its title.
    pub title: String,
}

/// A dispatch instruction (调度指令) is issued at a meeting, to a unit and/or a leader, about a
/// case or not, with a feedback deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionIssued {
    /// Its number within the meeting, from 1.
    pub number: u32,
    /// The case it is about.
    pub case_id: Option<uuid::Uuid>,
    /// The unit it is issued to.
    pub unit: Option<UnitRef>,
    /// The leader it is issued to.
    pub leader: Option<LeaderRef>,
    /// What is to be done.
    pub text: String,
    /// By when feedback is due.
    pub feedback_due_on: NaiveDate,
}

/// Feedback on a dispatch instruction is recorded (反馈).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionFeedbackRecorded {
    /// The instruction's number.
    pub number: u32,
    /// What was done.
    pub text: String,
    /// When.
    pub on: NaiveDate,
}

/// A monthly bulletin (月通报) is published: frozen at the log position it records, so that it
/// exports identically whenever it is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BulletinPublished {
    /// The month, `2026-03`.
    pub month: String,
    /// The log position its figures are drawn at.
    pub as_of_position: u64,
    /// When it was published.
    pub published_at: chrono::DateTime<chrono::Utc>,
}

/// What a quarterly push expects of one area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PushTarget {
    /// The area: a district, a town or a department.
    pub unit: UnitRef,
    /// A number of its hard cases to resolve, or
    #[serde(default)]
    pub cases: Option<u32>,
    /// a share of them, in percent.
    #[serde(default)]
    pub rate_percent: Option<u32>,
}

/// A quarterly push on hard cases (季攻坚) is launched: its quarter, its hard cases (攻坚案件)
/// and a target per area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PushLaunched {
    /// The quarter, `2026-Q2`.
    pub quarter: String,
    /// Its title.
    pub title: String,
    /// The hard cases.
    pub case_ids: Vec<uuid::Uuid>,
    /// The targets per area.
    pub targets: Vec<PushTarget>,
}

/// Events of the campaign aggregates (a dispatch meeting and its instructions; a bulletin; a
/// quarterly push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignEvent {
    /// See [`BulletinPublished`].
    BulletinPublished(BulletinPublished),
    /// See [`PushLaunched`].
    PushLaunched(PushLaunched),
    /// See [`MeetingHeld`].
    MeetingHeld(MeetingHeld),
    /// See [`InstructionIssued`].
    InstructionIssued(InstructionIssued),
    /// See [`InstructionFeedbackRecorded`].
    FeedbackRecorded(InstructionFeedbackRecorded),
}
