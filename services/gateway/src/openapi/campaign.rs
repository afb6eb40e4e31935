//! The OpenAPI paths of the campaign's rhythm and its figures: assessments, the ledger, pushes,
//! bulletins and dispatch meetings.

use super::*;

/// Assessments (年考核: a scheme over a level and a period, as of a log position) and their exports.
pub(crate) fn assessment_paths(
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    let assessment_parameters = json!([
        {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "scheme", "in": "query", "required": false, "schema": {"type": "string", "enum": ["default", "dachuan"]}},
        {"name": "level", "in": "query", "required": false, "schema": {"type": "string", "enum": ["district", "town", "department"]}},
        {"name": "position", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0},
         "description": "日志位置，不超过当前位置；缺省为当前位置"},
    ]);
    let mut assessment = operation(
        Operation::reading(
            "getAssessment",
            "年度考核：按考核方案计算各单位得分、各指标分子分母与排名（按日志位置计算，同一位置结果不变）；计入的案件及原因见 /assessments/counted",
            responses.of::<zhzj_figures::assessment::Assessment>(),
        ),
        error,
    );
    assessment["parameters"] = assessment_parameters.clone();
    add("/api/v1/assessments", "get", assessment);
    let mut counted = operation(
        Operation::reading(
            "getAssessmentCounted",
            "年度考核明细：某单位各指标计入的案件及原因（分页；可按指标筛选）",
            responses.of::<crate::routes::assessments::CountedPage>(),
        ),
        error,
    );
    let mut counted_parameters = assessment_parameters.clone();
    if let Some(list) = counted_parameters.as_array_mut() {
        list.extend([
            json!({"name": "unit_id", "in": "query", "required": true, "schema": {"type": "string"}}),
            json!({"name": "figure", "in": "query", "required": false, "schema": {"type": "string"}}),
            json!({"name": "page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}}),
            json!({"name": "per_page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 200}}),
        ]);
    }
    counted["parameters"] = counted_parameters;
    add("/api/v1/assessments/counted", "get", counted);
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
            export_operation(id, summary, media, parameters, false, error),
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
            export_operation(id, summary, media, &json!([]), false, error),
        );
    }
}

/// The ledger (台账): its template, import and export.
pub(crate) fn ledger_paths(
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
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
            error,
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
}

/// Quarterly pushes (季攻坚): the list, launching one, its progress and exports.
pub(crate) fn push_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/pushes",
        "post",
        operation(
            Operation::writing(
                "launchPush",
                "部署季度攻坚：季度、攻坚案件、各区域目标（化解件数或化解率）；市级协调员",
                requests.of::<LaunchPush>(),
                "201",
                write.clone(),
            ),
            error,
        ),
    );
    add(
        "/api/v1/pushes",
        "get",
        operation(
            Operation::reading(
                "listPushes",
                "已部署的季度攻坚",
                json!({"type": "array", "items": responses.of::<PushListItem>()}),
            )
            .with_errors(AUTH_ERRORS),
            error,
        ),
    );
    let quarter_parameter = json!([path_parameter("quarter")]);
    let mut push = operation(
        Operation::reading(
            "getPush",
            "季度攻坚进度：各区域对照目标、各攻坚案件进度；季度结束后为最终结果",
            responses.of::<zhzj_figures::PushProgress>(),
        ),
        error,
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
            export_operation(id, summary, media, &quarter_parameter, true, error),
        );
    }
    // 月通报: drafts, publication (freezing), exports.
}

/// Monthly bulletins (月通报): the list, publishing one, its figures and exports.
pub(crate) fn bulletin_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/bulletins",
        "post",
        operation(
            Operation::writing(
                "publishBulletin",
                "发布月通报（月份结束后，由市级协调员发布；发布即按当时的日志位置冻结）",
                requests.of::<PublishBulletin>(),
                "201",
                write.clone(),
            ),
            error,
        ),
    );
    add(
        "/api/v1/bulletins",
        "get",
        operation(
            Operation::reading(
                "listBulletins",
                "已发布的月通报",
                json!({"type": "array", "items": responses.of::<PublishedBulletin>()}),
            )
            .with_errors(AUTH_ERRORS),
            error,
        ),
    );
    let month_parameter = json!([path_parameter("month")]);
    let mut bulletin = operation(
        Operation::reading(
            "getBulletin",
            "月通报：区、镇街、职能部门的化解率、及时受理率、按期办结率、重复信访与回潮、满意率与参评率、领导活动，均列分子分母并排名；未发布时为草稿",
            responses.of::<zhzj_figures::Bulletin>(),
        ),
        error,
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
            export_operation(id, summary, media, &month_parameter, true, error),
        );
    }
    // 周调度: meetings, their agendas (as of the meeting), instructions and feedback.
}

/// Dispatch meetings (周调度): the list, holding one, its agenda and exports, instructions and feedback.
pub(crate) fn meeting_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/meetings",
        "post",
        operation(
            Operation::writing(
                "holdMeeting",
                "召开本周调度会（每个单位每周一次），议程按召开时的日志位置生成",
                requests.of::<HoldMeeting>(),
                "201",
                write.clone(),
            ),
            error,
        ),
    );
    add(
        "/api/v1/meetings",
        "get",
        operation(
            Operation::reading(
                "listMeetings",
                "本级及下级单位的调度会，最新在前",
                json!({"type": "array", "items": responses.of::<MeetingListItem>()}),
            )
            .with_errors(AUTH_ERRORS),
            error,
        ),
    );
    let agenda_parameters = json!([
        path_parameter("id"),
        {"name": "idle_days", "in": "query", "required": false, "schema": {"type": "integer"},
         "description": "包案领导超过多少日未开展工作即列入议程（默认30）"},
    ]);
    let mut agenda = operation(
        Operation::reading(
            "getMeetingAgenda",
            "调度会议程：新增、销号、回潮、超期与7日内到期、包案领导未开展工作、待审核、调度指令及反馈；本周与上周对比；按会议时的日志重新生成，结果不变",
            responses.of::<zhzj_figures::Agenda>(),
        ),
        error,
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
            "导出调度会议程的一部分（CSV，UTF-8 带 BOM；part=overview|事项键|instructions|supervision）",
            "text/csv",
        ),
    ] {
        add(
            path,
            "get",
            export_operation(id, summary, media, &agenda_parameters, true, error),
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
            error,
        );
        if let Some(parameters) = op["parameters"].as_array_mut() {
            parameters.insert(0, path_parameter("id"));
            if path.contains("{number}") {
                parameters.insert(1, path_parameter("number"));
            }
        }
        add(path, "post", op);
    }
}
