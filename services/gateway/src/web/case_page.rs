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
use sqlx::Row;
use uuid::Uuid;
use zhzj_proto::events::{
    ActivityKind, CaseEvent, Channel, ProcedureStep, ResolutionGround, ReviewLevel, Satisfaction,
};

use super::auth::WebSession;
use super::checklist_page::{class_choices, deadline_words};
use super::forms::{Field, FormData, Outcome, json_body, name_missing_field, outcome};
use super::view::{Choice, Layout, choice, day_of, enum_choices, html_with, minute_of};
use crate::extract::CurrentUser;
use crate::routes::aggregate_writes::{AggregateWrite, path_parameters, submit};
use crate::routes::case_masking::RevealQuery;
use crate::routes::case_view::{self, CaseEventView, CaseView, MeasureView};
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
    /// The supervision orders naming the case.
    orders: Vec<crate::routes::supervision::SupervisionOrderItem>,
    /// The case's open warnings.
    warnings: Vec<crate::routes::notices::WarningItem>,
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
        let answer = outcome(send(&action, &id, &form, context).await);
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
) -> Result<crate::commands::WriteOutcome, ApiError> {
    use Field::{Bool, Lines, Many, Number, Optional, Required};
    /// The form's `fields` as the write `C` on case `id`; the form names any other parameter of
    /// its path (a measure's `measure_id`).
    async fn write<C: AggregateWrite>(
        id: &str,
        form: &FormData,
        fields: &[Field],
        context: WriteContext,
    ) -> Result<crate::commands::WriteOutcome, ApiError> {
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
                what: what.to_owned(),
                at: minute_of(&event.occurred_at),
                who: names
                    .get(&event.actor_id)
                    .cloned()
                    .unwrap_or_else(|| event.actor_id.clone()),
                detail,
                version: event.version,
            }
        })
        .collect();
    let petitioners = case
        .petitioners
        .iter()
        .map(|p| PetitionerLine {
            name: p.name.clone(),
            id_number: p.id_number.clone().unwrap_or_default(),
            phone: p.phone.clone().unwrap_or_default(),
            address: p.address.clone().unwrap_or_default(),
        })
        .collect();
    let facts = facts_of(&case);
    let open_measures = case.measures.iter().filter(|m| !m.done).cloned().collect();
    let case_uuid = id.parse::<Uuid>().ok();
    let orders = crate::routes::supervision::orders(
        state,
        &session.user,
        &crate::routes::supervision::SupervisionQuery {
            case_id: case_uuid,
            ..Default::default()
        },
    )
    .await?;
    let warnings = crate::routes::notices::warnings(
        state,
        &session.user,
        &crate::scope::Scope::of(state, &session.user).await?,
        &crate::routes::notices::WarningQuery {
            case_id: case_uuid,
            ..Default::default()
        },
    )
    .await?
    .rows;
    let page = CasePage {
        orders,
        warnings,
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
                .map(Channel::label)
                .unwrap_or_default()
                .to_owned(),
        ),
        (
            "首次信访日期".into(),
            case.first_filed_on
                .map(|day| day.to_string())
                .unwrap_or_default(),
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
                classification.classified.class.label(),
                classification.classified.category
            ),
        ));
    }
    if let Some(rating) = case.satisfaction_ratings.last() {
        facts.push((
            "最近满意度".into(),
            format!("{}（{}）", rating.rating.label(), rating.rated_on),
        ));
    }
    facts.push(("版本".into(), row.version.to_string()));
    facts
}

/// `main`, followed by the reason when one is given.
fn with_reason(main: String, reason: Option<&str>) -> String {
    match reason {
        Some(reason) if !reason.is_empty() => format!("{main}；理由：{reason}"),
        _ => main,
    }
}

/// An event of the case in words: what happened, and its particulars.
fn describe(event: &CaseEventView) -> (&'static str, String) {
    describe_event(&event.event)
}

/// A case event in words (registration, ownership, measures, notes; the rest in
/// [`describe_lifecycle`]).
fn describe_event(event: &CaseEvent) -> (&'static str, String) {
    match event {
        CaseEvent::Registered(registered) => (
            "登记列入清单",
            format!("{}（{}）", registered.matter, registered.category),
        ),
        CaseEvent::LeaderAssigned(assigned) => (
            "指定包案领导",
            with_reason(assigned.leader.name.clone(), assigned.reason.as_deref()),
        ),
        CaseEvent::LeaderReassigned(reassigned) => (
            "更换包案领导",
            with_reason(
                format!("{} → {}", reassigned.from.name, reassigned.to.name),
                Some(&reassigned.reason),
            ),
        ),
        CaseEvent::ResponsibleUnitsSet(units) => {
            let assisting: Vec<&str> = units.assisting.iter().map(|u| u.name.as_str()).collect();
            (
                "设定责任单位",
                format!(
                    "主办：{}{}",
                    units.lead.name,
                    if assisting.is_empty() {
                        String::new()
                    } else {
                        format!("；协办：{}", assisting.join("、"))
                    }
                ),
            )
        }
        CaseEvent::MeasureAdded(added) => (
            "添加化解措施",
            format!(
                "{} {}{}",
                added.measure_id,
                added.description,
                added
                    .due_on
                    .map(|due| format!("（{due} 前）"))
                    .unwrap_or_default()
            ),
        ),
        CaseEvent::MeasureCompleted(completed) => (
            "措施落实",
            format!("{}：{}", completed.measure_id, completed.result),
        ),
        CaseEvent::NoteRecorded(note) => ("备注", note.text.clone()),
        // Every other event by name, so that a new one is described somewhere.
        lifecycle @ (CaseEvent::Classified(_)
        | CaseEvent::ResolutionClaimed(_)
        | CaseEvent::ClaimAccepted(_)
        | CaseEvent::ClaimSentBack(_)
        | CaseEvent::CrossedOff(_)
        | CaseEvent::PetitionRecorded(_)
        | CaseEvent::Reopened(_)
        | CaseEvent::SatisfactionRated(_)
        | CaseEvent::LeaderActivity(_)
        | CaseEvent::HandlingExtended(_)
        | CaseEvent::PetitionerErased(_)
        | CaseEvent::ProcedureStep(_)
        | CaseEvent::UnreadableCommitsSkipped(_)) => describe_lifecycle(lifecycle),
    }
}

/// An event of the case's lifecycle in words (classification, claims and reviews, petitions,
/// satisfaction, the leader's work, the statutory procedure).
fn describe_lifecycle(event: &CaseEvent) -> (&'static str, String) {
    match event {
        CaseEvent::Classified(classified) => (
            "分类施策",
            with_reason(
                format!("{}（{}）", classified.class.label(), classified.category),
                classified.reason.as_deref(),
            ),
        ),
        CaseEvent::ResolutionClaimed(claimed) => (
            "申请化解销号",
            format!(
                "第 {} 次申请，{}：{}",
                claimed.claim,
                claimed.ground.label(),
                claimed.summary
            ),
        ),
        CaseEvent::ClaimAccepted(accepted) => (
            "审核通过",
            format!(
                "{} {}",
                accepted.level.label(),
                accepted.opinion.as_deref().unwrap_or_default()
            ),
        ),
        CaseEvent::ClaimSentBack(sent_back) => (
            "审核退回",
            format!("{}：{}", sent_back.level.label(), sent_back.reasons),
        ),
        CaseEvent::CrossedOff(_) => ("销号", String::new()),
        CaseEvent::PetitionRecorded(petition) => (
            "再次信访",
            format!(
                "{} {}：{}",
                petition.received_on,
                petition.channel.label(),
                petition.summary
            ),
        ),
        CaseEvent::Reopened(reopened) => (
            "回潮，重新打开",
            format!("第 {} 次回潮", reopened.relapse_count),
        ),
        CaseEvent::SatisfactionRated(rated) => (
            "满意度评价",
            format!(
                "{}（{}，{}）",
                rated.rating.label(),
                rated.rated_on,
                rated.rated_by
            ),
        ),
        CaseEvent::LeaderActivity(activity) => (
            "包案领导开展工作",
            format!(
                "{} {} {}：{}",
                activity.held_on,
                activity.leader.name,
                activity.kind.label(),
                activity.summary
            ),
        ),
        CaseEvent::HandlingExtended(extended) => (
            "延期办理",
            format!(
                "延长 {} 天，{}批准；理由：{}",
                extended.days, extended.approved_by, extended.reason
            ),
        ),
        CaseEvent::PetitionerErased(erased) => (
            "删除信访人个人信息",
            format!("第 {} 位信访人；理由：{}", erased.petitioner, erased.reason),
        ),
        CaseEvent::ProcedureStep(step) => (
            "法定程序",
            format!("{} {}：{}", step.step.label(), step.on, step.summary),
        ),
        CaseEvent::UnreadableCommitsSkipped(skipped) => {
            ("跳过无法读取的提交", skipped.reason.clone())
        }
        // Described by `describe`, which sends only the events above here.
        _ => ("", String::new()),
    }
}
