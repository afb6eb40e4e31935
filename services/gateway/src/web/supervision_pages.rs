//! 督办 pages: the supervision orders (issue one, the list with its filters), one order with its
//! cases, history and the step each side may take (签收, 进展, 办结反馈, 审核); 预警, the early
//! warnings with their filters; 消息, the signed-in user's inbox. Each is drawn by the API handler
//! of the same data; writes go through the API's write handlers.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use zhzj_proto::accounts::Role;
use zhzj_proto::commands::{
    AcknowledgeSupervisionOrder, AnswerSupervisionOrder, ReportSupervisionProgress,
    ReviewSupervisionAnswer,
};

use super::auth::WebSession;
use super::forms::{Field, FormData};
use super::reports::{context, submit};
use super::view::{Choice, Layout, choice};
use crate::extract::JsonBody;
use crate::routes::aggregate_writes::submit as submit_write;
use crate::routes::notices::{self, Inbox, WarningList, WarningQuery};
use crate::routes::org;
use crate::routes::supervision::{
    self, SupervisionOrderItem, SupervisionOrderView, SupervisionQuery,
};
use crate::scope::subtree;
use crate::{ApiError, AppState};

/// The day `days` after today, as a date field's value.
fn days_ahead(state: &AppState, days: u64) -> String {
    let today = state.today();
    today
        .checked_add_days(chrono::Days::new(days))
        .unwrap_or(today)
        .to_string()
}

/// The page, answered 422 when it shows a refusal.
fn page_or_refusal<T: Template>(page: &T, refused: bool) -> Result<Response, ApiError> {
    let code = if refused {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    super::view::html_with(code, page)
}

#[derive(Template)]
#[template(path = "supervision_list.html")]
struct SupervisionListPage {
    layout: Layout,
    orders: Vec<SupervisionOrderItem>,
    addressees: Vec<Choice>,
    may_issue: bool,
    status: String,
    overdue: bool,
    error: Option<String>,
    default_due: String,
}

/// `?status=&overdue=` of the list page.
#[derive(Debug, Default, Deserialize)]
pub struct ListForm {
    status: Option<String>,
    overdue: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &WebSession,
    form: &ListForm,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let status = form.status.clone().filter(|s| !s.is_empty());
    let overdue = form.overdue.as_deref() == Some("true");
    let query = SupervisionQuery {
        status: status.clone(),
        overdue: overdue.then_some(true),
        ..SupervisionQuery::default()
    };
    let orders = supervision::orders(state, &session.user, &query).await?;
    // An order goes down: to the units under the user's unit (departments included).
    let directory = org::read_directory(state).await?;
    let below: Vec<String> = match &session.user.unit_id {
        Some(unit) => subtree(state, unit).await?,
        None => directory.units.iter().map(|u| u.unit_id.clone()).collect(),
    };
    let addressees = directory
        .units
        .iter()
        .filter(|u| u.kind != "city" && session.user.unit_id.as_ref() != Some(&u.unit_id))
        .filter(|u| session.has(Role::Admin) || below.contains(&u.unit_id))
        .map(|u| choice(&u.unit_id, &u.name))
        .collect();
    let page = SupervisionListPage {
        layout: session.layout("督办", "supervision"),
        orders,
        addressees,
        may_issue: session.user.has_any_role(&[Role::Admin, Role::Coordinator]),
        status: status.unwrap_or_default(),
        overdue,
        error,
        default_due: days_ahead(state, 7),
    };
    let refused = page.error.is_some();
    page_or_refusal(&page, refused)
}

/// `GET /supervision`.
pub async fn list(
    session: WebSession,
    State(state): State<AppState>,
    axum::extract::Query(form): axum::extract::Query<ListForm>,
) -> Response {
    let result = list_page(&state, &session, &form, None).await;
    session.respond(result, "supervision")
}

/// `POST /supervision`: issue an order.
pub async fn issue(
    session: WebSession,
    State(state): State<AppState>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let fields = [
            Field::Required("addressee_unit_id"),
            Field::Required("level"),
            Field::Required("matter"),
            Field::Required("answer_due_on"),
            Field::Required("responsible"),
            Field::Lines("case_ids"),
        ];
        let send = |body| supervision::issue(context(&session), body);
        match submit(&session, &form, &fields, send, "/supervision").await? {
            Ok(done) => Ok(done),
            Err(message) => list_page(&state, &session, &ListForm::default(), Some(message)).await,
        }
    }
    .await;
    session.respond(result, "supervision")
}

#[derive(Template)]
#[template(path = "supervision.html")]
struct OrderPage {
    layout: Layout,
    view: SupervisionOrderView,
    /// The user answers for the addressee.
    addressee: bool,
    /// The user reviews for the issuer.
    issuer: bool,
    error: Option<String>,
    default_due: String,
}

async fn order_page(
    state: &AppState,
    session: &WebSession,
    id: &str,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let view = supervision::order_view(state, &session.user, id).await?;
    let coordinator = session.has(Role::Coordinator) || session.has(Role::Admin);
    let unit = session.user.unit_id.clone().unwrap_or_default();
    // The issuer's side: the issuing unit or one above it, whose subtree holds the issuer.
    let issuer_chain = subtree(state, &unit).await?;
    let page = OrderPage {
        layout: session.layout(format!("督办单 {}", view.order.level_label), "supervision"),
        addressee: coordinator && (session.has(Role::Admin) || view.order.addressee.id == unit),
        issuer: coordinator
            && (session.has(Role::Admin) || issuer_chain.contains(&view.order.issuer.id)),
        view,
        error,
        default_due: days_ahead(state, 5),
    };
    let refused = page.error.is_some();
    page_or_refusal(&page, refused)
}

/// `GET /supervision/{id}`.
pub async fn show(
    session: WebSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let result = order_page(&state, &session, &id, None).await;
    session.respond(result, "supervision")
}

/// `POST /supervision/{id}/{action}`: acknowledge, progress, answer, accept, send_back.
pub async fn act(
    session: WebSession,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    axum::Form(mut form): axum::Form<FormData>,
) -> Response {
    let result = async {
        let back = format!("/supervision/{id}");
        let params = [("id".to_owned(), id.clone())];
        let params = &params;
        let sent = match action.as_str() {
            "acknowledge" => {
                let send = |JsonBody(body)| {
                    submit_write::<AcknowledgeSupervisionOrder>(params, body, context(&session))
                };
                submit(&session, &form, &[], send, &back).await?
            }
            "progress" => {
                let send = |JsonBody(body)| {
                    submit_write::<ReportSupervisionProgress>(params, body, context(&session))
                };
                submit(&session, &form, &[Field::Required("text")], send, &back).await?
            }
            "answer" => {
                let fields = [Field::Required("text"), Field::Lines("evidence")];
                let send = |JsonBody(body)| {
                    submit_write::<AnswerSupervisionOrder>(params, body, context(&session))
                };
                submit(&session, &form, &fields, send, &back).await?
            }
            "accept" | "send_back" => {
                let accept = if action == "accept" { "true" } else { "false" };
                form.0.push(("accept".to_owned(), accept.to_owned()));
                let fields = [
                    Field::Bool("accept"),
                    Field::Optional("opinion"),
                    Field::Optional("reasons"),
                    Field::Optional("answer_due_on"),
                ];
                let send = |JsonBody(body)| {
                    submit_write::<ReviewSupervisionAnswer>(params, body, context(&session))
                };
                submit(&session, &form, &fields, send, &back).await?
            }
            _ => return Err(ApiError::not_found(format!("没有 {action} 这一操作"))),
        };
        match sent {
            Ok(done) => Ok(done),
            Err(message) => order_page(&state, &session, &id, Some(message)).await,
        }
    }
    .await;
    session.respond(result, "supervision")
}

#[derive(Template)]
#[template(path = "warnings.html")]
struct WarningsPage {
    layout: Layout,
    list: WarningList,
    rules: Vec<Choice>,
    units: Vec<Choice>,
    rule: String,
    state: String,
    unit_id: String,
    pages: u32,
    previous: Option<String>,
    next: Option<String>,
}

/// `?rule=&state=&unit_id=&page=` of the warnings page.
#[derive(Debug, Default, Deserialize)]
pub struct WarningsForm {
    rule: Option<String>,
    state: Option<String>,
    unit_id: Option<String>,
    page: Option<u32>,
}

/// Warnings the page lists at a time.
const WARNINGS_PER_PAGE: u32 = 100;

/// `GET /warnings`.
pub async fn warnings(
    session: WebSession,
    State(state): State<AppState>,
    axum::extract::Query(form): axum::extract::Query<WarningsForm>,
) -> Response {
    let result = async {
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let query = WarningQuery {
            rule: given(&form.rule),
            state: given(&form.state),
            unit_id: given(&form.unit_id),
            page: form.page,
            per_page: Some(WARNINGS_PER_PAGE),
            ..WarningQuery::default()
        };
        let scope = crate::scope::Scope::of(&state, &session.user).await?;
        let list = notices::warnings(&state, &session.user, &scope, &query).await?;
        // The units the user's scope covers, to filter by.
        let units = org::read_directory(&state)
            .await?
            .units
            .iter()
            .filter(|u| scope.covers_unit(&u.unit_id))
            .map(|u| choice(&u.unit_id, &u.name))
            .collect();
        let total = u32::try_from(list.total).unwrap_or(u32::MAX);
        let pages = total.div_ceil(WARNINGS_PER_PAGE).max(1);
        let link_to = |page: u32| {
            let mut link = form_urlencoded::Serializer::new(String::new());
            for (key, value) in [
                ("rule", &query.rule),
                ("state", &query.state),
                ("unit_id", &query.unit_id),
            ] {
                if let Some(value) = value {
                    link.append_pair(key, value);
                }
            }
            link.append_pair("page", &page.to_string());
            format!("/warnings?{}", link.finish())
        };
        let page_number = list.page;
        let page = WarningsPage {
            layout: session.layout("预警", "warnings"),
            rules: zhzj_supervision::warnings::RULES
                .iter()
                .map(|(code, label)| choice(code, label))
                .collect(),
            units,
            rule: query.rule.clone().unwrap_or_default(),
            state: query.state.clone().unwrap_or_else(|| "open".to_owned()),
            unit_id: query.unit_id.clone().unwrap_or_default(),
            pages,
            // Past the last page (a link kept from a longer list): back to the last one.
            previous: (page_number > 1).then(|| link_to((page_number - 1).min(pages))),
            next: (page_number < pages).then(|| link_to(page_number + 1)),
            list,
        };
        super::view::html(&page)
    }
    .await;
    session.respond(result, "warnings")
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    inbox: Inbox,
}

/// `GET /inbox`.
pub async fn inbox(session: WebSession, State(state): State<AppState>) -> Response {
    let result = async {
        let inbox = notices::inbox(&state, &session.user, false).await?;
        let page = InboxPage {
            layout: session.layout("消息", "inbox"),
            inbox,
        };
        super::view::html(&page)
    }
    .await;
    session.respond(result, "inbox")
}

/// `POST /inbox/read-all`, `POST /inbox/{id}/read` (from the page's buttons).
pub async fn read(
    session: WebSession,
    State(state): State<AppState>,
    id: Option<Path<String>>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        session.check_csrf(form.get("csrf"))?;
        let id = id.map(|Path(id)| id);
        notices::mark_read(&state, &session.user, id.as_deref()).await?;
        Ok(super::view::see_other("/inbox"))
    }
    .await;
    session.respond(result, "inbox")
}
