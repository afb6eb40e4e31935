//! The query parameters an operation takes are those its OpenAPI description names: a request
//! naming another is refused (400, naming it) before its handler runs. Handlers that read a query
//! refuse unknown fields themselves; this closes the others, which read none and so ignored
//! whatever was asked — a ledger export "filtered" by a unit it never read answered the whole
//! area's names and ID numbers as if it had been.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// An operation: its method (lower case, as the document writes it) and its path pattern.
type OperationKey = (String, String);

/// The query parameters of each documented operation.
static TAKEN: LazyLock<HashMap<OperationKey, HashSet<String>>> = LazyLock::new(|| {
    let mut taken = HashMap::new();
    let paths = crate::openapi::openapi_document()["paths"].as_object();
    for (path, operations) in paths.into_iter().flatten() {
        for (method, operation) in operations.as_object().into_iter().flatten() {
            let names = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "query")
                .filter_map(|parameter| parameter["name"].as_str())
                .map(str::to_owned)
                .collect();
            taken.insert((method.clone(), path.clone()), names);
        }
    }
    taken
});

/// Route middleware of `/api/v1`: refuses a query parameter the operation does not document.
/// An operation the document does not describe (the document itself) is let through.
pub(crate) async fn refuse_undocumented_query(request: Request, next: Next) -> Response {
    let (Some(query), Some(route)) = (
        request.uri().query().filter(|query| !query.is_empty()),
        request.extensions().get::<MatchedPath>(),
    ) else {
        return next.run(request).await;
    };
    let key = (
        request.method().as_str().to_ascii_lowercase(),
        route.as_str().to_owned(),
    );
    let Some(taken) = TAKEN.get(&key) else {
        return next.run(request).await;
    };
    let unknown = form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| !taken.contains(name.as_ref()));
    match unknown {
        Some(name) => {
            let mut accepted: Vec<&str> = taken.iter().map(String::as_str).collect();
            accepted.sort_unstable();
            let accepted = if accepted.is_empty() {
                "此接口不接受查询参数".to_owned()
            } else {
                format!("此接口接受：{}", accepted.join("、"))
            };
            ApiError::BadRequest {
                message: format!("查询参数有误: 未知参数 `{name}`（{accepted}）"),
                field: Some(name.into_owned()),
            }
            .into_response()
        }
        None => next.run(request).await,
    }
}
