//! The OpenAPI paths of sessions, user administration and the audit trail.

use super::*;

/// The session: logging in and out, the current user, changing one's password.
pub(crate) fn session_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
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
            error,
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
            error,
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
        error,
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
        error,
    );
    change_password["responses"]["204"] = json!({"description": "已修改"});
    add("/api/v1/session/password", "post", change_password);
}

/// User administration (限系统管理员): the list, creating an account, and the actions on one.
pub(crate) fn user_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/users",
        "get",
        operation(
            Operation::reading(
                "listUsers",
                "用户管理：全部账号（含停用、锁定状态），限系统管理员",
                responses.of::<Vec<crate::AccountSummary>>(),
            ),
            error,
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
            error,
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
            error,
        );
        op["parameters"] = json!([path_parameter("username")]);
        add(path, method, op);
    }
}

/// The audit trail (审计记录) and its exports.
pub(crate) fn audit_paths(
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
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
        Operation::reading(
            "listAudit",
            "审计记录：登录、登录失败与锁定、账号变更（日志事件）及查看个人信息，按时间倒序；限审计员",
            responses.of::<crate::audit::AuditPage>(),
        ),
        error,
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
            export_operation(id, summary, media, &audit_parameters, false, error),
        );
    }
}
