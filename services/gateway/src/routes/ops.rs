//! Operations endpoints: `/healthz` (alive), `/readyz` (NATS, stream and projections ready) and
//! `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// One readiness check.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// `GET /readyz`: 200 when NATS is connected, the event stream answers and every projection is
/// within the lag bound; 503 with the failing checks otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let connection = state.inner.client.connection_state();
    checks.push(Check {
        name: "nats".into(),
        ok: connection == async_nats::connection::State::Connected,
        detail: connection.to_string(),
    });
    let bound = state.config().ready_max_lag;
    match zhzj_projector::status(&state.inner.log, state.store()).await {
        Ok(statuses) => {
            checks.push(Check {
                name: "stream".into(),
                ok: true,
                detail: "reachable".into(),
            });
            for status in statuses {
                checks.push(Check {
                    name: format!("projection:{}", status.name),
                    ok: status.generation > 0 && status.lag <= bound,
                    detail: format!("lag {} (bound {bound})", status.lag),
                });
            }
        }
        Err(e) => checks.push(Check {
            name: "stream".into(),
            ok: false,
            detail: e.to_string(),
        }),
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({"ready": ready, "checks": checks})),
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text format, with projection lag and dead letters read now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.inner.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response();
    };
    match zhzj_projector::status(&state.inner.log, state.store()).await {
        Ok(statuses) => {
            for status in statuses {
                let lag = status.lag as f64;
                let dead = status.dead_letters as f64;
                let position = status.position as f64;
                metrics::gauge!("zhzj_projection_lag", "projection" => status.name).set(lag);
                metrics::gauge!("zhzj_projection_dead_letters", "projection" => status.name)
                    .set(dead);
                metrics::gauge!("zhzj_projection_position", "projection" => status.name)
                    .set(position);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read projection status for metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
