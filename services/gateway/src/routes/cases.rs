//! `POST /api/v1/cases`: register a case; and what every write on a case receives besides its
//! body ([`WriteContext`]). The writes that work a case are in `aggregate_writes`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::accounts::Role;
use zhzj_proto::commands::RegisterCase;

use crate::commands::{Write, execute};
use crate::extract::{CorrelationId, CurrentUser, IdempotencyKey, IfMatch, JsonBody, QueryParams};
use crate::{ApiError, AppState};

/// What every write handler receives besides its body.
pub struct WriteContext {
    pub(crate) state: AppState,
    pub(crate) user: crate::User,
    if_match: Option<u64>,
    key: Option<String>,
    correlation: Uuid,
}

impl WriteContext {
    /// A write by `user` outside an API request (the web pages), expecting `if_match`.
    pub(crate) fn new(
        state: AppState,
        user: crate::User,
        if_match: Option<u64>,
        correlation: Uuid,
    ) -> Self {
        Self {
            state,
            user,
            if_match,
            key: None,
            correlation,
        }
    }

    pub(crate) async fn run(
        self,
        route: String,
        command: Command,
        creates: bool,
    ) -> crate::commands::WriteOutcome {
        execute(
            &self.state,
            Write {
                user: self.user,
                command,
                if_match: self.if_match,
                idempotency_key: self.key,
                correlation_id: self.correlation,
                route,
                creates,
            },
        )
        .await
    }
}

impl axum::extract::FromRequestParts<AppState> for WriteContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        let IfMatch(if_match) = IfMatch::from_request_parts(parts, state).await?;
        let IdempotencyKey(key) = IdempotencyKey::from_request_parts(parts, state).await?;
        let CorrelationId(correlation) = CorrelationId::from_request_parts(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            user,
            if_match,
            key,
            correlation,
        })
    }
}

/// A case id from the path; anything else names no case.
pub(crate) fn case_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found(format!("案件 {text} 不存在")))
}

/// Options of a registration.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    /// When true, a registration that may duplicate an existing case is refused with 409
    /// `possible_duplicates` and the candidates, and nothing is appended.
    pub check_duplicates: Option<bool>,
}

/// `POST /api/v1/cases`: register a case (登记、列入清单).
pub async fn register(
    QueryParams(options): QueryParams<RegisterQuery>,
    context: WriteContext,
    JsonBody(body): JsonBody<RegisterCase>,
) -> Result<Response, ApiError> {
    // Only those who may register are told about possible duplicates: anyone else is refused
    // before any existing case is looked at (the service decides the scope on the write).
    let may_register = context.user.has_any_role(&[Role::Admin, Role::Coordinator]);
    if !may_register {
        return Err(ApiError::Forbidden(
            "只有专班协调员可以登记案件 (coordinators only)".into(),
        ));
    }
    if options.check_duplicates == Some(true) {
        let mut found = super::duplicates::DuplicateCheck::default();
        for petitioner in &body.petitioners {
            let has_id = petitioner
                .id_number
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty());
            let query = super::duplicates::DuplicateQuery {
                id_number: petitioner.id_number.clone(),
                name: Some(petitioner.name.clone()),
                town: body.town_id.clone(),
                category: Some(body.category.clone()),
            };
            // A petitioner with neither an ID number nor a town to match by cannot be checked.
            if !has_id && body.town_id.is_none() {
                continue;
            }
            let check =
                super::duplicates::find(&context.state, &context.user, &query, context.correlation)
                    .await?;
            for case in check.cases {
                if !found.cases.iter().any(|c| c.case_id == case.case_id) {
                    found.cases.push(case);
                }
            }
            found.outside_your_area |= check.outside_your_area;
            found.notice = found.notice.or(check.notice);
        }
        if !found.cases.is_empty() || found.outside_your_area {
            let body = serde_json::json!({
                "error": {
                    "code": "possible_duplicates",
                    "message": "可能与已有案件重复：请将本次信访登记到已有案件（POST /cases/{id}/petitions），或确认后不带 check_duplicates 重新提交",
                },
                "duplicates": found.cases,
                "outside_your_area": found.outside_your_area,
                "notice": found.notice,
            });
            return Ok((axum::http::StatusCode::CONFLICT, Json(body)).into_response());
        }
    }
    Ok(context
        .run("POST /cases".into(), Command::RegisterCase(body), true)
        .await
        .into_response())
}
