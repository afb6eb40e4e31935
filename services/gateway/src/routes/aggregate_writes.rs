//! The writes that work one case (`POST /api/v1/cases/{id}/…`) or one supervision order
//! (`POST /api/v1/supervision-orders/{id}/…`): each route's body is its proto command without the
//! fields its path gives (`case_id` or `order_id`, and `measure_id` where the path names one), so
//! one handler, one route table and one OpenAPI table serve them all, and adding such a write is
//! one line in [`each`].

use std::borrow::Cow;

use axum::Router;
use axum::extract::Path;
use axum::routing::post;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::commands::{
    AcknowledgeSupervisionOrder, AddMeasure, AnswerSupervisionOrder, AssignLeader, ClaimResolution,
    ClassifyCase, CompleteMeasure, ErasePetitioner, ExtendHandling, RateSatisfaction,
    RecordActivity, RecordNote, RecordPetition, RecordProcedureStep, ReportSupervisionProgress,
    ReviewClaim, ReviewSupervisionAnswer, SetResponsibleUnits,
};

use super::cases::{WriteContext, case_id};
use crate::commands::WriteOutcome;
use crate::extract::{JsonBody, data_error};
use crate::{ApiError, AppState};

/// What a write works on, named by the `{id}` of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteTarget {
    /// A case: `/cases/{id}`, the command's `case_id`; the command service checks the scope.
    Case,
    /// A supervision order: `/supervision-orders/{id}`, the command's `order_id`; an order the
    /// user may not read is not found, before the command is sent.
    SupervisionOrder,
}

impl WriteTarget {
    /// The collection below `/api/v1`.
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Self::Case => "cases",
            Self::SupervisionOrder => "supervision-orders",
        }
    }

    /// The command's field the path's `{id}` fills.
    fn id_field(self) -> &'static str {
        match self {
            Self::Case => "case_id",
            Self::SupervisionOrder => "order_id",
        }
    }

    /// Not found unless `id` names something of this kind the user may work on (as far as the
    /// gateway checks; the command service checks again).
    async fn check(self, context: &WriteContext, id: &str) -> Result<(), ApiError> {
        match self {
            Self::Case => case_id(id).map(|_| ()),
            Self::SupervisionOrder => {
                super::supervision::order_in_scope(&context.state, &context.user, id)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A command on one case or order as its route takes it.
pub(crate) trait AggregateWrite:
    DeserializeOwned + JsonSchema + Into<Command> + Send + 'static
{
    /// What it works on.
    const TARGET: WriteTarget;
    /// The path below `/api/v1/<collection>/{id}`; a `{name}` in it fills the command's field
    /// `name`.
    const PATH: &'static str;
    /// The OpenAPI operation id.
    const OPERATION: &'static str;
    /// What it does, as the OpenAPI document and the API's users read it.
    const SUMMARY: &'static str;
    /// Whether it adds something to the case (201) rather than changing it (200).
    const CREATES: bool;
}

/// Declares the [`AggregateWrite`] of each command: target, path, operation id, whether it
/// creates, summary.
macro_rules! aggregate_writes {
    ($($command:ty => $target:ident $path:literal, $operation:literal, $creates:literal, $summary:literal;)+) => {
        $(
            impl AggregateWrite for $command {
                const TARGET: WriteTarget = WriteTarget::$target;
                const PATH: &'static str = $path;
                const OPERATION: &'static str = $operation;
                const SUMMARY: &'static str = $summary;
                const CREATES: bool = $creates;
            }
        )+
        /// Shows every write on a case or order to `visitor`, in the order the OpenAPI document
        /// lists them.
        pub(crate) fn each(visitor: &mut impl AggregateWriteVisitor) {
            $(visitor.visit::<$command>();)+
        }
    };
}

aggregate_writes! {
    ErasePetitioner => Case "/erasures", "erasePetitioner", true,
        "删除信访人个人信息（仅系统管理员，须说明理由）：销毁其数据密钥，此后各处显示“已删除”，案件、统计与历史不变";
    ExtendHandling => Case "/extension", "extendHandling", false,
        "延长办理期限（一次，至多30日，须经批准）";
    RecordActivity => Case "/activities", "recordActivity", true,
        "记录包案领导工作（接访、约访、下访、听证等）";
    ClassifyCase => Case "/classification", "classifyCase", false,
        "分类施策（三到位一处理、类别）";
    ClaimResolution => Case "/claims", "claimResolution", true,
        "申请化解销号（依据与材料）";
    ReviewClaim => Case "/claims/review", "reviewClaim", false,
        "审核化解申请（区联席办→市信访局），末级通过即销号";
    RecordPetition => Case "/petitions", "recordPetition", true,
        "登记重复信访；已销号案件回潮重开";
    RateSatisfaction => Case "/satisfaction", "rateSatisfaction", true,
        "记录满意度评价";
    RecordProcedureStep => Case "/procedure", "recordProcedureStep", true,
        "记录法定程序环节：告知受理、出具处理意见、申请复查、复查答复、申请复核、听证、复核答复（终结）";
    AssignLeader => Case "/leader", "assignLeader", false,
        "指定或更换包案领导";
    SetResponsibleUnits => Case "/units", "setResponsibleUnits", false,
        "设定责任单位（主办、协办）";
    AddMeasure => Case "/measures", "addMeasure", true,
        "添加化解措施";
    CompleteMeasure => Case "/measures/{measure_id}/complete", "completeMeasure", false,
        "措施落实销项";
    RecordNote => Case "/notes", "recordNote", true,
        "记录工作情况";
    AcknowledgeSupervisionOrder => SupervisionOrder "/acknowledge", "acknowledgeSupervisionOrder", false,
        "承办单位签收督办单";
    ReportSupervisionProgress => SupervisionOrder "/progress", "reportSupervisionProgress", false,
        "承办单位报告办理进展";
    AnswerSupervisionOrder => SupervisionOrder "/answer", "answerSupervisionOrder", false,
        "承办单位办结反馈（附佐证材料）";
    ReviewSupervisionAnswer => SupervisionOrder "/review", "reviewSupervisionAnswer", false,
        "督办单位审核反馈：通过办结，或退回并重新确定反馈期限";
}

/// Something done once for each kind of write on a case (routing it, documenting it).
pub(crate) trait AggregateWriteVisitor {
    /// Called once for each [`AggregateWrite`].
    fn visit<C: AggregateWrite>(&mut self);
}

/// The route of every write on a case or order.
pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    struct Routes(Option<Router<AppState>>);
    impl AggregateWriteVisitor for Routes {
        fn visit<C: AggregateWrite>(&mut self) {
            self.0 = self
                .0
                .take()
                .map(|router| router.route(&route_path::<C>(), post(write::<C>)));
        }
    }
    let mut routes = Routes(Some(router));
    each(&mut routes);
    routes.0.unwrap_or_default()
}

/// The path of `C` below `/api/v1`.
pub(crate) fn route_path<C: AggregateWrite>() -> String {
    format!("/{}/{{id}}{}", C::TARGET.collection(), C::PATH)
}

/// The parameters `{name}` of [`AggregateWrite::PATH`] (below the case's or order's own `{id}`),
/// in order.
pub(crate) fn path_parameters<C: AggregateWrite>() -> impl Iterator<Item = &'static str> {
    C::PATH
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
}

/// The fields of `C` its path gives: `case_id` or `order_id`, and each of its [`path_parameters`].
fn path_fields<C: AggregateWrite>() -> Vec<&'static str> {
    std::iter::once(C::TARGET.id_field())
        .chain(path_parameters::<C>())
        .collect()
}

/// `POST /api/v1/<collection>/{id}<C::PATH>`.
pub(crate) async fn write<C: AggregateWrite>(
    Path(params): Path<Vec<(String, String)>>,
    context: WriteContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<WriteOutcome, ApiError> {
    submit::<C>(&params, body, context).await
}

/// Sends `body` (a JSON object of the command's fields but those its path gives) as the write
/// `C` on the case or order the path `params` name: the API route's work, and the pages' forms'.
/// A body at fault answers 422 naming the field, before an unknown case or order answers 404.
pub(crate) async fn submit<C: AggregateWrite>(
    params: &[(String, String)],
    body: Value,
    context: WriteContext,
) -> Result<WriteOutcome, ApiError> {
    let mut route = format!("POST {}", route_path::<C>());
    let mut given = Map::new();
    let mut id_text = "";
    for (name, value) in params {
        let (field, value) = if name == "id" {
            id_text = value;
            let canonical = Uuid::parse_str(value).unwrap_or_default().to_string();
            (C::TARGET.id_field(), canonical)
        } else {
            (name.as_str(), value.clone())
        };
        route = route.replace(&format!("{{{name}}}"), &value);
        given.insert(field.to_owned(), Value::String(value));
    }
    let command: C = command_from(body, given)?;
    C::TARGET.check(&context, id_text).await?;
    Ok(context.run(route, command.into(), C::CREATES).await)
}

/// The command of `body` with the fields its path `given` added; a body that names one of those
/// itself is refused (the path alone says which case or order).
fn command_from<C: DeserializeOwned>(
    body: Value,
    given: Map<String, Value>,
) -> Result<C, ApiError> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::Unprocessable {
            message: "请求内容不符合要求: 请求体须为 JSON 对象 (expected an object)".into(),
            field: None,
        });
    };
    for (name, value) in given {
        if fields.contains_key(&name) {
            return Err(ApiError::Unprocessable {
                message: format!(
                    "请求内容不符合要求: {name} 由请求路径给出，请求体中不应有此项 (unknown field `{name}`)"
                ),
                field: Some(name),
            });
        }
        fields.insert(name, value);
    }
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(data_error)
}

/// The request body of the write `C`: `C`'s schema without the fields its path gives.
pub(crate) struct AggregateWriteBody<C>(std::marker::PhantomData<C>);

impl<C: AggregateWrite> JsonSchema for AggregateWriteBody<C> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}Body", C::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("{}::body", C::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = C::json_schema(generator);
        let from_path = path_fields::<C>();
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.retain(|name, _| !from_path.contains(&name.as_str()));
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|name| !name.as_str().is_some_and(|n| from_path.contains(&n)));
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every write's path names only fields of its command, and its body schema leaves out
    /// exactly those (a `{name}` the command lacks would be an unusable route).
    #[test]
    fn each_body_schema_leaves_out_what_the_path_gives() {
        struct Check;
        impl AggregateWriteVisitor for Check {
            fn visit<C: AggregateWrite>(&mut self) {
                let mut generator = SchemaGenerator::default();
                let whole = C::json_schema(&mut generator).to_value();
                let body = AggregateWriteBody::<C>::json_schema(&mut generator).to_value();
                for field in path_fields::<C>() {
                    assert!(
                        whole["properties"].get(field).is_some(),
                        "{}: {field} is not a field of the command",
                        C::OPERATION
                    );
                    assert!(
                        body["properties"].get(field).is_none(),
                        "{}: {field} is in the body schema",
                        C::OPERATION
                    );
                }
                let left = body["properties"].as_object().map_or(0, Map::len);
                let all = whole["properties"].as_object().map_or(0, Map::len);
                assert_eq!(left + path_fields::<C>().len(), all, "{}", C::OPERATION);
            }
        }
        each(&mut Check);
    }

    /// A body naming the case itself is refused; a non-object is refused; a good one reads.
    #[test]
    fn the_path_alone_names_the_case() {
        let case = Uuid::new_v4();
        let given = || {
            let mut given = Map::new();
            given.insert("case_id".into(), Value::String(case.to_string()));
            given
        };
        let note: RecordNote =
            command_from(serde_json::json!({"text": "电话回访"}), given()).expect("a note");
        assert_eq!(note.case_id, case);
        let named = command_from::<RecordNote>(
            serde_json::json!({"text": "x", "case_id": Uuid::new_v4()}),
            given(),
        );
        assert!(
            matches!(named, Err(ApiError::Unprocessable { field: Some(ref f), .. }) if f == "case_id"),
            "{named:?}"
        );
        let listed = command_from::<RecordNote>(serde_json::json!(["x"]), given());
        assert!(
            matches!(listed, Err(ApiError::Unprocessable { .. })),
            "{listed:?}"
        );
    }
}
