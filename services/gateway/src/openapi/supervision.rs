//! The OpenAPI paths of supervision orders (督办单): issue, list, read; early warnings (预警), the inbox (站内消息) and the deliveries of notifications.

use super::*;
use crate::routes::notices::{DeliveryItem, Inbox, MarkedRead, NoBody, WarningList};
use crate::routes::supervision::{IssueOrderBody, SupervisionOrderItem, SupervisionOrderView};

/// Supervision orders: issue and list, one order with its history (its steps are writes on one
/// order, documented with the case writes).
pub(crate) fn supervision_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/supervision-orders",
        "post",
        operation(
            Operation::writing(
                "issueSupervisionOrder",
                "下发督办单（催办、督办、挂牌督办）：向下级单位或职能部门，关于案件或事项，限期办结反馈",
                requests.of::<IssueOrderBody>(),
                "201",
                write.clone(),
            ),
            error,
        ),
    );
    let mut list = operation(
        Operation::reading(
            "listSupervisionOrders",
            "本级及下级单位下发或承办的督办单，最新在前；可按状态、单位、是否逾期、案件、级别筛选",
            json!({"type": "array", "items": responses.of::<SupervisionOrderItem>()}),
        ),
        error,
    );
    list["parameters"] = json!([
        {"name": "status", "in": "query", "required": false, "schema": {"type": "string",
         "enum": ["open", "issued", "acknowledged", "answered", "sent_back", "accepted"]}},
        {"name": "unit_id", "in": "query", "required": false, "schema": {"type": "string"}},
        {"name": "overdue", "in": "query", "required": false, "schema": {"type": "boolean"}},
        {"name": "case_id", "in": "query", "required": false, "schema": {"type": "string", "format": "uuid"}},
        {"name": "level", "in": "query", "required": false, "schema": {"type": "string",
         "enum": ["reminder", "order", "listed"]}},
    ]);
    add("/api/v1/supervision-orders", "get", list);
    let mut show = operation(
        Operation::reading(
            "getSupervisionOrder",
            "督办单详情：所涉案件与全部办理记录（下发、签收、进展、反馈、审核、升级）",
            responses.of::<SupervisionOrderView>(),
        ),
        error,
    );
    show["parameters"] = json!([path_parameter("id")]);
    add("/api/v1/supervision-orders/{id}", "get", show);
    notice_paths(requests, responses, error, add);
}

/// Warnings, the inbox and deliveries.
fn notice_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    let mut warnings = operation(
        Operation::reading(
            "listWarnings",
            "预警：期限临近、期限已过、包案领导未开展工作、销号后回潮、重复信访激增、督办即将逾期、督办逾期未反馈；每个条件只触发一次，条件消失即解除",
            responses.of::<WarningList>(),
        ),
        error,
    );
    warnings["parameters"] = json!([
        {"name": "state", "in": "query", "required": false, "schema": {"type": "string", "enum": ["open", "cleared", "all"]}},
        {"name": "rule", "in": "query", "required": false, "schema": {"type": "string"}},
        {"name": "unit_id", "in": "query", "required": false, "schema": {"type": "string"}},
        {"name": "case_id", "in": "query", "required": false, "schema": {"type": "string", "format": "uuid"}},
        {"name": "page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}},
        {"name": "per_page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    ]);
    add("/api/v1/warnings", "get", warnings);
    let mut inbox = operation(
        Operation::reading(
            "getInbox",
            "站内消息：本人的预警、督办、每日摘要消息，最新在前",
            responses.of::<Inbox>(),
        ),
        error,
    );
    inbox["parameters"] = json!([
        {"name": "unread", "in": "query", "required": false, "schema": {"type": "boolean"}},
    ]);
    add("/api/v1/inbox", "get", inbox);
    for (path, id, summary) in [
        ("/api/v1/inbox/read-all", "readAllMessages", "全部标为已读"),
        ("/api/v1/inbox/{id}/read", "readMessage", "标为已读"),
    ] {
        let mut op = operation(
            Operation {
                id,
                summary,
                request: Some(requests.of::<NoBody>()),
                ok_status: "200",
                ok: responses.of::<MarkedRead>(),
                error_statuses: READ_ERRORS,
                writes: false,
            },
            error,
        );
        if path.contains("{id}") {
            op["parameters"] = json!([path_parameter("id")]);
        }
        add(path, "post", op);
    }
    add(
        "/api/v1/notifications/deliveries",
        "get",
        operation(
            Operation::reading(
                "listDeliveries",
                "消息推送记录（邮件、企业微信、钉钉）：已发送、重试中、失败及原因（系统管理员）",
                json!({"type": "array", "items": responses.of::<DeliveryItem>()}),
            ),
            error,
        ),
    );
}
