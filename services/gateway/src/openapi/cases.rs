//! The OpenAPI paths of cases: registering one, reading one and its history, and the writes that
//! work it.

use super::*;

/// Registering a case, and reading one with its history.
pub(crate) fn case_read_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
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
            error,
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
        error,
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
        error,
    );
    history["parameters"] = json!([path_parameter("id"), reveal_parameter()]);
    add("/api/v1/cases/{id}/events", "get", history);
}

/// A write on a case: its path, operation id, summary, request body and success status.
type CaseWrite = (
    &'static str,
    &'static str,
    &'static str,
    Value,
    &'static str,
);

/// The writes that work a case.
pub(crate) fn case_writes(requests: &mut Schemas) -> [CaseWrite; 14] {
    [
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
    ]
}

/// The writes that work a case; each answers a [`WriteReply`].
pub(crate) fn case_write_paths(
    requests: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    for (path, id, summary, body, status) in case_writes(requests) {
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
            error,
        );
        if let Some(parameters) = op["parameters"].as_array_mut() {
            parameters.insert(0, path_parameter("id"));
            if path.contains("{measure_id}") {
                parameters.insert(1, path_parameter("measure_id"));
            }
        }
        add(path, "post", op);
    }
}
