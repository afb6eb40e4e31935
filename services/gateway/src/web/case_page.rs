//! 案件: one case's page — every fact, its statutory clocks, the timeline of its events from the
//! archive (who, when, what), and the forms of the actions the user's role allows. A form is sent
//! to the same API handler as the JSON request, with the version the page showed as `If-Match`:
//! a refusal is shown beside the field at fault, and when someone else changed the case first
//! the page says so, shows the new state and keeps what the user typed.

use std::collections::HashMap;
use zhzj_proto::accounts::Role;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;
use zhzj_proto::events::{
    ActivityKind, Channel, ClaimClass, ProcedureStep, ResolutionGround, ReviewLevel, Satisfaction,
};

use super::auth::WebSession;
use super::checklist_page::{class_choices, deadline_words};
use super::forms::{Field, FormData, Outcome, json_body, name_missing_field, outcome};
use super::view::{Choice, Layout, choice, day_of, enum_choices, html_with, minute_of};
use crate::extract::CurrentUser;
use crate::routes::case_masking::RevealQuery;
use crate::routes::case_view::{self, CaseEventView, CaseView, MeasureView};
use crate::routes::case_writes::{CaseWrite, path_parameters, submit};
use crate::routes::cases::WriteContext;
use crate::routes::org;
use crate::{ApiError, AppState};
use zhzj_proto::commands::{
    AddMeasure, AssignLeader, ClaimResolution, ClassifyCase, CompleteMeasure, ExtendHandling,
    RateSatisfaction, RecordActivity, RecordNote, RecordPetition, RecordProcedureStep, ReviewClaim,
    SetResponsibleUnits,
};

/// What the user's role lets them do on a case (the `cases` service decides; this only chooses
/// which forms to show).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed {
    /// Assign the leader, set units, classify, claim, record petitions, ratings and procedure.
    manage: bool,
    /// Add and complete measures, log activities, write notes.
    work: bool,
    /// Review a claim.
    review: bool,
    /// The review level a reviewer works at (their unit's: 区联席办 or 市信访局), preselected.
    review_level: &'static str,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    at: String,
    who: String,
    what: String,
    detail: String,
    version: u64,
}

/// A petitioner as shown (masked unless revealed).
#[derive(Debug, Clone)]
pub struct PetitionerLine {
    name: String,
    id_number: String,
    phone: String,
    address: String,
}

/// A submitted form being shown again: its values and what was wrong.
#[derive(Debug, Clone, Default)]
pub struct RetainedForm {
    action: String,
    values: HashMap<String, String>,
    field: Option<String>,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    layout: Layout,
    case: CaseView,
    deadline: String,
    deadline_class: &'static str,
    petitioners: Vec<PetitionerLine>,
    facts: Vec<(String, String)>,
    timeline: Vec<TimelineEntry>,
    open_measures: Vec<MeasureView>,
    allowed: Allowed,
    conflict: Option<String>,
    retained: RetainedForm,
    leaders: Vec<Choice>,
    units: Vec<Choice>,
    channels: Vec<Choice>,
    activity_kinds: Vec<Choice>,
    classes: Vec<Choice>,
    grounds: Vec<Choice>,
    levels: Vec<Choice>,
    ratings: Vec<Choice>,
    steps: Vec<Choice>,
}

impl CasePage {
    /// The retained value of `field` of form `action`, or `default`.
    fn value_or(&self, action: &str, field: &str, default: &str) -> String {
        if self.retained.action == action {
            self.retained.values.get(field).cloned().unwrap_or_default()
        } else {
            default.to_owned()
        }
    }

    /// The retained value of `field` of form `action`.
    fn value(&self, action: &str, field: &str) -> String {
        self.value_or(action, field, "")
    }

    /// Whether `value` is chosen in `field` of form `action` (`default` when not retained).
    fn chosen(&self, action: &str, field: &str, value: &str, default: bool) -> bool {
        if self.retained.action == action {
            self.retained
                .values
                .get(field)
                .is_some_and(|v| v.split('\n').any(|v| v == value))
        } else {
            default
        }
    }

    /// The error beside `field` of form `action`.
    fn error(&self, action: &str, field: &str) -> Option<String> {
        (self.retained.action == action && self.retained.field.as_deref() == Some(field))
            .then(|| self.retained.message.clone())
            .flatten()
    }

    /// The error of form `action` that names no field of it.
    fn form_error(&self, action: &str) -> Option<String> {
        let named_fields = self.retained.field.as_ref().is_some_and(|f| {
            self.retained.values.contains_key(f) || FIELDLESS_NAMES.contains(&f.as_str())
        });
        (self.retained.action == action && !named_fields)
            .then(|| self.retained.message.clone())
            .flatten()
    }

    /// Whether `unit` is the lead unit now.
    fn lead_is(&self, unit: &str) -> bool {
        self.case
            .row
            .lead_unit
            .as_ref()
            .is_some_and(|u| u.id == unit)
    }

    /// The named handler now.
    fn handler(&self) -> &str {
        self.case.handler.as_deref().unwrap_or_default()
    }

    /// Whether the assisting unit `unit` is chosen.
    fn assisting(&self, unit: &str) -> bool {
        let current = self
            .case
            .row
            .assisting_units
            .as_deref()
            .unwrap_or_default()
            .split('、')
            .any(|name| {
                self.units
                    .iter()
                    .any(|u| u.value == unit && u.label == name)
            });
        self.chosen("units", "assisting_unit_ids", unit, current)
    }
}

/// Fields a form may leave out entirely (an unticked box, an empty multiple select), which the
/// API may still name.
const FIELDLESS_NAMES: [&str; 2] = ["assisting_unit_ids", "accept"];

/// `?done=` after a write.
#[derive(Debug, Deserialize)]
pub struct CaseQuery {
    done: Option<String>,
    reveal: Option<String>,
}

/// `GET /cases/{id}`.
pub async fn show(
    session: WebSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<CaseQuery>,
) -> Response {
    let reveal = RevealQuery {
        reveal: query.reveal,
    };
    let flash = query
        .done
        .as_deref()
        .and_then(action_label)
        .map(|label| format!("已保存：{label}"));
    let result = page(
        &state,
        &session,
        &id,
        &reveal,
        flash,
        RetainedForm::default(),
        None,
        axum::http::StatusCode::OK,
    )
    .await;
    session.respond(result, "checklist")
}

/// The actions of the case page, their form names and labels.
const ACTIONS: [(&str, &str); 13] = [
    ("leader", "指定包案领导"),
    ("units", "设定责任单位"),
    ("measures", "添加化解措施"),
    ("complete", "落实措施"),
    ("notes", "记录备注"),
    ("activities", "记录包案工作"),
    ("petitions", "登记再次信访"),
    ("classification", "分类施策"),
    ("claims", "申请化解销号"),
    ("review", "审核"),
    ("satisfaction", "满意度评价"),
    ("procedure", "记录法定程序"),
    ("extension", "延期办理"),
];

fn action_label(action: &str) -> Option<&'static str> {
    ACTIONS
        .iter()
        .find(|(name, _)| *name == action)
        .map(|(_, label)| *label)
}

/// `POST /cases/{id}/{action}`: one form of the case page.
pub async fn act(
    session: WebSession,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<FormData>,
) -> Response {
    let result = async {
        session.check_csrf(form.get("csrf"))?;
        if action_label(&action).is_none() {
            return Err(ApiError::not_found(format!("没有“{action}”这项操作")));
        }
        let version = form.get("version").trim().parse::<u64>().ok();
        let context = WriteContext::new(
            state.clone(),
            session.user.clone(),
            version,
            Uuid::new_v4(),
        );
        let answer = outcome(send(&action, &id, &form, context).await).await;
        let (conflict, message, field, status) = match answer {
            Outcome::Done => {
                return Ok(super::view::see_other(&format!("/cases/{id}?done={action}")));
            }
            Outcome::Stale { message } => (
                Some(format!(
                    "其他人已先修改了本案（{}）。下面是最新情况；您填写的内容已保留，请核对后再次提交。",
                    message.trim_end_matches(" (stale version)")
                )),
                None,
                None,
                axum::http::StatusCode::CONFLICT,
            ),
            Outcome::Refused { message, field } => (
                None,
                Some(message),
                field,
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            ),
        };
        let retained = RetainedForm {
            action: action.clone(),
            values: form.retained(),
            field,
            message,
        };
        page(
            &state,
            &session,
            &id,
            &RevealQuery::default(),
            None,
            retained,
            conflict,
            status,
        )
        .await
    }
    .await;
    session.respond(result, "checklist")
}

/// Sends form `action` to the write on the case it names.
async fn send(
    action: &str,
    id: &str,
    form: &FormData,
    context: WriteContext,
) -> Result<Response, ApiError> {
    use Field::{Bool, Lines, Many, Number, Optional, Required};
    /// The form's `fields` as the write `C` on case `id`; the form names any other parameter of
    /// its path (a measure's `measure_id`).
    async fn write<C: CaseWrite>(
        id: &str,
        form: &FormData,
        fields: &[Field],
        context: WriteContext,
    ) -> Result<Response, ApiError> {
        let mut params = vec![("id".to_owned(), id.to_owned())];
        params.extend(
            path_parameters::<C>().map(|name| (name.to_owned(), form.get(name).to_owned())),
        );
        submit::<C>(&params, json_body(form, fields), context)
            .await
            .map_err(|error| name_missing_field(error, fields))
    }
    match action {
        "leader" => {
            let fields = [Required("leader_id"), Optional("reason")];
            write::<AssignLeader>(id, form, &fields, context).await
        }
        "units" => {
            let fields = [
                Required("lead_unit_id"),
                Many("assisting_unit_ids"),
                Optional("handler"),
            ];
            write::<SetResponsibleUnits>(id, form, &fields, context).await
        }
        "measures" => {
            let fields = [
                Required("description"),
                Optional("due_on"),
                Optional("responsible_unit_id"),
            ];
            write::<AddMeasure>(id, form, &fields, context).await
        }
        "complete" => write::<CompleteMeasure>(id, form, &[Required("result")], context).await,
        "notes" => write::<RecordNote>(id, form, &[Required("text")], context).await,
        "activities" => {
            let fields = [
                Optional("kind"),
                Optional("held_on"),
                Optional("leader_id"),
                Lines("participants"),
                Required("summary"),
            ];
            write::<RecordActivity>(id, form, &fields, context).await
        }
        "petitions" => {
            let fields = [
                Optional("received_on"),
                Optional("channel"),
                Required("summary"),
            ];
            write::<RecordPetition>(id, form, &fields, context).await
        }
        "classification" => {
            let fields = [Optional("class"), Required("category"), Optional("reason")];
            write::<ClassifyCase>(id, form, &fields, context).await
        }
        "claims" => {
            let fields = [Optional("ground"), Required("summary"), Lines("evidence")];
            write::<ClaimResolution>(id, form, &fields, context).await
        }
        "review" => {
            let fields = [Optional("level"), Bool("accept"), Optional("reasons")];
            write::<ReviewClaim>(id, form, &fields, context).await
        }
        "satisfaction" => {
            let fields = [
                Optional("rating"),
                Optional("rated_on"),
                Required("rated_by"),
            ];
            write::<RateSatisfaction>(id, form, &fields, context).await
        }
        "procedure" => {
            let fields = [
                Optional("step"),
                Optional("on"),
                Required("summary"),
                Number("hearing_days"),
            ];
            write::<RecordProcedureStep>(id, form, &fields, context).await
        }
        "extension" => {
            let fields = [Number("days"), Required("reason"), Required("approved_by")];
            write::<ExtendHandling>(id, form, &fields, context).await
        }
        other => Err(ApiError::not_found(format!("没有“{other}”这项操作"))),
    }
}

/// What the user's role allows on cases.
async fn allowed(state: &AppState, session: &WebSession) -> Result<Allowed, ApiError> {
    if !session.user.may_write() {
        return Ok(Allowed::default());
    }
    let admin = session.has(Role::Admin);
    let kind = crate::scope::unit_kind(state, &session.user).await?;
    let area_coordinator = session.has(Role::Coordinator) && kind.as_deref() != Some("department");
    let manage = admin || area_coordinator;
    Ok(Allowed {
        manage,
        work: manage || session.has(Role::Coordinator) || session.has(Role::Leader),
        review: admin || session.has(Role::Reviewer),
        review_level: if kind.as_deref() == Some("district") {
            "district"
        } else {
            "city"
        },
    })
}

/// Display names of accounts, for the timeline.
async fn display_names(state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    let rows = sqlx::query("SELECT username, display_name FROM users")
        .fetch_all(state.store().pool())
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("username")?, row.try_get("display_name")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::from)
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    session: &WebSession,
    id: &str,
    reveal: &RevealQuery,
    flash: Option<String>,
    retained: RetainedForm,
    conflict: Option<String>,
    status: axum::http::StatusCode,
) -> Result<Response, ApiError> {
    let (case, events) =
        case_view::case_with_history(state, &session.user, id, reveal, Uuid::new_v4()).await?;
    let directory = org::show(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let names = display_names(state).await?;
    let (deadline_class, deadline) = deadline_words(&case.row);
    let mut layout = session.layout(format!("案件 {}", case.row.case_number), "checklist");
    layout.flash = flash;
    let timeline = events
        .iter()
        .rev()
        .map(|event| {
            let (what, detail) = describe(event);
            TimelineEntry {
                at: minute_of(&event.occurred_at),
                who: names
                    .get(&event.actor_id)
                    .cloned()
                    .unwrap_or_else(|| event.actor_id.clone()),
                what,
                detail,
                version: event.version,
            }
        })
        .collect();
    let petitioners = case
        .petitioners
        .iter()
        .map(|p| PetitionerLine {
            name: text(&p["name"]),
            id_number: text(&p["id_number"]),
            phone: text(&p["phone"]),
            address: text(&p["address"]),
        })
        .collect();
    let facts = facts_of(&case);
    let open_measures = case.measures.iter().filter(|m| !m.done).cloned().collect();
    let page = CasePage {
        layout,
        deadline,
        deadline_class,
        petitioners,
        facts,
        timeline,
        open_measures,
        allowed: allowed(state, session).await?,
        conflict,
        retained,
        leaders: directory
            .leaders
            .iter()
            .map(|l| choice(&l.leader_id, &format!("{}（{}）", l.name, l.title)))
            .collect(),
        units: directory
            .units
            .iter()
            .filter(|u| u.kind != "city")
            .map(|u| choice(&u.unit_id, &u.name))
            .collect(),
        channels: enum_choices(&Channel::ALL, Channel::label),
        activity_kinds: enum_choices(&ActivityKind::ALL, ActivityKind::label),
        classes: class_choices(),
        grounds: enum_choices(&ResolutionGround::ALL, ResolutionGround::label),
        levels: enum_choices(&ReviewLevel::ALL, ReviewLevel::label),
        ratings: enum_choices(&Satisfaction::ALL, Satisfaction::label),
        steps: enum_choices(&ProcedureStep::ALL, ProcedureStep::label),
        case,
    };
    html_with(status, &page)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The label of an enum value of the contracts, given as JSON.
fn label_of<T: DeserializeOwned>(value: &Value, label: fn(T) -> &'static str) -> String {
    serde_json::from_value::<T>(value.clone()).map_or_else(|_| text(value), |v| label(v).to_owned())
}

/// The facts table of a case (label, value).
fn facts_of(case: &CaseView) -> Vec<(String, String)> {
    let row = &case.row;
    let mut facts = vec![
        ("案件编号".into(), row.case_number.clone()),
        ("诉求".into(), row.matter.clone()),
        ("类别".into(), row.category.clone()),
        (
            "属地".into(),
            match &row.town {
                Some(town) => format!("{} · {}", row.district.name, town.name),
                None => row.district.name.clone(),
            },
        ),
        (
            "信访渠道".into(),
            case.channel
                .as_ref()
                .map(|c| label_of(&Value::String(c.clone()), Channel::label))
                .unwrap_or_default(),
        ),
        (
            "首次信访日期".into(),
            case.first_filed_on.clone().unwrap_or_default(),
        ),
        (
            "涉及人数".into(),
            case.group_size.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("列入清单".into(), day_of(&row.registered_at)),
        (
            "包案领导".into(),
            row.leader
                .as_ref()
                .map_or_else(|| "未包案".into(), |l| l.name.clone()),
        ),
        (
            "责任单位".into(),
            row.lead_unit
                .as_ref()
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        ),
        (
            "协办单位".into(),
            row.assisting_units.clone().unwrap_or_default(),
        ),
        (
            "具体责任人".into(),
            case.handler.clone().unwrap_or_default(),
        ),
        ("状态".into(), row.status_label.clone()),
        (
            "措施落实".into(),
            format!("{}/{}", row.measures_done, row.measures_total),
        ),
        ("重复信访".into(), format!("{} 次", row.repeat_count)),
        ("回潮".into(), format!("{} 次", row.relapse_count)),
    ];
    if let Some(classification) = &case.classification {
        facts.push((
            "分类施策".into(),
            format!(
                "{}（{}）",
                label_of(&classification["class"], ClaimClass::label),
                text(&classification["category"])
            ),
        ));
    }
    if let Some(rating) = case.satisfaction_ratings.last() {
        facts.push((
            "最近满意度".into(),
            format!(
                "{}（{}）",
                label_of(&rating["rating"], Satisfaction::label),
                text(&rating["rated_on"])
            ),
        ));
    }
    facts.push(("版本".into(), row.version.to_string()));
    facts
}

/// `main`, followed by the reason when one is given.
fn with_reason(main: String, reason: &Value) -> String {
    let reason = text(reason);
    if reason.is_empty() {
        main
    } else {
        format!("{main}；理由：{reason}")
    }
}

/// An event of the case in words: what happened, and its particulars.
fn describe(event: &CaseEventView) -> (String, String) {
    let d = &event.data;
    let s = |key: &str| text(&d[key]);
    let and_reason = |main: String, key: &str| with_reason(main, &d[key]);
    let (what, detail) = match event.event_type.as_str() {
        "CaseRegistered" => (
            "登记列入清单",
            format!("{}（{}）", s("matter"), s("category")),
        ),
        "LeaderAssigned" => (
            "指定包案领导",
            and_reason(text(&d["leader"]["name"]), "reason"),
        ),
        "LeaderReassigned" => (
            "更换包案领导",
            and_reason(
                format!("{} → {}", text(&d["from"]["name"]), text(&d["to"]["name"])),
                "reason",
            ),
        ),
        "ResponsibleUnitsSet" => {
            let assisting: Vec<String> = d["assisting"]
                .as_array()
                .map(|units| units.iter().map(|u| text(&u["name"])).collect())
                .unwrap_or_default();
            (
                "设定责任单位",
                format!(
                    "主办：{}{}",
                    text(&d["lead"]["name"]),
                    if assisting.is_empty() {
                        String::new()
                    } else {
                        format!("；协办：{}", assisting.join("、"))
                    }
                ),
            )
        }
        "MeasureAdded" => (
            "添加化解措施",
            format!(
                "{} {}{}",
                s("measure_id"),
                s("description"),
                d["due_on"]
                    .as_str()
                    .map(|due| format!("（{due} 前）"))
                    .unwrap_or_default()
            ),
        ),
        "MeasureCompleted" => ("措施落实", format!("{}：{}", s("measure_id"), s("result"))),
        "NoteRecorded" => ("备注", s("text")),
        _ => return describe_lifecycle(event),
    };
    (what.to_owned(), detail)
}

/// An event of the case's lifecycle in words (classification, claims and reviews, petitions,
/// satisfaction, the leader's work, the statutory procedure).
fn describe_lifecycle(event: &CaseEventView) -> (String, String) {
    let d = &event.data;
    let s = |key: &str| text(&d[key]);
    let and_reason = |main: String, key: &str| with_reason(main, &d[key]);
    let (what, detail) = match event.event_type.as_str() {
        "CaseClassified" => (
            "分类施策",
            and_reason(
                format!(
                    "{}（{}）",
                    label_of(&d["class"], ClaimClass::label),
                    s("category")
                ),
                "reason",
            ),
        ),
        "ResolutionClaimed" => (
            "申请化解销号",
            format!(
                "第 {} 次申请，{}：{}",
                s("claim"),
                label_of(&d["ground"], ResolutionGround::label),
                s("summary")
            ),
        ),
        "ClaimAccepted" => (
            "审核通过",
            format!(
                "{} {}",
                label_of(&d["level"], ReviewLevel::label),
                s("opinion")
            ),
        ),
        "ClaimSentBack" => (
            "审核退回",
            format!(
                "{}：{}",
                label_of(&d["level"], ReviewLevel::label),
                s("reasons")
            ),
        ),
        "CaseCrossedOff" => ("销号", String::new()),
        "PetitionRecorded" => (
            "再次信访",
            format!(
                "{} {}：{}",
                s("received_on"),
                label_of(&d["channel"], Channel::label),
                s("summary")
            ),
        ),
        "CaseReopened" => (
            "回潮，重新打开",
            format!("第 {} 次回潮", s("relapse_count")),
        ),
        "SatisfactionRated" => (
            "满意度评价",
            format!(
                "{}（{}，{}）",
                label_of(&d["rating"], Satisfaction::label),
                s("rated_on"),
                s("rated_by")
            ),
        ),
        "LeaderActivityRecorded" => (
            "包案领导开展工作",
            format!(
                "{} {} {}：{}",
                s("held_on"),
                text(&d["leader"]["name"]),
                label_of(&d["kind"], ActivityKind::label),
                s("summary")
            ),
        ),
        "HandlingExtended" => (
            "延期办理",
            format!(
                "延长 {} 天，{}批准；理由：{}",
                s("days"),
                s("approved_by"),
                s("reason")
            ),
        ),
        "PetitionerErased" => (
            "删除信访人个人信息",
            format!("第 {} 位信访人；理由：{}", s("petitioner"), s("reason")),
        ),
        "ProcedureStepRecorded" => (
            "法定程序",
            format!(
                "{} {}：{}",
                label_of(&d["step"], ProcedureStep::label),
                s("on"),
                s("summary")
            ),
        ),
        other => (other, String::new()),
    };
    (what.to_owned(), detail)
}
