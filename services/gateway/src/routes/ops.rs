//! Operations endpoints: `/healthz` (alive), `/readyz` (NATS, stream and projections ready) and
//! `/metrics` (Prometheus).

use std::time::Duration;

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

/// How long `/readyz` waits for the stream and the read store before it calls them unready: a
/// health check that hangs with what it checks is no health check.
const READY_CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /readyz`: 200 when NATS is connected, the event stream answers, every projection is
/// within the lag bound with nothing missing, and no projection of this process is failing; 503
/// with the failing checks otherwise. Answers within a second whatever is down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let connection = state.inner.client.connection_state();
    let connected = connection == async_nats::connection::State::Connected;
    checks.push(Check {
        name: "nats".into(),
        ok: connected,
        detail: connection.to_string(),
    });
    for (projection, fault) in state.store().projection_faults().current() {
        checks.push(Check {
            name: format!("projection:{projection}:writes"),
            ok: false,
            detail: format!(
                "failing since {} ({} attempts): {}",
                fault.since.to_rfc3339(),
                fault.attempts,
                fault.error
            ),
        });
    }
    let bound = state.config().ready_max_lag;
    let statuses = if connected {
        tokio::time::timeout(
            READY_CHECK_TIMEOUT,
            zhzj_projector::status(&state.inner.log, state.store()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(zhzj_projector::ProjectorError::Log(format!(
                "no answer within {READY_CHECK_TIMEOUT:?}"
            )))
        })
    } else {
        Err(zhzj_projector::ProjectorError::Log(
            "not connected to NATS".into(),
        ))
    };
    match statuses {
        Ok(statuses) => {
            checks.push(Check {
                name: "stream".into(),
                ok: true,
                detail: "reachable".into(),
            });
            // Unreadable commits make their cases unwritable until an administrator repairs
            // them: a permanent fault, not a lag.
            let unreadable: Vec<u64> = statuses
                .iter()
                .flat_map(|s| s.unreadable_positions.iter().copied())
                .collect();
            checks.push(Check {
                name: "history".into(),
                ok: unreadable.is_empty(),
                detail: if unreadable.is_empty() {
                    "every commit is readable".into()
                } else {
                    format!(
                        "unreadable commits at log positions {unreadable:?}: their cases answer \
                         corrupt_history until an administrator skips them \
                         (skip_unreadable_commits, README \"Operations\")"
                    )
                },
            });
            for status in statuses {
                let detail = if status.missing > 0 {
                    format!(
                        "missing {} positions below its checkpoint {}: rebuild it (zhzj rebuild {})",
                        status.missing, status.position, status.name
                    )
                } else if status.applied.is_none() {
                    "applied positions not counted yet (rebuilding)".to_owned()
                } else {
                    format!("lag {} (bound {bound})", status.lag)
                };
                checks.push(Check {
                    name: format!("projection:{}", status.name),
                    ok: status.generation > 0 && status.lag <= bound && status.is_complete(),
                    detail,
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
    let statuses = tokio::time::timeout(
        READY_CHECK_TIMEOUT,
        zhzj_projector::status(&state.inner.log, state.store()),
    )
    .await;
    let failing = state.store().projection_faults().current();
    for projection in zhzj_projector::Projection::ALL {
        let value = if failing.contains_key(projection.name()) {
            1.0
        } else {
            0.0
        };
        metrics::gauge!("zhzj_projection_failing", "projection" => projection.name()).set(value);
    }
    match statuses {
        Err(_) => tracing::warn!("projection status did not answer in time for metrics"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not read projection status for metrics"),
        Ok(Ok(statuses)) => {
            for status in statuses {
                let lag = status.lag as f64;
                let dead = status.dead_letters as f64;
                let position = status.position as f64;
                metrics::gauge!("zhzj_projection_lag", "projection" => status.name).set(lag);
                metrics::gauge!("zhzj_projection_dead_letters", "projection" => status.name)
                    .set(dead);
                metrics::gauge!("zhzj_projection_position", "projection" => status.name)
                    .set(position);
                metrics::gauge!("zhzj_projection_missing_positions", "projection" => status.name)
                    .set(status.missing as f64);
                if status.name == zhzj_projector::Projection::ARCHIVE.name() {
                    metrics::gauge!("zhzj_unreadable_commits")
                        .set(status.unreadable_positions.len() as f64);
                }
                metrics::gauge!("zhzj_projection_empty_positions", "projection" => status.name)
                    .set(status.empty_positions as f64);
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
