//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Schemas come from the same
//! `schemars` derives as the types the handlers read and write (and as `proto/schemas/`), so
//! the document cannot drift from the code's types; a test checks every path it lists is routed.

use std::sync::LazyLock;

use axum::Json;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::commands::WriteReply;
use crate::error::ErrorBody;
use crate::routes::{
    AssignmentBody, NewUserBody, PasswordChangeBody, ResetPasswordBody, UserActionReply,
};
use crate::routes::{
    CaseEventView, CaseView, ChecklistPage, DuplicateCheck, FeedbackBody, IdleCasesPage,
    ImportRefused, ImportReport, InstructionBody, LeadersView, LoginRequest, MeetingListItem,
    OrgView, PublishedBulletin, PushListItem, SessionReply,
};
use zhzj_proto::commands::{HoldMeeting, LaunchPush, PublishBulletin};

mod accounts;
mod campaign;
mod cases;
mod supervision;
mod views;

use accounts::{audit_paths, session_paths, user_paths};
use campaign::{assessment_paths, bulletin_paths, ledger_paths, meeting_paths, push_paths};
use cases::{case_read_paths, case_write_paths};
use supervision::supervision_paths;
use views::{checklist_paths, org_paths};

/// Builds schemas for one direction (requests are read, responses written).
struct Schemas {
    generator: SchemaGenerator,
}

impl Schemas {
    fn new(contract: Contract) -> Self {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas".into();
        settings.contract = contract;
        settings.meta_schema = None;
        Self {
            generator: settings.into_generator(),
        }
    }

    fn of<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }
}

/// A JSON body with a schema.
fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The error answers an operation can give.
fn errors(error: &Value, statuses: &[(&str, &str)]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|(status, description)| {
            (
                (*status).to_owned(),
                json!({"description": description, "content": json_content(error.clone())}),
            )
        })
        .collect()
}

/// One operation.
struct Operation<'a> {
    id: &'a str,
    summary: &'a str,
    request: Option<Value>,
    ok_status: &'a str,
    ok: Value,
    error_statuses: &'a [(&'a str, &'a str)],
    writes: bool,
}

impl<'a> Operation<'a> {
    /// A read: no body, `ok` answered with 200, the read errors.
    fn reading(id: &'a str, summary: &'a str, ok: Value) -> Self {
        Self {
            id,
            summary,
            request: None,
            ok_status: "200",
            ok,
            error_statuses: READ_ERRORS,
            writes: false,
        }
    }

    /// A command sent with `request`, answered `ok` with `ok_status`, the write errors and
    /// headers.
    fn writing(
        id: &'a str,
        summary: &'a str,
        request: Value,
        ok_status: &'a str,
        ok: Value,
    ) -> Self {
        Self {
            id,
            summary,
            request: Some(request),
            ok_status,
            ok,
            error_statuses: WRITE_ERRORS,
            writes: true,
        }
    }

    /// The same with other error answers.
    fn with_errors(self, error_statuses: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            error_statuses,
            ..self
        }
    }
}

const AUTH_ERRORS: &[(&str, &str)] = &[
    ("400", "查询参数有误（此接口不接受查询参数）"),
    ("401", "未登录或登录已失效"),
    ("503", "服务暂不可用，请稍后重试（见 Retry-After）"),
];
const ACCOUNT_ERRORS: &[(&str, &str)] = &[
    ("400", "请求体不是有效的 JSON"),
    ("401", "未登录或登录已失效"),
    (
        "403",
        "只有系统管理员可以管理用户；以 Cookie 提交须带 X-CSRF-Token",
    ),
    ("404", "没有该用户"),
    ("409", "用户名已存在"),
    (
        "422",
        "不符合规则（密码规则、未知角色或单位、当前密码不正确）；field 指出字段",
    ),
    ("503", "服务暂不可用，请稍后重试（见 Retry-After）"),
];
const READ_ERRORS: &[(&str, &str)] = &[
    ("400", "查询参数有误"),
    ("401", "未登录或登录已失效"),
    ("403", "本角色或本单位无权查看"),
    ("404", "不存在"),
    (
        "422",
        "查询参数不符合规则（日期范围、日志位置等）；field 指出参数",
    ),
    ("503", "服务暂不可用，请稍后重试（见 Retry-After）"),
];
const LOOKUP_ERRORS: &[(&str, &str)] = &[
    ("400", "查询参数有误（未知参数）"),
    ("401", "未登录或登录已失效"),
    ("403", "只有管理员和专班协调员可以查重"),
    (
        "422",
        "须填写完整且校验位正确的身份证号，或同时填写姓名、镇街和类别",
    ),
    ("429", "查重过于频繁（见 Retry-After）"),
    ("503", "服务暂不可用，请稍后重试（见 Retry-After）"),
];
const WRITE_ERRORS: &[(&str, &str)] = &[
    ("400", "请求体不是有效的 JSON"),
    ("401", "未登录或登录已失效"),
    ("403", "无权操作"),
    ("404", "案件或引用的对象不存在"),
    ("409", "与当前状态冲突"),
    ("412", "If-Match 版本已过期；响应含当前版本"),
    ("413", "请求体过大"),
    ("422", "内容不符合规则；field 指出字段"),
    ("503", "命令服务暂不可用，可用同一 Idempotency-Key 重试"),
];

fn operation(op: Operation<'_>, error: &Value) -> Value {
    let mut responses = errors(error, op.error_statuses);
    responses.insert(
        op.ok_status.to_owned(),
        json!({"description": "成功", "content": json_content(op.ok)}),
    );
    let mut value = json!({
        "operationId": op.id,
        "summary": op.summary,
        "responses": responses,
    });
    if let Some(request) = op.request {
        value["requestBody"] = json!({"required": true, "content": json_content(request)});
    }
    if op.writes {
        value["parameters"] = json!([
            {"name": "If-Match", "in": "header", "required": false,
             "description": "只在案件仍为此版本 (ETag) 时写入，否则 412",
             "schema": {"type": "string"}},
            {"name": "Idempotency-Key", "in": "header", "required": false,
             "description": "重试键：同一键的重复请求返回首次结果，不重复写入",
             "schema": {"type": "string", "maxLength": 128}},
        ]);
    }
    value
}

fn path_parameter(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

/// A file download (XLSX or CSV) with its parameters; a CSV of a multi-sheet report takes
/// `part`.
fn export_operation(
    id: &str,
    summary: &str,
    media: &str,
    parameters: &Value,
    csv_part: bool,
    error: &Value,
) -> Value {
    let mut export = operation(
        Operation {
            id,
            summary,
            request: None,
            ok_status: "200",
            ok: json!({"type": "string", "contentMediaType": media}),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        error,
    );
    let mut parameters = parameters.clone();
    if let Some(list) = parameters.as_array_mut()
        && csv_part
        && media == "text/csv"
    {
        list.push(json!({"name": "part", "in": "query", "required": false,
                         "schema": {"type": "string"}}));
    }
    export["parameters"] = parameters;
    export["responses"]["200"]["content"] =
        json!({media: {"schema": {"type": "string", "format": "binary"}}});
    export
}

/// `?reveal=personal` on the case reads.
fn reveal_parameter() -> Value {
    json!({
        "name": "reveal",
        "in": "query",
        "required": false,
        "description": "personal：显示信访人个人信息原文（限管理员、属地协调员、包案领导；每次读取留痕）",
        "schema": {"type": "string", "enum": ["personal"]}
    })
}

fn build() -> Value {
    let mut requests = Schemas::new(Contract::Deserialize);
    let mut responses = Schemas::new(Contract::Serialize);
    let error = responses.of::<ErrorBody>();
    let write = responses.of::<WriteReply>();
    let mut paths = Map::new();
    let mut add = |path: &str, method: &str, op: Value| {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op;
    };
    session_paths(&mut requests, &mut responses, &error, &mut add);
    user_paths(&mut requests, &mut responses, &error, &mut add);
    audit_paths(&mut responses, &error, &mut add);
    case_read_paths(&mut requests, &mut responses, &error, &write, &mut add);
    case_write_paths(&mut requests, &error, &write, &mut add);
    assessment_paths(&mut responses, &error, &mut add);
    ledger_paths(&mut responses, &error, &mut add);
    push_paths(&mut requests, &mut responses, &error, &write, &mut add);
    bulletin_paths(&mut requests, &mut responses, &error, &write, &mut add);
    meeting_paths(&mut requests, &mut responses, &error, &write, &mut add);
    supervision_paths(&mut requests, &mut responses, &error, &write, &mut add);
    checklist_paths(&mut responses, &error, &mut add);
    org_paths(&mut requests, &mut responses, &error, &write, &mut add);
    if let Some(parameters) = paths
        .get_mut("/api/v1/cases")
        .and_then(|p| p["post"]["parameters"].as_array_mut())
    {
        parameters.push(
            json!({"name": "check_duplicates", "in": "query", "required": false,
                               "schema": {"type": "boolean"}}),
        );
    }
    // Logging in needs no session.
    if let Some(login) = paths.get_mut("/api/v1/session") {
        login["post"]["security"] = json!([]);
    }
    let mut schemas = requests.generator.take_definitions(true);
    for (name, schema) in responses.generator.take_definitions(true) {
        schemas.entry(name).or_insert(schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "zhzj 治重化积 积案化解跟踪系统 API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "除登录外，所有接口需 Authorization: Bearer <token> 或会话 Cookie；以 Cookie 提交的写请求（POST、DELETE）还须带 X-CSRF-Token 请求头（登录返回的 csrf_token）。登录连续失败达到上限后账号或来源地址被锁定，返回 401 及 Retry-After。错误均为 {\"error\": {\"code\", \"message\", \"field\"}}。",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": crate::extract::SESSION_COOKIE},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
    })
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// The document, for tests and tools.
pub fn openapi_document() -> &'static Value {
    &DOCUMENT
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;

    use super::*;
    use crate::routes::{
        assessments, bulletins, case_masking, cases, checklist, duplicates, leaders, meetings,
        notices, pushes, supervision,
    };

    /// The query parameters the document names for `method path`, sorted.
    fn documented(method: &str, path: &str) -> Vec<String> {
        let mut names: Vec<String> = openapi_document()["paths"][path][method]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        names.sort_unstable();
        names
    }

    /// The fields of query type `T` but `except`, sorted.
    fn fields<T: JsonSchema>(except: &[&str]) -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).expect("schema");
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .filter(|name| !except.contains(&name.as_str()))
            .collect();
        names.sort_unstable();
        names
    }

    /// Each operation that reads a query documents exactly the fields its handler reads (the
    /// gateway refuses any other parameter by the document, `query_contract`), but for a
    /// workbook's CSV-only `part` or `sheet`.
    #[test]
    fn documented_query_parameters_are_the_fields_handlers_read() {
        let checks: [(Vec<String>, &[&str]); 14] = [
            (
                fields::<assessments::AssessmentQuery>(&["sheet"]),
                &["/api/v1/assessments", "/api/v1/assessments/export.xlsx"],
            ),
            (
                fields::<assessments::AssessmentQuery>(&[]),
                &["/api/v1/assessments/export.csv"],
            ),
            (
                fields::<assessments::CountedQuery>(&[]),
                &["/api/v1/assessments/counted"],
            ),
            (
                fields::<crate::audit::AuditFilter>(&[]),
                &[
                    "/api/v1/audit",
                    "/api/v1/audit/export.csv",
                    "/api/v1/audit/export.xlsx",
                ],
            ),
            (
                fields::<bulletins::BulletinPart>(&[]),
                &["/api/v1/bulletins/{month}/export.csv"],
            ),
            (
                fields::<case_masking::RevealQuery>(&[]),
                &["/api/v1/cases/{id}", "/api/v1/cases/{id}/events"],
            ),
            (
                fields::<checklist::ChecklistQuery>(&[]),
                &[
                    "/api/v1/checklist",
                    "/api/v1/checklist/export.xlsx",
                    "/api/v1/checklist/export.csv",
                ],
            ),
            (
                fields::<duplicates::DuplicateQuery>(&[]),
                &["/api/v1/cases/duplicates"],
            ),
            (fields::<leaders::LeadersQuery>(&[]), &["/api/v1/leaders"]),
            (
                fields::<meetings::AgendaQuery>(&["part"]),
                &["/api/v1/meetings/{id}", "/api/v1/meetings/{id}/agenda.xlsx"],
            ),
            (
                fields::<meetings::AgendaQuery>(&[]),
                &["/api/v1/meetings/{id}/agenda.csv"],
            ),
            (fields::<notices::WarningQuery>(&[]), &["/api/v1/warnings"]),
            (fields::<notices::InboxQuery>(&[]), &["/api/v1/inbox"]),
            (
                fields::<pushes::PushPart>(&[]),
                &["/api/v1/pushes/{quarter}/export.csv"],
            ),
        ];
        for (fields, paths) in &checks {
            for path in *paths {
                assert_eq!(&documented("get", path), fields, "GET {path}");
            }
        }
        assert_eq!(
            documented("get", "/api/v1/supervision-orders"),
            fields::<supervision::SupervisionQuery>(&[])
        );
        assert_eq!(
            documented("post", "/api/v1/cases"),
            fields::<cases::RegisterQuery>(&[])
        );
    }
}
