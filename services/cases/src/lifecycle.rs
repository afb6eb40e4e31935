//! The life of a case after it is worked: classification (分类施策), the resolution claim and its
//! review chain (审核把关) up to crossing off (销号), new petitions on the case (重复信访) that
//! reopen a crossed-off one (回潮), and the petitioner's satisfaction.

use chrono::NaiveDate;
use uuid::Uuid;
use zhzj_proto::{
    CaseEvent, CommandAccepted, CommandError, ErrorKind,
    commands::{
        ClaimResolution, ClassifyCase, ExtendHandling, RateSatisfaction, RecordActivity,
        RecordPetition, RecordProcedureStep, ReviewClaim,
    },
    events::{
        CaseClassified, CaseCrossedOff, CaseReopened, ClaimAccepted, ClaimSentBack,
        HandlingExtended, LeaderActivityRecorded, LeaderRef, PetitionRecorded, ProcedureStep,
        ProcedureStepRecorded, ResolutionClaimed, ReviewLevel, SatisfactionRated,
    },
};

use crate::access::Action;
use crate::case::CaseState;
use crate::directory::LeaderState;
use crate::handle::{Context, HandledCommand};
use crate::validate::{optional_text, required_text};

/// The bureau's settings for the case lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// The levels that must accept a claim, in order; the last one's acceptance crosses the case
    /// off.
    pub review_chain: Vec<ReviewLevel>,
    /// The subject categories a case may be classified under.
    pub categories: Vec<String>,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            review_chain: vec![ReviewLevel::District, ReviewLevel::City],
            categories: [
                "征地拆迁",
                "劳动社保",
                "涉法涉诉",
                "城乡建设",
                "房屋产权",
                "物业管理",
                "医疗卫生",
                "教育",
                "环境保护",
                "农村农业",
                "企业改制",
                "民政救助",
                "其他",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        }
    }
}

fn refused(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::Conflict, message)
}

/// Most days an extension may add (《信访工作条例》第三十四条).
pub const MAX_EXTENSION_DAYS: u32 = 30;

/// Decides on extending the handling period: once per period, at most 30 days, not once the
/// case is crossed off.
pub fn extend_handling(
    state: &CaseState,
    command: &ExtendHandling,
) -> Result<Vec<CaseEvent>, CommandError> {
    if state.crossed_off_by.is_some() {
        return Err(refused("本案已销号 (the case is crossed off)"));
    }
    if state.handling_extended {
        return Err(refused(
            "办理期限已延长过一次，不能再延长 (extended once already)",
        ));
    }
    if !(1..=MAX_EXTENSION_DAYS).contains(&command.days) {
        return Err(CommandError::invalid(
            "command.days",
            format!("延长期限须为 1 至 {MAX_EXTENSION_DAYS} 日"),
        ));
    }
    Ok(vec![CaseEvent::HandlingExtended(HandlingExtended {
        days: command.days,
        reason: required_text("command.reason", &command.reason, 500)?,
        approved_by: required_text("command.approved_by", &command.approved_by, 100)?,
    })])
}

/// Decides on logging a leader's work; `leader` is the named leader (resolved from the
/// directory) or none for the owning leader.
pub fn record_activity(
    state: &CaseState,
    command: &RecordActivity,
    leader: Option<LeaderRef>,
    today: NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    let Some(leader) = leader.or_else(|| state.leader.clone()) else {
        return Err(CommandError::invalid(
            "command.leader_id",
            "本案尚无包案领导，须注明开展工作的领导 (name the leader)",
        ));
    };
    not_after_today("command.held_on", command.held_on, today)?;
    let summary = required_text("command.summary", &command.summary, 2000)?;
    let mut participants = Vec::with_capacity(command.participants.len());
    for (i, name) in command.participants.iter().enumerate() {
        participants.push(required_text(
            &format!("command.participants[{i}]"),
            name,
            100,
        )?);
    }
    Ok(vec![CaseEvent::LeaderActivity(LeaderActivityRecorded {
        leader,
        kind: command.kind,
        held_on: command.held_on,
        participants,
        summary,
    })])
}

/// Decides on classifying the case.
pub fn classify(
    state: &CaseState,
    command: &ClassifyCase,
    settings: &LifecycleSettings,
) -> Result<Vec<CaseEvent>, CommandError> {
    let category = required_text("command.category", &command.category, 50)?;
    if !settings.categories.contains(&category) {
        return Err(CommandError::invalid(
            "command.category",
            format!("类别须为：{}", settings.categories.join("、")),
        ));
    }
    let reason = optional_text("command.reason", command.reason.as_deref(), 500)?;
    if state.class.is_some() && reason.is_none() {
        return Err(CommandError::invalid(
            "command.reason",
            "重新分类须说明理由 (a reclassification needs a reason)",
        ));
    }
    Ok(vec![CaseEvent::Classified(CaseClassified {
        class: command.class,
        category,
        reason,
    })])
}

/// Decides on a resolution claim.
pub fn claim(state: &CaseState, command: &ClaimResolution) -> Result<Vec<CaseEvent>, CommandError> {
    if state.crossed_off_by.is_some() {
        return Err(refused(
            "本案已销号，不能再申请化解 (the case is crossed off)",
        ));
    }
    if let Some(open) = state.open_claim {
        return Err(refused(format!(
            "第{open}次化解申请尚在审核中 (a claim is under review)"
        )));
    }
    if state.leader.is_none() {
        return Err(CommandError::invalid(
            "command.case_id",
            "未落实包案领导的案件不能申请化解 (no owning leader)",
        ));
    }
    let summary = required_text("command.summary", &command.summary, 2000)?;
    if command.evidence.is_empty() {
        return Err(CommandError::invalid(
            "command.evidence",
            "须列明化解依据材料 (evidence required)",
        ));
    }
    let mut evidence = Vec::with_capacity(command.evidence.len());
    for (i, item) in command.evidence.iter().enumerate() {
        evidence.push(required_text(&format!("command.evidence[{i}]"), item, 200)?);
    }
    Ok(vec![CaseEvent::ResolutionClaimed(ResolutionClaimed {
        claim: state.claims + 1,
        ground: command.ground,
        summary,
        evidence,
    })])
}

/// Decides on a review of the open claim at one level. Only the next level of the chain may
/// review; the last level's acceptance also crosses the case off.
pub fn review(
    state: &CaseState,
    command: &ReviewClaim,
    settings: &LifecycleSettings,
) -> Result<Vec<CaseEvent>, CommandError> {
    let Some(claim) = state.open_claim else {
        return Err(refused(if state.crossed_off_by.is_some() {
            "本案已销号 (the case is crossed off)"
        } else {
            "没有待审核的化解申请 (no claim under review)"
        }));
    };
    let done = usize::try_from(state.accepted_levels).unwrap_or(usize::MAX);
    let Some(next) = settings.review_chain.get(done).copied() else {
        return Err(refused("审核链已完成 (the review chain is complete)"));
    };
    if command.level != next {
        return Err(CommandError::invalid(
            "command.level",
            format!(
                "本申请应由{}审核，不能由{}审核 (wrong review level)",
                next.label(),
                command.level.label()
            ),
        ));
    }
    let reasons = optional_text("command.reasons", command.reasons.as_deref(), 2000)?;
    if !command.accept {
        let Some(reasons) = reasons else {
            return Err(CommandError::invalid(
                "command.reasons",
                "退回须说明理由 (sending back needs reasons)",
            ));
        };
        return Ok(vec![CaseEvent::ClaimSentBack(ClaimSentBack {
            claim,
            level: next,
            reasons,
        })]);
    }
    let mut events = vec![CaseEvent::ClaimAccepted(ClaimAccepted {
        claim,
        level: next,
        opinion: reasons,
    })];
    if done + 1 == settings.review_chain.len() {
        events.push(CaseEvent::CrossedOff(CaseCrossedOff { claim }));
    }
    Ok(events)
}

fn not_after_today(field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), CommandError> {
    crate::validate::date(field, date, zhzj_proto::dates::DateKind::Happened, today)
}

/// Decides on recording a new petition; a crossed-off case is reopened (回潮).
pub fn record_petition(
    state: &CaseState,
    command: &RecordPetition,
    today: NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    not_after_today("command.received_on", command.received_on, today)?;
    let summary = required_text("command.summary", &command.summary, 2000)?;
    let mut events = vec![CaseEvent::PetitionRecorded(PetitionRecorded {
        received_on: command.received_on,
        channel: command.channel,
        summary,
        repeat_count: state.repeat_count + 1,
    })];
    // After 复核 the matter is concluded (终结): the petition counts, but is not accepted again.
    if let Some(claim) = state.crossed_off_by.filter(|_| !state.concluded) {
        events.push(CaseEvent::Reopened(CaseReopened {
            crossed_off_by_claim: claim,
            relapse_count: state.relapses + 1,
        }));
    }
    Ok(events)
}

/// Decides on recording satisfaction; there must have been a reply (a resolution claim).
pub fn rate(
    state: &CaseState,
    command: &RateSatisfaction,
    today: NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    if state.claims == 0
        && state
            .procedure
            .is_none_or(|(step, _)| step < ProcedureStep::Replied)
    {
        return Err(refused(
            "尚未答复（没有处理意见或化解申请），不能评价满意度 (no reply to rate yet)",
        ));
    }
    not_after_today("command.rated_on", command.rated_on, today)?;
    let rated_by = required_text("command.rated_by", &command.rated_by, 100)?;
    Ok(vec![CaseEvent::SatisfactionRated(SatisfactionRated {
        rating: command.rating,
        rated_on: command.rated_on,
        rated_by,
    })])
}

/// Longest hearing a second review may record (days not counted in its limit).
pub const MAX_HEARING_DAYS: u32 = 90;

/// Decides on recording a step of the statutory procedure. The steps come in the order of the
/// 条例: notice of acceptance, the reply (办结), then on the petitioner's request a first review
/// (复查) and its answer, a second review (复核), hearings during it, and its answer, which
/// concludes the matter (终结). A request for a review must fall within the petitioner's 30 days
/// (counted on the shipped holiday calendar: the petitioner's window is statutory, never an
/// internal limit).
pub fn record_procedure_step(
    state: &CaseState,
    command: &RecordProcedureStep,
    today: NaiveDate,
) -> Result<Vec<CaseEvent>, CommandError> {
    use zhzj_deadlines::{HolidayCalendar, Limits, StatutoryStep};
    not_after_today("command.on", command.on, today)?;
    let summary = required_text("command.summary", &command.summary, 2000)?;
    let last = state.procedure.map(|(step, _)| step);
    if state.concluded {
        return Err(refused("本案已复核终结 (the matter is concluded)"));
    }
    let follows = match command.step {
        ProcedureStep::AcceptanceNotified => last.is_none(),
        ProcedureStep::Replied => matches!(last, None | Some(ProcedureStep::AcceptanceNotified)),
        ProcedureStep::FirstReviewRequested => last == Some(ProcedureStep::Replied),
        ProcedureStep::FirstReviewAnswered => last == Some(ProcedureStep::FirstReviewRequested),
        ProcedureStep::SecondReviewRequested => last == Some(ProcedureStep::FirstReviewAnswered),
        ProcedureStep::HearingHeld | ProcedureStep::SecondReviewAnswered => matches!(
            last,
            Some(ProcedureStep::SecondReviewRequested | ProcedureStep::HearingHeld)
        ),
    };
    if !follows {
        return Err(refused(format!(
            "“{}”不能在{}之后记录 (out of order)",
            command.step.label(),
            last.map_or("立案", ProcedureStep::label)
        )));
    }
    if let Some((step, on)) = state.procedure {
        if command.on < on {
            return Err(CommandError::invalid(
                "command.on",
                format!(
                    "日期早于上一环节“{}”的 {on} (before the step before it)",
                    step.label()
                ),
            ));
        }
        let window = match command.step {
            ProcedureStep::FirstReviewRequested => Some(StatutoryStep::FirstReviewRequest),
            ProcedureStep::SecondReviewRequested => Some(StatutoryStep::SecondReviewRequest),
            _ => None,
        };
        if let Some(window) = window {
            let closes = Limits::statutory().deadline(HolidayCalendar::shipped(), window, on);
            if command.on > closes {
                return Err(CommandError::invalid(
                    "command.on",
                    format!(
                        "已超过{}（{closes} 截止），不予受理 (the request window closed)",
                        window.label()
                    ),
                ));
            }
        }
    }
    let hearing_days = match (command.step, command.hearing_days) {
        (ProcedureStep::HearingHeld, Some(days)) if (1..=MAX_HEARING_DAYS).contains(&days) => days,
        (ProcedureStep::HearingHeld, _) => {
            return Err(CommandError::invalid(
                "command.hearing_days",
                format!("听证须注明所用天数（1 至 {MAX_HEARING_DAYS} 日）"),
            ));
        }
        (_, Some(_)) => {
            return Err(CommandError::invalid(
                "command.hearing_days",
                "只有听证记录天数 (only a hearing has days)",
            ));
        }
        (_, None) => 0,
    };
    Ok(vec![CaseEvent::ProcedureStep(ProcedureStepRecorded {
        step: command.step,
        on: command.on,
        summary,
        hearing_days,
    })])
}

// How each lifecycle command is handled: what it looks up, then which decision above it takes.

impl HandledCommand for RecordActivity {
    fn action(&self) -> Action {
        Action::LeaderWork
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let leader = context
            .require_optional::<LeaderState>("command.leader_id", self.leader_id.as_deref())
            .await?
            .map(|leader| leader.to_ref());
        let today = context.today();
        context
            .decide_on_case(self.case_id, |state| {
                record_activity(state, self, leader.clone(), today)
            })
            .await
    }
}

impl HandledCommand for ExtendHandling {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        context
            .decide_on_case(self.case_id, |state| extend_handling(state, self))
            .await
    }
}

impl HandledCommand for ClassifyCase {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let settings = context.settings();
        context
            .decide_on_case(self.case_id, |state| classify(state, self, &settings))
            .await
    }
}

impl HandledCommand for ClaimResolution {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        context
            .decide_on_case(self.case_id, |state| claim(state, self))
            .await
    }
}

impl HandledCommand for ReviewClaim {
    fn action(&self) -> Action {
        Action::Review(self.level)
    }
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let settings = context.settings();
        context
            .decide_on_case(self.case_id, |state| review(state, self, &settings))
            .await
    }
}

impl HandledCommand for RecordPetition {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let today = context.today();
        context
            .decide_on_case(self.case_id, |state| record_petition(state, self, today))
            .await
    }
}

impl HandledCommand for RateSatisfaction {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let today = context.today();
        context
            .decide_on_case(self.case_id, |state| rate(state, self, today))
            .await
    }
}

impl HandledCommand for RecordProcedureStep {
    fn case_id(&self) -> Option<Uuid> {
        Some(self.case_id)
    }
    async fn handle(&self, context: &Context<'_>) -> Result<CommandAccepted, CommandError> {
        let today = context.today();
        context
            .decide_on_case(self.case_id, |state| {
                record_procedure_step(state, self, today)
            })
            .await
    }
}

#[cfg(test)]
mod tests;
