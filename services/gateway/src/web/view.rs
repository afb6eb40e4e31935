//! What every page shares: the layout (who is signed in, the menu, the CSRF token), rendering a
//! template into a response, the error page, and tables shown as HTML.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::{ApiError, User};

/// The frame of every page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page's title.
    pub title: String,
    /// The menu entry that is current.
    pub nav: &'static str,
    /// Who is signed in (empty on the login page).
    pub user_name: String,
    /// Their role, in words.
    pub role_label: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Today (China).
    pub today: String,
    /// A one-line notice (a write went through).
    pub flash: Option<String>,
    /// The signed-in user administers accounts (the menu shows 用户管理).
    pub is_admin: bool,
    /// The signed-in user reads the audit trail (the menu shows 审计记录).
    pub is_auditor: bool,
    /// The signed-in user holds a role that works with cases (an auditor alone does not: their
    /// menu is the trail only).
    pub reads_cases: bool,
    /// Open warnings in the user's scope (预警), shown in the header.
    pub open_warnings: usize,
    /// The user's unread messages (站内消息), shown in the header.
    pub unread_messages: i64,
}

/// The menu: key, address, label.
const MENU: [(&str, &str, &str); 9] = [
    ("checklist", "/checklist", "清单"),
    ("leaders", "/leaders", "包案领导"),
    ("meetings", "/meetings", "周调度"),
    ("supervision", "/supervision", "督办"),
    ("bulletins", "/bulletins", "月通报"),
    ("pushes", "/pushes", "季攻坚"),
    ("assessments", "/assessments", "年考核"),
    ("import", "/import", "导入"),
    ("org", "/org", "组织架构"),
];

impl Layout {
    /// The menu entries.
    pub fn menu(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut menu = if self.reads_cases {
            MENU.to_vec()
        } else {
            Vec::new()
        };
        if self.is_admin {
            menu.push(("users", "/users", "用户管理"));
        }
        if self.is_auditor {
            menu.push(("audit", "/audit", "审计记录"));
        }
        menu
    }
}

/// A form field's trimmed text, or None when it is empty ("any", "none").
pub fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A role's name as users know it.
pub fn role_name(role: &str) -> &str {
    zhzj_proto::accounts::role_label(role)
}

/// The user's role names as users know them.
pub fn role_label(user: &User) -> String {
    let labels: Vec<&str> = user.roles.iter().map(|role| role_name(role)).collect();
    labels.join("、")
}

/// `303 See Other` to `location`, a path of this site; one that cannot be a header (control
/// characters) goes to the checklist instead of failing.
pub fn see_other(location: &str) -> Response {
    let value = axum::http::HeaderValue::from_str(location)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("/checklist"));
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, value)],
    )
        .into_response()
}

/// Renders `page` as an HTML answer.
pub fn html<T: Template>(page: &T) -> Result<Response, ApiError> {
    page.render()
        .map(|text| Html(text).into_response())
        .map_err(ApiError::internal)
}

/// Renders `page` with `status`.
pub fn html_with<T: Template>(status: StatusCode, page: &T) -> Result<Response, ApiError> {
    Ok((status, html(page)?).into_response())
}

/// The page shown when something went wrong.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

/// The error page for `error`, in `layout`.
pub fn error_page(mut layout: Layout, error: &ApiError) -> Response {
    let heading = match error {
        ApiError::NotFound(_) => "未找到",
        ApiError::Forbidden(_) => "无权访问",
        ApiError::BadRequest { .. }
        | ApiError::Unprocessable { .. }
        | ApiError::UnsupportedMediaType(_)
        | ApiError::TooLarge(_) => "请求有误",
        ApiError::MethodNotAllowed(_) => "不支持的操作",
        ApiError::Unavailable(_) => "服务暂不可用",
        _ => "出错了",
    };
    let message = match error {
        ApiError::NotFound(message) => {
            format!("{message}：该内容不存在，或不在您的管辖范围内。")
        }
        other => other.to_string(),
    };
    layout.title = heading.to_owned();
    let page = ErrorPage {
        layout,
        heading,
        message,
    };
    match page.render() {
        Ok(text) => (error.status(), Html(text)).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// One cell of a table shown on a page.
#[derive(Debug, Clone)]
pub struct HtmlCell {
    /// The text.
    pub text: String,
    /// A link, e.g. to a case.
    pub href: Option<String>,
    /// Right-aligned (a number).
    pub numeric: bool,
}

impl HtmlCell {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            href: None,
            numeric: false,
        }
    }

    /// A number.
    pub fn number(text: impl ToString) -> Self {
        Self {
            text: text.to_string(),
            href: None,
            numeric: true,
        }
    }

    /// A link.
    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            href: Some(href.into()),
            numeric: false,
        }
    }
}

/// A table shown on a page.
#[derive(Debug, Clone)]
pub struct HtmlTable {
    /// Its caption.
    pub name: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<HtmlCell>>,
}

impl From<&zhzj_export::Table> for HtmlTable {
    /// The same table an export writes, as HTML: what is published and what is shown agree.
    fn from(table: &zhzj_export::Table) -> Self {
        use zhzj_export::Cell;
        Self {
            name: table.name.clone(),
            headers: table.headers.clone(),
            rows: table
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|cell| match cell {
                            Cell::Int(_) | Cell::Number(_) => HtmlCell::number(cell.text()),
                            other => HtmlCell::text(other.text()),
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

/// A choice of a select.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Sent value.
    pub value: String,
    /// Shown text.
    pub label: String,
}

/// A choice.
pub fn choice(value: &str, label: &str) -> Choice {
    Choice {
        value: value.to_owned(),
        label: label.to_owned(),
    }
}

/// The choices of an enum of the contracts: its JSON name, shown by its label.
pub fn enum_choices<T: serde::Serialize + Copy>(
    values: &[T],
    label: fn(T) -> &'static str,
) -> Vec<Choice> {
    values
        .iter()
        .filter_map(|value| {
            let key = serde_json::to_value(value).ok()?.as_str()?.to_owned();
            Some(choice(&key, label(*value)))
        })
        .collect()
}

/// The day of a timestamp (`2026-03-02T…` → `2026-03-02`), in China.
pub fn day_of(timestamp: &str) -> String {
    zhzj_store::china_date_of(timestamp).map_or_else(
        || timestamp.chars().take(10).collect(),
        |day| day.to_string(),
    )
}

/// A timestamp as people read it, in China time (`2026-03-02 14:05`).
pub fn minute_of(timestamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(timestamp).map_or_else(
        |_| timestamp.to_owned(),
        |at| {
            at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(*at.offset()))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// The address of a case's page.
pub fn case_href(case_id: &str) -> String {
    format!("/cases/{case_id}")
}

/// A counted figure as shown: the rate with its numerator and denominator, `—` when nothing was
/// counted.
pub fn ratio_text(ratio: zhzj_figures::Ratio) -> String {
    match ratio.percent() {
        Some(rate) => format!("{rate:.1}%（{}/{}）", ratio.numerator, ratio.denominator),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_show_what_they_count_and_name_an_empty_denominator() {
        let ratio = |numerator, denominator| zhzj_figures::Ratio {
            numerator,
            denominator,
        };
        assert_eq!(ratio_text(ratio(1, 3)), "33.3%（1/3）");
        assert_eq!(ratio_text(ratio(0, 0)), "—");
        assert_eq!(ratio_text(ratio(5, 5)), "100.0%（5/5）");
    }
}
