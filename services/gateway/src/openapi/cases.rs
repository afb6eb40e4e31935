//! The OpenAPI paths of cases: registering one, reading one and its history, and the writes that
//! work it (and those that work a supervision order, which share their shape).

use super::*;
use crate::routes::aggregate_writes::{
    AggregateWrite, AggregateWriteBody, AggregateWriteVisitor, path_parameters, route_path,
};

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
            Operation::writing(
                "registerCase",
                "登记积案、列入清单；?check_duplicates=true 时如可能重复则返回 409 possible_duplicates 及已有案件",
                requests.of::<zhzj_proto::commands::RegisterCase>(),
                "201",
                write.clone(),
            ),
            error,
        ),
    );
    let mut show = operation(
        Operation::reading(
            "getCase",
            "案件详情：事实、程序、法定时限（个人信息默认脱敏；?reveal=personal 显示原文并留痕）；ETag 为案件版本",
            responses.of::<CaseView>(),
        ),
        error,
    );
    show["parameters"] = json!([path_parameter("id"), reveal_parameter()]);
    add("/api/v1/cases/{id}", "get", show);
    let mut history = operation(
        Operation::reading(
            "getCaseEvents",
            "案件的全部事件（事件档案）",
            json!({"type": "array", "items": responses.of::<CaseEventView>()}),
        ),
        error,
    );
    history["parameters"] = json!([path_parameter("id"), reveal_parameter()]);
    add("/api/v1/cases/{id}/events", "get", history);
}

/// The writes that work a case or a supervision order; each answers a [`WriteReply`].
pub(crate) fn case_write_paths(
    requests: &mut Schemas,
    error: &Value,
    write: &Value,
    add: &mut impl FnMut(&str, &str, Value),
) {
    struct Documents<'a, A> {
        requests: &'a mut Schemas,
        error: &'a Value,
        write: &'a Value,
        add: &'a mut A,
    }
    impl<A: FnMut(&str, &str, Value)> AggregateWriteVisitor for Documents<'_, A> {
        fn visit<C: AggregateWrite>(&mut self) {
            let mut op = operation(
                Operation {
                    id: C::OPERATION,
                    summary: C::SUMMARY,
                    request: Some(self.requests.of::<AggregateWriteBody<C>>()),
                    ok_status: if C::CREATES { "201" } else { "200" },
                    ok: self.write.clone(),
                    error_statuses: WRITE_ERRORS,
                    writes: true,
                },
                self.error,
            );
            if let Some(parameters) = op["parameters"].as_array_mut() {
                let in_path = std::iter::once("id").chain(path_parameters::<C>());
                for (at, name) in in_path.enumerate() {
                    parameters.insert(at, path_parameter(name));
                }
            }
            (self.add)(&format!("/api/v1{}", route_path::<C>()), "post", op);
        }
    }
    crate::routes::aggregate_writes::each(&mut Documents {
        requests,
        error,
        write,
        add,
    });
}
