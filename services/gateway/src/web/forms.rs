//! Forms of the pages: the submitted fields, their conversion into the JSON body the API handler
//! of the same action takes (so the page and the API validate alike), and the API's answer read
//! back as what the page shows: done, an error beside a field, or a conflict with another writer.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;
use crate::commands::WriteOutcome;
use crate::extract::parse_json;

/// A submitted form: every field in order (a multiple select sends one field per choice).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, or empty.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The values as a page keeps them to show again (a multiple select's joined by newlines).
    pub fn retained(&self) -> HashMap<String, String> {
        let mut values: HashMap<String, String> = HashMap::new();
        for (key, value) in &self.0 {
            values
                .entry(key.clone())
                .and_modify(|v| {
                    v.push('\n');
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        values
    }
}

/// How a form field becomes JSON.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// Text the API requires: always sent, so an empty one is refused by name.
    Required(&'static str),
    /// Optional text or date: left out when empty.
    Optional(&'static str),
    /// One item per line (evidence, participants): an array.
    Lines(&'static str),
    /// A multiple select: an array.
    Many(&'static str),
    /// `true` or `false`.
    Bool(&'static str),
    /// A whole number; left out when empty, sent as text (and refused by name) when not a number.
    Number(&'static str),
}

/// The JSON body of `form` described by `fields`.
pub fn json_body(form: &FormData, fields: &[Field]) -> Value {
    let mut body = Map::new();
    for field in fields {
        match *field {
            Field::Required(name) => {
                body.insert(name.into(), Value::String(form.get(name).trim().to_owned()));
            }
            Field::Optional(name) => {
                let value = form.get(name).trim();
                if !value.is_empty() {
                    body.insert(name.into(), Value::String(value.to_owned()));
                }
            }
            Field::Lines(name) => {
                let lines = form
                    .get(name)
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(|line| Value::String(line.to_owned()))
                    .collect();
                body.insert(name.into(), Value::Array(lines));
            }
            Field::Many(name) => {
                let values = form
                    .all(name)
                    .into_iter()
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect();
                body.insert(name.into(), Value::Array(values));
            }
            Field::Bool(name) => match form.get(name) {
                "true" => {
                    body.insert(name.into(), Value::Bool(true));
                }
                "false" => {
                    body.insert(name.into(), Value::Bool(false));
                }
                _ => {}
            },
            Field::Number(name) => {
                let text = form.get(name).trim();
                if !text.is_empty() {
                    let value = text
                        .parse::<u64>()
                        .map_or_else(|_| Value::String(text.to_owned()), Value::from);
                    body.insert(name.into(), value);
                }
            }
        }
    }
    Value::Object(body)
}

/// Parses the body of `form` as the API's request type, naming the field at fault.
pub fn parse_body<T: DeserializeOwned>(form: &FormData, fields: &[Field]) -> Result<T, ApiError> {
    let body = json_body(form, fields);
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    parse_json(&bytes).map_err(|error| name_missing_field(error, fields))
}

/// serde names a missing field only in its message; give it to the page as the field.
pub(crate) fn name_missing_field(error: ApiError, fields: &[Field]) -> ApiError {
    match error {
        ApiError::Unprocessable {
            message,
            field: None,
        } => {
            let field = fields.iter().find_map(|field| {
                let name = match *field {
                    Field::Required(n)
                    | Field::Optional(n)
                    | Field::Lines(n)
                    | Field::Many(n)
                    | Field::Bool(n)
                    | Field::Number(n) => n,
                };
                message
                    .contains(&format!("missing field `{name}`"))
                    .then(|| name.to_owned())
            });
            let message = if field.is_some() {
                "此项必填".to_owned()
            } else {
                message
            };
            ApiError::Unprocessable { message, field }
        }
        other => other,
    }
}

/// What came of a write, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Done,
    /// Someone else changed it first (the version the form was filled against is gone).
    Stale {
        /// The message.
        message: String,
    },
    /// Refused; `field` names the form field at fault when the API named one.
    Refused {
        /// The message.
        message: String,
        /// The field.
        field: Option<String>,
    },
}

/// The form field a JSON path names (`.evidence[0]` → `evidence`, `command.description` →
/// `description`).
fn field_of(path: &str) -> String {
    let last = path
        .rsplit('.')
        .find(|part| !part.is_empty())
        .unwrap_or_default();
    last.split('[').next().unwrap_or_default().to_owned()
}

/// A message shown beside its field: without the field's path in front and the English gloss
/// behind (`command.description 不能为空 (required)` → `不能为空`).
fn beside_field(message: &str, path: &str) -> String {
    let text = message.strip_prefix(path).unwrap_or(message).trim();
    let text = match text.rfind(" (") {
        Some(at) if text.ends_with(')') && text[at..].is_ascii() => &text[..at],
        _ => text,
    };
    text.to_owned()
}

/// What a write came to, as the page shows it.
pub fn outcome(written: Result<WriteOutcome, ApiError>) -> Outcome {
    let written = match written {
        Ok(written) => written,
        Err(error) => return refused(&error),
    };
    let error = match written.result() {
        Ok(_) => return Outcome::Done,
        Err(body) => &body.error,
    };
    let message = error.message.clone();
    if error.code == "precondition_failed" {
        return Outcome::Stale { message };
    }
    match error.field.as_deref() {
        Some(path) => Outcome::Refused {
            message: beside_field(&message, path),
            field: Some(field_of(path)),
        },
        None => Outcome::Refused {
            message,
            field: None,
        },
    }
}

/// An error raised before the API answered, as an outcome.
pub fn refused(error: &ApiError) -> Outcome {
    match error {
        ApiError::PreconditionFailed { message, .. } => Outcome::Stale {
            message: message.clone(),
        },
        ApiError::BadRequest { message, field } | ApiError::Unprocessable { message, field } => {
            Outcome::Refused {
                message: field
                    .as_deref()
                    .map_or_else(|| message.clone(), |path| beside_field(message, path)),
                field: field.as_deref().map(field_of),
            }
        }
        other => Outcome::Refused {
            message: other.to_string(),
            field: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn form_fields_become_the_api_body() {
        let data = form(&[
            ("summary", " 已解决 "),
            ("reason", ""),
            ("evidence", "协议书\r\n\r\n回访记录"),
            ("assisting_unit_ids", "a"),
            ("assisting_unit_ids", "b"),
            ("accept", "false"),
            ("days", "15"),
            ("hearing_days", "x"),
        ]);
        let body = json_body(
            &data,
            &[
                Field::Required("summary"),
                Field::Optional("reason"),
                Field::Lines("evidence"),
                Field::Many("assisting_unit_ids"),
                Field::Bool("accept"),
                Field::Number("days"),
                Field::Number("hearing_days"),
            ],
        );
        assert_eq!(
            body,
            serde_json::json!({
                "summary": "已解决",
                "evidence": ["协议书", "回访记录"],
                "assisting_unit_ids": ["a", "b"],
                "accept": false,
                "days": 15,
                "hearing_days": "x",
            })
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            rating: String,
        }
        let error = parse_body::<Body>(&form(&[]), &[Field::Optional("rating")])
            .expect_err("rating is required");
        assert!(
            matches!(&error, ApiError::Unprocessable { field: Some(f), .. } if f == "rating"),
            "{error:?}"
        );
    }

    #[test]
    fn json_paths_name_form_fields() {
        assert_eq!(field_of(".evidence[0]"), "evidence");
        assert_eq!(field_of("leader_id"), "leader_id");
        assert_eq!(field_of("command.description"), "description");
        assert_eq!(
            beside_field(
                "command.description 不能为空 (required)",
                "command.description"
            ),
            "不能为空"
        );
        assert_eq!(
            beside_field("日期（不能晚于今天）", "on"),
            "日期（不能晚于今天）"
        );
    }
}
