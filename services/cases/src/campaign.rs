//! The campaign aggregates the `campaign` service owns: the weekly dispatch meeting (周调度) of a
//! unit, one per ISO week, with the instructions (调度指令) issued at it and the feedback on them.
//! The meeting records the log position its agenda is drawn at, so the agenda can be regenerated
//! exactly as it stood, whatever happens later.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use zhzj_proto::{
    AggregateType, CampaignEvent, CommandAccepted, CommandError, DomainEvent, ErrorKind,
    commands::{
        HoldMeeting, IssueInstruction, LaunchPush, PublishBulletin, RecordInstructionFeedback,
    },
    events::{
        InstructionFeedbackRecorded, InstructionIssued, LeaderRef, MeetingHeld, PushTarget,
        UnitKind, UnitRef,
    },
};

use zhzj_deadlines::periods::month_bounds;

use crate::aggregate::Aggregate;
use crate::case::CaseState;
use crate::directory::{LeaderState, UnitState};
use crate::handle::{Context, HandledCommand};
use crate::service::unavailable;
use crate::validate::{optional_text, required_text};
use zhzj_proto::dates::DateKind;

/// The ISO week of a date, as `2026-W10`.
pub fn iso_week(date: NaiveDate) -> String {
    let week = date.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// The id of a unit's meeting in the ISO week of `date`: `<unit>-2026w10`.
pub fn meeting_id(unit_id: &str, date: NaiveDate) -> String {
    let week = date.iso_week();
    format!("{unit_id}-{}w{:02}", week.year(), week.week())
}

/// What the service knows of a meeting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingState {
    /// Whether it was held.
    pub held: bool,
    /// The unit whose meeting it is.
    pub unit_id: String,
    /// The day it was held (China time).
    pub held_on: Option<NaiveDate>,
    /// Instructions issued, numbered 1…n; each with the unit and leader it went to.
    pub instructions: BTreeMap<u32, (Option<String>, Option<String>)>,
}

impl Aggregate for MeetingState {
    const TYPE: AggregateType = AggregateType::Meeting;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        let DomainEvent::Campaign(event) = event else {
            return;
        };
        match event {
            CampaignEvent::MeetingHeld(e) => {
                self.held = true;
                self.unit_id = e.unit.id.clone();
                self.held_on = Some(zhzj_store::china_date(e.held_at));
            }
            CampaignEvent::InstructionIssued(e) => {
                self.instructions.insert(
                    e.number,
                    (
                        e.unit.as_ref().map(|u| u.id.clone()),
                        e.leader.as_ref().map(|l| l.id.clone()),
                    ),
                );
            }
            CampaignEvent::FeedbackRecorded(_)
            | CampaignEvent::BulletinPublished(_)
            | CampaignEvent::PushLaunched(_) => {}
        }
    }

    fn exists(&self) -> bool {
        self.held
    }
}

fn refused(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::Conflict, message)
}

/// Decides on holding a meeting: once per unit and week.
pub fn hold(
    state: &MeetingState,
    command: &HoldMeeting,
    unit: UnitRef,
    held_at: chrono::DateTime<chrono::Utc>,
    as_of_position: u64,
) -> Result<Vec<DomainEvent>, CommandError> {
    let day = zhzj_store::china_date(held_at);
    if state.held {
        return Err(refused(format!(
            "{}本周（{}）的调度会已召开 (this week's meeting was held)",
            unit.name,
            iso_week(day)
        )));
    }
    let title = match optional_text("command.title", command.title.as_deref(), 100)? {
        Some(title) => title,
        None => format!(
            "{}{}年第{}周调度会",
            unit.name,
            day.iso_week().year(),
            day.iso_week().week()
        ),
    };
    Ok(vec![DomainEvent::Campaign(CampaignEvent::MeetingHeld(
        MeetingHeld {
            unit,
            week: iso_week(day),
            held_at,
            as_of_position,
            title,
        },
    ))])
}

/// Decides on an instruction: to a unit and/or a leader, feedback due on or after the meeting.
pub fn issue(
    state: &MeetingState,
    command: &IssueInstruction,
    unit: Option<UnitRef>,
    leader: Option<LeaderRef>,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    crate::validate::date(
        "command.feedback_due_on",
        command.feedback_due_on,
        DateKind::Ahead,
        today,
    )?;
    if unit.is_none() && leader.is_none() {
        return Err(CommandError::invalid(
            "command.unit_id",
            "调度指令须明确承办单位或领导 (name a unit or a leader)",
        ));
    }
    let text = required_text("command.text", &command.text, 2000)?;
    if let Some(held_on) = state.held_on
        && command.feedback_due_on < held_on
    {
        return Err(CommandError::invalid(
            "command.feedback_due_on",
            format!("反馈期限不能早于会议日期 {held_on} (before the meeting)"),
        ));
    }
    let number = state.instructions.keys().last().copied().unwrap_or(0) + 1;
    Ok(vec![DomainEvent::Campaign(
        CampaignEvent::InstructionIssued(InstructionIssued {
            number,
            case_id: command.case_id,
            unit,
            leader,
            text,
            feedback_due_on: command.feedback_due_on,
        }),
    )])
}

/// Decides on feedback: on an instruction of the meeting, not dated in the future.
pub fn feedback(
    state: &MeetingState,
    command: &RecordInstructionFeedback,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    if !state.instructions.contains_key(&command.number) {
        return Err(CommandError::not_found(
            "command.number",
            format!(
                "本次会议没有第{}号调度指令 (no such instruction)",
                command.number
            ),
        ));
    }
    crate::validate::date("command.on", command.on, DateKind::Happened, today)?;
    Ok(vec![DomainEvent::Campaign(
        CampaignEvent::FeedbackRecorded(InstructionFeedbackRecorded {
            number: command.number,
            text: required_text("command.text", &command.text, 2000)?,
            on: command.on,
        }),
    )])
}

/// What the service knows of a month's bulletin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulletinState {
    /// Whether it was published.
    pub published: bool,
}

impl Aggregate for BulletinState {
    const TYPE: AggregateType = AggregateType::Bulletin;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::Campaign(CampaignEvent::BulletinPublished(_)) = event {
            self.published = true;
        }
    }

    fn exists(&self) -> bool {
        self.published
    }
}

/// Decides on publishing a bulletin: once, after its month is over.
pub fn publish(
    state: &BulletinState,
    month: &str,
    published_at: chrono::DateTime<chrono::Utc>,
    as_of_position: u64,
) -> Result<Vec<DomainEvent>, CommandError> {
    let Some((first, next)) = month_bounds(month) else {
        return Err(CommandError::invalid(
            "command.month",
            format!("月份须写作 YYYY-MM，收到 `{month}`"),
        ));
    };
    let published_on = zhzj_store::china_date(published_at);
    crate::validate::date("command.month", first, DateKind::Happened, published_on)?;
    if zhzj_store::china_date(published_at) < next {
        return Err(CommandError::invalid(
            "command.month",
            format!("{month} 尚未结束，不能发布月通报 (the month is not over)"),
        ));
    }
    if state.published {
        return Err(refused(format!("{month} 月通报已发布 (already published)")));
    }
    Ok(vec![DomainEvent::Campaign(
        CampaignEvent::BulletinPublished(zhzj_proto::events::BulletinPublished {
            month: month.to_owned(),
            as_of_position,
            published_at,
        }),
    )])
}

/// What the service knows of a quarter's push.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushState {
    /// Whether it was launched.
    pub launched: bool,
}

impl Aggregate for PushState {
    const TYPE: AggregateType = AggregateType::Push;
    const SNAPSHOT_VERSION: u32 = 1;

    fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::Campaign(CampaignEvent::PushLaunched(_)) = event {
            self.launched = true;
        }
    }

    fn exists(&self) -> bool {
        self.launched
    }
}

/// Most hard cases one push names.
pub const MAX_PUSH_CASES: usize = 1_000;

/// Decides on launching a push: once per quarter, before the quarter is over, on hard cases that
/// exist (checked by the caller), with one target (a number or a rate) per area.
pub fn launch(
    state: &PushState,
    command: &LaunchPush,
    targets: Vec<PushTarget>,
    today: NaiveDate,
) -> Result<Vec<DomainEvent>, CommandError> {
    let Some((first, next, number)) = zhzj_deadlines::periods::quarter_bounds(&command.quarter)
    else {
        return Err(CommandError::invalid(
            "command.quarter",
            format!("季度须写作 YYYY-Qn，收到 `{}`", command.quarter),
        ));
    };
    crate::validate::date("command.quarter", first, DateKind::Ahead, today)?;
    if today >= next {
        return Err(CommandError::invalid(
            "command.quarter",
            format!(
                "{} 已结束，不能再部署攻坚 (the quarter is over)",
                command.quarter
            ),
        ));
    }
    if state.launched {
        return Err(refused(format!(
            "{} 的季度攻坚已部署 (already launched)",
            command.quarter
        )));
    }
    if command.case_ids.is_empty() || command.case_ids.len() > MAX_PUSH_CASES {
        return Err(CommandError::invalid(
            "command.case_ids",
            format!("攻坚案件须为 1 至 {MAX_PUSH_CASES} 件"),
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
    let mut units = std::collections::BTreeSet::new();
    for (i, target) in targets.iter().enumerate() {
        let field = format!("command.targets[{i}]");
        if !units.insert(target.unit.id.clone()) {
            return Err(CommandError::invalid(
                format!("{field}.unit_id"),
                format!("{} 的目标重复 (one target per area)", target.unit.name),
            ));
        }
        match (target.cases, target.rate_percent) {
            (Some(n), None) if n > 0 => {}
            (None, Some(rate)) if (1..=100).contains(&rate) => {}
            _ => {
                return Err(CommandError::invalid(
                    field,
                    "目标须为化解件数（正整数）或化解率（1–100%）之一 (cases or rate_percent)",
                ));
            }
        }
    }
    let title = match optional_text("command.title", command.title.as_deref(), 100)? {
        Some(title) => title,
        None => {
            let names = ["一", "二", "三", "四"];
            let name = names
                .get(usize::try_from(number).unwrap_or(1) - 1)
                .copied()
                .unwrap_or("一");
            format!("{}年第{name}季度积案攻坚", first.year())
        }
    };
    Ok(vec![DomainEvent::Campaign(CampaignEvent::PushLaunched(
        zhzj_proto::events::PushLaunched {
            quarter: command.quarter.clone(),
            title,
            case_ids: command.case_ids.clone(),
            targets,
        },
    ))])
}

// How each campaign command is handled: what it looks up, then which decision above it takes.

impl HandledCommand for HoldMeeting {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let unit = context
            .require::<UnitState>("command.unit_id", &self.unit_id)
            .await?;
        let held_at = context.now();
        let id = meeting_id(&self.unit_id, zhzj_store::china_date(held_at));
        let position = context.log().last_position().await.map_err(unavailable)?;
        context
            .decide::<MeetingState>(&id, None, |state| {
                hold(state, self, unit.to_ref(), held_at, position)
            })
            .await
    }
}

impl HandledCommand for IssueInstruction {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let meeting = context
            .require::<MeetingState>("command.meeting_id", &self.meeting_id)
            .await?;
        let unit = context
            .require_optional::<UnitState>("command.unit_id", self.unit_id.as_deref())
            .await?
            .map(|unit| unit.to_ref());
        let leader = context
            .require_optional::<LeaderState>("command.leader_id", self.leader_id.as_deref())
            .await?
            .map(|leader| leader.to_ref());
        if let Some(case_id) = self.case_id {
            let case = context
                .require::<CaseState>("command.case_id", &case_id.to_string())
                .await?;
            let place = case.town_id.clone().unwrap_or(case.district_id.clone());
            if !context.ancestry(&place).await?.contains(&meeting.unit_id) {
                return Err(CommandError::invalid(
                    "command.case_id",
                    "案件不在本次调度会单位的管辖范围内 (case outside the meeting's unit)",
                ));
            }
        }
        let today = context.today();
        context
            .decide::<MeetingState>(&self.meeting_id, Some("command.meeting_id"), |state| {
                issue(state, self, unit.clone(), leader.clone(), today)
            })
            .await
    }
}

impl HandledCommand for RecordInstructionFeedback {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let today = context.today();
        context
            .decide::<MeetingState>(&self.meeting_id, Some("command.meeting_id"), |state| {
                feedback(state, self, today)
            })
            .await
    }
}

impl HandledCommand for PublishBulletin {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let published_at = context.now();
        let position = context.log().last_position().await.map_err(unavailable)?;
        let id = if month_bounds(&self.month).is_some() {
            self.month.clone()
        } else {
            "invalid".to_owned()
        };
        let accepted = context
            .decide::<BulletinState>(&id, None, |state| {
                publish(state, &self.month, published_at, position)
            })
            .await?;
        if let Some(sealer) = context.sealer() {
            // The published figures stand on the log up to here: seal it. A failure leaves the
            // bulletin published; the next interval's seal covers it.
            if let Err(e) = sealer.seal(Some(accepted.version), "bulletin").await {
                tracing::warn!(error = %e, month = %self.month, "could not seal the log after publishing");
            }
        }
        Ok(accepted)
    }
}

impl HandledCommand for LaunchPush {
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        for (i, case_id) in self.case_ids.iter().enumerate() {
            context
                .require::<CaseState>(&format!("command.case_ids[{i}]"), &case_id.to_string())
                .await?;
        }
        let mut targets = Vec::with_capacity(self.targets.len());
        for (i, target) in self.targets.iter().enumerate() {
            let field = format!("command.targets[{i}].unit_id");
            let unit = context
                .require::<UnitState>(&field, &target.unit_id)
                .await?;
            if unit.kind == Some(UnitKind::City) {
                return Err(CommandError::invalid(
                    field,
                    "目标须落到区、镇街或职能部门 (not the city)",
                ));
            }
            targets.push(PushTarget {
                unit: unit.to_ref(),
                cases: target.cases,
                rate_percent: target.rate_percent,
            });
        }
        let today = context.today();
        let id = if zhzj_deadlines::periods::quarter_bounds(&self.quarter).is_some() {
            self.quarter.clone()
        } else {
            "invalid".to_owned()
        };
        context
            .decide::<PushState>(&id, None, |state| {
                launch(state, self, targets.clone(), today)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
