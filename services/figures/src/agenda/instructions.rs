//! The instructions of a unit's earlier meetings (交办事项) on an agenda: each with its feedback as
//! it stood at the meeting, and how many were open and overdue then and a week before.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use zhzj_proto::{CampaignEvent, DomainEvent};
use zhzj_store::china_date;

use super::{AgendaRequest, InstructionRow};
use crate::archive::ArchivedEvent;

/// The rows of the instructions of the unit's earlier meetings still worth reporting at the one
/// held at `at`, with (now, a week before) counts of the open ones and of the overdue ones.
pub(super) fn of_earlier_meetings(
    events: &[ArchivedEvent],
    request: &AgendaRequest,
    at: DateTime<Utc>,
    week_ago: DateTime<Utc>,
) -> (Vec<InstructionRow>, (usize, usize), (usize, usize)) {
    let today = china_date(at);
    let issued = earlier_instructions(events, &request.unit.id, &request.meeting_id, at);
    let (open_now, overdue_now) = instruction_counts(&issued, at);
    let (open_before, overdue_before) = instruction_counts(&issued, week_ago);
    let rows = issued
        .into_iter()
        .filter_map(|i| {
            let known: Vec<_> = i
                .feedback
                .iter()
                .filter(|(when, _, _)| *when <= at)
                .collect();
            let latest = known.last().map(|(_, text, on)| (text.clone(), *on));
            // Answered before the week: reported at an earlier meeting already.
            if let Some((when, _, _)) = known.last()
                && *when <= week_ago
            {
                return None;
            }
            let (status, label) = match (&latest, i.feedback_due_on < today) {
                (Some(_), _) => ("answered", "已反馈"),
                (None, true) => ("overdue", "逾期未反馈"),
                (None, false) => ("open", "未反馈"),
            };
            Some(InstructionRow {
                meeting_id: i.meeting_id,
                week: i.week,
                number: i.number,
                case_id: i.case_id,
                unit: i.unit,
                leader: i.leader,
                text: i.text,
                feedback_due_on: i.feedback_due_on,
                feedback: latest.as_ref().map(|(text, _)| text.clone()),
                feedback_on: latest.map(|(_, on)| on),
                status: status.to_owned(),
                status_label: label.to_owned(),
            })
        })
        .collect();
    (rows, (open_now, open_before), (overdue_now, overdue_before))
}

/// An instruction as the archive has it.
struct IssuedInstruction {
    meeting_id: String,
    week: String,
    issued_at: DateTime<Utc>,
    number: u32,
    case_id: Option<String>,
    unit: Option<String>,
    leader: Option<String>,
    text: String,
    feedback_due_on: NaiveDate,
    /// Feedback with the time it was recorded.
    feedback: Vec<(DateTime<Utc>, String, NaiveDate)>,
}

/// The instructions of the unit's meetings held before `held_at`.
fn earlier_instructions(
    events: &[ArchivedEvent],
    unit_id: &str,
    meeting_id: &str,
    held_at: DateTime<Utc>,
) -> Vec<IssuedInstruction> {
    let mut weeks: HashMap<&str, String> = HashMap::new();
    let mut issued: Vec<IssuedInstruction> = Vec::new();
    for archived in events {
        let DomainEvent::Campaign(event) = &archived.event else {
            continue;
        };
        let id = archived.aggregate_id.as_str();
        match event {
            CampaignEvent::MeetingHeld(e) => {
                if e.unit.id == unit_id && id != meeting_id && e.held_at < held_at {
                    weeks.insert(id, e.week.clone());
                }
            }
            CampaignEvent::InstructionIssued(e) => {
                if let Some(week) = weeks.get(id) {
                    issued.push(IssuedInstruction {
                        meeting_id: id.to_owned(),
                        week: week.clone(),
                        issued_at: archived.occurred_at,
                        number: e.number,
                        case_id: e.case_id.map(|c| c.to_string()),
                        unit: e.unit.as_ref().map(|u| u.name.clone()),
                        leader: e.leader.as_ref().map(|l| l.name.clone()),
                        text: e.text.clone(),
                        feedback_due_on: e.feedback_due_on,
                        feedback: Vec::new(),
                    });
                }
            }
            CampaignEvent::FeedbackRecorded(e) => {
                if let Some(instruction) = issued
                    .iter_mut()
                    .find(|i| i.meeting_id == id && i.number == e.number)
                {
                    instruction
                        .feedback
                        .push((archived.occurred_at, e.text.clone(), e.on));
                }
            }
            CampaignEvent::BulletinPublished(_) | CampaignEvent::PushLaunched(_) => {}
        }
    }
    issued
}

/// Open and overdue counts of instructions as they stood at `at`.
fn instruction_counts(instructions: &[IssuedInstruction], at: DateTime<Utc>) -> (usize, usize) {
    let today = china_date(at);
    let open: Vec<&IssuedInstruction> = instructions
        .iter()
        .filter(|i| i.issued_at <= at && i.feedback.iter().all(|(when, _, _)| *when > at))
        .collect();
    let overdue = open.iter().filter(|i| i.feedback_due_on < today).count();
    (open.len(), overdue)
}
