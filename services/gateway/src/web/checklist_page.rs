//! 清单: the checklist board — the checklist API's rows under the same filters (district, town,
//! leader, unit, status, class, overdue, due within N days, free text), sorted and paged, overdue
//! and due-soon cases marked, and the filtered list exported through the API's XLSX export.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::auth::WebSession;
use super::view::{Choice, Layout, choice, day_of, enum_choices, html};
use crate::extract::{CurrentUser, QueryParams};
use crate::routes::checklist::{self, ChecklistItem, ChecklistQuery};
use crate::routes::org;
use crate::{ApiError, AppState};

/// A case due within this many days is marked due soon.
const DUE_SOON_DAYS: i64 = 7;

/// The filter form as submitted (every field text, so an empty choice is no filter).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChecklistForm {
    district: Option<String>,
    town: Option<String>,
    leader: Option<String>,
    unit: Option<String>,
    status: Option<String>,
    class: Option<String>,
    overdue: Option<String>,
    due_within: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

impl ChecklistForm {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("district", &self.district),
            ("town", &self.town),
            ("leader", &self.leader),
            ("unit", &self.unit),
            ("status", &self.status),
            ("class", &self.class),
            ("overdue", &self.overdue),
            ("due_within", &self.due_within),
            ("q", &self.q),
            ("sort", &self.sort),
            ("page", &self.page),
        ]
        .into_iter()
        .filter_map(|(key, value)| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|value| (key, value))
        })
        .collect()
    }

    /// The query string of these filters with `changes` applied (an empty value drops a key).
    fn query_with(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs()
            .into_iter()
            .filter(|(key, _)| !changes.iter().any(|(k, _)| k == key))
            .collect();
        pairs.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            serializer.append_pair(key, value);
        }
        serializer.finish()
    }

    fn value(&self, key: &str) -> &str {
        self.pairs()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v)
    }

    /// The API query these filters ask for.
    fn to_query(&self) -> Result<ChecklistQuery, ApiError> {
        let number = |key: &'static str, text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| ApiError::BadRequest {
                    message: format!("“{text}”不是有效的天数或页码"),
                    field: Some(key.into()),
                })
        };
        let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(ChecklistQuery {
            district: given(&self.district),
            town: given(&self.town),
            leader: given(&self.leader),
            unit: given(&self.unit),
            status: given(&self.status),
            class: given(&self.class),
            sort: given(&self.sort),
            q: given(&self.q),
            due_within: given(&self.due_within)
                .map(|d| number("due_within", &d))
                .transpose()?,
            overdue: given(&self.overdue).map(|v| v == "1" || v == "true"),
            page: given(&self.page).map(|p| number("page", &p)).transpose()?,
            per_page: Some(PER_PAGE),
        })
    }
}

/// Rows per page of the board.
const PER_PAGE: u32 = 25;

/// A column that can be sorted.
#[derive(Debug, Clone)]
pub struct SortableColumn {
    label: &'static str,
    href: String,
    /// `↑`, `↓` or empty.
    mark: &'static str,
}

/// One row as the board shows it.
#[derive(Debug, Clone)]
pub struct BoardRow {
    item: ChecklistItem,
    /// `overdue`, `due-soon` or empty.
    class: &'static str,
    /// The deadline in words.
    deadline: String,
    /// The day it was put on the list.
    registered_on: String,
    /// The day of its last activity.
    last_activity_on: String,
}

#[derive(Template)]
#[template(path = "checklist.html")]
struct ChecklistBoard {
    layout: Layout,
    form: ChecklistForm,
    error: Option<String>,
    districts: Vec<Choice>,
    towns: Vec<Choice>,
    leaders: Vec<Choice>,
    units: Vec<Choice>,
    statuses: Vec<Choice>,
    classes: Vec<Choice>,
    columns: Vec<SortableColumn>,
    rows: Vec<BoardRow>,
    total: i64,
    page: u32,
    pages: u32,
    previous: Option<String>,
    next: Option<String>,
    export_xlsx: String,
    export_csv: String,
}

impl ChecklistBoard {
    fn selected(&self, key: &str, value: &str) -> bool {
        self.form.value(key) == value
    }

    fn value(&self, key: &str) -> String {
        self.form.value(key).to_owned()
    }
}

/// The sortable columns: label and sort key.
const COLUMNS: [(&str, &str); 6] = [
    ("案件编号", "case_number"),
    ("区 / 镇街", "district"),
    ("措施", "progress"),
    ("下一期限", "deadline"),
    ("列入清单", "registered"),
    ("最近动态", "last_activity"),
];

/// `GET /checklist`.
pub async fn show(
    session: WebSession,
    State(state): State<AppState>,
    Query(form): Query<ChecklistForm>,
) -> Response {
    let result = board(&state, &session, form).await;
    session.respond(result, "checklist")
}

async fn board(
    state: &AppState,
    session: &WebSession,
    form: ChecklistForm,
) -> Result<Response, ApiError> {
    let directory = org::show(State(state.clone()), CurrentUser(session.user.clone()))
        .await?
        .0;
    let listed = match form.to_query() {
        Ok(query) => {
            checklist::list(
                State(state.clone()),
                CurrentUser(session.user.clone()),
                QueryParams(query),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let (page, error) = match listed {
        Ok(page) => (Some(page.0), None),
        Err(e @ ApiError::BadRequest { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let name_of = |id: &Option<String>| {
        directory
            .units
            .iter()
            .find(|u| Some(&u.unit_id) == id.as_ref())
            .map(|u| u.name.clone())
            .unwrap_or_default()
    };
    let units_of = |kind: &str| -> Vec<Choice> {
        directory
            .units
            .iter()
            .filter(|u| u.kind == kind)
            .map(|u| {
                let label = if kind == "town" {
                    format!("{}·{}", name_of(&u.parent_id), u.name)
                } else {
                    u.name.clone()
                };
                choice(&u.unit_id, &label)
            })
            .collect()
    };
    let mut units = units_of("department");
    units.extend(units_of("town"));
    let leaders = directory
        .leaders
        .iter()
        .map(|l| choice(&l.leader_id, &format!("{}（{}）", l.name, l.title)))
        .collect();
    let current_sort = form.value("sort").to_owned();
    let columns = COLUMNS
        .iter()
        .map(|(label, key)| {
            let (next, mark) = if current_sort == *key {
                (format!("-{key}"), "↑")
            } else if current_sort == format!("-{key}") {
                ((*key).to_owned(), "↓")
            } else {
                ((*key).to_owned(), "")
            };
            SortableColumn {
                label,
                href: format!(
                    "/checklist?{}",
                    form.query_with(&[("sort", &next), ("page", "")])
                ),
                mark,
            }
        })
        .collect();
    let (rows, total, page_number) = match page {
        Some(page) => (page.rows, page.total, page.page),
        None => (Vec::new(), 0, 1),
    };
    let pages = u32::try_from((total + i64::from(PER_PAGE) - 1) / i64::from(PER_PAGE))
        .unwrap_or(u32::MAX)
        .max(1);
    let link_to = |p: u32| {
        format!(
            "/checklist?{}",
            form.query_with(&[("page", &p.to_string())])
        )
    };
    let export_query = form.query_with(&[("page", "")]);
    let board = ChecklistBoard {
        layout: session.layout("清单", "checklist"),
        error,
        districts: units_of("district"),
        towns: units_of("town"),
        leaders,
        units,
        statuses: [
            ("unassigned", "待包案"),
            ("in_progress", "化解中"),
            ("measures_done", "措施已落实"),
            ("under_review", "审核中"),
            ("crossed_off", "已销号"),
        ]
        .iter()
        .map(|(v, l)| choice(v, l))
        .collect(),
        classes: class_choices(),
        columns,
        rows: rows.into_iter().map(board_row).collect(),
        total,
        page: page_number,
        pages,
        previous: (page_number > 1).then(|| link_to(page_number - 1)),
        next: (page_number < pages).then(|| link_to(page_number + 1)),
        export_xlsx: format!("/api/v1/checklist/export.xlsx?{export_query}"),
        export_csv: format!("/api/v1/checklist/export.csv?{export_query}"),
        form,
    };
    html(&board)
}

/// The 三到位一处理 classes as choices.
pub fn class_choices() -> Vec<Choice> {
    use zhzj_proto::events::ClaimClass;
    enum_choices(&ClaimClass::ALL, ClaimClass::label)
}

/// The deadline of a row in words, and whether it is overdue or due soon.
pub fn deadline_words(item: &ChecklistItem) -> (&'static str, String) {
    let (Some(due), Some(days)) = (&item.next_deadline, item.days_left) else {
        return ("", "—".into());
    };
    let what = item.next_deadline_label.as_deref().unwrap_or("期限");
    let estimated = if item.deadline_estimated {
        "（预估）"
    } else {
        ""
    };
    if days < 0 {
        (
            "overdue",
            format!("{what} {due}{estimated}，已超期 {} 天", -days),
        )
    } else if days <= DUE_SOON_DAYS {
        ("due-soon", format!("{what} {due}{estimated}，剩 {days} 天"))
    } else {
        ("", format!("{what} {due}{estimated}"))
    }
}

fn board_row(item: ChecklistItem) -> BoardRow {
    let (class, deadline) = deadline_words(&item);
    BoardRow {
        registered_on: day_of(&item.registered_at),
        last_activity_on: day_of(&item.last_activity_at),
        item,
        class,
        deadline,
    }
}
