//! 组织架构: the directory page — every signed-in user sees the units and the leaders who can own
//! cases; the administrator adds a unit (a district, a town, a department) or a leader here,
//! through the same API the rest of the system uses, instead of by command line.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use zhzj_proto::accounts::Role;
use zhzj_proto::events::{LeaderLevel, UnitKind};

use super::auth::WebSession;
use super::forms::{Field, FormData};
use super::reports::{context, submit};
use super::view::{Choice, Layout, choice, enum_choices, html_with};
use crate::directory_file::parse_label;
use crate::extract::JsonBody;
use crate::routes::cases::WriteContext;
use crate::routes::org;
use crate::{ApiError, AppState};

/// A unit as the page lists it.
#[derive(Debug)]
struct UnitLine {
    unit_id: String,
    name: String,
    kind: String,
    parent: String,
}

/// A leader as the page lists them.
#[derive(Debug)]
struct LeaderLine {
    leader_id: String,
    name: String,
    title: String,
    level: String,
    unit: String,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    layout: Layout,
    may_edit: bool,
    error: Option<String>,
    units: Vec<UnitLine>,
    leaders: Vec<LeaderLine>,
    unit_choices: Vec<Choice>,
    kinds: Vec<Choice>,
    levels: Vec<Choice>,
}

/// The label of a kind or level as stored (`district` → 区).
fn label_of<T: serde::de::DeserializeOwned>(value: &str, label: fn(T) -> &'static str) -> String {
    parse_label::<T>(value).map_or_else(|| value.to_owned(), |v| label(v).to_owned())
}

async fn org_page(
    state: &AppState,
    session: &WebSession,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let directory = org::read_directory(state).await?;
    let name_of = |id: &str| {
        directory
            .units
            .iter()
            .find(|u| u.unit_id == id)
            .map_or_else(|| id.to_owned(), |u| u.name.clone())
    };
    let page = OrgPage {
        layout: session.layout("组织架构", "org"),
        may_edit: session.has(Role::Admin),
        units: directory
            .units
            .iter()
            .map(|u| UnitLine {
                unit_id: u.unit_id.clone(),
                name: u.name.clone(),
                kind: label_of(&u.kind, UnitKind::label),
                parent: u.parent_id.as_deref().map(name_of).unwrap_or_default(),
            })
            .collect(),
        leaders: directory
            .leaders
            .iter()
            .map(|l| LeaderLine {
                leader_id: l.leader_id.clone(),
                name: l.name.clone(),
                title: l.title.clone(),
                level: label_of(&l.level, LeaderLevel::label),
                unit: name_of(&l.unit_id),
            })
            .collect(),
        unit_choices: directory
            .units
            .iter()
            .map(|u| choice(&u.unit_id, &u.name))
            .collect(),
        kinds: enum_choices(&UnitKind::ALL[1..], UnitKind::label),
        levels: enum_choices(&LeaderLevel::ALL, LeaderLevel::label),
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html_with(status, &page)
}

/// `GET /org`.
pub async fn show(session: WebSession, State(state): State<AppState>) -> Response {
    let result = org_page(&state, &session, None).await;
    session.respond(result, "org")
}

/// Sends one of the page's forms through `send`; back to the page, or the page with the refusal.
async fn add<T, Sent>(
    session: WebSession,
    state: AppState,
    form: FormData,
    fields: &[Field],
    send: impl FnOnce(WriteContext, JsonBody<T>) -> Sent,
) -> Response
where
    T: serde::de::DeserializeOwned,
    Sent: std::future::Future<Output = Result<crate::commands::WriteOutcome, ApiError>>,
{
    let result = async {
        let context = context(&session);
        match submit(&session, &form, fields, |body| send(context, body), "/org").await? {
            Ok(done) => Ok(done),
            Err(message) => org_page(&state, &session, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "org")
}

/// `POST /org/units`: add a unit.
pub async fn add_unit(
    session: WebSession,
    State(state): State<AppState>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let fields = [
        Field::Required("unit_id"),
        Field::Required("parent_id"),
        Field::Required("name"),
        Field::Required("kind"),
    ];
    add(session, state, form, &fields, org::add_unit).await
}

/// `POST /org/leaders`: add a leader.
pub async fn add_leader(
    session: WebSession,
    State(state): State<AppState>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let fields = [
        Field::Required("leader_id"),
        Field::Required("unit_id"),
        Field::Required("name"),
        Field::Required("title"),
        Field::Required("level"),
    ];
    add(session, state, form, &fields, org::add_leader).await
}
