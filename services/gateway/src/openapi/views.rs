//! The OpenAPI paths of the shared views: the checklist, the duplicate check, the leaders' view and
//! the org directory.

use super::*;

/// The checklist (清单) and its exports, the duplicate check and the leaders' view.
pub(crate) fn checklist_paths(
    responses: &mut Schemas,
    error: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    let mut checklist = operation(
        Operation::reading(
            "getChecklist",
            "清单：按区、镇街、包案领导、责任单位、状态、分类、期限、关键词筛选，排序（sort，前加 - 为倒序），分页",
            responses.of::<ChecklistPage>(),
        ),
        error,
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
            export_operation(id, summary, media, &filters, false, error),
        );
    }
    let mut duplicates = operation(
        Operation::reading("findDuplicates", "登记前查重：同一身份证号（须完整），或同名、同镇街、同类别的已有案件；只返回本辖区案件编号，辖区外只提示存在；每次查询留痕、按用户限频", responses.of::<DuplicateCheck>()).with_errors(LOOKUP_ERRORS),
        error,
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
        Operation::reading(
            "getLeaders",
            "包案领导视图：包案数、最近工作日期、每月工作次数、超期未开展工作的案件",
            responses.of::<LeadersView>(),
        ),
        error,
    );
    leaders["parameters"] = json!([{"name": "inactive_days", "in": "query", "required": false,
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 365}}]);
    add("/api/v1/leaders", "get", leaders);
    let mut idle = operation(
        Operation::reading(
            "getLeaderIdleCases",
            "一位包案领导超期未开展工作的全部案件，分页（包案领导视图只列前 20 件）",
            responses.of::<IdleCasesPage>(),
        ),
        error,
    );
    idle["parameters"] = json!([
        path_parameter("leader_id"),
        {"name": "inactive_days", "in": "query", "required": false,
         "schema": {"type": "integer", "minimum": 1, "maximum": 365}},
        {"name": "page", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}},
        {"name": "per_page", "in": "query", "required": false,
         "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    ]);
    add("/api/v1/leaders/{leader_id}/idle_cases", "get", idle);
}

/// The org directory: reading it, its file, importing it, adding units and leaders.
pub(crate) fn org_paths(
    requests: &mut Schemas,
    responses: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    add(
        "/api/v1/org",
        "get",
        operation(
            Operation::reading(
                "getOrg",
                "组织架构：单位与包案领导",
                responses.of::<OrgView>(),
            )
            .with_errors(AUTH_ERRORS),
            error,
        ),
    );
    add(
        "/api/v1/org/file",
        "get",
        operation(
            Operation::reading(
                "getDirectoryFile",
                "组织架构文件（zhzj org export 所写；可导入另一实例）",
                responses.of::<crate::directory_file::DirectoryFile>(),
            )
            .with_errors(AUTH_ERRORS),
            error,
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
        error,
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
                error,
            ),
        );
    }
}
