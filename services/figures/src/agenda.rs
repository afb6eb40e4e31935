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
//! Only the cases that can be on it are read: those open or with a running clock at either of
//! the two moments, or crossed off or reopened in the two weeks, as the figures projection
//! (`figure_states`, `figure_facts`) says — so its cost follows the open cases, not the history.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::Row;
use zhzj_deadlines::{Limits, StatutoryStep};
use zhzj_export::{Cell, Table};
use zhzj_projector::lifecycle::LifecycleRow;
use zhzj_proto::events::{
    CaseClassified, CaseCrossedOff, CaseRegistered, CaseReopened, ClaimAccepted, ClaimSentBack,
    EventData, HandlingExtended, LeaderActivityRecorded, LeaderAssigned, LeaderReassigned,
    LeaderRef, PetitionRecorded, ProcedureStepRecorded, ResolutionClaimed, SatisfactionRated,
    UnitRef,
};
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_store::{ReadStore, china_date};

use crate::FiguresError;
pub use crate::supervision::AgendaOrderRow;

mod instructions;
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

/// A case as it stood at some time.
#[derive(Debug, Clone)]
struct CaseFold {
    case_number: String,
    matter: String,
    district: UnitRef,
    town: Option<UnitRef>,
    leader: Option<LeaderRef>,
    leader_since: Option<NaiveDate>,
    /// Latest activity date per leader.
    activity: HashMap<String, NaiveDate>,
    lifecycle: LifecycleRow,
    /// The claim under review: its number, since when, levels passed.
    open_claim: Option<(u32, NaiveDate, u32)>,
}

impl CaseFold {
    fn row(&self, case_id: &str, date: Option<NaiveDate>, detail: String) -> AgendaRow {
        AgendaRow {
            case_id: case_id.to_owned(),
            case_number: self.case_number.clone(),
            matter: self.matter.clone(),
            district: self.district.name.clone(),
            town: self.town.as_ref().map(|t| t.name.clone()),
            leader: self.leader.as_ref().map(|l| l.name.clone()),
            date,
            detail,
        }
    }

    fn in_scope(&self, units: &[String]) -> bool {
        units.contains(&self.district.id)
            || self.town.as_ref().is_some_and(|t| units.contains(&t.id))
    }
}

/// Folds the case events that happened at or before `until`.
fn fold_cases(
    events: &[ArchivedEvent],
    until: DateTime<Utc>,
    limits: &Limits,
) -> BTreeMap<String, CaseFold> {
    let mut cases: BTreeMap<String, CaseFold> = BTreeMap::new();
    for archived in events.iter().filter(|e| e.occurred_at <= until) {
        let DomainEvent::Case(event) = &archived.event else {
            continue;
        };
        let day = china_date(archived.occurred_at);
        if let CaseEvent::Registered(e) = event {
            cases.insert(
                archived.aggregate_id.clone(),
                CaseFold {
                    case_number: e.case_number.clone(),
                    matter: e.matter.clone(),
                    district: e.district.clone(),
                    town: e.town.clone(),
                    leader: None,
                    leader_since: None,
                    activity: HashMap::new(),
                    lifecycle: LifecycleRow::default(),
                    open_claim: None,
                },
            );
        }
        let Some(case) = cases.get_mut(&archived.aggregate_id) else {
            continue;
        };
        case.lifecycle.apply(event, archived.occurred_at, limits);
        match event {
            CaseEvent::LeaderAssigned(e) => {
                case.leader = Some(e.leader.clone());
                case.leader_since = Some(day);
            }
            CaseEvent::LeaderReassigned(e) => {
                case.leader = Some(e.to.clone());
                case.leader_since = Some(day);
            }
            CaseEvent::LeaderActivity(e) => {
                let latest = case
                    .activity
                    .entry(e.leader.id.clone())
                    .or_insert(e.held_on);
                *latest = (*latest).max(e.held_on);
            }
            CaseEvent::ResolutionClaimed(e) => case.open_claim = Some((e.claim, day, 0)),
            CaseEvent::ClaimAccepted(_) => {
                if let Some(claim) = &mut case.open_claim {
                    claim.2 += 1;
                }
            }
            CaseEvent::ClaimSentBack(_) | CaseEvent::CrossedOff(_) => case.open_claim = None,
            _ => {}
        }
    }
    cases
}

/// The state sections at one time: overdue, due soon, idle owned cases, claims waiting.
struct StateSections {
    overdue: Vec<AgendaRow>,
    due_soon: Vec<AgendaRow>,
    idle: Vec<AgendaRow>,
    waiting: Vec<AgendaRow>,
}

fn step_label(key: &str) -> &'static str {
    StatutoryStep::ALL
        .into_iter()
        .find(|step| step.key() == key)
        .map_or("期限", StatutoryStep::label)
}

fn state_sections(
    cases: &BTreeMap<String, CaseFold>,
    units: &[String],
    today: NaiveDate,
    idle_days: i64,
) -> StateSections {
    let mut sections = StateSections {
        overdue: Vec::new(),
        due_soon: Vec::new(),
        idle: Vec::new(),
        waiting: Vec::new(),
    };
    for (case_id, case) in cases.iter().filter(|(_, c)| c.in_scope(units)) {
        if let Some((due, step)) = case.lifecycle.next_due() {
            let days = (due - today).num_days();
            if days < 0 {
                sections.overdue.push(case.row(
                    case_id,
                    Some(due),
                    format!("{}已超期{}天", step_label(step), -days),
                ));
            } else if days <= DUE_SOON_DAYS {
                sections.due_soon.push(case.row(
                    case_id,
                    Some(due),
                    format!("{}还剩{days}天", step_label(step)),
                ));
            }
        }
        if let Some(leader) = &case.leader
            && case.lifecycle.stage() != "crossed_off"
        {
            let last = case.activity.get(&leader.id).copied();
            let since = last.or(case.leader_since);
            if let Some(since) = since
                && (today - since).num_days() > idle_days
            {
                let detail = match last {
                    Some(_) => format!("{}天未开展包案工作", (today - since).num_days()),
                    None => format!("包案{}天未开展工作", (today - since).num_days()),
                };
                sections.idle.push(case.row(case_id, Some(since), detail));
            }
        }
        if let Some((claim, since, passed)) = case.open_claim {
            sections.waiting.push(case.row(
                case_id,
                Some(since),
                format!("第{claim}次化解申请，已通过{passed}级审核"),
            ));
        }
    }
    for rows in [
        &mut sections.overdue,
        &mut sections.due_soon,
        &mut sections.idle,
        &mut sections.waiting,
    ] {
        rows.sort_by(|a, b| (a.date, &a.case_number).cmp(&(b.date, &b.case_number)));
    }
    sections
}

/// Case events of one kind in a window, in scope.
fn flow(
    events: &[ArchivedEvent],
    cases: &BTreeMap<String, CaseFold>,
    units: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pick: impl Fn(&CaseEvent) -> Option<String>,
) -> Vec<AgendaRow> {
    events
        .iter()
        .filter(|e| e.occurred_at > from && e.occurred_at <= to)
        .filter_map(|e| {
            let DomainEvent::Case(event) = &e.event else {
                return None;
            };
            let detail = pick(event)?;
            let case = cases.get(&e.aggregate_id).filter(|c| c.in_scope(units))?;
            Some(case.row(&e.aggregate_id, Some(china_date(e.occurred_at)), detail))
        })
        .collect()
}

fn section(key: &str, title: String, this: Vec<AgendaRow>, last: usize) -> AgendaSection {
    AgendaSection {
        key: key.to_owned(),
        title,
        this_week: this.len(),
        last_week: last,
        rows: this,
    }
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

/// Draws the agenda of a meeting: from the events of the cases that can be on it when the
/// figures projection has reached the meeting's position ([`agenda_from_projection`]), else from
/// the whole archive ([`agenda_from_archive`]).
pub async fn agenda(store: &ReadStore, request: &AgendaRequest) -> Result<Agenda, FiguresError> {
    if crate::facts::projection_reached(store, request.as_of_position).await? {
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

/// Draws the agenda of a meeting from the meetings, the directory and only the events of the
/// cases [`agenda_cases`] names; the figures projection must have reached the meeting's
/// position. A test compares it with [`agenda_from_archive`] at every position.
pub async fn agenda_from_projection(
    store: &ReadStore,
    request: &AgendaRequest,
) -> Result<Agenda, FiguresError> {
    let position = request.as_of_position;
    let mut events = events_up_to(store, &["meeting", "unit", "supervision"], position).await?;
    let units = subtree_as_of(&events, &request.unit.id);
    let mut conn = store.pool().acquire().await?;
    let cases = agenda_cases(&mut conn, request, &units).await?;
    events.extend(events_of_on(&mut conn, "case", &cases, &FOLDED, position).await?);
    // Each case's events come in log order, the cases in chunks: one order for all, as the
    // archive's (a position is one commit of one aggregate, so the sort keeps each commit's
    // events in their order).
    events.sort_by_key(|e| e.position);
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

/// The cases open or with a running clock at the moment bound to `at` as of the position bound
/// to `$1`, with their district and town: the as-of rule of `facts` written as three short
/// reads — the current rows of the cases open now (`figure_open_cases`), the rows closed after
/// the moment (by the index on it), and the rows closed after the position (only of the cases
/// touched since it). At a meeting just held the first is the open cases and the others are
/// short.
fn open_at(at: &str) -> String {
    let valid = format!(
        "(s.crossed_off = 0 OR s.clock_running = 1) AND s.position <= $1 AND s.recorded_at < {at}"
    );
    let base = "SELECT s.case_id, s.district_id, s.town_id FROM figure_states s";
    format!(
        "{base} WHERE s.case_id IN (SELECT case_id FROM figure_open_cases) \
         AND s.next_position IS NULL AND {valid} \
         UNION {base} WHERE s.next_recorded_at >= {at} AND {valid} \
         UNION {base} WHERE s.next_position > $1 AND {valid} \
         AND s.case_id IN (SELECT case_id FROM figure_cases WHERE last_position > $1)"
    )
}

/// The case events [`fold_cases`] reads: those of the lifecycle (its clocks and stage) and of
/// the leader (owner, activity). Measures, notes and responsible units are not read.
const FOLDED: [&str; 14] = [
    CaseRegistered::EVENT_TYPE,
    HandlingExtended::EVENT_TYPE,
    CaseClassified::EVENT_TYPE,
    ResolutionClaimed::EVENT_TYPE,
    ClaimAccepted::EVENT_TYPE,
    ClaimSentBack::EVENT_TYPE,
    CaseCrossedOff::EVENT_TYPE,
    PetitionRecorded::EVENT_TYPE,
    CaseReopened::EVENT_TYPE,
    SatisfactionRated::EVENT_TYPE,
    ProcedureStepRecorded::EVENT_TYPE,
    LeaderAssigned::EVENT_TYPE,
    LeaderReassigned::EVENT_TYPE,
    LeaderActivityRecorded::EVENT_TYPE,
];

/// The cases that can be on the agenda, a superset: in the meeting's units (`units`) and open
/// or with a running clock at the meeting or a week before (the state sections: a case
/// crossed off with no clock running is in none), or with a crossing off or a reopening on a
/// day of the two weeks (the flow sections; a case registered in them is either open at the
/// meeting or crossed off since), and every case whose events are stamped out of log order
/// (their state rows cannot be read as of a moment).
async fn agenda_cases(
    conn: &mut sqlx::AnyConnection,
    request: &AgendaRequest,
    units: &[String],
) -> Result<Vec<String>, FiguresError> {
    // The agenda folds events up to and at a moment; the states are read "recorded before".
    let just_after = |at: DateTime<Utc>| at.timestamp_micros() + 1;
    let sql = format!("{} UNION {}", open_at("$2"), open_at("$3"));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(request.as_of_position)
        .bind(just_after(request.held_at))
        .bind(just_after(request.held_at - Duration::days(7)))
        .fetch(&mut *conn);
    let mut cases = std::collections::BTreeSet::new();
    while let Some(row) = rows.try_next().await? {
        let district: String = row.try_get("district_id")?;
        let town: Option<String> = row.try_get("town_id")?;
        if units.contains(&district) || town.is_some_and(|t| units.contains(&t)) {
            cases.insert(row.try_get::<String, _>("case_id")?);
        }
    }
    drop(rows);
    let flows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT case_id FROM figure_facts WHERE kind IN ('crossed_off', 'reopened') \
         AND day >= $1 AND day <= $2 AND position <= $3 UNION {}",
        crate::facts::IRREGULAR_CASES
    )))
    .bind(china_date(request.held_at - Duration::days(14)).to_string())
    .bind(china_date(request.held_at).to_string())
    .bind(request.as_of_position)
    .fetch_all(&mut *conn)
    .await?;
    cases.extend(flows);
    Ok(cases.into_iter().collect())
}

/// [`agenda`] over events already read.
pub fn agenda_from(events: &[ArchivedEvent], request: &AgendaRequest) -> Agenda {
    let at = request.held_at;
    let week_ago = at - Duration::days(7);
    let two_weeks_ago = at - Duration::days(14);
    let units = &subtree_as_of(events, &request.unit.id);
    let now = fold_cases(events, at, &request.limits);
    let before = fold_cases(events, week_ago, &request.limits);
    let today = china_date(at);
    let state_now = state_sections(&now, units, today, request.idle_days);
    let state_before = state_sections(&before, units, china_date(week_ago), request.idle_days);

    let registered =
        |e: &CaseEvent| matches!(e, CaseEvent::Registered(_)).then(|| "列入清单".to_owned());
    let crossed_off = |e: &CaseEvent| match e {
        CaseEvent::CrossedOff(c) => Some(format!("第{}次化解申请审核通过，销号", c.claim)),
        _ => None,
    };
    let relapsed = |e: &CaseEvent| match e {
        CaseEvent::Reopened(r) => Some(format!("销号后再次信访，第{}次回潮", r.relapse_count)),
        _ => None,
    };
    let mut sections = Vec::new();
    for (key, title, pick) in [
        (
            "new_cases",
            "新增案件",
            &registered as &dyn Fn(&CaseEvent) -> Option<String>,
        ),
        ("crossed_off", "销号案件", &crossed_off),
        ("relapses", "回潮案件", &relapsed),
    ] {
        let this = flow(events, &now, units, week_ago, at, pick);
        let last = flow(events, &now, units, two_weeks_ago, week_ago, pick).len();
        sections.push(section(key, title.to_owned(), this, last));
    }
    sections.push(section(
        "overdue",
        "超期案件".to_owned(),
        state_now.overdue,
        state_before.overdue.len(),
    ));
    sections.push(section(
        "due_soon",
        format!("{DUE_SOON_DAYS}日内到期案件"),
        state_now.due_soon,
        state_before.due_soon.len(),
    ));
    sections.push(section(
        "idle_owned",
        format!("包案领导{}日以上未开展工作的案件", request.idle_days),
        state_now.idle,
        state_before.idle.len(),
    ));
    sections.push(section(
        "awaiting_review",
        "待审核的化解申请".to_owned(),
        state_now.waiting,
        state_before.waiting.len(),
    ));

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
        sections,
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
