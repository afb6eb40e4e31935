//! The campaign rhythm of the demo: weekly dispatch meetings, monthly bulletins, the quarterly push.

use crate::clock::*;
use crate::directory::*;
use crate::rng::*;
use crate::tables::*;
use crate::{DemoCase, DemoStep};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use zhzj_proto::Command;
use zhzj_proto::commands::{
    HoldMeeting, IssueInstruction, LaunchPush, PublishBulletin, PushTargetRequest,
    RecordInstructionFeedback, RegisterCase,
};

/// Where and when a demo case was registered.
pub(crate) fn registration_of(case: &DemoCase) -> Option<(&RegisterCase, DateTime<Utc>)> {
    let first = case.steps.first()?;
    match &first.command {
        Command::RegisterCase(c) => Some((c, first.at)),
        _ => None,
    }
}

pub(crate) fn campaign_step(label: &str, at: DateTime<Utc>, command: Command) -> DemoStep {
    DemoStep {
        at,
        command_id: demo_uuid(&format!("demo:campaign:{label}")),
        command,
    }
}

/// Meetings, instructions and feedback, bulletins and the push, all before `now`.
pub(crate) fn campaign_steps(now: DateTime<Utc>, cases: &[DemoCase]) -> Vec<DemoStep> {
    let mut steps = meeting_steps(now, cases);
    steps.extend(bulletin_steps(now));
    steps.extend(push_steps(now, cases));
    steps.extend(crate::supervision::supervision_steps(now, cases));
    steps.sort_by_key(|step| step.at);
    steps
}

/// 思明区's meetings of the last three Mondays, with their instructions and feedback.
fn meeting_steps(now: DateTime<Utc>, cases: &[DemoCase]) -> Vec<DemoStep> {
    let today = china_date(now);
    let mut steps = Vec::new();
    // The last three Mondays at 10:00 before now.
    let last_monday = today
        - TimeDelta::days(i64::from(today.weekday().num_days_from_monday()))
        - if at_china_time(today, 10 * 60) > now && today.weekday() == chrono::Weekday::Mon {
            TimeDelta::days(7)
        } else {
            TimeDelta::zero()
        };
    let siming = &DISTRICTS[0];
    let siming_id = district_unit_id(siming);
    for (week, monday) in (0..3)
        .rev()
        .map(|k| last_monday - TimeDelta::days(7 * k))
        .enumerate()
    {
        let held = at_china_time(monday, 10 * 60);
        steps.push(campaign_step(
            &format!("meeting:{week}"),
            held,
            Command::HoldMeeting(HoldMeeting {
                unit_id: siming_id.clone(),
                title: None,
            }),
        ));
        let meeting_id = zhzj_cases::campaign::meeting_id(&siming_id, monday);
        // An instruction about one of 思明's cases to its town, and one to a district leader.
        let case = cases
            .iter()
            .filter_map(registration_of)
            .filter(|(c, at)| c.district_id == siming_id && c.town_id.is_some() && *at < held)
            .nth(week * 3);
        if let Some((c, _)) = case {
            steps.push(campaign_step(
                &format!("meeting:{week}:instruction:1"),
                held,
                Command::IssueInstruction(IssueInstruction {
                    meeting_id: meeting_id.clone(),
                    case_id: c.case_id,
                    unit_id: c.town_id.clone(),
                    leader_id: None,
                    text: "本周内约访信访人，核实诉求并报送化解方案".to_owned(),
                    feedback_due_on: monday + TimeDelta::days(4),
                }),
            ));
        }
        steps.push(campaign_step(
            &format!("meeting:{week}:instruction:2"),
            held,
            Command::IssueInstruction(IssueInstruction {
                meeting_id: meeting_id.clone(),
                case_id: None,
                unit_id: None,
                leader_id: district_leader_ids(siming).first().cloned(),
                text: "牵头召开征地拆迁类积案专题会，逐案明确化解路径".to_owned(),
                feedback_due_on: monday + TimeDelta::days(11),
            }),
        ));
        // The first instruction of all but the latest meeting is answered two days later.
        let answered = at_china_time(monday + TimeDelta::days(2), 15 * 60);
        if week < 2 && case.is_some() && answered < now {
            steps.push(campaign_step(
                &format!("meeting:{week}:feedback:1"),
                answered,
                Command::RecordInstructionFeedback(RecordInstructionFeedback {
                    meeting_id,
                    number: 1,
                    text: "已约访信访人，诉求已核实，化解方案已报区联席办".to_owned(),
                    on: monday + TimeDelta::days(2),
                }),
            ));
        }
    }
    steps
}

/// The bulletins of the last two complete months.
fn bulletin_steps(now: DateTime<Utc>) -> Vec<DemoStep> {
    let today = china_date(now);
    let mut steps = Vec::new();
    // The bulletins of the last two complete months; in the first minutes of a month, when the
    // one just over cannot be published yet, the two before them.
    let this_month = today.with_day(1).unwrap_or(today);
    let month_back = |back: u32| this_month.checked_sub_months(chrono::Months::new(back));
    let latest = if month_back(1).and_then(|m| bulletin_time(m, now)).is_some() {
        1
    } else {
        2
    };
    for back in [latest + 1, latest] {
        let Some((month, published)) =
            month_back(back).and_then(|m| Some((m, bulletin_time(m, now)?)))
        else {
            continue;
        };
        let label = format!("{}-{:02}", month.year(), month.month());
        steps.push(campaign_step(
            &format!("bulletin:{label}"),
            published,
            Command::PublishBulletin(PublishBulletin { month: label }),
        ));
    }
    steps
}

/// This quarter's push.
fn push_steps(now: DateTime<Utc>, cases: &[DemoCase]) -> Vec<DemoStep> {
    let today = china_date(now);
    let mut steps = Vec::new();
    // This quarter's push: twelve cases then on the list, half of each district's to resolve.
    let quarter = (today.month() - 1) / 3 + 1;
    let quarter_start = NaiveDate::from_ymd_opt(today.year(), 3 * quarter - 2, 1).unwrap_or(today);
    let launched =
        at_china_time(quarter_start + TimeDelta::days(1), 10 * 60).min(now - TimeDelta::hours(2));
    let hard: Vec<&RegisterCase> = cases
        .iter()
        .filter_map(registration_of)
        .filter(|(_, at)| *at < launched)
        .map(|(c, _)| c)
        .take(12)
        .collect();
    let mut districts: Vec<String> = hard.iter().map(|c| c.district_id.clone()).collect();
    districts.sort();
    districts.dedup();
    if !hard.is_empty() {
        steps.push(campaign_step(
            "push",
            launched,
            Command::LaunchPush(LaunchPush {
                quarter: format!("{}-Q{quarter}", today.year()),
                title: None,
                case_ids: hard.iter().filter_map(|c| c.case_id).collect(),
                targets: districts
                    .into_iter()
                    .map(|unit_id| PushTargetRequest {
                        unit_id,
                        cases: None,
                        rate_percent: Some(50),
                    })
                    .collect(),
            }),
        ));
    }
    steps
}

/// When the bulletin of the month beginning on `first` is published: on the 3rd of the next month
/// at 09:00, or [`BULLETIN_LEAD_MINUTES`] before `now` while that is still ahead — but never
/// before the month is over in China, which the service refuses. None when the month ended less
/// than that long ago.
pub(crate) fn bulletin_time(first: NaiveDate, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let usual = at_china_time(next + TimeDelta::days(2), 9 * 60);
    if usual < now {
        return Some(usual);
    }
    let early = now - TimeDelta::minutes(BULLETIN_LEAD_MINUTES);
    (early >= at_china_time(next, 0)).then_some(early)
}
