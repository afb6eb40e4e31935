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
    ActivityBody, AddMeasureBody, AssignLeaderBody, CaseEventView, CaseView, ChecklistPage,
    ClaimBody, ClassifyBody, CompleteMeasureBody, DuplicateCheck, ErasureBody, ExtensionBody,
    FeedbackBody, HoldMeetingBody, ImportRefused, ImportReport, InstructionBody, LaunchPushBody,
    LeadersView, LoginRequest, MeetingListItem, OrgView, PetitionBody, ProcedureBody,
    PublishBulletinBody, PublishedBulletin, PushListItem, RecordNoteBody, ReviewBody,
    SatisfactionBody, SessionReply, SetUnitsBody,
};
use crate::routes::{
    AssignmentBody, NewUserBody, PasswordChangeBody, ResetPasswordBody, UserActionReply,
};

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

const AUTH_ERRORS: &[(&str, &str)] = &[
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
    add(
        "/api/v1/session",
        "post",
        operation(
            Operation {
                id: "login",
                summary: "登录：返回令牌 (Bearer) 并设置会话 Cookie",
                request: Some(requests.of::<LoginRequest>()),
                ok_status: "201",
                ok: responses.of::<SessionReply>(),
                error_statuses: &[
                    ("400", "请求有误"),
                    ("401", "用户名或密码错误"),
                    ("413", "请求体过大"),
                    ("422", "缺少字段"),
                    ("503", "服务暂不可用，请稍后重试（见 Retry-After）"),
                ],
                writes: false,
            },
            &error,
        ),
    );
    add(
        "/api/v1/session",
        "get",
        operation(
            Operation {
                id: "currentUser",
                summary: "当前登录用户",
                request: None,
                ok_status: "200",
                ok: responses.of::<crate::User>(),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let mut logout = operation(
        Operation {
            id: "logout",
            summary: "退出登录",
            request: None,
            ok_status: "204",
            ok: json!({}),
            error_statuses: AUTH_ERRORS,
            writes: false,
        },
        &error,
    );
    logout["responses"]["204"] = json!({"description": "已退出"});
    add("/api/v1/session", "delete", logout);
    let mut change_password = operation(
        Operation {
            id: "changePassword",
            summary: "修改本人密码（初始密码、重置或过期的密码须先修改）；其他会话随之结束",
            request: Some(requests.of::<PasswordChangeBody>()),
            ok_status: "204",
            ok: json!({}),
            error_statuses: ACCOUNT_ERRORS,
            writes: false,
        },
        &error,
    );
    change_password["responses"]["204"] = json!({"description": "已修改"});
    add("/api/v1/session/password", "post", change_password);
    add(
        "/api/v1/users",
        "get",
        operation(
            Operation {
                id: "listUsers",
                summary: "用户管理：全部账号（含停用、锁定状态），限系统管理员",
                request: None,
                ok_status: "200",
                ok: responses.of::<Vec<crate::AccountSummary>>(),
                error_statuses: READ_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    add(
        "/api/v1/users",
        "post",
        operation(
            Operation {
                id: "createUser",
                summary: "新建账号（角色、单位、领导须在目录中；首次登录须修改密码），限系统管理员",
                request: Some(requests.of::<NewUserBody>()),
                ok_status: "201",
                ok: responses.of::<UserActionReply>(),
                error_statuses: ACCOUNT_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let user_actions: [(&str, &str, &str, &str, Option<Value>); 6] = [
        (
            "/api/v1/users/{username}/assignment",
            "post",
            "assignUser",
            "修改账号的角色、单位与对应领导",
            Some(requests.of::<AssignmentBody>()),
        ),
        (
            "/api/v1/users/{username}/password",
            "post",
            "resetPassword",
            "重置密码（下次登录须修改），并结束其全部会话",
            Some(requests.of::<ResetPasswordBody>()),
        ),
        (
            "/api/v1/users/{username}/unlock",
            "post",
            "unlockUser",
            "解除登录失败锁定",
            None,
        ),
        (
            "/api/v1/users/{username}/disable",
            "post",
            "disableUser",
            "停用账号并结束其会话",
            None,
        ),
        (
            "/api/v1/users/{username}/enable",
            "post",
            "enableUser",
            "启用账号",
            None,
        ),
        (
            "/api/v1/users/{username}/sessions",
            "delete",
            "endUserSessions",
            "强制下线：结束其全部会话",
            None,
        ),
    ];
    let action_reply = responses.of::<UserActionReply>();
    for (path, method, id, summary, request) in user_actions {
        let mut op = operation(
            Operation {
                id,
                summary,
                request,
                ok_status: "200",
                ok: action_reply.clone(),
                error_statuses: ACCOUNT_ERRORS,
                writes: false,
            },
            &error,
        );
        op["parameters"] = json!([path_parameter("username")]);
        add(path, method, op);
    }
    let audit_parameters = json!([
        {"name": "category", "in": "query", "required": false,
         "schema": {"type": "string", "enum": ["login", "login_failure", "account", "personal_data_read"]}},
        {"name": "username", "in": "query", "required": false, "schema": {"type": "string"},
         "description": "关于该账号或由该账号所做的记录"},
        {"name": "from", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}},
        {"name": "page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}},
        {"name": "per_page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    ]);
    let mut audit = operation(
        Operation {
            id: "listAudit",
            summary: "审计记录：登录、登录失败与锁定、账号变更（日志事件）及查看个人信息，按时间倒序；限审计员",
            request: None,
            ok_status: "200",
            ok: responses.of::<crate::audit::AuditPage>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    audit["parameters"] = audit_parameters.clone();
    add("/api/v1/audit", "get", audit);
    for (path, id, summary, media) in [
        (
            "/api/v1/audit/export.xlsx",
            "exportAuditXlsx",
            "导出审计记录（XLSX，按同样的筛选条件，至多 100000 条）；限审计员",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/audit/export.csv",
            "exportAuditCsv",
            "导出审计记录（CSV，UTF-8 带 BOM）；限审计员",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &audit_parameters, false, &error),
        );
    }
    add(
        "/api/v1/cases",
        "post",
        operation(
            Operation {
                id: "registerCase",
                summary: "登记积案、列入清单；?check_duplicates=true 时如可能重复则返回 409 possible_duplicates 及已有案件",
                request: Some(requests.of::<zhzj_proto::commands::RegisterCase>()),
                ok_status: "201",
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        ),
    );
    let mut show = operation(
        Operation {
            id: "getCase",
            summary: "案件详情：事实、程序、法定时限（个人信息默认脱敏；?reveal=personal 显示原文并留痕）；ETag 为案件版本",
            request: None,
            ok_status: "200",
            ok: responses.of::<CaseView>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    show["parameters"] = json!([path_parameter("id"), reveal_parameter()]);
    add("/api/v1/cases/{id}", "get", show);
    let mut history = operation(
        Operation {
            id: "getCaseEvents",
            summary: "案件的全部事件（事件档案）",
            request: None,
            ok_status: "200",
            ok: json!({"type": "array", "items": responses.of::<CaseEventView>()}),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    history["parameters"] = json!([path_parameter("id"), reveal_parameter()]);
    add("/api/v1/cases/{id}/events", "get", history);
    let case_writes: [(&str, &str, &str, Value, &str); 14] = [
        (
            "/api/v1/cases/{id}/erasures",
            "erasePetitioner",
            "删除信访人个人信息（仅系统管理员，须说明理由）：销毁其数据密钥，此后各处显示“已删除”，案件、统计与历史不变",
            requests.of::<ErasureBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/extension",
            "extendHandling",
            "延长办理期限（一次，至多30日，须经批准）",
            requests.of::<ExtensionBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/activities",
            "recordActivity",
            "记录包案领导工作（接访、约访、下访、听证等）",
            requests.of::<ActivityBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/classification",
            "classifyCase",
            "分类施策（三到位一处理、类别）",
            requests.of::<ClassifyBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/claims",
            "claimResolution",
            "申请化解销号（依据与材料）",
            requests.of::<ClaimBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/claims/review",
            "reviewClaim",
            "审核化解申请（区联席办→市信访局），末级通过即销号",
            requests.of::<ReviewBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/petitions",
            "recordPetition",
            "登记重复信访；已销号案件回潮重开",
            requests.of::<PetitionBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/satisfaction",
            "rateSatisfaction",
            "记录满意度评价",
            requests.of::<SatisfactionBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/procedure",
            "recordProcedureStep",
            "记录法定程序环节：告知受理、出具处理意见、申请复查、复查答复、申请复核、听证、复核答复（终结）",
            requests.of::<ProcedureBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/leader",
            "assignLeader",
            "指定或更换包案领导",
            requests.of::<AssignLeaderBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/units",
            "setResponsibleUnits",
            "设定责任单位（主办、协办）",
            requests.of::<SetUnitsBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/measures",
            "addMeasure",
            "添加化解措施",
            requests.of::<AddMeasureBody>(),
            "201",
        ),
        (
            "/api/v1/cases/{id}/measures/{measure_id}/complete",
            "completeMeasure",
            "措施落实销项",
            requests.of::<CompleteMeasureBody>(),
            "200",
        ),
        (
            "/api/v1/cases/{id}/notes",
            "recordNote",
            "记录工作情况",
            requests.of::<RecordNoteBody>(),
            "201",
        ),
    ];
    for (path, id, summary, body, status) in case_writes {
        let mut op = operation(
            Operation {
                id,
                summary,
                request: Some(body),
                ok_status: status,
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        );
        if let Some(parameters) = op["parameters"].as_array_mut() {
            parameters.insert(0, path_parameter("id"));
            if path.contains("{measure_id}") {
                parameters.insert(1, path_parameter("measure_id"));
            }
        }
        add(path, "post", op);
    }
    // 年考核: a scheme over a level and a period, as of a log position.
    let assessment_parameters = json!([
        {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "scheme", "in": "query", "required": false, "schema": {"type": "string", "enum": ["default", "dachuan"]}},
        {"name": "level", "in": "query", "required": false, "schema": {"type": "string", "enum": ["district", "town", "department"]}},
        {"name": "position", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0},
         "description": "日志位置，不超过当前位置；缺省为当前位置"},
    ]);
    let mut assessment = operation(
        Operation {
            id: "getAssessment",
            summary: "年度考核：按考核方案计算各单位得分、各指标分子分母与排名，并列出计入的每件案件及原因（按日志位置计算，同一位置结果不变）",
            request: None,
            ok_status: "200",
            ok: responses.of::<zhzj_figures::assessment::Assessment>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    assessment["parameters"] = assessment_parameters.clone();
    add("/api/v1/assessments", "get", assessment);
    let mut csv_parameters = assessment_parameters.clone();
    if let Some(list) = csv_parameters.as_array_mut() {
        list.push(json!({"name": "sheet", "in": "query", "required": false, "schema": {"type": "integer"}}));
    }
    for (path, id, summary, media, parameters) in [
        (
            "/api/v1/assessments/export.xlsx",
            "exportAssessmentXlsx",
            "导出年度考核（XLSX：说明、排名、各指标、明细；同一日志位置再次导出逐字节相同）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &assessment_parameters,
        ),
        (
            "/api/v1/assessments/export.csv",
            "exportAssessmentCsv",
            "导出年度考核的一页（CSV，UTF-8 带 BOM；sheet=页序号）",
            "text/csv",
            &csv_parameters,
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, parameters, false, &error),
        );
    }
    // 台账: template, import (all or nothing), export in the same template.
    for (path, id, summary, media) in [
        (
            "/api/v1/ledger/template.xlsx",
            "ledgerTemplateXlsx",
            "下载台账导入模板（XLSX）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/ledger/template.csv",
            "ledgerTemplateCsv",
            "下载台账导入模板（CSV，UTF-8 带 BOM）",
            "text/csv",
        ),
        (
            "/api/v1/ledger/export.xlsx",
            "exportLedgerXlsx",
            "按导入模板导出台账（含信访人个人信息：限管理员和属地协调员，逐案留痕）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/ledger/export.csv",
            "exportLedgerCsv",
            "按导入模板导出台账（CSV；含信访人个人信息，逐案留痕）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &json!([]), false, &error),
        );
    }
    for (path, id, media) in [
        (
            "/api/v1/ledger/import.xlsx",
            "importLedgerXlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("/api/v1/ledger/import.csv", "importLedgerCsv", "text/csv"),
    ] {
        let mut import = operation(
            Operation {
                id,
                summary: "导入台账：按表头匹配模板列，先逐行校验，有任何问题即整体不导入并逐行逐列报告（422）；同一台账重复导入不会重复登记",
                request: None,
                ok_status: "200",
                ok: responses.of::<ImportReport>(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        );
        import["requestBody"] = json!({
            "required": true,
            "content": {media: {"schema": {"type": "string", "format": "binary"}}}
        });
        import["responses"]["422"] = json!({
            "description": "台账有问题，未导入任何案件（逐行逐列列出）；或命令被拒绝",
            "content": json_content(json!({"anyOf": [responses.of::<ImportRefused>(), error.clone()]})),
        });
        add(path, "post", import);
    }
    // 季攻坚: launch, progress, final result, exports.
    add(
        "/api/v1/pushes",
        "post",
        operation(
            Operation {
                id: "launchPush",
                summary: "部署季度攻坚：季度、攻坚案件、各区域目标（化解件数或化解率）；市级协调员",
                request: Some(requests.of::<LaunchPushBody>()),
                ok_status: "201",
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        ),
    );
    add(
        "/api/v1/pushes",
        "get",
        operation(
            Operation {
                id: "listPushes",
                summary: "已部署的季度攻坚",
                request: None,
                ok_status: "200",
                ok: json!({"type": "array", "items": responses.of::<PushListItem>()}),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let quarter_parameter = json!([path_parameter("quarter")]);
    let mut push = operation(
        Operation {
            id: "getPush",
            summary: "季度攻坚进度：各区域对照目标、各攻坚案件进度；季度结束后为最终结果",
            request: None,
            ok_status: "200",
            ok: responses.of::<zhzj_figures::PushProgress>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    push["parameters"] = quarter_parameter.clone();
    add("/api/v1/pushes/{quarter}", "get", push);
    for (path, id, summary, media) in [
        (
            "/api/v1/pushes/{quarter}/export.xlsx",
            "exportPushXlsx",
            "导出季度攻坚报告（XLSX：区域进度、攻坚案件）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/pushes/{quarter}/export.csv",
            "exportPushCsv",
            "导出季度攻坚报告的一页（CSV，UTF-8 带 BOM；part=areas|cases）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &quarter_parameter, true, &error),
        );
    }
    // 月通报: drafts, publication (freezing), exports.
    add(
        "/api/v1/bulletins",
        "post",
        operation(
            Operation {
                id: "publishBulletin",
                summary: "发布月通报（月份结束后，由市级协调员发布；发布即按当时的日志位置冻结）",
                request: Some(requests.of::<PublishBulletinBody>()),
                ok_status: "201",
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        ),
    );
    add(
        "/api/v1/bulletins",
        "get",
        operation(
            Operation {
                id: "listBulletins",
                summary: "已发布的月通报",
                request: None,
                ok_status: "200",
                ok: json!({"type": "array", "items": responses.of::<PublishedBulletin>()}),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let month_parameter = json!([path_parameter("month")]);
    let mut bulletin = operation(
        Operation {
            id: "getBulletin",
            summary: "月通报：区、镇街、职能部门的化解率、及时受理率、按期办结率、重复信访与回潮、满意率与参评率、领导活动，均列分子分母并排名；未发布时为草稿",
            request: None,
            ok_status: "200",
            ok: responses.of::<zhzj_figures::Bulletin>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    bulletin["parameters"] = month_parameter.clone();
    add("/api/v1/bulletins/{month}", "get", bulletin);
    for (path, id, summary, media) in [
        (
            "/api/v1/bulletins/{month}/export.xlsx",
            "exportBulletinXlsx",
            "导出月通报（XLSX：区、镇街、职能部门各一页；已发布的月通报再次导出逐字节相同）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/bulletins/{month}/export.csv",
            "exportBulletinCsv",
            "导出月通报的一页（CSV，UTF-8 带 BOM；part=districts|towns|departments）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &month_parameter, true, &error),
        );
    }
    // 周调度: meetings, their agendas (as of the meeting), instructions and feedback.
    add(
        "/api/v1/meetings",
        "post",
        operation(
            Operation {
                id: "holdMeeting",
                summary: "召开本周调度会（每个单位每周一次），议程按召开时的日志位置生成",
                request: Some(requests.of::<HoldMeetingBody>()),
                ok_status: "201",
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        ),
    );
    add(
        "/api/v1/meetings",
        "get",
        operation(
            Operation {
                id: "listMeetings",
                summary: "本级及下级单位的调度会，最新在前",
                request: None,
                ok_status: "200",
                ok: json!({"type": "array", "items": responses.of::<MeetingListItem>()}),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let agenda_parameters = json!([
        path_parameter("id"),
        {"name": "idle_days", "in": "query", "required": false, "schema": {"type": "integer"},
         "description": "包案领导超过多少日未开展工作即列入议程（默认30）"},
    ]);
    let mut agenda = operation(
        Operation {
            id: "getMeetingAgenda",
            summary: "调度会议程：新增、销号、回潮、超期与7日内到期、包案领导未开展工作、待审核、调度指令及反馈；本周与上周对比；按会议时的日志重新生成，结果不变",
            request: None,
            ok_status: "200",
            ok: responses.of::<zhzj_figures::Agenda>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    agenda["parameters"] = agenda_parameters.clone();
    add("/api/v1/meetings/{id}", "get", agenda);
    for (path, id, summary, media) in [
        (
            "/api/v1/meetings/{id}/agenda.xlsx",
            "exportMeetingAgendaXlsx",
            "导出调度会议程（XLSX：概览、各事项、调度指令各一页；再次导出逐字节相同）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/meetings/{id}/agenda.csv",
            "exportMeetingAgendaCsv",
            "导出调度会议程的一部分（CSV，UTF-8 带 BOM；part=overview|事项键|instructions）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &agenda_parameters, true, &error),
        );
    }
    for (path, id, summary, body) in [
        (
            "/api/v1/meetings/{id}/instructions",
            "issueInstruction",
            "下达调度指令（承办单位和/或领导，反馈期限）",
            requests.of::<InstructionBody>(),
        ),
        (
            "/api/v1/meetings/{id}/instructions/{number}/feedback",
            "recordInstructionFeedback",
            "反馈调度指令落实情况",
            requests.of::<FeedbackBody>(),
        ),
    ] {
        let mut op = operation(
            Operation {
                id,
                summary,
                request: Some(body),
                ok_status: "201",
                ok: write.clone(),
                error_statuses: WRITE_ERRORS,
                writes: true,
            },
            &error,
        );
        if let Some(parameters) = op["parameters"].as_array_mut() {
            parameters.insert(0, path_parameter("id"));
            if path.contains("{number}") {
                parameters.insert(1, path_parameter("number"));
            }
        }
        add(path, "post", op);
    }
    let mut checklist = operation(
        Operation {
            id: "getChecklist",
            summary: "清单：按区、镇街、包案领导、责任单位、状态、分类、期限、关键词筛选，排序（sort，前加 - 为倒序），分页",
            request: None,
            ok_status: "200",
            ok: responses.of::<ChecklistPage>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    checklist["parameters"] = json!(
        [
            ("district", "string"),
            ("town", "string"),
            ("leader", "string"),
            ("unit", "string"),
            ("status", "string"),
            ("class", "string"),
            ("sort", "string"),
            ("q", "string"),
            ("due_within", "integer"),
            ("overdue", "boolean"),
            ("page", "integer"),
            ("per_page", "integer"),
        ]
        .iter()
        .map(
            |(name, kind)| json!({"name": name, "in": "query", "required": false,
                                   "schema": {"type": kind}})
        )
        .collect::<Vec<_>>()
    );
    let filters = checklist["parameters"].clone();
    add("/api/v1/checklist", "get", checklist);
    for (path, id, summary, media) in [
        (
            "/api/v1/checklist/export.xlsx",
            "exportChecklistXlsx",
            "导出筛选后的清单（XLSX：中文表头、冻结首行、数字与日期按类型存储）",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "/api/v1/checklist/export.csv",
            "exportChecklistCsv",
            "导出筛选后的清单（CSV：UTF-8 带 BOM）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &filters, false, &error),
        );
    }
    let mut duplicates = operation(
        Operation {
            id: "findDuplicates",
            summary: "登记前查重：同一身份证号（须完整），或同名、同镇街、同类别的已有案件；只返回本辖区案件编号，辖区外只提示存在；每次查询留痕、按用户限频",
            request: None,
            ok_status: "200",
            ok: responses.of::<DuplicateCheck>(),
            error_statuses: LOOKUP_ERRORS,
            writes: false,
        },
        &error,
    );
    duplicates["parameters"] = json!(
        ["id_number", "name", "town", "category"]
            .iter()
            .map(
                |name| json!({"name": name, "in": "query", "required": false,
                           "schema": {"type": "string"}})
            )
            .collect::<Vec<_>>()
    );
    add("/api/v1/cases/duplicates", "get", duplicates);
    let mut leaders = operation(
        Operation {
            id: "getLeaders",
            summary: "包案领导视图：包案数、最近工作日期、每月工作次数、超期未开展工作的案件",
            request: None,
            ok_status: "200",
            ok: responses.of::<LeadersView>(),
            error_statuses: READ_ERRORS,
            writes: false,
        },
        &error,
    );
    leaders["parameters"] = json!([{"name": "inactive_days", "in": "query", "required": false,
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 365}}]);
    add("/api/v1/leaders", "get", leaders);
    add(
        "/api/v1/org",
        "get",
        operation(
            Operation {
                id: "getOrg",
                summary: "组织架构：单位与包案领导",
                request: None,
                ok_status: "200",
                ok: responses.of::<OrgView>(),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    add(
        "/api/v1/org/file",
        "get",
        operation(
            Operation {
                id: "getDirectoryFile",
                summary: "组织架构文件（zhzj org export 所写；可导入另一实例）",
                request: None,
                ok_status: "200",
                ok: responses.of::<crate::directory_file::DirectoryFile>(),
                error_statuses: AUTH_ERRORS,
                writes: false,
            },
            &error,
        ),
    );
    let mut import = operation(
        Operation {
            id: "importDirectory",
            summary: "导入组织架构文件：整体校验通过才写入；已有的相同条目跳过（限系统管理员）",
            request: Some(requests.of::<crate::directory_file::DirectoryFile>()),
            ok_status: "200",
            ok: responses.of::<crate::routes::DirectoryImportReport>(),
            error_statuses: WRITE_ERRORS,
            writes: false,
        },
        &error,
    );
    import["responses"]["422"] = json!({
        "description": "文件有问题（逐条列出），未写入任何内容；或请求体不是组织架构文件",
        "content": json_content(json!({"anyOf": [
            responses.of::<crate::routes::DirectoryImportRefused>(),
            error.clone(),
        ]})),
    });
    add("/api/v1/org/import", "post", import);
    for (path, id, summary, request) in [
        (
            "/api/v1/org/units",
            "addUnit",
            "新增单位（区、镇街、职能部门；限系统管理员）",
            requests.of::<zhzj_proto::commands::AddUnit>(),
        ),
        (
            "/api/v1/org/leaders",
            "addLeader",
            "新增包案领导（限系统管理员）",
            requests.of::<zhzj_proto::commands::AddLeader>(),
        ),
    ] {
        add(
            path,
            "post",
            operation(
                Operation {
                    id,
                    summary,
                    request: Some(request),
                    ok_status: "201",
                    ok: write.clone(),
                    error_statuses: WRITE_ERRORS,
                    writes: true,
                },
                &error,
            ),
        );
    }
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
    use super::*;

    /// The checklist's documented query parameters are exactly the fields its handler reads.
    #[test]
    fn the_checklist_parameters_are_the_query_fields() {
        let schema = serde_json::to_value(schemars::schema_for!(
            crate::routes::checklist::ChecklistQuery
        ))
        .expect("schema");
        let mut fields: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        let document = openapi_document();
        let mut documented: Vec<&str> = document["paths"]["/api/v1/checklist"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        fields.sort_unstable();
        documented.sort_unstable();
        assert_eq!(documented, fields);
    }
}
