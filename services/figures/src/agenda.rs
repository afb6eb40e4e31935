//! The agenda of a weekly dispatch meeting (周调度), drawn from the event archive as it stood at
//! the meeting: new cases, cases crossed off and relapses in the week; cases overdue or due
//! within 7 days; owned cases whose leader logged no work for N days; claims waiting for review;
//! the instructions of earlier meetings with their feedback. Each section sets this week's count
//! beside last week's.
//!
//! "This week" is the 7 days up to the meeting, "last week" the 7 days before; a state (overdue,
//! idle, waiting) is counted at the meeting and 7 days earlier. Only events at or before the
//! meeting's log position are read — the cases, the meetings and the directory — so the agenda
//! is the same whenever it is regenerated.
//!
//! The agenda projection (`zhzj_projector::agenda_states`) keeps what each case shows with its
//! validity over positions and moments, so the case sections are indexed reads of the rows
//! valid at the two moments; the few cases whose events are stamped out of log order are folded
//! from the archive by the same rule ([`AgendaCaseFold`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use zhzj_deadlines::{Limits, StatutoryStep};
use zhzj_export::{Cell, Table};
use zhzj_projector::Projection;
use zhzj_projector::agenda_states::{AgendaCaseFold, AgendaStanding, flow_of};
use zhzj_proto::events::UnitRef;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{ReadStore, china_date};

use crate::FiguresError;
pub use crate::supervision::AgendaOrderRow;

mod instructions;
mod projected;
use crate::archive::{ArchivedEvent, events_of_on, events_up_to};
use crate::supervision::open_orders;

/// Days a coming deadline is flagged ahead.
const DUE_SOON_DAYS: i64 = 7;

/// What an agenda is drawn for.
#[derive(Debug, Clone)]
pub struct AgendaRequest {
    /// The meeting.
    pub meeting_id: String,
    /// Its title.
    pub title: String,
    /// Its ISO week.
    pub week: String,
    /// The unit whose meeting it is (its cases, and those of the units under it as the
    /// directory stood at the meeting, are on the agenda).
    pub unit: UnitRef,
    /// When it was held.
    pub held_at: DateTime<Utc>,
    /// The log position the agenda is drawn at.
    pub as_of_position: i64,
    /// Owned cases with no leader activity for this many days are listed.
    pub idle_days: i64,
    /// The limits deadlines are counted with.
    pub limits: Limits,
}

/// A case on the agenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AgendaRow {
    /// Case id.
    pub case_id: String,
    /// 案件编号.
    pub case_number: String,
    /// 诉求.
    pub matter: String,
    /// 区.
    pub district: String,
    /// 镇街.
    pub town: Option<String>,
    /// 包案领导.
    pub leader: Option<String>,
    /// The date that put it here (registered, crossed off, due, last activity …).
    pub date: Option<NaiveDate>,
    /// Why it is here.
    pub detail: String,
}

/// One section of the agenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AgendaSection {
    /// `new_cases`, `crossed_off`, `relapses`, `overdue`, `due_soon`, `idle_owned`,
    /// `awaiting_review`.
    pub key: String,
    /// Its title (新增案件 …).
    pub title: String,
    /// This week's count.
    pub this_week: usize,
    /// Last week's count.
    pub last_week: usize,
    /// This week's cases.
    pub rows: Vec<AgendaRow>,
}

/// An instruction of an earlier meeting, with its feedback as of this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct InstructionRow {
    /// The meeting it was issued at.
    pub meeting_id: String,
    /// That meeting's week.
    pub week: String,
    /// Its number there.
    pub number: u32,
    /// The case it is about.
    pub case_id: Option<String>,
    /// The unit it went to.
    pub unit: Option<String>,
    /// The leader it went to.
    pub leader: Option<String>,
    /// What is to be done.
    pub text: String,
    /// Feedback due.
    pub feedback_due_on: NaiveDate,
    /// The latest feedback.
    pub feedback: Option<String>,
    /// Its date.
    pub feedback_on: Option<NaiveDate>,
    /// `answered` (已反馈), `open` (未反馈) or `overdue` (逾期未反馈).
    pub status: String,
    /// 已反馈, 未反馈 or 逾期未反馈.
    pub status_label: String,
}

/// A meeting's agenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Agenda {
    /// The meeting.
    pub meeting_id: String,
    /// Its title.
    pub title: String,
    /// Its ISO week.
    pub week: String,
    /// Its unit.
    pub unit: UnitRef,
    /// When it was held.
    pub held_at: DateTime<Utc>,
    /// The log position the agenda is drawn at.
    pub as_of_position: i64,
    /// The idle threshold used, in days.
    pub idle_days: i64,
    /// The case sections.
    pub sections: Vec<AgendaSection>,
    /// Instructions of earlier meetings of the unit still open at this one, or answered in the
    /// week before it; open ones past their deadline are flagged `overdue`.
    pub instructions: Vec<InstructionRow>,
    /// Open instructions at this meeting and 7 days before.
    pub open_instructions: (usize, usize),
    /// Of those, past their feedback deadline.
    pub overdue_instructions: (usize, usize),
    /// Supervision orders issued by or to the unit's area still open at the meeting (not
    /// accepted), the overdue ones flagged.
    pub supervision: Vec<AgendaOrderRow>,
}

/// What an agenda row names of a case.
struct CaseName {
    case_number: String,
    matter: String,
    district: String,
    town: Option<String>,
}

impl CaseName {
    fn of(fold: &AgendaCaseFold) -> Self {
        Self {
            case_number: fold.case_number.clone(),
            matter: fold.matter.clone(),
            district: fold.district.name.clone(),
            town: fold.town.as_ref().map(|t| t.name.clone()),
        }
    }

    fn row(
        &self,
        case_id: &str,
        leader: Option<String>,
        date: Option<NaiveDate>,
        detail: String,
    ) -> AgendaRow {
        AgendaRow {
            case_id: case_id.to_owned(),
            case_number: self.case_number.clone(),
            matter: self.matter.clone(),
            district: self.district.clone(),
            town: self.town.clone(),
            leader,
            date,
            detail,
        }
    }
}

/// The flow sections' keys, in the agenda's order; the four state sections follow them.
const FLOW_KEYS: [&str; 3] = ["new_cases", "crossed_off", "relapses"];

/// Where the state sections start among the case sections.
const FIRST_STATE: usize = FLOW_KEYS.len();

/// One case section being drawn: this week's rows (each with the log position that orders a
/// flow section) and last week's count.
#[derive(Debug, Default)]
struct SectionDraft {
    rows: Vec<(i64, AgendaRow)>,
    last: usize,
}

/// The seven case sections being drawn: new cases, crossed off, relapses (flows, in log
/// order); overdue, due within 7 days, idle owned cases, claims waiting (states, by date and
/// case number). Drafts of different cases merge.
#[derive(Debug, Default)]
struct CaseSections([SectionDraft; 7]);

impl CaseSections {
    fn merge(&mut self, other: CaseSections) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.rows.extend(theirs.rows);
            mine.last += theirs.last;
        }
    }

    fn into_sections(self, idle_days: i64) -> Vec<AgendaSection> {
        let titles = [
            ("new_cases", "新增案件".to_owned()),
            ("crossed_off", "销号案件".to_owned()),
            ("relapses", "回潮案件".to_owned()),
            ("overdue", "超期案件".to_owned()),
            ("due_soon", format!("{DUE_SOON_DAYS}日内到期案件")),
            (
                "idle_owned",
                format!("包案领导{idle_days}日以上未开展工作的案件"),
            ),
            ("awaiting_review", "待审核的化解申请".to_owned()),
        ];
        titles
            .into_iter()
            .zip(self.0)
            .enumerate()
            .map(|(index, ((key, title), mut draft))| {
                if index < FIRST_STATE {
                    // Stable: the events of one commit keep their order.
                    draft.rows.sort_by_key(|(position, _)| *position);
                } else {
                    draft.rows.sort_by(|(_, a), (_, b)| {
                        (a.date, &a.case_number).cmp(&(b.date, &b.case_number))
                    });
                }
                let rows: Vec<AgendaRow> = draft.rows.into_iter().map(|(_, row)| row).collect();
                AgendaSection {
                    key: key.to_owned(),
                    title,
                    this_week: rows.len(),
                    last_week: draft.last,
                    rows,
                }
            })
            .collect()
    }

    /// Lists a case in the state sections it stands in at `today`.
    fn list_states(
        &mut self,
        case_id: &str,
        name: &CaseName,
        standing: &AgendaStanding,
        today: NaiveDate,
        idle_days: i64,
    ) {
        for (draft, entry) in self.0[FIRST_STATE..]
            .iter_mut()
            .zip(state_entries(standing, today, idle_days))
        {
            if let Some((date, detail)) = entry {
                let row = name.row(case_id, standing.leader.clone(), Some(date), detail);
                draft.rows.push((0, row));
            }
        }
    }

    /// Counts a case in last week's state sections it stood in at `today`.
    fn count_states(&mut self, standing: &AgendaStanding, today: NaiveDate, idle_days: i64) {
        for (draft, entry) in self.0[FIRST_STATE..]
            .iter_mut()
            .zip(state_entries(standing, today, idle_days))
        {
            draft.last += usize::from(entry.is_some());
        }
    }

    fn flow(&mut self, key: &str) -> Option<&mut SectionDraft> {
        let index = FLOW_KEYS.iter().position(|k| *k == key)?;
        self.0.get_mut(index)
    }
}

fn step_label(key: &str) -> &'static str {
    StatutoryStep::ALL
        .into_iter()
        .find(|step| step.key() == key)
        .map_or("期限", StatutoryStep::label)
}

/// The state sections a case standing so at `today` is listed in — overdue, due within 7
/// days, idle owned, claim waiting — each with the row's date and what it says. The
/// projection's reader counts last week's by the same rules in SQL ([`STATE_COUNTS`]).
fn state_entries(
    standing: &AgendaStanding,
    today: NaiveDate,
    idle_days: i64,
) -> [Option<(NaiveDate, String)>; 4] {
    let mut entries = [None, None, None, None];
    if let Some((due, step)) = &standing.due {
        let days = (*due - today).num_days();
        if days < 0 {
            entries[0] = Some((*due, format!("{}已超期{}天", step_label(step), -days)));
        } else if days <= DUE_SOON_DAYS {
            entries[1] = Some((*due, format!("{}还剩{days}天", step_label(step))));
        }
    }
    if let Some((since, worked)) = standing.idle {
        let days = (today - since).num_days();
        if days > idle_days {
            entries[2] = Some((
                since,
                if worked {
                    format!("{days}天未开展包案工作")
                } else {
                    format!("包案{days}天未开展工作")
                },
            ));
        }
    }
    if let Some((claim, since, passed)) = standing.claim {
        entries[3] = Some((since, format!("第{claim}次化解申请，已通过{passed}级审核")));
    }
    entries
}

/// Folds the case events that happened at or before `until`.
fn fold_cases(
    events: &[ArchivedEvent],
    until: DateTime<Utc>,
    limits: &Limits,
) -> BTreeMap<String, AgendaCaseFold> {
    let mut cases: BTreeMap<String, AgendaCaseFold> = BTreeMap::new();
    for archived in events.iter().filter(|e| e.occurred_at <= until) {
        let DomainEvent::Case(event) = &archived.event else {
            continue;
        };
        if let CaseEvent::Registered(e) = event {
            cases.insert(archived.aggregate_id.clone(), AgendaCaseFold::registered(e));
        }
        if let Some(case) = cases.get_mut(&archived.aggregate_id) {
            case.apply(event, archived.occurred_at, limits);
        }
    }
    cases
}

/// The case sections drawn from the events of the cases in `events` (every case, or only those
/// the projection cannot answer for).
fn case_sections_from(
    events: &[ArchivedEvent],
    request: &AgendaRequest,
    units: &[String],
) -> CaseSections {
    let at = request.held_at;
    let week_ago = at - Duration::days(7);
    let two_weeks_ago = at - Duration::days(14);
    let now = fold_cases(events, at, &request.limits);
    let before = fold_cases(events, week_ago, &request.limits);
    let mut sections = CaseSections::default();
    for (case_id, case) in now.iter().filter(|(_, c)| c.in_scope(units)) {
        let standing = case.standing();
        let name = CaseName::of(case);
        sections.list_states(case_id, &name, &standing, china_date(at), request.idle_days);
    }
    for case in before.values().filter(|c| c.in_scope(units)) {
        sections.count_states(&case.standing(), china_date(week_ago), request.idle_days);
    }
    for archived in events
        .iter()
        .filter(|e| e.occurred_at > two_weeks_ago && e.occurred_at <= at)
    {
        let DomainEvent::Case(event) = &archived.event else {
            continue;
        };
        let Some((key, detail)) = flow_of(event) else {
            continue;
        };
        let Some(case) = now
            .get(&archived.aggregate_id)
            .filter(|c| c.in_scope(units))
        else {
            continue;
        };
        let Some(draft) = sections.flow(key) else {
            continue;
        };
        if archived.occurred_at > week_ago {
            let leader = case.leader.as_ref().map(|l| l.name.clone());
            let date = Some(china_date(archived.occurred_at));
            let row = CaseName::of(case).row(&archived.aggregate_id, leader, date, detail);
            draft.rows.push((archived.position, row));
        } else {
            draft.last += 1;
        }
    }
    sections
}

/// `root` and every unit under it, from the directory events in `events`.
fn subtree_as_of(events: &[ArchivedEvent], root: &str) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for archived in events {
        if let DomainEvent::Directory(zhzj_proto::DirectoryEvent::UnitAdded(e)) = &archived.event
            && let Some(parent) = &e.parent_id
        {
            children
                .entry(parent.as_str())
                .or_default()
                .push(&e.unit_id);
        }
    }
    let mut units = vec![root.to_owned()];
    let mut next = 0;
    while let Some(unit) = units.get(next).cloned() {
        next += 1;
        for child in children.get(unit.as_str()).into_iter().flatten() {
            if !units.iter().any(|u| u == child) {
                units.push((*child).to_owned());
            }
        }
    }
    units
}

/// Draws the agenda of a meeting: from the agenda projection when it has reached the meeting's
/// position ([`agenda_from_projection`]), else from the whole archive
/// ([`agenda_from_archive`]).
pub async fn agenda(store: &ReadStore, request: &AgendaRequest) -> Result<Agenda, FiguresError> {
    if crate::facts::reached(store, Projection::AGENDA, request.as_of_position).await? {
        agenda_from_projection(store, request).await
    } else {
        agenda_from_archive(store, request).await
    }
}

/// Draws the agenda of a meeting from every archived event up to its position.
pub async fn agenda_from_archive(
    store: &ReadStore,
    request: &AgendaRequest,
) -> Result<Agenda, FiguresError> {
    let events = events_up_to(
        store,
        &["case", "meeting", "unit", "supervision"],
        request.as_of_position,
    )
    .await?;
    agenda_off_the_runtime(events, request).await
}

/// [`agenda_from`] where it holds no worker of the async runtime ([`crate::off_the_runtime`]): a
/// June meeting of a province folds the events of tens of thousands of open cases.
async fn agenda_off_the_runtime(
    events: Vec<ArchivedEvent>,
    request: &AgendaRequest,
) -> Result<Agenda, FiguresError> {
    let request = request.clone();
    crate::off_the_runtime(move || agenda_from(&events, &request)).await
}

/// Draws the agenda of a meeting from the agenda projection (`agenda_states`, `agenda_flows`:
/// the cases as they stood at the meeting and a week before, as of its position), the
/// meetings and the directory; the cases whose events are stamped out of log order are folded
/// from the archive. The projection must have reached the meeting's position. Tests compare it
/// with [`agenda_from_archive`] at every position.
pub async fn agenda_from_projection(
    store: &ReadStore,
    request: &AgendaRequest,
) -> Result<Agenda, FiguresError> {
    let position = request.as_of_position;
    let mut events = events_up_to(store, &["meeting", "unit", "supervision"], position).await?;
    let units = subtree_as_of(&events, &request.unit.id);
    let mut conn = store.pool().acquire().await?;
    let irregular: Vec<String> = sqlx::query_scalar(IRREGULAR_CASES)
        .fetch_all(&mut *conn)
        .await?;
    let irregular_events = events_of_on(&mut conn, "case", &irregular, &[], position).await?;
    drop(conn);
    let mut sections = projected::case_sections(store, request, &units).await?;
    events.extend(irregular_events);
    events.sort_by_key(|e| e.position);
    let request = request.clone();
    crate::off_the_runtime(move || {
        sections.merge(case_sections_from(&events, &request, &units));
        agenda_with(sections, &events, &request, &units)
    })
    .await
}

/// The cases the agenda projection cannot answer for: their events are stamped out of log
/// order, so no row is valid at a (position, moment) as the fold sees it.
const IRREGULAR_CASES: &str = "SELECT case_id FROM agenda_cases WHERE irregular = 1";

/// [`agenda`] over events already read.
pub fn agenda_from(events: &[ArchivedEvent], request: &AgendaRequest) -> Agenda {
    let units = subtree_as_of(events, &request.unit.id);
    let sections = case_sections_from(events, request, &units);
    agenda_with(sections, events, request, &units)
}

/// The agenda from its case sections, with the instructions of earlier meetings and the
/// supervision orders from `events`.
fn agenda_with(
    sections: CaseSections,
    events: &[ArchivedEvent],
    request: &AgendaRequest,
    units: &[String],
) -> Agenda {
    let at = request.held_at;
    let week_ago = at - Duration::days(7);
    let (instructions, open_instructions, overdue_instructions) =
        instructions::of_earlier_meetings(events, request, at, week_ago);
    Agenda {
        meeting_id: request.meeting_id.clone(),
        title: request.title.clone(),
        week: request.week.clone(),
        unit: request.unit.clone(),
        held_at: at,
        as_of_position: request.as_of_position,
        idle_days: request.idle_days,
        sections: sections.into_sections(request.idle_days),
        instructions,
        open_instructions,
        overdue_instructions,
        supervision: open_orders(events, units, at),
    }
}

impl Agenda {
    /// The agenda as spreadsheet tables: an overview (本周 beside 上周), a sheet per section
    /// and the instructions.
    pub fn tables(&self) -> Vec<Table> {
        let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut overview: Vec<Vec<Cell>> = self
            .sections
            .iter()
            .map(|s| {
                vec![
                    Cell::from(s.title.clone()),
                    count(s.this_week),
                    count(s.last_week),
                ]
            })
            .collect();
        overview.push(vec![
            Cell::from("未反馈的调度指令"),
            count(self.open_instructions.0),
            count(self.open_instructions.1),
        ]);
        overview.push(vec![
            Cell::from("其中逾期未反馈"),
            count(self.overdue_instructions.0),
            count(self.overdue_instructions.1),
        ]);
        let mut tables = vec![Table {
            name: "议程概览".into(),
            headers: vec!["事项".into(), "本周".into(), "上周".into()],
            rows: overview,
        }];
        for section in &self.sections {
            tables.push(Table {
                name: section.title.chars().take(31).collect(),
                headers: ["案件编号", "诉求", "区", "镇街", "包案领导", "日期", "说明"]
                    .map(str::to_owned)
                    .to_vec(),
                rows: section
                    .rows
                    .iter()
                    .map(|r| {
                        vec![
                            Cell::from(r.case_number.clone()),
                            Cell::from(r.matter.clone()),
                            Cell::from(r.district.clone()),
                            Cell::from(r.town.clone()),
                            Cell::from(r.leader.clone()),
                            Cell::from(r.date),
                            Cell::from(r.detail.clone()),
                        ]
                    })
                    .collect(),
            });
        }
        tables.push(Table {
            name: "调度指令".into(),
            headers: [
                "会议周次",
                "编号",
                "承办单位",
                "承办领导",
                "指令内容",
                "反馈期限",
                "状态",
                "反馈情况",
                "反馈日期",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: self
                .instructions
                .iter()
                .map(|i| {
                    vec![
                        Cell::from(i.week.clone()),
                        Cell::Int(i64::from(i.number)),
                        Cell::from(i.unit.clone()),
                        Cell::from(i.leader.clone()),
                        Cell::from(i.text.clone()),
                        Cell::from(i.feedback_due_on),
                        Cell::from(i.status_label.clone()),
                        Cell::from(i.feedback.clone()),
                        Cell::from(i.feedback_on),
                    ]
                })
                .collect(),
        });
        tables.push(Table {
            name: "督办".into(),
            headers: [
                "级别",
                "督办单位",
                "承办单位",
                "督办事项",
                "反馈期限",
                "状态",
                "逾期",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: self
                .supervision
                .iter()
                .map(|o| {
                    vec![
                        Cell::from(o.level.clone()),
                        Cell::from(o.issuer.clone()),
                        Cell::from(o.addressee.clone()),
                        Cell::from(o.matter.clone()),
                        Cell::from(o.answer_due_on),
                        Cell::from(o.status_label.clone()),
                        Cell::from(if o.overdue { "逾期未反馈" } else { "" }),
                    ]
                })
                .collect(),
        });
        tables
    }

    /// The workbook's creation time: the meeting's, so a regenerated agenda is byte-identical.
    pub fn created(&self) -> chrono::NaiveDateTime {
        self.held_at.naive_utc()
    }
}

#[cfg(test)]
mod tests;
