//! 周调度 pages: the meetings of a unit, holding this week's, one meeting's agenda (with a print
//! layout for the meeting table), its instructions and their feedback. Each is drawn by the API
//! handler of the same data; writes go through the API's write handlers.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use zhzj_figures::Agenda;
use zhzj_proto::accounts::Role;

use super::auth::WebSession;
use super::forms::{Field, FormData};
use super::reports::{context, submit};
use super::view::{Choice, HtmlCell, HtmlTable, Layout, case_href, choice};
use crate::extract::{CurrentUser, QueryParams};
use crate::routes::{MeetingListItem, meetings, org};
use crate::{ApiError, AppState};

#[derive(Template)]
#[template(path = "meetings.html")]
pub(crate) struct MeetingsPage {
    layout: Layout,
    meetings: Vec<MeetingListItem>,
    units: Vec<Choice>,
    may_hold: bool,
    error: Option<String>,
}

pub(crate) async fn meetings_page(
    state: &AppState,
    session: &WebSession,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let meetings = meetings::list(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let directory = org::show(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let units = directory
        .units
        .iter()
        .filter(|u| matches!(u.kind.as_str(), "city" | "district" | "town"))
        .filter(|u| session.has(Role::Admin) || session.user.unit_id.as_ref() == Some(&u.unit_id))
        .map(|u| choice(&u.unit_id, &u.name))
        .collect();
    let page = MeetingsPage {
        layout: session.layout("周调度", "meetings"),
        meetings,
        units,
        may_hold: session.user.has_any_role(&[Role::Admin, Role::Coordinator]),
        error,
    };
    let status = if page.error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    super::view::html_with(status, &page)
}

/// `GET /meetings`.
pub async fn meetings(session: WebSession, State(state): State<AppState>) -> Response {
    let result = meetings_page(&state, &session, None).await;
    session.respond(result, "meetings")
}

/// `POST /meetings`: hold this week's meeting.
pub async fn hold_meeting(
    session: WebSession,
    State(state): State<AppState>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let fields = [Field::Required("unit_id"), Field::Optional("title")];
        let hold = |body| meetings::hold(context(&session), body);
        match submit(&session, &form, &fields, hold, "/meetings").await? {
            Ok(done) => Ok(done),
            Err(message) => meetings_page(&state, &session, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "meetings")
}

#[derive(Template)]
#[template(path = "meeting.html")]
pub(crate) struct MeetingPage {
    layout: Layout,
    agenda: Agenda,
    held_at: String,
    sections: Vec<HtmlTable>,
    instructions: Vec<InstructionLine>,
    units: Vec<Choice>,
    leaders: Vec<Choice>,
    cases: Vec<Choice>,
    may_write: bool,
    status_ok: bool,
    error: Option<String>,
    /// The feedback deadline proposed for a new instruction: a week on.
    feedback_due: String,
}

/// An instruction as the meeting page shows it.
#[derive(Debug)]
pub(crate) struct InstructionLine {
    number: u32,
    week: String,
    to: String,
    case_href: Option<String>,
    text: String,
    due: String,
    status_label: String,
    overdue: bool,
    feedback: String,
    /// Feedback can be given here (an instruction of this meeting).
    own: bool,
}

pub(crate) async fn meeting_page(
    state: &AppState,
    session: &WebSession,
    id: &str,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let agenda = meetings::show(
        State(state.clone()),
        CurrentUser(session.user.clone()),
        Path(id.to_owned()),
        QueryParams(meetings::AgendaQuery::default()),
    )
    .await?
    .0;
    let directory = org::show(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let sections = agenda
        .sections
        .iter()
        .map(|section| HtmlTable {
            name: format!(
                "{}（本周 {}，上周 {}）",
                section.title, section.this_week, section.last_week
            ),
            headers: ["案件编号", "诉求", "属地", "包案领导", "日期", "说明"]
                .map(str::to_owned)
                .to_vec(),
            rows: section
                .rows
                .iter()
                .map(|row| {
                    vec![
                        HtmlCell::link(row.case_number.clone(), case_href(&row.case_id)),
                        HtmlCell::text(row.matter.clone()),
                        HtmlCell::text(match &row.town {
                            Some(town) => format!("{} · {town}", row.district),
                            None => row.district.clone(),
                        }),
                        HtmlCell::text(row.leader.clone().unwrap_or_default()),
                        HtmlCell::text(row.date.map(|d| d.to_string()).unwrap_or_default()),
                        HtmlCell::text(row.detail.clone()),
                    ]
                })
                .collect(),
        })
        .collect();
    let instructions = agenda
        .instructions
        .iter()
        .map(|i| InstructionLine {
            number: i.number,
            week: i.week.clone(),
            to: [i.unit.clone(), i.leader.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("、"),
            case_href: i.case_id.as_deref().map(case_href),
            text: i.text.clone(),
            due: i.feedback_due_on.to_string(),
            status_label: i.status_label.clone(),
            overdue: i.status == "overdue",
            feedback: match (&i.feedback, i.feedback_on) {
                (Some(text), Some(on)) => format!("{on}：{text}"),
                (Some(text), None) => text.clone(),
                _ => String::new(),
            },
            own: i.meeting_id == agenda.meeting_id,
        })
        .collect();
    let mut cases: Vec<Choice> = agenda
        .sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|r| choice(&r.case_id, &format!("{} {}", r.case_number, r.matter)))
        .collect();
    cases.sort_by(|a, b| a.label.cmp(&b.label));
    cases.dedup_by(|a, b| a.value == b.value);
    let page = MeetingPage {
        layout: session.layout(agenda.title.clone(), "meetings"),
        held_at: super::view::minute_of(&agenda.held_at.to_rfc3339()),
        sections,
        instructions,
        units: directory
            .units
            .iter()
            .map(|u| choice(&u.unit_id, &u.name))
            .collect(),
        leaders: directory
            .leaders
            .iter()
            .map(|l| choice(&l.leader_id, &format!("{}（{}）", l.name, l.title)))
            .collect(),
        cases,
        may_write: session.user.may_write(),
        feedback_due: (state.today() + chrono::Days::new(7)).to_string(),
        status_ok: error.is_none(),
        error,
        agenda,
    };
    let status = if page.status_ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    super::view::html_with(status, &page)
}

/// `GET /meetings/{id}`.
pub async fn meeting(
    session: WebSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let result = meeting_page(&state, &session, &id, None).await;
    session.respond(result, "meetings")
}

/// `POST /meetings/{id}/instructions`.
pub async fn issue_instruction(
    session: WebSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let fields = [
            Field::Optional("case_id"),
            Field::Optional("unit_id"),
            Field::Optional("leader_id"),
            Field::Required("text"),
            Field::Optional("feedback_due_on"),
        ];
        let issue = |body| meetings::issue(Path(id.clone()), context(&session), body);
        let back = format!("/meetings/{id}");
        match submit(&session, &form, &fields, issue, &back).await? {
            Ok(done) => Ok(done),
            Err(message) => meeting_page(&state, &session, &id, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "meetings")
}

/// `POST /meetings/{id}/instructions/{number}/feedback`.
pub async fn instruction_feedback(
    session: WebSession,
    State(state): State<AppState>,
    Path((id, number)): Path<(String, String)>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let fields = [Field::Required("text"), Field::Optional("on")];
        let feedback = |body| {
            let path = Path((id.clone(), number.clone()));
            meetings::feedback(path, context(&session), body)
        };
        let back = format!("/meetings/{id}");
        match submit(&session, &form, &fields, feedback, &back).await? {
            Ok(done) => Ok(done),
            Err(message) => meeting_page(&state, &session, &id, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "meetings")
}

// ---------------------------------------------------------------------------------------------
// 月通报
