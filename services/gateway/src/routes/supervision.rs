//! `/api/v1/supervision-orders`: supervision orders (督办单) — issue one to a lower unit or a
//! department, list and read them (with their history from the event archive), and the
//! addressee's and the issuer's steps — sign for it (签收), report progress, answer (办结反馈),
//! accept or send back — are writes on one order (`aggregate_writes`). Escalation is the
//! system's ([`zhzj_supervision::EscalationClock`]).

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::commands::IssueSupervisionOrder;
use zhzj_proto::events::{SupervisionLevel, UnitRef};

use super::case_masking::mask_free_text;
use super::cases::WriteContext;
use crate::commands::WriteOutcome;
use crate::extract::{CurrentUser, JsonBody, QueryParams};
use crate::scope::Scope;
use crate::{ApiError, AppState};

/// Where an order stands, as the interface names it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "issued" => "待签收",
        "acknowledged" => "办理中",
        "answered" => "待审核",
        "sent_back" => "已退回",
        "accepted" => "已办结",
        _ => "未知",
    }
}

/// A supervision order as the supervision view lists it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SupervisionOrderItem {
    /// Order id.
    pub order_id: String,
    /// The issuing unit.
    pub issuer: UnitRef,
    /// The unit that must answer (承办单位).
    pub addressee: UnitRef,
    /// Its level now.
    pub level: SupervisionLevel,
    /// The level's name (催办, 督办, 挂牌督办).
    pub level_label: String,
    /// What is to be done (ID and phone numbers masked).
    pub matter: String,
    /// The person responsible at the addressee.
    pub responsible: String,
    /// How many cases it names.
    pub case_count: i64,
    /// The due date it was issued with.
    pub first_due_on: String,
    /// By when the (next) answer is due now.
    pub answer_due_on: String,
    /// `issued`, `acknowledged`, `answered`, `sent_back` or `accepted`.
    pub status: String,
    /// The status's name (待签收, 办理中, 待审核, 已退回, 已办结).
    pub status_label: String,
    /// Whether the answer is overdue today: no answer awaits review, the order is open and its
    /// due date has passed.
    pub overdue: bool,
    /// The day it was issued.
    pub issued_on: String,
    /// The day it was signed for.
    pub acknowledged_on: Option<String>,
    /// The latest progress report (masked).
    pub progress: Option<String>,
    /// Its day.
    pub progress_on: Option<String>,
    /// Answers given.
    pub answers: i64,
    /// The day of the latest answer.
    pub answered_on: Option<String>,
    /// Whether the latest answer came by its due date.
    pub answered_on_time: Option<bool>,
    /// The day an answer was accepted.
    pub accepted_on: Option<String>,
    /// How many times it was escalated.
    pub escalations: i64,
    /// The log position of its last change.
    pub version: i64,
}

const ORDER_COLUMNS: &str = "order_id, issuer_unit_id, issuer_unit_name, addressee_unit_id, \
     addressee_unit_name, level, matter, responsible, case_count, first_due_on, answer_due_on, \
     status, issued_on, acknowledged_on, progress, progress_on, answers, answered_on, \
     answered_on_time, accepted_on, escalations, position";

fn order_from_row(
    row: &sqlx::any::AnyRow,
    today: NaiveDate,
) -> Result<SupervisionOrderItem, sqlx::Error> {
    let level: String = row.try_get("level")?;
    let level = SupervisionLevel::parse(&level).unwrap_or(SupervisionLevel::Reminder);
    let status: String = row.try_get("status")?;
    let answer_due_on: String = row.try_get("answer_due_on")?;
    let open = matches!(status.as_str(), "issued" | "acknowledged" | "sent_back");
    let overdue = open && answer_due_on < today.to_string();
    let masked = |text: String| mask_free_text(&text).into_owned();
    Ok(SupervisionOrderItem {
        order_id: row.try_get("order_id")?,
        issuer: UnitRef {
            id: row.try_get("issuer_unit_id")?,
            name: row.try_get("issuer_unit_name")?,
        },
        addressee: UnitRef {
            id: row.try_get("addressee_unit_id")?,
            name: row.try_get("addressee_unit_name")?,
        },
        level,
        level_label: level.label().to_owned(),
        matter: masked(row.try_get("matter")?),
        responsible: row.try_get("responsible")?,
        case_count: row.try_get("case_count")?,
        first_due_on: row.try_get("first_due_on")?,
        answer_due_on,
        status_label: status_label(&status).to_owned(),
        status,
        overdue,
        issued_on: row.try_get("issued_on")?,
        acknowledged_on: row.try_get("acknowledged_on")?,
        progress: row.try_get::<Option<String>, _>("progress")?.map(masked),
        progress_on: row.try_get("progress_on")?,
        answers: row.try_get("answers")?,
        answered_on: row.try_get("answered_on")?,
        answered_on_time: row
            .try_get::<Option<i64>, _>("answered_on_time")?
            .map(|v| v != 0),
        accepted_on: row.try_get("accepted_on")?,
        escalations: row.try_get("escalations")?,
        version: row.try_get("position")?,
    })
}

/// Whether the user may read an order: their scope covers its issuer or its addressee.
fn readable(scope: &Scope, order: &SupervisionOrderItem) -> bool {
    scope.covers_unit(&order.issuer.id) || scope.covers_unit(&order.addressee.id)
}

/// Filters of the list.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisionQuery {
    /// `open` (not yet accepted), or one status: `issued`, `acknowledged`, `answered`,
    /// `sent_back`, `accepted`.
    pub status: Option<String>,
    /// Orders issued by or to this unit.
    pub unit_id: Option<String>,
    /// Only orders whose answer is overdue today.
    pub overdue: Option<bool>,
    /// Orders naming this case.
    pub case_id: Option<Uuid>,
    /// Only this level: `reminder`, `order`, `listed`.
    pub level: Option<SupervisionLevel>,
}

/// The orders the user may read, filtered, newest first.
pub(crate) async fn orders(
    state: &AppState,
    user: &crate::User,
    query: &SupervisionQuery,
) -> Result<Vec<SupervisionOrderItem>, ApiError> {
    const STATUSES: [&str; 6] = [
        "open",
        "issued",
        "acknowledged",
        "answered",
        "sent_back",
        "accepted",
    ];
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::BadRequest {
            message: format!("未知的督办单状态 `{status}`"),
            field: Some("status".into()),
        });
    }
    let scope = Scope::of(state, user).await?;
    let today = state.today();
    let rows =
        match query.case_id {
            Some(case_id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ORDER_COLUMNS} FROM supervision_orders WHERE order_id IN \
                 (SELECT order_id FROM supervision_order_cases WHERE case_id = $1) \
                 ORDER BY issued_at DESC, order_id"
                )))
                .bind(case_id.to_string())
                .fetch_all(state.store().pool())
                .await?
            }
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ORDER_COLUMNS} FROM supervision_orders ORDER BY issued_at DESC, order_id"
            )))
            .fetch_all(state.store().pool())
            .await?,
        };
    let mut orders = Vec::new();
    for row in &rows {
        let order = order_from_row(row, today)?;
        let status_matches = match query.status.as_deref() {
            None => true,
            Some("open") => order.status != "accepted",
            Some(status) => order.status == status,
        };
        let unit_matches = query
            .unit_id
            .as_ref()
            .is_none_or(|unit| &order.issuer.id == unit || &order.addressee.id == unit);
        if status_matches
            && unit_matches
            && query.overdue.is_none_or(|overdue| order.overdue == overdue)
            && query.level.is_none_or(|level| order.level == level)
            && readable(&scope, &order)
        {
            orders.push(order);
        }
    }
    Ok(orders)
}

/// `GET /api/v1/supervision-orders`: the orders issued by or to the units in the user's scope.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    QueryParams(query): QueryParams<SupervisionQuery>,
) -> Result<Json<Vec<SupervisionOrderItem>>, ApiError> {
    Ok(Json(orders(&state, &user, &query).await?))
}

/// One step of an order's history, from the event archive.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SupervisionStep {
    /// Log position.
    pub position: i64,
    /// When.
    pub occurred_at: String,
    /// Who (a user name, or `system:supervision` for an escalation).
    pub actor_id: String,
    /// The event type.
    pub event_type: String,
    /// What happened, as the interface names it (下发, 签收, 进展, 办结反馈, 审核通过, 退回, 升级).
    pub label: String,
    /// The event's data (free text masked).
    pub data: serde_json::Value,
}

/// The step's name in the interface.
pub fn step_label(event_type: &str) -> &'static str {
    match event_type {
        "SupervisionOrderIssued" => "下发督办单",
        "SupervisionOrderAcknowledged" => "签收",
        "SupervisionProgressReported" => "报告进展",
        "SupervisionOrderAnswered" => "办结反馈",
        "SupervisionAnswerAccepted" => "审核通过，办结",
        "SupervisionAnswerSentBack" => "退回",
        "SupervisionOrderEscalated" => "逾期升级",
        _ => "其他",
    }
}

/// An order with its cases and history.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SupervisionOrderView {
    /// The order.
    pub order: SupervisionOrderItem,
    /// The cases it names (those the user may read are linked by the pages).
    pub case_ids: Vec<String>,
    /// Its history, oldest first.
    pub history: Vec<SupervisionStep>,
}

/// The order `id`, if the user may read it (404 otherwise, so that its existence does not leak).
pub(super) async fn order_in_scope(
    state: &AppState,
    user: &crate::User,
    id: &str,
) -> Result<SupervisionOrderItem, ApiError> {
    let not_found = || ApiError::not_found(format!("督办单 {id} 不存在"));
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM supervision_orders WHERE order_id = $1"
    )))
    .bind(id)
    .fetch_optional(state.store().pool())
    .await?
    .ok_or_else(not_found)?;
    let order = order_from_row(&row, state.today())?;
    if !readable(&Scope::of(state, user).await?, &order) {
        return Err(not_found());
    }
    Ok(order)
}

/// The order `id` with its cases and history, if the user may read it (404 otherwise).
pub(crate) async fn order_view(
    state: &AppState,
    user: &crate::User,
    id: &str,
) -> Result<SupervisionOrderView, ApiError> {
    let order = order_in_scope(state, user, id).await?;
    let case_ids = sqlx::query_scalar(
        "SELECT case_id FROM supervision_order_cases WHERE order_id = $1 ORDER BY case_id",
    )
    .bind(id)
    .fetch_all(state.store().pool())
    .await?;
    let rows = sqlx::query(
        "SELECT position, occurred_at, actor_id, event_type, CAST(data AS TEXT) AS data \
         FROM event_archive WHERE aggregate_type = 'supervision' AND aggregate_id = $1 \
         ORDER BY position, event_index",
    )
    .bind(id)
    .fetch_all(state.store().pool())
    .await?;
    let mut history = Vec::with_capacity(rows.len());
    for row in &rows {
        let event_type: String = row.try_get("event_type")?;
        let data: String = row.try_get("data")?;
        let mut data: serde_json::Value =
            serde_json::from_str(&data).map_err(ApiError::internal)?;
        super::case_masking::mask_free_text_in(&mut data);
        history.push(SupervisionStep {
            position: row.try_get("position")?,
            occurred_at: row.try_get("occurred_at")?,
            actor_id: row.try_get("actor_id")?,
            label: step_label(&event_type).to_owned(),
            event_type,
            data,
        });
    }
    Ok(SupervisionOrderView {
        order,
        case_ids,
        history,
    })
}

/// `GET /api/v1/supervision-orders/{id}`: the order, its cases and its history.
pub async fn show(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<SupervisionOrderView>, ApiError> {
    Ok(Json(order_view(&state, &user, &id).await?))
}

/// A new supervision order.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueOrderBody {
    /// The issuing unit; the user's own unit when absent.
    #[serde(default)]
    pub issuer_unit_id: Option<String>,
    /// The unit that must act and answer: below the issuer, or a department.
    pub addressee_unit_id: String,
    /// `reminder` (催办), `order` (督办) or `listed` (挂牌督办).
    pub level: SupervisionLevel,
    /// The cases it is about.
    #[serde(default)]
    pub case_ids: Vec<Uuid>,
    /// What is to be done.
    pub matter: String,
    /// By when the answer is due.
    pub answer_due_on: NaiveDate,
    /// The person responsible at the addressee.
    pub responsible: String,
}

/// `POST /api/v1/supervision-orders`: issue an order (下发督办单).
pub async fn issue(
    context: WriteContext,
    JsonBody(body): JsonBody<IssueOrderBody>,
) -> Result<WriteOutcome, ApiError> {
    let Some(issuer_unit_id) = body.issuer_unit_id.or(context.user.unit_id.clone()) else {
        return Err(ApiError::Unprocessable {
            message: "请指明督办单位 (issuer_unit_id)".into(),
            field: Some("issuer_unit_id".into()),
        });
    };
    let command = Command::IssueSupervisionOrder(IssueSupervisionOrder {
        order_id: None,
        issuer_unit_id,
        addressee_unit_id: body.addressee_unit_id,
        level: body.level,
        case_ids: body.case_ids,
        matter: body.matter,
        answer_due_on: body.answer_due_on,
        responsible: body.responsible,
    });
    Ok(context
        .run("POST /supervision-orders".to_owned(), command, true)
        .await)
}
